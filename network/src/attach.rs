//! A container on its networks: a network namespace made before it
//! starts, an address leased on each network, a veth pair per network
//! (`ethN` inside, `kv…` on the bridge), the default route, its published
//! ports, and /etc/hosts lines naming the other containers on its
//! networks (whose own /etc/hosts are rewritten to name it). Released
//! when dropped; what a crash leaves is swept on the next use: the
//! namespace and its veths die with the container's last process, a
//! stale lease and its port table go with the next allocation.
//!
//! Name resolution is by /etc/hosts rather than an embedded DNS server:
//! kiln has no daemon to run one, and the files are rewritten in place
//! (the container's bind mount follows the inode) as containers come
//! and go.

use crate::ipam::{self, Lease};
use crate::netlink::Netlink;
use crate::networks::{state_dir, NetworkConfig, Networks};
use crate::ports::{self, PortMapping};
use crate::{bridge, nft, NetworkError, Result};
use kiln_store::ProcessId;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// veth MTU (the bridge takes its ports').
const MTU: u32 = 1500;

/// One network a container joins.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub name: String,
    pub aliases: Vec<String>,
}

/// What a container's network attachment is made from.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    /// The container's id and name.
    pub container: String,
    pub name: String,
    pub hostname: String,
    pub networks: Vec<NetworkRequest>,
    pub ports: Vec<PortMapping>,
    /// The container's /etc/hosts as the host sees it (rewritten when
    /// others join); None for a build step.
    pub hosts_path: Option<PathBuf>,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<String>,
    /// `--dns` servers (else the host's, or the stub on the gateway).
    pub dns: Vec<String>,
}

impl AttachRequest {
    /// The lease this container holds on a network (its `ip` filled in
    /// by the allocation).
    fn lease(&self, aliases: &[String], holder: &str, ports: Vec<PortMapping>) -> Lease {
        Lease {
            ip: Ipv4Addr::UNSPECIFIED,
            container: self.container.clone(),
            name: self.name.clone(),
            hostname: self.hostname.clone(),
            aliases: aliases.to_vec(),
            holder: holder.to_string(),
            hosts_path: self.hosts_path.clone(),
            add_hosts: self.add_hosts.clone(),
            ports,
        }
    }
}

/// A container's network, held while it runs.
pub struct Attachment {
    root: PathBuf,
    container: String,
    pub netns: Arc<OwnedFd>,
    /// Its address on the first network.
    pub address: Ipv4Addr,
    /// Lines for its /etc/hosts beyond localhost and its own name.
    pub extra_hosts: Vec<String>,
    pub resolv_conf: String,
    /// Published ports, host ports chosen.
    pub ports: Vec<PortMapping>,
    networks: Vec<String>,
    /// The host sides of its veths, deleted on release unless
    /// [`Attachment::leave_links_to_the_kernel`]: the kernel frees a dead
    /// namespace's links on its own, but late under load (a queue that
    /// waits for RCU grace periods), and a deletion costs ~25 ms.
    veths: Vec<String>,
    delete_veths: bool,
    /// A rootless container's user-mode network.
    _slirp: Option<crate::slirp::Slirp>,
}

/// `--add-host NAME:IP` as an /etc/hosts line.
pub fn add_host_line(spec: &str) -> Result<String> {
    let (name, ip) = spec
        .split_once(':')
        .ok_or_else(|| NetworkError::Invalid(format!("--add-host {spec}: expected NAME:IP")))?;
    let ip: std::net::IpAddr = ip.trim_matches(['[', ']']).parse().map_err(|_| {
        NetworkError::Invalid(format!("--add-host {spec}: {ip:?} is not an IP address"))
    })?;
    Ok(format!("{ip}\t{name}"))
}

fn peer_line(l: &Lease) -> String {
    let mut names = vec![l.name.clone()];
    for n in std::iter::once(&l.hostname).chain(&l.aliases) {
        if !n.is_empty() && !names.contains(n) {
            names.push(n.clone());
        }
    }
    format!("{}\t{}", l.ip, names.join(" "))
}

