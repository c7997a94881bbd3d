//! The container commands besides `run`/`create`: start, stop, kill,
//! restart, rm, wait, ps, logs, exec, inspect, rename, commit, diff,
//! export, cp, and `volume`. The lifecycle itself lives in
//! `kiln_runtime`; this module parses, prints and picks exit codes.

use crate::run::runtime_error;
use crate::{emit, fail, print_error, CliError};
use kiln_runtime::lifecycle;
use kiln_runtime::volumes::Volumes;
use kiln_runtime::{Container, Containers, MountKind, Status};
use kiln_store::Store;
use serde_json::{json, Value};
use std::path::Path;

#[derive(clap::Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a generated name when none is given).
    Create { name: Option<String> },
    /// List volumes.
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (refused while a container uses one, unless -f).
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove anonymous volumes no container uses (-a: every unused one).
    Prune {
        #[arg(short, long)]
        all: bool,
        /// Accepted for docker's scripts (kiln does not ask).
        #[arg(short, long)]
        force: bool,
    },
}

/// Runs `f` on each named container; errors are printed and the command
/// fails at the end (docker's way for `stop a b c`).
fn each(
    containers: &Containers,
    names: &[String],
    mut f: impl FnMut(&Container) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut failed = false;
    for n in names {
        let r = containers.find(n).map_err(fail).and_then(|c| f(&c));
        if let Err(e) = r {
            crate::report(&e);
            failed = true;
        }
    }
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

fn exe() -> Result<std::path::PathBuf, CliError> {
    std::env::current_exe().map_err(|e| fail(format!("finding kiln: {e}")))
}

/// `kiln start [-a]`.
pub fn start(store: &Store, names: &[String], attach: bool) -> Result<i32, CliError> {
    let containers = Containers::new(store.root());
    let mut last = 0;
    each(&containers, names, |c| {
        if c.is_running() {
            if !attach {
                emit(&format!("{}\n", names_or_id(c, names)))?;
            }
            return Ok(());
        }
        let offset = kiln_runtime::logs::len(&c.log_path());
        kiln_runtime::monitor::start_detached(&exe()?, store.root(), c).map_err(fail)?;
        if attach {
            last = attach_until_exit(c, offset)?;
        } else {
            emit(&format!("{}\n", names_or_id(c, names)))?;
        }
        Ok(())
    })?;
    Ok(last)
}

/// What the user typed for `c` (docker echoes it).
fn names_or_id(c: &Container, names: &[String]) -> String {
    names
        .iter()
        .find(|n| *n == &c.config.name || c.id().starts_with(n.as_str()))
        .cloned()
        .unwrap_or_else(|| c.config.name.clone())
}

pub fn stop(store: &Store, names: &[String], timeout: Option<u64>) -> Result<(), CliError> {
    let containers = Containers::new(store.root());
    each(&containers, names, |c| {
        lifecycle::stop(c, timeout).map_err(fail)?;
        emit(&format!("{}\n", names_or_id(c, names)))
    })
}

pub fn restart(store: &Store, names: &[String], timeout: Option<u64>) -> Result<(), CliError> {
    let containers = Containers::new(store.root());
    each(&containers, names, |c| {
        lifecycle::stop(c, timeout).map_err(fail)?;
        kiln_runtime::monitor::start_detached(&exe()?, store.root(), c).map_err(fail)?;
        emit(&format!("{}\n", names_or_id(c, names)))
    })
}

pub fn kill(store: &Store, names: &[String], signal: &str) -> Result<(), CliError> {
    let sig = kiln_parser::units::signal_number(signal)
        .ok_or_else(|| fail(format!("--signal {signal}: not a signal")))?;
    let containers = Containers::new(store.root());
    each(&containers, names, |c| {
        lifecycle::kill(c, sig).map_err(fail)?;
        emit(&format!("{}\n", names_or_id(c, names)))
    })
}

pub fn rm(store: &Store, names: &[String], force: bool, volumes: bool) -> Result<(), CliError> {
    let containers = Containers::new(store.root());
    let vols = Volumes::new(store.root());
    each(&containers, names, |c| {
        lifecycle::remove(&containers, &vols, c, force, volumes).map_err(fail)?;
        emit(&format!("{}\n", names_or_id(c, names)))
    })
}

pub fn wait(store: &Store, names: &[String]) -> Result<(), CliError> {
    let containers = Containers::new(store.root());
    each(&containers, names, |c| {
        emit(&format!("{}\n", lifecycle::wait(c)))
    })
}

pub fn rename(store: &Store, old: &str, new: &str) -> Result<(), CliError> {
    let containers = Containers::new(store.root());
    let mut c = containers.find(old).map_err(fail)?;
    containers.rename(&mut c, new).map_err(fail)
}

/// docker's STATUS column.
fn status_text(c: &Container) -> String {
    let st = c.state();
    let now = kiln_store::now();
    let since =
        |ts: &str| kiln_runtime::time::human_duration(now - kiln_runtime::time::seconds(ts));
    match st.effective() {
        Status::Created => "Created".into(),
        Status::Running => {
            let health = match &st.health {
                Some(h) if h.status == "starting" => " (health: starting)".to_string(),
                Some(h) => format!(" ({})", h.status),
                None => String::new(),
            };
            format!("Up {}{health}", since(&st.started_at))
        }
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            since(&st.finished_at)
        ),
        Status::Exited => format!("Exited ({}) {} ago", st.exit_code, since(&st.finished_at)),
        Status::Dead => "Dead".into(),
    }
}

