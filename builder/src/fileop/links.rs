//! Hard links among the files one copy makes.

use super::{errno, remove_all_at, OpResult};
use rustix::fs::{AtFlags, Stat};
use std::ffi::{OsStr, OsString};
use std::os::fd::{BorrowedFd, OwnedFd};

thread_local! {
    /// The files with more than one link a copy has made so far, by the
    /// source's (device, inode): a second name of one becomes a hard link
    /// to the copy (as BuildKit's copier does), not a second file.
    static COPIED_LINKS: std::cell::RefCell<std::collections::HashMap<(u64, u64), (OwnedFd, OsString)>> =
        Default::default();
}

/// Clears [`COPIED_LINKS`] when a copy ends (links never span copies).
pub(super) struct CopiedLinks;

impl CopiedLinks {
    pub(super) fn scope() -> CopiedLinks {
        COPIED_LINKS.with(|m| m.borrow_mut().clear());
        CopiedLinks
    }
}

impl Drop for CopiedLinks {
    fn drop(&mut self) {
        COPIED_LINKS.with(|m| m.borrow_mut().clear());
    }
}

/// Makes `dst_name` a hard link to this copy's earlier copy of the same
/// source file, if there is one.
pub(super) fn link_to_copied(
    st: &Stat,
    replace: bool,
    dst_dir: BorrowedFd<'_>,
    dst_name: &OsStr,
) -> OpResult<bool> {
    COPIED_LINKS.with(|m| {
        let m = m.borrow();
        let Some((dir, name)) = m.get(&(st.st_dev, st.st_ino)) else {
            return Ok(false);
        };
        if replace {
            remove_all_at(dst_dir, dst_name)?;
        }
        rustix::fs::linkat(dir, name.as_os_str(), dst_dir, dst_name, AtFlags::empty())
            .map_err(errno(format!("link {}", dst_name.to_string_lossy())))?;
        Ok(true)
    })
}

pub(super) fn remember_copied(
    st: &Stat,
    dst_dir: BorrowedFd<'_>,
    dst_name: &OsStr,
) -> OpResult<()> {
    let dir = rustix::io::fcntl_dupfd_cloexec(dst_dir, 0).map_err(errno("dup"))?;
    COPIED_LINKS.with(|m| {
        m.borrow_mut()
            .insert((st.st_dev, st.st_ino), (dir, dst_name.to_os_string()))
    });
    Ok(())
}
