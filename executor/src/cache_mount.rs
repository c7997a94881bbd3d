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
    if made.is_err() || fs::rename(&tmp, dir).is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    made
}

/// The mount source for a cache, creating it on first use, and the lock
/// held while the container runs (`Locked` waits for it; `Private` falls
/// back to a throwaway copy when someone else holds it).
pub(crate) fn cache_source(
    dir: &Path,
    sharing: Sharing,
    owner_mode: (u32, u32, u32),
) -> Result<(MountSource, Option<CacheLock>), ExecError> {
    create_cache_dir(dir, owner_mode, |_| Ok::<(), ExecError>(()))?;
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