/// The /etc/hosts lines for `container` on `networks`: its `--add-host`s,
/// then every other live container on them.
fn extra_hosts(
    nets: &Networks,
    networks: &[String],
    container: &str,
    add_hosts: &[String],
) -> Vec<String> {
    let mut lines = add_hosts.to_vec();
    for name in networks {
        for (_, l) in ipam::leases(&nets.dir_of(name)) {
            let line = peer_line(&l);
            if l.container != container && l.live() && !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    lines
}

/// Rewrites the /etc/hosts of every other running container on
/// `networks` (each knows its own hostname, address and extras).
fn refresh_peers(nets: &Networks, networks: &[String], except: &str) {
    let mut done = Vec::new();
    for name in networks {
        for (_, l) in ipam::leases(&nets.dir_of(name)) {
            let Some(path) = &l.hosts_path else { continue };
            if l.container == except || !l.live() || done.contains(&l.container) {
                continue;
            }
            done.push(l.container.clone());
            let theirs: Vec<String> = all_networks_of(nets, &l.container);
            let extra = extra_hosts(nets, &theirs, &l.container, &l.add_hosts);
            let text = kiln_executor::hosts_file(&l.hostname, Some(l.ip.into()), &extra);
            // In place: the container's bind mount holds this inode.
            let _ = std::fs::write(path, text);
        }
    }
}

/// The networks `container` holds a lease on.
fn all_networks_of(nets: &Networks, container: &str) -> Vec<String> {
    nets.list()
        .into_iter()
        .filter(|n| {
            ipam::leases(&state_dir(n))
                .iter()
                .any(|(_, l)| l.container == container)
        })
        .map(|n| n.name)
        .collect()
}

/// Every live lease's published ports (a host port is published once).
fn ports_in_use(nets: &Networks) -> Vec<PortMapping> {
    nets.list()
        .iter()
        .flat_map(|n| ipam::leases(&state_dir(n)))
        .filter(|(_, l)| l.live())
        .flat_map(|(_, l)| l.ports)
        .collect()
}

/// The resolv.conf a container on `net` gets.
fn resolv_conf(net: &NetworkConfig, dns: &[String]) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let others: String = host
        .lines()
        .filter(|l| !l.trim_start().starts_with("nameserver"))
        .map(|l| format!("{l}\n"))
        .collect();
    let servers: Vec<String> = if !dns.is_empty() {
        dns.to_vec()
    } else {
        // A loopback resolver is unreachable from the container's own
        // namespace: it asks the gateway, which the network's table
        // forwards to it.
        crate::subnet::nameservers(&host)
            .into_iter()
            .map(|s| match s.parse::<Ipv4Addr>() {
                Ok(ip) if ip.is_loopback() => net.gateway.to_string(),
                _ => s,
            })
            .fold(Vec::new(), |mut v, s| {
                if !v.contains(&s) {
                    v.push(s);
                }
                v
            })
    };
    let mut text: String = servers
        .iter()
        .map(|s| format!("nameserver {s}\n"))
        .collect();
    text.push_str(&others);
    text
}

/// The host-side name of a container's veth on its `n`th network: `kv`,
/// 8 hex of the container's id, 4 random ones, `n`. Never reused by the
/// next run: a pair left to the kernel may still exist when the
/// container starts again.
fn veth_name(container: &str, n: usize) -> String {
    let random = &crate::networks::random_id()[..4];
    format!("kv{}{random}{n}", &container[..container.len().min(8)])
}

impl Attachment {
    /// Makes the namespace and wires it to `req.networks`.
    pub fn setup(root: &Path, req: &AttachRequest) -> Result<Attachment> {
        if kiln_executor::rootless::in_user_namespace() {
            return Attachment::setup_rootless(root, req);
        }
        let nets = Networks::new(root);
        // What crashed containers left: their addresses and ports.
        sweep(root);
        let mut configs = Vec::new();
        for n in &req.networks {
            let config = nets.get(&n.name)?;
            let index = bridge::ensure(&config, &state_dir(&config))?;
            configs.push((config, index, n.aliases.clone()));
        }
        let first = configs
            .first()
            .map(|(c, _, _)| c.clone())
            .ok_or_else(|| NetworkError::Invalid("no network to attach to".into()))?;
        // Host ports first: a clash fails before anything is made.
        let taken = ports_in_use(&nets);
        let mut published = Vec::new();
        for p in &req.ports {
            if p.host_port != 0
                && taken.iter().chain(&published).any(|t: &PortMapping| {
                    t.host_port == p.host_port
                        && t.protocol == p.protocol
                        && (t.host_ip.is_none() || p.host_ip.is_none() || t.host_ip == p.host_ip)
                })
            {
                return Err(NetworkError::Invalid(format!(
                    "cannot publish {}: port {} is already allocated to another container",
                    p.display(),
                    p.host_port
                )));
            }
            published.push(ports::claim(p)?);
        }
        let netns = kiln_executor::new_network_namespace()
            .map_err(|e| NetworkError::Netlink("making a network namespace", e))?;
        let mut attachment = Attachment {
            root: root.to_path_buf(),
            container: req.container.clone(),
            netns: Arc::new(netns),
            address: Ipv4Addr::UNSPECIFIED,
            extra_hosts: Vec::new(),
            resolv_conf: resolv_conf(&first, &req.dns),
            ports: published,
            networks: Vec::new(),
            veths: Vec::new(),
            delete_veths: true,
            _slirp: None,
        };
        let holder = ProcessId::current().to_string();
        let mut addresses = Vec::new();
        for (n, (config, bridge_index, aliases)) in configs.iter().enumerate() {
            let lease = ipam::allocate(
                &state_dir(config),
                config.subnet(),
                config.gateway,
                req.lease(
                    aliases,
                    &holder,
                    if n == 0 {
                        attachment.ports.clone()
                    } else {
                        Vec::new()
                    },
                ),
            )?;
            // Dropping the attachment from here on releases the lease.
            attachment.networks.push(config.name.clone());
            let mut nl = Netlink::open().map_err(|e| NetworkError::Netlink("opening", e))?;
            let host_side = veth_name(&req.container, n);
            let mut made = nl.create_veth(
                &host_side,
                *bridge_index,
                &format!("eth{n}"),
                attachment.netns.as_fd(),
                MTU,
            );
            // A name collision (the random part repeated): replace it.
            if made.as_ref().is_err_and(|e| e.raw_os_error() == Some(17)) {
                let _ = nl.delete(&host_side);
                made = nl.create_veth(
                    &host_side,
                    *bridge_index,
                    &format!("eth{n}"),
                    attachment.netns.as_fd(),
                    MTU,
                );
            }
            made.map_err(|e| NetworkError::Netlink("creating the veth pair", e))?;
            attachment.veths.push(host_side);
            addresses.push((
                n,
                lease.ip,
                config.subnet().prefix,
                config.gateway,
                config.internal,
            ));
        }
        attachment.address = addresses[0].1;
        kiln_executor::in_network_namespace(attachment.netns.as_fd(), || {
            let mut nl = Netlink::open()?;
            nl.set_up(1)?; // lo is always 1 in a new namespace
            for (n, ip, prefix, gateway, internal) in &addresses {
                let index = nl.index(&format!("eth{n}"))?.ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "eth missing")
                })?;
                nl.add_address(index, *ip, *prefix)?;
                nl.set_up(index)?;
                if *n == 0 && !internal {
                    nl.add_default_route(index, *gateway)?;
                }
            }
            Ok(())
        })
        .map_err(|e| NetworkError::Netlink("configuring the container's interfaces", e))?;
        if !attachment.ports.is_empty() {
            nft::publish(&req.container, attachment.address, &attachment.ports)?;
        }
        attachment.extra_hosts =
            extra_hosts(&nets, &attachment.networks, &req.container, &req.add_hosts);
        refresh_peers(&nets, &attachment.networks, &req.container);
        Ok(attachment)
    }
}

