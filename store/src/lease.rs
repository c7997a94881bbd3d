//! Leases: what a live kiln process is using, so that a prune in another
//! process never removes it (a build's base layers, the snapshots a
//! container runs on, the blobs a pull is writing).
//!
//! Each open [`Store`](crate::Store) has one lease, named after its
//! process (pid + start time, so a reused pid is never mistaken for the
//! owner) and an instance counter. Everything the store hands out or
//! writes is *held* first: blobs when they are looked up or before they
//! are renamed into place, snapshots before they are checked, unpacked or
//! committed. A hold is a row in `lease_items`, written in an immediate
//! transaction together with the existence check it guards; the garbage
//! collector decides and moves doomed files aside inside one immediate
//! transaction too. So the two are ordered: either the hold came first
//! (the collector keeps the item), or the collection did (the hold sees
//! the item gone and the caller rebuilds or refetches it).
//!
//! A lease ends when its store is dropped, or with its process: leases
//! of dead processes are ignored and deleted by the next collection.

use crate::db::Db;
use crate::digest::Digest;
use crate::error::Result;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A process, told apart from a later one with the same pid by its start
/// time (clock ticks after boot, `/proc/<pid>/stat` field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: i32,
    pub start: u64,
}

impl ProcessId {
    pub fn current() -> ProcessId {
        let pid = std::process::id() as i32;
        ProcessId {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// The process now running as `pid`, if any.
    pub fn of(pid: i32) -> Option<ProcessId> {
        Some(ProcessId {
            pid,
            start: start_time(pid)?,
        })
    }

    /// Whether this very process still runs (a zombie, dead but not yet
    /// reaped, does not).
    pub fn alive(&self) -> bool {
        start_time(self.pid).is_some_and(|s| s == self.start)
    }
}

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.pid, self.start)
    }
}

impl std::str::FromStr for ProcessId {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<ProcessId, ()> {
        let (pid, start) = s.trim().split_once(':').ok_or(())?;
        Ok(ProcessId {
            pid: pid.parse().map_err(|_| ())?,
            start: start.parse().map_err(|_| ())?,
        })
    }
}

/// Field 22 of `/proc/<pid>/stat` (after the parenthesised command name,
/// which may itself hold spaces and parentheses).
/// None for a zombie (or no process).
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name come fields 3 (state) onwards: 22 is the 20th.
    let mut fields = after.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// What a lease can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Blob,
    Snapshot,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Snapshot => "snapshot",
        }
    }
}

/// This store instance's lease: its id and what it already holds (so a
/// second hold of the same item costs no transaction).
pub(crate) struct Lease {
    pub(crate) id: String,
    pub(crate) owner: ProcessId,
    held: Mutex<HashSet<(Kind, Digest)>>,
}

static INSTANCES: AtomicU64 = AtomicU64::new(0);

impl Lease {
    pub(crate) fn new() -> Lease {
        let owner = ProcessId::current();
        Lease {
            id: format!("{owner}:{}", INSTANCES.fetch_add(1, Ordering::Relaxed)),
            owner,
            held: Mutex::new(HashSet::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<(Kind, Digest)>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets every item (released in the database).
    pub(crate) fn forget_all(&self) {
        self.held().clear();
    }

    /// Forgets items (they were released in the database).
    pub(crate) fn forget(&self, items: &[(Kind, Digest)]) {
        let mut held = self.held();
        for i in items {
            held.remove(i);
        }
    }
}

/// The database and the lease, shared by the store and its blob area.
#[derive(Clone)]
pub(crate) struct Keeper {
    pub(crate) db: Arc<Mutex<Db>>,
    pub(crate) lease: Arc<Lease>,
}

impl Keeper {
    pub(crate) fn db(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `items`, then asks `present` about each, inside one
    /// transaction (see the module docs); returns the answers in order.
    /// Items already held skip the transaction: the lease keeps them.
    pub(crate) fn hold(
        &self,
        items: &[(Kind, Digest)],
        present: &dyn Fn(Kind, &Digest) -> bool,
    ) -> Result<Vec<bool>> {
        let new: Vec<(Kind, Digest)> = {
            let held = self.lease.held();
            items
                .iter()
                .filter(|i| !held.contains(i))
                .cloned()
                .collect()
        };
        if new.is_empty() {
            return Ok(items.iter().map(|(k, d)| present(*k, d)).collect());
        }
        let answers = self.db().hold(&self.lease, &new, items, present)?;
        self.lease.held().extend(new);
        Ok(answers)
    }

    /// Holds one item that is about to be created (no check).
    pub(crate) fn hold_new(&self, kind: Kind, digest: &Digest) -> Result<()> {
        self.hold(&[(kind, digest.clone())], &|_, _| true)
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_ids_tell_processes_apart() {
        let me = ProcessId::current();
        assert!(me.start > 0);
        assert!(me.alive());
        assert!(!ProcessId {
            start: me.start + 1,
            ..me
        }
        .alive());
        assert_eq!(me.to_string().parse::<ProcessId>(), Ok(me));
        assert!(!ProcessId {
            pid: i32::MAX,
            start: 1
        }
        .alive());
    }
}
