//! The device policy: which device nodes a container can open.
//!
//! Docker enforces its default list with a device cgroup (an eBPF filter
//! on cgroup v2). kiln enforces it with mount flags instead: every
//! filesystem in the container — the overlay root, `/dev` itself, every
//! bind, cache, copy and tmpfs mount — is `nodev`, so the kernel refuses
//! to open any device inode on it (`may_open_dev`), whoever made the node
//! (an image layer, or `mknod` with CAP_MKNOD). The allowed devices are
//! bind mounts of the host's own nodes over files in `/dev`, the only
//! device-capable mounts a container has; devpts gives ptys.
//!
//! Why mount flags rather than a device cgroup: they need no cgroup (so
//! they work on this v1/v2 hybrid host, rootless, and cost nothing per
//! container), and no later step can undo them — making a new mount needs
//! CAP_SYS_ADMIN, which a container never has, and the seccomp filter
//! denies the mount syscalls; mounts made in a new user namespace are
//! always nodev. The OCI backend gets the same list as cgroup rules.

use std::ffi::CStr;

/// A device a container may use.
pub(crate) struct Device {
    /// The host node bound over the container's file.
    pub host: &'static CStr,
    /// Where it appears in the container.
    pub target: &'static CStr,
    pub major: u32,
    pub minor: u32,
}

/// Docker's default set of device files (null, zero, full, random,
/// urandom, tty); ptys come from the container's own devpts.
pub(crate) const ALLOWED: &[Device] = &[
    Device {
        host: c"/dev/null",
        target: c"/dev/null",
        major: 1,
        minor: 3,
    },
    Device {
        host: c"/dev/zero",
        target: c"/dev/zero",
        major: 1,
        minor: 5,
    },
    Device {
        host: c"/dev/full",
        target: c"/dev/full",
        major: 1,
        minor: 7,
    },
    Device {
        host: c"/dev/random",
        target: c"/dev/random",
        major: 1,
        minor: 8,
    },
    Device {
        host: c"/dev/urandom",
        target: c"/dev/urandom",
        major: 1,
        minor: 9,
    },
    Device {
        host: c"/dev/tty",
        target: c"/dev/tty",
        major: 5,
        minor: 0,
    },
];

/// The pty devices (`/dev/ptmx` is 5:2, `/dev/pts/*` major 136).
pub(crate) const PTMX: (u32, u32) = (5, 2);
pub(crate) const PTS_MAJOR: u32 = 136;
