//! What a container is: its layers, state directory, command and
//! environment, user, network, mounts, streams, limits and runtime.

use crate::Limits;
use rustix::process::Resource;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Docker's default capabilities: CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
/// KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT,
/// MKNOD, AUDIT_WRITE, SETFCAP.
pub const DEFAULT_CAPABILITIES: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 7)
    | (1 << 8)
    | (1 << 10)
    | (1 << 13)
    | (1 << 18)
    | (1 << 27)
    | (1 << 29)
    | (1 << 31);

/// The resource limits by docker's `--ulimit` names.
pub const RLIMITS: [(&str, Resource); 16] = [
    ("as", Resource::As),
    ("core", Resource::Core),
    ("cpu", Resource::Cpu),
    ("data", Resource::Data),
    ("fsize", Resource::Fsize),
    ("locks", Resource::Locks),
    ("memlock", Resource::Memlock),
    ("msgqueue", Resource::Msgqueue),
    ("nice", Resource::Nice),
    ("nofile", Resource::Nofile),
    ("nproc", Resource::Nproc),
    ("rss", Resource::Rss),
    ("rtprio", Resource::Rtprio),
    ("rttime", Resource::Rttime),
    ("sigpending", Resource::Sigpending),
    ("stack", Resource::Stack),
];

/// The resource a `--ulimit` name stands for.
pub fn rlimit_resource(name: &str) -> Option<Resource> {
    RLIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// `PATH` when the image sets none (as docker).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// Share the host's network namespace.
    Host,
    /// A fresh network namespace with only `lo`, up.
    None,
    /// A namespace made and wired beforehand (a bridge network's, see
    /// kiln-network) or another container's (`--network container:X`).
    Join(NetNamespace),
}

/// A network namespace held open by a descriptor, shared by the specs
/// that use it.
#[derive(Debug, Clone)]
pub struct NetNamespace(pub std::sync::Arc<OwnedFd>);

