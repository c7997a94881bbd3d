//! A network's bridge on the host: made with its gateway address, up,
//! forwarding on, loopback-sourced NAT allowed through it (for ports
//! published on 127.0.0.1), and its nftables table — once, under the
//! network's lock, whoever gets there first.

use crate::netlink::Netlink;
use crate::networks::NetworkConfig;
use crate::{nft, NetworkError, Result};
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

fn sysctl(path: &str, value: &str) -> Result<()> {
    fs::write(path, value)
        .map_err(|e| NetworkError::Invalid(format!("setting {path} to {value}: {e}")))
}

/// The host's first nameserver when it is a loopback address (a stub
/// resolver like systemd-resolved's 127.0.0.53): containers reach it
/// through a DNAT on the gateway.
pub(crate) fn loopback_resolver() -> Option<Ipv4Addr> {
    let resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    crate::subnet::nameservers(&resolv)
        .iter()
        .filter_map(|n| n.parse::<Ipv4Addr>().ok())
        .find(|ip| ip.is_loopback())
}

/// An exclusive lock on `dir/lock`, held while the guard lives.
pub(crate) fn lock(dir: &Path) -> Result<fs::File> {
    fs::create_dir_all(dir).map_err(crate::io_at(dir))?;
    let path = dir.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(crate::io_at(&path))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| crate::io_at(&path)(e.into()))?;
    Ok(file)
}

/// The bridge's link index, the bridge made first if missing.
pub(crate) fn ensure(net: &NetworkConfig, net_dir: &Path) -> Result<u32> {
    let mut nl = Netlink::open().map_err(|e| NetworkError::Netlink("opening", e))?;
    if let Some(index) = nl
        .index(&net.bridge)
        .map_err(|e| NetworkError::Netlink("finding the bridge", e))?
    {
        return Ok(index);
    }
    let _lock = lock(net_dir)?;
    if let Some(index) = nl
        .index(&net.bridge)
        .map_err(|e| NetworkError::Netlink("finding the bridge", e))?
    {
        return Ok(index);
    }
    match nl.create_bridge(&net.bridge) {
        Err(e) if e.raw_os_error() == Some(17) => {}
        other => other.map_err(|e| NetworkError::Netlink("creating the bridge", e))?,
    }
    let index = nl
        .index(&net.bridge)
        .map_err(|e| NetworkError::Netlink("finding the bridge", e))?
        .ok_or_else(|| NetworkError::Invalid(format!("bridge {} vanished", net.bridge)))?;
    let subnet = net.subnet();
    nl.add_address(index, net.gateway, subnet.prefix)
        .map_err(|e| NetworkError::Netlink("addressing the bridge", e))?;
    nl.set_up(index)
        .map_err(|e| NetworkError::Netlink("bringing the bridge up", e))?;
    if !net.internal {
        sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    }
    sysctl(
        &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
        "1",
    )?;
    nft::network_table(net, loopback_resolver())?;
    if !net.internal {
        allow_forwarding_past_iptables(&net.bridge);
    }
    Ok(index)
}

/// Docker sets iptables' FORWARD policy to DROP, and a packet must pass
/// every table's forward hook, so on a host with Docker a bridge's traffic
/// out would die there whatever kiln's own table says. Then kiln adds
/// what Docker's docs say to add for another bridge: accept from it, and
/// replies to it (in DOCKER-USER when it exists, which Docker evaluates
/// first). Best effort: a host without iptables has no such policy.
fn allow_forwarding_past_iptables(bridge: &str) {
    let run = |args: &[&str]| {
        std::process::Command::new("iptables")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let policy = std::process::Command::new("iptables")
        .args(["-S", "FORWARD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !policy.lines().any(|l| l == "-P FORWARD DROP") {
        return;
    }
    let chain = if run(&["-S", "DOCKER-USER"]) {
        "DOCKER-USER"
    } else {
        "FORWARD"
    };
    let rules: [&[&str]; 2] = [
        &["-i", bridge, "-j", "ACCEPT"],
        &[
            "-o",
            bridge,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED",
            "-j",
            "ACCEPT",
        ],
    ];
    for rule in rules {
        let mut check = vec!["-C", chain];
        check.extend_from_slice(rule);
        if !run(&check) {
            let mut insert = vec!["-I", chain];
            insert.extend_from_slice(rule);
            run(&insert);
        }
    }
}

/// Takes the bridge and its table away (`network rm`).
pub(crate) fn remove(net: &NetworkConfig) -> Result<()> {
    let mut nl = Netlink::open().map_err(|e| NetworkError::Netlink("opening", e))?;
    match nl.delete(&net.bridge) {
        Err(e) if e.raw_os_error() == Some(19) => {} // already gone
        other => other.map_err(|e| NetworkError::Netlink("deleting the bridge", e))?,
    }
    nft::delete_table(&net.table())
}
