//! Filesystem views for file operations (COPY, ADD, WORKDIR): a snapshot
//! stack seen as one tree, without a container.
//!
//! A view is a *detached* overlay mount (`fsopen` + `fsmount`, never
//! attached to any path) held by its root directory descriptor. Nothing
//! appears in any mount table, so a crashed build leaks no mount: the
//! kernel frees the tree when the descriptor closes. Callers work through
//! the descriptor with `*at` calls and `RESOLVE_IN_ROOT`, so symlinks in an
//! image resolve inside the image.

use rustix::fs::{Mode, OFlags, CWD};
use rustix::mount::{
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags,
    MountAttrFlags,
};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The root of a filesystem view.
#[derive(Debug)]
pub struct View {
    root: OwnedFd,
}

impl View {
    /// The root directory descriptor (use with `openat2` + `RESOLVE_IN_ROOT`).
    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}

fn ctx(what: &str, path: &Path) -> impl FnOnce(rustix::io::Errno) -> io::Error {
    let what = what.to_string();
    let path = path.to_path_buf();
    move |e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("{what} {}: {e}", path.display()),
        )
    }
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::openat(
        CWD,
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(ctx("opening", path))
}

/// `lowers` base first, as the store returns them.
fn overlay(lowers: &[PathBuf], upper: Option<(&Path, &Path)>) -> io::Result<OwnedFd> {
    let first = lowers
        .first()
        .map(PathBuf::as_path)
        .unwrap_or(Path::new("/"));
    let userns = crate::rootless::in_user_namespace();
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(ctx("overlay for", first))?;
    for lower in lowers.iter().rev() {
        fsconfig_set_string(fs.as_fd(), "lowerdir+", lower).map_err(ctx("overlay lower", lower))?;
    }
    if let Some((upper, work)) = upper {
        fsconfig_set_string(fs.as_fd(), "upperdir", upper).map_err(ctx("overlay upper", upper))?;
        fsconfig_set_string(fs.as_fd(), "workdir", work).map_err(ctx("overlay work", work))?;
        if !userns {
            fsconfig_set_string(fs.as_fd(), "redirect_dir", "off")
                .map_err(ctx("overlay option for", upper))?;
        }
        fsconfig_set_string(fs.as_fd(), "metacopy", "off")
            .map_err(ctx("overlay option for", upper))?;
    }
    if userns {
        // As for a container's root (see `child::mount_rootfs`).
        rustix::mount::fsconfig_set_flag(fs.as_fd(), "userxattr")
            .map_err(ctx("overlay option for", first))?;
    }
    fsconfig_create(fs.as_fd()).map_err(ctx("creating overlay on", first))?;
    fsmount(
        fs.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::empty(),
    )
    .map_err(ctx("mounting overlay on", first))
}

/// A writable view: `lowers` (base first) with writes going to `upper`.
/// `scratch` is a directory the view may use for the overlay work dir and
/// an empty lower (overlayfs needs at least one).
pub fn writable(lowers: &[PathBuf], upper: &Path, scratch: &Path) -> io::Result<View> {
    let work = scratch.join("work");
    std::fs::create_dir_all(&work)?;
    std::fs::create_dir_all(upper)?;
    let mut lowers = lowers.to_vec();
    if lowers.is_empty() {
        let empty = scratch.join("empty");
        std::fs::create_dir_all(&empty)?;
        lowers.push(empty);
    }
    Ok(View {
        root: overlay(&lowers, Some((upper, &work)))?,
    })
}

/// A read-only view of `lowers` (base first). One lower is opened
/// directly; none gives `empty`.
pub fn readonly(lowers: &[PathBuf], empty: &Path) -> io::Result<View> {
    let root = match lowers {
        [] => {
            std::fs::create_dir_all(empty)?;
            open_dir(empty)?
        }
        [one] => open_dir(one)?,
        many => overlay(many, None)?,
    };
    Ok(View { root })
}

/// A view of a plain host directory (the build context).
pub fn host_dir(path: &Path) -> io::Result<View> {
    Ok(View {
        root: open_dir(path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{openat2, ResolveFlags};

    #[test]
    fn writes_land_in_upper_and_symlinks_stay_inside() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/base"), "b").unwrap();
        // An absolute symlink must resolve inside the view, not on the host.
        std::os::unix::fs::symlink("/etc", lower.join("link")).unwrap();
        let upper = t.path().join("upper");
        let view = writable(std::slice::from_ref(&lower), &upper, &t.path().join("s")).unwrap();
        let f = openat2(
            view.root(),
            "link/new",
            OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
            ResolveFlags::IN_ROOT,
        )
        .unwrap();
        rustix::io::write(&f, b"x").unwrap();
        drop(f);
        drop(view);
        assert_eq!(std::fs::read(upper.join("etc/new")).unwrap(), b"x");
        assert!(!lower.join("etc/new").exists());
        assert!(std::fs::read_dir(&upper).unwrap().count() == 1);
    }
}
