//! A container as the executor's spec: its image's snapshots, its
//! mounts made real (volumes created and filled), its limits and
//! security.

use crate::config::{ContainerConfig, MountKind};
use crate::containers::Container;
use crate::volumes::Volumes;
use crate::{Result, RuntimeError};
use kiln_executor::{
    DeviceMount, ExecSpec, Ipc, Limits, Mount, MountSource, Network, Security, Spec, Stdio,
};
use kiln_network::Attachment;
use kiln_store::Store;
use std::path::PathBuf;

/// The spec to start `c` with `stdio`, and its network attachment (hold
/// it while the container runs: dropping it releases the addresses).
pub fn spec(store: &Store, c: &Container, stdio: Stdio) -> Result<(Spec, Option<Attachment>)> {
    let cfg = &c.config;
    let (network, attachment) = network(store, c)?;
    let ipc = match cfg.ipc_mode.as_str() {
        "" | "private" | "shareable" => Ipc::Private,
        "host" => Ipc::Host,
        other => {
            let name = other.strip_prefix("container:").unwrap_or(other);
            let target = crate::Containers::new(store.root()).find(name)?;
            let pid = target.state().live_pid().ok_or_else(|| {
                RuntimeError::Invalid(format!("--ipc {other}: container {name} is not running"))
            })?;
            Ipc::Join(pid)
        }
    };
    let image = store.resolve(&cfg.image_id)?;
    let lowers = store.snapshots_for(&image)?;
    let mounts = mounts(store, cfg, &lowers)?;
    let (address, extra_hosts, resolv_conf) = match &attachment {
        Some(a) => (
            Some(a.address.into()),
            a.extra_hosts.clone(),
            Some(a.resolv_conf.clone()),
        ),
        None => (None, cfg.add_hosts.clone(), shared_resolv_conf(store, cfg)),
    };
    let spec = Spec {
        lowers,
        state_dir: c.dir.clone(),
        argv: cfg.argv.clone(),
        env: cfg.env.clone(),
        cwd: if cfg.working_dir.is_empty() {
            "/".into()
        } else {
            cfg.working_dir.clone()
        },
        user: cfg.user.clone(),
        hostname: hostname(cfg),
        network,
        mounts,
        stdio,
        rlimits: cfg
            .ulimits
            .iter()
            .filter_map(|u| {
                let r = kiln_executor::rlimit_resource(&u.name)?;
                // u64::MAX: unlimited (`--ulimit core=-1`).
                let limit = |v: u64| (v != u64::MAX).then_some(v);
                Some((r, limit(u.soft), limit(u.hard)))
            })
            .collect(),
        limits: Limits {
            memory: cfg.memory,
            pids: cfg.pids_limit,
            cpu_quota_us: cfg.cpu_quota_us,
            cpu_shares: cfg.cpu_shares,
            cpuset_cpus: cfg.cpuset_cpus.clone(),
        },
        cgroup_root: "/sys/fs/cgroup".into(),
        runtime: kiln_executor::Runtime::Native,
        init: cfg.init,
        // A container's fsyncs are real (databases rely on them).
        deferred_sync: false,
        security: security(cfg)?,
        readonly_rootfs: cfg.read_only,
        extra_groups: cfg.group_add.clone(),
        shm_size: cfg.shm_size.unwrap_or(kiln_executor::DEFAULT_SHM_SIZE),
        pid_host: cfg.pid_mode == "host",
        ipc,
        devices: cfg
            .devices
            .iter()
            .map(|d| DeviceMount {
                host: d.host.clone().into(),
                target: d.target.clone(),
            })
            .collect(),
        extra_hosts,
        address,
        resolv_conf,
        // `kiln run` mounts no cache mounts.
        cache_wait: None,
    };
    Ok((spec, attachment))
}

/// `--network container:X`: X's resolv.conf.
fn shared_resolv_conf(store: &Store, cfg: &ContainerConfig) -> Option<String> {
    let other = cfg.network.strip_prefix("container:")?;
    let c = crate::Containers::new(store.root()).find(other).ok()?;
    std::fs::read_to_string(c.dir.join("etc/resolv.conf")).ok()
}

