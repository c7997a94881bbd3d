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

/// Marks every descriptor from `first` up close-on-exec
/// (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`, Linux 5.11), so none
/// the caller inherited reaches the container's command. On older kernels
/// falls back to `fcntl(F_SETFD)` over the whole descriptor range.
pub(crate) fn cloexec_from(first: u32) -> Result<(), i32> {
    // SAFETY: close_range only changes flags in the descriptor table.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let limit = open_files_limit();
    for fd in first as i32..limit {
        // SAFETY: F_SETFD on a number that may not be open only fails with
        // EBADF; it touches nothing else.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Closes every descriptor from `first` up (`close_range(first, ~0, 0)`;
/// a `close` loop on older kernels). For a process that never execs.
pub(crate) fn close_from(first: u32) {
    // SAFETY: close_range only removes entries from the descriptor table;
    // the caller (the container's init) holds no Rust object that would
    // use or close them again.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if rc == 0 {
        return;
    }
    for fd in first as i32..open_files_limit() {
        // SAFETY: as above; EBADF for numbers that are not open.
        unsafe { libc::close(fd) };
    }
}

/// The soft RLIMIT_NOFILE (descriptor numbers are below it).
fn open_files_limit() -> i32 {
    // SAFETY: getrlimit writes only the struct passed.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is a valid rlimit to write into.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1 << 20;
    }
    lim.rlim_cur.min(1 << 20) as i32
}

/// Closes one descriptor number (the child's copy of a descriptor the
/// parent keeps; the child never drops the Rust owner).
pub(crate) fn close(fd: RawFd) {
    // SAFETY: closing a number we own a copy of in this (forked) process.
    unsafe { libc::close(fd) };
}

/// `struct mount_attr` (linux/mount.h), for `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` setting `set` (`MOUNT_ATTR_*` bits) on the mount
/// `path` names relative to `dirfd`.
fn mount_setattr(dirfd: RawFd, path: &CStr, flags: libc::c_int, set: u64) -> Result<(), i32> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `path` is a valid C string and `attr` a valid mount_attr of
    // the size passed; the kernel only reads both.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Sets mount attributes on the mount `fd` refers to, and on every mount
/// below it (`AT_RECURSIVE`). Works on detached trees from
/// `open_tree(OPEN_TREE_CLONE)` before they are attached.
pub(crate) fn mount_setattr_recursive(fd: RawFd, set: u64) -> Result<(), i32> {
    mount_setattr(fd, c"", libc::AT_EMPTY_PATH | libc::AT_RECURSIVE, set)
}

/// Sets mount attributes on the one mount at `path` (not those below it).
pub(crate) fn mount_setattr_one(path: &CStr, set: u64) -> Result<(), i32> {
    mount_setattr(libc::AT_FDCWD, path, 0, set)
}

/// `unshare(2)` into new namespaces (`CLONE_NEW*` flags only).
pub(crate) fn unshare(flags: libc::c_int) -> std::io::Result<()> {
    // SAFETY: unshare takes only flags; with namespace flags alone it
    // changes no memory or descriptor this process relies on.
    if unsafe { libc::unshare(flags) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The kernel's `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const seccompiler::sock_filter,
}

/// Installs a seccomp filter with `seccomp(SECCOMP_SET_MODE_FILTER)`,
/// without setting `no_new_privs` first (seccompiler's `apply_filter`
/// always does): the caller holds CAP_SYS_ADMIN, which the kernel then
/// accepts instead.
pub(crate) fn seccomp_set_filter(program: &[seccompiler::sock_filter]) -> Result<(), i32> {
    if program.is_empty() || program.len() > u16::MAX as usize {
        return Err(libc::EINVAL);
    }
    let prog = SockFprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` points at `program`'s instructions, alive for the
    // call; the kernel copies them and keeps no pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0 as libc::c_ulong,
            &prog as *const SockFprog,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}
