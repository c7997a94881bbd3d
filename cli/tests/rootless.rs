//! Rootless kiln: the builds users run, run by an ordinary user. The test
//! process is root; kiln runs as `kiln-rootless` (a subordinate id range
//! in /etc/subuid) or `kiln-single` (none), which
//! `tests/setup/rootless-users.sh` makes. What a root build records, a
//! rootless one must record too: the container's ids, not the caller's.

use kiln_tests::{Kiln, Registry, TestUser};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kiln")
}

/// A rootless kiln with a subordinate range, and busybox in its store.
fn rootless() -> Kiln {
    let k = Kiln::as_user(bin(), TestUser::with_range());
    k.import_busybox("busybox", &[]);
    k
}

/// The first range of `user` in a subuid/subgid file.
fn range_start(file: &str, user: &str) -> u32 {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == user).then(|| f[1].parse().unwrap())
        })
        .unwrap()
}

/// A file named `name` under `dir`, found by walking it.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let ft = e.file_type().ok()?;
        if ft.is_dir() {
            if let Some(hit) = find(&p, name) {
                return Some(hit);
            }
        } else if e.file_name() == name {
            return Some(p);
        }
    }
    None
}

const MULTI_STAGE: &str = "\
FROM busybox AS base
RUN mkdir -p /data && echo hi > /data/owned-by-33 && chown 33:33 /data/owned-by-33
COPY --chown=1000:1000 a.txt /owned-num
COPY --chown=nobody:nobody a.txt /owned-name
RUN mkdir /drop && chmod 777 /drop
USER nobody
RUN id -u > /drop/uid && id -g > /drop/gid
USER root
RUN --mount=type=cache,target=/cache,id=rl echo run >> /cache/log && wc -l < /cache/log > /runs
RUN --mount=type=secret,id=tok,required cat /run/secrets/tok > /secret-copy

FROM busybox AS final
COPY --from=base /data /data
COPY --from=base /owned-num /owned-name /runs /secret-copy /
COPY --from=base /drop /drop

FROM final AS broken
RUN exit 3
";

#[test]
fn multi_stage_chown_user_cache_mounts_and_secrets_work_rootless() {
    let k = rootless();
    let user = k.user().unwrap().clone();
    k.write_ctx("Dockerfile", MULTI_STAGE);
    k.write_ctx("a.txt", "a\n");
    let secret = k.write("tok.txt", "s3cret");
    let secret_arg = format!("id=tok,src={}", secret.display());
    // The last stage fails: --target must build only up to `final`.
    let (code, _, err) = k.try_build(&["--secret", &secret_arg]);
    assert_ne!(code, 0, "the default target runs `exit 3`:\n{err}");
    k.build(&["--target", "final", "-t", "app", "--secret", &secret_arg]);
    let out = k.run_rm(&[
        "app",
        "sh",
        "-c",
        "stat -c '%u:%g %n' /data/owned-by-33 /owned-num /owned-name; \
         cat /drop/uid /drop/gid /runs /secret-copy",
    ]);
    assert_eq!(
        out,
        "33:33 /data/owned-by-33\n1000:1000 /owned-num\n65534:65534 /owned-name\n\
         65534\n65534\n1\ns3cret",
        "ids inside are the container's"
    );
    // On disk the file is the caller's subordinate id 33 - 1 + start:
    // the namespace really mapped the range.
    let on_disk = find(&k.root().join("snapshots"), "owned-by-33").expect("the file in a snapshot");
    let start = range_start("/etc/subuid", &user.name);
    assert_eq!(std::fs::metadata(&on_disk).unwrap().uid(), start + 32);
    // The cache mount persists between builds (a rebuild that runs again).
    k.build(&["--target", "final", "--no-cache", "--secret", &secret_arg]);
    assert_eq!(k.cache_log("rl"), ["run", "run"]);
}