/// `--filter key=value`: id, name, status, ancestor, label, exited, health.
fn matches_filter(c: &Container, filter: &str) -> Result<bool, CliError> {
    let (k, v) = filter
        .split_once('=')
        .ok_or_else(|| fail(format!("--filter {filter}: expected key=value")))?;
    let st = c.state();
    Ok(match k {
        "id" => c.id().starts_with(v),
        "name" => c.config.name.contains(v),
        "status" => st.effective().as_str() == v,
        "ancestor" => c.config.image == v || c.config.image_id.contains(v),
        "exited" => st.effective() == Status::Exited && v.parse() == Ok(st.exit_code),
        "health" => match &st.health {
            Some(h) => h.status == v,
            None => v == "none",
        },
        "label" => match v.split_once('=') {
            Some((lk, lv)) => c.config.labels.get(lk).is_some_and(|x| x == lv),
            None => c.config.labels.contains_key(v),
        },
        _ => return Err(fail(format!("--filter {filter}: unknown filter {k:?}"))),
    })
}

pub fn ps(
    store: &Store,
    all: bool,
    quiet: bool,
    no_trunc: bool,
    filters: &[String],
    format: Option<&str>,
) -> Result<(), CliError> {
    let format = crate::format::Format::parse(format.unwrap_or("table"), "--format")?;
    let mut objects = Vec::new();
    let containers = Containers::new(store.root());
    let mut rows = vec![[
        "CONTAINER ID".to_string(),
        "IMAGE".into(),
        "COMMAND".into(),
        "CREATED".into(),
        "STATUS".into(),
        "PORTS".into(),
        "NAMES".into(),
    ]];
    let mut ids = String::new();
    for c in containers.list() {
        let running = c.is_running();
        if !all && !running && filters.is_empty() {
            continue;
        }
        let mut keep = true;
        for f in filters {
            keep &= matches_filter(&c, f)?;
        }
        if !keep {
            continue;
        }
        let id = if no_trunc { c.id() } else { c.short_id() };
        if quiet {
            ids.push_str(id);
            ids.push('\n');
            continue;
        }
        let mut command = c.config.argv.join(" ");
        if !no_trunc && command.chars().count() > 20 {
            command = command.chars().take(19).collect::<String>() + "…";
        }
        let created = kiln_runtime::time::seconds(&c.config.created);
        let ports = if running {
            published_ports(store, &c).join(", ")
        } else {
            String::new()
        };
        let running_for = format!(
            "{} ago",
            kiln_runtime::time::human_duration(kiln_store::now() - created)
        );
        // docker's fields for `ps --format`.
        objects.push(json!({
            "Command": format!("\"{command}\""),
            "CreatedAt": c.config.created,
            "ID": id,
            "Image": c.config.image,
            "Labels": c.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            "Names": c.config.name,
            "Ports": ports,
            "RunningFor": running_for,
            "State": c.state().effective().as_str(),
            "Status": status_text(&c),
        }));
        rows.push([
            id.to_string(),
            c.config.image.clone(),
            format!("\"{command}\""),
            running_for,
            status_text(&c),
            ports,
            c.config.name.clone(),
        ]);
    }
    if quiet {
        return emit(&ids);
    }
    let header = |field: &str| match field {
        "ID" => "CONTAINER ID".to_string(),
        "RunningFor" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => other.to_uppercase(),
    };
    if let Some(text) = format.render(&objects, &header, "--format")? {
        return emit(&text);
    }
    emit(&crate::images::table(&rows))
}

