//! A process started inside a running container (`kiln exec`, health
//! checks). The parent opens the container's namespaces through
//! `/proc/PID/ns` and plans the process (user, environment, command
//! search) from the container's own files; a forked child joins the
//! namespaces, then clones the process itself with `CLONE_PARENT`, so that
//! it is kiln's own child *inside* the container's PID namespace (joining
//! one only places a process's children there), and leaves at once. The
//! process gets the container's cgroup and the same privileges, seccomp
//! profile and descriptor hygiene as the container's PID 1.

use crate::error::{ExecError, Step};
use crate::prepare::{self, ChildStdio, Command, LifePipe, Privileges};
use crate::running::{receive_fd, Running};
use crate::spec::{Security, Stdio};
use crate::{child, rootless, sys, user};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::process::Pid;
use rustix::thread::LinkNameSpaceType;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// What to run in a running container.
#[derive(Debug)]
pub struct ExecSpec {
    /// The container's PID 1, as this machine's PID namespace numbers it.
    pub target: u32,
    pub argv: Vec<String>,
    /// The environment (the container's, then the caller's additions);
    /// PATH, HOSTNAME and HOME get docker's defaults when missing.
    pub env: Vec<String>,
    /// Absolute path in the container; it must exist.
    pub cwd: String,
    /// `name|uid[:group|gid]`, resolved with the container's /etc files.
    pub user: String,
    /// Groups added to the user's (the container's `--group-add`).
    pub extra_groups: Vec<String>,
    pub hostname: String,
    pub stdio: Stdio,
    pub security: Security,
    /// Where cgroup hierarchies are mounted (normally /sys/fs/cgroup).
    pub cgroup_root: PathBuf,
}

/// The namespaces joined, in order (the PID namespace comes separately).
const NAMESPACES: &[(&str, LinkNameSpaceType)] = &[
    ("cgroup", LinkNameSpaceType::ControlGroup),
    ("ipc", LinkNameSpaceType::InterProcessCommunication),
    ("uts", LinkNameSpaceType::HostNameAndNISDomainName),
    ("net", LinkNameSpaceType::Network),
    ("mnt", LinkNameSpaceType::Mount),
];

/// Everything the forked children use, made before the fork.
struct Joining {
    namespaces: Vec<(OwnedFd, LinkNameSpaceType)>,
    pid_namespace: Option<OwnedFd>,
    cwd: CString,
    stdio: ChildStdio,
    privileges: Privileges,
    command: Command,
    life: LifePipe,
    error_pipe: OwnedFd,
    /// The middle process writes the new process's pid here.
    pid_pipe: OwnedFd,
    start_gate: Option<OwnedFd>,
}