#[test]
fn a_rootless_build_gives_the_same_image_id_as_root() {
    let dockerfile = "\
FROM busybox
RUN mkdir -p /d/sub /www && echo old > /d/sub/old && chown -R 33:33 /www && echo w > /www/f && chown 33 /www/f
RUN rm -rf /d && mkdir /d && echo new > /d/new && rm /etc/group
COPY --chown=65534:65534 a.txt /a
RUN chmod 4755 /a && ln -s /a /link && ln /a /hard
";
    let root = Kiln::with_busybox(bin());
    let base = root.path("busybox.tar");
    root.ok(&["save", "-o", base.to_str().unwrap(), "busybox"]);
    let user = Kiln::as_user(bin(), TestUser::with_range());
    let base_copy = user.write("busybox.tar", std::fs::read(&base).unwrap());
    user.ok(&["load", "-q", "-i", base_copy.to_str().unwrap()]);
    for k in [&root, &user] {
        k.write_ctx("Dockerfile", dockerfile);
        k.write_ctx("a.txt", "a\n");
    }
    let as_root = root.build_at_epoch("1700000000", &[]);
    let rootless = user.build_at_epoch("1700000000", &[]);
    assert_eq!(as_root, rootless, "same layers, same config, same ID");
    // And the rootless image holds what the root one does.
    let listing =
        "stat -c '%u:%g %a %n' /www/f /a /hard; ls /d; test -e /etc/group || echo no-group";
    assert_eq!(
        user.run_rm(&[&rootless, "sh", "-c", listing]),
        root.run_rm(&[&as_root, "sh", "-c", listing])
    );
}

#[test]
fn apt_get_installs_rootless_dropping_to_its_own_user() {
    let k = Kiln::as_user(bin(), TestUser::with_range());
    k.ok(&[
        "import",
        kiln_tests::debian_rootfs().to_str().unwrap(),
        "debian:bookworm",
    ]);
    // apt-get update downloads as _apt (uid 42): the namespace must map it.
    k.write_ctx(
        "Dockerfile",
        "FROM debian:bookworm\n\
         RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends hello >/dev/null \
         && rm -rf /var/lib/apt/lists/*\n\
         RUN stat -c '%U:%u' /var/cache/apt/archives/partial > /apt-owner\n",
    );
    k.build(&["-t", "hello"]);
    assert_eq!(k.run_rm(&["hello", "hello"]), "Hello, world!\n");
    assert_eq!(k.run_rm(&["hello", "cat", "/apt-owner"]), "_apt:42\n");
}

#[test]
fn cache_to_a_registry_then_cache_from_a_clean_rootless_store() {
    let registry = Registry::start(None);
    let cache_ref = format!("127.0.0.1:{}/rootless/cache", registry.port);
    let dockerfile = "\
FROM busybox
COPY a.txt /a
RUN --mount=type=cache,target=/c,id=runs echo ran >> /c/log && chown 33 /a && cat /a > /b
";
    let a = rootless();
    a.write_ctx("Dockerfile", dockerfile);
    a.write_ctx("a.txt", "a\n");
    let to = format!("type=registry,ref={cache_ref},mode=max");
    let (id_a, _) = a.build(&["--cache-to", &to]);
    assert_eq!(a.cache_log("runs"), ["ran"]);
    // Another user's machine: a clean store, the same base (as if pulled
    // from one registry), only the cache.
    let base = a.path("busybox.tar");
    a.ok(&["save", "-o", base.to_str().unwrap(), "busybox"]);
    let b = Kiln::as_user(bin(), TestUser::with_range());
    let base_copy = b.write("busybox.tar", std::fs::read(&base).unwrap());
    b.ok(&["load", "-q", "-i", base_copy.to_str().unwrap()]);
    b.write_ctx("Dockerfile", dockerfile);
    b.write_ctx("a.txt", "a\n");
    let from = format!("type=registry,ref={cache_ref}");
    let (id_b, err) = b.build(&["--cache-from", &from]);
    assert!(b.cache_log("runs").is_empty(), "B ran the step:\n{err}");
    assert_eq!(id_a, id_b);
    assert_eq!(b.run_rm(&[&id_b, "stat", "-c", "%u", "/a"]), "33\n");
}

#[test]
fn run_with_a_tty_as_another_user_and_without_network() {
    let k = rootless();
    assert_eq!(
        k.run_rm(&["-u", "65534:65534", "busybox", "id"]),
        "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)\n"
    );
    assert_eq!(k.run_rm(&["busybox", "id", "-u"]), "0\n");
    // --network none: a network namespace of its own, only loopback.
    assert_eq!(
        k.run_rm(&["--network", "none", "busybox", "ls", "/sys/class/net"]),
        "lo\n"
    );
    // The host network (the default) stays: more than loopback.
    let host = k.run_rm(&["busybox", "ls", "/sys/class/net"]);
    assert!(host.lines().count() > 1, "{host}");
    // -it: a pty from the container's own devpts.
    let user = k.user().unwrap();
    let cmd = format!(
        "'{}' --root '{}' run --rm -it busybox sh -c 'tty; [ -t 0 ] && echo stdin-is-a-tty; id -u'",
        k.bin().display(),
        k.root().display()
    );
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &cmd, "/dev/null"]);
    user.apply(&mut script);
    let out = script.stdin(std::process::Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("stdin-is-a-tty"), "{text}");
}