/// The container's network namespace: the host's, a new empty one,
/// another container's, or one wired to its networks.
fn network(store: &Store, c: &Container) -> Result<(Network, Option<Attachment>)> {
    let cfg = &c.config;
    match cfg.network.as_str() {
        "host" => return Ok((Network::Host, None)),
        "none" => return Ok((Network::None, None)),
        _ => {}
    }
    if let Some(other) = cfg.network.strip_prefix("container:") {
        let target = crate::Containers::new(store.root()).find(other)?;
        let pid = target.state().live_pid().ok_or_else(|| {
            RuntimeError::Invalid(format!(
                "--network container:{other}: container {} is not running",
                target.config.name
            ))
        })?;
        let path = format!("/proc/{pid}/ns/net");
        let fd = std::fs::File::open(&path).map_err(crate::io_at(std::path::Path::new(&path)))?;
        let ns = kiln_executor::NetNamespace(std::sync::Arc::new(fd.into()));
        return Ok((Network::Join(ns), None));
    }
    let networks = std::iter::once(&cfg.network)
        .chain(&cfg.extra_networks)
        .map(|name| kiln_network::NetworkRequest {
            name: name.clone(),
            aliases: cfg.network_aliases.clone(),
        })
        .collect();
    let attachment = Attachment::setup(
        store.root(),
        &kiln_network::AttachRequest {
            container: cfg.id.clone(),
            name: cfg.name.clone(),
            hostname: hostname(cfg),
            networks,
            ports: cfg.ports.clone(),
            hosts_path: Some(c.dir.join("etc/hosts")),
            add_hosts: cfg.add_hosts.clone(),
            dns: cfg.dns.clone(),
        },
    )?;
    let ns = kiln_executor::NetNamespace(attachment.netns.clone());
    Ok((Network::Join(ns), Some(attachment)))
}

/// The container's hostname: its own, else the first 12 hex of its id.
pub fn hostname(cfg: &ContainerConfig) -> String {
    if cfg.hostname.is_empty() {
        cfg.id.chars().take(12).collect()
    } else {
        cfg.hostname.clone()
    }
}

/// A process to start in the running container whose PID 1 is `pid`, as
/// the container runs its own: its environment, working directory, user,
/// hostname and security (`kiln exec` and health probes adjust from here).
pub fn exec_spec(
    cfg: &ContainerConfig,
    pid: u32,
    argv: Vec<String>,
    stdio: Stdio,
) -> Result<ExecSpec> {
    Ok(ExecSpec {
        target: pid,
        argv,
        env: cfg.env.clone(),
        cwd: cfg.working_dir.clone(),
        user: cfg.user.clone(),
        extra_groups: cfg.group_add.clone(),
        hostname: hostname(cfg),
        stdio,
        security: security(cfg)?,
        cgroup_root: "/sys/fs/cgroup".into(),
    })
}

/// The container's capabilities, `no_new_privs` and seccomp profile.
pub fn security(cfg: &ContainerConfig) -> Result<Security> {
    let seccomp_profile = cfg
        .seccomp_profile
        .as_deref()
        .map(|json| kiln_executor::compile_profile(json, cfg.capabilities))
        .transpose()?;
    Ok(Security {
        capabilities: cfg.capabilities,
        no_new_privs: cfg.no_new_privileges,
        seccomp: cfg.seccomp,
        seccomp_profile,
    })
}

/// The executor's mounts; volumes are created when missing and, when
/// empty, filled from the image first.
fn mounts(store: &Store, cfg: &ContainerConfig, lowers: &[PathBuf]) -> Result<Vec<Mount>> {
    let volumes = Volumes::new(store.root());
    let mut out = Vec::new();
    for m in &cfg.mounts {
        let source = match m.kind {
            MountKind::Bind => {
                let p = PathBuf::from(&m.source);
                if !p.exists() {
                    return Err(RuntimeError::Invalid(format!(
                        "bind source path does not exist: {}",
                        m.source
                    )));
                }
                MountSource::Bind(p)
            }
            MountKind::Volume => {
                let v = volumes.create(&m.source, m.anonymous)?;
                if Volumes::is_empty(&v) {
                    crate::changes::copy_up(lowers, &m.target, &v.data)?;
                }
                MountSource::Bind(v.data)
            }
            MountKind::Tmpfs => MountSource::Tmpfs { size: m.size },
        };
        out.push(Mount {
            source,
            target: m.target.clone(),
            readonly: m.readonly,
        });
    }
    Ok(out)
}
