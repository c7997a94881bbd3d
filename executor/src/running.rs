//! A started container: waiting for it (with its output streamed line by
//! line), signalling it, and tidying its state directory afterwards.

use crate::error::ExecError;
use crate::prepare::parents;
use crate::spec::{Spec, Stdio};
use crate::{spawn, user};
use rustix::process::Pid;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The shell convention: the code, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// A started container.
pub struct Running {
    pub(crate) oci: Option<(PathBuf, PathBuf, String)>,
    /// Removed (rmdir) when the container is done.
    pub(crate) _cgroup: Option<crate::cgroup::Cgroup>,
    /// Cache locks held while the container runs.
    pub(crate) _cache_locks: crate::cache_mount::CacheHolds,
    pub(crate) pid: Pid,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
    pub(crate) pty: Option<OwnedFd>,
    /// None for a process joined to a running container.
    pub(crate) cleanup: Option<Cleanup>,
}

/// What to tidy in the state dir once the container is gone.
pub(crate) struct Cleanup {
    pub(crate) upper: PathBuf,
    pub(crate) lowers: Vec<PathBuf>,
    pub(crate) mountpoints: Vec<String>,
    pub(crate) rootfs: PathBuf,
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Cleanup {
    /// Removes mountpoints the executor created (empty, and absent from
    /// every lower layer) from the diff, deepest first, and the rootfs dir.
    pub(crate) fn run(&self) {
        let mut points: Vec<String> = self
            .mountpoints
            .iter()
            .flat_map(|m| parents(m).into_iter().chain([m.clone()]))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        points.dedup();
        for p in points {
            let rel = p.trim_start_matches('/');
            if user::exists_in_lowers(&self.lowers, Path::new(rel)) {
                continue;
            }
            let path = self.upper.join(rel);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {
                    let _ = fs::remove_dir(&path); // only if empty
                }
                Ok(m) if m.is_file() && m.len() == 0 => {
                    let _ = fs::remove_file(&path);
                }
                _ => {}
            }
        }
        let _ = fs::remove_dir(&self.rootfs);
    }
}

/// Receives one descriptor sent with SCM_RIGHTS (None if the peer closed).
pub(crate) fn receive_fd(sock: &OwnedFd) -> Option<OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC).ok()?;
    let mut received = None;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            received = fds.next();
        }
    }
    received
}

/// A cheap, copyable way to signal a running container (e.g. from a
/// signal-forwarding thread while another waits).
#[derive(Debug, Clone)]
pub struct Handle {
    pid: Pid,
    /// (runtime, its state root, container id) for the OCI backend, whose
    /// container is not our child's PID 1.
    oci: Option<(PathBuf, PathBuf, String)>,
}

impl Handle {
    /// Sends signal number `sig` to the container's PID 1.
    pub fn signal(&self, sig: i32) {
        if let Some(s) = rustix::process::Signal::from_named_raw(sig) {
            let _ = rustix::process::kill_process(self.pid, s);
        }
    }

    /// SIGKILL: ends every process in the container.
    pub fn kill(&self) {
        if let Some((runtime, root, id)) = &self.oci {
            let _ = std::process::Command::new(runtime)
                .arg("--root")
                .arg(root)
                .args(["kill", id, "KILL"])
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = rustix::process::kill_process(self.pid, rustix::process::Signal::KILL);
    }
}

impl Running {
    /// A process started in a running container (`join::exec`).
    pub(crate) fn joined(
        pid: Pid,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
        pty: Option<OwnedFd>,
    ) -> Running {
        Running {
            oci: None,
            _cgroup: None,
            _cache_locks: Default::default(),
            pid,
            stdout,
            stderr,
            pty,
            cleanup: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get() as u32
    }

    /// The read ends of the container's stdout and stderr pipes
    /// (`Stdio::Piped`, `Stdio::PipedOutput`).
    pub fn take_output(&mut self) -> (Option<OwnedFd>, Option<OwnedFd>) {
        (self.stdout.take(), self.stderr.take())
    }

    /// The primary end of the container's terminal (`Stdio::Tty`).
    pub fn take_pty(&mut self) -> Option<OwnedFd> {
        self.pty.take()
    }

    pub fn handle(&self) -> Handle {
        Handle {
            pid: self.pid,
            oci: self.oci.clone(),
        }
    }

    /// Kills the whole container: SIGKILL to its PID 1 takes every process
    /// in the PID namespace with it (PID 1 ignores SIGTERM without a handler).
    pub fn kill(&self) {
        self.handle().kill();
    }

    /// Sends a signal to the container's PID 1.
    pub fn signal(&self, sig: rustix::process::Signal) {
        let _ = rustix::process::kill_process(self.pid, sig);
    }

    /// Streams stdout and stderr line by line (Piped stdio), then waits.
    pub fn wait_with_lines(
        mut self,
        mut on_line: impl FnMut(Stream, &[u8]),
    ) -> Result<Exit, ExecError> {
        let (tx, rx) = std::sync::mpsc::channel::<(Stream, Vec<u8>)>();
        let mut readers = Vec::new();
        for (stream, fd) in [
            (Stream::Stdout, self.stdout.take()),
            (Stream::Stderr, self.stderr.take()),
        ] {
            if let Some(fd) = fd {
                let tx = tx.clone();
                readers.push(std::thread::spawn(move || {
                    let mut r = BufReader::new(std::fs::File::from(fd));
                    let mut line = Vec::new();
                    while let Ok(n) = r.read_until(b'\n', &mut line) {
                        if n == 0 {
                            break;
                        }
                        let _ = tx.send((stream, std::mem::take(&mut line)));
                    }
                }));
            }
        }
        drop(tx);
        for (stream, line) in rx {
            on_line(stream, &line);
        }
        for r in readers {
            let _ = r.join();
        }
        self.wait()
    }

    /// Waits for the container's PID 1 and tidies up.
    pub fn wait(self) -> Result<Exit, ExecError> {
        let status = loop {
            match rustix::process::waitpid(Some(self.pid), rustix::process::WaitOptions::empty()) {
                Ok(Some((_, status))) => break status,
                Ok(None) => continue,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(ExecError::Setup {
                        step: "waiting for the container",
                        source: e.into(),
                    })
                }
            }
        };
        if let Some(cleanup) = &self.cleanup {
            cleanup.run();
        }
        Ok(if let Some(sig) = status.terminating_signal() {
            Exit::Signal(sig)
        } else {
            Exit::Code(status.exit_status().unwrap_or(0))
        })
    }
}

/// Runs a container to completion with piped output.
pub fn run(mut spec: Spec, on_line: impl FnMut(Stream, &[u8])) -> Result<Exit, ExecError> {
    spec.stdio = Stdio::Piped;
    spawn(spec)?.wait_with_lines(on_line)
}