impl Attachment {
    /// Rootless: the default network only, through slirp4netns (its
    /// address is always 10.0.2.100; names of other containers are not
    /// known; published ports are forwarded by slirp4netns itself).
    fn setup_rootless(root: &Path, req: &AttachRequest) -> Result<Attachment> {
        if req
            .networks
            .iter()
            .any(|n| n.name != crate::DEFAULT_NETWORK)
        {
            return Err(NetworkError::Invalid(
                "a rootless kiln has only the default network (bridge, through slirp4netns)".into(),
            ));
        }
        let ports = req
            .ports
            .iter()
            .map(ports::claim)
            .collect::<Result<Vec<_>>>()?;
        let netns = kiln_executor::new_network_namespace()
            .map_err(|e| NetworkError::Netlink("making a network namespace", e))?;
        kiln_executor::in_network_namespace(netns.as_fd(), || Netlink::open()?.set_up(1))
            .map_err(|e| NetworkError::Netlink("bringing lo up", e))?;
        let api = std::env::temp_dir().join(format!(
            "kiln-slirp-{}-{}.sock",
            &req.container[..req.container.len().min(12)],
            std::process::id()
        ));
        let slirp = crate::slirp::Slirp::start(netns.as_fd(), &api, &ports)?;
        let dns = if req.dns.is_empty() {
            vec![crate::slirp::DNS.to_string()]
        } else {
            req.dns.clone()
        };
        Ok(Attachment {
            root: root.to_path_buf(),
            container: req.container.clone(),
            netns: Arc::new(netns),
            address: crate::slirp::ADDRESS,
            extra_hosts: req.add_hosts.clone(),
            resolv_conf: dns.iter().map(|d| format!("nameserver {d}\n")).collect(),
            ports,
            networks: Vec::new(),
            veths: Vec::new(),
            delete_veths: false,
            _slirp: Some(slirp),
        })
    }
}

