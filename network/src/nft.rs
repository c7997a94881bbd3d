//! NAT with Debian's `nft`: one table per network (masquerade out of its
//! subnet, the DNS stub) and one per container that publishes ports
//! (DNAT), so that a container's rules come and go as one atomic
//! `nft -f` and a crashed one's can be found by name and deleted.
//!
//! Why the `nft` binary and not netlink: nftables' netlink API is a
//! bytecode VM whose rules would be hand-assembled expression by
//! expression; `nft` compiles them, applies a script atomically, and is
//! called only when a network is brought up or a container publishes
//! ports (never on the `run --rm` path otherwise).

use crate::networks::NetworkConfig;
use crate::ports::PortMapping;
use crate::{NetworkError, Result};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Applies `script` with `nft -f -`.
fn apply(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            NetworkError::Invalid(format!(
                "running nft (Debian's nftables package): {e}; kiln's bridge networks need it"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetworkError::Invalid(format!("nft: {e}")))?;
    if !out.status.success() {
        return Err(NetworkError::Invalid(format!(
            "nft refused kiln's rules: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// `table ip NAME` replaced by `body` (made first so the delete of an
/// absent table cannot fail).
fn replace_table(name: &str, body: &str) -> Result<()> {
    apply(&format!(
        "table ip {name} {{}}\ndelete table ip {name}\ntable ip {name} {{\n{body}}}\n"
    ))
}

pub(crate) fn delete_table(name: &str) -> Result<()> {
    apply(&format!("table ip {name} {{}}\ndelete table ip {name}\n"))
}

/// The network's table: its subnet masqueraded on the way out (unless
/// internal), loopback-sourced traffic to published ports masqueraded on
/// the way in, and DNS to the gateway sent to a loopback `resolver`.
pub(crate) fn network_table(net: &NetworkConfig, resolver: Option<Ipv4Addr>) -> Result<()> {
    let br = &net.bridge;
    let subnet = net.subnet();
    let mut post = format!(
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade\n"
    );
    if !net.internal {
        post.push_str(&format!(
            "    ip saddr {subnet} oifname != \"{br}\" masquerade\n"
        ));
    }
    post.push_str("  }\n");
    // route_localnet on the bridge (needed to NAT loopback-published
    // ports and the DNS stub) would also let a container address the
    // host's loopback services directly with a crafted packet
    // (CVE-2020-8558): nothing from the bridge may be for 127/8 before NAT.
    let mut body = format!(
        "  chain raw {{\n    type filter hook prerouting priority raw; policy accept;\n    \
         iifname \"{br}\" ip daddr 127.0.0.0/8 drop\n  }}\n"
    );
    body.push_str(&post);
    if net.internal {
        body.push_str(&format!(
            "  chain forward {{\n    type filter hook forward priority filter; policy accept;\n    \
             iifname \"{br}\" oifname != \"{br}\" drop\n    oifname \"{br}\" iifname != \"{br}\" drop\n  }}\n"
        ));
    }
    if let Some(r) = resolver {
        let gw = net.gateway;
        body.push_str(&format!(
            "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
             iifname \"{br}\" ip daddr {gw} udp dport 53 dnat to {r}:53\n    \
             iifname \"{br}\" ip daddr {gw} tcp dport 53 dnat to {r}:53\n  }}\n"
        ));
    }
    replace_table(&net.table(), &body)
}

/// The name of a container's port table.
pub(crate) fn ports_table(container: &str) -> String {
    format!("kiln-ports-{}", &container[..container.len().min(12)])
}

/// DNAT of each published port to `ip`, for traffic from elsewhere
/// (prerouting) and from the host itself (output).
pub(crate) fn publish(container: &str, ip: Ipv4Addr, ports: &[PortMapping]) -> Result<()> {
    let mut rules = String::new();
    for p in ports {
        let to = match p.host_ip {
            Some(h) => format!("ip daddr {h}"),
            None => "fib daddr type local".to_string(),
        };
        rules.push_str(&format!(
            "    {to} {proto} dport {hp} dnat to {ip}:{cp}\n",
            proto = p.protocol,
            hp = p.host_port,
            cp = p.container_port
        ));
    }
    let body = format!(
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{rules}  }}\n  \
         chain output {{\n    type nat hook output priority -100; policy accept;\n{rules}  }}\n"
    );
    replace_table(&ports_table(container), &body)
}

/// The names of kiln's per-container port tables (`nft list tables`).
pub fn port_tables() -> Vec<String> {
    let out = Command::new("nft").args(["list", "tables"]).output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("table ip "))
        .filter(|t| t.starts_with("kiln-ports-"))
        .map(str::to_string)
        .collect()
}
