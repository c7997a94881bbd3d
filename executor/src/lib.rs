//! The executor: runs a process in an isolated Linux container on an
//! overlayfs stack of layer snapshots, and leaves what it changed in an
//! upper directory that the store turns into a layer. RUN steps use it, and
//! so does `kiln run`.
//!
//! Must not depend on the frontend or the solver. It is the only crate that
//! talks to the kernel directly, and its `sys` module is the only place in
//! kiln where `unsafe` is allowed (each block with a `// SAFETY:` line).
//!
//! How a container starts ([`spawn`]): the parent plans it (`prepare`:
//! state dirs, mounts and mountpoints, environment, the `$PATH` search,
//! every C string and descriptor), then makes one raw `clone` into new
//! mount, PID, UTS and IPC namespaces (plus network for `--network none`).
//! The child (`child`) mounts the overlay with the new mount API
//! (`lowerdir+`, so 100+ layers fit), `pivot_root`s into it, mounts /proc,
//! a `/dev` holding only the allowed devices (`devices`), /sys and the
//! requested mounts — all `nodev` — masks what Docker masks, drops to
//! Docker's capability set under `no_new_privs` and seccomp, closes every
//! descriptor it inherited and execs. Every mount lives in the child's
//! mount namespace, so none can outlive it; the container dies with kiln.
//!
//! Modules: `spec` (what a container is), `prepare` (Spec → the child's
//! data), `child` (the child's syscalls), `running` (waiting, signals,
//! cleanup), `cache_mount`, `devices`, `cgroup`, `seccomp`, `oci` (the
//! external-runtime backend), `user` (USER resolution), `view` (detached
//! overlay views for file ops), `terminal`.

mod cache_mount;
pub use cache_mount::{
    cache_dir_in_use, create_cache_dir, hold_cache_dir, remove_cache_dir_if_unused, CacheWait,
    CacheWaiter,
};
pub mod binfmt;
mod cgroup;
mod child;
mod devices;
mod error;
mod join;
mod netns;
mod oci;
mod prepare;
pub mod rootless;
mod running;
mod seccomp;
mod seccomp_profile;
mod spec;
#[allow(unsafe_code)]
mod sys;
pub mod terminal;
pub mod user;
pub mod view;

pub use cgroup::{Limits, CPU_PERIOD_US};
pub use error::ExecError;
pub use join::{exec, ExecSpec};
pub use netns::{in_network_namespace, new_network_namespace};
pub use running::{run, Exit, Handle, Running, Stream};
pub use seccomp_profile::{compile_profile, SeccompProfile};
pub use spec::{
    capability_bit, clone_tree, hosts_file, rlimit_resource, DetachedTree, DeviceMount, Ipc, Mount,
    MountSource, NetNamespace, Network, Runtime, Security, Sharing, Spec, Stdio, ALL_CAPABILITIES,
    CAPABILITY_NAMES, DEFAULT_CAPABILITIES, DEFAULT_PATH, DEFAULT_SHM_SIZE, RLIMITS,
};

use error::Step;
use prepare::{Inputs, Prepared, StateDirs};
use rustix::process::Pid;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

/// How a container names itself in the caches it locks, for whoever
/// waits on them: kiln's pid and the command (a RUN step's shell line).
fn cache_holder(argv: &[String]) -> String {
    let command: String = argv
        .last()
        .map_or("", String::as_str)
        .chars()
        .take(60)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("kiln pid {} (`{command}`)", std::process::id())
}

