//! The executor's errors, and the steps of container setup a failure is
//! reported at.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{0}")]
    User(String),
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec: {0:?}: permission denied")]
    PermissionDenied(String),
    #[error("container setup failed while {step}: {source}")]
    Setup {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    /// The caller gave up while the container waited to start (for a
    /// locked cache mount).
    #[error("cancelled while waiting to start")]
    Cancelled,
}

impl ExecError {
    /// The exit status docker uses for this failure (127 not found, 126
    /// not executable, 125 anything else before the command ran).
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::NotFound(_) => 127,
            ExecError::PermissionDenied(_) => 126,
            _ => 125,
        }
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExecError + '_ {
    move |source| ExecError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The step the child was in when it failed (sent over the error pipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Step {
    Network = 1,
    Rootfs,
    PivotRoot,
    Mountpoints,
    Proc,
    Dev,
    Sys,
    Mounts,
    Mask,
    Hostname,
    Workdir,
    Rlimits,
    Stdio,
    Privileges,
    Seccomp,
    Exec,
    Namespaces,
}

impl Step {
    pub(crate) fn describe(n: u32) -> &'static str {
        const NAMES: [&str; 17] = [
            "bringing up the loopback interface",
            "mounting the root filesystem",
            "switching to the root filesystem",
            "creating mount points",
            "mounting /proc",
            "setting up /dev",
            "mounting /sys",
            "mounting volumes",
            "masking kernel paths",
            "setting the hostname",
            "entering the working directory",
            "setting resource limits",
            "connecting standard streams",
            "dropping privileges",
            "installing the seccomp filter",
            "starting the command",
            "joining the container's namespaces",
        ];
        NAMES
            .get((n as usize).wrapping_sub(1))
            .copied()
            .unwrap_or("starting the container")
    }
}
