//! Rootless kiln: an ordinary user's kiln runs inside a user namespace of
//! its own, where it is root over the ids it was given, the way buildah
//! and podman do it (no daemon, no RootlessKit).
//!
//! [`enter`] is called once, at the start of the process, while it is
//! still single-threaded (the kernel refuses `unshare(CLONE_NEWUSER)` to a
//! threaded process). It maps the namespace's 0 to the caller and 1..N to
//! the caller's subordinate range from `/etc/subuid` and `/etc/subgid`,
//! which only the setuid `newuidmap`/`newgidmap` (Debian's `uidmap`) may
//! write, from outside the namespace: so a forked helper, still outside,
//! writes the maps for us. Without a range (or without the tools) kiln
//! maps only itself (0 → the caller) and says what will not work.
//!
//! From then on the whole kiln — store, solver, executor — runs as root
//! of that namespace: a file chowned to 33 inside is owned by the caller's
//! subordinate id 100032 on disk and reads back as 33, so layers record
//! the container's ids exactly as a root build does. The mount namespace
//! entered with it lets kiln mount overlays (Linux ≥ 5.11, with
//! `userxattr`: overlayfs keeps its marks in `user.overlay.*` there).

use crate::sys;
use std::fmt;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// A range of subordinate ids (`/etc/subuid` line: `user:start:count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub start: u32,
    pub count: u32,
}

/// How the namespace's ids map onto the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// 0 → the caller, 1..=count → the subordinate range.
    Subordinate { uids: IdRange, gids: IdRange },
    /// Only 0 → the caller: any other id (USER, chown, apt's `_apt`)
    /// cannot be used.
    Single,
}

/// The namespace kiln is now in.
#[derive(Debug, Clone)]
pub struct Entered {
    /// The caller's ids outside.
    pub uid: u32,
    pub gid: u32,
    /// The caller's login name (what /etc/subuid lines name).
    pub user: String,
    pub mapping: Mapping,
    /// Why the mapping is [`Mapping::Single`], for a warning.
    pub single_reason: Option<String>,
}

impl Entered {
    /// The warning a single-id namespace deserves, if this is one.
    pub fn warning(&self) -> Option<String> {
        let reason = self.single_reason.as_deref()?;
        Some(format!(
            "rootless with a single id: {reason}. Only uid/gid 0 exist in containers, \
             so USER, chown and COPY --chown to other ids, and programs that switch \
             user (apt's _apt), will fail. Give {user} a range in /etc/subuid and \
             /etc/subgid (`usermod --add-subuids 100000-165535 --add-subgids \
             100000-165535 {user}`) and install newuidmap/newgidmap (Debian's uidmap).",
            user = self.user
        ))
    }
}

/// Why kiln could not enter a user namespace.
#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("cannot enter a user namespace from a multi-threaded process")]
    Threads,
    #[error(
        "cannot create a user namespace: {0}. Unprivileged user namespaces are off on this \
         machine (sysctl user.max_user_namespaces must be > 0, and on Debian/Ubuntu \
         kernel.unprivileged_userns_clone=1, kernel.apparmor_restrict_unprivileged_userns=0), \
         or a seccomp profile forbids them (inside a container: give it a profile that \
         allows unshare, e.g. podman's default, or run kiln as root)"
    )]
    Unshare(#[source] std::io::Error),
    #[error("writing the user namespace's id map ({what}): {source}")]
    Map {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Helper(String),
    #[error("joining the user namespace of the container (pid {pid}): {source}")]
    Join {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
}

static ENTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process is a rootless kiln (it [`enter`]ed its namespace;
/// root inside someone else's user namespace is not).
pub fn is_rootless() -> bool {
    ENTERED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Joins the user namespace process `pid` runs in, instead of making one:
/// a rootless `kiln exec` joins the namespace its container's monitor
/// made (which owns the container's other namespaces), as the same
/// user, so it holds every capability there. Call before any thread.
pub fn join(pid: u32) -> Result<(), RootlessError> {
    let err = |source: std::io::Error| RootlessError::Join { pid, source };
    let fd = std::fs::File::open(format!("/proc/{pid}/ns/user")).map_err(err)?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&fd),
        Some(rustix::thread::LinkNameSpaceType::User),
    )
    .map_err(|e| err(e.into()))?;
    ENTERED.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Whether this process is in a user namespace other than the initial one
/// (rootless kiln, or kiln inside a userns container).
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| !is_identity_map(&m))
}

fn is_identity_map(map: &str) -> bool {
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// Whether `id` exists in this namespace (has a line in `map`, the text
/// of /proc/self/uid_map or gid_map).
fn map_covers(map: &str, id: u32) -> bool {
    let id = u64::from(id);
    inside_spans(map).any(|(first, last)| (first..=last).contains(&id))
}

/// The inside ids of each line of an id map (`inside outside count`), as
/// (first, last).
fn inside_spans(map: &str) -> impl Iterator<Item = (u64, u64)> + '_ {
    map.lines().filter_map(|line| {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        match f[..] {
            [inside, _, count] if count > 0 => Some((inside, inside + count - 1)),
            _ => None,
        }
    })
}

/// Whether uid `id` is usable in this process's user namespace.
pub fn uid_mapped(id: u32) -> bool {
    std::fs::read_to_string("/proc/self/uid_map").map_or(true, |m| map_covers(&m, id))
}

/// Whether gid `id` is usable in this process's user namespace.
pub fn gid_mapped(id: u32) -> bool {
    std::fs::read_to_string("/proc/self/gid_map").map_or(true, |m| map_covers(&m, id))
}

/// Whether setgroups(2) is allowed here (a namespace whose gid map the
/// process wrote itself has it denied).
pub fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() != "deny")
}

