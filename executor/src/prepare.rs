//! Spec → everything the cloned child needs, made before `clone`: the
//! child is a copy of a threaded process and may only make raw syscalls,
//! so every path, string, descriptor and pointer array is ready here.
//!
//! The plan is computed in steps that need no privilege and can be
//! tested without root ([`layout`], [`environment`], [`exec_candidates`],
//! [`container_path`]); [`Prepared::new`] then turns it into C strings
//! and descriptors.

use crate::cache_mount::{cache_source, CacheLock};
use crate::error::{io_err, ExecError};
use crate::spec::{Mount, MountSource, Network, Spec, Stdio, DEFAULT_CAPABILITIES, DEFAULT_PATH};
use crate::{devices, seccomp, user};
use rustix::process::{Resource, Rlimit};
use std::ffi::{c_char, CString};
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
    pub(crate) mkdirs: Vec<CString>,
    pub(crate) mkfiles: Vec<CString>,
    pub(crate) mounts: Vec<PreparedMount>,
    pub(crate) hostname: CString,
    pub(crate) cwd_mkdirs: Vec<CString>,
    pub(crate) cwd: CString,
    pub(crate) rlimits: Vec<(Resource, Rlimit)>,
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
    /// Only mount the rootfs and exec an OCI runtime (see `oci.rs`).
    pub(crate) runtime_helper: bool,
    /// PID 1 is a reaper and the command its child.
    pub(crate) init: bool,
    /// Read end of a pipe the child waits on before exec while the parent
    /// moves it into its cgroup.
    pub(crate) start_gate: Option<OwnedFd>,
    /// The child's end of a socket the pty's primary end is sent over.
    pub(crate) tty_socket: Option<OwnedFd>,
    pub(crate) capabilities: u64,
    pub(crate) uid: rustix::process::Uid,
    pub(crate) gid: rustix::process::Gid,
    pub(crate) groups: Vec<rustix::process::Gid>,
    pub(crate) seccomp: Option<&'static [seccompiler::BpfProgram; 2]>,
    pub(crate) exec_candidates: Vec<CString>,
    pub(crate) _argv: Vec<CString>,
    pub(crate) argv_ptrs: Vec<*const c_char>,
    pub(crate) _envp: Vec<CString>,
    pub(crate) envp_ptrs: Vec<*const c_char>,
    pub(crate) error_pipe: OwnedFd,
    /// The allowed device nodes, each cloned from the host before
    /// `pivot_root` and attached in the container's /dev.
    pub(crate) devices: Vec<PreparedDevice>,
    /// Read end of a pipe whose write end only kiln holds: EOF means kiln
    /// is gone (see `child::tie_to_parent`). Non-blocking.
    pub(crate) life_read: OwnedFd,
    /// The number of our inherited copy of that write end, closed first.
    pub(crate) life_write: std::os::fd::RawFd,
}

pub(crate) struct PreparedDevice {
    pub(crate) host: &'static std::ffi::CStr,
    pub(crate) target: &'static std::ffi::CStr,
    pub(crate) tree: std::cell::OnceCell<OwnedFd>,
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

/// Files and directories the executor creates to mount over; removed from
/// the diff afterwards when the image did not have them.
const SYSTEM_DIRS: [&str; 3] = ["/proc", "/dev", "/sys"];
const SYSTEM_FILES: [&str; 3] = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"];

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

/// The state directory's parts.
pub(crate) struct StateDirs {
    /// The overlay's upper dir: the container's diff.
    pub(crate) upper: PathBuf,
    pub(crate) work: PathBuf,
    /// Where the overlay is mounted (in the child's namespace only).
    pub(crate) rootfs: PathBuf,
    /// Generated /etc files.
    pub(crate) etc: PathBuf,
}

impl StateDirs {
    pub(crate) fn create(state: &Path) -> Result<StateDirs, ExecError> {
        let dirs = StateDirs {
            upper: state.join("upper"),
            work: state.join("work"),
            rootfs: state.join("rootfs"),
            etc: state.join("etc"),
        };
        for d in [&dirs.upper, &dirs.work, &dirs.rootfs, &dirs.etc] {
            fs::create_dir_all(d).map_err(io_err(d))?;
        }
        Ok(dirs)
    }
}

/// The overlay's lowerdirs, top first; an empty one for FROM scratch
/// (overlay needs at least one).
pub(crate) fn lowers_top_first(
    lowers: &[PathBuf],
    state: &Path,
) -> Result<Vec<PathBuf>, ExecError> {
    let mut out: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
    if out.is_empty() {
        let empty = state.join("empty");
        fs::create_dir_all(&empty).map_err(io_err(&empty))?;
        out.push(empty);
    }
    Ok(out)
}

/// Writes the generated /etc files (hosts, resolv.conf, hostname), bound
/// read-write as docker binds them; returns them as (source, target,
/// read-only) binds.
pub(crate) fn etc_files(
    spec: &Spec,
    etc: &Path,
) -> Result<Vec<(PathBuf, String, bool)>, ExecError> {
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
        spec.hostname
    );
    let resolv = match spec.network {
        Network::Host => fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        Network::None => String::new(),
    };
    let mut binds = Vec::new();
    for (name, content) in [
        ("hosts", hosts),
        ("resolv.conf", resolv),
        ("hostname", format!("{}\n", spec.hostname)),
    ] {
        let path = etc.join(name);
        fs::write(&path, content).map_err(io_err(&path))?;
        binds.push((path, format!("/etc/{name}"), false));
    }
    Ok(binds)
}

