//! The executor: runs a process in an isolated Linux container on an
//! overlayfs stack of layer snapshots, and leaves what it changed in an
//! upper directory that the store turns into a layer. RUN steps use it, and
//! so does `kiln run`.
//!
//! Must not depend on the frontend or the solver. It is the only crate that
//! talks to the kernel directly, and its `sys` module is the only place in
//! kiln where `unsafe` is allowed (each block with a `// SAFETY:` line).
//!
//! How a container starts: the parent prepares every string, descriptor and
//! seccomp program, then makes one raw `clone` into new mount, PID, UTS and
//! IPC namespaces (plus network for `--network none`). The child mounts the
//! overlay with the new mount API (`lowerdir+`, so 100+ layers fit),
//! `pivot_root`s into it, mounts /proc, /dev, /sys and the requested mounts,
//! masks what Docker masks, drops to Docker's capability set under
//! `no_new_privs` and seccomp, and execs. Every mount lives in the child's
//! mount namespace, so none can outlive it.

mod cgroup;
mod child;
mod devices;
mod oci;
mod seccomp;
#[allow(unsafe_code)]
mod sys;
pub mod terminal;
pub mod user;
pub mod view;

pub use cgroup::Limits;

use rustix::process::{Pid, Resource, Rlimit};
use std::ffi::{c_char, CString};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Docker's default capabilities: CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
/// KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT,
/// MKNOD, AUDIT_WRITE, SETFCAP.
pub const DEFAULT_CAPABILITIES: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 7)
    | (1 << 8)
    | (1 << 10)
    | (1 << 13)
    | (1 << 18)
    | (1 << 27)
    | (1 << 29)
    | (1 << 31);

/// `PATH` when the image sets none (as docker).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Share the host's network namespace.
    Host,
    /// A fresh network namespace with only `lo`, up.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A host file or directory.
    Bind(PathBuf),
    /// A host directory seen through an overlay whose writes go to a
    /// throwaway upper dir: `RUN --mount=type=bind,rw` (the source never
    /// changes).
    Copy(PathBuf),
    /// A fresh tmpfs of at most this many bytes (0 = kernel default).
    Tmpfs { size: u64 },
    /// A secret: written to a file only the container's user can read
    /// (mode 0400), bound read-only; never part of the diff.
    Secret(Vec<u8>),
    /// A mount tree the caller already cloned (`open_tree` with
    /// `OPEN_TREE_CLONE`), e.g. a path inside a detached overlay view;
    /// attached read-only or read-write as the mount says.
    Tree(DetachedTree),
    /// A persistent cache directory (`RUN --mount=type=cache`), created on
    /// first use with `uid`/`gid`/`mode`.
    Cache {
        dir: PathBuf,
        sharing: Sharing,
        uid: u32,
        gid: u32,
        mode: u32,
    },
}

/// A detached mount tree, shared by the specs that use it.
#[derive(Debug, Clone)]
pub struct DetachedTree(pub std::sync::Arc<OwnedFd>);

impl PartialEq for DetachedTree {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for DetachedTree {}

/// Clones the file or directory `at` (already resolved by the caller,
/// e.g. with `RESOLVE_IN_ROOT`) into a detached mount for
/// [`MountSource::Tree`].
pub fn clone_tree(at: std::os::fd::BorrowedFd<'_>) -> std::io::Result<DetachedTree> {
    use rustix::mount::OpenTreeFlags;
    let fd = rustix::mount::open_tree(
        at,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::AT_EMPTY_PATH,
    )?;
    Ok(DetachedTree(std::sync::Arc::new(fd)))
}

/// How concurrent users of one cache mount share it (BuildKit's modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Everyone writes the same directory at once.
    Shared,
    /// One writer at a time; others wait.
    Locked,
    /// One writer at a time; others get a throwaway copy.
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: MountSource,
    /// Absolute path in the container.
    pub target: String,
    pub readonly: bool,
}

