//! What the cloned child does before `execve`. It runs in a copy of a
//! possibly multi-threaded process, so everything here is a raw syscall on
//! data prepared beforehand: no allocation, no locks, no formatting. Any
//! failure is reported as (step, errno) on the error pipe, then `_exit`.

mod init;

use crate::error::Step;
use crate::prepare::{ChildStdio, LifePipe, Prepared, Privileges};
use crate::sys;
pub(crate) use init::exec as exec_command;
use init::{exec, init_then_exec};
use rustix::fs::{Mode, CWD};
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};
use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

type R<T = ()> = Result<T, i32>;

fn e(err: rustix::io::Errno) -> i32 {
    err.raw_os_error()
}

/// Ignores "does not exist" (optional targets such as masked /proc files).
fn optional(r: R) -> R {
    match r {
        Err(errno) if errno == libc::ENOENT => Ok(()),
        other => other,
    }
}

/// A fresh filesystem of `fstype`, as a detached mount (new mount API).
fn new_detached(
    fstype: &CStr,
    options: &[(&CStr, &CStr)],
    flags: &[&CStr],
    attrs: MountAttrFlags,
) -> R<OwnedFd> {
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC).map_err(e)?;
    for (k, v) in options {
        fsconfig_set_string(fs.as_fd(), *k, *v).map_err(e)?;
    }
    for f in flags {
        fsconfig_set_flag(fs.as_fd(), *f).map_err(e)?;
    }
    fsconfig_create(fs.as_fd()).map_err(e)?;
    fsmount(fs.as_fd(), FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(e)
}

