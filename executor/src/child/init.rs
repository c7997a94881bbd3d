//! The last steps in the container: exec the command (a `$PATH` search
//! over prepared strings), or with `--init` become a PID 1 that holds
//! nothing and forwards signals to it.

use super::e;
use crate::prepare::{Command, Prepared};
use crate::sys;

/// `--init`: fork the command, then stay as PID 1 reaping every child and
/// forwarding signals to the command; leave with the command's status.
///
/// The init is a fork of kiln that never execs, so it sheds everything a
/// container could reach through /proc/1: every descriptor (kiln's store
/// database among them), its capabilities, and dumpability, which makes
/// /proc/1/{fd,mem,exe,root,environ} refuse every process in the container.
pub(super) fn init_then_exec(p: &Prepared) -> i32 {
    if let Err(err) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        return e(err);
    }
    let _ = rustix::thread::set_name(c"kiln-init");
    let old_mask = match sys::block_all_signals() {
        Ok(m) => m,
        Err(errno) => return errno,
    };
    let child = match sys::clone_fork(0) {
        Ok(pid) => pid,
        Err(err) => return err.raw_os_error().unwrap_or(libc::EAGAIN),
    };
    if child == 0 {
        sys::set_signal_mask(&old_mask);
        return exec(&p.command);
    }
    // The command reports its own exec errors on the error pipe; the init
    // keeps no descriptor at all (the error pipe included).
    sys::close_from(0);
    let none = rustix::thread::CapabilitySet::empty();
    let _ = rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets {
            effective: none,
            permitted: none,
            inheritable: none,
        },
    );
    let Some(command) = rustix::process::Pid::from_raw(child) else {
        sys::exit_now(1)
    };
    loop {
        let sig = sys::wait_signal();
        if sig == libc::SIGCHLD {
            // Reap everything that has exited; stop when the command has.
            while let Ok(Some((pid, status))) =
                rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG)
            {
                if pid == command {
                    let code = match status.terminating_signal() {
                        Some(sig) => 128 + sig,
                        None => status.exit_status().unwrap_or(0),
                    };
                    sys::exit_now(code);
                }
            }
        } else if sig > 0 {
            if let Some(s) = rustix::process::Signal::from_named_raw(sig) {
                let _ = rustix::process::kill_process(command, s);
            }
        }
    }
}

/// Tries each candidate path (a `$PATH` search done with prepared
/// strings); returns the most telling errno when none can be executed.
pub(crate) fn exec(p: &Command) -> i32 {
    let mut best = libc::ENOENT;
    for candidate in &p.exec_candidates {
        let errno = sys::execve(candidate, &p.argv_ptrs, &p.envp_ptrs);
        // Keep "permission denied" over "not found", as execvp does.
        if errno != libc::ENOENT && errno != libc::ENOTDIR {
            best = errno;
        }
    }
    best
}
