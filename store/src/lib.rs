//! The store: content-addressed blobs, unpacked layer snapshots, and the
//! metadata database (image names, image records, snapshots; later the
//! cache index); plus the formats images travel in (OCI layout, docker
//! archive, layer tars).
//!
//! Must not depend on the frontend, the solver, the executor or any network
//! code. Every write it makes is atomic: blobs and snapshots are built under
//! a temp name and renamed into place, records change in one transaction.
//!
//! Layout under the root:
//!
//! ```text
//! blobs/sha256/<hex>     content-addressed blobs (manifests, configs, layers)
//! snapshots/<hex>/       unpacked layers, usable as overlayfs lowerdirs
//! tmp/                   in-progress writes (pid-tagged; stale ones are swept)
//! meta.db                SQLite: images, names, snapshots, context memo,
//!                        build cache index (cache key → layer stack)
//! ```

mod archive;
mod blobs;
mod build;
mod check;
mod context;
mod db;
mod digest;
mod error;
mod image;
pub mod layer;
mod reference;
mod time;

pub use archive::{ImportOptions, LoadReport};
pub use blobs::{BlobWriter, Blobs};
pub use build::{chain_id, stack_layers, LayerStack};
pub use check::{CheckReport, DiskUsage, PruneReport};
pub use context::{ContextStats, FileSums};
pub use digest::{Digest, DigestError, HashingReader, HashingWriter};
pub use error::{Result, StoreError};
pub use image::{
    host_platform, HistoryRow, Image, LayerRef, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_CONFIG,
    MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
pub use reference::{Reference, ReferenceError};
pub use time::rfc3339;

use crate::db::{Db, ImageRow, SnapshotRow};
use crate::error::IoContext;
use oci_spec::image::ImageManifest;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct Store {
    root: PathBuf,
    blobs: Blobs,
    db: Mutex<Db>,
    snapshots: PathBuf,
}

impl Store {
    /// The default root: `/var/lib/kiln` for root, `$XDG_DATA_HOME/kiln`
    /// (or `~/.local/share/kiln`) otherwise.
    pub fn default_root() -> PathBuf {
        if rustix::process::geteuid().is_root() {
            return PathBuf::from("/var/lib/kiln");
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("kiln");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/share/kiln")
    }

    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        fs::create_dir_all(root).at(root)?;
        let blobs = Blobs::open(root)?;
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots).at(&snapshots)?;
        let db = Db::open(&root.join("meta.db"))?;
        let store = Store {
            root: root.to_path_buf(),
            blobs,
            db: Mutex::new(db),
            snapshots,
        };
        store.sweep_temp()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// The database, locked. Never hold the guard across another call that
    /// locks it (e.g. in a `for` header): std mutexes are not reentrant.
    fn db(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes temp files and directories left by processes that died.
    fn sweep_temp(&self) -> Result<()> {
        for dir in [self.blobs.tmp_dir().to_path_buf(), self.snapshots.clone()] {
            for entry in fs::read_dir(&dir).at(&dir)?.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // Temp names are `<what>-<pid>-...`; committed snapshots are hex.
                let Some(pid) = name.split('-').nth(1).and_then(|p| p.parse::<i32>().ok()) else {
                    continue;
                };
                if !process_alive(pid) {
                    let path = entry.path();
                    let _ = if path.is_dir() {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                }
            }
        }
        Ok(())
    }

    /// Stores a manifest + config already in the blob store as an image and
    /// names it. The manifest bytes are stored as given.
    pub(crate) fn commit_image(&self, manifest_bytes: &[u8], names: &[Reference]) -> Result<Image> {
        let manifest: ImageManifest = serde_json::from_slice(manifest_bytes)
            .map_err(|e| StoreError::Invalid(format!("manifest: {e}")))?;
        let config_digest = image::kiln_digest(manifest.config().digest(), "config")?;
        for needed in std::iter::once(manifest.config()).chain(manifest.layers().iter()) {
            let d = image::kiln_digest(needed.digest(), "blob")?;
            if !self.blobs.contains(&d) {
                return Err(StoreError::BlobMissing {
                    digest: d.to_string(),
                });
            }
        }
        let manifest_digest = self.blobs.put(manifest_bytes)?;
        let names: Vec<String> = names.iter().map(|r| r.to_string()).collect();
        self.db().add_image(
            &ImageRow {
                manifest: manifest_digest.clone(),
                config: config_digest,
                added: time::now(),
            },
            &names,
        )?;
        self.image_by_manifest(&manifest_digest)
    }

    fn image_by_manifest(&self, manifest_digest: &Digest) -> Result<Image> {
        let row = self
            .db()
            .image(manifest_digest)?
            .ok_or_else(|| StoreError::ImageNotFound(manifest_digest.to_string()))?;
        self.load_image(row)
    }

    fn load_image(&self, row: ImageRow) -> Result<Image> {
        let manifest_bytes = self.blobs.read(&row.manifest)?;
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| StoreError::Invalid(format!("manifest {}: {e}", row.manifest)))?;
        let config_bytes = self.blobs.read(&row.config)?;
        let config = serde_json::from_slice(&config_bytes)
            .map_err(|e| StoreError::Invalid(format!("config {}: {e}", row.config)))?;
        let names = self
            .db()
            .names()?
            .into_iter()
            .filter(|(_, m)| *m == row.manifest)
            .map(|(n, _)| n)
            .collect();
        Ok(Image {
            manifest_digest: row.manifest,
            manifest,
            config_digest: row.config,
            config,
            names,
        })
    }

    /// Finds an image by name (`busybox`, `x:1`), by image ID (config
    /// digest, full or a unique hex prefix) or by manifest digest.
    pub fn resolve(&self, what: &str) -> Result<Image> {
        let rows = self.db().images()?;
        let hex = what.strip_prefix("sha256:").unwrap_or(what);
        let is_hex =
            !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if is_hex && (what.starts_with("sha256:") || hex.len() >= 4) {
            let hits: Vec<&ImageRow> = rows
                .iter()
                .filter(|r| r.config.hex().starts_with(hex) || r.manifest.hex() == hex)
                .collect();
            let mut configs: Vec<&Digest> = hits.iter().map(|r| &r.config).collect();
            configs.dedup();
            match (hits.first(), configs.len()) {
                (Some(row), 1) => return self.load_image((*row).clone()),
                (Some(_), _) => {
                    return Err(StoreError::Invalid(format!(
                        "image ID prefix {what:?} is ambiguous: give more digits"
                    )))
                }
                (None, _) if what.starts_with("sha256:") => {
                    return Err(StoreError::ImageNotFound(what.to_string()))
                }
                _ => {}
            }
        }
        let reference = Reference::parse(what)?;
        let manifest = self
            .db()
            .resolve_name(&reference.to_string())?
            .ok_or_else(|| StoreError::ImageNotFound(reference.familiar()))?;
        self.image_by_manifest(&manifest)
    }

    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<Image>> {
        let rows = self.db().images()?;
        rows.into_iter().map(|r| self.load_image(r)).collect()
    }

    /// Gives `target` the image `source` names.
    pub fn tag(&self, source: &str, target: &str) -> Result<Reference> {
        let image = self.resolve(source)?;
        let reference = Reference::parse(target)?;
        if reference.digest.is_some() {
            return Err(StoreError::Invalid(format!(
                "cannot tag with a digest reference: {target}"
            )));
        }
        self.db()
            .set_name(&reference.to_string(), &image.manifest_digest)?;
        Ok(reference)
    }

    /// `kiln rmi`: a name removes that name (and the image record when it
    /// was the last one); an ID removes the image and all its names. Blobs
    /// and snapshots go at the next prune.
    pub fn remove(&self, what: &str, force: bool) -> Result<Vec<String>> {
        let image = self.resolve(what)?;
        let by_name = Reference::parse(what)
            .ok()
            .map(|r| r.to_string())
            .filter(|n| image.names.contains(n));
        let mut untagged = Vec::new();
        match by_name {
            Some(name) => {
                self.db().remove_name(&name)?;
                untagged.push(name);
                if image.names.len() == 1 {
                    self.db().remove_image(&image.manifest_digest)?;
                }
            }
            None => {
                if image.names.len() > 1 && !force {
                    return Err(StoreError::Invalid(format!(
                        "image {} is referenced by {} names; remove them by name or use --force",
                        image.short_id(),
                        image.names.len()
                    )));
                }
                untagged.extend(image.names.iter().cloned());
                self.db().remove_image(&image.manifest_digest)?;
            }
        }
        Ok(untagged)
    }

    /// The chain of snapshot directories for an image's layers (base
    /// first), unpacking any that are missing.
    pub fn snapshots_for(&self, image: &Image) -> Result<Vec<PathBuf>> {
        self.snapshot_chain(&self.image_stack(image)?)
    }

    pub(crate) fn ensure_snapshot(
        &self,
        layer: &LayerRef,
        chain_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<PathBuf> {
        let final_dir = self.snapshots.join(chain_id.hex());
        if let Some(row) = self.db().snapshot(chain_id)? {
            let dir = self.snapshots.join(&row.dir);
            if dir.is_dir() {
                return Ok(dir);
            }
        }
        let tmp = blobs::temp_path(&self.snapshots, "unpack");
        let result = (|| -> Result<u64> {
            let blob = self.blobs.open_blob(&layer.digest)?;
            let applied = layer::apply_layer(blob, &tmp)?;
            if applied.diff_id != layer.diff_id {
                return Err(StoreError::DigestMismatch {
                    what: format!("layer {} (uncompressed)", layer.digest),
                    expected: layer.diff_id.to_string(),
                    actual: applied.diff_id.to_string(),
                });
            }
            Ok(applied.size)
        })();
        let size = match result {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        match fs::rename(&tmp, &final_dir) {
            Ok(()) => {}
            // Another process unpacked the same layer first: use theirs.
            Err(_) if final_dir.is_dir() => {
                let _ = fs::remove_dir_all(&tmp);
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e).at(&final_dir);
            }
        }
        self.db().add_snapshot(&SnapshotRow {
            chain_id: chain_id.clone(),
            parent: parent.cloned(),
            diff_id: layer.diff_id.clone(),
            dir: chain_id.hex(),
            size,
        })?;
        Ok(final_dir)
    }
}

fn process_alive(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        Some(p) => rustix::process::test_kill_process(p).is_ok_or_eperm(),
        None => false,
    }
}

trait OkOrEperm {
    fn is_ok_or_eperm(&self) -> bool;
}

impl OkOrEperm for rustix::io::Result<()> {
    fn is_ok_or_eperm(&self) -> bool {
        matches!(self, Ok(()) | Err(rustix::io::Errno::PERM))
    }
}