/// Refuses a container user whose uid or primary gid this namespace does
/// not map (setresuid would fail with a bare EINVAL), and leaves out
/// supplementary groups it does not map (the kernel could not set them).
pub(crate) fn check_user(
    spec_user: &str,
    user: &mut crate::user::ResolvedUser,
) -> Result<(), crate::ExecError> {
    if !in_user_namespace() {
        return Ok(());
    }
    for (what, id, ok) in [
        ("uid", user.uid, uid_mapped(user.uid)),
        ("gid", user.gid, gid_mapped(user.gid)),
    ] {
        if !ok {
            return Err(crate::ExecError::User(format!(
                "USER {spec_user:?}: {what} {id} does not exist here: {}",
                unmapped_hint()
            )));
        }
    }
    user.groups.retain(|g| gid_mapped(*g));
    Ok(())
}

/// The ids a map file gives, as merged inside ranges (`0-65536`).
fn inside_ranges(map: &str) -> String {
    let mut ranges: Vec<(u64, u64)> = inside_spans(map).collect();
    ranges.sort();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in ranges {
        match merged.last_mut() {
            Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let text: Vec<String> = merged
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    text.join(",")
}

/// A human-readable description of the id maps, for errors.
pub fn describe_maps() -> String {
    let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
    format!(
        "uids {}, gids {}",
        inside_ranges(&read("/proc/self/uid_map")),
        inside_ranges(&read("/proc/self/gid_map"))
    )
}

/// The hint every "id not mapped" error carries in a rootless kiln.
pub fn unmapped_hint() -> String {
    format!(
        "this rootless kiln's user namespace has {}; ids beyond 0 come from the \
         caller's ranges in /etc/subuid and /etc/subgid",
        describe_maps()
    )
}

/// What a container setup failure means where kiln is in a user namespace
/// (rootless, or inside a container), when it means something particular.
pub(crate) fn explain_setup_failure(step: u32, errno: i32, state_dir: &Path) -> Option<String> {
    use crate::error::Step;
    if step == Step::Rootfs as u32 && errno == libc::EINVAL && on_overlayfs(state_dir) {
        return Some(format!(
            "cannot mount the container's root filesystem: the store ({}) is on overlayfs, \
             which cannot hold an overlay's upper directory. Put the store on a volume \
             (ext4, xfs, btrfs or tmpfs; in a Kubernetes pod an emptyDir) with --root or KILN_ROOT",
            state_dir.display()
        ));
    }
    if !in_user_namespace() {
        return None;
    }
    if step == Step::Rootfs as u32 && errno == libc::EPERM {
        return Some(
            "cannot mount overlayfs in a user namespace: rootless kiln needs Linux 5.11 or later"
                .into(),
        );
    }
    if step == Step::Proc as u32 && errno == libc::EPERM {
        return Some(
            "cannot mount /proc for the container: the kernel lets a user namespace mount a \
             new /proc only where the /proc it sees is fully visible, and this one has paths \
             masked (kiln is running inside a container). Run that container with its /proc \
             unmasked: podman --security-opt unmask=ALL, docker --security-opt \
             systempaths=unconfined, or Kubernetes securityContext.procMount: Unmasked"
                .into(),
        );
    }
    None
}

/// Whether `path` is on an overlay filesystem.
fn on_overlayfs(path: &Path) -> bool {
    const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
    // f_type's width differs between architectures (i64 here, u32 on s390x).
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type as i64 == OVERLAYFS_SUPER_MAGIC)
}

/// Whether this process lacks what running containers directly takes
/// (CAP_SYS_ADMIN in its user namespace): true for an ordinary user, and
/// for root inside an unprivileged container.
pub fn needs_own_namespace() -> bool {
    if !rustix::process::geteuid().is_root() {
        return true;
    }
    rustix::thread::capabilities(None).is_ok_and(|c| {
        !c.effective
            .contains(rustix::thread::CapabilitySet::SYS_ADMIN)
    })
}

/// The first range of `user` (by name or uid) in a subuid/subgid file.
pub fn subordinate_range(text: &str, user: &str, id: u32) -> Option<IdRange> {
    let id = id.to_string();
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        if who != user && who != id {
            return None;
        }
        let range = IdRange {
            start: start.trim().parse().ok()?,
            count: count.trim().parse().ok()?,
        };
        (range.count > 0).then_some(range)
    })
}

