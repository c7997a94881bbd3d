//! `kiln run` and `kiln create`: the image's Entrypoint/Cmd/Env/
//! WorkingDir/User/Volumes/Healthcheck applied as docker applies them, the
//! flags made into a container config (`kiln_runtime::ContainerConfig`),
//! then either a foreground container (this process supervises it:
//! signals forwarded, the exit code kiln's) or, with `-d`, one under its
//! own monitor.

use crate::{fail, CliError};
pub(crate) mod attach;

use kiln_executor::{Exit, Stdio};
use kiln_runtime::{
    Container, ContainerConfig, Containers, HealthConfig, MountConfig, MountKind, RestartPolicy,
    State, Status,
};
use kiln_store::{ProcessId, Store};
use serde_json::Value;
use std::fs;
use std::path::PathBuf;

/// The flags `kiln run` and `kiln create` share (clap parses straight
/// into this).
#[derive(clap::Args)]
pub struct RunOptions {
    /// Run in the background under a monitor and print the container's id.
    #[arg(short, long)]
    pub detach: bool,
    /// The platform's image of a multi-platform image (a foreign one runs
    /// under binfmt_misc emulation) [default: the image's default].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// A name for the container (unique) [default: a generated one].
    #[arg(long)]
    pub name: Option<String>,
    /// Write the container's id to this file (which must not exist).
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,
    /// Set an environment variable (`K=V`, or `K` to pass kiln's own).
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read environment variables from a file (one K=V per line).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// A bind mount (`/host:/ctr[:ro]`, the host directory made if
    /// missing), a named volume (`NAME:/ctr[:ro]`) or an anonymous one
    /// (`/ctr`).
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<String>,
    /// `type=bind|volume|tmpfs,source=...,target=...[,readonly]` (a bind
    /// source must exist).
    #[arg(long = "mount", value_name = "type=...,target=...")]
    pub mounts: Vec<String>,
    /// A tmpfs at PATH (`PATH[:size=64m]`).
    #[arg(long = "tmpfs", value_name = "PATH[:size=N]")]
    pub tmpfs: Vec<String>,
    /// Mount every volume and bind of another container (`NAME[:ro|rw]`).
    #[arg(long = "volumes-from", value_name = "CONTAINER")]
    pub volumes_from: Vec<String>,
    /// Mount the container's root filesystem read-only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Working directory in the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid].
    #[arg(short, long)]
    pub user: Option<String>,
    /// Override the image's entrypoint (resets its CMD).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// `bridge` (the default as root: an isolated network with NAT),
    /// a network made with `kiln network create`, `host`, `none` (only
    /// loopback) or `container:NAME` (share its network).
    #[arg(long, alias = "net", default_value = "default")]
    pub network: String,
    /// Publish a port: `[IP:][HOST:]CONTAINER[/tcp|udp]`.
    #[arg(short, long = "publish", value_name = "[IP:][HOST:]PORT")]
    pub publish: Vec<String>,
    /// Publish every port the image EXPOSEs on a free host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Another name for the container on its networks.
    #[arg(long = "network-alias", value_name = "NAME")]
    pub network_aliases: Vec<String>,
    /// An /etc/hosts entry: `NAME:IP`.
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_hosts: Vec<String>,
    /// A DNS server for the container's /etc/resolv.conf.
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// Keep standard input open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal (and set TERM=xterm unless given).
    #[arg(short, long)]
    pub tty: bool,
    /// The container's hostname (default: the first 12 hex of its id).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Memory limit (`512m`, `1.5g`, or bytes); enforced with a cgroup.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Maximum number of processes; enforced with a cgroup.
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<u64>,
    /// CPUs' worth of time the container may use (`1.5`); a CFS quota.
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// Relative CPU weight (1024 is the default).
    #[arg(short = 'c', long = "cpu-shares", value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// The CPUs the container may run on (`0-1`, `0,2`).
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// A resource limit: `NAME=SOFT[:HARD]` (`nofile=1024:2048`; -1 is
    /// unlimited), never above kiln's own hard limit.
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// A host device in the container: `HOST[:CONTAINER[:rwm]]`.
    #[arg(long = "device", value_name = "HOST[:CONTAINER]")]
    pub devices: Vec<String>,
    /// Add a supplementary group (a name in the image's /etc/group, or a gid).
    #[arg(long = "group-add", value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Size of /dev/shm (`256m`) [default: 64m].
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// `host`: share the host's PID namespace.
    #[arg(long, value_name = "host")]
    pub pid: Option<String>,
    /// `private` (default), `host`, or `container:NAME` (share its IPC
    /// namespace).
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,
    /// Run a minimal init as PID 1 that reaps zombies and forwards
    /// signals (docker's --init).
    #[arg(long)]
    pub init: bool,
    /// `no`, `on-failure[:N]`, `always` or `unless-stopped`, applied by
    /// the container's monitor (in the foreground kiln returns at the
    /// first exit and the monitor carries on).
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// The signal `stop` sends first [default: the image's StopSignal, else SIGTERM].
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL [default: 10].
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<u64>,
    /// A health check command (run with /bin/sh -c).
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    #[arg(long = "health-interval", value_name = "DURATION")]
    pub health_interval: Option<String>,
    #[arg(long = "health-timeout", value_name = "DURATION")]
    pub health_timeout: Option<String>,
    #[arg(long = "health-start-period", value_name = "DURATION")]
    pub health_start_period: Option<String>,
    #[arg(long = "health-start-interval", value_name = "DURATION")]
    pub health_start_interval: Option<String>,
    #[arg(long = "health-retries")]
    pub health_retries: Option<u32>,
    /// Disable the image's HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// `no-new-privileges[=true]` (setuid programs gain nothing),
    /// `seccomp=unconfined`, or `seccomp=FILE` (a profile in docker's JSON
    /// format).
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Add a capability (`NET_ADMIN`, `ALL`).
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (`CHOWN`, `ALL`).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Every capability and no seccomp filter (devices stay the default set).
    #[arg(long)]
    pub privileged: bool,
    /// Run with an external OCI runtime (runc, crun) on a bundle kiln
    /// writes, instead of kiln's own executor (foreground only).
    #[arg(long = "oci-runtime", value_name = "PATH")]
    pub oci_runtime: Option<PathBuf>,
    /// The image, then the command and its arguments (default: the
    /// image's). One positional, so that everything after the image is
    /// the container's even when it looks like a kiln flag (`-c`, `-p`),
    /// as docker parses it.
    #[arg(
        value_name = "IMAGE [COMMAND [ARG...]]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command_line: Vec<String>,
}