impl PartialEq for NetNamespace {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for NetNamespace {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A host file or directory.
    Bind(PathBuf),
    /// A host directory seen through an overlay whose writes go to a
    /// throwaway upper dir: `RUN --mount=type=bind,rw` (the source never
    /// changes).
    Copy(PathBuf),
    /// A fresh tmpfs of at most this many bytes (0 = kernel default).
    Tmpfs { size: u64 },
    /// A secret: written to a file (owned by `uid`/`gid`, else the
    /// container's user, with `mode`), bound read-only; never part of
    /// the diff.
    Secret {
        data: Vec<u8>,
        uid: Option<u32>,
        gid: Option<u32>,
        mode: u32,
    },
    /// A mount tree the caller already cloned (`open_tree` with
    /// `OPEN_TREE_CLONE`), e.g. a path inside a detached overlay view;
    /// attached read-only or read-write as the mount says.
    Tree(DetachedTree),
    /// A persistent cache directory (`RUN --mount=type=cache`), created on
    /// first use with `uid`/`gid`/`mode`; `subpath` (`source=`) mounts a
    /// directory inside it, resolved within the cache.
    Cache {
        dir: PathBuf,
        sharing: Sharing,
        uid: u32,
        gid: u32,
        mode: u32,
        subpath: Option<String>,
    },
}

/// A detached mount tree, shared by the specs that use it.
#[derive(Debug, Clone)]
pub struct DetachedTree(pub std::sync::Arc<OwnedFd>);

impl PartialEq for DetachedTree {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for DetachedTree {}

/// Clones the file or directory `at` (already resolved by the caller,
/// e.g. with `RESOLVE_IN_ROOT`) into a detached mount for
/// [`MountSource::Tree`].
pub fn clone_tree(at: std::os::fd::BorrowedFd<'_>) -> std::io::Result<DetachedTree> {
    use rustix::mount::OpenTreeFlags;
    let fd = rustix::mount::open_tree(
        at,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::AT_EMPTY_PATH,
    )?;
    Ok(DetachedTree(std::sync::Arc::new(fd)))
}

/// How concurrent users of one cache mount share it (BuildKit's modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Everyone writes the same directory at once.
    Shared,
    /// One writer at a time; others wait.
    Locked,
    /// One writer at a time; others get a throwaway copy.
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: MountSource,
    /// Absolute path in the container.
    pub target: String,
    pub readonly: bool,
}

/// Where the container's standard streams go.
#[derive(Debug)]
pub enum Stdio {
    /// The caller's own stdout/stderr, and stdin when `stdin` (else
    /// /dev/null), as `docker run` without and with `-i`.
    Inherit { stdin: bool },
    /// stdout and stderr through pipes (read with [`Running::wait_with_lines`](crate::Running::wait_with_lines));
    /// stdin is /dev/null.
    Piped,
    /// stdout and stderr through pipes the caller reads as it likes
    /// ([`Running::take_output`](crate::Running::take_output)); stdin the
    /// caller's when `stdin`, else /dev/null (a foreground `kiln run` that
    /// also keeps the container's log).
    PipedOutput { stdin: bool },
    /// A terminal allocated inside the container's own devpts (so `tty`
    /// can name it); its primary end comes back through
    /// [`Running::take_pty`](crate::Running::take_pty).
    Tty,
}

/// What the container's processes may do. The default is docker's:
/// its capability set and seccomp profile, and setuid programs work
/// (`no_new_privs` only with `--security-opt no-new-privileges`; BuildKit
/// never sets it in RUN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// Capability bits (`1 << CAP_*`) kept in every set.
    pub capabilities: u64,
    pub no_new_privs: bool,
    /// Docker's seccomp profile (false: `seccomp=unconfined`).
    pub seccomp: bool,
    /// A custom profile instead of docker's (`seccomp=FILE`), compiled
    /// with [`compile_profile`](crate::compile_profile).
    pub seccomp_profile: Option<crate::SeccompProfile>,
}

impl Default for Security {
    fn default() -> Security {
        Security {
            capabilities: DEFAULT_CAPABILITIES,
            no_new_privs: false,
            seccomp: true,
            seccomp_profile: None,
        }
    }
}

/// Which IPC namespace the container gets (`--ipc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ipc {
    /// A new one of its own.
    #[default]
    Private,
    /// The host's.
    Host,
    /// The one of the process with this pid (another container's PID 1).
    Join(u32),
}

/// A host device node made usable in the container (`--device`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMount {
    /// The host's node (a character or block device).
    pub host: PathBuf,
    /// Absolute path in the container, inside /dev.
    pub target: String,
}

/// Which engine runs the container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Runtime {
    /// kiln's own executor (this crate).
    #[default]
    Native,
    /// An OCI runtime binary (runc, crun) on a bundle kiln writes.
    Oci(PathBuf),
}

