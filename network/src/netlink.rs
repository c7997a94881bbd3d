//! The few rtnetlink requests a container network needs, sent on a
//! synchronous NETLINK_ROUTE socket: create a bridge or a veth pair (its
//! peer made directly in the container's namespace), bring a link up, add
//! an IPv4 address and a default route, delete a link, find an index.
//!
//! Hand-written rather than through the `rtnetlink` crate: that one is
//! async-only (a tokio runtime per container) and brings `nix` and
//! `futures` for six message types, whose layout is short and fixed
//! (`linux/rtnetlink.h`, `linux/if_link.h`).

use rustix::net::{AddressFamily, SocketFlags, SocketType};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const IFF_UP: u32 = 0x1;
const NLA_F_NESTED: u16 = 0x8000;

/// A message body being built: fixed header, then attributes.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }

    /// `struct ifinfomsg`: family, pad, type, index, flags, change.
    fn ifinfo(self, index: u32, flags: u32, change: u32) -> Self {
        let mut b = vec![0u8; 4];
        b.extend_from_slice(&index.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&change.to_ne_bytes());
        self.bytes(&b)
    }

    fn attr(mut self, kind: u16, data: &[u8]) -> Self {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }

    fn str_attr(self, kind: u16, s: &str) -> Self {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    fn u32_attr(self, kind: u16, v: u32) -> Self {
        self.attr(kind, &v.to_ne_bytes())
    }

    fn nested(self, kind: u16, inner: Body) -> Self {
        self.attr(kind | NLA_F_NESTED, &inner.0)
    }
}

pub(crate) struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub(crate) fn open() -> io::Result<Netlink> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None, // NETLINK_ROUTE is protocol 0
        )?;
        Ok(Netlink { fd, seq: 0 })
    }

    fn send(&mut self, kind: u16, flags: u16, body: &Body) -> io::Result<u32> {
        self.seq += 1;
        let len = 16 + body.0.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&body.0);
        let kernel = rustix::net::netlink::SocketAddrNetlink::new(0, 0);
        rustix::net::sendto(&self.fd, &msg, rustix::net::SendFlags::empty(), &kernel)?;
        Ok(self.seq)
    }

    /// The next message answering `seq`: (type, payload after the header).
    fn receive(&mut self, seq: u32) -> io::Result<(u16, Vec<u8>)> {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = rustix::io::read(&self.fd, &mut buf)?;
            let mut at = 0;
            while at + 16 <= n {
                let len =
                    u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or_default()) as usize;
                let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
                let got = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().unwrap_or_default());
                if len < 16 || at + len > n {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "short netlink reply",
                    ));
                }
                if got == seq {
                    return Ok((kind, buf[at + 16..at + len].to_vec()));
                }
                at += (len + 3) & !3;
            }
        }
    }

    /// Sends a request and waits for its acknowledgement.
    fn request(&mut self, kind: u16, flags: u16, body: Body) -> io::Result<()> {
        let seq = self.send(kind, flags | NLM_F_ACK, &body)?;
        let (reply, payload) = self.receive(seq)?;
        if reply == NLMSG_ERROR && payload.len() >= 4 {
            let errno = i32::from_ne_bytes(payload[..4].try_into().unwrap_or_default());
            if errno != 0 {
                return Err(io::Error::from_raw_os_error(-errno));
            }
        }
        Ok(())
    }

    /// The index of link `name`, if it exists.
    pub(crate) fn index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let body = Body::default().ifinfo(0, 0, 0).str_attr(IFLA_IFNAME, name);
        let seq = self.send(RTM_GETLINK, 0, &body)?;
        let (reply, payload) = self.receive(seq)?;
        if reply == NLMSG_ERROR {
            let errno = i32::from_ne_bytes(payload[..4].try_into().unwrap_or_default());
            return match -errno {
                19 => Ok(None), // ENODEV
                e => Err(io::Error::from_raw_os_error(e)),
            };
        }
        Ok(payload
            .get(4..8)
            .map(|b| u32::from_ne_bytes(b.try_into().unwrap_or_default())))
    }

    /// A bridge named `name` (down).
    pub(crate) fn create_bridge(&mut self, name: &str) -> io::Result<()> {
        let body = Body::default()
            .ifinfo(0, 0, 0)
            .str_attr(IFLA_IFNAME, name)
            .nested(
                IFLA_LINKINFO,
                Body::default().str_attr(IFLA_INFO_KIND, "bridge"),
            );
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)
    }

    /// A veth pair: `host` here, enslaved to bridge `master` and up;
    /// `peer` made directly in the namespace `netns`, with `mtu`.
    pub(crate) fn create_veth(
        &mut self,
        host: &str,
        master: u32,
        peer: &str,
        netns: BorrowedFd<'_>,
        mtu: u32,
    ) -> io::Result<()> {
        let peer_msg = Body::default()
            .ifinfo(0, 0, 0)
            .str_attr(IFLA_IFNAME, peer)
            .u32_attr(IFLA_MTU, mtu)
            .u32_attr(IFLA_NET_NS_FD, netns.as_raw_fd() as u32);
        let info = Body::default().str_attr(IFLA_INFO_KIND, "veth").nested(
            IFLA_INFO_DATA,
            Body::default().attr(VETH_INFO_PEER | NLA_F_NESTED, &peer_msg.0),
        );
        let body = Body::default()
            .ifinfo(0, IFF_UP, IFF_UP)
            .str_attr(IFLA_IFNAME, host)
            .u32_attr(IFLA_MTU, mtu)
            .u32_attr(IFLA_MASTER, master)
            .nested(IFLA_LINKINFO, info);
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)
    }

    pub(crate) fn set_up(&mut self, index: u32) -> io::Result<()> {
        let body = Body::default().ifinfo(index, IFF_UP, IFF_UP);
        self.request(RTM_NEWLINK, 0, body)
    }

    pub(crate) fn delete(&mut self, name: &str) -> io::Result<()> {
        let body = Body::default().ifinfo(0, 0, 0).str_attr(IFLA_IFNAME, name);
        self.request(RTM_DELLINK, 0, body)
    }

    /// `ip/prefix` on link `index`; an existing one is fine.
    pub(crate) fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        let mut header = vec![AddressFamily::INET.as_raw() as u8, prefix, 0, 0];
        header.extend_from_slice(&index.to_ne_bytes());
        let body = Body::default()
            .bytes(&header)
            .attr(IFA_LOCAL, &ip.octets())
            .attr(IFA_ADDRESS, &ip.octets());
        match self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body) {
            Err(e) if e.raw_os_error() == Some(17) => Ok(()), // EEXIST
            other => other,
        }
    }

    /// The default route through `gateway` on link `index`.
    pub(crate) fn add_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> io::Result<()> {
        // struct rtmsg: family, dst_len, src_len, tos, table (main),
        // protocol (boot), scope (universe), type (unicast), flags.
        let header = [
            AddressFamily::INET.as_raw() as u8,
            0,
            0,
            0,
            254,
            3,
            0,
            1,
            0,
            0,
            0,
            0,
        ];
        let body = Body::default()
            .bytes(&header)
            .attr(RTA_GATEWAY, &gateway.octets())
            .u32_attr(RTA_OIF, index);
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)
    }
}
