//! Bridge networks (issue 19), end to end and only on this machine:
//! published ports answered from the host's loopback, containers finding
//! each other by name on a user network, `none` and `container:`,
//! build steps on the bridge, and nothing left behind — no veth, no
//! port table, no lease — after `rm`, even when a monitor is killed.
//! Needs root. Traffic goes to loopback and to these tests' containers,
//! except the apt build, which reaches the Debian mirror through the NAT.

use kiln_tests::Kiln;
use serde_json::Value;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn kiln() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

fn inspect(k: &Kiln, name: &str) -> Value {
    let v: Value = serde_json::from_str(&k.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

/// `GET /` on 127.0.0.1:port, retried while the server starts.
fn http_get(port: u16) -> String {
    let start = Instant::now();
    loop {
        let attempt = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        });
        match attempt {
            Ok(body) if body.contains("200 OK") => {
                return body
                    .split("\r\n\r\n")
                    .nth(1)
                    .unwrap_or_default()
                    .to_string()
            }
            _ if start.elapsed() > Duration::from_secs(10) => {
                panic!("nothing answers on 127.0.0.1:{port}: {attempt:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The host's kiln veths (one per container on a network).
fn veths() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("kv"))
        .collect()
}

/// The leases held for container `id`, on any network.
/// Waits for container `id`'s veths to go: the kernel frees a dead
/// namespace's links shortly after its last process.
fn veth_goes(id: &str) {
    let start = Instant::now();
    while veths()
        .iter()
        .any(|v| v.starts_with(&format!("kv{}", &id[..8])))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a veth outlived its container"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn leases_of(id: &str) -> usize {
    kiln_leases().iter().filter(|l| l.contains(id)).count()
}

/// Every lease file's content on this machine.
fn kiln_leases() -> Vec<String> {
    let mut out = Vec::new();
    for net in std::fs::read_dir("/run/kiln/networks")
        .into_iter()
        .flatten()
        .flatten()
    {
        for l in std::fs::read_dir(net.path().join("leases"))
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(std::fs::read_to_string(l.path()).unwrap_or_default());
        }
    }
    out
}

fn port_tables() -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn serve(k: &Kiln, name: &str, page: &str, extra: &[&str]) -> String {
    let www = k.path(&format!("www-{name}"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), page).unwrap();
    let vol = format!("{}:/www:ro", www.display());
    let mut args = vec!["run", "-d", "--name", name, "-v", &vol];
    args.extend_from_slice(extra);
    args.extend(["busybox", "httpd", "-f", "-p", "80", "-h", "/www"]);
    k.ok(&args).trim().to_string()
}

#[test]
fn two_servers_on_port_80_answer_on_their_own_published_ports() {
    let k = kiln();
    let one = serve(&k, "one", "first\n", &["-p", "127.0.0.1:18081:80"]);
    let two = serve(&k, "two", "second\n", &["-p", "127.0.0.1:18082:80/tcp"]);
    assert_eq!(http_get(18081), "first\n");
    assert_eq!(http_get(18082), "second\n");
    assert_eq!(k.ok(&["port", "one"]), "80/tcp -> 127.0.0.1:18081\n");
    assert_eq!(k.ok(&["port", "two", "80"]), "127.0.0.1:18082\n");
    assert!(k.ok(&["ps"]).contains("127.0.0.1:18081->80/tcp"));
    let settings = &inspect(&k, "one")["NetworkSettings"];
    let ip = settings["IPAddress"].as_str().unwrap();
    assert!(ip.starts_with("10.77."), "{settings}");
    assert_eq!(settings["Ports"]["80/tcp"][0]["HostPort"], "18081");
    // The host reaches the container's own address too.
    let direct = std::net::TcpStream::connect((ip, 80));
    assert!(direct.is_ok(), "{direct:?}");
    // A port already published is refused, naming it.
    let err = k.fails(&["run", "--rm", "-p", "127.0.0.1:18081:80", "busybox", "true"]);
    assert!(
        err.contains("18081") && err.contains("already allocated"),
        "{err}"
    );
    // -P: every EXPOSEd port on a free one.
    k.import_busybox("exposes", &["EXPOSE 80"]);
    let www = k.path("www-one");
    let vol = format!("{}:/www:ro", www.display());
    k.ok(&[
        "run", "-d", "--name", "all", "-P", "-v", &vol, "exposes", "httpd", "-f", "-p", "80", "-h",
        "/www",
    ]);
    let mapped = k.ok(&["port", "all", "80/tcp"]);
    let port: u16 = mapped.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    assert_eq!(http_get(port), "first\n");
    assert!(veths().len() >= 3);
    k.ok(&["rm", "-f", "one", "two", "all"]);
    for id in [&one, &two] {
        assert!(!port_tables().contains(&format!("kiln-ports-{}", &id[..12])));
        assert_eq!(leases_of(id), 0);
        veth_goes(id);
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", 18081)).is_err());
}

#[test]
fn containers_on_a_user_network_find_each_other_by_name() {
    let k = kiln();
    let net = format!("kt{}", std::process::id());
    k.ok(&["network", "create", &net]);
    assert!(k.ok(&["network", "ls"]).contains(&net));
    serve(
        &k,
        "web",
        "by name\n",
        &["--network", &net, "--network-alias", "www"],
    );
    let fetch = "wget -qO- http://web/ && wget -qO- http://www/";
    let out = k.run_rm(&["--network", &net, "busybox", "sh", "-c", fetch]);
    assert_eq!(out, "by name\nby name\n");
    // Not from the default network: another bridge, another namespace.
    let out = k.out(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        "-T",
        "2",
        "http://web/",
    ]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    // connect adds it to a running container, both ways in /etc/hosts.
    k.ok(&["run", "-d", "--name", "late", "busybox", "sleep", "60"]);
    k.ok(&["network", "connect", &net, "late"]);
    assert_eq!(
        k.ok(&["exec", "late", "wget", "-qO-", "http://web/"]),
        "by name\n"
    );
    assert!(k.ok(&["exec", "web", "cat", "/etc/hosts"]).contains("late"));
    let inspect_net: Value = serde_json::from_str(&k.ok(&["network", "inspect", &net])).unwrap();
    assert_eq!(inspect_net[0]["Containers"].as_object().unwrap().len(), 2);
    assert!(k
        .fails(&["network", "rm", &net])
        .contains("active endpoints"));
    k.ok(&["network", "disconnect", &net, "late"]);
    let out = k.out(&["exec", "late", "wget", "-qO-", "-T", "2", "http://web/"]);
    assert_ne!(out.code, 0);
    k.ok(&["rm", "-f", "web", "late"]);
    k.ok(&["network", "rm", &net]);
    assert!(!k.ok(&["network", "ls"]).contains(&net));
}

#[test]
fn none_container_and_the_files_a_container_is_given() {
    let k = kiln();
    let ifaces = "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '";
    assert_eq!(
        k.run_rm(&["--network", "none", "busybox", "sh", "-c", ifaces]),
        "lo\n"
    );
    let bridged = k.run_rm(&["busybox", "sh", "-c", ifaces]);
    assert_eq!(bridged.lines().collect::<Vec<_>>().len(), 2, "{bridged}");
    // container:NAME shares the namespace: the same address.
    k.ok(&["run", "-d", "--name", "base", "busybox", "sleep", "60"]);
    let theirs = inspect(&k, "base")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let addr = "ip -4 addr show eth0 | grep -o 'inet [0-9.]*' | cut -d' ' -f2";
    let shared = k.run_rm(&["--network", "container:base", "busybox", "sh", "-c", addr]);
    assert_eq!(shared.trim(), theirs);
    k.ok(&["rm", "-f", "base"]);
    let files = k.run_rm(&[
        "--hostname",
        "box",
        "--add-host",
        "db.internal:10.1.2.3",
        "--dns",
        "10.9.9.9",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hosts /etc/resolv.conf",
    ]);
    assert!(files.starts_with("box\n"), "{files}");
    assert!(files.contains("10.1.2.3\tdb.internal"), "{files}");
    assert!(
        files.contains("\tbox\n") && files.contains("nameserver 10.9.9.9"),
        "{files}"
    );
    let err = k.fails(&["run", "--rm", "--network", "nosuch", "busybox", "true"]);
    assert!(
        err.contains("--network nosuch") && err.contains("not found"),
        "{err}"
    );
    let err = k.fails(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-p",
        "80",
        "busybox",
        "true",
    ]);
    assert!(err.contains("-p"), "{err}");
}

#[test]
fn a_killed_monitor_leaves_nothing_the_next_start_does_not_sweep() {
    let k = kiln();
    let id = k.ok(&[
        "run",
        "-d",
        "--name",
        "crash",
        "-p",
        "127.0.0.1:18083:80",
        "busybox",
        "sleep",
        "60",
    ]);
    let id = id.trim();
    let monitor = inspect(&k, "crash")["State"]["Pid"].as_u64().unwrap();
    assert!(port_tables().contains(&format!("kiln-ports-{}", &id[..12])));
    // The monitor is the container's parent.
    let stat = std::fs::read_to_string(format!("/proc/{monitor}/stat")).unwrap();
    let parent: i32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-9", &parent.to_string()])
        .status();
    veth_goes(id);
    // The stale lease and port table go with the next container's start.
    k.run_rm(&["busybox", "true"]);
    assert!(!port_tables().contains(&format!("kiln-ports-{}", &id[..12])));
    assert_eq!(leases_of(id), 0);
    k.ok(&["rm", "-f", "crash"]);
}

#[test]
fn build_steps_get_the_bridge_when_asked() {
    let k = kiln();
    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nRUN ip -4 -o addr show dev eth0 | awk '{print $4}' > /addr\n",
    );
    let image = k.build_at_epoch("0", &["--network", "bridge"]);
    let addr = k.run_rm(&[image.trim(), "cat", "/addr"]);
    assert!(addr.starts_with("10.77."), "{addr}");
    // The default stays the host's, as buildkitd without CNI.
    let image = k.build_at_epoch("0", &["--no-cache"]);
    let host = k.run_rm(&[image.trim(), "cat", "/addr"]);
    assert!(!host.starts_with("10.77."), "{host}");
}

/// The bench's apt scenario through the bridge's NAT to the Debian mirror.
#[test]
fn the_apt_scenario_builds_through_the_nat() {
    let tar = std::env::var("KILN_TEST_DEBIAN_TAR")
        .unwrap_or_else(|_| "/var/cache/kiln-tests/debian-bookworm.tar".into());
    let k = kiln();
    k.ok(&["import", &tar, "debian:bookworm"]);
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/bench/scenarios/apt"
    );
    let image = k.ok(&["build", "-q", "--network", "bridge", scenario]);
    assert_eq!(k.run_rm(&[image.trim(), "cat", "/out.json"]), "[2,4,6]\n");
    assert!(k.run_rm(&[image.trim()]).starts_with("jq-"));
}

