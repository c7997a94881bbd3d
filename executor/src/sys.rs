//! The executor's syscall layer: the only module in kiln allowed `unsafe`.
//! Everything here is a thin wrapper over one syscall, each with the reason
//! it is sound.

use std::ffi::{c_char, CStr};
use std::os::fd::RawFd;

/// `clone(2)` with fork semantics (no `CLONE_VM`, no new stack) and extra
/// namespace flags. Returns 0 in the child, the child's pid in the parent.
///
/// The child is a copy of a possibly multi-threaded process in which only
/// the calling thread exists: until `execve` it may only make async-signal-
/// safe calls — raw syscalls, no allocation, no locks (man 7 signal-safety).
/// libc's `fork()` would run atfork handlers that can deadlock; the raw
/// syscall runs none.
pub(crate) fn clone_fork(namespaces: libc::c_int) -> std::io::Result<libc::pid_t> {
    let flags = (namespaces | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a null stack and without CLONE_VM the kernel gives the
    // child a copy-on-write copy of our memory, exactly as fork(2) does; the
    // remaining arguments (parent/child tid pointers, tls) are unused for
    // these flags and passed as null.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc as libc::pid_t)
    }
}

/// `execve(2)` with pre-built, null-terminated pointer arrays. Returns only
/// on failure, with the errno.
pub(crate) fn execve(path: &CStr, argv: &[*const c_char], envp: &[*const c_char]) -> i32 {
    debug_assert!(argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(envp.last().is_some_and(|p| p.is_null()));
    // SAFETY: `path` is a valid C string; `argv` and `envp` are
    // null-terminated arrays of pointers into C strings the caller keeps
    // alive (they are owned by the prepared container spec, which outlives
    // this call). execve does not return on success.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

/// `_exit(2)`: leaves without running atexit handlers or flushing stdio,
/// which a forked child of a threaded process must not touch.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and takes any status.
    unsafe { libc::_exit(code) }
}

/// Drops a capability from the bounding set (`PR_CAPBSET_DROP`).
pub(crate) fn capbset_drop(cap: u32) -> Result<(), i32> {
    // SAFETY: prctl with PR_CAPBSET_DROP reads only its integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Brings the loopback interface up in a fresh network namespace
/// (`SIOCGIFFLAGS` / `SIOCSIFFLAGS` on an `ifreq` on the stack).
pub(crate) fn loopback_up() -> Result<(), i32> {
    // SAFETY: socket() has no memory arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as c_char;
    }
    // SAFETY: `req` is a valid ifreq naming "lo"; the ioctls read and write
    // only within it.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(errno())
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(errno())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: closing the socket we opened above.
    unsafe { libc::close(fd) };
    result
}

/// `dup2(2)` onto a standard descriptor (clears its close-on-exec flag).
pub(crate) fn dup2(from: RawFd, to: RawFd) -> Result<(), i32> {
    // SAFETY: dup2 only manipulates the descriptor table.
    if unsafe { libc::dup2(from, to) } < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

/// Blocks every signal in the calling thread (the init process then takes
/// them one at a time with [`wait_signal`]). Returns the old mask.
pub(crate) fn block_all_signals() -> Result<libc::sigset_t, i32> {
    // SAFETY: sigset_t is plain data; sigfillset and pthread_sigmask only
    // read and write the sets passed.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) != 0 {
            return Err(errno());
        }
        Ok(old)
    }
}

/// Restores a signal mask (in the command's process, before exec).
pub(crate) fn set_signal_mask(mask: &libc::sigset_t) {
    // SAFETY: `mask` is a valid sigset_t.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
}

/// Waits for any (blocked) signal and returns its number.
pub(crate) fn wait_signal() -> i32 {
    // SAFETY: sigset_t is plain data; sigwaitinfo writes only `info`.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::sigwaitinfo(&all, &mut info)
    }
}