#[test]
fn cgroup_limits_without_a_delegated_subtree_are_refused_clearly() {
    let k = rootless();
    let err = k.fails(&["run", "--rm", "--memory", "64m", "busybox", "true"]);
    assert!(err.contains("delegated"), "{err}");
    assert!(err.contains("cgroup v2"), "{err}");
}

#[test]
fn a_user_without_a_subuid_range_builds_as_root_and_is_told_why_other_ids_fail() {
    let k = Kiln::as_user(bin(), TestUser::without_range());
    k.import_busybox("busybox", &[]);
    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nRUN echo hi > /f && id -u > /uid\n",
    );
    let (id, err) = k.build(&[]);
    assert!(err.contains("/etc/subuid"), "the single-id warning:\n{err}");
    assert_eq!(k.run_rm(&[&id, "cat", "/f", "/uid"]), "hi\n0\n");

    k.write_ctx("Dockerfile", "FROM busybox\nRUN touch /f && chown 33 /f\n");
    let (code, _, err) = k.try_build(&[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("hint:") && err.contains("/etc/subuid"),
        "{err}"
    );

    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nCOPY --chown=33 Dockerfile /f\n",
    );
    let (code, _, err) = k.try_build(&[]);
    assert_ne!(code, 0);
    assert!(err.contains("Dockerfile:2:1"), "{err}");
    assert!(err.contains("/etc/subuid"), "{err}");
}

