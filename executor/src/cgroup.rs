//! Optional memory and pids limits through cgroups, v2 or v1 (this host is
//! a v1/v2 hybrid: the controllers live on v1 hierarchies). The root is a
//! parameter so tests can point it elsewhere.

use crate::ExecError;
use std::fs;
use std::path::{Path, PathBuf};

/// Resource limits for one container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory (the kernel's OOM killer acts past it).
    pub memory: Option<u64>,
    /// Processes and threads.
    pub pids: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.pids.is_none()
    }
}

/// The cgroup directories made for one container; removed on drop.
#[derive(Debug)]
pub(crate) struct Cgroup {
    dirs: Vec<PathBuf>,
}

fn write(path: &Path, value: &str) -> Result<(), ExecError> {
    fs::write(path, value).map_err(|source| ExecError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl Cgroup {
    /// Creates `kiln/<name>` under each hierarchy that has a limited
    /// controller, and sets the limits.
    pub(crate) fn create(root: &Path, name: &str, limits: Limits) -> Result<Cgroup, ExecError> {
        if crate::rootless::in_user_namespace() {
            return Cgroup::create_delegated(root, name, limits);
        }
        let mut cg = Cgroup { dirs: Vec::new() };
        let v2 = root.join("cgroup.controllers");
        if let Ok(controllers) = fs::read_to_string(&v2) {
            let dir = root.join("kiln").join(name);
            for c in ["memory", "pids"] {
                if !controllers.split_whitespace().any(|x| x == c) {
                    return Err(ExecError::Invalid(format!(
                        "cgroup v2 at {} has no {c} controller",
                        root.display()
                    )));
                }
            }
            let parent = root.join("kiln");
            fs::create_dir_all(&parent).map_err(|source| ExecError::Io {
                path: parent.clone(),
                source,
            })?;
            let _ = fs::write(parent.join("cgroup.subtree_control"), "+memory +pids");
            fs::create_dir_all(&dir).map_err(|source| ExecError::Io {
                path: dir.clone(),
                source,
            })?;
            cg.dirs.push(dir.clone());
            if let Some(m) = limits.memory {
                write(&dir.join("memory.max"), &m.to_string())?;
                let _ = fs::write(dir.join("memory.swap.max"), "0");
            }
            if let Some(p) = limits.pids {
                write(&dir.join("pids.max"), &p.to_string())?;
            }
            return Ok(cg);
        }
        for (controller, file, value) in [
            ("memory", "memory.limit_in_bytes", limits.memory),
            ("pids", "pids.max", limits.pids),
        ] {
            let Some(value) = value else { continue };
            let dir = root.join(controller).join("kiln").join(name);
            fs::create_dir_all(&dir).map_err(|source| ExecError::Io {
                path: dir.clone(),
                source,
            })?;
            cg.dirs.push(dir.clone());
            write(&dir.join(file), &value.to_string())?;
            if controller == "memory" {
                // No swap either, or the limit is soft.
                let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), value.to_string());
            }
        }
        Ok(cg)
    }

    /// Rootless: cgroup v1 cannot be delegated, so only a v2 subtree the
    /// caller owns will do. kiln's own cgroup must not get controllers (it
    /// holds kiln: v2's no-internal-process rule), so the container's goes
    /// beside it, in the parent, which must be writable by the caller (as
    /// systemd's `Delegate=yes` makes `user@UID.service`'s slices).
    fn create_delegated(root: &Path, name: &str, limits: Limits) -> Result<Cgroup, ExecError> {
        let refuse = |why: String| {
            ExecError::Invalid(format!(
                "--memory/--pids-limit: a rootless kiln can limit a container only inside a \
                 cgroup v2 subtree delegated to its user, and {why}. Run kiln in a delegated \
                 cgroup (systemd: a user service or `systemd-run --user -p Delegate=yes`), \
                 or without the limits"
            ))
        };
        let v2 = [root.to_path_buf(), root.join("unified")]
            .into_iter()
            .find(|p| p.join("cgroup.controllers").is_file())
            .ok_or_else(|| refuse(format!("no cgroup v2 is mounted at {}", root.display())))?;
        let own = fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            })
            .ok_or_else(|| refuse("kiln's cgroup v2 path is unknown".into()))?;
        let own = own.trim_matches('/');
        let parent = match own.rsplit_once('/') {
            Some((up, _)) => v2.join(up),
            None => v2.clone(), // kiln's cgroup is the root's child, or the root
        };
        let control = parent.join("cgroup.subtree_control");
        if rustix::fs::access(&control, rustix::fs::Access::WRITE_OK).is_err() {
            return Err(refuse(format!(
                "{} is not delegated to it",
                parent.display()
            )));
        }
        let available = fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
        for (c, wanted) in [
            ("memory", limits.memory.is_some()),
            ("pids", limits.pids.is_some()),
        ] {
            if wanted && !available.split_whitespace().any(|x| x == c) {
                return Err(refuse(format!(
                    "{} does not offer the {c} controller",
                    parent.display()
                )));
            }
        }
        let _ = fs::write(&control, "+memory +pids");
        let dir = parent.join(format!("kiln-{name}"));
        fs::create_dir_all(&dir).map_err(|source| ExecError::Io {
            path: dir.clone(),
            source,
        })?;
        let cg = Cgroup {
            dirs: vec![dir.clone()],
        };
        if let Some(m) = limits.memory {
            write(&dir.join("memory.max"), &m.to_string())?;
            let _ = fs::write(dir.join("memory.swap.max"), "0");
        }
        if let Some(p) = limits.pids {
            write(&dir.join("pids.max"), &p.to_string())?;
        }
        Ok(cg)
    }

    /// Moves `pid` into every hierarchy.
    pub(crate) fn add(&self, pid: u32) -> Result<(), ExecError> {
        for d in &self.dirs {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = fs::remove_dir(d);
        }
    }
}

/// The cgroup directories kiln made that process `pid` is in (`kiln/…`
/// paths from /proc/PID/cgroup), to place a joined process beside it.
pub(crate) fn dirs_of(root: &Path, pid: u32) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !path.contains("/kiln/") {
            continue;
        }
        let rel = path.trim_start_matches('/');
        let dir = if controllers.is_empty() {
            // v2: the unified hierarchy, beside v1 ones on a hybrid host.
            let unified = root.join("unified");
            if unified.join("cgroup.controllers").exists() {
                unified.join(rel)
            } else {
                root.join(rel)
            }
        } else {
            root.join(controllers.trim_start_matches("name=")).join(rel)
        };
        if dir.is_dir() {
            dirs.push(dir);
        }
    }
    dirs
}
