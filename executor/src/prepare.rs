//! Spec → everything the cloned child needs, made before `clone`: the
//! child is a copy of a threaded process and may only make raw syscalls,
//! so every path, string, descriptor and pointer array is ready here.
//!
//! The plan is computed in steps that need no privilege and can be
//! tested without root — where things go in the tree (`layout.rs`), the
//! process's environment, command search, streams and rlimits
//! (`process.rs`), [`container_path`] — and [`Prepared::new`] then turns
//! it into C strings and descriptors.

mod layout;
mod process;

pub(crate) use layout::*;
pub(crate) use process::*;

use crate::error::ExecError;
use crate::spec::{Network, Security, Spec};
use crate::{devices, seccomp, user};
use rustix::process::{Resource, Rlimit};
use std::ffi::{c_char, CString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

pub(crate) enum PreparedMountKind {
    /// `source` is the host path. The child clones it into a detached mount
    /// tree (`tree`) while the host root is still reachable, and attaches
    /// that tree after `pivot_root`. (A descriptor opened by the parent
    /// would not do: its mount belongs to the parent's namespace, and
    /// `open_tree` refuses mounts outside the caller's.)
    Bind {
        source: CString,
        tree: std::cell::OnceCell<OwnedFd>,
    },
    /// An overlay of `lower` with its own upper/work dirs, made into a
    /// detached mount before `pivot_root` and attached after.
    Copy {
        lower: CString,
        upper: CString,
        work: CString,
        tree: std::cell::OnceCell<OwnedFd>,
    },
    Tmpfs {
        size: CString,
    },
}

pub(crate) struct PreparedMount {
    pub(crate) kind: PreparedMountKind,
    pub(crate) target: CString,
    pub(crate) readonly: bool,
}

/// Everything the child needs, allocated before `clone`.
pub(crate) struct Prepared {
    pub(crate) lowers_top_first: Vec<CString>,
    pub(crate) upper: CString,
    pub(crate) work: CString,
    pub(crate) rootfs: CString,
    pub(crate) network_none: bool,
    /// In a user namespace (rootless kiln): overlayfs needs `userxattr`.
    pub(crate) userns: bool,
    /// /sys bound read-only from the host: sysfs can be mounted only by a
    /// namespace that owns its network namespace (rootless, host network).
    pub(crate) bind_sys: bool,
    /// The container's /proc and /sys, made before `pivot_root`.
    pub(crate) proc_tree: std::cell::OnceCell<OwnedFd>,
    pub(crate) sys_tree: std::cell::OnceCell<OwnedFd>,
    /// gid 5 (tty) exists here, so devpts can own new ptys by it.
    pub(crate) tty_gid: bool,
    pub(crate) mkdirs: Vec<CString>,
    pub(crate) mkfiles: Vec<CString>,
    pub(crate) mounts: Vec<PreparedMount>,
    pub(crate) hostname: CString,
    pub(crate) cwd_mkdirs: Vec<CString>,
    pub(crate) cwd: CString,
    pub(crate) rlimits: Vec<(Resource, Rlimit)>,
    pub(crate) stdio: ChildStdio,
    /// Only mount the rootfs and exec an OCI runtime (see `oci.rs`).
    pub(crate) runtime_helper: bool,
    /// PID 1 is a reaper and the command its child.
    pub(crate) init: bool,
    /// Read end of a pipe the child waits on before exec while the parent
    /// moves it into its cgroup.
    pub(crate) start_gate: Option<OwnedFd>,
    /// Remount the root read-only once every mountpoint is made.
    pub(crate) readonly_rootfs: bool,
    pub(crate) privileges: Privileges,
    pub(crate) command: Command,
    pub(crate) error_pipe: OwnedFd,
    /// The allowed device nodes, each cloned from the host before
    /// `pivot_root` and attached in the container's /dev.
    pub(crate) devices: Vec<PreparedDevice>,
    /// `size=` of /dev/shm, in kilobytes (`65536k`).
    pub(crate) shm_size: CString,
    /// The IPC namespace to join (`--ipc container:X`).
    pub(crate) ipc_namespace: Option<OwnedFd>,
    /// The network namespace to join (`Network::Join`).
    pub(crate) net_namespace: Option<crate::spec::NetNamespace>,
    pub(crate) life: LifePipe,
}

/// A pipe whose write end only kiln holds: EOF on the read end means kiln
/// is gone (see `child::tie_to_parent`).
pub(crate) struct LifePipe {
    /// Non-blocking.
    pub(crate) read: OwnedFd,
    /// The number of our inherited copy of the write end, closed first.
    pub(crate) write: std::os::fd::RawFd,
}

/// The child's standard streams (None: inherited) or its terminal socket.
pub(crate) struct ChildStdio {
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
    /// The child's end of a socket the pty's primary end is sent over.
    pub(crate) tty_socket: Option<OwnedFd>,
}

impl ChildStdio {
    pub(crate) fn take(streams: &mut Streams) -> ChildStdio {
        ChildStdio {
            stdin: streams.stdin.take(),
            stdout: streams.stdout_child.take(),
            stderr: streams.stderr_child.take(),
            tty_socket: streams.tty_child.take(),
        }
    }
}

/// Who the process runs as and what it may do.
pub(crate) struct Privileges {
    pub(crate) capabilities: u64,
    pub(crate) uid: rustix::process::Uid,
    pub(crate) gid: rustix::process::Gid,
    pub(crate) groups: Vec<rustix::process::Gid>,
    /// setgroups(2) is allowed (not in a single-id user namespace).
    pub(crate) setgroups: bool,
    /// Set `no_new_privs`: setuid binaries and file capabilities gain
    /// nothing (`--security-opt no-new-privileges`).
    pub(crate) no_new_privs: bool,
    pub(crate) seccomp: Option<&'static [seccompiler::BpfProgram; 2]>,
    /// A custom profile, installed instead of docker's.
    pub(crate) custom_seccomp: Option<crate::SeccompProfile>,
    /// Syncing calls answered at once (a build step; `Spec::deferred_sync`).
    pub(crate) deferred_sync: Option<&'static seccompiler::BpfProgram>,
}

impl Privileges {
    pub(crate) fn new(user: &user::ResolvedUser, security: &Security) -> Privileges {
        Privileges {
            capabilities: security.capabilities,
            uid: rustix::process::Uid::from_raw(user.uid),
            gid: rustix::process::Gid::from_raw(user.gid),
            groups: user
                .groups
                .iter()
                .map(|g| rustix::process::Gid::from_raw(*g))
                .collect(),
            setgroups: crate::rootless::setgroups_allowed(),
            no_new_privs: security.no_new_privs,
            seccomp: if security.seccomp && security.seccomp_profile.is_none() {
                seccomp::programs()
            } else {
                None
            },
            custom_seccomp: security.seccomp_profile.clone(),
            deferred_sync: None,
        }
    }
}

/// The command: where `execve` looks for it, its argv and envp.
pub(crate) struct Command {
    pub(crate) exec_candidates: Vec<CString>,
    _argv: Vec<CString>,
    pub(crate) argv_ptrs: Vec<*const c_char>,
    _envp: Vec<CString>,
    pub(crate) envp_ptrs: Vec<*const c_char>,
}

impl Command {
    pub(crate) fn new(argv: &[String], env: &[String]) -> Result<Command, ExecError> {
        let candidates = exec_candidates(argv.first().map_or("", String::as_str), env);
        Command::with_candidates(
            cstrings(&candidates, "command")?,
            cstrings(argv, "argument")?,
            cstrings(env, "environment variable")?,
        )
    }

    fn with_candidates(
        exec_candidates: Vec<CString>,
        argv: Vec<CString>,
        envp: Vec<CString>,
    ) -> Result<Command, ExecError> {
        Ok(Command {
            exec_candidates,
            argv_ptrs: pointers(&argv),
            _argv: argv,
            envp_ptrs: pointers(&envp),
            _envp: envp,
        })
    }
}

pub(crate) struct PreparedDevice {
    pub(crate) host: CString,
    pub(crate) target: CString,
    /// A directory of devices (`--device /dev/snd`), bound recursively.
    pub(crate) directory: bool,
    /// Directories to make in /dev above `target`.
    pub(crate) parents: Vec<CString>,
    pub(crate) tree: std::cell::OnceCell<OwnedFd>,
}

/// docker's default devices, then `--device`s (each a host character or
/// block device, or a directory of them).
fn devices(spec: &Spec) -> Result<Vec<PreparedDevice>, ExecError> {
    let mut out: Vec<PreparedDevice> = devices::ALLOWED
        .iter()
        .map(|d| PreparedDevice {
            host: d.host.to_owned(),
            target: d.target.to_owned(),
            directory: false,
            parents: Vec::new(),
            tree: std::cell::OnceCell::new(),
        })
        .collect();
    for d in &spec.devices {
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::metadata(&d.host).map_err(|source| ExecError::Io {
            path: d.host.clone(),
            source,
        })?;
        let kind = meta.file_type();
        if !(kind.is_char_device() || kind.is_block_device() || kind.is_dir()) {
            return Err(ExecError::Invalid(format!(
                "--device {}: not a device",
                d.host.display()
            )));
        }
        let target = container_path(&d.target)?;
        if target == "/dev" || !target.starts_with("/dev/") {
            return Err(ExecError::Invalid(format!(
                "--device {}: the container path {target} must be inside /dev",
                d.host.display()
            )));
        }
        out.retain(|o| o.target.as_bytes() != target.as_bytes());
        out.push(PreparedDevice {
            host: cstring(d.host.as_os_str().as_bytes(), "device path")?,
            parents: cstrings(
                &parents(&target)
                    .into_iter()
                    .filter(|p| p != "/dev")
                    .collect::<Vec<_>>(),
                "device path",
            )?,
            target: cstring(&target, "device path")?,
            directory: kind.is_dir(),
            tree: std::cell::OnceCell::new(),
        });
    }
    Ok(out)
}

/// The IPC namespace of the process `pid` (`--ipc container:X`).
fn ipc_namespace(spec: &Spec) -> Result<Option<OwnedFd>, ExecError> {
    let crate::spec::Ipc::Join(pid) = spec.ipc else {
        return Ok(None);
    };
    let path = format!("/proc/{pid}/ns/ipc");
    rustix::fs::open(
        path.as_str(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map(Some)
    .map_err(|e| ExecError::Io {
        path: path.into(),
        source: e.into(),
    })
}

/// `/dev/null`, read-only and close-on-exec.
pub(crate) fn dev_null() -> Result<OwnedFd, ExecError> {
    rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| ExecError::Io {
        path: "/dev/null".into(),
        source: e.into(),
    })
}

pub(crate) fn cstring(s: impl AsRef<[u8]>, what: &str) -> Result<CString, ExecError> {
    CString::new(s.as_ref()).map_err(|_| ExecError::Invalid(format!("{what} contains a NUL byte")))
}

/// `/a/b/c` → [`/a`, `/a/b`] (the directories above it).
pub(crate) fn parents(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut acc = String::new();
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        acc.push('/');
        acc.push_str(part);
        out.push(acc.clone());
    }
    out
}

/// A container path made absolute and clean (`..` resolved lexically).
pub(crate) fn container_path(path: &str) -> Result<String, ExecError> {
    if !path.starts_with('/') {
        return Err(ExecError::Invalid(format!(
            "container path {path:?} must be absolute"
        )));
    }
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// What [`Prepared::new`] is made from.
pub(crate) struct Inputs<'a> {
    pub(crate) spec: &'a Spec,
    pub(crate) lowers_top_first: &'a [PathBuf],
    pub(crate) dirs: &'a StateDirs,
    pub(crate) layout: Layout,
    pub(crate) env: Vec<String>,
    pub(crate) cwd: String,
    pub(crate) user: &'a user::ResolvedUser,
    pub(crate) streams: &'a mut Streams,
    pub(crate) start_gate: Option<OwnedFd>,
    pub(crate) error_pipe: OwnedFd,
    pub(crate) life: LifePipe,
}

fn cstrings<S: AsRef<[u8]>>(items: &[S], what: &str) -> Result<Vec<CString>, ExecError> {
    items.iter().map(|s| cstring(s, what)).collect()
}

fn pointers(v: &[CString]) -> Vec<*const c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

impl Prepared {
    /// Every string and descriptor the child uses, for kiln's own executor
    /// (`oci::helper` turns it into the OCI runtime's helper).
    pub(crate) fn new(i: Inputs<'_>) -> Result<Prepared, ExecError> {
        let spec = i.spec;
        let userns = crate::rootless::in_user_namespace();
        let mut cwd_mkdirs = parents(&i.cwd);
        cwd_mkdirs.push(i.cwd.clone());
        let lowers: Vec<&[u8]> = i
            .lowers_top_first
            .iter()
            .map(|l| l.as_os_str().as_bytes())
            .collect();
        Ok(Prepared {
            lowers_top_first: cstrings(&lowers, "layer path")?,
            upper: cstring(i.dirs.upper.as_os_str().as_bytes(), "upper path")?,
            work: cstring(i.dirs.work.as_os_str().as_bytes(), "work path")?,
            rootfs: cstring(i.dirs.rootfs.as_os_str().as_bytes(), "rootfs path")?,
            network_none: spec.network == Network::None,
            userns,
            bind_sys: userns && spec.network != Network::None,
            proc_tree: std::cell::OnceCell::new(),
            sys_tree: std::cell::OnceCell::new(),
            tty_gid: crate::rootless::gid_mapped(5),
            mkdirs: cstrings(&i.layout.mkdirs, "path")?,
            mkfiles: cstrings(&i.layout.mkfiles, "path")?,
            mounts: i.layout.mounts,
            hostname: cstring(&spec.hostname, "hostname")?,
            cwd_mkdirs: cstrings(&cwd_mkdirs, "working directory")?,
            cwd: cstring(&i.cwd, "working directory")?,
            rlimits: rlimits(spec),
            stdio: ChildStdio::take(i.streams),
            runtime_helper: false,
            init: spec.init,
            start_gate: i.start_gate,
            readonly_rootfs: spec.readonly_rootfs,
            privileges: Privileges {
                deferred_sync: spec
                    .deferred_sync
                    .then(seccomp::deferred_sync_program)
                    .flatten(),
                ..Privileges::new(i.user, &spec.security)
            },
            command: Command::new(&spec.argv, &i.env)?,
            error_pipe: i.error_pipe,
            devices: devices(spec)?,
            shm_size: cstring(format!("{}k", spec.shm_size.div_ceil(1024)), "shm size")?,
            ipc_namespace: ipc_namespace(spec)?,
            net_namespace: match &spec.network {
                Network::Join(ns) => Some(ns.clone()),
                _ => None,
            },
            life: i.life,
        })
    }

    /// Replaces the command (the OCI backend execs the runtime instead).
    pub(crate) fn set_command(
        &mut self,
        path: &[u8],
        argv: Vec<CString>,
        env: Vec<CString>,
    ) -> Result<(), ExecError> {
        self.command = Command::with_candidates(vec![cstring(path, "runtime path")?], argv, env)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