impl RunOptions {
    /// The image as given.
    pub fn image(&self) -> &str {
        self.command_line.first().map_or("", String::as_str)
    }

    /// The command and its arguments, if given.
    pub fn args(&self) -> &[String] {
        self.command_line.get(1..).unwrap_or_default()
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `-e K=V` or `-e K` (value from kiln's own environment, skipped if unset).
pub(crate) fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

pub(crate) fn set_env(env: &mut Vec<String>, entry: String) {
    let key = entry.split('=').next().unwrap_or_default().to_string();
    env.retain(|e| e.split('=').next() != Some(key.as_str()));
    env.push(entry);
}

pub(crate) fn runtime_error(e: kiln_runtime::RuntimeError) -> CliError {
    match e {
        kiln_runtime::RuntimeError::Exec(e) => CliError::Exec(e),
        e => fail(e),
    }
}

/// `kiln run`.
pub fn run(store: &Store, client: &kiln_registry::Client, o: RunOptions) -> Result<i32, CliError> {
    if (o.detach || o.restart != "no") && o.oci_runtime.is_some() {
        return Err(fail("--oci-runtime: not supported with -d or --restart"));
    }
    let containers = Containers::new(store.root());
    // --rm containers whose kiln was killed before it could clean up.
    containers.sweep(true);
    let config = container_config(store, client, &containers, &o)?;
    let container = containers.create(config).map_err(fail)?;
    write_cidfile(&o, &container, &containers)?;
    // A restart policy needs the monitor even in the foreground: this
    // process follows the first run and leaves the rest to it.
    if o.detach || container.config.restart != RestartPolicy::No {
        let exe = std::env::current_exe().map_err(|e| fail(format!("finding kiln: {e}")))?;
        return match kiln_runtime::monitor::start_detached(&exe, store.root(), &container) {
            Ok(()) if !o.detach => crate::containers::attach_until_exit(&container, 0),
            Ok(()) => {
                crate::emit(&format!("{}\n", container.id()))?;
                Ok(0)
            }
            Err(e) => {
                let code = container.state().exit_code;
                if o.rm {
                    let _ = containers.remove(&container);
                }
                crate::print_error(&e);
                Ok(if (126..=127).contains(&code) {
                    code
                } else {
                    125
                })
            }
        };
    }
    foreground(store, &containers, container, &o)
}

/// `kiln create`: the container, not started; prints its id.
pub fn create(
    store: &Store,
    client: &kiln_registry::Client,
    o: RunOptions,
) -> Result<i32, CliError> {
    let containers = Containers::new(store.root());
    let config = container_config(store, client, &containers, &o)?;
    let container = containers.create(config).map_err(fail)?;
    write_cidfile(&o, &container, &containers)?;
    crate::emit(&format!("{}\n", container.id()))?;
    Ok(0)
}

fn write_cidfile(o: &RunOptions, c: &Container, containers: &Containers) -> Result<(), CliError> {
    let Some(path) = &o.cidfile else {
        return Ok(());
    };
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, c.id().as_bytes()));
    if let Err(e) = written {
        let _ = containers.remove(c);
        return Err(fail(format!("--cidfile {}: {e}", path.display())));
    }
    Ok(())
}

/// This process supervises the container: state recorded, signals and
/// the terminal forwarded, the exit recorded (and the container removed
/// with --rm).
fn foreground(
    store: &Store,
    containers: &Containers,
    container: Container,
    o: &RunOptions,
) -> Result<i32, CliError> {
    let stdio = match o.tty {
        // -t: a pty; the caller's terminal goes raw while the container runs.
        true => Stdio::Tty,
        // Through pipes, to keep the log too (the OCI backend inherits).
        false if o.oci_runtime.is_none() => Stdio::PipedOutput {
            stdin: o.interactive,
        },
        false => Stdio::Inherit {
            stdin: o.interactive,
        },
    };
    let mut state = State {
        supervisor: ProcessId::current().to_string(),
        ..State::default()
    };
    let started = kiln_runtime::spec::spec(store, &container, stdio).and_then(|(mut spec, net)| {
        spec.runtime = runtime(o)?;
        Ok((spec, net))
    });
    // Before the container's own output (unpacking happened by now).
    crate::print_store_warnings();
    let started = started.and_then(|(s, net)| Ok((kiln_executor::spawn(s)?, net)));
    // The network lives until the container is down; its veths are left
    // for the kernel, so kiln exits at once.
    let (running, mut network) = match started {
        Ok(r) => r,
        Err(e) => {
            let _ = containers.remove(&container);
            return Err(runtime_error(e));
        }
    };
    state.status = Status::Running;
    state.pid = ProcessId::of(running.pid() as i32)
        .map(|p| p.to_string())
        .unwrap_or_default();
    state.started_at = kiln_runtime::time::now();
    let _ = container.save_state(&state);
    let exit = attach::attach(
        running,
        container.config.stop_signal,
        Some(&container.log_path()),
    );
    if let Some(n) = &mut network {
        n.leave_links_to_the_kernel();
    }
    drop(network);
    state.status = Status::Exited;
    state.pid.clear();
    state.finished_at = kiln_runtime::time::now();
    let code = match &exit {
        Ok(Ok(e)) => e.code(),
        _ => 255,
    };
    state.exit_code = code;
    let _ = container.save_state(&state);
    if o.rm {
        let volumes = kiln_runtime::volumes::Volumes::new(store.root());
        let _ = kiln_runtime::lifecycle::remove(containers, &volumes, &container, true, true);
    }
    match exit? {
        Ok(Exit::Code(c)) => Ok(c),
        Ok(e @ Exit::Signal(_)) => Ok(e.code()),
        Err(e) => Err(CliError::Exec(e)),
    }
}

/// The container config for these flags and image (pulled if missing).
fn container_config(
    store: &Store,
    client: &kiln_registry::Client,
    containers: &Containers,
    o: &RunOptions,
) -> Result<ContainerConfig, CliError> {
    let platform = o
        .platform
        .as_deref()
        .map(|p| crate::registry::parse_platform("--platform", Some(p)))
        .transpose()?;
    let image = image(store, client, o.image(), platform.as_ref())?;
    // A foreign image runs under emulation: say what is missing if none.
    let field = |k: &str| {
        image
            .config
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (arch, variant) = (field("architecture"), field("variant"));
    if !arch.is_empty() {
        kiln_executor::binfmt::check(&arch, &variant)
            .map_err(|e| fail(format!("{}: {e}", o.image())))?;
    }
    let config = image.config.get("config").cloned().unwrap_or(Value::Null);
    let (entrypoint, cmd) = command(o, &config)?;
    let argv: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
    let mut env = environment(o, &config)?;
    if o.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let config_str = |key: &str| {
        config
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let stop_signal = o.stop_signal.clone().or_else(|| {
        config
            .get("StopSignal")
            .and_then(Value::as_str)
            .map(String::from)
    });
    let stop_signal = match stop_signal {
        None => 15,
        Some(s) => kiln_parser::units::signal_number(&s)
            .ok_or_else(|| fail(format!("--stop-signal {s}: not a signal")))?,
    };
    let restart = RestartPolicy::parse(&o.restart).ok_or_else(|| {
        fail(format!(
            "--restart {}: expected no, on-failure[:N], always or unless-stopped",
            o.restart
        ))
    })?;
    if o.rm && restart != RestartPolicy::No {
        return Err(fail("--rm and --restart cannot be used together"));
    }
    let (no_new_privileges, mut seccomp, mut seccomp_profile) = security_opts(&o.security_opt)?;
    let mut capabilities = capabilities(o)?;
    if o.privileged {
        capabilities = kiln_executor::ALL_CAPABILITIES;
        seccomp = false;
        seccomp_profile = None;
    }
    if let Some((file, json)) = &seccomp_profile {
        // Refused now, naming the file, rather than at every start.
        kiln_executor::compile_profile(json, capabilities)
            .map_err(|e| fail(format!("--security-opt seccomp={file}: {e}")))?;
    }
    let resources = resources(o, containers)?;
    let network = network_mode(store, containers, o)?;
    let mut ports = Vec::new();
    for p in &o.publish {
        ports.push(kiln_network::PortMapping::parse(p).map_err(fail)?);
    }
    if o.publish_all {
        let exposed = config.get("ExposedPorts").and_then(Value::as_object);
        for key in exposed.into_iter().flat_map(|m| m.keys()) {
            let mut p = kiln_network::PortMapping::parse(key).map_err(fail)?;
            if !ports.iter().any(|q: &kiln_network::PortMapping| {
                q.container_port == p.container_port && q.protocol == p.protocol
            }) {
                p.host_port = 0;
                ports.push(p);
            }
        }
    }
    let on_networks =
        !matches!(network.as_str(), "host" | "none") && !network.starts_with("container:");
    if !ports.is_empty() && !on_networks {
        return Err(fail(format!(
            "-p: ports are published only from a bridge network, not --network {network}"
        )));
    }
    let add_hosts = o
        .add_hosts
        .iter()
        .map(|h| kiln_network::add_host_line(h).map_err(fail))
        .collect::<Result<Vec<_>, _>>()?;
    for d in &o.dns {
        d.parse::<std::net::IpAddr>()
            .map_err(|_| fail(format!("--dns {d}: not an IP address")))?;
    }
    let mut mounts = Vec::new();
    for v in &o.volumes {
        mounts.push(volume_flag(v)?);
    }
    for m in &o.mounts {
        mounts.push(mount_flag(m)?);
    }
    for t in &o.tmpfs {
        mounts.push(tmpfs_flag(t)?);
    }
    for from in &o.volumes_from {
        let (name, mode) = match from.rsplit_once(':') {
            Some((n, m)) if m == "ro" || m == "rw" => (n, Some(m == "ro")),
            _ => (from.as_str(), None),
        };
        let other = containers
            .find(name)
            .map_err(|e| fail(format!("--volumes-from {from}: {e}")))?;
        for m in other
            .config
            .mounts
            .iter()
            .filter(|m| m.kind != MountKind::Tmpfs)
        {
            if !mounts.iter().any(|x: &MountConfig| x.target == m.target) {
                mounts.push(MountConfig {
                    readonly: mode.unwrap_or(m.readonly),
                    // Shared, so never removed with this container.
                    anonymous: false,
                    ..m.clone()
                });
            }
        }
    }
    // An anonymous volume for each image VOLUME nothing else is mounted on.
    if let Some(vols) = config.get("Volumes").and_then(Value::as_object) {
        for target in vols.keys() {
            if !mounts.iter().any(|m| &m.target == target) {
                mounts.push(MountConfig {
                    kind: MountKind::Volume,
                    source: kiln_runtime::random_id(),
                    target: target.clone(),
                    readonly: false,
                    size: 0,
                    anonymous: true,
                });
            }
        }
    }
    let healthcheck = healthcheck(o, &config)?;
    let labels = config
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let limits = limits(o)?;
    let cfg = ContainerConfig {
        id: String::new(),
        name: o.name.clone().unwrap_or_default(),
        created: String::new(),
        image: o.image().to_string(),
        image_id: image.config_digest.to_string(),
        argv,
        entrypoint,
        cmd,
        env,
        working_dir: o
            .workdir
            .clone()
            .unwrap_or_else(|| config_str("WorkingDir")),
        user: o.user.clone().unwrap_or_else(|| config_str("User")),
        hostname: o.hostname.clone().unwrap_or_default(),
        network,
        mounts,
        memory: limits.memory,
        pids_limit: limits.pids,
        init: o.init,
        tty: o.tty,
        interactive: o.interactive,
        stop_signal,
        stop_timeout: o.stop_timeout,
        restart,
        healthcheck,
        no_new_privileges,
        seccomp,
        capabilities,
        read_only: o.read_only,
        auto_remove: o.rm,
        labels,
        group_add: o.group_add.clone(),
        cpu_quota_us: resources.cpu_quota_us,
        cpu_shares: resources.cpu_shares,
        cpuset_cpus: resources.cpuset_cpus,
        ulimits: resources.ulimits,
        devices: resources.devices,
        shm_size: resources.shm_size,
        pid_mode: resources.pid_mode,
        ipc_mode: resources.ipc_mode,
        seccomp_profile: seccomp_profile.map(|(_, json)| json),
        extra_networks: Vec::new(),
        network_aliases: o.network_aliases.clone(),
        ports,
        add_hosts,
        dns: o.dns.clone(),
    };
    Ok(cfg)
}

/// `--network`: `default` is `bridge` (for a rootless kiln through
/// slirp4netns, or the host's without it); a container is found now and
/// named by id.
fn network_mode(
    store: &Store,
    containers: &Containers,
    o: &RunOptions,
) -> Result<String, CliError> {
    let rootless = kiln_executor::rootless::in_user_namespace();
    let name = match o.network.as_str() {
        // Without slirp4netns a rootless container keeps the host's; so
        // does one on an external runtime (the bundle gets no bridge).
        "default" if rootless && !kiln_network::slirp_available() => "host",
        "default" if o.oci_runtime.is_some() => "host",
        "default" => kiln_network::DEFAULT_NETWORK,
        other => other,
    };
    match name {
        "host" | "none" => return Ok(name.into()),
        kiln_network::DEFAULT_NETWORK if rootless && kiln_network::slirp_available() => {
            return Ok(name.into())
        }
        _ if rootless => {
            return Err(fail(format!(
                "--network {name}: a rootless kiln has only bridge (through slirp4netns, which is {}), host and none",
                if kiln_network::slirp_available() { "installed" } else { "not installed" }
            )))
        }
        _ => {}
    }
    if let Some(other) = name.strip_prefix("container:") {
        let c = containers
            .find(other)
            .map_err(|e| fail(format!("--network {name}: {e}")))?;
        return Ok(format!("container:{}", c.id()));
    }
    let net = kiln_network::Networks::new(store.root())
        .get(name)
        .map_err(|e| fail(format!("--network {name}: {e}")))?;
    Ok(net.name)
}

/// `--security-opt`: (no_new_privs, seccomp, a custom profile's file
/// and JSON).
type SecurityOpts = (bool, bool, Option<(String, String)>);

fn security_opts(opts: &[String]) -> Result<SecurityOpts, CliError> {
    let (mut nnp, mut seccomp, mut profile) = (false, true, None);
    for opt in opts {
        let (key, value) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => nnp = true,
            ("no-new-privileges", Some("false")) => nnp = false,
            ("seccomp", Some("unconfined")) => {
                seccomp = false;
                profile = None;
            }
            ("seccomp", Some(file)) => {
                let json = fs::read_to_string(file)
                    .map_err(|e| fail(format!("--security-opt seccomp={file}: {e}")))?;
                seccomp = true;
                profile = Some((file.to_string(), json));
            }
            _ => {
                return Err(fail(format!(
                    "--security-opt {opt}: expected no-new-privileges[=true|false], seccomp=unconfined or seccomp=FILE"
                )))
            }
        }
    }
    Ok((nnp, seccomp, profile))
}

/// The resource and namespace flags, checked.
struct Resources {
    cpu_quota_us: Option<u64>,
    cpu_shares: Option<u64>,
    cpuset_cpus: Option<String>,
    ulimits: Vec<kiln_runtime::Ulimit>,
    devices: Vec<kiln_runtime::DeviceConfig>,
    shm_size: Option<u64>,
    pid_mode: String,
    ipc_mode: String,
}

/// The CPUs this machine has online, as listed and as numbers
/// (`/sys/devices/system/cpu/online`).
fn online_cpus() -> (String, Vec<u32>) {
    let text = fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let text = text.trim().to_string();
    let cpus = parse_cpu_list(&text).unwrap_or_default();
    (text, cpus)
}

/// `0-2,4` → [0, 1, 2, 4]; None when malformed.
fn parse_cpu_list(list: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in list.split(',') {
        let (lo, hi): (u32, u32) = match part.split_once('-') {
            Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        if lo > hi {
            return None;
        }
        out.extend(lo..=hi);
    }
    Some(out)
}

fn resources(o: &RunOptions, containers: &Containers) -> Result<Resources, CliError> {
    let (online_list, online) = online_cpus();
    let cpu_quota_us = match &o.cpus {
        None => None,
        Some(v) => {
            let n: f64 = v
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| fail(format!("--cpus {v}: expected a number of CPUs, like 1.5")))?;
            let max = online.len().max(1) as f64;
            if !(0.01..=max).contains(&n) {
                return Err(fail(format!(
                    "--cpus {v}: the range of CPUs is from 0.01 to {max:.2}, as there are only {max} CPUs available"
                )));
            }
            Some((n * kiln_executor::CPU_PERIOD_US as f64).round() as u64)
        }
    };
    if let Some(s) = o.cpu_shares {
        if s != 0 && !(2..=262_144).contains(&s) {
            return Err(fail(format!("--cpu-shares {s}: expected 2 to 262144")));
        }
    }
    if let Some(list) = &o.cpuset_cpus {
        let cpus = parse_cpu_list(list)
            .ok_or_else(|| fail(format!("--cpuset-cpus {list}: expected a list like 0-2,4")))?;
        if !online.is_empty() && cpus.iter().any(|c| !online.contains(c)) {
            return Err(fail(format!(
                "--cpuset-cpus {list}: requested CPUs are not available (online: {online_list})"
            )));
        }
    }
    let mut ulimits: Vec<kiln_runtime::Ulimit> = Vec::new();
    for u in &o.ulimits {
        let bad = || {
            fail(format!(
                "--ulimit {u}: expected NAME=SOFT[:HARD], like nofile=1024:2048"
            ))
        };
        let (name, values) = u.split_once('=').ok_or_else(bad)?;
        if kiln_executor::rlimit_resource(name).is_none() {
            let names: Vec<&str> = kiln_executor::RLIMITS.iter().map(|(n, _)| *n).collect();
            return Err(fail(format!(
                "--ulimit {u}: no resource {name:?} (one of {})",
                names.join(", ")
            )));
        }
        let value = |v: &str| -> Result<u64, CliError> {
            if v == "-1" {
                return Ok(u64::MAX);
            }
            v.parse().map_err(|_| bad())
        };
        let (soft, hard) = match values.split_once(':') {
            Some((s, h)) => (value(s)?, value(h)?),
            None => (value(values)?, value(values)?),
        };
        if soft > hard {
            return Err(fail(format!(
                "--ulimit {u}: the soft limit must not be above the hard limit"
            )));
        }
        ulimits.retain(|x| x.name != name);
        ulimits.push(kiln_runtime::Ulimit {
            name: name.into(),
            soft,
            hard,
        });
    }
    let mut devices = Vec::new();
    for d in &o.devices {
        let mut parts = d.splitn(3, ':');
        let host = parts.next().unwrap_or_default();
        let (target, perms) = match (parts.next(), parts.next()) {
            (None, _) => (host, "rwm"),
            // `HOST:rw` is permissions, not a path.
            (Some(p), None) if !p.starts_with('/') => (host, p),
            (Some(t), p) => (t, p.unwrap_or("rwm")),
        };
        use std::os::unix::fs::FileTypeExt;
        let kind = fs::metadata(host)
            .map_err(|e| fail(format!("--device {d}: {host}: {e}")))?
            .file_type();
        if !(kind.is_char_device() || kind.is_block_device() || kind.is_dir()) {
            return Err(fail(format!("--device {d}: {host} is not a device")));
        }
        if !host.starts_with('/') || !target.starts_with("/dev/") {
            return Err(fail(format!(
                "--device {d}: expected HOST[:CONTAINER[:PERMISSIONS]], both paths absolute, the container one in /dev"
            )));
        }
        if !perms.chars().all(|c| "rwm".contains(c)) {
            return Err(fail(format!("--device {d}: permissions are r, w and m")));
        }
        // Devices are allowed by mount flags, not a device cgroup: one
        // bound in can be read and written.
        if !(perms.contains('r') && perms.contains('w')) {
            return Err(fail(format!(
                "--device {d}: kiln grants a device for reading and writing; {perms} alone is not supported"
            )));
        }
        devices.push(kiln_runtime::DeviceConfig {
            host: host.into(),
            target: target.into(),
        });
    }
    let shm_size = match &o.shm_size {
        None => None,
        Some(v) => Some(
            kiln_parser::units::ram_in_bytes(v)
                .filter(|b| *b > 0)
                .ok_or_else(|| fail(format!("--shm-size {v}: expected a size, like 256m")))?,
        ),
    };
    let pid_mode = match o.pid.as_deref() {
        None | Some("") => String::new(),
        Some("host") => "host".into(),
        Some(other) => {
            return Err(fail(format!(
                "--pid {other}: expected host (sharing another container's PID namespace is not supported)"
            )))
        }
    };
    let ipc_mode = match o.ipc.as_deref() {
        None | Some("" | "private" | "shareable") => String::new(),
        Some("host") => "host".into(),
        Some(other) => match other.strip_prefix("container:") {
            Some(name) => {
                let c = containers
                    .find(name)
                    .map_err(|e| fail(format!("--ipc {other}: {e}")))?;
                format!("container:{}", c.id())
            }
            None => {
                return Err(fail(format!(
                    "--ipc {other}: expected private, shareable, host or container:NAME"
                )))
            }
        },
    };
    Ok(Resources {
        cpu_quota_us,
        cpu_shares: o.cpu_shares.filter(|s| *s != 0),
        cpuset_cpus: o.cpuset_cpus.clone(),
        ulimits,
        devices,
        shm_size,
        pid_mode,
        ipc_mode,
    })
}

/// docker's default capabilities with `--cap-drop`, then `--cap-add`.
fn capabilities(o: &RunOptions) -> Result<u64, CliError> {
    let bit = |flag: &str, name: &str| -> Result<u64, CliError> {
        if name.eq_ignore_ascii_case("ALL") {
            return Ok(kiln_executor::ALL_CAPABILITIES);
        }
        kiln_executor::capability_bit(name)
            .ok_or_else(|| fail(format!("{flag} {name}: no such capability")))
    };
    let mut caps = kiln_executor::DEFAULT_CAPABILITIES;
    for name in &o.cap_drop {
        caps &= !bit("--cap-drop", name)?;
    }
    for name in &o.cap_add {
        caps |= bit("--cap-add", name)?;
    }
    Ok(caps)
}

fn check_target(flag: &str, spec: &str, target: &str) -> Result<(), CliError> {
    if !target.starts_with('/') {
        return Err(fail(format!(
            "{flag} {spec}: the destination must be an absolute path in the container"
        )));
    }
    Ok(())
}

/// `-v`: a bind (host directory created if missing), a named volume or
/// an anonymous one.
fn volume_flag(v: &str) -> Result<MountConfig, CliError> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, readonly) = match parts.as_slice() {
        [d] => ("", *d, false),
        [s, d] => (*s, *d, false),
        [s, d, "ro"] => (*s, *d, true),
        [s, d, "rw"] => (*s, *d, false),
        _ => return Err(fail(format!("-v {v}: expected SRC:DST[:ro|rw]"))),
    };
    check_target("-v", v, dst)?;
    if src.is_empty() {
        return Ok(MountConfig {
            kind: MountKind::Volume,
            source: kiln_runtime::random_id(),
            target: dst.into(),
            readonly,
            size: 0,
            anonymous: true,
        });
    }
    if src.starts_with('/') {
        // docker's -v makes a missing host directory (--mount refuses).
        fs::create_dir_all(src).map_err(|e| fail(format!("-v {v}: creating {src}: {e}")))?;
        return Ok(MountConfig {
            kind: MountKind::Bind,
            source: src.into(),
            target: dst.into(),
            readonly,
            size: 0,
            anonymous: false,
        });
    }
    if !kiln_runtime::volumes::valid_name(src) {
        return Err(fail(format!(
            "-v {v}: {src:?} is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"
        )));
    }
    Ok(MountConfig {
        kind: MountKind::Volume,
        source: src.into(),
        target: dst.into(),
        readonly,
        size: 0,
        anonymous: false,
    })
}