pub fn logs(
    store: &Store,
    name: &str,
    follow: bool,
    tail: Option<String>,
    timestamps: bool,
) -> Result<(), CliError> {
    let containers = Containers::new(store.root());
    let c = containers.find(name).map_err(fail)?;
    let tail = match tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| fail(format!("--tail {n}: expected a number or all")))?,
        ),
    };
    let print = |line: &kiln_runtime::logs::Line| print_log_line(line, timestamps);
    let path = c.log_path();
    let start = kiln_runtime::logs::len(&path);
    for line in kiln_runtime::logs::read(&path, tail) {
        if !print(&line) {
            return Ok(());
        }
    }
    if follow {
        kiln_runtime::logs::follow(&path, start, || !c.is_running(), |l| print(l)).map_err(fail)?;
    }
    Ok(())
}

/// Prints the log from `offset` until the container stops (`start -a`).
/// The container's output from `offset` until its first exit, and that
/// exit's code; under a restart policy the monitor goes on restarting it
/// (as an attached `docker run --restart` returns at the first exit).
pub(crate) fn attach_until_exit(c: &Container, offset: u64) -> Result<i32, CliError> {
    let first_run = c.state().restart_count;
    let exited = || {
        let st = c.state();
        !st.running() || st.status != kiln_runtime::Status::Running || st.restart_count != first_run
    };
    kiln_runtime::logs::follow(&c.log_path(), offset, exited, |line| {
        print_log_line(line, false)
    })
    .map_err(fail)?;
    Ok(c.state().exit_code)
}

/// One log line to stdout or stderr (as it was written), with its time
/// first when `timestamps`; false when the reader went away.
fn print_log_line(line: &kiln_runtime::logs::Line, timestamps: bool) -> bool {
    let text = if timestamps {
        format!("{} {}", line.time, line.log)
    } else {
        line.log.clone()
    };
    if line.stream == "stderr" {
        use std::io::Write;
        std::io::stderr().write_all(text.as_bytes()).is_ok()
    } else {
        emit(&text).is_ok()
    }
}