/// Removes `container`'s leases on every network (and its port table),
/// and tells the containers it shared a network with.
pub fn release(root: &Path, container: &str) {
    let nets = Networks::new(root);
    let mut left = Vec::new();
    for n in nets.list() {
        if let Some(lease) = ipam::release(&state_dir(&n), container) {
            if !lease.ports.is_empty() {
                let _ = nft::delete_table(&nft::ports_table(container));
            }
            left.push(n.name);
        }
    }
    refresh_peers(&nets, &left, container);
}

impl Attachment {
    /// Release leaves the veths for the kernel to free with the namespace
    /// (a foreground `kiln run`, whose caller waits for it to exit).
    pub fn leave_links_to_the_kernel(&mut self) {
        self.delete_veths = false;
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if self.delete_veths {
            if let Ok(mut nl) = Netlink::open() {
                for v in &self.veths {
                    let _ = nl.delete(v);
                }
            }
        }
        if !self.networks.is_empty() {
            release(&self.root, &self.container);
        }
    }
}

/// Takes back the leases (and port tables) of containers whose
/// supervisor is gone.
pub fn sweep(root: &Path) {
    let nets = Networks::new(root);
    for n in nets.list() {
        for lease in ipam::sweep(&state_dir(&n)) {
            if !lease.ports.is_empty() {
                let _ = nft::delete_table(&nft::ports_table(&lease.container));
            }
        }
    }
}

/// `network rm`: refused while a container uses it; the default network
/// is kept (as docker's).
pub fn remove_network(root: &Path, name: &str) -> Result<()> {
    let nets = Networks::new(root);
    let config = nets.get(name)?;
    if config.name == crate::DEFAULT_NETWORK {
        return Err(NetworkError::Invalid(
            "bridge is a pre-defined network and cannot be removed".into(),
        ));
    }
    sweep(root);
    let dir = state_dir(&config);
    if let Some((_, l)) = ipam::leases(&dir).into_iter().find(|(_, l)| l.live()) {
        return Err(NetworkError::Invalid(format!(
            "network {} has active endpoints (container {})",
            config.name, l.name
        )));
    }
    bridge::remove(&config)?;
    let _ = std::fs::remove_dir_all(state_dir(&config));
    nets.remove_definition(&config.name)
}

/// The live leases on `name` (for `network inspect`).
pub fn endpoints(root: &Path, name: &str) -> Result<Vec<Lease>> {
    let nets = Networks::new(root);
    let config = nets.get(name)?;
    Ok(ipam::leases(&state_dir(&config))
        .into_iter()
        .map(|(_, l)| l)
        .filter(Lease::live)
        .collect())
}

/// `container`'s live leases, with their networks.
pub fn leases_of(root: &Path, container: &str) -> Vec<(NetworkConfig, Lease)> {
    let nets = Networks::new(root);
    nets.list()
        .into_iter()
        .filter_map(|n| {
            let (_, lease) = ipam::leases(&state_dir(&n))
                .into_iter()
                .find(|(_, l)| l.container == container && l.live())?;
            Some((n, lease))
        })
        .collect()
}

