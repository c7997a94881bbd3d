//! Named and anonymous volumes: `<root>/volumes/<name>/_data` (docker's
//! layout) with `meta.json` beside it. A volume mounted for the first
//! time while empty gets a copy of what the image has at its target, as
//! docker does.

use crate::{io_at, write_atomic, Result, RuntimeError};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeMeta {
    pub name: String,
    pub created: String,
    /// Made for one container (`rm -v` and `volume prune` take it).
    pub anonymous: bool,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Volume {
    pub meta: VolumeMeta,
    /// The directory containers see.
    pub data: PathBuf,
}

/// docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Volumes {
    pub fn new(store_root: &Path) -> Volumes {
        Volumes {
            dir: store_root.join("volumes"),
        }
    }

    /// Creates the volume, or returns it if it exists.
    pub fn create(&self, name: &str, anonymous: bool) -> Result<Volume> {
        if !valid_name(name) {
            return Err(RuntimeError::Invalid(format!(
                "invalid volume name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if let Ok(v) = self.get(name) {
            return Ok(v);
        }
        let dir = self.dir.join(name);
        let data = dir.join("_data");
        fs::create_dir_all(&data).map_err(io_at(&data))?;
        let meta = VolumeMeta {
            name: name.to_string(),
            created: crate::time::now(),
            anonymous,
            labels: Default::default(),
        };
        let bytes = serde_json::to_vec(&meta).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        write_atomic(&dir.join("meta.json"), &bytes)?;
        Ok(Volume { meta, data })
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        let dir = self.dir.join(name);
        let meta: VolumeMeta = fs::read(dir.join("meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| RuntimeError::NoSuchVolume(name.to_string()))?;
        Ok(Volume {
            meta,
            data: dir.join("_data"),
        })
    }

    pub fn list(&self) -> Vec<Volume> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut all: Vec<Volume> = entries
            .flatten()
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
            .collect();
        all.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
        all
    }

    /// Removes a volume; the caller checks no container uses it.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.get(name)?;
        let dir = self.dir.join(name);
        // meta.json first: a half-removed volume is no volume.
        let _ = fs::remove_file(dir.join("meta.json"));
        fs::remove_dir_all(&dir).map_err(io_at(&dir))
    }

    /// Whether the volume's directory is empty (a first mount copies the
    /// image's files in).
    pub fn is_empty(v: &Volume) -> bool {
        fs::read_dir(&v.data).map_or(true, |mut d| d.next().is_none())
    }
}