/// `kiln exec` flags.
#[derive(clap::Args)]
pub struct ExecOptions {
    /// Keep standard input open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Start it and return at once.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Every capability, no seccomp filter.
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// `kiln exec`: the command in the container's namespaces and cgroup,
/// with its environment, user and security; exits with its code.
pub fn exec(store: &Store, o: ExecOptions) -> Result<i32, CliError> {
    let containers = Containers::new(store.root());
    let c = containers.find(&o.container).map_err(fail)?;
    let Some(pid) = c.state().live_pid() else {
        return Err(fail(format!("container {} is not running", c.config.name)));
    };
    let stdio = if o.detach {
        kiln_executor::Stdio::Inherit { stdin: false }
    } else if o.tty {
        kiln_executor::Stdio::Tty
    } else {
        kiln_executor::Stdio::Inherit {
            stdin: o.interactive,
        }
    };
    let mut spec = kiln_runtime::spec::exec_spec(&c.config, pid, o.command.clone(), stdio)
        .map_err(crate::run::runtime_error)?;
    if o.tty && !spec.env.iter().any(|e| e.starts_with("TERM=")) {
        spec.env.push("TERM=xterm".into());
    }
    for entry in o.env.iter().filter_map(|e| crate::run::env_entry(e)) {
        crate::run::set_env(&mut spec.env, entry);
    }
    if o.privileged {
        spec.security.capabilities = kiln_executor::ALL_CAPABILITIES;
        spec.security.seccomp = false;
        spec.security.seccomp_profile = None;
    }
    if let Some(w) = &o.workdir {
        spec.cwd = w.clone();
    }
    if let Some(u) = &o.user {
        spec.user = u.clone();
    }
    let running = kiln_executor::exec(spec).map_err(CliError::Exec)?;
    if o.detach {
        return Ok(0);
    }
    match crate::run::attach::attach(running, 15, None)? {
        Ok(e) => Ok(e.code()),
        Err(e) => Err(CliError::Exec(e)),
    }
}

/// A container in docker's inspect shape.
pub fn inspect_json(store: &Store, c: &Container) -> Value {
    let cfg = &c.config;
    let st = c.state();
    let effective = st.effective();
    let pid = st.live_pid().unwrap_or(0);
    let volumes = Volumes::new(store.root());
    let mounts: Vec<Value> = cfg
        .mounts
        .iter()
        .map(|m| match m.kind {
            MountKind::Volume => json!({
                "Type": "volume",
                "Name": m.source,
                "Source": volumes.get(&m.source).map(|v| v.data.display().to_string()).unwrap_or_default(),
                "Destination": m.target,
                "Driver": "local",
                "RW": !m.readonly,
            }),
            MountKind::Bind => json!({
                "Type": "bind",
                "Source": m.source,
                "Destination": m.target,
                "RW": !m.readonly,
            }),
            MountKind::Tmpfs => json!({
                "Type": "tmpfs",
                "Source": "",
                "Destination": m.target,
                "RW": !m.readonly,
            }),
        })
        .collect();
    let health = st.health.as_ref().map(|h| {
        json!({
            "Status": h.status,
            "FailingStreak": h.failing_streak,
            "Log": h.log.iter().map(|p| json!({
                "Start": p.start, "End": p.end, "ExitCode": p.exit_code, "Output": p.output,
            })).collect::<Vec<_>>(),
        })
    });
    let mut state = json!({
        "Status": effective.as_str(),
        "Running": effective == Status::Running,
        "Paused": false,
        "Restarting": effective == Status::Restarting,
        "OOMKilled": false,
        "Dead": effective == Status::Dead,
        "Pid": pid,
        // The supervising process (podman's ConmonPid).
        "MonitorPid": st.supervisor.split(':').next().and_then(|p| p.parse::<u32>().ok()).unwrap_or(0),
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": if st.started_at.is_empty() { "0001-01-01T00:00:00Z".to_string() } else { st.started_at.clone() },
        "FinishedAt": if st.finished_at.is_empty() { "0001-01-01T00:00:00Z".to_string() } else { st.finished_at.clone() },
    });
    if let Some(h) = health {
        state["Health"] = h;
    }
    let (path, args) = cfg
        .argv
        .split_first()
        .map_or((String::new(), vec![]), |(p, a)| (p.clone(), a.to_vec()));
    json!({
        "Id": cfg.id,
        "Created": cfg.created,
        "Path": path,
        "Args": args,
        "State": state,
        "Image": cfg.image_id,
        "LogPath": c.log_path(),
        "Name": format!("/{}", cfg.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": {
            "NetworkMode": cfg.network,
            "RestartPolicy": {"Name": cfg.restart.name(), "MaximumRetryCount": cfg.restart.max_retries()},
            "AutoRemove": cfg.auto_remove,
            "ReadonlyRootfs": cfg.read_only,
            "Init": cfg.init,
            "Memory": cfg.memory.unwrap_or(0),
            "PidsLimit": cfg.pids_limit,
            "NanoCpus": cfg.cpu_quota_us.map_or(0, |q| q * 1_000_000_000 / kiln_executor::CPU_PERIOD_US),
            "CpuShares": cfg.cpu_shares.unwrap_or(0),
            "CpusetCpus": cfg.cpuset_cpus.clone().unwrap_or_default(),
            "ShmSize": cfg.shm_size.unwrap_or(kiln_executor::DEFAULT_SHM_SIZE),
            "PidMode": cfg.pid_mode,
            "IpcMode": if cfg.ipc_mode.is_empty() { "private" } else { cfg.ipc_mode.as_str() },
            "GroupAdd": cfg.group_add,
            "Ulimits": cfg.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
            "Devices": cfg.devices.iter().map(|d| json!({"PathOnHost": d.host, "PathInContainer": d.target, "CgroupPermissions": "rwm"})).collect::<Vec<_>>(),
            "SecurityOpt": security_opt(cfg),
            "Binds": cfg.mounts.iter().filter(|m| m.kind != MountKind::Tmpfs && !m.anonymous)
                .map(|m| format!("{}:{}{}", m.source, m.target, if m.readonly { ":ro" } else { "" }))
                .collect::<Vec<_>>(),
        },
        "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": c.upper()}},
        "Mounts": mounts,
        "Config": {
            "Hostname": kiln_runtime::spec::hostname(cfg),
            "User": cfg.user,
            "Tty": cfg.tty,
            "OpenStdin": cfg.interactive,
            "Env": cfg.env,
            "Cmd": cfg.cmd,
            "Entrypoint": if cfg.entrypoint.is_empty() { Value::Null } else { json!(cfg.entrypoint) },
            "Image": cfg.image,
            "WorkingDir": cfg.working_dir,
            "Labels": cfg.labels,
            "StopSignal": cfg.stop_signal.to_string(),
            "StopTimeout": cfg.stop_timeout,
            "Healthcheck": cfg.healthcheck.as_ref().map(|h| h.to_docker()),
        },
        "NetworkSettings": network_settings(store, c),
    })
}