/// `--mount type=...,source=...,target=...[,readonly]`.
fn mount_flag(spec: &str) -> Result<MountConfig, CliError> {
    let mut kind = MountKind::Volume;
    let (mut source, mut target, mut readonly, mut size) = (String::new(), String::new(), false, 0);
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (field.trim(), None),
        };
        match (k, v) {
            ("type", Some("bind")) => kind = MountKind::Bind,
            ("type", Some("volume")) => kind = MountKind::Volume,
            ("type", Some("tmpfs")) => kind = MountKind::Tmpfs,
            ("source" | "src", Some(v)) => source = v.into(),
            ("target" | "destination" | "dst", Some(v)) => target = v.into(),
            ("readonly" | "ro", None | Some("true" | "1")) => readonly = true,
            ("readonly" | "ro", Some("false" | "0")) => readonly = false,
            ("tmpfs-size", Some(v)) => {
                size = kiln_parser::units::ram_in_bytes(v)
                    .ok_or_else(|| fail(format!("--mount {spec}: tmpfs-size {v}: not a size")))?
            }
            ("tmpfs-mode" | "bind-propagation" | "volume-nocopy", _) => {}
            _ => return Err(fail(format!("--mount {spec}: unexpected {field:?}"))),
        }
    }
    if target.is_empty() {
        return Err(fail(format!("--mount {spec}: target= is required")));
    }
    check_target("--mount", spec, &target)?;
    let anonymous = kind == MountKind::Volume && source.is_empty();
    match kind {
        MountKind::Bind if !source.starts_with('/') => {
            return Err(fail(format!(
                "--mount {spec}: a bind source must be an absolute host path"
            )))
        }
        // docker's --mount refuses a missing bind source (-v makes it).
        MountKind::Bind if !std::path::Path::new(&source).exists() => {
            return Err(fail(format!(
                "--mount {spec}: bind source path does not exist: {source}"
            )))
        }
        MountKind::Volume if anonymous => source = kiln_runtime::random_id(),
        _ => {}
    }
    Ok(MountConfig {
        kind,
        source,
        target,
        readonly,
        size,
        anonymous,
    })
}

