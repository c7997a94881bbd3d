//! The state kept for `kiln run` containers under `<root>/containers/`:
//! one directory per container (`<id>/`: its upper dir, generated /etc
//! files, `config.json`, and `owner`, the kiln process that runs it),
//! and `names/<name>` symlinks to ids.
//!
//! A container lives exactly as long as its owner (the executor ties it
//! to kiln with PR_SET_PDEATHSIG), so "is it running?" is "is its owner
//! alive?" — told by pid and start time, never by a pid alone.

use kiln_store::{ProcessId, Store};
use std::fs;
use std::path::{Path, PathBuf};

pub fn dir(store: &Store) -> PathBuf {
    store.root().join("containers")
}

/// Records that this process runs the container in `state_dir`.
pub fn claim(state_dir: &Path) -> std::io::Result<()> {
    fs::write(state_dir.join("owner"), ProcessId::current().to_string())
}

/// Whether the container's owner still runs. A directory without an
/// owner is one being set up right now, unless it is old (a kiln that
/// died before writing it).
fn running(state_dir: &Path) -> bool {
    match fs::read_to_string(state_dir.join("owner")) {
        Ok(text) => text.parse::<ProcessId>().is_ok_and(|p| p.alive()),
        Err(_) => fs::metadata(state_dir)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().map_or(true, |e| e.as_secs() < 60)),
    }
}

fn auto_remove(state_dir: &Path) -> bool {
    fs::read(state_dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|c| c.get("AutoRemove").and_then(serde_json::Value::as_bool))
        .unwrap_or(false)
}

/// Removes the directories of containers that are not running: all of
/// them (`kiln prune`), or only `--rm` ones whose kiln was killed before
/// it could clean up (at every `kiln run`). Returns how many went.
pub fn sweep(store: &Store, only_auto_remove: bool) -> usize {
    let dir = dir(store);
    let Ok(entries) = fs::read_dir(&dir) else {
        return 0;
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "names" || running(&e.path()) {
            continue;
        }
        if only_auto_remove && !auto_remove(&e.path()) {
            continue;
        }
        if fs::remove_dir_all(e.path()).is_ok() {
            removed.push(name);
        }
    }
    if let Ok(names) = fs::read_dir(dir.join("names")) {
        for n in names.flatten() {
            if fs::read_link(n.path()).is_ok_and(|t| removed.iter().any(|r| t == Path::new(r))) {
                let _ = fs::remove_file(n.path());
            }
        }
    }
    removed.len()
}