/// docker's `Ports` column: `127.0.0.1:8080->80/tcp`.
fn published_ports(store: &Store, c: &Container) -> Vec<String> {
    kiln_network::leases_of(store.root(), c.id())
        .iter()
        .flat_map(|(_, l)| l.ports.iter().map(|p| p.display()))
        .collect()
}

/// `NetworkSettings` as docker shows it: the first network's address
/// and gateway, the published ports, and each network's endpoint.
fn network_settings(store: &Store, c: &Container) -> Value {
    let leases = kiln_network::leases_of(store.root(), c.id());
    let mut ports = serde_json::Map::new();
    let mut networks = serde_json::Map::new();
    for (net, lease) in &leases {
        for p in &lease.ports {
            let key = format!("{}/{}", p.container_port, p.protocol);
            let binding = json!({
                "HostIp": p.host_ip.map_or("0.0.0.0".to_string(), |i| i.to_string()),
                "HostPort": p.host_port.to_string(),
            });
            match ports.get_mut(&key).and_then(Value::as_array_mut) {
                Some(list) => list.push(binding),
                None => {
                    ports.insert(key, json!([binding]));
                }
            }
        }
        networks.insert(
            net.name.clone(),
            json!({
                "NetworkID": net.id,
                "IPAddress": lease.ip.to_string(),
                "IPPrefixLen": net.subnet().prefix,
                "Gateway": net.gateway.to_string(),
                "Aliases": lease.aliases,
            }),
        );
    }
    if networks.is_empty() {
        networks.insert(c.config.network.clone(), json!({}));
    }
    let (ip, gateway) = leases
        .first()
        .map(|(n, l)| (l.ip.to_string(), n.gateway.to_string()))
        .unwrap_or_default();
    json!({
        "IPAddress": ip,
        "Gateway": gateway,
        "Ports": ports,
        "Networks": networks,
    })
}

fn security_opt(cfg: &kiln_runtime::ContainerConfig) -> Vec<String> {
    let mut out = Vec::new();
    if cfg.no_new_privileges {
        out.push("no-new-privileges".to_string());
    }
    if !cfg.seccomp {
        out.push("seccomp=unconfined".to_string());
    } else if let Some(profile) = &cfg.seccomp_profile {
        // docker shows the profile's content here too.
        out.push(format!("seccomp={profile}"));
    }
    out
}

/// A container by that name or id, if any (`inspect` tries containers
/// first, as docker does).
pub fn find(store: &Store, name: &str) -> Option<Container> {
    Containers::new(store.root()).find(name).ok()
}

pub fn diff(store: &Store, name: &str) -> Result<(), CliError> {
    let c = Containers::new(store.root()).find(name).map_err(fail)?;
    let mut out = String::new();
    for (change, path) in kiln_runtime::changes::diff(store, &c).map_err(fail)? {
        out.push_str(&format!(
            "{} {}\n",
            change.letter(),
            kiln_parser::terminal_safe(&path)
        ));
    }
    emit(&out)
}