/// The caller's login name, from /etc/passwd (else the uid as text).
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// A program on $PATH or in the usual system directories.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What the helper will run: `newuidmap PID 0 UID 1 1 START COUNT`.
struct MapTools {
    newuidmap: PathBuf,
    newgidmap: PathBuf,
    uids: IdRange,
    gids: IdRange,
}

/// Decides the mapping: subordinate ranges and the tools, or why not.
fn plan(user: &str, uid: u32, gid: u32) -> Result<MapTools, String> {
    let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
    let uids = subordinate_range(&read("/etc/subuid"), user, uid)
        .ok_or_else(|| format!("{user} has no range in /etc/subuid"))?;
    let gids = subordinate_range(&read("/etc/subgid"), user, gid)
        .ok_or_else(|| format!("{user} has no range in /etc/subgid"))?;
    let newuidmap =
        find_program("newuidmap").ok_or("newuidmap is not installed (Debian's uidmap package)")?;
    let newgidmap =
        find_program("newgidmap").ok_or("newgidmap is not installed (Debian's uidmap package)")?;
    Ok(MapTools {
        newuidmap,
        newgidmap,
        uids,
        gids,
    })
}

/// Enters a new user and mount namespace as its root. Call once, first
/// thing, when not root; the process must still be single-threaded.
pub fn enter() -> Result<Entered, RootlessError> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let user = user_name(uid);
    if !single_threaded() {
        return Err(RootlessError::Threads);
    }
    let (mapping, single_reason) = match plan(&user, uid, gid) {
        Ok(tools) => match enter_with_helper(&tools, uid, gid)? {
            None => (
                Mapping::Subordinate {
                    uids: tools.uids,
                    gids: tools.gids,
                },
                None,
            ),
            Some(failure) => {
                // We are in the namespace already, unmapped: map ourselves.
                map_self(uid, gid)?;
                (Mapping::Single, Some(failure))
            }
        },
        Err(reason) => {
            sys::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS)
                .map_err(RootlessError::Unshare)?;
            map_self(uid, gid)?;
            (Mapping::Single, Some(reason))
        }
    };
    become_root()?;
    ENTERED.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(Entered {
        uid,
        gid,
        user,
        mapping,
        single_reason,
    })
}

fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Threads:", "1"])
    })
}

/// Forks a helper (still outside), unshares, lets the helper run
/// newuidmap/newgidmap on us. Returns the helper's failure, if any, once
/// we are in the (then unmapped) namespace.
fn enter_with_helper(
    tools: &MapTools,
    uid: u32,
    gid: u32,
) -> Result<Option<String>, RootlessError> {
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| RootlessError::Map {
            what: "pipe",
            source: e.into(),
        })
    };
    let (go_read, go_write) = pipe()?;
    let (done_read, done_write) = pipe()?;
    let me = std::process::id();
    let helper = sys::clone_fork(0).map_err(|source| RootlessError::Map {
        what: "forking the helper",
        source,
    })?;
    if helper == 0 {
        // The helper: a fork of a single-threaded process, so ordinary
        // Rust is safe here. It never returns.
        drop(go_write);
        drop(done_read);
        let status = run_helper(tools, me, uid, gid, go_read);
        let mut out = std::fs::File::from(done_write);
        let _ = out.write_all(status.as_bytes());
        drop(out);
        sys::exit_now(0);
    }
    drop(go_read);
    drop(done_write);
    let unshared = sys::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS);
    // Tell the helper either way (EOF = we failed), then hear it out.
    if unshared.is_ok() {
        let _ = rustix::io::write(&go_write, b"g");
    }
    drop(go_write);
    let mut report = String::new();
    let _ = std::fs::File::from(done_read).read_to_string(&mut report);
    if let Some(pid) = rustix::process::Pid::from_raw(helper) {
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
    }
    unshared.map_err(RootlessError::Unshare)?;
    Ok(match report.as_str() {
        "ok" => None,
        "" => Some("the id-map helper died".into()),
        failure => Some(failure.to_string()),
    })
}