/// `--tmpfs PATH[:size=N,...]`.
fn tmpfs_flag(spec: &str) -> Result<MountConfig, CliError> {
    let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
    check_target("--tmpfs", spec, target)?;
    let mut size = 0;
    let mut readonly = false;
    for o in options.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("size", v)) => {
                size = kiln_parser::units::ram_in_bytes(v)
                    .ok_or_else(|| fail(format!("--tmpfs {spec}: size={v}: not a size")))?
            }
            None if o == "ro" => readonly = true,
            _ => {}
        }
    }
    Ok(MountConfig {
        kind: MountKind::Tmpfs,
        source: String::new(),
        target: target.into(),
        readonly,
        size,
        anonymous: false,
    })
}

/// The image's HEALTHCHECK with the `--health-*` flags over it.
fn healthcheck(o: &RunOptions, config: &Value) -> Result<Option<HealthConfig>, CliError> {
    if o.no_healthcheck {
        return Ok(None);
    }
    let image = config.get("Healthcheck").and_then(HealthConfig::from_image);
    let any_flag = o.health_cmd.is_some()
        || o.health_interval.is_some()
        || o.health_timeout.is_some()
        || o.health_start_period.is_some()
        || o.health_start_interval.is_some()
        || o.health_retries.is_some();
    if !any_flag {
        return Ok(image);
    }
    let mut h = image.unwrap_or(HealthConfig {
        test: Vec::new(),
        interval_ms: 0,
        timeout_ms: 0,
        start_period_ms: 0,
        start_interval_ms: 0,
        retries: 0,
    });
    if let Some(cmd) = &o.health_cmd {
        h.test = vec!["CMD-SHELL".into(), cmd.clone()];
    }
    let ms = |flag: &str, v: &Option<String>, into: &mut u64| -> Result<(), CliError> {
        if let Some(v) = v {
            let d = kiln_parser::instructions::parse_duration(v).ok_or_else(|| {
                fail(format!("{flag} {v}: expected a duration like 30s or 1m30s"))
            })?;
            *into = d.as_millis() as u64;
        }
        Ok(())
    };
    ms("--health-interval", &o.health_interval, &mut h.interval_ms)?;
    ms("--health-timeout", &o.health_timeout, &mut h.timeout_ms)?;
    ms(
        "--health-start-period",
        &o.health_start_period,
        &mut h.start_period_ms,
    )?;
    ms(
        "--health-start-interval",
        &o.health_start_interval,
        &mut h.start_interval_ms,
    )?;
    if let Some(r) = o.health_retries {
        h.retries = r;
    }
    if h.test.is_empty() {
        return Err(fail(
            "--health-*: the image has no HEALTHCHECK; give --health-cmd",
        ));
    }
    Ok(h.with_defaults())
}

