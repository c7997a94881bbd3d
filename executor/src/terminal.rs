//! Terminals for `kiln run -t`: raw mode on the caller's
//! terminal (restored on drop), and window sizes.

use rustix::termios::{self, OptionalActions, Termios, Winsize};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    termios::isatty(fd)
}

/// Copies the window size of `from` (the caller's terminal) to `to`.
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok(size) = termios::tcgetwinsize(from) {
        let _ = termios::tcsetwinsize(to, Winsize { ..size });
    }
}

/// Puts a terminal in raw mode until dropped.
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    pub fn enable(fd: BorrowedFd<'_>) -> Option<RawMode> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(fd, OptionalActions::Now, &raw).ok()?;
        Some(RawMode {
            fd: fd.try_clone_to_owned().ok()?,
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), OptionalActions::Now, &self.saved);
    }
}