/// `network connect` of a running container: its namespace (that of
/// `pid`) gets the next `ethN` on network `req.networks[0]`, leased for
/// `holder` (its supervisor, which releases every lease of the container
/// when it stops).
pub fn connect_running(root: &Path, pid: u32, holder: &str, req: &AttachRequest) -> Result<Lease> {
    let nets = Networks::new(root);
    let wanted = req
        .networks
        .first()
        .ok_or_else(|| NetworkError::Invalid("no network to connect to".into()))?;
    let config = nets.get(&wanted.name)?;
    if leases_of(root, &req.container)
        .iter()
        .any(|(n, _)| n.name == config.name)
    {
        return Err(NetworkError::Invalid(format!(
            "container {} is already connected to network {}",
            req.name, config.name
        )));
    }
    let bridge_index = bridge::ensure(&config, &state_dir(&config))?;
    let path = format!("/proc/{pid}/ns/net");
    let netns = std::fs::File::open(&path).map_err(crate::io_at(Path::new(&path)))?;
    let n = kiln_executor::in_network_namespace(netns.as_fd(), || {
        let mut nl = Netlink::open()?;
        let mut n = 0;
        while nl.index(&format!("eth{n}"))?.is_some() {
            n += 1;
        }
        Ok(n)
    })
    .map_err(|e| NetworkError::Netlink("looking at the container's interfaces", e))?;
    let lease = ipam::allocate(
        &state_dir(&config),
        config.subnet(),
        config.gateway,
        req.lease(&wanted.aliases, holder, Vec::new()),
    )?;
    let wired = (|| {
        let mut nl = Netlink::open().map_err(|e| NetworkError::Netlink("opening", e))?;
        nl.create_veth(
            &veth_name(&req.container, n),
            bridge_index,
            &format!("eth{n}"),
            netns.as_fd(),
            MTU,
        )
        .map_err(|e| NetworkError::Netlink("creating the veth pair", e))?;
        let prefix = config.subnet().prefix;
        kiln_executor::in_network_namespace(netns.as_fd(), || {
            let mut nl = Netlink::open()?;
            let index = nl
                .index(&format!("eth{n}"))?
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "eth missing"))?;
            nl.add_address(index, lease.ip, prefix)?;
            nl.set_up(index)
        })
        .map_err(|e| NetworkError::Netlink("configuring the container's interface", e))
    })();
    if let Err(e) = wired {
        let _ = ipam::release_on(&state_dir(&config), lease.ip);
        return Err(e);
    }
    // Its own /etc/hosts names its new neighbours; theirs name it.
    if let Some(path) = &req.hosts_path {
        let all = all_networks_of(&nets, &req.container);
        let extra = extra_hosts(&nets, &all, &req.container, &req.add_hosts);
        let own = leases_of(root, &req.container)
            .first()
            .map(|(_, l)| l.ip)
            .unwrap_or(lease.ip);
        let _ = std::fs::write(
            path,
            kiln_executor::hosts_file(&req.hostname, Some(own.into()), &extra),
        );
    }
    refresh_peers(&nets, std::slice::from_ref(&config.name), &req.container);
    Ok(lease)
}

/// `network disconnect` of a running container: its veth on `network`
/// goes (the host side; the pair dies with it) and so does the lease.
pub fn disconnect_running(root: &Path, network: &str, container: &str) -> Result<()> {
    let nets = Networks::new(root);
    let config = nets.get(network)?;
    let dir = state_dir(&config);
    let lease = ipam::leases(&dir)
        .into_iter()
        .find(|(_, l)| l.container == container)
        .ok_or_else(|| {
            NetworkError::Invalid(format!(
                "container {container} is not connected to network {}",
                config.name
            ))
        })?;
    // Which ethN: the host-side veth named for this container whose
    // master is this bridge.
    let mut nl = Netlink::open().map_err(|e| NetworkError::Netlink("opening", e))?;
    let ours = format!("kv{}", &container[..container.len().min(8)]);
    let links =
        std::fs::read_dir("/sys/class/net").map_err(crate::io_at(Path::new("/sys/class/net")))?;
    for link in links.flatten() {
        let name = link.file_name().to_string_lossy().into_owned();
        let master = std::fs::read_link(link.path().join("master")).ok();
        if name.starts_with(&ours) && master.is_some_and(|m| m.ends_with(&config.bridge)) {
            nl.delete(&name)
                .map_err(|e| NetworkError::Netlink("deleting the veth pair", e))?;
            break;
        }
    }
    let _ = std::fs::remove_file(&lease.0);
    if !lease.1.ports.is_empty() {
        let _ = nft::delete_table(&nft::ports_table(container));
    }
    refresh_peers(&nets, std::slice::from_ref(&config.name), container);
    Ok(())
}
