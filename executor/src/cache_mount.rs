//! Cache mounts (`RUN --mount=type=cache`): a persistent directory per
//! cache id, made on first use with its uid/gid/mode, and BuildKit's
//! sharing modes: `shared` (everyone at once), `locked` (an flock held
//! for the container's life; others wait) and `private` (a throwaway copy
//! when someone else holds it).

use crate::error::{io_err, ExecError};
use crate::spec::{MountSource, Sharing};
use std::fs;
use std::path::{Path, PathBuf};

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
    /// Takes the lock if nobody (in this process or another) holds it, and
    /// records `holder` in the lock file for whoever waits next.
    fn try_acquire(lock_path: &Path, holder: &str) -> Result<Option<CacheLock>, ExecError> {
        let mut map = cache_locks().lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(lock_path) {
            let file = open_lock_file(lock_path).map_err(io_err(lock_path))?;
            map.insert(lock_path.to_path_buf(), (file, false));
        }
        let (file, held) = map.get_mut(lock_path).expect("inserted above");
        if *held {
            return Ok(None);
        }
        match rustix::fs::flock(&*file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                *held = true;
                // Best effort: the text only names the holder to a waiter.
                let _ = file.set_len(0);
                let _ = std::os::unix::fs::FileExt::write_all_at(&*file, holder.as_bytes(), 0);
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

    /// Waits for the lock (polling: the holder may be another process),
    /// telling `wait` who holds it every [`WAIT_REPORT`] and stopping when
    /// it answers false.
    fn acquire(
        dir: &Path,
        lock_path: &Path,
        holder: &str,
        wait: Option<&CacheWaiter>,
    ) -> Result<CacheLock, ExecError> {
        let started = std::time::Instant::now();
        let mut next_report = started;
        loop {
            if let Some(lock) = Self::try_acquire(lock_path, holder)? {
                return Ok(lock);
            }
            let now = std::time::Instant::now();
            if now >= next_report {
                next_report = now + WAIT_REPORT;
                if let Some(wait) = wait {
                    let report = CacheWait {
                        dir: dir.to_path_buf(),
                        holder: fs::read_to_string(lock_path)
                            .ok()
                            .filter(|h| !h.is_empty())
                            .unwrap_or_else(|| "another process".into()),
                        waited: now - started,
                    };
                    if !(wait.0)(&report) {
                        return Err(ExecError::Cancelled);
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// How often a waiter for a locked cache hears about it (and may cancel).
const WAIT_REPORT: std::time::Duration = std::time::Duration::from_millis(100);

/// A wait for a cache someone else holds: which cache, who holds it (as
/// its holder described itself), and for how long this one has waited.
#[derive(Debug, Clone)]
pub struct CacheWait {
    pub dir: PathBuf,
    pub holder: String,
    pub waited: std::time::Duration,
}

/// Called while a container waits for a locked cache: shows the wait,
/// and answers false to give up (the spawn fails with
/// [`ExecError::Cancelled`]).
#[derive(Clone)]
pub struct CacheWaiter(pub std::sync::Arc<dyn Fn(&CacheWait) -> bool + Send + Sync>);

impl std::fmt::Debug for CacheWaiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheWaiter")
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

/// Makes the cache directory `dir` unless it exists: built under a temp
/// name unique to this process and call, filled by `fill` (a `from=`
/// seed; nothing for a plain cache), given `uid`/`gid`/`mode`, and renamed
/// into place, so a concurrent first use sees it whole or makes its own
/// (the loser's copy is dropped).
pub fn create_cache_dir<E: From<ExecError>>(
    dir: &Path,
    (uid, gid, mode): (u32, u32, u32),
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if dir.exists() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let tmp = parent.join(format!(
        ".{}-{}-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    let made = fill(&tmp).and_then(|()| {
        std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)).map_err(io_err(&tmp))?;
        fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(io_err(&tmp))?;
        Ok(())
    });
    // Never over another's: rename(2) would replace an empty directory
    // that a concurrent first use has just put there (and maybe mounted).
    let placed = made.is_ok()
        && rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            dir,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .is_ok();
    if !placed {
        let _ = fs::remove_dir_all(&tmp);
    }
    made
}

/// What a container holds on its caches while it runs: the sharing locks
/// (`locked`, `private`) and, on every cache it mounts, a shared "in use"
/// lock that keeps `kiln builder prune` from removing it.
#[derive(Default)]
pub(crate) struct CacheHolds {
    _locks: Vec<CacheLock>,
    _in_use: Vec<fs::File>,
}

/// A lock file, made if missing (read-write: a sharing lock's holder
/// writes its name into it).
fn open_lock_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
}

/// The file whose lock says a cache directory is in use.
fn in_use_path(dir: &Path) -> PathBuf {
    dir.with_extension("inuse")
}

/// Marks cache directory `dir` in use (a shared lock on its in-use file)
/// until the returned file drops, waiting out a prune that is removing
/// it; `kiln builder prune` leaves it alone meanwhile. Take it before
/// making or filling the directory, so a prune cannot remove a cache
/// between its making and its mount.
pub fn hold_cache_dir(dir: &Path) -> Result<fs::File, ExecError> {
    let path = in_use_path(dir);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    loop {
        let file = open_lock_file(&path).map_err(io_err(&path))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared).map_err(|e| {
            ExecError::Io {
                path: path.clone(),
                source: e.into(),
            }
        })?;
        // A prune that held the lock meanwhile unlinked this file: a lock
        // on it would guard nothing, so take the one now at the path.
        if still_at(&file, &path).map_err(io_err(&path))? {
            // Its time is the cache's last use (what a prune weighs).
            let _ = file.set_modified(std::time::SystemTime::now());
            return Ok(file);
        }
    }
}

/// Whether the open lock file `file` is still the one at `path`: a prune
/// holding its lock meanwhile may have unlinked it (then the path is
/// missing or another file).
fn still_at(file: &fs::File, path: &Path) -> std::io::Result<bool> {
    let held = rustix::fs::fstat(file)?;
    Ok(rustix::fs::stat(path).is_ok_and(|c| c.st_ino == held.st_ino && c.st_dev == held.st_dev))
}

/// Whether a running container mounts cache directory `dir`.
pub fn cache_dir_in_use(dir: &Path) -> bool {
    let Ok(file) = fs::File::open(in_use_path(dir)) else {
        return false;
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            let _ = rustix::fs::flock(&file, rustix::fs::FlockOperation::Unlock);
            false
        }
        Err(_) => true,
    }
}

/// Removes cache directory `dir` (and its lock files) unless a container
/// uses it now; false when one does. The directory is renamed aside
/// under the exclusive in-use lock, so a step arriving meanwhile waits
/// and then makes a fresh one.
pub fn remove_cache_dir_if_unused(dir: &Path) -> std::io::Result<bool> {
    remove_if_unused_with(dir, open_lock_file(&in_use_path(dir))?)
}

/// [`remove_cache_dir_if_unused`] with its in-use file already open.
fn remove_if_unused_with(dir: &Path, file: fs::File) -> std::io::Result<bool> {
    let in_use = in_use_path(dir);
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    // Another prune removed it (and unlinked this file) before our lock:
    // what is at the path now is a new cache, maybe held; leave it.
    if !still_at(&file, &in_use)? {
        return Ok(false);
    }
    let aside = dir.with_extension(format!("removing-{}", std::process::id()));
    if dir.exists() {
        fs::rename(dir, &aside)?;
    }
    let _ = fs::remove_file(dir.with_extension("lock"));
    let _ = fs::remove_file(&in_use);
    drop(file);
    fs::remove_dir_all(&aside).or_else(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(e),
    })?;
    Ok(true)
}

/// The caches of one container, each made on first use and locked as its
/// sharing mode says, once per cache however many targets mount it: a
/// step mounting one locked cache twice shares the lock with itself.
/// Locks are taken in path order, so two steps that each lock several
/// caches cannot each hold one the other waits for.
pub(crate) struct StepCaches {
    /// Per cache directory: mounted from the directory itself (false: a
    /// throwaway copy, `private` when someone else holds it).
    direct: std::collections::BTreeMap<PathBuf, bool>,
    pub(crate) holds: CacheHolds,
}

impl StepCaches {
    pub(crate) fn lock(
        caches: &[(&Path, Sharing, (u32, u32, u32))],
        holder: &str,
        wait: Option<&CacheWaiter>,
    ) -> Result<StepCaches, ExecError> {
        // The strictest mode a cache is mounted with in this step wins.
        let mut wanted: std::collections::BTreeMap<PathBuf, Sharing> = Default::default();
        let mut in_use = Vec::new();
        for (dir, sharing, owner_mode) in caches {
            if !wanted.contains_key(*dir) {
                // In use first (waiting out a prune removing it), then made.
                in_use.push(hold_cache_dir(dir)?);
            }
            create_cache_dir(dir, *owner_mode, |_| Ok::<(), ExecError>(()))?;
            let entry = wanted.entry(dir.to_path_buf()).or_insert(*sharing);
            *entry = match (*entry, *sharing) {
                (Sharing::Locked, _) | (_, Sharing::Locked) => Sharing::Locked,
                (Sharing::Private, _) | (_, Sharing::Private) => Sharing::Private,
                _ => Sharing::Shared,
            };
        }
        let mut direct = std::collections::BTreeMap::new();
        let mut locks = Vec::new();
        for (dir, sharing) in wanted {
            let lock_path = dir.with_extension("lock");
            let lock = match sharing {
                Sharing::Shared => None,
                Sharing::Locked => Some(CacheLock::acquire(&dir, &lock_path, holder, wait)?),
                Sharing::Private => CacheLock::try_acquire(&lock_path, holder)?,
            };
            direct.insert(dir, sharing == Sharing::Shared || lock.is_some());
            locks.extend(lock);
        }
        Ok(StepCaches {
            direct,
            holds: CacheHolds {
                _locks: locks,
                _in_use: in_use,
            },
        })
    }

    /// The mount source of cache `dir` (one of those locked).
    pub(crate) fn source(&self, dir: &Path) -> MountSource {
        if self.direct.get(dir).copied().unwrap_or(false) {
            MountSource::Bind(dir.to_path_buf())
        } else {
            MountSource::Copy(dir.to_path_buf())
        }
    }
}

/// `source=`: the directory `sub` inside the cache, resolved within it (a
/// symlink in the cache pointing out is followed inside the cache, so
/// nothing outside is ever mounted) and cloned as a detached tree. Always
/// the cache itself: a private copy by path could be raced by a
/// container swapping a component for a symlink.
pub(crate) fn subtree(dir: &Path, sub: &str) -> Result<MountSource, ExecError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let root = fs::File::open(dir).map_err(io_err(dir))?;
    let at = rustix::fs::openat2(
        &root,
        sub.trim_start_matches('/'),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| {
        ExecError::Invalid(format!(
            "cache mount source={sub}: not a directory in the cache ({})",
            std::io::Error::from(e)
        ))
    })?;
    let tree = crate::spec::clone_tree(std::os::fd::AsFd::as_fd(&at)).map_err(io_err(dir))?;
    Ok(MountSource::Tree(tree))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_cache_is_not_removed_until_released() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        fs::create_dir(&dir).unwrap();
        let hold = hold_cache_dir(&dir).unwrap();
        assert!(cache_dir_in_use(&dir));
        assert!(!remove_cache_dir_if_unused(&dir).unwrap());
        assert!(dir.is_dir());
        drop(hold);
        assert!(remove_cache_dir_if_unused(&dir).unwrap());
        assert!(!dir.exists());
    }

    /// Two first uses racing: the one that places its directory second
    /// drops its own copy, never replacing the first's (which a step may
    /// already have mounted), even though both are empty.
    #[test]
    fn a_cache_dir_made_meanwhile_is_kept_not_replaced() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let mut winner = 0;
        create_cache_dir(&dir, (0, 0, 0o755), |_| {
            fs::create_dir(&dir).unwrap();
            winner = fs::metadata(&dir).unwrap().ino();
            Ok::<(), ExecError>(())
        })
        .unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().ino(), winner);
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "a temp copy stayed"
        );
    }

    /// A hold that waited on a prune's lock, which the prune then
    /// unlinked, must guard the cache made afterwards, not the dead file.
    #[test]
    fn a_hold_that_waited_out_a_prune_guards_the_new_lock_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let path = in_use_path(&dir);
        let prune = open_lock_file(&path).unwrap();
        rustix::fs::flock(&prune, rustix::fs::FlockOperation::LockExclusive).unwrap();
        let d = dir.clone();
        let waiter = std::thread::spawn(move || hold_cache_dir(&d).unwrap());
        // Time for the waiter to block on the prune's lock; a late one
        // finds the path empty and checks the same thing.
        std::thread::sleep(std::time::Duration::from_millis(300));
        fs::remove_file(&path).unwrap();
        drop(prune);
        let hold = waiter.join().unwrap();
        assert!(cache_dir_in_use(&dir), "the hold guards an unlinked file");
        fs::create_dir(&dir).unwrap();
        assert!(!remove_cache_dir_if_unused(&dir).unwrap());
        drop(hold);
    }

    /// A prune that won its lock only after another prune removed the
    /// cache (and unlinked the file it had opened) leaves the cache made
    /// since alone.
    #[test]
    fn a_prune_late_to_an_unlinked_lock_file_removes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let path = in_use_path(&dir);
        let late = open_lock_file(&path).unwrap();
        // The earlier prune's removal; then a step's hold and new cache.
        fs::remove_file(&path).unwrap();
        let hold = hold_cache_dir(&dir).unwrap();
        fs::create_dir(&dir).unwrap();
        assert!(!remove_if_unused_with(&dir, late).unwrap());
        assert!(dir.is_dir());
        drop(hold);
    }
}