/// The image, pulled first when the store lacks it (as docker run does);
/// with `--platform`, that platform's image of it.
fn image(
    store: &Store,
    client: &kiln_registry::Client,
    name: &str,
    platform: Option<&kiln_registry::Platform>,
) -> Result<kiln_store::Image, CliError> {
    let found = match platform {
        Some(p) => store.resolve_for(name, &p.to_string()),
        None => store.resolve(name),
    };
    match found {
        Ok(image) => Ok(image),
        Err(
            kiln_store::StoreError::ImageNotFound(_) | kiln_store::StoreError::WrongPlatform { .. },
        ) => {
            let images = kiln_builder::StoreImages {
                store,
                registry: Some(client),
                always_pull: false,
                on_pull: Some(&|r: &kiln_store::Reference| eprintln!("pulling {}", r.familiar())),
            };
            let host = kiln_registry::Platform::host();
            images.image(name, platform.unwrap_or(&host)).map_err(fail)
        }
        Err(e) => Err(fail(e)),
    }
}

/// Entrypoint and Cmd, as docker combines them with `--entrypoint` and
/// the arguments.
fn command(o: &RunOptions, config: &Value) -> Result<(Vec<String>, Vec<String>), CliError> {
    let (entrypoint, cmd) = match &o.entrypoint {
        Some(ep) if ep.is_empty() => (Vec::new(), o.args().to_vec()),
        Some(ep) => (vec![ep.clone()], o.args().to_vec()),
        None => {
            let cmd = if o.args().is_empty() {
                strings(config.get("Cmd"))
            } else {
                o.args().to_vec()
            };
            (strings(config.get("Entrypoint")), cmd)
        }
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(fail(
            "no command specified: the image has no Entrypoint or Cmd, and none was given",
        ));
    }
    Ok((entrypoint, cmd))
}

