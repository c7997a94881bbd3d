//! Stopping, killing, waiting for and removing containers. Signals go
//! straight to the container's PID 1 (known by pid and start time, so a
//! reused pid is never signalled); the supervisor records what follows.
//! A rootless kiln may not signal a PID 1 that runs as another container
//! user (its own namespace's root has no power over the monitor's), so
//! then the monitor, root in the container's user namespace, relays it.

use crate::containers::{Container, Containers};
use crate::volumes::Volumes;
use crate::{Result, RuntimeError};
use std::time::{Duration, Instant};

const SIGKILL: i32 = 9;

/// docker's default `stop` timeout.
pub const DEFAULT_STOP_TIMEOUT: u64 = 10;

/// The signal the monitor takes as "read `signal-request`".
pub const RELAY_SIGNAL: i32 = 10; // SIGUSR1

/// `kill(pid, sig)`.
pub(crate) fn send(pid: i32, sig: i32) -> rustix::io::Result<()> {
    match (
        rustix::process::Pid::from_raw(pid),
        rustix::process::Signal::from_named_raw(sig),
    ) {
        (Some(p), Some(s)) => rustix::process::kill_process(p, s),
        _ => Err(rustix::io::Errno::INVAL),
    }
}

/// `sig` to `c`'s PID 1 `pid`, through its monitor when kiln may not.
fn signal(c: &Container, pid: u32, sig: i32) -> Result<()> {
    match send(pid as i32, sig) {
        Err(rustix::io::Errno::PERM) => {}
        _ => return Ok(()),
    }
    let st = c.state();
    let monitor = st
        .supervisor
        .parse::<kiln_store::ProcessId>()
        .ok()
        .filter(|p| st.relays_signals && p.alive());
    let refused = || {
        RuntimeError::Invalid(format!(
            "cannot signal container {}: permission denied",
            c.config.name
        ))
    };
    let monitor = monitor.ok_or_else(refused)?;
    c.request_signal(sig)?;
    send(monitor.pid, RELAY_SIGNAL).map_err(|_| refused())
}

/// Polls `done` until it holds or `limit` passes; whether it held.
fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The container stopped and its supervisor done writing its state.
fn settled(c: &Container) -> bool {
    let st = c.state();
    st.live_pid().is_none() && !st.running()
}

/// `kiln stop`: the image's stop signal, then SIGKILL after `timeout`
/// seconds. The restart policy no longer applies. Returns whether it was
/// running.
pub fn stop(c: &Container, timeout: Option<u64>) -> Result<bool> {
    c.request_stop();
    let st = c.state();
    let Some(pid) = st.live_pid() else {
        // Restarting (between two runs): the monitor sees the request.
        let was = c.is_running();
        wait_until(Duration::from_secs(5), || !c.is_running());
        return Ok(was);
    };
    signal(c, pid, c.config.stop_signal)?;
    let limit = timeout
        .or(c.config.stop_timeout)
        .unwrap_or(DEFAULT_STOP_TIMEOUT);
    if !wait_until(Duration::from_secs(limit), || settled(c)) {
        signal(c, pid, SIGKILL)?;
        wait_until(Duration::from_secs(10), || settled(c));
    }
    Ok(true)
}

/// `kiln kill`: a signal to PID 1 (SIGKILL by default). A kill that ends
/// the container counts as a stop for the restart policy, as in docker.
pub fn kill(c: &Container, sig: i32) -> Result<()> {
    let Some(pid) = c.state().live_pid() else {
        return Err(RuntimeError::Invalid(format!(
            "container {} is not running",
            c.config.name
        )));
    };
    if sig == SIGKILL || sig == c.config.stop_signal {
        c.request_stop();
    }
    signal(c, pid, sig)
}

/// `kiln wait`: blocks until the container is not running; its exit code.
pub fn wait(c: &Container) -> i32 {
    loop {
        let st = c.state();
        if !st.running() && st.live_pid().is_none() {
            return st.exit_code;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `kiln rm`: a running container only with `force` (killed first);
/// with `volumes` its anonymous volumes go too.
pub fn remove(
    containers: &Containers,
    volumes: &Volumes,
    c: &Container,
    force: bool,
    with_volumes: bool,
) -> Result<()> {
    let st = c.state();
    let alive = st.live_pid();
    if (alive.is_some() || st.running()) && !force {
        return Err(RuntimeError::Invalid(format!(
            "cannot remove container {}: it is running (stop it first, or use -f)",
            c.config.name
        )));
    }
    c.request_stop();
    if let Some(pid) = alive {
        signal(c, pid, SIGKILL)?;
    }
    // The supervisor records the exit and leaves; only then the files go
    // (it would otherwise write into a directory being deleted).
    // (A foreground `kiln run --rm` removes its own container: it is the
    // supervisor, done by now.)
    let me = kiln_store::ProcessId::current().to_string();
    wait_until(Duration::from_secs(10), || {
        let st = c.state();
        st.live_pid().is_none() && (st.supervisor == me || !st.supervisor_alive())
    });
    containers.remove(c)?;
    if with_volumes {
        for m in c.config.mounts.iter().filter(|m| m.anonymous) {
            let _ = volumes.remove(&m.source);
        }
    }
    Ok(())
}
