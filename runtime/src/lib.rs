//! kiln's container lifecycle, without a daemon: what `kiln run -d`,
//! `ps`, `logs`, `exec`, `stop`, `rm`, `commit` and `volume` work on.
//!
//! Every container is a directory under `<store root>/containers/<id>/`:
//! `config.json` (what to run, written when the container is created and
//! changed only by `rename`), `state.json` (what is happening, written
//! atomically by the one process that supervises the container),
//! `container.log` (its output, docker's json-file lines), and the
//! executor's `upper/` (its filesystem changes, kept across restarts).
//! `names/<name>` symlinks give names to ids.
//!
//! A started container is supervised by exactly one process: the
//! foreground `kiln run` that started it, or for `run -d`/`start` a
//! monitor (`kiln container-monitor ID`, conmon's role in podman) that
//! holds the container's image in the store, streams its output to the
//! log, records its exit, applies the restart policy and runs its health
//! check. The container dies with its supervisor (PR_SET_PDEATHSIG), so
//! "is it running?" is "is its supervisor alive?", told by pid *and*
//! start time, and a supervisor killed outright leaves a container every
//! command reports as dead and `rm -f` cleans.
//!
//! Modules: `config` (what a container is), `state` (what it is doing),
//! `containers` (finding, creating, listing, removing), `spec` (a
//! container as the executor's spec), `monitor`, `logs`, `health`,
//! `lifecycle` (stop, kill, wait), `volumes`, `changes` (diff, export,
//! commit).

pub mod changes;
pub mod config;
pub mod containers;
pub mod health;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod spec;
pub mod state;
pub mod time;
pub mod volumes;

pub use config::{
    ContainerConfig, DeviceConfig, HealthConfig, MountConfig, MountKind, RestartPolicy, Ulimit,
};
pub use containers::{Container, Containers};
pub use state::{Health, State, Status};

/// Why a runtime operation failed; the messages name the container, the
/// volume or the path.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("multiple containers match {0:?}: use more of the id")]
    Ambiguous(String),
    #[error("the container name {0:?} is already in use")]
    NameInUse(String),
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    #[error(transparent)]
    Exec(#[from] kiln_executor::ExecError),
    #[error(transparent)]
    Network(#[from] kiln_network::NetworkError),
}

impl RuntimeError {
    /// docker's exit status for a failure to start a process: 127 not
    /// found, 126 not executable, 125 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::Exec(e) => e.exit_code(),
            _ => 125,
        }
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// Attaches the path to an io error.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (a temporary file renamed over it):
/// a reader sees the old file or the new one, never half of one.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io_at(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_at(path))
}

/// 64 random hex digits (a container's id, an anonymous volume's name).
pub fn random_id() -> String {
    use std::io::Read;
    let mut buf = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
