//! Rootless kiln: when not run as root, every command that touches the
//! store runs inside kiln's user namespace (see `kiln_executor::rootless`),
//! entered here before anything else starts a thread.

use crate::{fail, CliError};
use kiln_executor::rootless::{self, Entered, Mapping};
use std::sync::OnceLock;

static ENTERED: OnceLock<Entered> = OnceLock::new();

/// Enters the user namespace unless this process is root (with
/// CAP_SYS_ADMIN: root in an unprivileged container gets one too). `warn`: say so
/// when the namespace has only one id (commands that run containers).
pub fn enter_if_unprivileged(warn: bool) -> Result<(), CliError> {
    if !rootless::needs_own_namespace() {
        return Ok(());
    }
    let entered = rootless::enter().map_err(fail)?;
    if let (true, Some(w)) = (warn, entered.warning()) {
        eprintln!("warning: {w}");
    }
    let _ = ENTERED.set(entered);
    Ok(())
}

/// A rootless `kiln exec`: joins the user namespace of the running
/// container `name` (its monitor's) instead of making a new one, whose
/// root could not enter the container's namespaces. Falls back to a new
/// namespace when the container is not running (the command then says so).
pub fn join_container_if_unprivileged(root: &std::path::Path, name: &str) -> Result<(), CliError> {
    if !rootless::needs_own_namespace() {
        return Ok(());
    }
    let pid = kiln_runtime::Containers::new(root)
        .find(name)
        .ok()
        .and_then(|c| c.state().live_pid());
    match pid {
        Some(pid) => rootless::join(pid).map_err(fail),
        None => enter_if_unprivileged(false),
    }
}

/// The namespace this kiln entered, if it is rootless.
pub fn entered() -> Option<&'static Entered> {
    ENTERED.get()
}

/// What a failure that may come from a missing id deserves to have said
/// after it: the single-id namespace and how to widen it.
pub fn single_id_hint() -> Option<String> {
    let e = entered()?;
    (e.mapping == Mapping::Single).then(|| {
        format!(
            "hint: this rootless kiln has only uid/gid 0 (no range for {} in /etc/subuid \
             and /etc/subgid), so a step that uses another id fails",
            e.user
        )
    })
}

/// `kiln unshare [CMD...]`: runs CMD (default $SHELL) in the namespace.
pub fn unshare(command: &[String]) -> Result<i32, CliError> {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
    let (program, args) = match command.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => (shell, Vec::new()),
    };
    let status = std::process::Command::new(&program)
        .args(&args)
        .status()
        .map_err(|e| fail(format!("{program}: {e}")))?;
    Ok(status.code().unwrap_or(125))
}