/// Where the container's standard streams go.
#[derive(Debug)]
pub enum Stdio {
    /// The caller's own stdout/stderr, and stdin when `stdin` (else
    /// /dev/null), as `docker run` without and with `-i`.
    Inherit { stdin: bool },
    /// stdout and stderr through pipes (read with [`Running::wait_with_lines`]);
    /// stdin is /dev/null.
    Piped,
    /// A terminal allocated inside the container's own devpts (so `tty`
    /// can name it); its primary end comes back through
    /// [`Running::take_pty`].
    Tty,
}

/// Which engine runs the container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Runtime {
    /// kiln's own executor (this crate).
    #[default]
    Native,
    /// An OCI runtime binary (runc, crun) on a bundle kiln writes.
    Oci(PathBuf),
}

/// Everything needed to run one container.
#[derive(Debug)]
pub struct Spec {
    /// Snapshot directories, base first (as the store returns them).
    pub lowers: Vec<PathBuf>,
    /// A directory the executor owns for this container: `upper/` (the
    /// diff), `work/`, `rootfs/` and generated `/etc` files go here.
    pub state_dir: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    /// Working directory in the container; created if missing.
    pub cwd: String,
    /// `name|uid[:group|gid]`; empty is root.
    pub user: String,
    pub hostname: String,
    pub network: Network,
    pub mounts: Vec<Mount>,
    pub stdio: Stdio,
    pub rlimits: Vec<(Resource, Option<u64>, Option<u64>)>,
    /// Optional cgroup memory/pids limits.
    pub limits: Limits,
    /// Where cgroup hierarchies are mounted (normally /sys/fs/cgroup).
    pub cgroup_root: PathBuf,
    pub runtime: Runtime,
    /// Run a minimal init as PID 1 that reaps orphaned zombies and
    /// forwards signals to the command (docker's `--init`). Without it the
    /// command itself is PID 1, as in docker by default.
    pub init: bool,
}

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

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExecError + '_ {
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
}

impl Step {
    fn describe(n: u32) -> &'static str {
        const NAMES: [&str; 16] = [
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
        ];
        NAMES
            .get((n as usize).wrapping_sub(1))
            .copied()
            .unwrap_or("starting the container")
    }
}

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
    kind: PreparedMountKind,
    target: CString,
    readonly: bool,
}

/// Everything the child needs, allocated before `clone`.
pub(crate) struct Prepared {
    lowers_top_first: Vec<CString>,
    upper: CString,
    work: CString,
    rootfs: CString,
    network_none: bool,
    mkdirs: Vec<CString>,
    mkfiles: Vec<CString>,
    mounts: Vec<PreparedMount>,
    hostname: CString,
    cwd_mkdirs: Vec<CString>,
    cwd: CString,
    rlimits: Vec<(Resource, Rlimit)>,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// Only mount the rootfs and exec an OCI runtime (see `oci.rs`).
    runtime_helper: bool,
    /// PID 1 is a reaper and the command its child.
    init: bool,
    /// Read end of a pipe the child waits on before exec while the parent
    /// moves it into its cgroup.
    start_gate: Option<OwnedFd>,
    /// The child's end of a socket the pty's primary end is sent over.
    tty_socket: Option<OwnedFd>,
    capabilities: u64,
    uid: rustix::process::Uid,
    gid: rustix::process::Gid,
    groups: Vec<rustix::process::Gid>,
    seccomp: Option<&'static [seccompiler::BpfProgram; 2]>,
    exec_candidates: Vec<CString>,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const c_char>,
    error_pipe: OwnedFd,
    /// The allowed device nodes, each cloned from the host before
    /// `pivot_root` and attached in the container's /dev.
    devices: Vec<PreparedDevice>,
    /// Read end of a pipe whose write end only kiln holds: EOF means kiln
    /// is gone (see `child::tie_to_parent`). Non-blocking.
    life_read: OwnedFd,
    /// The number of our inherited copy of that write end, closed first.
    life_write: std::os::fd::RawFd,
}

pub(crate) struct PreparedDevice {
    host: &'static std::ffi::CStr,
    target: &'static std::ffi::CStr,
    tree: std::cell::OnceCell<OwnedFd>,
}

