//! Build cache garbage collection: `kiln builder prune` and the policy a
//! build applies when it ends. What is weighed: the build cache records
//! (each by the layer it adds) and the cache-mount directories (each by
//! its size); least recently used go first. Removing a record removes
//! only what nothing else (an image, another record, a live process)
//! needs; a cache mount a running step uses is never removed.

use kiln_store::Store;
use std::path::PathBuf;

/// What to keep.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Keep the most recently used entries up to this many bytes.
    pub keep_bytes: Option<u64>,
    /// Keep what was used within this many seconds.
    pub keep_duration: Option<i64>,
    /// Weigh build cache records.
    pub records: bool,
    /// Weigh cache-mount directories.
    pub mounts: bool,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub records: usize,
    pub mounts: usize,
    /// Bytes freed on disk (blobs, snapshots, cache-mount contents).
    pub bytes: u64,
}

/// What the build cache holds, and what a prune of all of it would free.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub records: usize,
    pub records_bytes: u64,
    pub records_reclaimable: u64,
    pub mounts: usize,
    /// Cache mounts a running step uses now.
    pub mounts_active: usize,
    pub mounts_bytes: u64,
    pub mounts_reclaimable: u64,
}

pub fn usage(store: &Store) -> Result<Usage, kiln_store::StoreError> {
    let records = store.cache_records()?;
    let mounts = cache_mounts(store);
    let active: Vec<bool> = mounts
        .iter()
        .map(|m| kiln_executor::cache_dir_in_use(&m.dir))
        .collect();
    Ok(Usage {
        records: records.len(),
        records_bytes: records.iter().map(|r| r.size).sum(),
        records_reclaimable: store.cache_reclaimable()?,
        mounts: mounts.len(),
        mounts_active: active.iter().filter(|a| **a).count(),
        mounts_bytes: mounts.iter().map(|m| m.size).sum(),
        mounts_reclaimable: mounts
            .iter()
            .zip(&active)
            .filter(|(_, a)| !**a)
            .map(|(m, _)| m.size)
            .sum(),
    })
}

struct Mount {
    dir: PathBuf,
    used: i64,
    size: u64,
}

/// The cache-mount directories (not their lock files or temp copies).
fn cache_mounts(store: &Store) -> Vec<Mount> {
    let root = store.root().join("cache-mounts");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && !name.contains('.') && e.path().is_dir()
        })
        .map(|e| {
            let dir = e.path();
            let mtime = |p: &std::path::Path| {
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs() as i64)
            };
            let used = mtime(&dir.with_extension("inuse")).max(mtime(&dir));
            Mount {
                size: kiln_store::dir_size(&dir),
                dir,
                used,
            }
        })
        .collect()
}

/// Removes what `policy` does not keep. Neither limit given: everything
/// weighed goes (`builder prune -a`).
pub fn prune(store: &Store, policy: &Policy) -> Result<Pruned, kiln_store::StoreError> {
    enum Entry {
        Record(String),
        Mount(PathBuf),
    }
    let mut entries: Vec<(i64, u64, Entry)> = Vec::new();
    if policy.records {
        for r in store.cache_records()? {
            entries.push((r.used, r.size, Entry::Record(r.key)));
        }
    }
    if policy.mounts {
        for m in cache_mounts(store) {
            entries.push((m.used, m.size, Entry::Mount(m.dir)));
        }
    }
    // Most recently used first; kept while within the limits.
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    let now = kiln_store::now();
    let unlimited = policy.keep_bytes.is_none() && policy.keep_duration.is_none();
    let mut kept = 0u64;
    let mut doomed_records = Vec::new();
    let mut doomed_mounts = Vec::new();
    for (used, size, entry) in entries {
        let too_old = policy.keep_duration.is_some_and(|d| used < now - d);
        let too_big = policy.keep_bytes.is_some_and(|b| kept + size > b);
        if unlimited || too_old || too_big {
            match entry {
                Entry::Record(k) => doomed_records.push(k),
                Entry::Mount(d) => doomed_mounts.push((d, size)),
            }
        } else {
            kept += size;
        }
    }
    let mut pruned = Pruned::default();
    if !doomed_records.is_empty() {
        let report = store.prune_cache(&doomed_records)?;
        pruned.records = report.cache_records_removed;
        pruned.bytes += report.bytes_freed;
    }
    for (dir, size) in doomed_mounts {
        if let Ok(true) = kiln_executor::remove_cache_dir_if_unused(&dir) {
            pruned.mounts += 1;
            pruned.bytes += size;
        }
    }
    Ok(pruned)
}

/// The policy a build applies when it ends: the cache (records and
/// mounts) kept under `$KILN_GC_KEEP_STORAGE` bytes (`10GB`, `500MB`;
/// `0` turns it off), by default a tenth of the store's filesystem. The
/// default runs at most once an hour (weighing the cache walks it), a
/// configured limit after every build.
pub fn after_build_policy(store: &Store) -> Option<Policy> {
    let keep = match std::env::var("KILN_GC_KEEP_STORAGE") {
        Ok(v) if v.trim() == "0" => return None,
        Ok(v) => kiln_parser::units::ram_in_bytes(v.trim())?,
        Err(_) => {
            let stamp = store.root().join("gc.stamp");
            let recent = std::fs::metadata(&stamp)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() < 3600);
            if recent {
                return None;
            }
            std::fs::write(&stamp, b"").ok()?;
            let fs = rustix::fs::statvfs(store.root()).ok()?;
            fs.f_blocks * fs.f_frsize / 10
        }
    };
    Some(Policy {
        keep_bytes: Some(keep),
        keep_duration: None,
        records: true,
        mounts: true,
    })
}