pub fn export(store: &Store, name: &str, output: Option<&Path>) -> Result<(), CliError> {
    let c = Containers::new(store.root()).find(name).map_err(fail)?;
    match output {
        Some(path) if path != Path::new("-") => {
            // Written beside, then renamed: never a half-written archive.
            let tmp = path.with_extension("kiln-partial");
            let file =
                std::fs::File::create(&tmp).map_err(|e| fail(format!("{}: {e}", tmp.display())))?;
            let r = kiln_runtime::changes::export(store, &c, std::io::BufWriter::new(file));
            if let Err(e) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(fail(e));
            }
            std::fs::rename(&tmp, path).map_err(|e| fail(format!("{}: {e}", path.display())))
        }
        _ => {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                return Err(fail(
                    "refusing to write a tar to a terminal: give -o FILE or redirect",
                ));
            }
            kiln_runtime::changes::export(store, &c, std::io::stdout().lock()).map_err(fail)
        }
    }
}

/// `kiln cp SRC DEST`: one side is `CONTAINER:PATH`.
pub fn cp(store: &Store, src: &str, dest: &str) -> Result<(), CliError> {
    let containers = Containers::new(store.root());
    let split = |s: &str| -> Option<(String, String)> {
        if s.starts_with('/') || s.starts_with('.') {
            return None;
        }
        let (c, p) = s.split_once(':')?;
        Some((c.to_string(), p.to_string()))
    };
    match (split(src), split(dest)) {
        (Some((name, path)), None) => {
            let c = containers.find(&name).map_err(fail)?;
            kiln_runtime::changes::copy_out(store, &c, &path, Path::new(dest)).map_err(fail)
        }
        (None, Some((name, path))) => {
            let c = containers.find(&name).map_err(fail)?;
            kiln_runtime::changes::copy_in(store, &c, Path::new(src), &path).map_err(fail)
        }
        _ => Err(fail(
            "cp: give exactly one of SRC and DEST as CONTAINER:PATH",
        )),
    }
}

