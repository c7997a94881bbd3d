//! Container networks (`kiln run --network`, `-p`, `kiln network`):
//! bridges on the host, a network namespace per container made and wired
//! before it starts, address leases in the store, NAT and published ports
//! with nftables, names through /etc/hosts.
//!
//! Modules: `networks` (definitions on disk, the default `bridge`),
//! `ipam` (leases), `subnet`, `bridge` (the host side of a network),
//! `netlink` (the rtnetlink requests), `nft` (NAT tables), `ports` (`-p`),
//! `attach` (a container's attachment and its release).
//!
//! Bridges need root in the host's network namespace (veths onto a host
//! bridge, nftables); a rootless kiln's containers get slirp4netns
//! instead (`slirp`). The executor only joins the namespace made here.

mod attach;
mod bridge;
mod ipam;
mod netlink;
mod networks;
mod nft;
mod ports;
mod slirp;
mod subnet;

pub use attach::{
    add_host_line, connect_running, disconnect_running, endpoints, leases_of, release,
    remove_network, sweep, AttachRequest, Attachment, NetworkRequest,
};
pub use ipam::Lease;
pub use networks::{
    random_id, valid_name, NetworkConfig, NetworkOptions, Networks, DEFAULT_BRIDGE,
    DEFAULT_NETWORK, DEFAULT_SUBNET,
};
pub use nft::port_tables;
pub use ports::PortMapping;
pub use slirp::available as slirp_available;
pub use subnet::Subnet;

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}: {1}")]
    Netlink(&'static str, #[source] std::io::Error),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, NetworkError>;

pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> NetworkError + '_ {
    move |source| NetworkError::Io {
        path: path.to_path_buf(),
        source,
    }
}
