//! Published ports (`-p [IP:][HOST:]CONTAINER[/tcp|udp]`, `-P`).

use crate::{NetworkError, Result};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// None: every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    /// 0 until chosen: a free port is picked at start.
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

impl PortMapping {
    /// `-p`'s forms: `80`, `8080:80`, `127.0.0.1:8080:80`,
    /// `127.0.0.1::80`, each with an optional `/tcp` or `/udp`.
    pub fn parse(spec: &str) -> Result<PortMapping> {
        let bad = |why: &str| NetworkError::Invalid(format!("-p {spec}: {why}"));
        let (rest, protocol) = match spec.rsplit_once('/') {
            Some((r, p @ ("tcp" | "udp"))) => (r, p.to_string()),
            Some((_, p)) => return Err(bad(&format!("unknown protocol {p:?} (tcp or udp)"))),
            None => (spec, "tcp".to_string()),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [c] => ("", "", *c),
            [h, c] => ("", *h, *c),
            [i, h, c] => (*i, *h, *c),
            _ => return Err(bad("expected [IP:][HOST:]CONTAINER[/PROTOCOL]")),
        };
        let port = |s: &str, what: &str| -> Result<u16> {
            s.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                bad(&format!(
                    "{what} port {s:?} is not 1-65535 (ranges are not supported)"
                ))
            })
        };
        let host_ip = match ip {
            "" | "0.0.0.0" => None,
            i => Some(
                i.parse()
                    .map_err(|_| bad(&format!("{i:?} is not an IPv4 address")))?,
            ),
        };
        Ok(PortMapping {
            host_ip,
            host_port: if host.is_empty() {
                0
            } else {
                port(host, "host")?
            },
            container_port: port(container, "container")?,
            protocol,
        })
    }

    /// docker's `Ports` column form: `127.0.0.1:8080->80/tcp`.
    pub fn display(&self) -> String {
        format!(
            "{}:{}->{}/{}",
            self.host_ip
                .map_or("0.0.0.0".to_string(), |i| i.to_string()),
            self.host_port,
            self.container_port,
            self.protocol
        )
    }
}

/// `p` with a host port nothing on the host listens on: its own (checked
/// by binding it), or one the kernel picks.
pub(crate) fn claim(p: &PortMapping) -> Result<PortMapping> {
    let addr = std::net::SocketAddrV4::new(p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED), p.host_port);
    let bound = if p.protocol == "udp" {
        std::net::UdpSocket::bind(addr).and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind(addr).and_then(|s| s.local_addr())
    };
    let host_port = bound.map(|a| a.port()).map_err(|e| {
        NetworkError::Invalid(format!(
            "cannot publish {addr}/{}: {e} (the host or another container uses it)",
            p.protocol
        ))
    })?;
    Ok(PortMapping {
        host_port,
        ..p.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs_parse_as_docker_reads_them() {
        let p = PortMapping::parse("127.0.0.1:18081:80").unwrap();
        assert_eq!(p.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            (p.host_port, p.container_port, p.protocol.as_str()),
            (18081, 80, "tcp")
        );
        let p = PortMapping::parse("53/udp").unwrap();
        assert_eq!((p.host_ip, p.host_port, p.container_port), (None, 0, 53));
        assert_eq!(p.protocol, "udp");
        assert_eq!(PortMapping::parse("127.0.0.1::80").unwrap().host_port, 0);
        assert_eq!(
            PortMapping::parse("8080:80").unwrap().display(),
            "0.0.0.0:8080->80/tcp"
        );
        for bad in ["x", "80/sctp", "1:2:3:4", "8000-8010:80", "host:1:2", "0"] {
            assert!(PortMapping::parse(bad).is_err(), "{bad}");
        }
    }
}