/// `kiln commit`: the container's changes as a new image.
pub fn commit(
    store: &Store,
    name: &str,
    target: Option<&str>,
    author: Option<&str>,
    message: Option<&str>,
    changes: &[String],
) -> Result<(), CliError> {
    let c = Containers::new(store.root()).find(name).map_err(fail)?;
    let base = store.resolve(&c.config.image_id).map_err(fail)?;
    let mut config = base.config.clone();
    let mut inner = config
        .get("config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // docker records the container's command and environment.
    inner.insert("Cmd".into(), json!(c.config.cmd));
    inner.insert("Env".into(), json!(c.config.env));
    for change in changes {
        crate::change::apply(change, &mut inner).map_err(|e| fail(format!("-c {change}: {e}")))?;
    }
    let now = kiln_store::rfc3339(kiln_store::now());
    config["config"] = Value::Object(inner);
    config["created"] = json!(now);
    config["container"] = json!(c.id());
    if let Some(a) = author {
        config["author"] = json!(a);
    }
    let mut history = config
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut entry = json!({"created": now, "created_by": c.config.argv.join(" ")});
    if let Some(m) = message {
        entry["comment"] = json!(m);
    }
    if let Some(a) = author {
        entry["author"] = json!(a);
    }
    history.push(entry);
    config["history"] = json!(history);
    if let Some(obj) = config.as_object_mut() {
        obj.remove("rootfs");
    }
    let names = match target {
        Some(t) => vec![kiln_store::Reference::parse(t).map_err(|e| fail(format!("{t}: {e}")))?],
        None => vec![],
    };
    let image = kiln_runtime::changes::commit(store, &c, config, &names).map_err(runtime_error)?;
    emit(&format!("{}\n", image.config_digest))
}

/// Volumes some container mounts.
fn volumes_in_use(containers: &Containers) -> Vec<String> {
    containers
        .list()
        .iter()
        .flat_map(|c| c.config.mounts.clone())
        .filter(|m| m.kind == MountKind::Volume)
        .map(|m| m.source)
        .collect()
}

pub fn volume(store: &Store, command: VolumeCommand) -> Result<(), CliError> {
    let volumes = Volumes::new(store.root());
    let containers = Containers::new(store.root());
    match command {
        VolumeCommand::Create { name } => {
            let v = match name {
                Some(n) => volumes.create(&n, false),
                // A generated name, but not anonymous: `volume prune`
                // keeps it, as docker's does.
                None => volumes.create(&kiln_runtime::random_id(), false),
            }
            .map_err(fail)?;
            emit(&format!("{}\n", v.meta.name))
        }
        VolumeCommand::Ls { quiet } => {
            let mut rows = vec![["DRIVER".to_string(), "VOLUME NAME".into()]];
            let mut names = String::new();
            for v in volumes.list() {
                names.push_str(&format!("{}\n", v.meta.name));
                rows.push(["local".into(), v.meta.name.clone()]);
            }
            if quiet {
                emit(&names)
            } else {
                emit(&crate::images::table(&rows))
            }
        }
        VolumeCommand::Inspect { names } => {
            let mut out = Vec::new();
            let mut failed = false;
            for n in &names {
                match volumes.get(n) {
                    Ok(v) => out.push(json!({
                        "Name": v.meta.name,
                        "Driver": "local",
                        "Mountpoint": v.data,
                        "CreatedAt": v.meta.created,
                        "Labels": v.meta.labels,
                        "Scope": "local",
                        "Options": {},
                    })),
                    Err(e) => {
                        print_error(e);
                        failed = true;
                    }
                }
            }
            emit_json_list(&out, failed)
        }
        VolumeCommand::Rm { force, names } => {
            let used = volumes_in_use(&containers);
            let mut failed = false;
            for n in &names {
                let r = if used.contains(n) && !force {
                    Err(fail(format!(
                        "volume {n} is in use by a container (remove it first, or -f)"
                    )))
                } else {
                    volumes.remove(n).map_err(fail)
                };
                match r {
                    Ok(()) => emit(&format!("{n}\n"))?,
                    Err(CliError::Message(m)) => {
                        print_error(m);
                        failed = true;
                    }
                    Err(e) => return Err(e),
                }
            }
            if failed {
                Err(CliError::Reported)
            } else {
                Ok(())
            }
        }
        VolumeCommand::Prune { all, .. } => {
            let used = volumes_in_use(&containers);
            let mut out = String::from("Deleted Volumes:\n");
            for v in volumes.list() {
                if used.contains(&v.meta.name) || (!all && !v.meta.anonymous) {
                    continue;
                }
                if volumes.remove(&v.meta.name).is_ok() {
                    out.push_str(&format!("{}\n", v.meta.name));
                }
            }
            emit(&out)
        }
    }
}

/// The monitor (hidden subcommand): supervises one container.
pub fn monitor(store: &Store, id: &str) -> Result<(), CliError> {
    kiln_runtime::monitor::run(store, id).map_err(fail)
}

/// `kiln prune`: stopped containers.
pub fn sweep(store: &Store) -> usize {
    Containers::new(store.root()).sweep(false)
}

/// A JSON array (docker's inspect output), then failure if any entry
/// could not be shown (already reported).
fn emit_json_list(out: &[Value], failed: bool) -> Result<(), CliError> {
    emit(&format!(
        "{}\n",
        serde_json::to_string_pretty(out).unwrap_or_default()
    ))?;
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

/// `kiln inspect`: containers first, then images (docker's order).
pub fn inspect(store: &Store, names: &[String], format: Option<&str>) -> Result<(), CliError> {
    let mut out = Vec::new();
    let mut failed = false;
    for n in names {
        if let Some(c) = find(store, n) {
            out.push(inspect_json(store, &c));
            continue;
        }
        match store.resolve(n) {
            Ok(img) => out.push(img.inspect()),
            Err(e) => {
                print_error(e);
                failed = true;
            }
        }
    }
    // `-f TEMPLATE`: one line per object, as `docker inspect -f`.
    if let Some(format) = format {
        let format = crate::format::Format::parse(format, "--format")?;
        if let Some(text) = format.render(&out, &|k| k.to_uppercase(), "--format")? {
            emit(&text)?;
            return if failed {
                Err(CliError::Reported)
            } else {
                Ok(())
            };
        }
    }
    emit_json_list(&out, failed)
}