/// Attaches a detached mount at `target`.
fn attach(tree: &OwnedFd, target: &CStr) -> R {
    move_mount(
        tree.as_fd(),
        c"",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(e)
}

/// Mounts a fresh filesystem of `fstype` at `target` with the new mount API.
fn mount_new(
    fstype: &CStr,
    options: &[(&CStr, &CStr)],
    flags: &[&CStr],
    attrs: MountAttrFlags,
    target: &CStr,
) -> R {
    attach(&new_detached(fstype, options, flags, attrs)?, target)
}

fn mkdir(path: &CStr, mode: u32) -> R {
    match rustix::fs::mkdir(path, Mode::from_raw_mode(mode)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(err) => Err(e(err)),
    }
}

/// Whether `path` is strictly inside directory `dir` (both absolute).
fn is_below(path: &[u8], dir: &[u8]) -> bool {
    let dir = dir.strip_suffix(b"/").unwrap_or(dir);
    path.len() > dir.len() + 1 && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// Creates a regular file to mount over, unless something is there.
fn touch(path: &CStr) -> R {
    use rustix::fs::OFlags;
    match rustix::fs::open(
        path,
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_fd) => Ok(()),
        Err(rustix::io::Errno::ISDIR) => Ok(()),
        Err(err) => Err(e(err)),
    }
}

/// The child's whole life: set up, then exec. Never returns.
pub(crate) fn run(p: &Prepared) -> ! {
    let mut step = Step::Network;
    let result = setup(p, &mut step);
    let errno = match result {
        Ok(()) if p.init => init_then_exec(p),
        Ok(()) => exec(&p.command),
        Err(errno) => errno,
    };
    let step = if result.is_ok() { Step::Exec } else { step };
    report_and_exit(&p.error_pipe, step, errno)
}

/// Reports (step, errno) on the error pipe (read by `setup_error`) and
/// leaves.
pub(crate) fn report_and_exit(error_pipe: &OwnedFd, step: Step, errno: i32) -> ! {
    let mut report = [0u8; 8];
    report[..4].copy_from_slice(&(step as u32).to_le_bytes());
    report[4..].copy_from_slice(&errno.to_le_bytes());
    let _ = rustix::io::write(error_pipe, &report);
    sys::exit_now(1)
}

/// The overlay root filesystem, mounted at `p.rootfs`.
fn mount_rootfs(p: &Prepared) -> R {
    rustix::mount::mount_change(
        c"/",
        rustix::mount::MountPropagationFlags::REC | rustix::mount::MountPropagationFlags::PRIVATE,
    )
    .map_err(e)?;
    let fs = fsopen(c"overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(e)?;
    for lower in &p.lowers_top_first {
        fsconfig_set_string(fs.as_fd(), c"lowerdir+", lower.as_c_str()).map_err(e)?;
    }
    fsconfig_set_string(fs.as_fd(), c"upperdir", p.upper.as_c_str()).map_err(e)?;
    fsconfig_set_string(fs.as_fd(), c"workdir", p.work.as_c_str()).map_err(e)?;
    // A faithful upper dir: no redirects, no metadata-only copy-ups.
    if p.userns {
        // In a user namespace overlayfs may not use trusted.* xattrs: its
        // marks (opaque dirs) go in user.overlay.* (Linux >= 5.11). It
        // then never makes redirects, and refuses to be told about them.
        fsconfig_set_flag(fs.as_fd(), c"userxattr").map_err(e)?;
    } else {
        fsconfig_set_string(fs.as_fd(), c"redirect_dir", c"off").map_err(e)?;
    }
    fsconfig_set_string(fs.as_fd(), c"metacopy", c"off").map_err(e)?;
    fsconfig_create(fs.as_fd()).map_err(e)?;
    // nodev: a device node in an image or made with mknod cannot be
    // opened; the only usable devices are the ones bound into /dev.
    let mnt = fsmount(
        fs.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .map_err(e)?;
    move_mount(
        mnt.as_fd(),
        c"",
        CWD,
        p.rootfs.as_c_str(),
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(e)
}

/// Standard streams onto the prepared descriptors, or the terminal.
pub(crate) fn connect_stdio(p: &ChildStdio) -> R {
    if let Some(sock) = &p.tty_socket {
        return attach_terminal(sock);
    }
    for (fd, src) in [(1, &p.stdout), (2, &p.stderr), (0, &p.stdin)] {
        if let Some(src) = src {
            sys::dup2(std::os::fd::AsRawFd::as_raw_fd(src), fd)?;
        }
    }
    Ok(())
}

fn setup(p: &Prepared, step: &mut Step) -> R {
    if p.runtime_helper {
        return setup_runtime_helper(p, step);
    }
    rustix::process::umask(Mode::empty());
    if let Some(ns) = &p.ipc_namespace {
        *step = Step::Namespaces;
        rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::InterProcessCommunication),
        )
        .map_err(e)?;
    }
    if let Some(ns) = &p.net_namespace {
        *step = Step::Namespaces;
        rustix::thread::move_into_link_name_space(
            ns.0.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(e)?;
    }
    if p.network_none {
        *step = Step::Network;
        sys::loopback_up()?;
    }
    *step = Step::Rootfs;
    mount_rootfs(p)?;
    // Host paths end here: everything from the host is cloned into a
    // detached mount tree now, to attach inside the container afterwards.
    *step = Step::Mounts;
    detach_mount_sources(p)?;
    *step = Step::Dev;
    detach_devices(p)?;
    // /proc and /sys are made now, while the host's are still in our
    // mount namespace: in a user namespace the kernel lets a new procfs
    // or sysfs be mounted only where one is already fully visible.
    *step = Step::Proc;
    let _ = p
        .proc_tree
        .set(new_detached(c"proc", &[], &[], PROC_ATTRS)?);
    *step = Step::Sys;
    let _ = p.sys_tree.set(detach_sys(p)?);
    *step = Step::PivotRoot;
    rustix::process::chdir(p.rootfs.as_c_str()).map_err(e)?;
    rustix::process::pivot_root(c".", c".").map_err(e)?;
    rustix::mount::unmount(c".", rustix::mount::UnmountFlags::DETACH).map_err(e)?;
    rustix::process::chdir(c"/").map_err(e)?;
    // From here on every path is inside the container: symlinks in the
    // image resolve within it.
    *step = Step::Mountpoints;
    for dir in &p.mkdirs {
        mkdir(dir, 0o755)?;
    }
    for file in &p.mkfiles {
        touch(file)?;
    }
    *step = Step::Proc;
    attach(p.proc_tree.get().ok_or(libc::EBADF)?, c"/proc")?;
    *step = Step::Dev;
    mount_dev(p)?;
    *step = Step::Sys;
    attach(p.sys_tree.get().ok_or(libc::EBADF)?, c"/sys")?;
    *step = Step::Mounts;
    attach_mounts(p)?;
    *step = Step::Mask;
    mask_kernel_paths()?;
    *step = Step::Hostname;
    match rustix::system::sethostname(p.hostname.as_bytes()) {
        // Inside an unprivileged container (the Kubernetes pod case) its
        // seccomp profile may refuse sethostname to a process without
        // CAP_SYS_ADMIN in the *outer* namespace, even in a UTS namespace
        // of our own: the container keeps the pod's hostname then.
        Err(rustix::io::Errno::PERM) if p.userns => {}
        other => other.map_err(e)?,
    }
    *step = Step::Workdir;
    for dir in &p.cwd_mkdirs {
        mkdir(dir, 0o755)?;
    }
    rustix::process::chdir(p.cwd.as_c_str()).map_err(e)?;
    *step = Step::Rlimits;
    for (resource, limit) in &p.rlimits {
        rustix::process::setrlimit(*resource, *limit).map_err(e)?;
    }
    *step = Step::Stdio;
    connect_stdio(&p.stdio)?;
    rustix::process::umask(Mode::from_raw_mode(0o022));
    if p.readonly_rootfs {
        *step = Step::Rootfs;
        sys::mount_setattr_one(c"/", MountAttrFlags::MOUNT_ATTR_RDONLY.bits() as u64)?;
    }
    // The filter goes on while we still hold CAP_SYS_ADMIN, so it needs
    // no `no_new_privs` (which would stop setuid programs, as docker does
    // only when asked); Docker's profile allows everything that follows.
    *step = Step::Seccomp;
    apply_seccomp(&p.privileges)?;
    *step = Step::Privileges;
    drop_privileges(&p.privileges)?;
    // After the uid/gid change, which would clear it.
    tie_to_parent(&p.life)?;
    if let Some(gate) = &p.start_gate {
        // Wait until the parent has put us in our cgroup (EOF = it gave up).
        let mut b = [0u8; 1];
        match rustix::io::read(gate, &mut b) {
            Ok(1) => {}
            Ok(_) => return Err(libc::ECANCELED),
            Err(err) => return Err(e(err)),
        }
    }
    // No descriptor kiln or its caller had open survives exec: a leaked
    // directory fd is a way out of the root (runc CVE-2024-21626).
    sys::cloexec_from(3)
}

/// Docker's seccomp profile (and a build step's deferred-sync filter).
pub(crate) fn apply_seccomp(p: &Privileges) -> R {
    if let Some(programs) = p.seccomp {
        for program in programs {
            sys::seccomp_set_filter(program)?;
        }
    }
    if let Some(profile) = &p.custom_seccomp {
        for program in profile.0.iter() {
            sys::seccomp_set_filter(program)?;
        }
    }
    if let Some(program) = p.deferred_sync {
        sys::seccomp_set_filter(program)?;
    }
    Ok(())
}

/// The OCI backend's helper: the runtime does the rest.
fn setup_runtime_helper(p: &Prepared, step: &mut Step) -> R {
    *step = Step::Rootfs;
    mount_rootfs(p)?;
    // We are PID 1 of a new PID namespace: the runtime reads /proc/<pid>
    // of its children, so /proc must be this namespace's.
    *step = Step::Proc;
    mount_proc()?;
    *step = Step::Stdio;
    connect_stdio(&p.stdio)?;
    *step = Step::Privileges;
    tie_to_parent(&p.life)?;
    sys::cloexec_from(3)
}

const PROC_ATTRS: MountAttrFlags = MountAttrFlags::MOUNT_ATTR_NOSUID
    .union(MountAttrFlags::MOUNT_ATTR_NODEV)
    .union(MountAttrFlags::MOUNT_ATTR_NOEXEC);

const SYS_ATTRS: MountAttrFlags = MountAttrFlags::MOUNT_ATTR_RDONLY
    .union(MountAttrFlags::MOUNT_ATTR_NOSUID)
    .union(MountAttrFlags::MOUNT_ATTR_NODEV)
    .union(MountAttrFlags::MOUNT_ATTR_NOEXEC);

/// A read-only /sys: the container's own sysfs, or in a user namespace
/// that does not own its network namespace (rootless, host network),
/// where sysfs cannot be mounted, the host's bound read-only.
fn detach_sys(p: &Prepared) -> R<OwnedFd> {
    if !p.bind_sys {
        return new_detached(c"sysfs", &[], &[], SYS_ATTRS);
    }
    let flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_RECURSIVE;
    let fd = rustix::mount::open_tree(CWD, c"/sys", flags).map_err(e)?;
    sys::mount_setattr_recursive(fd.as_raw_fd(), SYS_ATTRS.bits() as u64)?;
    Ok(fd)
}

fn mount_proc() -> R {
    mount_new(c"proc", &[], &[], PROC_ATTRS, c"/proc")
}

/// Clones each bind source into a detached tree (or makes a copy mount's
/// overlay), with its attributes set before it is ever attached.
fn detach_mount_sources(p: &Prepared) -> R {
    for m in &p.mounts {
        match &m.kind {
            crate::prepare::PreparedMountKind::Bind { source, tree } => {
                // Trees cloned by the caller are ready; host paths are
                // cloned now.
                if tree.get().is_none() {
                    let flags = OpenTreeFlags::OPEN_TREE_CLONE
                        | OpenTreeFlags::OPEN_TREE_CLOEXEC
                        | OpenTreeFlags::AT_RECURSIVE;
                    let fd = rustix::mount::open_tree(CWD, source.as_c_str(), flags).map_err(e)?;
                    let _ = tree.set(fd);
                }
                // nodev on the whole tree (a bind source is a host
                // directory: a node made in it must not open), and ro on
                // every mount in it, not just the top one.
                let fd = tree.get().ok_or(libc::EBADF)?;
                let mut attrs = MountAttrFlags::MOUNT_ATTR_NODEV;
                if m.readonly {
                    attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
                }
                sys::mount_setattr_recursive(fd.as_raw_fd(), attrs.bits() as u64)?;
            }
            crate::prepare::PreparedMountKind::Copy {
                lower,
                upper,
                work,
                tree,
            } => {
                let fs = fsopen(c"overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(e)?;
                fsconfig_set_string(fs.as_fd(), c"lowerdir+", lower.as_c_str()).map_err(e)?;
                fsconfig_set_string(fs.as_fd(), c"upperdir", upper.as_c_str()).map_err(e)?;
                fsconfig_set_string(fs.as_fd(), c"workdir", work.as_c_str()).map_err(e)?;
                if p.userns {
                    fsconfig_set_flag(fs.as_fd(), c"userxattr").map_err(e)?;
                }
                fsconfig_create(fs.as_fd()).map_err(e)?;
                let mut attrs = MountAttrFlags::MOUNT_ATTR_NODEV;
                if m.readonly {
                    attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
                }
                let mnt = fsmount(fs.as_fd(), FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(e)?;
                let _ = tree.set(mnt);
            }
            crate::prepare::PreparedMountKind::Tmpfs { .. } => {}
        }
    }
    Ok(())
}

/// The devices the container may use, cloned from the host's /dev.
fn detach_devices(p: &Prepared) -> R {
    for dev in &p.devices {
        let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
        if dev.directory {
            flags |= OpenTreeFlags::AT_RECURSIVE;
        }
        let fd = rustix::mount::open_tree(CWD, dev.host.as_c_str(), flags).map_err(e)?;
        let attrs = MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC;
        sys::mount_setattr_recursive(fd.as_raw_fd(), attrs.bits() as u64)?;
        let _ = dev.tree.set(fd);
    }
    Ok(())
}

/// /dev: a nodev tmpfs (mknod there makes a node nobody can open), the
/// allowed devices bound from the host (see `crate::devices`: the only
/// device-capable mounts in the container), devpts, shm and the links.
fn mount_dev(p: &Prepared) -> R {
    mount_new(
        c"tmpfs",
        &[(c"mode", c"755"), (c"size", c"65536k")],
        &[],
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_STRICTATIME,
        c"/dev",
    )?;
    for dev in &p.devices {
        // `--device /dev/dri/card0`: the directories above it first.
        for dir in &dev.parents {
            mkdir(dir, 0o755)?;
        }
        if dev.directory {
            mkdir(&dev.target, 0o755)?;
        } else {
            touch(&dev.target)?;
        }
        let tree = dev.tree.get().ok_or(libc::EBADF)?;
        move_mount(
            tree.as_fd(),
            c"",
            CWD,
            dev.target.as_c_str(),
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(e)?;
    }
    mkdir(c"/dev/pts", 0o755)?;
    let devpts_options: &[(&CStr, &CStr)] = if p.tty_gid {
        &[(c"ptmxmode", c"0666"), (c"mode", c"0620"), (c"gid", c"5")]
    } else {
        &[(c"ptmxmode", c"0666"), (c"mode", c"0620")]
    };
    mount_new(
        c"devpts",
        devpts_options,
        &[c"newinstance"],
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
        c"/dev/pts",
    )?;
    mkdir(c"/dev/shm", 0o1777)?;
    mount_new(
        c"tmpfs",
        &[(c"mode", c"1777"), (c"size", p.shm_size.as_c_str())],
        &[],
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
        c"/dev/shm",
    )?;
    for (target, link) in [
        (c"pts/ptmx", c"/dev/ptmx"),
        (c"/proc/self/fd", c"/dev/fd"),
        (c"/proc/self/fd/0", c"/dev/stdin"),
        (c"/proc/self/fd/1", c"/dev/stdout"),
        (c"/proc/self/fd/2", c"/dev/stderr"),
    ] {
        rustix::fs::symlink(target, link).map_err(e)?;
    }

    Ok(())
}

/// Attaches the trees detached before `pivot_root` (their nodev and
/// read-only attributes were set then) and mounts the tmpfs mounts.
fn attach_mounts(p: &Prepared) -> R {
    for m in &p.mounts {
        match &m.kind {
            crate::prepare::PreparedMountKind::Copy { tree, .. }
            | crate::prepare::PreparedMountKind::Bind { tree, .. } => {
                // Attach the tree detached before pivot_root (its nodev and
                // read-only attributes were set then).
                let tree = tree.get().ok_or(libc::EBADF)?;
                move_mount(
                    tree.as_fd(),
                    c"",
                    CWD,
                    m.target.as_c_str(),
                    MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
                )
                .map_err(e)?;
                // Mountpoints of mounts nested inside this one (a cache at
                // /foo/bar/baz inside one at /foo/bar) are made again in
                // what was just attached.
                let under = m.target.to_bytes();
                for dir in p.mkdirs.iter().filter(|d| is_below(d.to_bytes(), under)) {
                    mkdir(dir, 0o755)?;
                }
                for file in p.mkfiles.iter().filter(|f| is_below(f.to_bytes(), under)) {
                    touch(file)?;
                }
            }
            crate::prepare::PreparedMountKind::Tmpfs { size } => {
                let attrs = if m.readonly {
                    MountAttrFlags::MOUNT_ATTR_RDONLY
                } else {
                    MountAttrFlags::empty()
                };
                mount_new(
                    c"tmpfs",
                    &[(c"size", size.as_c_str()), (c"mode", c"1777")],
                    &[],
                    attrs | MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
                    m.target.as_c_str(),
                )?;
            }
        }
    }

    Ok(())
}

/// Docker's masked and read-only kernel paths.
fn mask_kernel_paths() -> R {
    for path in MASKED_FILES {
        optional(rustix::mount::mount_bind(c"/dev/null", *path).map_err(e))?;
    }
    for path in MASKED_DIRS {
        optional(mount_new(
            c"tmpfs",
            &[(c"size", c"0")],
            &[],
            MountAttrFlags::MOUNT_ATTR_RDONLY,
            path,
        ))?;
    }
    for path in READONLY_PATHS {
        optional(rustix::mount::mount_bind_recursive(*path, *path).map_err(e))?;
        optional(
            rustix::mount::mount_remount(
                *path,
                rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::RDONLY,
                c"",
            )
            .map_err(e),
        )?;
    }

    Ok(())
}

/// A pty from the container's own devpts: its primary end goes back to
/// kiln, the secondary becomes our controlling terminal and stdio.
pub(crate) fn attach_terminal(sock: &std::os::fd::OwnedFd) -> R {
    use rustix::pty::OpenptFlags;
    let primary =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(e)?;
    rustix::pty::unlockpt(&primary).map_err(e)?;
    let secondary =
        rustix::pty::ioctl_tiocgptpeer(&primary, OpenptFlags::RDWR | OpenptFlags::NOCTTY)
            .map_err(e)?;
    let mut space = [core::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    let fds = [primary.as_fd()];
    control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        sock,
        &[std::io::IoSlice::new(b"t")],
        &mut control,
        rustix::net::SendFlags::empty(),
    )
    .map_err(e)?;
    drop(primary);
    rustix::process::setsid().map_err(e)?;
    rustix::process::ioctl_tiocsctty(&secondary).map_err(e)?;
    for fd in 0..3 {
        sys::dup2(std::os::fd::AsRawFd::as_raw_fd(&secondary), fd)?;
    }
    Ok(())
}

/// Docker's capability set (bounding set dropped first), the groups, the
/// ids, and `no_new_privs` when asked for.
pub(crate) fn drop_privileges(p: &Privileges) -> R {
    for cap in 0..64u32 {
        if p.capabilities & (1u64 << cap) == 0 {
            match sys::capbset_drop(cap) {
                Ok(()) => {}
                Err(errno) if errno == libc::EINVAL => break, // past the last capability
                Err(errno) => return Err(errno),
            }
        }
    }
    if p.setgroups {
        rustix::thread::set_thread_groups(&p.groups).map_err(e)?;
    }
    rustix::thread::set_thread_res_gid(p.gid, p.gid, p.gid).map_err(e)?;
    rustix::thread::set_thread_res_uid(p.uid, p.uid, p.uid).map_err(e)?;
    if p.uid.is_root() {
        let set = rustix::thread::CapabilitySet::from_bits_retain(p.capabilities);
        rustix::thread::set_capabilities(
            None,
            rustix::thread::CapabilitySets {
                effective: set,
                permitted: set,
                inheritable: rustix::thread::CapabilitySet::empty(),
            },
        )
        .map_err(e)?;
    }
    if p.no_new_privs {
        rustix::thread::set_no_new_privs(true).map_err(e)?;
    }
    Ok(())
}

/// The container dies with kiln: SIGKILL when the thread that cloned us
/// exits (PR_SET_PDEATHSIG), and if kiln died before that was set, we
/// see EOF on the life pipe (kiln holds its only other write end) and go.
pub(crate) fn tie_to_parent(p: &LifePipe) -> R {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(e)?;
    sys::close(p.write);
    let mut b = [0u8; 1];
    match rustix::io::read(&p.read, &mut b) {
        Ok(0) => Err(libc::ESRCH),
        Ok(_) | Err(rustix::io::Errno::AGAIN) => Ok(()),
        Err(err) => Err(e(err)),
    }
}

/// Docker's masked paths: unreadable kernel internals.
const MASKED_FILES: &[&CStr] = &[
    c"/proc/kcore",
    c"/proc/keys",
    c"/proc/latency_stats",
    c"/proc/timer_list",
    c"/proc/timer_stats",
    c"/proc/sched_debug",
    c"/proc/interrupts",
];
const MASKED_DIRS: &[&CStr] = &[
    c"/proc/acpi",
    c"/proc/scsi",
    c"/sys/firmware",
    c"/sys/devices/virtual/powercap",
];
const READONLY_PATHS: &[&CStr] = &[
    c"/proc/asound",
    c"/proc/bus",
    c"/proc/fs",
    c"/proc/irq",
    c"/proc/sys",
    c"/proc/sysrq-trigger",
];