/// Starts `spec.argv` in the running container whose PID 1 is
/// `spec.target`. Returns once it has been exec'd (or why it could not).
pub fn exec(spec: ExecSpec) -> Result<Running, ExecError> {
    let proc_dir = PathBuf::from(format!("/proc/{}", spec.target));
    let gone = || {
        ExecError::Invalid(format!(
            "the container (pid {}) is not running",
            spec.target
        ))
    };
    let root = rustix::fs::open(
        proc_dir.join("root"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|_| gone())?;
    let mut namespaces = Vec::new();
    let mut pid_namespace = None;
    for (name, kind) in NAMESPACES
        .iter()
        .copied()
        .chain([("pid", LinkNameSpaceType::ProcessID)])
    {
        let theirs = proc_dir.join("ns").join(name);
        let ours = std::path::Path::new("/proc/self/ns").join(name);
        let same = match (std::fs::metadata(&theirs), std::fs::metadata(&ours)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            (Err(_), _) => return Err(gone()),
            _ => false,
        };
        if same {
            continue;
        }
        let fd = rustix::fs::open(&theirs, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|_| gone())?;
        match kind {
            LinkNameSpaceType::ProcessID => pid_namespace = Some(fd),
            _ => namespaces.push((fd, kind)),
        }
    }
    let read = |rel: &str| read_in_root(&root, rel).unwrap_or_default();
    let group_file = read("etc/group");
    let mut user = user::resolve_in(&spec.user, &read("etc/passwd"), &group_file)?;
    user::add_groups(&mut user, &spec.extra_groups, &group_file)?;
    rootless::check_user(&spec.user, &mut user)?;
    let env = prepare::environment(&spec.env, &spec.hostname, user.home.as_deref());
    let (argv0, cwd) = prepare::command_and_cwd(&spec.argv, &spec.cwd)?;
    let cgroups = crate::cgroup::dirs_of(&spec.cgroup_root, spec.target);
    let (err_read, err_write) = prepare::pipe()?;
    let (pid_read, pid_write) = prepare::pipe()?;
    let (gate_read, gate_write) = if cgroups.is_empty() {
        (None, None)
    } else {
        let (r, w) = prepare::pipe()?;
        (Some(r), Some(w))
    };
    let (life_read, life_write) = prepare::life_pipe()?;
    let mut streams = prepare::streams(&spec.stdio)?;
    let joining = Joining {
        namespaces,
        pid_namespace,
        cwd: prepare::cstring(&cwd, "working directory")?,
        stdio: ChildStdio::take(&mut streams),
        privileges: Privileges::new(&user, &spec.security),
        command: Command::new(&spec.argv, &env)?,
        life: LifePipe {
            read: life_read,
            write: life_write.as_raw_fd(),
        },
        error_pipe: err_write,
        pid_pipe: pid_write,
        start_gate: gate_read,
    };
    let middle = sys::clone_fork(0).map_err(|source| ExecError::Setup {
        step: "forking",
        source,
    })?;
    if middle == 0 {
        join_then_clone(&joining);
    }
    drop(joining);
    let middle = Pid::from_raw(middle).ok_or_else(|| ExecError::Invalid("no pid".into()))?;
    let _ = rustix::process::waitpid(Some(middle), rustix::process::WaitOptions::empty());
    let mut pid_bytes = [0u8; 4];
    let pid = match std::fs::File::from(pid_read).read_exact(&mut pid_bytes) {
        Ok(()) => Pid::from_raw(i32::from_le_bytes(pid_bytes)),
        Err(_) => None,
    };
    if let (Some(pid), Some(gate)) = (pid, gate_write) {
        let placed = cgroups.iter().try_for_each(|dir| {
            std::fs::write(dir.join("cgroup.procs"), pid.as_raw_nonzero().to_string())
        });
        if placed.is_ok() {
            let _ = rustix::io::write(&gate, b"g");
        }
    }
    let pty = streams.tty_parent.take().and_then(|sock| receive_fd(&sock));
    let mut report = Vec::new();
    let _ = std::fs::File::from(err_read).read_to_end(&mut report);
    drop(life_write);
    if report.len() >= 8 || pid.is_none() {
        if let Some(pid) = pid {
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        }
        if report.len() < 8 {
            return Err(gone());
        }
        return Err(crate::setup_error(&report, argv0, &cwd, &proc_dir));
    }
    Ok(Running::joined(
        pid.ok_or_else(gone)?,
        streams.stdout_parent.take(),
        streams.stderr_parent.take(),
        pty,
    ))
}

/// A file in the container, symlinks resolved inside it.
fn read_in_root(root: &OwnedFd, rel: &str) -> Option<String> {
    let fd = rustix::fs::openat2(
        root.as_fd(),
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Reports (step, errno) on the error pipe and leaves.
fn fail(j: &Joining, step: Step, errno: i32) -> ! {
    child::report_and_exit(&j.error_pipe, step, errno)
}

/// The middle process: joins the namespaces, clones the process into the
/// PID namespace as a sibling, tells the parent its pid and leaves.
fn join_then_clone(j: &Joining) -> ! {
    for (fd, kind) in &j.namespaces {
        if let Err(err) = rustix::thread::move_into_link_name_space(fd.as_fd(), Some(*kind)) {
            fail(j, Step::Namespaces, err.raw_os_error());
        }
    }
    if let Some(fd) = &j.pid_namespace {
        if let Err(err) = rustix::thread::move_into_link_name_space(
            fd.as_fd(),
            Some(LinkNameSpaceType::ProcessID),
        ) {
            fail(j, Step::Namespaces, err.raw_os_error());
        }
    }
    match sys::clone_fork(libc::CLONE_PARENT) {
        Ok(0) => {
            let mut step = Step::Workdir;
            let errno = match start(j, &mut step) {
                Ok(()) => {
                    step = Step::Exec;
                    child::exec_command(&j.command)
                }
                Err(errno) => errno,
            };
            fail(j, step, errno)
        }
        Ok(pid) => {
            let _ = rustix::io::write(&j.pid_pipe, &pid.to_le_bytes());
            sys::exit_now(0)
        }
        Err(err) => fail(
            j,
            Step::Namespaces,
            err.raw_os_error().unwrap_or(libc::EAGAIN),
        ),
    }
}

/// The process, in the container: working directory, streams,
/// privileges, cgroup, then (the caller) exec.
fn start(j: &Joining, step: &mut Step) -> Result<(), i32> {
    rustix::process::chdir(j.cwd.as_c_str()).map_err(|e| e.raw_os_error())?;
    *step = Step::Stdio;
    child::connect_stdio(&j.stdio)?;
    rustix::process::umask(Mode::from_raw_mode(0o022));
    *step = Step::Seccomp;
    child::apply_seccomp(&j.privileges)?;
    *step = Step::Privileges;
    child::drop_privileges(&j.privileges)?;
    child::tie_to_parent(&j.life)?;
    if let Some(gate) = &j.start_gate {
        let mut b = [0u8; 1];
        match rustix::io::read(gate, &mut b) {
            Ok(1) => {}
            Ok(_) => return Err(libc::ECANCELED),
            Err(err) => return Err(err.raw_os_error()),
        }
    }
    sys::cloexec_from(3)
}