/// A container may craft packets (docker's default set has NET_RAW), so it
/// could address the host's loopback-only services through the bridge,
/// whose route_localnet kiln needs (CVE-2020-8558): the network's table
/// drops them. The packet is a raw Ethernet frame from perl, sent to the
/// gateway's MAC with destination 127.0.0.1.
#[test]
fn a_container_cannot_reach_the_hosts_loopback_services() {
    let tar = std::env::var("KILN_TEST_DEBIAN_TAR")
        .unwrap_or_else(|_| "/var/cache/kiln-tests/debian-bookworm.tar".into());
    let k = kiln();
    k.ok(&["import", &tar, "debian:bookworm"]);
    let listener = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = r#"
use Socket;
my $port = shift;
open(my $r, '<', '/proc/net/route'); my $gw;
while (<$r>) { my @f = split; if ($f[1] eq '00000000') { $gw = join('.', reverse map { hex } unpack('(A2)4', $f[2])) } }
socket(my $u, PF_INET, SOCK_DGRAM, 0); send($u, 'x', 0, sockaddr_in(9, inet_aton($gw))); sleep 1;
open(my $a, '<', '/proc/net/arp'); my $mac;
while (<$a>) { my @f = split; $mac = $f[3] if $f[0] eq $gw }
my $dst = pack('H12', join('', split(/:/, $mac)));
my $src = pack('H12', join('', split(/:/, `cat /sys/class/net/eth0/address`)));
my ($me) = `cat /proc/net/fib_trie` =~ /(10\.\d+\.\d+\.\d+)\n\s+\/32 host LOCAL/;
my $payload = 'pwned';
my $udp = pack('nnnn', 40000, $port, 8 + length $payload, 0) . $payload;
my $ip = pack('CCnnnCCna4a4', 0x45, 0, 20 + length $udp, 1, 0x4000, 64, 17, 0, inet_aton($me), inet_aton('127.0.0.1'));
my $sum = 0; $sum += $_ for unpack('n10', $ip); $sum = ($sum >> 16) + ($sum & 0xffff); $sum += $sum >> 16;
substr($ip, 10, 2) = pack('n', ~$sum & 0xffff);
socket(my $p, 17, SOCK_RAW, 0) or die "packet socket: $!";
my $ifindex = `cat /sys/class/net/eth0/ifindex` + 0;
my $ll = pack('SnISCCa8', 17, 0x0800, $ifindex, 0, 0, 6, $dst);
for (1..3) { send($p, $dst . $src . pack('n', 0x0800) . $ip . $udp, 0, $ll) or die "send: $!"; }
print "sent\n";
"#;
    let out = k.run_rm(&["debian:bookworm", "perl", "-e", script, &port.to_string()]);
    assert_eq!(out, "sent\n");
    let mut buf = [0u8; 64];
    let got = listener.recv_from(&mut buf);
    assert!(
        got.is_err(),
        "the host's loopback service got {:?}",
        got.map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned())
    );
}
