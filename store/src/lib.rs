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

pub mod apply;
mod archive;
mod blobs;
mod build;
mod check;
mod context;
mod db;
mod digest;
mod error;
mod gc;
mod image;
pub mod layer;
mod lazy;
mod lease;
mod pgzip;
mod reference;
pub mod time;
mod warnings;

pub use archive::{ImportOptions, LoadReport};
pub use blobs::{BlobWriter, Blobs};
pub use build::{chain_id, stack_layers, Layer, LayerStack};
pub use check::{CheckReport, DiskUsage, PruneReport};
pub use context::{ContextStats, FileSums};
pub use digest::{Digest, DigestError, HashingReader, HashingWriter, VerifyingReader};
pub use error::{Result, StoreError};
pub use gc::{dir_size, CacheRecordInfo};
pub use image::{
    host_platform, host_platform_name, platform_json, platform_matches, platform_name, HistoryRow,
    Image, LayerRef, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
pub use lease::ProcessId;
pub use reference::{Reference, ReferenceError};
pub use time::{now, rfc3339};
pub use warnings::{skipped_devices as warn_skipped_devices, take_warnings};

use crate::db::{Db, ImageRow, SnapshotRow};
use crate::error::IoContext;
use crate::lease::{Keeper, Kind, Lease};
use oci_spec::image::ImageManifest;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct Store {
    root: PathBuf,
    blobs: Blobs,
    /// The database and this instance's lease on what it uses.
    keeper: Keeper,
    snapshots: PathBuf,
    /// Paths whose modes `open` had to tighten (for `system check`).
    tightened: Vec<String>,
}

impl Drop for Store {
    fn drop(&mut self) {
        // A failure only leaves a lease that dies with this process.
        let _ = self.db().release(&self.keeper.lease.id);
    }
}

/// Directories of the store that no other user may enter: snapshots hold
/// setuid binaries and device nodes from images, blobs hold every layer.
pub(crate) const PRIVATE_DIRS: [&str; 5] = ["", "blobs", "snapshots", "tmp", "containers"];
/// The metadata database and SQLite's companions.
pub(crate) const PRIVATE_FILES: [&str; 3] = ["meta.db", "meta.db-wal", "meta.db-shm"];

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

    /// Opens (creating if needed) the store at `root`. Its directories
    /// are made (or tightened to) mode 0700 and its database 0600.
    pub fn open(root: &Path) -> Result<Store> {
        fs::create_dir_all(root).at(root)?;
        let mut blobs = Blobs::open(root)?;
        let snapshots = root.join("snapshots");
        fs::create_dir_all(&snapshots).at(&snapshots)?;
        fs::create_dir_all(root.join("containers")).at(root.join("containers"))?;
        let db_path = root.join("meta.db");
        check_metadata_present(root, &db_path, &blobs, &snapshots)?;
        if !db_path.exists() {
            // Created private: SQLite gives -wal and -shm the same mode.
            use std::os::unix::fs::OpenOptionsExt;
            fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&db_path)
                .at(&db_path)?;
        }
        let db = Db::open(&db_path)?;
        let tightened = tighten_modes(root)?;
        let keeper = Keeper {
            db: Arc::new(Mutex::new(db)),
            lease: Arc::new(Lease::new()),
        };
        blobs.keeper = Some(keeper.clone());
        let store = Store {
            root: root.to_path_buf(),
            blobs,
            keeper,
            snapshots,
            tightened,
        };
        store.sweep_temp()?;
        store.record_missing_platforms()?;
        Ok(store)
    }

    /// Images recorded before the store kept their platform get it from
    /// their config (once).
    fn record_missing_platforms(&self) -> Result<()> {
        let missing = self.db().images_without_platform()?;
        for (manifest, config) in missing {
            let Ok(bytes) = self.blobs.read(&config) else {
                continue;
            };
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let platform = image::platform_name(&json);
            self.db()
                .immediate(|tx| db::set_image_platform(tx, &manifest, &platform))?;
        }
        Ok(())
    }

    /// The image `what` names for `platform` (`os/arch[/variant]`): a
    /// multi-platform name's image for it, or a single-platform image if
    /// it is for that platform. Never another platform's image: that is
    /// [`StoreError::WrongPlatform`], naming the platforms there are.
    pub fn resolve_for(&self, what: &str, platform: &str) -> Result<Image> {
        let entries = self.platforms_of(what)?;
        if let Some((_, image)) = entries
            .iter()
            .find(|(p, _)| image::platform_matches(p, platform))
        {
            return Ok(image.clone());
        }
        Err(StoreError::WrongPlatform {
            image: what.to_string(),
            wanted: platform.to_string(),
            available: entries.into_iter().map(|(p, _)| p).collect(),
        })
    }

    /// Every platform `what` has an image for, with the image: one entry
    /// for a single-platform image (or an image ID).
    pub fn platforms_of(&self, what: &str) -> Result<Vec<(String, Image)>> {
        let default = self.resolve(what)?;
        let name = Reference::parse(what).ok().map(|r| r.to_string());
        let rows = match &name {
            Some(n) => self.db().platform_names(n)?,
            None => Vec::new(),
        };
        if rows.is_empty() {
            return Ok(vec![(image::platform_name(&default.config), default)]);
        }
        rows.into_iter()
            .map(|(p, manifest)| Ok((p, self.image_by_manifest(&manifest)?)))
            .collect()
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
        self.keeper.db()
    }

    /// Holds the blobs (see lease.rs): a prune in any process keeps them
    /// while this store is open. Errors name the first one already gone.
    pub fn hold_blobs(&self, digests: &[Digest]) -> Result<()> {
        let items: Vec<(Kind, Digest)> = digests.iter().map(|d| (Kind::Blob, d.clone())).collect();
        let present = self
            .keeper
            .hold(&items, &|_, d| self.blobs.path(d).is_file())?;
        match digests.iter().zip(present).find(|(_, p)| !p) {
            Some((d, _)) => Err(StoreError::BlobMissing {
                digest: d.to_string(),
            }),
            None => Ok(()),
        }
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
        let config = image::kiln_digest(manifest.config().digest(), "config")?;
        if !self.blobs.contains(&config) {
            return Err(StoreError::BlobMissing {
                digest: config.to_string(),
            });
        }
        let manifest_digest = self.blobs.put(manifest_bytes)?;
        let names: Vec<String> = names.iter().map(|r| r.to_string()).collect();
        let platform = image::platform_name(
            &serde_json::from_slice(&self.blobs.read(&config)?)
                .map_err(|e| StoreError::Invalid(format!("image config {config}: {e}")))?,
        );
        let row = ImageRow {
            manifest: manifest_digest.clone(),
            config: config_digest,
            added: time::now(),
        };
        let needed: Vec<Digest> = std::iter::once(manifest.config())
            .chain(manifest.layers().iter())
            .map(|d| image::kiln_digest(d.digest(), "blob"))
            .chain([Ok(manifest_digest.clone())])
            .collect::<Result<_>>()?;
        // Checked again in the transaction that records the image: a
        // collection is ordered before or after it, never in between.
        // A layer blob may be one to make from a built snapshot (lazy.rs).
        self.db().immediate(|tx| {
            if let Some(d) = needed.iter().find(|d| !self.layer_available(tx, d)) {
                return Err(StoreError::BlobMissing {
                    digest: d.to_string(),
                });
            }
            db::set_image_platform(tx, &row.manifest, &platform)?;
            db::add_image(tx, &row, &names, &platform, &image::host_platform_name())
        })?;
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
        let mut image = self.image_from_blobs(&row)?;
        image.names = self.db().names_of(&row.manifest)?;
        Ok(image)
    }

    /// An image from its manifest and config blobs alone (no names; no
    /// database access, so the collector can use it inside its lock).
    pub(crate) fn image_from_blobs(&self, row: &ImageRow) -> Result<Image> {
        let manifest_bytes = self.blobs.read(&row.manifest)?;
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| StoreError::Invalid(format!("manifest {}: {e}", row.manifest)))?;
        let config_bytes = self.blobs.read(&row.config)?;
        let config = serde_json::from_slice(&config_bytes)
            .map_err(|e| StoreError::Invalid(format!("config {}: {e}", row.config)))?;
        Ok(Image {
            manifest_digest: row.manifest.clone(),
            manifest,
            config_digest: row.config.clone(),
            config,
            names: Vec::new(),
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
        let mut db = self.db();
        db.set_name(&reference.to_string(), &image.manifest_digest)?;
        // A multi-platform source: the tag has every platform too.
        if let Ok(source_ref) = Reference::parse(source) {
            db.copy_platform_names(&source_ref.to_string(), &reference.to_string())?;
        }
        Ok(reference)
    }

    /// Names the image with manifest `digest` `repo@digest` (`reference`'s
    /// repository): what a registry now serves it as.
    pub fn name_by_digest(&self, reference: &Reference, digest: &Digest) -> Result<()> {
        let mut by_digest = reference.clone();
        by_digest.tag = None;
        by_digest.digest = Some(digest.clone());
        self.db().set_name(&by_digest.to_string(), digest)
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

    /// Removes every name of the image `what` names but keeps the image
    /// (dangling): `rmi -f` of an image a stopped container still uses.
    pub fn untag(&self, what: &str) -> Result<Vec<String>> {
        let image = self.resolve(what)?;
        for name in &image.names {
            self.db().remove_name(name)?;
        }
        Ok(image.names.clone())
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
        // Held before it is looked at: a prune then cannot take it (or the
        // blob it is unpacked from) while we use it.
        let snapshot_present = |d: &Digest| self.snapshots.join(d.hex()).is_dir();
        let present = self.keeper.hold(
            &[
                (Kind::Snapshot, chain_id.clone()),
                (Kind::Blob, layer.digest.clone()),
            ],
            &|kind, d| match kind {
                Kind::Snapshot => snapshot_present(d),
                Kind::Blob => self.blobs.path(d).is_file(),
            },
        )?;
        if present[0] && self.db().snapshot(chain_id)?.is_some() {
            return Ok(final_dir);
        }
        if !present[1] {
            return Err(StoreError::BlobMissing {
                digest: layer.digest.to_string(),
            });
        }
        // Something that is not a snapshot directory (a file, a link) in
        // its place is moved aside; the snapshot is made again from its blob.
        if fs::symlink_metadata(&final_dir).is_ok_and(|m| !m.is_dir()) {
            let aside = blobs::temp_path(self.blobs.tmp_dir(), "trash");
            fs::rename(&final_dir, &aside).at(&final_dir)?;
            let _ = fs::remove_file(&aside);
        }
        let tmp = blobs::temp_path(&self.snapshots, "unpack");
        let result = (|| -> Result<u64> {
            let blob = self.blobs.open_blob(&layer.digest)?;
            // Errors name the layer, not the temp directory it went to.
            let applied = layer::apply_layer(blob, &tmp).map_err(|e| StoreError::Layer {
                digest: layer.digest.to_string(),
                source: Box::new(e),
            })?;
            warnings::skipped_devices(&format!("layer {}", layer.digest), applied.skipped_devices);
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

/// A store whose blobs or snapshots outlive its database has lost every
/// image and cache record: using it would look like an empty store, and
/// the first prune would delete everything. Refuse, and say so.
fn check_metadata_present(root: &Path, db: &Path, blobs: &Blobs, snapshots: &Path) -> Result<()> {
    let db_len = fs::metadata(db).map(|m| m.len()).unwrap_or(0);
    if db_len > 0 {
        return Ok(());
    }
    let blob_count = blobs.list()?.len();
    let snapshot_count = fs::read_dir(snapshots)
        .at(snapshots)?
        .flatten()
        .filter(|e| e.file_name().len() == 64)
        .count();
    if blob_count == 0 && snapshot_count == 0 {
        return Ok(());
    }
    Err(StoreError::MetadataLost {
        root: root.to_path_buf(),
        state: if db.exists() { "empty" } else { "missing" },
        blobs: blob_count,
        snapshots: snapshot_count,
    })
}

/// Mode 0700 on the store's directories, 0600 on its database files,
/// for a new store and an old one made before kiln did this. Says what
/// it changed.
fn tighten_modes(root: &Path) -> Result<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let mut changed = Vec::new();
    for (names, mode) in [(&PRIVATE_DIRS[..], 0o700), (&PRIVATE_FILES[..], 0o600)] {
        for name in names {
            let path = root.join(name);
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            let old = meta.permissions().mode() & 0o7777;
            if old & 0o077 != 0 {
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).at(&path)?;
                changed.push(format!(
                    "{} had mode {old:04o} (other users could reach the store); now {mode:04o}",
                    path.display()
                ));
            }
        }
    }
    Ok(changed)
}

/// Store paths whose mode lets other users in (for `system check`).
pub(crate) fn loose_modes(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for name in PRIVATE_DIRS.iter().chain(PRIVATE_FILES.iter()) {
        let path = root.join(name);
        if let Ok(meta) = fs::metadata(&path) {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                out.push(format!(
                    "{} has mode {mode:04o}: other users can reach the store (want {})",
                    path.display(),
                    if meta.is_dir() { "0700" } else { "0600" }
                ));
            }
        }
    }
    out
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