/// The image's Env, then `--env-file`s, then `-e`s (later wins).
fn environment(o: &RunOptions, config: &Value) -> Result<Vec<String>, CliError> {
    let mut env = strings(config.get("Env"));
    for file in &o.env_files {
        let text = fs::read_to_string(file)
            .map_err(|e| fail(format!("--env-file {}: {e}", file.display())))?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            if let Some(entry) = env_entry(line) {
                set_env(&mut env, entry);
            }
        }
    }
    for e in &o.env {
        if let Some(entry) = env_entry(e) {
            set_env(&mut env, entry);
        }
    }
    Ok(env)
}

fn limits(o: &RunOptions) -> Result<kiln_executor::Limits, CliError> {
    let memory = match &o.memory {
        None => None,
        Some(m) => Some(
            kiln_parser::units::ram_in_bytes(m)
                .filter(|b| *b >= 6 << 20)
                .ok_or_else(|| {
                    fail(format!(
                        "--memory {m}: expected a size of at least 6m, like 512m or 1.5g"
                    ))
                })?,
        ),
    };
    Ok(kiln_executor::Limits {
        memory,
        pids: o.pids_limit,
        ..Default::default()
    })
}

fn runtime(o: &RunOptions) -> Result<kiln_executor::Runtime, kiln_runtime::RuntimeError> {
    let invalid = |m: String| kiln_runtime::RuntimeError::Invalid(m);
    match &o.oci_runtime {
        None => Ok(kiln_executor::Runtime::Native),
        Some(_) if crate::rootless::entered().is_some() => Err(invalid(
            "--oci-runtime: not supported by a rootless kiln yet (its containers run in kiln's own user namespace)".into(),
        )),
        Some(_) if o.tty => Err(invalid(
            "--oci-runtime: -t is not supported with an external runtime yet".into(),
        )),
        Some(path) if !path.is_file() => Err(invalid(format!(
            "--oci-runtime {}: no such runtime binary",
            path.display()
        ))),
        Some(path) => Ok(kiln_executor::Runtime::Oci(path.clone())),
    }
}
