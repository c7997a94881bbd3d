//! Networks on disk: `<root>/networks/<name>/network.json` (what it is)
//! and `leases/` (who has which address, see `ipam.rs`). The default
//! network, `bridge`, is made on first use.

use crate::subnet::{host_routes, Subnet};
use crate::{io_at, NetworkError, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The default network's name, as docker's.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's bridge link.
pub const DEFAULT_BRIDGE: &str = "kiln0";
/// The default network's subnet unless `KILN_BRIDGE_SUBNET` says another.
pub const DEFAULT_SUBNET: &str = "10.77.0.0/16";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    pub subnet: String,
    pub gateway: Ipv4Addr,
    /// The bridge link on the host.
    pub bridge: String,
    pub created: String,
    /// No route out (`network create --internal`).
    #[serde(default)]
    pub internal: bool,
}

impl NetworkConfig {
    pub fn subnet(&self) -> Subnet {
        Subnet::parse(&self.subnet).unwrap_or(Subnet {
            network: self.gateway,
            prefix: 24,
        })
    }

    /// The name of its nftables table (by bridge: shared by every store
    /// on that bridge).
    pub fn table(&self) -> String {
        format!("kiln-{}", self.bridge)
    }
}

/// What `network create` asks for.
#[derive(Debug, Default, Clone)]
pub struct NetworkOptions {
    pub subnet: Option<String>,
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
}

/// Where a network's leases and lock live: by bridge, under /run, so
/// that every store using one bridge (the default `kiln0`) shares one
/// address space, and a reboot, which ends every container, clears them.
pub(crate) fn state_dir(config: &NetworkConfig) -> PathBuf {
    let base = std::env::var_os("KILN_RUN_DIR").unwrap_or_else(|| "/run/kiln".into());
    PathBuf::from(base).join("networks").join(&config.bridge)
}

pub struct Networks {
    dir: PathBuf,
}

pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 64
}

impl Networks {
    pub fn new(root: &Path) -> Networks {
        Networks {
            dir: root.join("networks"),
        }
    }

    /// The state directory of network `name` (see [`state_dir`]).
    pub(crate) fn dir_of(&self, name: &str) -> PathBuf {
        self.get(name).map(|c| state_dir(&c)).unwrap_or_default()
    }

    pub fn get(&self, name: &str) -> Result<NetworkConfig> {
        let path = self.dir.join(name).join("network.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| NetworkError::Invalid(format!("{}: {e}", path.display()))),
            Err(_) if name == DEFAULT_NETWORK => self.create_default(),
            Err(_) => {
                // An id or a unique id prefix.
                let found: Vec<NetworkConfig> = self
                    .list()
                    .into_iter()
                    .filter(|n| name.len() >= 3 && n.id.starts_with(name))
                    .collect();
                match found.as_slice() {
                    [one] => Ok(one.clone()),
                    _ => Err(NetworkError::NoSuchNetwork(name.to_string())),
                }
            }
        }
    }