/// `/dev/null`, read-only and close-on-exec.
fn dev_null() -> Result<OwnedFd, ExecError> {
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

fn cstring(s: impl AsRef<[u8]>, what: &str) -> Result<CString, ExecError> {
    CString::new(s.as_ref()).map_err(|_| ExecError::Invalid(format!("{what} contains a NUL byte")))
}

/// `/a/b/c` → [`/a`, `/a/b`] (the directories above it).
fn parents(path: &str) -> Vec<String> {
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

fn clean_abs(path: &str) -> Result<String, ExecError> {
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

/// Files and directories the executor creates to mount over; removed from
/// the diff afterwards when the image did not have them.
const SYSTEM_DIRS: [&str; 3] = ["/proc", "/dev", "/sys"];
const SYSTEM_FILES: [&str; 3] = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"];

/// A started container.
pub struct Running {
    oci: Option<(PathBuf, PathBuf, String)>,
    /// Removed (rmdir) when the container is done.
    _cgroup: Option<cgroup::Cgroup>,
    /// Cache locks held while the container runs.
    _cache_locks: Vec<CacheLock>,
    pid: Pid,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pty: Option<OwnedFd>,
    cleanup: Cleanup,
}

/// What to tidy in the state dir once the container is gone.
struct Cleanup {
    upper: PathBuf,
    lowers: Vec<PathBuf>,
    mountpoints: Vec<String>,
    rootfs: PathBuf,
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Starts a container. Returns once the command has been exec'd (or with
/// the reason it could not be).
pub fn spawn(spec: Spec) -> Result<Running, ExecError> {
    let state = &spec.state_dir;
    let (upper, work, rootfs, etc) = (
        state.join("upper"),
        state.join("work"),
        state.join("rootfs"),
        state.join("etc"),
    );
    for d in [&upper, &work, &rootfs, &etc] {
        fs::create_dir_all(d).map_err(io_err(d))?;
    }
    let mut lowers: Vec<PathBuf> = spec.lowers.iter().rev().cloned().collect();
    if lowers.is_empty() {
        // FROM scratch: overlay needs a lower layer; an empty one will do.
        let empty = state.join("empty");
        fs::create_dir_all(&empty).map_err(io_err(&empty))?;
        lowers.push(empty);
    }
    let user = user::resolve(&spec.user, &lowers)?;

    // Generated /etc files, bind-mounted read-write like docker's.
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
        spec.hostname
    );
    let resolv = match spec.network {
        Network::Host => fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        Network::None => String::new(),
    };
    let mut mounts = Vec::new();
    let mut mkdirs: Vec<String> = SYSTEM_DIRS.iter().map(|s| s.to_string()).collect();
    let mut mkfiles: Vec<String> = Vec::new();
    let mut mountpoints: Vec<String> = SYSTEM_DIRS
        .iter()
        .chain(SYSTEM_FILES.iter())
        .map(|s| s.to_string())
        .collect();
    let mut binds: Vec<(PathBuf, String, bool)> = Vec::new();
    for (name, content) in [
        ("hosts", hosts.as_str()),
        ("resolv.conf", resolv.as_str()),
        ("hostname", &format!("{}\n", spec.hostname)),
    ] {
        let path = etc.join(name);
        fs::write(&path, content).map_err(io_err(&path))?;
        binds.push((path, format!("/etc/{name}"), false));
    }
    let mut cache_locks = Vec::new();
    let mut resolved_mounts = Vec::new();
    for (n, m) in spec.mounts.iter().enumerate() {
        let source = match &m.source {
            MountSource::Secret(data) => {
                let dir = state.join("secrets");
                fs::create_dir_all(&dir).map_err(io_err(&dir))?;
                let path = dir.join(n.to_string());
                write_private(&path, data, user.uid, user.gid)?;
                resolved_mounts.push(Mount {
                    source: MountSource::Bind(path),
                    target: m.target.clone(),
                    readonly: true,
                });
                continue;
            }
            MountSource::Cache {
                dir,
                sharing,
                uid,
                gid,
                mode,
            } => {
                let (source, lock) = cache_source(dir, *sharing, *uid, *gid, *mode)?;
                cache_locks.extend(lock);
                source
            }
            other => other.clone(),
        };
        resolved_mounts.push(Mount {
            source,
            target: m.target.clone(),
            readonly: m.readonly,
        });
    }
    for m in &resolved_mounts {
        let target = clean_abs(&m.target)?;
        match &m.source {
            MountSource::Bind(src) => binds.push((src.clone(), target, m.readonly)),
            MountSource::Tree(tree) => {
                let st = rustix::fs::fstat(&*tree.0).map_err(|e| ExecError::Setup {
                    step: "inspecting a mount tree",
                    source: e.into(),
                })?;
                mkdirs.extend(parents(&target));
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Directory
                {
                    mkdirs.push(target.clone());
                } else {
                    mkfiles.push(target.clone());
                }
                mountpoints.push(target.clone());
                let cell = std::cell::OnceCell::new();
                let dup = tree.0.try_clone().map_err(|e| ExecError::Setup {
                    step: "inspecting a mount tree",
                    source: e,
                })?;
                let _ = cell.set(dup);
                mounts.push(PreparedMount {
                    kind: PreparedMountKind::Bind {
                        source: CString::default(),
                        tree: cell,
                    },
                    target: cstring(&target, "mount target")?,
                    readonly: m.readonly,
                });
            }
            MountSource::Copy(src) => {
                if !src.is_dir() {
                    return Err(ExecError::Invalid(format!(
                        "copy mount source {} is not a directory",
                        src.display()
                    )));
                }
                let n = mounts.len();
                let (up, wk) = (
                    state.join(format!("mounts/{n}/upper")),
                    state.join(format!("mounts/{n}/work")),
                );
                for d in [&up, &wk] {
                    fs::create_dir_all(d).map_err(io_err(d))?;
                }
                mkdirs.extend(parents(&target));
                mkdirs.push(target.clone());
                mountpoints.push(target.clone());
                mounts.push(PreparedMount {
                    kind: PreparedMountKind::Copy {
                        lower: cstring(src.as_os_str().as_bytes(), "mount source")?,
                        upper: cstring(up.as_os_str().as_bytes(), "mount path")?,
                        work: cstring(wk.as_os_str().as_bytes(), "mount path")?,
                        tree: std::cell::OnceCell::new(),
                    },
                    target: cstring(&target, "mount target")?,
                    readonly: m.readonly,
                });
            }
            MountSource::Tmpfs { size } => {
                mkdirs.extend(parents(&target));
                mkdirs.push(target.clone());
                mountpoints.push(target.clone());
                mounts.push(PreparedMount {
                    kind: PreparedMountKind::Tmpfs {
                        size: cstring(
                            if *size == 0 {
                                "50%".to_string()
                            } else {
                                size.to_string()
                            },
                            "size",
                        )?,
                    },
                    target: cstring(&target, "mount target")?,
                    readonly: m.readonly,
                });
            }
            MountSource::Secret(_) | MountSource::Cache { .. } => unreachable!("resolved above"),
        }
    }
    for (src, target, readonly) in binds {
        let meta = fs::metadata(&src).map_err(|e| {
            ExecError::Invalid(format!("bind source {} does not exist: {e}", src.display()))
        })?;
        let target = clean_abs(&target)?;
        mkdirs.extend(parents(&target));
        if meta.is_dir() {
            mkdirs.push(target.clone());
        } else {
            mkfiles.push(target.clone());
        }
        mountpoints.push(target.clone());
        mounts.push(PreparedMount {
            kind: PreparedMountKind::Bind {
                source: cstring(src.as_os_str().as_bytes(), "bind source")?,
                tree: std::cell::OnceCell::new(),
            },
            target: cstring(&target, "mount target")?,
            readonly,
        });
    }
    mkdirs.sort();
    mkdirs.dedup();
    mkdirs.retain(|d| !mkfiles.contains(d));

    // Environment: docker's defaults for PATH, HOSTNAME and HOME.
    let mut env = spec.env.clone();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={}", spec.hostname));
    }
    if !has(&env, "HOME") {
        env.push(format!(
            "HOME={}",
            user.home.clone().unwrap_or_else(|| "/root".into())
        ));
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let argv0 = spec
        .argv
        .first()
        .ok_or_else(|| ExecError::Invalid("no command given".into()))?
        .clone();
    let exec_candidates: Vec<String> = if argv0.contains('/') {
        vec![argv0.clone()]
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{}/{argv0}", d.trim_end_matches('/')))
            .collect()
    };

    let argv: Vec<CString> = spec
        .argv
        .iter()
        .map(|a| cstring(a, "argument"))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env
        .iter()
        .map(|a| cstring(a, "environment variable"))
        .collect::<Result<_, _>>()?;
    let ptrs = |v: &[CString]| -> Vec<*const c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let cwd = clean_abs(if spec.cwd.is_empty() { "/" } else { &spec.cwd })?;
    let mut cwd_mkdirs = parents(&cwd);
    cwd_mkdirs.push(cwd.clone());

    let (err_read, err_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| {
            ExecError::Setup {
                step: "creating pipes",
                source: e.into(),
            }
        })?;
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| ExecError::Setup {
            step: "creating pipes",
            source: e.into(),
        })
    };
    let (mut stdin, mut stdout_child, mut stderr_child) = (None, None, None);
    let (mut tty_child, mut tty_parent) = (None, None);
    let (mut stdout_parent, mut stderr_parent) = (None, None);
    match spec.stdio {
        Stdio::Inherit { stdin: true } => {}
        Stdio::Inherit { stdin: false } => {
            stdin = Some(dev_null()?);
        }
        Stdio::Piped => {
            let (r, w) = pipe()?;
            stdout_parent = Some(r);
            stdout_child = Some(w);
            let (r, w) = pipe()?;
            stderr_parent = Some(r);
            stderr_child = Some(w);
            stdin = Some(dev_null()?);
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
            tty_parent = Some(a);
            tty_child = Some(b);
        }
    }

    let rlimits = spec
        .rlimits
        .iter()
        .map(|(r, soft, hard)| {
            // Never above the current hard limit: raising it needs
            // CAP_SYS_RESOURCE, which kiln does not assume.
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
        .collect();

    let (gate_read, gate_write) =
        if spec.limits.is_empty() || !matches!(spec.runtime, Runtime::Native) {
            (None, None)
        } else {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        };
    // Only kiln keeps the write end (close-on-exec, never in `prepared`).
    let (life_read, life_write) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )
    .map_err(|e| ExecError::Setup {
        step: "creating pipes",
        source: e.into(),
    })?;
    let mut prepared = Prepared {
        lowers_top_first: lowers
            .iter()
            .map(|l| cstring(l.as_os_str().as_bytes(), "layer path"))
            .collect::<Result<_, _>>()?,
        upper: cstring(upper.as_os_str().as_bytes(), "upper path")?,
        work: cstring(work.as_os_str().as_bytes(), "work path")?,
        rootfs: cstring(rootfs.as_os_str().as_bytes(), "rootfs path")?,
        network_none: spec.network == Network::None,
        mkdirs: mkdirs
            .iter()
            .map(|d| cstring(d, "path"))
            .collect::<Result<_, _>>()?,
        mkfiles: mkfiles
            .iter()
            .map(|d| cstring(d, "path"))
            .collect::<Result<_, _>>()?,
        mounts,
        hostname: cstring(&spec.hostname, "hostname")?,
        cwd_mkdirs: cwd_mkdirs
            .iter()
            .map(|d| cstring(d, "working directory"))
            .collect::<Result<_, _>>()?,
        cwd: cstring(&cwd, "working directory")?,
        rlimits,
        stdin,
        stdout: stdout_child,
        stderr: stderr_child,
        tty_socket: tty_child,
        runtime_helper: false,
        init: spec.init,
        start_gate: gate_read,
        capabilities: DEFAULT_CAPABILITIES,
        uid: rustix::process::Uid::from_raw(user.uid),
        gid: rustix::process::Gid::from_raw(user.gid),
        groups: user
            .groups
            .iter()
            .map(|g| rustix::process::Gid::from_raw(*g))
            .collect(),
        seccomp: seccomp::programs(),
        exec_candidates: exec_candidates
            .iter()
            .map(|c| cstring(c, "command"))
            .collect::<Result<_, _>>()?,
        argv_ptrs: ptrs(&argv),
        _argv: argv,
        envp_ptrs: ptrs(&envp),
        _envp: envp,
        error_pipe: err_write,
        devices: devices::ALLOWED
            .iter()
            .map(|d| PreparedDevice {
                host: d.host,
                target: d.target,
                tree: std::cell::OnceCell::new(),
            })
            .collect(),
        life_read,
        life_write: std::os::fd::AsRawFd::as_raw_fd(&life_write),
    };

    // The OCI backend: the bundle describes the container; our child only
    // mounts the rootfs (in its own mount namespace) and execs the runtime.
    let oci_runtime = match &spec.runtime {
        Runtime::Oci(path) => Some(path.clone()),
        Runtime::Native => None,
    };
    // Unique per spawn: runtimes derive cgroup paths from the id, so two
    // containers must never share one.
    static OCI_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let oci_id = format!(
        "kiln-{}-{}",
        std::process::id(),
        OCI_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let oci_state = state.join("runtime-state");
    if let Some(runtime) = &oci_runtime {
        let mut oci_mounts = Vec::new();
        for name in ["hosts", "resolv.conf", "hostname"] {
            oci_mounts.push(oci::OciMount::Bind {
                source: etc.join(name).display().to_string(),
                target: format!("/etc/{name}"),
                readonly: false,
            });
        }
        for (n, m) in resolved_mounts.iter().enumerate() {
            let target = clean_abs(&m.target)?;
            oci_mounts.push(match &m.source {
                MountSource::Bind(src) => oci::OciMount::Bind {
                    source: src.display().to_string(),
                    target,
                    readonly: m.readonly,
                },
                MountSource::Copy(src) => {
                    let (up, wk) = (
                        state.join(format!("oci-mounts/{n}/upper")),
                        state.join(format!("oci-mounts/{n}/work")),
                    );
                    for d in [&up, &wk] {
                        fs::create_dir_all(d).map_err(io_err(d))?;
                    }
                    oci::OciMount::Overlay {
                        lower: src.display().to_string(),
                        upper: up.display().to_string(),
                        work: wk.display().to_string(),
                        target,
                    }
                }
                MountSource::Tmpfs { size } => oci::OciMount::Tmpfs {
                    size: if *size == 0 {
                        "50%".to_string()
                    } else {
                        size.to_string()
                    },
                    target,
                    readonly: m.readonly,
                },
                MountSource::Tree(_) => {
                    return Err(ExecError::Invalid(
                        "mount trees need the native runtime".into(),
                    ))
                }
                MountSource::Secret(_) | MountSource::Cache { .. } => {
                    unreachable!("resolved above")
                }
            });
        }
        oci::write_bundle(
            &state.join("bundle"),
            &rootfs,
            oci::BundleInputs {
                argv: &spec.argv,
                env: &env,
                cwd: &cwd,
                uid: user.uid,
                gid: user.gid,
                groups: &user.groups,
                hostname: &spec.hostname,
                network: spec.network,
                mounts: oci_mounts,
                limits: spec.limits,
                rlimits: prepared
                    .rlimits
                    .iter()
                    .map(|(r, l)| {
                        let max = u64::MAX;
                        (
                            format!("RLIMIT_{}", rlimit_name(*r)),
                            l.current.unwrap_or(max),
                            l.maximum.unwrap_or(max),
                        )
                    })
                    .collect(),
            },
        )?;
        let bundle = state.join("bundle");
        let argv: Vec<CString> = [
            runtime.as_os_str().as_bytes(),
            b"--root",
            oci_state.as_os_str().as_bytes(),
            b"run",
            b"--bundle",
            bundle.as_os_str().as_bytes(),
            oci_id.as_bytes(),
        ]
        .iter()
        .map(|a| cstring(a, "runtime argument"))
        .collect::<Result<_, _>>()?;
        let envp = vec![cstring(format!("PATH={DEFAULT_PATH}"), "PATH")?];
        prepared.runtime_helper = true;
        prepared.exec_candidates = vec![cstring(runtime.as_os_str().as_bytes(), "runtime path")?];
        prepared.argv_ptrs = ptrs(&argv);
        prepared._argv = argv;
        prepared.envp_ptrs = ptrs(&envp);
        prepared._envp = envp;
        prepared.mounts.clear();
    }
    // (With an OCI runtime, the runtime applies the limits itself.)
    let cgroup = if spec.limits.is_empty() || oci_runtime.is_some() {
        None
    } else {
        let name = state
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "c".into());
        Some(cgroup::Cgroup::create(
            &spec.cgroup_root,
            &format!("{name}-{}", std::process::id()),
            spec.limits,
        )?)
    };
    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if spec.network == Network::None {
        flags |= libc::CLONE_NEWNET;
    }
    if oci_runtime.is_some() {
        // The runtime makes the container's namespaces. The helper needs a
        // mount namespace of its own for the rootfs, and is PID 1 of its
        // own PID namespace: when it dies (with kiln, by PDEATHSIG) the
        // kernel kills everything below it, the runtime's container too.
        flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID;
    }
    let pid = sys::clone_fork(flags).map_err(|e| ExecError::Setup {
        step: "creating namespaces",
        source: e,
    })?;
    if pid == 0 {
        child::run(&prepared);
    }
    // Parent: drop our copies of the child's ends, then learn whether the
    // exec happened (the error pipe closes on exec) or why not.
    drop(prepared);
    let pid =
        Pid::from_raw(pid).ok_or_else(|| ExecError::Invalid("clone returned no pid".into()))?;
    // The terminal (if any) arrives before exec; then the error pipe says
    // whether exec happened.
    if let (Some(cg), Some(gate)) = (&cgroup, gate_write) {
        // Into the cgroup, then let the child go on to exec.
        let placed = cg.add(pid.as_raw_nonzero().get() as u32);
        if placed.is_ok() {
            let _ = rustix::io::write(&gate, b"g");
        }
        drop(gate);
        if let Err(e) = placed {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
            return Err(e);
        }
    }
    let pty = tty_parent.and_then(|sock| receive_fd(&sock));
    let mut report = Vec::new();
    let _ = std::fs::File::from(err_read).read_to_end(&mut report);
    // The child has checked the life pipe by now (before exec, or failed).
    drop(life_write);
    let cleanup = Cleanup {
        upper: upper.clone(),
        lowers: lowers.clone(),
        mountpoints,
        rootfs,
    };
    if report.len() >= 8 {
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        cleanup.run();
        let step = u32::from_le_bytes(report[..4].try_into().unwrap_or_default());
        let errno = i32::from_le_bytes(report[4..8].try_into().unwrap_or_default());
        return Err(match (step, errno) {
            (s, libc::ENOENT) if s == Step::Exec as u32 => ExecError::NotFound(argv0),
            (s, libc::EACCES) if s == Step::Exec as u32 => ExecError::PermissionDenied(argv0),
            (s, libc::ENOENT) if s == Step::Workdir as u32 => ExecError::Invalid(format!(
                "cannot enter working directory {cwd}: no such file or directory"
            )),
            (s, errno) => ExecError::Setup {
                step: Step::describe(s),
                source: std::io::Error::from_raw_os_error(errno),
            },
        });
    }
    Ok(Running {
        oci: oci_runtime.map(|r| (r, oci_state, oci_id)),
        _cgroup: cgroup,
        _cache_locks: cache_locks,
        pid,
        stdout: stdout_parent,
        stderr: stderr_parent,
        pty,
        cleanup,
    })
}

/// The OCI name of an rlimit (without `RLIMIT_`).
fn rlimit_name(r: Resource) -> &'static str {
    match r {
        Resource::Cpu => "CPU",
        Resource::Fsize => "FSIZE",
        Resource::Data => "DATA",
        Resource::Stack => "STACK",
        Resource::Core => "CORE",
        Resource::Rss => "RSS",
        Resource::Nproc => "NPROC",
        Resource::Nofile => "NOFILE",
        Resource::Memlock => "MEMLOCK",
        Resource::As => "AS",
        Resource::Locks => "LOCKS",
        Resource::Sigpending => "SIGPENDING",
        Resource::Msgqueue => "MSGQUEUE",
        Resource::Nice => "NICE",
        Resource::Rtprio => "RTPRIO",
        Resource::Rttime => "RTTIME",
        _ => "NOFILE",
    }
}

/// Receives one descriptor sent with SCM_RIGHTS (None if the peer closed).
fn receive_fd(sock: &OwnedFd) -> Option<OwnedFd> {
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

/// Writes a secret readable only by `uid` (mode 0400).
fn write_private(path: &Path, data: &[u8], uid: u32, gid: u32) -> Result<(), ExecError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(data).map_err(io_err(path))?;
    std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(io_err(path))?;
    Ok(())
}

/// A held cache lock; released (explicitly, with LOCK_UN) on drop.
///
/// flock locks belong to an open file description, and a container child
/// cloned by a parallel spawn inherits a copy of every descriptor until it
/// execs; merely closing ours could leave the lock held for a moment. So
/// each cache keeps one descriptor per process, holders are tracked here,
/// and release unlocks the description itself.
pub(crate) struct CacheLock {
    path: PathBuf,
}

fn cache_locks() -> &'static std::sync::Mutex<std::collections::HashMap<PathBuf, (fs::File, bool)>>
{
    static LOCKS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<PathBuf, (fs::File, bool)>>,
    > = std::sync::OnceLock::new();
    LOCKS.get_or_init(Default::default)
}

impl CacheLock {
    /// Takes the lock if nobody (in this process or another) holds it.
    fn try_acquire(lock_path: &Path) -> Result<Option<CacheLock>, ExecError> {
        let mut map = cache_locks().lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(lock_path) {
            let file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(lock_path)
                .map_err(io_err(lock_path))?;
            map.insert(lock_path.to_path_buf(), (file, false));
        }
        let (file, held) = map.get_mut(lock_path).expect("inserted above");
        if *held {
            return Ok(None);
        }
        match rustix::fs::flock(&*file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                *held = true;
                Ok(Some(CacheLock {
                    path: lock_path.to_path_buf(),
                }))
            }
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(ExecError::Io {
                path: lock_path.to_path_buf(),
                source: e.into(),
            }),
        }
    }

    /// Waits for the lock (polling: the holder may be another process).
    fn acquire(lock_path: &Path) -> Result<CacheLock, ExecError> {
        loop {
            if let Some(lock) = Self::try_acquire(lock_path)? {
                return Ok(lock);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for CacheLock {
    fn drop(&mut self) {
        let mut map = cache_locks().lock().unwrap_or_else(|p| p.into_inner());
        if let Some((file, held)) = map.get_mut(&self.path) {
            let _ = rustix::fs::flock(&*file, rustix::fs::FlockOperation::Unlock);
            *held = false;
        }
    }
}

/// The mount source for a cache, creating it on first use, and the lock
/// held while the container runs (`Locked` waits for it; `Private` falls
/// back to a throwaway copy when someone else holds it).
fn cache_source(
    dir: &Path,
    sharing: Sharing,
    uid: u32,
    gid: u32,
    mode: u32,
) -> Result<(MountSource, Option<CacheLock>), ExecError> {
    if !dir.exists() {
        let parent = dir.parent().unwrap_or(Path::new("/"));
        fs::create_dir_all(parent).map_err(io_err(parent))?;
        // Built under a temp name so a concurrent first use sees it whole.
        let tmp = parent.join(format!(
            ".{}-{}",
            dir.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)).map_err(io_err(&tmp))?;
        fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(io_err(&tmp))?;
        if fs::rename(&tmp, dir).is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
    }
    let lock_path = dir.with_extension("lock");
    let bind = MountSource::Bind(dir.to_path_buf());
    match sharing {
        Sharing::Shared => Ok((bind, None)),
        Sharing::Locked => Ok((bind, Some(CacheLock::acquire(&lock_path)?))),
        Sharing::Private => match CacheLock::try_acquire(&lock_path)? {
            Some(lock) => Ok((bind, Some(lock))),
            None => Ok((MountSource::Copy(dir.to_path_buf()), None)),
        },
    }
}

impl Cleanup {
    /// Removes mountpoints the executor created (empty, and absent from
    /// every lower layer) from the diff, deepest first, and the rootfs dir.
    fn run(&self) {
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
    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get() as u32
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
        self.cleanup.run();
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
