//! Where things go in the container's tree: the state directories, the
//! lowerdirs, the generated /etc files, the mounts resolved (caches
//! locked, secrets written) and the mountpoints to make, in order. Needs
//! no privilege.

use super::{container_path, cstring, parents, PreparedMount, PreparedMountKind};
use crate::cache_mount::{CacheHolds, CacheWaiter, StepCaches};
use crate::error::{io_err, ExecError};
use crate::spec::{Mount, MountSource, Network, Spec};
use crate::user;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Files and directories the executor creates to mount over; removed from
/// the diff afterwards when the image did not have them.
const SYSTEM_DIRS: [&str; 3] = ["/proc", "/dev", "/sys"];
const SYSTEM_FILES: [&str; 3] = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"];

/// Writes a secret readable only by `uid` (mode 0400).
fn write_private(
    path: &Path,
    data: &[u8],
    (uid, gid): (u32, u32),
    mode: u32,
) -> Result<(), ExecError> {
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
    // After the chown (which clears set-id bits); the umask does not
    // apply to an explicit chmod.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777))
        .map_err(io_err(path))?;
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
    let hosts = crate::spec::hosts_file(&spec.hostname, spec.address, &spec.extra_hosts);
    let resolv = match (&spec.resolv_conf, &spec.network) {
        (Some(given), _) => given.clone(),
        (None, Network::None) => String::new(),
        (None, _) => fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
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
    holder: &str,
    wait: Option<&CacheWaiter>,
) -> Result<(Vec<Mount>, CacheHolds), ExecError> {
    let caches: Vec<_> = mounts
        .iter()
        .filter_map(|m| match &m.source {
            MountSource::Cache {
                dir,
                sharing,
                uid,
                gid,
                mode,
                ..
            } => Some((dir.as_path(), *sharing, (*uid, *gid, *mode))),
            _ => None,
        })
        .collect();
    let caches = StepCaches::lock(&caches, holder, wait)?;
    let mut resolved = Vec::new();
    for (n, m) in mounts.iter().enumerate() {
        let (source, readonly) = match &m.source {
            MountSource::Secret {
                data,
                uid,
                gid,
                mode,
            } => {
                let dir = state.join("secrets");
                fs::create_dir_all(&dir).map_err(io_err(&dir))?;
                let path = dir.join(n.to_string());
                let owner = (uid.unwrap_or(user.uid), gid.unwrap_or(user.gid));
                write_private(&path, data, owner, *mode)?;
                (MountSource::Bind(path), true)
            }
            MountSource::Cache { dir, subpath, .. } => {
                let source = match subpath {
                    Some(sub) => crate::cache_mount::subtree(dir, sub)?,
                    None => caches.source(dir),
                };
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
    Ok((resolved, caches.holds))
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
            MountSource::Secret { .. } | MountSource::Cache { .. } => {
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
    // Outer mounts before the mounts inside them, as docker orders them.
    l.mounts
        .sort_by_key(|m| m.target.to_bytes().iter().filter(|&&b| b == b'/').count());
    l.mkdirs.sort();
    l.mkdirs.dedup();
    let files = l.mkfiles.clone();
    l.mkdirs.retain(|d| !files.contains(d));
    Ok(l)
}
