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