/// Everything needed to run one container.
#[derive(Debug)]
pub struct Spec {
    /// Snapshot directories, base first (as the store returns them).
    pub lowers: Vec<PathBuf>,
    /// A directory the executor owns for this container: `upper/` (the
    /// diff), `work/`, `rootfs/` and generated `/etc` files go here.
    pub state_dir: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    /// Working directory in the container; created if missing.
    pub cwd: String,
    /// `name|uid[:group|gid]`; empty is root.
    pub user: String,
    pub hostname: String,
    pub network: Network,
    pub mounts: Vec<Mount>,
    pub stdio: Stdio,
    pub rlimits: Vec<(Resource, Option<u64>, Option<u64>)>,
    /// Optional cgroup memory/pids limits.
    pub limits: Limits,
    /// Where cgroup hierarchies are mounted (normally /sys/fs/cgroup).
    pub cgroup_root: PathBuf,
    pub runtime: Runtime,
    /// Run a minimal init as PID 1 that reaps orphaned zombies and
    /// forwards signals to the command (docker's `--init`). Without it the
    /// command itself is PID 1, as in docker by default.
    pub init: bool,
    /// Answer the command's `fsync`, `fdatasync`, `sync`, `syncfs` and
    /// `sync_file_range` at once, syncing nothing: for build steps, whose
    /// writes kiln makes durable itself (one `syncfs` before the build's
    /// cache records commit; a step cut short is thrown away anyway), so
    /// dpkg's fsync per file costs nothing. Never for `kiln run`. Only the
    /// native executor honours it.
    pub deferred_sync: bool,
    pub security: Security,
    /// The root filesystem is read-only (`--read-only`); mounts keep
    /// their own mode.
    pub readonly_rootfs: bool,
    /// Groups added to the user's (`--group-add`): names from the
    /// container's /etc/group, or numbers.
    pub extra_groups: Vec<String>,
    /// Size of `/dev/shm` in bytes (docker's default: 64 MiB).
    pub shm_size: u64,
    /// Share the host's PID namespace (`--pid host`).
    pub pid_host: bool,
    pub ipc: Ipc,
    /// Host devices beyond docker's default set (`--device`).
    pub devices: Vec<DeviceMount>,
    /// Lines added to the generated /etc/hosts (`--add-host`, a network's
    /// other containers).
    pub extra_hosts: Vec<String>,
    /// The container's own address, named by its hostname in /etc/hosts
    /// (else 127.0.1.1).
    pub address: Option<std::net::IpAddr>,
    /// /etc/resolv.conf as given, instead of the host's.
    pub resolv_conf: Option<String>,
    /// Told while the container waits for a cache mount another holds
    /// (`sharing=locked`); without one the wait is silent and endless.
    pub cache_wait: Option<crate::CacheWaiter>,
}

/// The /etc/hosts a container gets: localhost, its own name at
/// `address` (127.0.1.1 without one), then `extra` lines.
pub fn hosts_file(hostname: &str, address: Option<std::net::IpAddr>, extra: &[String]) -> String {
    let own = address.map_or_else(|| "127.0.1.1".to_string(), |a| a.to_string());
    let mut text = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{own}\t{hostname}\n"
    );
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// docker's `/dev/shm` size.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

impl Spec {
    /// A container running `argv` on `lowers` (base first), its state in
    /// `state_dir`; everything else as docker's defaults: root, `/`, the
    /// host's network, no mounts, piped output, no limits, kiln's own
    /// executor, the command as PID 1.
    pub fn new(lowers: Vec<PathBuf>, state_dir: PathBuf, argv: Vec<String>) -> Spec {
        Spec {
            lowers,
            state_dir,
            argv,
            env: Vec::new(),
            cwd: "/".into(),
            user: String::new(),
            hostname: "kiln".into(),
            network: Network::Host,
            mounts: Vec::new(),
            stdio: Stdio::Piped,
            rlimits: Vec::new(),
            limits: Limits::default(),
            cgroup_root: "/sys/fs/cgroup".into(),
            runtime: Runtime::Native,
            init: false,
            deferred_sync: false,
            security: Security::default(),
            readonly_rootfs: false,
            extra_groups: Vec::new(),
            shm_size: DEFAULT_SHM_SIZE,
            pid_host: false,
            ipc: Ipc::Private,
            devices: Vec::new(),
            extra_hosts: Vec::new(),
            address: None,
            resolv_conf: None,
            cache_wait: None,
        }
    }
}

/// Linux capability names, by bit number (`CAP_` prefix dropped).
pub const CAPABILITY_NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Every capability's bit.
pub const ALL_CAPABILITIES: u64 = (1 << CAPABILITY_NAMES.len()) - 1;

/// The bit of a capability named as docker accepts it (`NET_ADMIN`,
/// `cap_net_admin`), or None.
pub fn capability_bit(name: &str) -> Option<u64> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITY_NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|i| 1u64 << i)
}
