//! The process the container runs: its environment with docker's
//! defaults, where `execve` looks for it, its standard streams and its
//! rlimits.

use super::dev_null;
use crate::error::ExecError;
use crate::spec::{Spec, Stdio, DEFAULT_PATH};
use rustix::process::{Resource, Rlimit};
use std::os::fd::OwnedFd;

/// The environment: the spec's, with docker's defaults for PATH,
/// HOSTNAME and HOME when it sets none.
pub(crate) fn environment(env: &[String], hostname: &str, home: Option<&str>) -> Vec<String> {
    let mut env = env.to_vec();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", home.unwrap_or("/root")));
    }
    env
}

/// The paths `execve` tries for `argv0`: itself when it has a slash, else
/// each `$PATH` entry of `env` (the last PATH wins), as execvp searches.
pub(crate) fn exec_candidates(argv0: &str, env: &[String]) -> Vec<String> {
    if argv0.contains('/') {
        return vec![argv0.to_string()];
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{}/{argv0}", d.trim_end_matches('/')))
        .collect()
}

/// A close-on-exec pipe (read end, write end).
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), ExecError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| ExecError::Setup {
        step: "creating pipes",
        source: e.into(),
    })
}

/// The command's name (for errors) and its working directory, absolute
/// and clean (`/` when none is given).
pub(crate) fn command_and_cwd(argv: &[String], cwd: &str) -> Result<(String, String), ExecError> {
    let argv0 = argv
        .first()
        .ok_or_else(|| ExecError::Invalid("no command given".into()))?
        .clone();
    let cwd = super::container_path(if cwd.is_empty() { "/" } else { cwd })?;
    Ok((argv0, cwd))
}

/// The life pipe (see `LifePipe`): its read end non-blocking, both
/// close-on-exec; only kiln keeps the write end.
pub(crate) fn life_pipe() -> Result<(OwnedFd, OwnedFd), ExecError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK)
        .map_err(|e| ExecError::Setup {
            step: "creating pipes",
            source: e.into(),
        })
}

/// The container's standard streams: the child's ends, and ours.
#[derive(Default)]
pub(crate) struct Streams {
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout_child: Option<OwnedFd>,
    pub(crate) stderr_child: Option<OwnedFd>,
    pub(crate) tty_child: Option<OwnedFd>,
    pub(crate) stdout_parent: Option<OwnedFd>,
    pub(crate) stderr_parent: Option<OwnedFd>,
    pub(crate) tty_parent: Option<OwnedFd>,
}

pub(crate) fn streams(stdio: &Stdio) -> Result<Streams, ExecError> {
    let mut s = Streams::default();
    match stdio {
        Stdio::Inherit { stdin: true } => {}
        Stdio::Inherit { stdin: false } => s.stdin = Some(dev_null()?),
        Stdio::Piped | Stdio::PipedOutput { .. } => {
            let (r, w) = pipe()?;
            s.stdout_parent = Some(r);
            s.stdout_child = Some(w);
            let (r, w) = pipe()?;
            s.stderr_parent = Some(r);
            s.stderr_child = Some(w);
            if !matches!(stdio, Stdio::PipedOutput { stdin: true }) {
                s.stdin = Some(dev_null()?);
            }
        }
        Stdio::Tty => {
            let (a, b) = rustix::net::socketpair(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::STREAM,
                rustix::net::SocketFlags::CLOEXEC,
                None,
            )
            .map_err(|e| ExecError::Setup {
                step: "creating a terminal socket",
                source: e.into(),
            })?;
            s.tty_parent = Some(a);
            s.tty_child = Some(b);
        }
    }
    Ok(s)
}

/// The spec's rlimits, never above the current hard limit: raising it
/// needs CAP_SYS_RESOURCE, which kiln does not assume.
pub(crate) fn rlimits(spec: &Spec) -> Vec<(Resource, Rlimit)> {
    spec.rlimits
        .iter()
        .map(|(r, soft, hard)| {
            let cur = rustix::process::getrlimit(*r);
            let cap = |v: Option<u64>| match (v, cur.maximum) {
                (Some(v), Some(max)) => Some(v.min(max)),
                (v, _) => v,
            };
            (
                *r,
                Rlimit {
                    current: cap(*soft),
                    maximum: cap(*hard),
                },
            )
        })
        .collect()
}
