//! Address leases: `<network>/leases/<ip>`, one file per address in use,
//! made with `O_EXCL` (two containers can never get one address). A lease
//! names its holder — the process supervising the container — by pid and
//! start time; a lease whose holder is gone (a crash, a killed monitor) is
//! stale, and the next allocation or sweep takes it back.

use crate::ports::PortMapping;
use crate::{io_at, NetworkError, Result};
use kiln_store::ProcessId;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lease {
    pub ip: Ipv4Addr,
    /// The container's id and name.
    pub container: String,
    pub name: String,
    pub hostname: String,
    /// `--network-alias`es on this network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `pid:start-time` of the supervising process.
    pub holder: String,
    /// The container's /etc/hosts on the host, rewritten when another
    /// container joins or leaves a network it is on.
    #[serde(default)]
    pub hosts_path: Option<PathBuf>,
    /// Its `--add-host` lines (kept to rewrite its /etc/hosts).
    #[serde(default)]
    pub add_hosts: Vec<String>,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
}

impl Lease {
    pub fn live(&self) -> bool {
        self.holder.parse::<ProcessId>().is_ok_and(|p| p.alive())
    }
}

/// The leases of the network whose directory is `net_dir`.
pub(crate) fn leases(net_dir: &Path) -> Vec<(PathBuf, Lease)> {
    fs::read_dir(net_dir.join("leases"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let lease = serde_json::from_slice(&fs::read(e.path()).ok()?).ok()?;
            Some((e.path(), lease))
        })
        .collect()
}

/// Takes the first free address from `first` on (skipping `gateway`), for
/// `lease` (its `ip` is filled in).
pub(crate) fn allocate(
    net_dir: &Path,
    subnet: crate::Subnet,
    gateway: Ipv4Addr,
    mut lease: Lease,
) -> Result<Lease> {
    let dir = net_dir.join("leases");
    fs::create_dir_all(&dir).map_err(io_at(&dir))?;
    for n in 2.. {
        let Some(ip) = subnet.host(n) else { break };
        if ip == gateway {
            continue;
        }
        let path = dir.join(ip.to_string());
        lease.ip = ip;
        let bytes = serde_json::to_vec(&lease).map_err(|e| NetworkError::Invalid(e.to_string()))?;
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                // A reader may see it empty for a moment: it skips it.
                f.write_all(&bytes).map_err(io_at(&path))?;
                return Ok(lease);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_at(&path)(e)),
        }
    }
    Err(NetworkError::Invalid(format!(
        "network {subnet} has no free address"
    )))
}

/// Removes leases whose holder is gone; returns them (their port tables
/// need removing too).
pub(crate) fn sweep(net_dir: &Path) -> Vec<Lease> {
    let mut gone = Vec::new();
    for (path, lease) in leases(net_dir) {
        if !lease.live() && fs::remove_file(&path).is_ok() {
            gone.push(lease);
        }
    }
    gone
}

/// Removes `container`'s lease on this network, if any.
pub(crate) fn release(net_dir: &Path, container: &str) -> Option<Lease> {
    leases(net_dir)
        .into_iter()
        .find(|(_, l)| l.container == container)
        .and_then(|(path, l)| fs::remove_file(path).ok().map(|_| l))
}

/// Removes the lease of `ip` (a connect that failed halfway).
pub(crate) fn release_on(net_dir: &Path, ip: Ipv4Addr) -> std::io::Result<()> {
    fs::remove_file(net_dir.join("leases").join(ip.to_string()))
}