/// Starts a container. Returns once the command has been exec'd (or with
/// the reason it could not be). The calling thread must outlive the
/// container: its death is the container's (PR_SET_PDEATHSIG).
pub fn spawn(spec: Spec) -> Result<Running, ExecError> {
    let dirs = StateDirs::create(&spec.state_dir)?;
    let lowers = prepare::lowers_top_first(&spec.lowers, &spec.state_dir)?;
    if spec.pid_host && rootless::in_user_namespace() {
        return Err(ExecError::Invalid(
            "--pid host: a rootless kiln cannot mount the host's /proc in a container".into(),
        ));
    }
    let mut user = user::resolve(&spec.user, &lowers)?;
    let group_file = user::read_merged(&lowers, "etc/group").unwrap_or_default();
    user::add_groups(&mut user, &spec.extra_groups, &group_file)?;
    rootless::check_user(&spec.user, &mut user)?;
    let etc_binds = prepare::etc_files(&spec, &dirs.etc)?;
    let (resolved, cache_locks) = prepare::resolve_mounts(
        &spec.mounts,
        &spec.state_dir,
        &user,
        &cache_holder(&spec.argv),
        spec.cache_wait.as_ref(),
    )?;
    let layout = prepare::layout(&resolved, etc_binds, &spec.state_dir)?;
    let mountpoints = layout.mountpoints.clone();
    let env = prepare::environment(&spec.env, &spec.hostname, user.home.as_deref());
    let (argv0, cwd) = prepare::command_and_cwd(&spec.argv, &spec.cwd)?;
    let (err_read, err_write) = prepare::pipe()?;
    let mut streams = prepare::streams(&spec.stdio)?;
    // With cgroup limits the child waits on this gate until it is placed.
    let (gate_read, gate_write) =
        if spec.limits.is_empty() || !matches!(spec.runtime, Runtime::Native) {
            (None, None)
        } else {
            let (r, w) = prepare::pipe()?;
            (Some(r), Some(w))
        };
    // Only kiln keeps the write end (close-on-exec, never in `prepared`).
    let (life_read, life_write) = prepare::life_pipe()?;
    let mut prepared = Prepared::new(Inputs {
        spec: &spec,
        lowers_top_first: &lowers,
        dirs: &dirs,
        layout,
        env: env.clone(),
        cwd: cwd.clone(),
        user: &user,
        streams: &mut streams,
        start_gate: gate_read,
        error_pipe: err_write,
        life: prepare::LifePipe {
            read: life_read,
            write: std::os::fd::AsRawFd::as_raw_fd(&life_write),
        },
    })?;
    // The OCI backend: the bundle describes the container; our child only
    // mounts the rootfs (in its own mount namespace) and execs the runtime.
    let oci = match &spec.runtime {
        Runtime::Oci(runtime) => Some(oci::helper(
            runtime,
            &spec,
            &dirs,
            &resolved,
            &env,
            &cwd,
            &user,
            &mut prepared,
        )?),
        Runtime::Native => None,
    };
    // (With an OCI runtime, the runtime applies the limits itself.)
    let cgroup = if spec.limits.is_empty() || oci.is_some() {
        None
    } else {
        let name = spec
            .state_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "c".into());
        Some(cgroup::Cgroup::create(
            &spec.cgroup_root,
            &format!("{name}-{}", std::process::id()),
            &spec.limits,
        )?)
    };
    let pid = clone_child(&spec, oci.is_some(), &prepared)?;
    // Parent: drop our copies of the child's ends, then learn whether the
    // exec happened (the error pipe closes on exec) or why not.
    drop(prepared);
    if let (Some(cg), Some(gate)) = (&cgroup, gate_write) {
        place_in_cgroup(pid, cg, gate)?;
    }
    // The terminal (if any) arrives before exec; then the error pipe says
    // whether exec happened.
    let pty = streams
        .tty_parent
        .take()
        .and_then(|sock| running::receive_fd(&sock));
    let mut report = Vec::new();
    let _ = std::fs::File::from(err_read).read_to_end(&mut report);
    // The child has checked the life pipe by now (before exec, or failed).
    drop(life_write);
    let cleanup = running::Cleanup {
        upper: dirs.upper,
        lowers,
        mountpoints,
        rootfs: dirs.rootfs,
    };
    if report.len() >= 8 {
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        cleanup.run();
        return Err(setup_error(&report, argv0, &cwd, &spec.state_dir));
    }
    Ok(Running {
        oci,
        _cgroup: cgroup,
        _cache_locks: cache_locks,
        pid,
        stdout: streams.stdout_parent.take(),
        stderr: streams.stderr_parent.take(),
        pty,
        cleanup: Some(cleanup),
    })
}

/// The one `clone`: into the container's namespaces, or (OCI helper) a
/// mount namespace and a PID namespace of its own, so that when it dies
/// (with kiln, by PDEATHSIG) the kernel kills the runtime's container too.
fn clone_child(spec: &Spec, oci_helper: bool, prepared: &Prepared) -> Result<Pid, ExecError> {
    let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWUTS;
    if !spec.pid_host {
        flags |= libc::CLONE_NEWPID;
    }
    // `--ipc container:X` joins X's namespace in the child (`child::setup`).
    if spec.ipc == Ipc::Private {
        flags |= libc::CLONE_NEWIPC;
    }
    // `Network::Join` setns'es in the child (`child::setup`).
    if spec.network == Network::None {
        flags |= libc::CLONE_NEWNET;
    }
    if oci_helper {
        flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID;
    }
    let pid = sys::clone_fork(flags).map_err(|e| ExecError::Setup {
        step: "creating namespaces",
        source: e,
    })?;
    if pid == 0 {
        child::run(prepared);
    }
    Pid::from_raw(pid).ok_or_else(|| ExecError::Invalid("clone returned no pid".into()))
}

/// Moves the child into its cgroup, then opens its gate; kills it if it
/// cannot be placed.
fn place_in_cgroup(pid: Pid, cg: &cgroup::Cgroup, gate: OwnedFd) -> Result<(), ExecError> {
    let placed = cg.add(pid.as_raw_nonzero().get() as u32);
    if placed.is_ok() {
        let _ = rustix::io::write(&gate, b"g");
    }
    drop(gate);
    if let Err(e) = placed {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        return Err(e);
    }
    Ok(())
}

/// The child's (step, errno) report as an error docker would give.
pub(crate) fn setup_error(report: &[u8], argv0: String, cwd: &str, state_dir: &Path) -> ExecError {
    let step = u32::from_le_bytes(report[..4].try_into().unwrap_or_default());
    let errno = i32::from_le_bytes(report[4..8].try_into().unwrap_or_default());
    if let Some(why) = rootless::explain_setup_failure(step, errno, state_dir) {
        return ExecError::Invalid(why);
    }
    match (step, errno) {
        (s, libc::ENOENT) if s == Step::Exec as u32 => ExecError::NotFound(argv0),
        (s, libc::EACCES) if s == Step::Exec as u32 => ExecError::PermissionDenied(argv0),
        (s, libc::ENOENT) if s == Step::Workdir as u32 => ExecError::Invalid(format!(
            "cannot enter working directory {cwd}: no such file or directory"
        )),
        (s, errno) => ExecError::Setup {
            step: Step::describe(s),
            source: std::io::Error::from_raw_os_error(errno),
        },
    }
}
