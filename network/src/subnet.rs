//! An IPv4 subnet (`10.77.0.0/16`) and the host's routes it must not
//! overlap.

use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// `A.B.C.D/N` (host bits are cleared).
    pub fn parse(s: &str) -> Option<Subnet> {
        let (addr, prefix) = s.split_once('/')?;
        let prefix: u8 = prefix.parse().ok().filter(|p| (8..=30).contains(p))?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        Some(Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.network)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = mask(self.prefix.min(other.prefix));
        u32::from(self.network) & m == u32::from(other.network) & m
    }

    /// The `n`th address (1 is the gateway's), None past the broadcast.
    pub fn host(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - self.prefix);
        (u64::from(n) < size - 1).then(|| Ipv4Addr::from(u32::from(self.network) + n))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// The host's IPv4 routes other than the default one and those through
/// `except` (`/proc/net/route`), and its nameservers' addresses as /32s:
/// a container subnet over any of them would cut the host off.
pub fn host_routes(except: &str) -> Vec<Subnet> {
    let mut out = Vec::new();
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(dest), Some(m)) = (f.get(1), f.get(7)) else {
            continue;
        };
        if f.first() == Some(&except) {
            continue;
        }
        let (Ok(dest), Ok(m)) = (u32::from_str_radix(dest, 16), u32::from_str_radix(m, 16)) else {
            continue;
        };
        // The address's bytes read as a little-endian number.
        let (dest, m) = (dest.swap_bytes(), m.swap_bytes());
        if m == 0 {
            continue;
        }
        out.push(Subnet {
            network: Ipv4Addr::from(dest),
            prefix: m.count_ones() as u8,
        });
    }
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for ns in nameservers(&resolv) {
        if let Ok(ip) = ns.parse::<Ipv4Addr>() {
            out.push(Subnet {
                network: ip,
                prefix: 32,
            });
        }
    }
    out
}

/// The `nameserver` addresses of a resolv.conf.
pub fn nameservers(resolv: &str) -> Vec<String> {
    resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_contain_and_overlap() {
        let s = Subnet::parse("10.77.3.4/16").unwrap();
        assert_eq!(s.to_string(), "10.77.0.0/16");
        assert!(s.contains("10.77.255.1".parse().unwrap()));
        assert!(!s.contains("10.78.0.1".parse().unwrap()));
        assert_eq!(s.host(1), Some("10.77.0.1".parse().unwrap()));
        assert_eq!(Subnet::parse("10.0.0.0/30").unwrap().host(3), None);
        assert!(s.overlaps(&Subnet::parse("10.0.0.0/8").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("192.0.2.0/24").unwrap()));
        assert!(Subnet::parse("10.0.0.0/33").is_none() && Subnet::parse("nope").is_none());
    }
}
