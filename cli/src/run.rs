//! `kiln run`: the image's Entrypoint/Cmd/Env/WorkingDir/User applied as
//! docker applies them, the executor underneath, signals forwarded, and the
//! container's exit code as kiln's.

use crate::{fail, CliError};
mod attach;

use kiln_executor::{Exit, Mount, MountSource, Network, Spec, Stdio};
use kiln_store::Store;
use serde_json::Value;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// `kiln run`'s flags (clap parses straight into this).
#[derive(clap::Args)]
pub struct RunOptions {
    /// The platform's image of a multi-platform image (a foreign one runs
    /// under binfmt_misc emulation) [default: the image's default].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Remove the container's files when it exits.
    #[arg(long)]
    pub rm: bool,
    /// A name for the container (unique among kept containers).
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (`K=V`, or `K` to pass kiln's own).
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read environment variables from a file (one K=V per line).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Bind-mount a host path: SRC:DST[:ro|rw].
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<String>,
    /// Working directory in the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid].
    #[arg(short, long)]
    pub user: Option<String>,
    /// Override the image's entrypoint (resets its CMD).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// `host` (default) or `none` (only loopback).
    #[arg(long, default_value = "host")]
    pub network: String,
    /// Keep standard input open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// The container's hostname (default: the first 12 hex of its id).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Memory limit (`512m`, `1g`, or bytes); enforced with a cgroup.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Maximum number of processes; enforced with a cgroup.
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<u64>,
    /// Run a minimal init as PID 1 that reaps zombies and forwards
    /// signals (docker's --init).
    #[arg(long)]
    pub init: bool,
    /// Run with an external OCI runtime (runc, crun) on a bundle kiln
    /// writes, instead of kiln's own executor.
    #[arg(long = "oci-runtime", value_name = "PATH")]
    pub oci_runtime: Option<PathBuf>,
    pub image: String,
    /// The command and its arguments (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
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
fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

fn set_env(env: &mut Vec<String>, entry: String) {
    let key = entry.split('=').next().unwrap_or_default().to_string();
    env.retain(|e| e.split('=').next() != Some(key.as_str()));
    env.push(entry);
}

fn random_id() -> String {
    let mut buf = [0u8; 32];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn run(store: &Store, client: &kiln_registry::Client, o: RunOptions) -> Result<i32, CliError> {
    let platform = o
        .platform
        .as_deref()
        .map(|p| crate::registry::parse_platform("--platform", Some(p)))
        .transpose()?;
    let image = image(store, client, &o.image, platform.as_ref())?;
    // A foreign image runs under emulation: say what is missing if none.
    let arch = image
        .config
        .get("architecture")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let variant = image
        .config
        .get("variant")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !arch.is_empty() {
        kiln_executor::binfmt::check(arch, variant)
            .map_err(|e| fail(format!("{}: {e}", o.image)))?;
    }
    let config = image.config.get("config").cloned().unwrap_or(Value::Null);
    let argv = command(&o, &config)?;
    let env = environment(&o, &config)?;
    let mounts = volumes(&o.volumes)?;
    let network = match o.network.as_str() {
        "host" | "default" => Network::Host,
        "none" => Network::None,
        other => return Err(fail(format!("--network {other}: expected host or none"))),
    };
    let limits = limits(&o)?;
    let runtime = runtime(&o)?;
    let container = Container::create(store, &o, &image, &argv)?;
    let stop_signal = config
        .get("StopSignal")
        .and_then(Value::as_str)
        .and_then(kiln_parser::units::signal_number)
        .unwrap_or(15);
    let lowers = store.snapshots_for(&image).map_err(fail)?;
    let config_str = |key: &str, default: &str| {
        config
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    let spec = Spec {
        lowers,
        state_dir: container.state_dir.clone(),
        argv,
        env,
        cwd: o
            .workdir
            .clone()
            .unwrap_or_else(|| config_str("WorkingDir", "/")),
        user: o.user.clone().unwrap_or_else(|| config_str("User", "")),
        hostname: o
            .hostname
            .clone()
            .unwrap_or_else(|| container.id[..12].to_string()),
        network,
        mounts,
        // -t: a pty; the caller's terminal goes raw while the container runs.
        stdio: match o.tty {
            true => Stdio::Tty,
            false => Stdio::Inherit {
                stdin: o.interactive,
            },
        },
        rlimits: vec![],
        limits,
        cgroup_root: "/sys/fs/cgroup".into(),
        runtime,
        init: o.init,
        // A container's fsyncs are real (databases rely on them).
        deferred_sync: false,
    };
    // Before the container's own output (unpacking happened by now).
    crate::print_store_warnings();
    let running = match kiln_executor::spawn(spec) {
        Ok(r) => r,
        Err(e) => {
            container.remove();
            return Err(CliError::Exec(e));
        }
    };
    let _ = fs::write(container.state_dir.join("pid"), running.pid().to_string());
    let exit = attach::attach(running, stop_signal);
    if o.rm {
        container.remove();
    }
    match exit? {
        Ok(Exit::Code(c)) => Ok(c),
        Ok(e @ Exit::Signal(_)) => Ok(e.code()),
        Err(e) => Err(CliError::Exec(e)),
    }
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
fn command(o: &RunOptions, config: &Value) -> Result<Vec<String>, CliError> {
    let (entrypoint, cmd) = match &o.entrypoint {
        Some(ep) if ep.is_empty() => (Vec::new(), o.args.clone()),
        Some(ep) => (vec![ep.clone()], o.args.clone()),
        None => {
            let cmd = if o.args.is_empty() {
                strings(config.get("Cmd"))
            } else {
                o.args.clone()
            };
            (strings(config.get("Entrypoint")), cmd)
        }
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(fail(
            "no command specified: the image has no Entrypoint or Cmd, and none was given",
        ));
    }
    Ok(argv)
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

/// `-v SRC:DST[:ro|rw]`: host directories the invoker chose to share.
fn volumes(specs: &[String]) -> Result<Vec<Mount>, CliError> {
    let mut mounts = Vec::new();
    for v in specs {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, readonly) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => return Err(fail(format!("-v {v}: expected SRC:DST[:ro|rw]"))),
        };
        if !src.starts_with('/') {
            return Err(fail(format!("-v {v}: the source must be an absolute host path (named volumes are not supported)")));
        }
        if !Path::new(src).exists() {
            return Err(fail(format!("-v {v}: bind source {src} does not exist")));
        }
        if !dst.starts_with('/') {
            return Err(fail(format!(
                "-v {v}: the destination must be an absolute path in the container"
            )));
        }
        mounts.push(Mount {
            source: MountSource::Bind(PathBuf::from(src)),
            target: dst.to_string(),
            readonly,
        });
    }
    Ok(mounts)
}

fn limits(o: &RunOptions) -> Result<kiln_executor::Limits, CliError> {
    let memory = match &o.memory {
        None => None,
        Some(m) => Some(
            kiln_parser::units::ram_in_bytes(m)
                .filter(|b| *b >= 6 << 20)
                .ok_or_else(|| {
                    fail(format!(
                        "--memory {m}: expected a size of at least 6m, like 512m or 1g"
                    ))
                })?,
        ),
    };
    Ok(kiln_executor::Limits {
        memory,
        pids: o.pids_limit,
    })
}

fn runtime(o: &RunOptions) -> Result<kiln_executor::Runtime, CliError> {
    match &o.oci_runtime {
        None => Ok(kiln_executor::Runtime::Native),
        Some(_) if crate::rootless::entered().is_some() => Err(fail(
            "--oci-runtime: not supported by a rootless kiln yet (its containers run in kiln's own user namespace)",
        )),
        Some(_) if o.tty => Err(fail(
            "--oci-runtime: -t is not supported with an external runtime yet",
        )),
        Some(path) if !path.is_file() => Err(fail(format!(
            "--oci-runtime {}: no such runtime binary",
            path.display()
        ))),
        Some(path) => Ok(kiln_executor::Runtime::Oci(path.clone())),
    }
}

/// A container's state directory (and its name, if it has one), owned by
/// this process.
struct Container {
    id: String,
    state_dir: PathBuf,
    name_link: Option<PathBuf>,
}

impl Container {
    /// Takes the name (refused when another container has it), writes
    /// the container's config and claims it for this process.
    fn create(
        store: &Store,
        o: &RunOptions,
        image: &kiln_store::Image,
        argv: &[String],
    ) -> Result<Container, CliError> {
        // --rm containers whose kiln was killed before it could clean up.
        crate::containers::sweep(store, true);
        let id = random_id();
        let containers = crate::containers::dir(store);
        let state_dir = containers.join(&id);
        fs::create_dir_all(&state_dir)
            .map_err(|e| fail(format!("{}: {e}", state_dir.display())))?;
        let name_link = o.name.as_ref().map(|n| containers.join("names").join(n));
        if let (Some(link), Some(name)) = (&name_link, &o.name) {
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                let _ = fs::remove_dir_all(&state_dir);
                return Err(fail(format!(
                    "--name {name:?}: use letters, digits, '_', '.' and '-'"
                )));
            }
            let _ = fs::create_dir_all(link.parent().unwrap_or(&containers));
            if std::os::unix::fs::symlink(&id, link).is_err() {
                let _ = fs::remove_dir_all(&state_dir);
                return Err(fail(format!(
                    "the container name {name:?} is already in use"
                )));
            }
        }
        let container = Container {
            id,
            state_dir,
            name_link,
        };
        let _ = fs::write(
            container.state_dir.join("config.json"),
            serde_json::json!({
                "Image": image.config_digest.to_string(),
                "Name": o.name,
                "Cmd": argv,
                "AutoRemove": o.rm,
            })
            .to_string(),
        );
        if let Err(e) = crate::containers::claim(&container.state_dir) {
            container.remove();
            return Err(fail(format!("{}: {e}", container.state_dir.display())));
        }
        Ok(container)
    }

    fn remove(&self) {
        let _ = fs::remove_dir_all(&self.state_dir);
        if let Some(link) = &self.name_link {
            let _ = fs::remove_file(link);
        }
    }
}