/// The helper's work: wait for the go, run both tools. "ok" or why not.
fn run_helper(tools: &MapTools, pid: u32, uid: u32, gid: u32, go: OwnedFd) -> String {
    let mut b = [0u8; 1];
    if !matches!(rustix::io::read(&go, &mut b), Ok(1)) {
        return "kiln could not unshare".into();
    }
    let run = |tool: &Path, outer: u32, range: IdRange| -> Result<(), String> {
        let out = std::process::Command::new(tool)
            .arg(pid.to_string())
            .args(["0", &outer.to_string(), "1"])
            .args(["1", &range.start.to_string(), &range.count.to_string()])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", tool.display()))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{} failed: {}",
            tool.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    };
    match run(&tools.newuidmap, uid, tools.uids)
        .and_then(|()| run(&tools.newgidmap, gid, tools.gids))
    {
        Ok(()) => "ok".into(),
        Err(e) => e,
    }
}

/// The single-id maps an unprivileged process may write for itself.
fn map_self(uid: u32, gid: u32) -> Result<(), RootlessError> {
    let write = |what: &'static str, text: String| {
        std::fs::write(format!("/proc/self/{what}"), text)
            .map_err(|source| RootlessError::Map { what, source })
    };
    // A uid map written by us alone may map only our own id; the gid map
    // then requires setgroups to be denied first.
    if std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| m.trim().is_empty()) {
        write("uid_map", format!("0 {uid} 1\n"))?;
    }
    if std::fs::read_to_string("/proc/self/gid_map").is_ok_and(|m| m.trim().is_empty()) {
        write("setgroups", "deny".into())?;
        write("gid_map", format!("0 {gid} 1\n"))?;
    }
    Ok(())
}

/// Our ids are the caller's, which are 0 inside; make all three 0 and
/// drop the caller's supplementary groups where setgroups is allowed.
fn become_root() -> Result<(), RootlessError> {
    let err = |what: &'static str| {
        move |e: rustix::io::Errno| RootlessError::Map {
            what,
            source: e.into(),
        }
    };
    let root_gid = rustix::process::Gid::ROOT;
    let root_uid = rustix::process::Uid::ROOT;
    if setgroups_allowed() {
        rustix::thread::set_thread_groups(&[]).map_err(err("setgroups"))?;
    }
    rustix::thread::set_thread_res_gid(root_gid, root_gid, root_gid).map_err(err("setresgid"))?;
    rustix::thread::set_thread_res_uid(root_uid, root_uid, root_uid).map_err(err("setresuid"))?;
    Ok(())
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mapping::Subordinate { uids, gids } => write!(
                f,
                "uids 0-{} (subuids {}+), gids 0-{} (subgids {}+)",
                uids.count, uids.start, gids.count, gids.start
            ),
            Mapping::Single => f.write_str("uid 0 and gid 0 only"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subuid_lines_match_by_name_or_uid() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:300000:0\n";
        let r = |u, id| subordinate_range(text, u, id);
        assert_eq!(
            r("alice", 1000),
            Some(IdRange {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(r("carol", 1001).map(|r| r.start), Some(200000));
        assert_eq!(r("bob", 1002), None, "a zero-length range is no range");
        assert_eq!(r("dave", 1003), None);
    }

    #[test]
    fn maps_cover_their_ranges_only() {
        let map = "         0       1001          1\n         1     100000      65536\n";
        assert!(map_covers(map, 0));
        assert!(map_covers(map, 33));
        assert!(map_covers(map, 65536));
        assert!(!map_covers(map, 65537));
        assert!(!map_covers("0 1001 1\n", 42));
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert_eq!(inside_ranges(map), "0-65536");
        assert_eq!(inside_ranges("0 1001 1\n"), "0");
        assert!(!is_identity_map(map));
    }
}
