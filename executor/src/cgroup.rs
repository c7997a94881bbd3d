//! Optional memory, pids and CPU limits through cgroups, v2 or v1 (this host is
//! a v1/v2 hybrid: the controllers live on v1 hierarchies). The root is a
//! parameter so tests can point it elsewhere.

use crate::ExecError;
use std::fs;
use std::path::{Path, PathBuf};

/// Resource limits for one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory (the kernel's OOM killer acts past it).
    pub memory: Option<u64>,
    /// Processes and threads.
    pub pids: Option<u64>,
    /// CPU time per [`CPU_PERIOD_US`], in microseconds (`--cpus 1.5` is
    /// 150000).
    pub cpu_quota_us: Option<u64>,
    /// The relative CPU weight in docker's units (`--cpu-shares`, 1024 is
    /// the default weight).
    pub cpu_shares: Option<u64>,
    /// The CPUs the container may run on (`0-2,4`).
    pub cpuset_cpus: Option<String>,
}

/// The CFS period `--cpus` is a fraction of (docker's: 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;

/// One controller's files to write, in order; `required` ones fail the
/// container when they cannot be written.
struct Setting {
    controller: &'static str,
    files: Vec<(&'static str, String, bool)>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.pids.is_none()
            && self.cpu_quota_us.is_none()
            && self.cpu_shares.is_none()
            && self.cpuset_cpus.is_none()
    }

    /// The files to write per controller: cgroup v2's names and units
    /// when `v2`, else v1's (each controller its own hierarchy).
    fn settings(&self, v2: bool) -> Vec<Setting> {
        let mut out = Vec::new();
        let mut add = |controller, files: Vec<(&'static str, String, bool)>| {
            if !files.is_empty() {
                out.push(Setting { controller, files });
            }
        };
        if let Some(m) = self.memory {
            // No swap either, or the limit is soft.
            add(
                "memory",
                if v2 {
                    vec![
                        ("memory.max", m.to_string(), true),
                        ("memory.swap.max", "0".into(), false),
                    ]
                } else {
                    vec![
                        ("memory.limit_in_bytes", m.to_string(), true),
                        ("memory.memsw.limit_in_bytes", m.to_string(), false),
                    ]
                },
            );
        }
        if let Some(p) = self.pids {
            add("pids", vec![("pids.max", p.to_string(), true)]);
        }
        let mut cpu = Vec::new();
        if let Some(q) = self.cpu_quota_us {
            if v2 {
                cpu.push(("cpu.max", format!("{q} {CPU_PERIOD_US}"), true));
            } else {
                cpu.push(("cpu.cfs_period_us", CPU_PERIOD_US.to_string(), true));
                cpu.push(("cpu.cfs_quota_us", q.to_string(), true));
            }
        }
        if let Some(s) = self.cpu_shares {
            cpu.push(if v2 {
                ("cpu.weight", shares_to_weight(s).to_string(), true)
            } else {
                ("cpu.shares", s.to_string(), true)
            });
        }
        add("cpu", cpu);
        if let Some(c) = &self.cpuset_cpus {
            add("cpuset", vec![("cpuset.cpus", c.clone(), true)]);
        }
        out
    }
}

/// docker's shares (2..262144) as cgroup v2's weight (1..10000), as runc
/// converts them.
fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
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

fn mkdir(dir: &Path) -> Result<(), ExecError> {
    fs::create_dir_all(dir).map_err(|source| ExecError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn apply(dir: &Path, s: &Setting) -> Result<(), ExecError> {
    for (file, value, required) in &s.files {
        match fs::write(dir.join(file), value) {
            Ok(()) => {}
            Err(source) if *required => {
                return Err(ExecError::Io {
                    path: dir.join(file),
                    source,
                })
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// A new v1 cpuset group has no CPUs and no memory nodes: give `dir`
/// (and each group between it and the root) its parent's.
fn inherit_cpuset(root: &Path, dir: &Path) {
    let Ok(rel) = dir.strip_prefix(root) else {
        return;
    };
    let mut at = root.to_path_buf();
    for part in rel.components() {
        let parent = at.clone();
        at.push(part);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mine = fs::read_to_string(at.join(file)).unwrap_or_default();
            if mine.trim().is_empty() {
                if let Ok(theirs) = fs::read_to_string(parent.join(file)) {
                    let _ = fs::write(at.join(file), theirs.trim());
                }
            }
        }
    }
}

impl Cgroup {
    /// Creates `kiln/<name>` under each hierarchy that has a limited
    /// controller, and sets the limits.
    pub(crate) fn create(root: &Path, name: &str, limits: &Limits) -> Result<Cgroup, ExecError> {
        if crate::rootless::in_user_namespace() {
            return Cgroup::create_delegated(root, name, limits);
        }
        let mut cg = Cgroup { dirs: Vec::new() };
        if let Ok(controllers) = fs::read_to_string(root.join("cgroup.controllers")) {
            let settings = limits.settings(true);
            let wanted: Vec<&str> = settings.iter().map(|s| s.controller).collect();
            for c in &wanted {
                if !controllers.split_whitespace().any(|x| x == *c) {
                    return Err(ExecError::Invalid(format!(
                        "cgroup v2 at {} has no {c} controller",
                        root.display()
                    )));
                }
            }
            let parent = root.join("kiln");
            mkdir(&parent)?;
            let enable: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
            let _ = fs::write(parent.join("cgroup.subtree_control"), enable.join(" "));
            let dir = parent.join(name);
            mkdir(&dir)?;
            cg.dirs.push(dir.clone());
            for s in &settings {
                apply(&dir, s)?;
            }
            return Ok(cg);
        }
        for s in limits.settings(false) {
            let hierarchy = root.join(s.controller);
            let dir = hierarchy.join("kiln").join(name);
            mkdir(&dir)?;
            cg.dirs.push(dir.clone());
            if s.controller == "cpuset" {
                inherit_cpuset(&hierarchy, &dir);
            }
            apply(&dir, &s)?;
        }
        Ok(cg)
    }

    /// Rootless: cgroup v1 cannot be delegated, so only a v2 subtree the
    /// caller owns will do. kiln's own cgroup must not get controllers (it
    /// holds kiln: v2's no-internal-process rule), so the container's goes
    /// beside it, in the parent, which must be writable by the caller (as
    /// systemd's `Delegate=yes` makes `user@UID.service`'s slices).
    fn create_delegated(root: &Path, name: &str, limits: &Limits) -> Result<Cgroup, ExecError> {
        let refuse = |why: String| {
            ExecError::Invalid(format!(
                "--memory/--pids-limit/--cpus: a rootless kiln can limit a container only \
                 inside a cgroup v2 subtree delegated to its user, and {why}. Run kiln in a \
                 delegated cgroup (systemd: a user service or `systemd-run --user -p \
                 Delegate=yes`), or without the limits"
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
        let settings = limits.settings(true);
        let mut enable = Vec::new();
        for s in &settings {
            if !available.split_whitespace().any(|x| x == s.controller) {
                return Err(refuse(format!(
                    "{} does not offer the {} controller",
                    parent.display(),
                    s.controller
                )));
            }
            enable.push(format!("+{}", s.controller));
        }
        let _ = fs::write(&control, enable.join(" "));
        let dir = parent.join(format!("kiln-{name}"));
        mkdir(&dir)?;
        let cg = Cgroup {
            dirs: vec![dir.clone()],
        };
        for s in &settings {
            apply(&dir, s)?;
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
