//! `kiln network create|ls|inspect|rm|connect|disconnect|prune` and
//! `kiln port`: the networks of kiln-network, as docker shows them.

use crate::{emit, fail, CliError};
use kiln_network::{NetworkOptions, Networks, DEFAULT_NETWORK};
use kiln_runtime::Containers;
use kiln_store::Store;
use serde_json::{json, Value};

#[derive(clap::Subcommand)]
pub enum NetworkCommand {
    /// Make a bridge network (containers on it reach each other by name).
    Create {
        /// `A.B.C.D/N` [default: a free 10.78-99.0.0/16].
        #[arg(long)]
        subnet: Option<String>,
        /// The bridge's address [default: the subnet's first].
        #[arg(long)]
        gateway: Option<std::net::Ipv4Addr>,
        /// No route out of the network.
        #[arg(long)]
        internal: bool,
        /// Only `bridge`.
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show networks as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks no container uses.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Attach a container to a network (now if it runs, and at every
    /// start).
    Connect {
        /// Another name for the container on this network.
        #[arg(long)]
        alias: Vec<String>,
        network: String,
        container: String,
    },
    /// Detach a container from a network.
    Disconnect { network: String, container: String },
    /// Remove every user network no container uses.
    Prune {
        /// Accepted for docker's scripts (kiln does not ask).
        #[arg(short, long)]
        force: bool,
    },
}

pub fn network(store: &Store, command: NetworkCommand) -> Result<(), CliError> {
    if kiln_executor::rootless::in_user_namespace() {
        return Err(fail(
            "kiln network: a rootless kiln has no bridge networks yet (containers use host or none)",
        ));
    }
    let root = store.root();
    let nets = Networks::new(root);
    match command {
        NetworkCommand::Create {
            subnet,
            gateway,
            internal,
            driver,
            name,
        } => {
            if driver != "bridge" {
                return Err(fail(format!("--driver {driver}: only bridge is supported")));
            }
            let opts = NetworkOptions {
                subnet,
                gateway,
                internal,
            };
            let n = nets.create(&name, &opts).map_err(fail)?;
            emit(&format!("{}\n", n.id))
        }
        NetworkCommand::Ls { quiet } => {
            kiln_network::sweep(root);
            // The default network exists from the first look on.
            let _ = nets.get(DEFAULT_NETWORK);
            let mut rows = vec![[
                "NETWORK ID".to_string(),
                "NAME".into(),
                "DRIVER".into(),
                "SCOPE".into(),
            ]];
            let mut ids = String::new();
            for n in nets.list() {
                ids.push_str(&format!("{}\n", &n.id[..12]));
                rows.push([
                    n.id[..12].to_string(),
                    n.name,
                    "bridge".into(),
                    "local".into(),
                ]);
            }
            for pseudo in ["host", "none"] {
                rows.push([
                    "-".into(),
                    pseudo.into(),
                    pseudo.replace("none", "null"),
                    "local".into(),
                ]);
            }
            emit(&if quiet {
                ids
            } else {
                crate::images::table(&rows)
            })
        }
        NetworkCommand::Inspect { names } => {
            let mut out = Vec::new();
            for name in &names {
                let n = nets.get(name).map_err(fail)?;
                let mut members = serde_json::Map::new();
                for l in kiln_network::endpoints(root, &n.name).map_err(fail)? {
                    members.insert(
                        l.container.clone(),
                        json!({
                            "Name": l.name,
                            "IPv4Address": format!("{}/{}", l.ip, n.subnet().prefix),
                            "Aliases": l.aliases,
                        }),
                    );
                }
                out.push(json!({
                    "Name": n.name,
                    "Id": n.id,
                    "Created": n.created,
                    "Scope": "local",
                    "Driver": "bridge",
                    "Internal": n.internal,
                    "IPAM": {"Driver": "default", "Config": [{"Subnet": n.subnet, "Gateway": n.gateway.to_string()}]},
                    "Options": {"com.docker.network.bridge.name": n.bridge},
                    "Containers": members,
                }));
            }
            emit(&format!(
                "{}\n",
                serde_json::to_string_pretty(&Value::Array(out)).unwrap_or_default()
            ))
        }
        NetworkCommand::Rm { names } => {
            let mut failed = false;
            for name in &names {
                match in_use_by_stopped(store, name)
                    .and_then(|()| kiln_network::remove_network(root, name).map_err(fail))
                {
                    Ok(()) => emit(&format!("{name}\n"))?,
                    Err(e) => {
                        crate::report(&e);
                        failed = true;
                    }
                }
            }
            if failed {
                return Err(CliError::Reported);
            }
            Ok(())
        }
        NetworkCommand::Connect {
            alias,
            network,
            container,
        } => connect(store, &network, &container, alias),
        NetworkCommand::Disconnect { network, container } => {
            disconnect(store, &network, &container)
        }
        NetworkCommand::Prune { .. } => {
            let mut out = String::from("Deleted Networks:\n");
            for n in nets.list() {
                if n.name == DEFAULT_NETWORK || in_use_by_stopped(store, &n.name).is_err() {
                    continue;
                }
                if kiln_network::remove_network(root, &n.name).is_ok() {
                    out.push_str(&format!("{}\n", n.name));
                }
            }
            emit(&out)
        }
    }
}

/// An error when a container (running or not) is configured on `name`.
fn in_use_by_stopped(store: &Store, name: &str) -> Result<(), CliError> {
    let Ok(n) = Networks::new(store.root()).get(name) else {
        return Ok(()); // remove_network names the missing network
    };
    for c in Containers::new(store.root()).list() {
        let cfg = &c.config;
        if cfg.network == n.name || cfg.extra_networks.contains(&n.name) {
            return Err(fail(format!(
                "error while removing network: network {} has active endpoints (container {})",
                n.name, cfg.name
            )));
        }
    }
    Ok(())
}

fn connect(store: &Store, network: &str, name: &str, aliases: Vec<String>) -> Result<(), CliError> {
    let containers = Containers::new(store.root());
    let mut c = containers.find(name).map_err(fail)?;
    let net = Networks::new(store.root()).get(network).map_err(fail)?;
    if !c.config.on_networks() {
        return Err(fail(format!(
            "container {} uses --network {}: it cannot join other networks",
            c.config.name, c.config.network
        )));
    }
    if c.config.network == net.name || c.config.extra_networks.contains(&net.name) {
        return Err(fail(format!(
            "container {} is already connected to network {}",
            c.config.name, net.name
        )));
    }
    let st = c.state();
    if let Some(pid) = st.live_pid() {
        let mut aliases_all = c.config.network_aliases.clone();
        aliases_all.extend(aliases.iter().cloned());
        let req = kiln_network::AttachRequest {
            container: c.id().to_string(),
            name: c.config.name.clone(),
            hostname: kiln_runtime::spec::hostname(&c.config),
            networks: vec![kiln_network::NetworkRequest {
                name: net.name.clone(),
                aliases: aliases_all,
            }],
            hosts_path: Some(c.dir.join("etc/hosts")),
            add_hosts: c.config.add_hosts.clone(),
            ..Default::default()
        };
        kiln_network::connect_running(store.root(), pid, &st.supervisor, &req).map_err(fail)?;
    }
    c.config.extra_networks.push(net.name.clone());
    for a in aliases {
        if !c.config.network_aliases.contains(&a) {
            c.config.network_aliases.push(a);
        }
    }
    c.save_config().map_err(fail)
}

fn disconnect(store: &Store, network: &str, name: &str) -> Result<(), CliError> {
    let containers = Containers::new(store.root());
    let mut c = containers.find(name).map_err(fail)?;
    let net = Networks::new(store.root()).get(network).map_err(fail)?;
    if c.config.network == net.name {
        return Err(fail(format!(
            "container {} was started on network {}: kiln cannot take its first network away",
            c.config.name, net.name
        )));
    }
    if !c.config.extra_networks.contains(&net.name) {
        return Err(fail(format!(
            "container {} is not connected to network {}",
            c.config.name, net.name
        )));
    }
    if c.is_running() {
        kiln_network::disconnect_running(store.root(), &net.name, c.id()).map_err(fail)?;
    }
    c.config.extra_networks.retain(|n| n != &net.name);
    c.save_config().map_err(fail)
}

/// `kiln port CONTAINER [PORT[/PROTO]]`: its published ports.
pub fn port(store: &Store, name: &str, which: Option<&str>) -> Result<(), CliError> {
    let c = Containers::new(store.root()).find(name).map_err(fail)?;
    let mut out = String::new();
    let (want_port, want_proto) = match which.map(|w| w.split_once('/').unwrap_or((w, "tcp"))) {
        Some((p, proto)) => (
            Some(
                p.parse::<u16>()
                    .map_err(|_| fail(format!("{p}: not a port")))?,
            ),
            proto,
        ),
        None => (None, ""),
    };
    for (_, lease) in kiln_network::leases_of(store.root(), c.id()) {
        for p in &lease.ports {
            let host = format!(
                "{}:{}",
                p.host_ip.map_or("0.0.0.0".to_string(), |i| i.to_string()),
                p.host_port
            );
            match want_port {
                None => out.push_str(&format!("{}/{} -> {host}\n", p.container_port, p.protocol)),
                Some(w) if w == p.container_port && want_proto == p.protocol => {
                    out.push_str(&format!("{host}\n"))
                }
                Some(_) => {}
            }
        }
    }
    if out.is_empty() && want_port.is_some() {
        return Err(fail(format!(
            "no public port '{}' published for {}",
            which.unwrap_or_default(),
            c.config.name
        )));
    }
    emit(&out)
}