/// Secret and cache mounts made concrete: a secret becomes a file only the
/// container's user can read, bound read-only; a cache its directory (or
/// a throwaway copy), with the lock it holds while the container runs.
pub(crate) fn resolve_mounts(
    mounts: &[Mount],
    state: &Path,
    user: &user::ResolvedUser,
) -> Result<(Vec<Mount>, Vec<CacheLock>), ExecError> {
    let mut locks = Vec::new();
    let mut resolved = Vec::new();
    for (n, m) in mounts.iter().enumerate() {
        let (source, readonly) = match &m.source {
            MountSource::Secret(data) => {
                let dir = state.join("secrets");
                fs::create_dir_all(&dir).map_err(io_err(&dir))?;
                let path = dir.join(n.to_string());
                write_private(&path, data, user.uid, user.gid)?;
                (MountSource::Bind(path), true)
            }
            MountSource::Cache {
                dir,
                sharing,
                uid,
                gid,
                mode,
            } => {
                let (source, lock) = cache_source(dir, *sharing, *uid, *gid, *mode)?;
                locks.extend(lock);
                (source, m.readonly)
            }
            other => (other.clone(), m.readonly),
        };
        resolved.push(Mount {
            source,
            target: m.target.clone(),
            readonly,
        });
    }
    Ok((resolved, locks))
}

/// Where the container's mounts go: the mountpoints to make (directories
/// and files, parents included) and the mounts in order.
pub(crate) struct Layout {
    pub(crate) mkdirs: Vec<String>,
    pub(crate) mkfiles: Vec<String>,
    /// What the executor made to mount over (removed from the diff after).
    pub(crate) mountpoints: Vec<String>,
    pub(crate) mounts: Vec<PreparedMount>,
}

impl Layout {
    fn point(&mut self, target: &str, is_dir: bool) {
        self.mkdirs.extend(parents(target));
        if is_dir {
            self.mkdirs.push(target.to_string());
        } else {
            self.mkfiles.push(target.to_string());
        }
        self.mountpoints.push(target.to_string());
    }
}