    pub fn list(&self) -> Vec<NetworkConfig> {
        let mut out: Vec<NetworkConfig> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| fs::read(e.path().join("network.json")).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn create_default(&self) -> Result<NetworkConfig> {
        let wanted = std::env::var("KILN_BRIDGE_SUBNET").ok();
        let opts = NetworkOptions {
            subnet: Some(wanted.unwrap_or_else(|| DEFAULT_SUBNET.into())),
            ..Default::default()
        };
        match self.create_as(DEFAULT_NETWORK, DEFAULT_BRIDGE.into(), &opts) {
            // Another kiln made it first.
            Err(NetworkError::Exists(_)) => self.get(DEFAULT_NETWORK),
            other => other,
        }
    }

    /// `network create NAME`.
    pub fn create(&self, name: &str, opts: &NetworkOptions) -> Result<NetworkConfig> {
        if !valid_name(name) || name == DEFAULT_NETWORK || name == "host" || name == "none" {
            return Err(NetworkError::Invalid(format!(
                "invalid network name {name:?}: [a-zA-Z0-9][a-zA-Z0-9_.-]*, not bridge, host or none"
            )));
        }
        let bridge = format!("kbr-{}", &random_id()[..8]);
        self.create_as(name, bridge, opts)
    }

    fn create_as(
        &self,
        name: &str,
        bridge: String,
        opts: &NetworkOptions,
    ) -> Result<NetworkConfig> {
        let taken: Vec<Subnet> = self.list().iter().map(NetworkConfig::subnet).collect();
        // Its own bridge's route (another store made it) is no clash.
        let routes = host_routes(&bridge);
        let clash = |s: &Subnet| {
            taken.iter().any(|t| t.overlaps(s)) || routes.iter().any(|r| r.overlaps(s))
        };
        let subnet = match &opts.subnet {
            Some(s) => {
                let subnet = Subnet::parse(s).ok_or_else(|| {
                    NetworkError::Invalid(format!(
                        "subnet {s}: expected A.B.C.D/N with N from 8 to 30"
                    ))
                })?;
                if clash(&subnet) {
                    return Err(NetworkError::Invalid(format!(
                        "subnet {subnet} overlaps a route of this host or another kiln network{}",
                        if name == DEFAULT_NETWORK {
                            " (set KILN_BRIDGE_SUBNET to another)"
                        } else {
                            ""
                        }
                    )));
                }
                subnet
            }
            None => (78..=99)
                .filter_map(|b| Subnet::parse(&format!("10.{b}.0.0/16")))
                .find(|s| !clash(s))
                .ok_or_else(|| {
                    NetworkError::Invalid("no free 10.78-99.0.0/16 subnet: give --subnet".into())
                })?,
        };
        let gateway = match opts.gateway {
            Some(g) if subnet.contains(g) => g,
            Some(g) => {
                return Err(NetworkError::Invalid(format!(
                    "gateway {g} is not in subnet {subnet}"
                )))
            }
            None => subnet.host(1).unwrap_or(subnet.network),
        };
        let config = NetworkConfig {
            name: name.to_string(),
            id: random_id(),
            subnet: subnet.to_string(),
            gateway,
            bridge,
            created: now(),
            internal: opts.internal,
        };
        fs::create_dir_all(&self.dir).map_err(io_at(&self.dir))?;
        // Made under a temporary name and renamed: a reader sees the whole
        // network or none, and two creators cannot both win.
        let tmp = self.dir.join(format!(".{name}.{}", std::process::id()));
        fs::create_dir_all(&tmp).map_err(io_at(&tmp))?;
        let bytes =
            serde_json::to_vec_pretty(&config).map_err(|e| NetworkError::Invalid(e.to_string()))?;
        fs::write(tmp.join("network.json"), bytes).map_err(io_at(&tmp))?;
        let dir = self.dir.join(name);
        if let Err(e) = fs::rename(&tmp, &dir) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(if dir.exists() {
                NetworkError::Exists(name.to_string())
            } else {
                io_at(&dir)(e)
            });
        }
        Ok(config)
    }

    /// Removes the definition (the caller checked that no container uses
    /// it and took its bridge down).
    pub(crate) fn remove_definition(&self, name: &str) -> Result<()> {
        let dir = self.dir.join(name);
        let gone = self
            .dir
            .join(format!(".gone-{name}-{}", std::process::id()));
        fs::rename(&dir, &gone).map_err(io_at(&dir))?;
        fs::remove_dir_all(&gone).map_err(io_at(&gone))
    }
}

/// 64 random hex digits (a network's id; a build step's, for its veth).
pub fn random_id() -> String {
    use std::io::Read;
    let mut buf = [0u8; 32];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3339 UTC, seconds.
pub(crate) fn now() -> String {
    kiln_store::rfc3339(kiln_store::time::now())
}