#[test]
fn rootless_build_steps_and_containers_have_no_way_out() {
    let k = rootless();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let ns = kiln_tests::host_namespaces();
    k.write_ctx("probe", std::fs::read(kiln_tests::escape_probe()).unwrap());
    std::fs::set_permissions(
        k.ctx().join("probe"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    k.write_ctx("devlist", kiln_tests::host_devices());
    k.write_ctx(
        "Dockerfile",
        format!(
            "FROM busybox\nCOPY probe devlist /\n\
             RUN --mount=type=bind,target=/ctx,rw --mount=type=cache,target=/cache \
             --mount=type=tmpfs,target=/scratch \
             /probe --devices /devlist --host-ns {ns} --host-port {port} \
             --writable /tmp,/ctx,/cache,/scratch\n"
        ),
    );
    let ctx = k.ctx();
    let out = k.with_leaked_fds(&[
        "build",
        "--no-cache",
        "--network",
        "none",
        "--progress",
        "plain",
        "-t",
        "probe",
        ctx.to_str().unwrap(),
    ]);
    let report = kiln_tests::probe_lines(&out.stderr);
    let mut checks = kiln_tests::PROBE_ALWAYS.to_vec();
    checks.extend_from_slice(kiln_tests::PROBE_NO_NETWORK);
    kiln_tests::assert_no_escape(&report, &checks);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // kiln run, host network not given: the same probe from outside a build.
    let run = k.with_leaked_fds(&[
        "run",
        "--rm",
        "--network",
        "none",
        "probe",
        "/probe",
        "--devices",
        "/devlist",
        "--host-ns",
        &ns,
        "--host-port",
        &port,
        "--writable",
        "/tmp",
    ]);
    kiln_tests::assert_no_escape(&run.stdout, &checks);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// A podman image with glibc (kiln is linked against it) made from the
/// debian tarball, once per machine.
fn podman_debian() -> String {
    let name = "localhost/kiln-rootless-test:debian";
    let exists = std::process::Command::new(kiln_tests::tool_path("podman"))
        .args(["image", "exists", name])
        .status()
        .unwrap()
        .success();
    if !exists {
        kiln_tests::tool(
            "podman",
            &[
                "import",
                "-q",
                kiln_tests::debian_rootfs().to_str().unwrap(),
                name,
            ],
        );
    }
    name.to_string()
}

/// `podman run` (no --privileged, no added capabilities, podman's default
/// seccomp profile) as uid 1000 inside, with kiln and `work` (holding a
/// busybox rootfs tar and a context) mounted, running `script` in /w.
fn in_podman(work: &Path, extra: &[&str], script: &str) -> kiln_tests::Output {
    let runc = kiln_tests::tool_path("runc");
    let mut cmd = std::process::Command::new(kiln_tests::tool_path("podman"));
    cmd.args([
        "--runtime",
        runc.to_str().unwrap(),
        "run",
        "--rm",
        "--user",
        "1000:1000",
    ])
    // Under this host's hard open-files limit (podman asks for more).
    .args([
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ])
    .args(["-e", "HOME=/tmp"])
    .args(["-v", &format!("{}:/usr/local/bin/kiln:ro", bin())])
    .args(["-v", &format!("{}:/w", work.display())])
    .args(extra)
    .arg(podman_debian())
    .args(["sh", "-c", &format!("cd /w && {script}")]);
    cmd.output().unwrap().into()
}

/// The Kubernetes pod case: kiln in an unprivileged container. What it
/// needs is the store on a real filesystem (a volume) and an unmasked
/// /proc; without either it says exactly that.
#[test]
fn builds_inside_an_unprivileged_container_and_names_what_is_missing() {
    let work = tempfile::tempdir().unwrap();
    kiln_tests::write_busybox_rootfs(&work.path().join("busybox.tar"));
    std::fs::create_dir_all(work.path().join("ctx")).unwrap();
    std::fs::write(
        work.path().join("ctx/Dockerfile"),
        "FROM busybox\nRUN echo built-in-a-pod > /f\n",
    )
    .unwrap();
    // Everything in it belongs to the container's uid 1000.
    kiln_tests::tool("chown", &["-R", "1000:1000", work.path().to_str().unwrap()]);
    let build = |store: &str| {
        format!(
            "kiln --root {store} import busybox.tar busybox >/dev/null && \
             kiln --root {store} build -q -t app ctx && kiln --root {store} run --rm app cat /f"
        )
    };
    let ok = in_podman(
        work.path(),
        &["--security-opt", "unmask=ALL"],
        &build("/w/store-ok"),
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.ends_with("built-in-a-pod\n"), "{}", ok.stdout);

    let masked = in_podman(work.path(), &[], &build("/w/store-masked"));
    assert_ne!(masked.code, 0);
    assert!(masked.stderr.contains("unmask=ALL"), "{}", masked.stderr);
    assert!(masked.stderr.contains("procMount"), "{}", masked.stderr);

    let on_overlay = in_podman(
        work.path(),
        &["--security-opt", "unmask=ALL"],
        &build("/tmp/store"),
    );
    assert_ne!(on_overlay.code, 0);
    assert!(
        on_overlay.stderr.contains("is on overlayfs"),
        "{}",
        on_overlay.stderr
    );
}

#[test]
fn device_nodes_in_a_layer_are_skipped_rootless_with_a_warning() {
    // A layer with a character device (made here, as root) and a file.
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("etc")).unwrap();
    std::fs::write(src.path().join("etc/kept"), "kept\n").unwrap();
    std::fs::create_dir_all(src.path().join("devs")).unwrap();
    kiln_tests::tool(
        "mknod",
        &[
            src.path().join("devs/null").to_str().unwrap(),
            "c",
            "1",
            "3",
        ],
    );
    let k = rootless();
    let tarball = k.path("with-device.tar");
    kiln_tests::tool(
        "tar",
        &[
            "-C",
            src.path().to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ],
    );
    k.give(&tarball);
    k.write_ctx("Dockerfile", "FROM busybox\nADD with-device.tar /\n");
    std::fs::copy(&tarball, k.ctx().join("with-device.tar")).unwrap();
    k.give(&k.ctx().join("with-device.tar"));
    let (id, err) = k.build(&[]);
    assert!(err.contains("skipped 1 device node"), "{err}");
    assert_eq!(
        k.run_rm(&[&id, "sh", "-c", "cat /etc/kept; ls /devs | wc -l"]),
        "kept\n0\n"
    );
}

/// The container lifecycle as an ordinary user: a background container
/// under its monitor, exec (which joins the monitor's user namespace),
/// logs, stop and rm, with the container's ids as root sees them.
#[test]
fn background_containers_exec_and_stop_rootless() {
    let k = rootless();
    let id = k.ok(&[
        "run",
        "-d",
        "--name",
        "bg",
        "busybox",
        "sh",
        "-c",
        "echo up; sleep 60",
    ]);
    assert_eq!(id.trim().len(), 64);
    assert!(k.ok(&["ps"]).contains("bg"));
    assert_eq!(k.ok(&["exec", "bg", "id", "-u"]), "0\n");
    assert_eq!(k.ok(&["exec", "-u", "nobody", "bg", "id", "-u"]), "65534\n");
    let ps = k.ok(&["exec", "bg", "ps", "-o", "pid,args"]);
    assert!(ps.lines().any(|l| l.trim_start() == "1 sleep 60"), "{ps}");
    assert_eq!(k.ok(&["logs", "bg"]), "up\n");
    k.ok(&["stop", "-t", "1", "bg"]);
    assert!(k.ok(&["ps", "-a"]).contains("Exited (137)"));
    k.ok(&["rm", "bg"]);
    assert!(k.ok(&["ps", "-aq"]).is_empty());
    // PID 1 as another container user: this kiln's namespace cannot
    // signal it, so the monitor relays the stop signal (exit 7 is the
    // trap's, not SIGKILL's 137) and rm -f's SIGKILL.
    k.ok(&[
        "run",
        "-d",
        "-u",
        "nobody",
        "--name",
        "nb",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; while :; do sleep 0.1; done",
    ]);
    k.ok(&["stop", "-t", "5", "nb"]);
    assert!(
        k.ok(&["ps", "-a"]).contains("Exited (7)"),
        "{}",
        k.ok(&["ps", "-a"])
    );
    k.ok(&["start", "nb"]);
    k.ok(&["kill", "-s", "USR2", "nb"]);
    k.ok(&["rm", "-f", "nb"]);
    assert!(k.ok(&["ps", "-aq"]).is_empty());
    // The process flags work as a user too.
    let profile = k.write(
        "no-mkdir.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    k.give(&profile);
    let out = k.run_rm(&[
        "--ulimit", "nofile=256:512", "--group-add", "1234", "--shm-size", "4m",
        "--device", "/dev/zero:/dev/z2",
        "--security-opt", &format!("seccomp={}", profile.display()),
        "busybox", "sh", "-c",
        "ulimit -n; id -G; df -k /dev/shm | tail -1 | awk '{print $2}'; head -c 1 /dev/z2 | od -An -tx1; mkdir /d 2>/dev/null || echo refused",
    ]);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["256", "0 1234", "4096", "00", "refused"], "{out}");
}

/// A rootless container's default network is slirp4netns: its own
/// namespace with a tap device, outbound connections (to a server this
/// test runs on the host's own address), ports published on the host's
/// loopback, and the host's loopback itself out of reach.
#[test]
fn rootless_containers_get_a_network_through_slirp4netns() {
    let k = rootless();
    // The host's own address (no packet is sent to learn it).
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    probe.connect("198.51.100.1:9").unwrap();
    let host_ip = probe.local_addr().unwrap().ip();
    let server = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let serving = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = server.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\noutbound\n")
            .unwrap();
    });
    let out = k.run_rm(&[
        "busybox",
        "sh",
        "-c",
        &format!(
            "ip -4 addr show tap0 | grep -o 'inet [0-9.]*'; wget -qO- http://{host_ip}:{port}/"
        ),
    ]);
    assert_eq!(out, "inet 10.0.2.100\noutbound\n");
    serving.join().unwrap();
    // Published on 127.0.0.1 and answered from the container.
    let www = k.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "slirp page\n").unwrap();
    k.give(&www);
    let vol = format!("{}:/www:ro", www.display());
    k.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1:18091:80",
        "-v",
        &vol,
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    let start = std::time::Instant::now();
    let page = loop {
        use std::io::{Read, Write};
        let got = std::net::TcpStream::connect("127.0.0.1:18091").and_then(|mut s| {
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        });
        match got {
            Ok(b) if b.contains("200 OK") => break b,
            _ if start.elapsed().as_secs() > 10 => panic!("no answer on 18091: {got:?}"),
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    assert!(page.ends_with("slirp page\n"), "{page}");
    k.ok(&["rm", "-f", "web"]);
    // The host's loopback is not the container's way out.
    let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lport = local.local_addr().unwrap().port();
    let out = k.out(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-qO-",
        "-T",
        "2",
        &format!("http://10.0.2.2:{lport}/"),
    ]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    // Only the default network exists rootless.
    let err = k.fails(&["network", "ls"]);
    assert!(err.contains("rootless"), "{err}");
}