/// Plans the mounts: /proc, /dev and /sys, then `resolved` (secrets and
/// caches already concrete), then the binds (generated /etc files first).
/// Touches the filesystem only to look at bind sources and to make copy
/// mounts' upper dirs; needs no privilege.
pub(crate) fn layout(
    resolved: &[Mount],
    etc_binds: Vec<(PathBuf, String, bool)>,
    state: &Path,
) -> Result<Layout, ExecError> {
    let mut l = Layout {
        mkdirs: SYSTEM_DIRS.iter().map(|s| s.to_string()).collect(),
        mkfiles: Vec::new(),
        mountpoints: SYSTEM_DIRS
            .iter()
            .chain(SYSTEM_FILES.iter())
            .map(|s| s.to_string())
            .collect(),
        mounts: Vec::new(),
    };
    let mut binds = etc_binds;
    for m in resolved {
        let target = container_path(&m.target)?;
        let target_c = cstring(&target, "mount target")?;
        match &m.source {
            MountSource::Bind(src) => binds.push((src.clone(), target, m.readonly)),
            MountSource::Tree(tree) => {
                let step = "inspecting a mount tree";
                let st = rustix::fs::fstat(&*tree.0).map_err(|e| ExecError::Setup {
                    step,
                    source: e.into(),
                })?;
                let is_dir = rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Directory;
                l.point(&target, is_dir);
                let cell = std::cell::OnceCell::new();
                let dup = tree
                    .0
                    .try_clone()
                    .map_err(|e| ExecError::Setup { step, source: e })?;
                let _ = cell.set(dup);
                l.mounts.push(PreparedMount {
                    kind: PreparedMountKind::Bind {
                        source: CString::default(),
                        tree: cell,
                    },
                    target: target_c,
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
                let n = l.mounts.len();
                let (up, wk) = (
                    state.join(format!("mounts/{n}/upper")),
                    state.join(format!("mounts/{n}/work")),
                );
                for d in [&up, &wk] {
                    fs::create_dir_all(d).map_err(io_err(d))?;
                }
                l.point(&target, true);
                l.mounts.push(PreparedMount {
                    kind: PreparedMountKind::Copy {
                        lower: cstring(src.as_os_str().as_bytes(), "mount source")?,
                        upper: cstring(up.as_os_str().as_bytes(), "mount path")?,
                        work: cstring(wk.as_os_str().as_bytes(), "mount path")?,
                        tree: std::cell::OnceCell::new(),
                    },
                    target: target_c,
                    readonly: m.readonly,
                });
            }
            MountSource::Tmpfs { size } => {
                l.point(&target, true);
                let size = if *size == 0 {
                    "50%".to_string()
                } else {
                    size.to_string()
                };
                l.mounts.push(PreparedMount {
                    kind: PreparedMountKind::Tmpfs {
                        size: cstring(size, "size")?,
                    },
                    target: target_c,
                    readonly: m.readonly,
                });
            }
            MountSource::Secret(_) | MountSource::Cache { .. } => {
                return Err(ExecError::Invalid(
                    "internal error: secret and cache mounts must be resolved first".into(),
                ))
            }
        }
    }
    for (src, target, readonly) in binds {
        let meta = fs::metadata(&src).map_err(|e| {
            ExecError::Invalid(format!("bind source {} does not exist: {e}", src.display()))
        })?;
        let target = container_path(&target)?;
        l.point(&target, meta.is_dir());
        l.mounts.push(PreparedMount {
            kind: PreparedMountKind::Bind {
                source: cstring(src.as_os_str().as_bytes(), "bind source")?,
                tree: std::cell::OnceCell::new(),
            },
            target: cstring(&target, "mount target")?,
            readonly,
        });
    }
    l.mkdirs.sort();
    l.mkdirs.dedup();
    let files = l.mkfiles.clone();
    l.mkdirs.retain(|d| !files.contains(d));
    Ok(l)
}

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
        Stdio::Piped => {
            let (r, w) = pipe()?;
            s.stdout_parent = Some(r);
            s.stdout_child = Some(w);
            let (r, w) = pipe()?;
            s.stderr_parent = Some(r);
            s.stderr_child = Some(w);
            s.stdin = Some(dev_null()?);
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
    pub(crate) life_read: OwnedFd,
    pub(crate) life_write: std::os::fd::RawFd,
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
        let mut cwd_mkdirs = parents(&i.cwd);
        cwd_mkdirs.push(i.cwd.clone());
        let candidates = exec_candidates(spec.argv.first().map_or("", String::as_str), &i.env);
        let argv = cstrings(&spec.argv, "argument")?;
        let envp = cstrings(&i.env, "environment variable")?;
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
            mkdirs: cstrings(&i.layout.mkdirs, "path")?,
            mkfiles: cstrings(&i.layout.mkfiles, "path")?,
            mounts: i.layout.mounts,
            hostname: cstring(&spec.hostname, "hostname")?,
            cwd_mkdirs: cstrings(&cwd_mkdirs, "working directory")?,
            cwd: cstring(&i.cwd, "working directory")?,
            rlimits: rlimits(spec),
            stdin: i.streams.stdin.take(),
            stdout: i.streams.stdout_child.take(),
            stderr: i.streams.stderr_child.take(),
            tty_socket: i.streams.tty_child.take(),
            runtime_helper: false,
            init: spec.init,
            start_gate: i.start_gate,
            capabilities: DEFAULT_CAPABILITIES,
            uid: rustix::process::Uid::from_raw(i.user.uid),
            gid: rustix::process::Gid::from_raw(i.user.gid),
            groups: i
                .user
                .groups
                .iter()
                .map(|g| rustix::process::Gid::from_raw(*g))
                .collect(),
            seccomp: seccomp::programs(),
            exec_candidates: cstrings(&candidates, "command")?,
            argv_ptrs: pointers(&argv),
            _argv: argv,
            envp_ptrs: pointers(&envp),
            _envp: envp,
            error_pipe: i.error_pipe,
            devices: devices::ALLOWED
                .iter()
                .map(|d| PreparedDevice {
                    host: d.host,
                    target: d.target,
                    tree: std::cell::OnceCell::new(),
                })
                .collect(),
            life_read: i.life_read,
            life_write: i.life_write,
        })
    }

    /// Replaces the command (the OCI backend execs the runtime instead).
    pub(crate) fn set_command(
        &mut self,
        path: &[u8],
        argv: Vec<CString>,
        env: Vec<CString>,
    ) -> Result<(), ExecError> {
        self.exec_candidates = vec![cstring(path, "runtime path")?];
        self.argv_ptrs = pointers(&argv);
        self._argv = argv;
        self.envp_ptrs = pointers(&env);
        self._envp = env;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_and_their_parents_listed() {
        assert_eq!(container_path("/a/./b/../c/").unwrap(), "/a/c");
        assert_eq!(container_path("/../../x").unwrap(), "/x");
        assert!(container_path("relative").is_err());
        assert_eq!(parents("/a/b/c"), ["/a", "/a/b"]);
        assert!(parents("/a").is_empty());
    }

    #[test]
    fn docker_defaults_for_the_environment_and_the_path_search() {
        let env = environment(&["A=1".into()], "h", Some("/home/u"));
        assert_eq!(
            env,
            [
                "A=1".to_string(),
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=h".into(),
                "HOME=/home/u".into()
            ]
        );
        let env = environment(&["PATH=/opt/bin:/bin".into(), "HOME=/x".into()], "h", None);
        assert_eq!(env.len(), 3, "PATH and HOME kept, HOSTNAME added: {env:?}");
        assert_eq!(exec_candidates("sh", &env), ["/opt/bin/sh", "/bin/sh"]);
        assert_eq!(exec_candidates("./run", &env), ["./run"]);
        assert_eq!(
            exec_candidates("sh", &["PATH=/a:/b".into(), "PATH=/c".into()]),
            ["/c/sh"]
        );
    }

    /// The mount plan needs no root: mountpoints for dirs and files, their
    /// parents, /proc /dev /sys and the /etc files, in order.
    #[test]
    fn the_mount_layout_is_planned_without_privilege() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "x").unwrap();
        let dir = tmp.path().join("d");
        fs::create_dir(&dir).unwrap();
        let mounts = vec![
            Mount {
                source: MountSource::Bind(dir.clone()),
                target: "/deep/er/dir".into(),
                readonly: true,
            },
            Mount {
                source: MountSource::Tmpfs { size: 0 },
                target: "/t/../tmp".into(),
                readonly: false,
            },
        ];
        let etc = vec![(file.clone(), "/etc/hosts".to_string(), false)];
        let l = layout(&mounts, etc, tmp.path()).unwrap();
        assert_eq!(l.mkfiles, ["/etc/hosts"]);
        for d in [
            "/proc",
            "/dev",
            "/sys",
            "/deep",
            "/deep/er",
            "/deep/er/dir",
            "/tmp",
            "/etc",
        ] {
            assert!(l.mkdirs.iter().any(|m| m == d), "{d} in {:?}", l.mkdirs);
        }
        let targets: Vec<String> = l
            .mounts
            .iter()
            .map(|m| m.target.to_string_lossy().into_owned())
            .collect();
        // Mounts in the spec's order, then the binds.
        assert_eq!(targets, ["/tmp", "/etc/hosts", "/deep/er/dir"]);
        let missing = vec![Mount {
            source: MountSource::Bind(tmp.path().join("nope")),
            target: "/x".into(),
            readonly: false,
        }];
        assert!(layout(&missing, vec![], tmp.path()).is_err());
    }
}
