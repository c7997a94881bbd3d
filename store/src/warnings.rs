//! What the store noticed that a user should hear about but that is not a
//! failure (device nodes a layer holds but this process may not create).
//! The store does not print (only the CLI does): it queues, the CLI takes.

use std::sync::Mutex;

static PENDING: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub(crate) fn warn(message: String) {
    if let Ok(mut pending) = PENDING.lock() {
        if !pending.contains(&message) {
            pending.push(message);
        }
    }
}

/// The warnings queued since the last call, oldest first.
pub fn take_warnings() -> Vec<String> {
    PENDING
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default()
}

/// The warning for a layer (`what`) whose device nodes were skipped.
pub fn skipped_devices(what: &str, count: usize) {
    if count > 0 {
        warn(format!(
            "{what}: skipped {count} device node(s): creating them is not permitted \
             here (rootless kiln); containers could not open them anyway (every mount in a \
             container is nodev)"
        ));
    }
}
