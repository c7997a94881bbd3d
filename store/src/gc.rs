//! Garbage collection: `kiln prune`, and the cleanup after a failed load.
//!
//! Live is what an image record or a build cache record needs, and what
//! any live process holds (lease.rs). Everything else goes. The decision
//! and the moves that make it real (each doomed blob and snapshot renamed
//! into a trash directory under `tmp/`) happen inside one immediate
//! transaction, so they are ordered against every hold, image commit and
//! cache record; the trash is deleted afterwards, outside the lock (and by
//! the next open's temp sweep if we die first).

use crate::check::PruneReport;
use crate::db::{self, ImageRow};
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::image::Image;
use crate::lease::Kind;
use crate::{blobs, build, Layer, Store};
use std::collections::HashSet;
use std::fs;
use std::path::Path;

/// What a collection may remove.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// `kiln prune`: unnamed images (every image and the whole build cache
    /// with `all`), then every blob and snapshot nothing live needs.
    Everything { all: bool },
    /// Only these blobs (a failed load's), if nothing else needs them.
    Blobs(&'a HashSet<Digest>),
    /// These build cache records (`kiln builder prune`, the build's GC),
    /// then every blob and snapshot nothing live needs; images stay.
    CacheRecords(&'a [String]),
}

/// A build cache record as `kiln builder prune` weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecordInfo {
    pub key: String,
    /// Unix seconds of its last hit or write.
    pub used: i64,
    /// Bytes of the layer the record adds.
    pub size: u64,
}

pub fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = fs::read_dir(&p) else { continue };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

impl Store {
    /// Removes images without names (all images and the build cache with
    /// `all`), then every blob and snapshot that no remaining image, no
    /// cache record and no live kiln process needs.
    pub fn prune(&self, all: bool) -> Result<PruneReport> {
        self.collect(Scope::Everything { all })
    }

    /// Removes the build cache records `keys`, then every blob and
    /// snapshot that no image, no remaining record and no live kiln
    /// process needs. Images are never removed.
    pub fn prune_cache(&self, keys: &[String]) -> Result<PruneReport> {
        self.collect(Scope::CacheRecords(keys))
    }

    /// Every build cache record with when it was last used and the size
    /// of what it adds (its own, top layer; the layers beneath are other
    /// records').
    pub fn cache_records(&self) -> Result<Vec<CacheRecordInfo>> {
        let rows = self.db().cache_rows()?;
        Ok(rows
            .into_iter()
            .map(|(key, text, used)| {
                let own = build::stack_from_text(&text).and_then(|s| s.last().cloned().flatten());
                let size = match own {
                    Some(Layer::Built { snapshot }) => {
                        dir_size(&self.snapshots.join(snapshot.hex()))
                    }
                    Some(Layer::Tar(l)) => l.size,
                    None => 0,
                };
                CacheRecordInfo { key, used, size }
            })
            .collect())
    }

    /// What removing every build cache record would free, honestly:
    /// the blobs and snapshots the records keep that no image and no live
    /// process needs too (`system df`'s RECLAIMABLE for the build cache).
    pub fn cache_reclaimable(&self) -> Result<u64> {
        self.db().immediate(|tx| {
            let holds = db::live_holds(tx, None)?;
            let images = db::image_rows(tx)?;
            let (all_blobs, all_snaps) = self.live(tx, &images, &db::cache_texts(tx)?, &holds)?;
            let (img_blobs, img_snaps) = self.live(tx, &images, &[], &holds)?;
            let mut bytes: u64 = all_blobs
                .difference(&img_blobs)
                .filter_map(|d| fs::metadata(self.blobs.path(d)).ok())
                .map(|m| m.len())
                .sum();
            let pulled: std::collections::HashMap<Digest, String> = db::snapshot_rows(tx)?
                .into_iter()
                .map(|r| (r.chain_id, r.dir))
                .collect();
            for snap in all_snaps.difference(&img_snaps) {
                let dir = pulled.get(snap).cloned().unwrap_or_else(|| snap.hex());
                bytes += dir_size(&self.snapshots.join(dir));
            }
            Ok(bytes)
        })
    }

    /// Deletes blobs a failed load added, unless something else needs
    /// them (an image, a cache record, another process).
    pub(crate) fn collect_blobs(&self, candidates: &HashSet<Digest>) {
        let _ = self.collect(Scope::Blobs(candidates));
    }

    fn collect(&self, scope: Scope<'_>) -> Result<PruneReport> {
        let trash = blobs::temp_path(self.blobs.tmp_dir(), "trash");
        fs::create_dir_all(&trash).at(&trash)?;
        let lease = self.keeper.lease.clone();
        let result = self.db().immediate(|tx| {
            let mut report = PruneReport::default();
            // Our own holds go (on the candidates, or all with a prune):
            // the process collecting is the one giving them up.
            match scope {
                Scope::Blobs(candidates) => {
                    let items: Vec<(Kind, Digest)> =
                        candidates.iter().map(|d| (Kind::Blob, d.clone())).collect();
                    db::release_items(tx, &lease.id, &items)?;
                    lease.forget(&items);
                }
                Scope::Everything { .. } | Scope::CacheRecords(_) => {
                    tx.execute("DELETE FROM lease_items WHERE lease = ?1", [&lease.id])?;
                    lease.forget_all();
                }
            }
            if let Scope::CacheRecords(keys) = scope {
                for key in keys {
                    report.cache_records_removed +=
                        tx.execute("DELETE FROM build_cache WHERE key = ?1", [key])?;
                }
            }
            let holds = db::live_holds(tx, None)?;
            if let Scope::Everything { all } = scope {
                if all {
                    report.cache_records_removed = tx.execute("DELETE FROM build_cache", [])?;
                }
                let named: HashSet<Digest> = db::named_manifests(tx)?.into_iter().collect();
                let rows = db::image_rows(tx)?;
                // A named image's other manifests (its layers made into
                // blobs for a push or a save) are the same image.
                let named_configs: HashSet<&Digest> = rows
                    .iter()
                    .filter(|r| named.contains(&r.manifest))
                    .map(|r| &r.config)
                    .collect();
                for row in &rows {
                    if all || !named_configs.contains(&row.config) {
                        db::remove_image(tx, &row.manifest)?;
                        report.images_removed += 1;
                    }
                }
            }
            let (live_blobs, live_snapshots) =
                self.live(tx, &db::image_rows(tx)?, &db::cache_texts(tx)?, &holds)?;
            let mut doomed_blobs = Vec::new();
            match scope {
                Scope::Blobs(candidates) => doomed_blobs.extend(
                    candidates
                        .iter()
                        .filter(|d| !live_blobs.contains(*d))
                        .map(|d| self.blobs.path(d)),
                ),
                Scope::Everything { .. } | Scope::CacheRecords(_) => {
                    for (name, path) in self.blobs.list()? {
                        let keep = format!("sha256:{name}")
                            .parse::<Digest>()
                            .is_ok_and(|d| live_blobs.contains(&d));
                        if !keep {
                            doomed_blobs.push(path);
                        }
                    }
                }
            }
            for (n, path) in doomed_blobs.iter().enumerate() {
                let Ok(meta) = fs::metadata(path) else {
                    continue;
                };
                if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                    tx.execute(
                        "DELETE FROM layer_blobs WHERE digest = ?1",
                        [format!("sha256:{name}")],
                    )?;
                }
                fs::rename(path, trash.join(format!("b{n}"))).at(path)?;
                report.bytes_freed += meta.len();
                report.blobs_removed += 1;
            }
            if let Scope::Everything { .. } | Scope::CacheRecords(_) = scope {
                let mut n = 0;
                // A doomed snapshot directory (if there) goes to the trash.
                let mut discard = |dir: &Path, report: &mut PruneReport| -> Result<()> {
                    if dir.exists() {
                        report.bytes_freed += dir_size(dir);
                        fs::rename(dir, trash.join(format!("s{n}"))).at(dir)?;
                        n += 1;
                    }
                    report.snapshots_removed += 1;
                    Ok(())
                };
                for snap in db::snapshot_rows(tx)? {
                    if live_snapshots.contains(&snap.chain_id) {
                        continue;
                    }
                    tx.execute(
                        "DELETE FROM snapshots WHERE chain_id = ?1",
                        [snap.chain_id.to_string()],
                    )?;
                    discard(&self.snapshots.join(&snap.dir), &mut report)?;
                }
                for id in db::built_snapshot_ids(tx)? {
                    if live_snapshots.contains(&id) {
                        continue;
                    }
                    db::remove_built_snapshot(tx, &id)?;
                    discard(&self.snapshots.join(id.hex()), &mut report)?;
                }
                // Directories no record knows (a crash between rename and
                // record), unless a live process holds them.
                for e in fs::read_dir(&self.snapshots).at(&self.snapshots)?.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let Ok(chain) = format!("sha256:{name}").parse::<Digest>() else {
                        continue;
                    };
                    let known =
                        |sql: &str| tx.query_row(sql, [chain.to_string()], |_| Ok(())).is_ok();
                    if live_snapshots.contains(&chain)
                        || known("SELECT 1 FROM snapshots WHERE chain_id = ?1")
                        || known("SELECT 1 FROM built_snapshots WHERE id = ?1")
                    {
                        continue;
                    }
                    discard(&e.path(), &mut report)?;
                }
            }
            Ok(report)
        });
        let _ = fs::remove_dir_all(&trash);
        result
    }

    /// Blobs and snapshots that the images, the cache records and the
    /// live holds need. Reads only blob files, directories and the given
    /// connection (it runs inside the collector's transaction, with the
    /// database locked).
    fn live(
        &self,
        conn: &rusqlite::Connection,
        images: &[ImageRow],
        cache: &[String],
        holds: &HashSet<(Kind, Digest)>,
    ) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut snapshots: HashSet<Digest> = HashSet::new();
        let mut stacks: Vec<Vec<Layer>> = Vec::new();
        for row in images {
            blobs.insert(row.manifest.clone());
            blobs.insert(row.config.clone());
            match self
                .image_from_blobs(row)
                .and_then(|img: Image| img.layers())
            {
                Ok(layers) => stacks.push(layers.into_iter().map(Layer::Tar).collect()),
                // An image whose config cannot be read still keeps the
                // layers its manifest names (check reports the damage).
                Err(_) => blobs.extend(self.manifest_layer_digests(&row.manifest)),
            }
        }
        for text in cache {
            if let Some(stack) = build::stack_from_text(text) {
                stacks.push(stack.into_iter().flatten().collect());
            }
        }
        // Layers known by diff ID: their blobs, the built snapshots their
        // tars come from, and the blobs made from those (kept for the next
        // push).
        let mut diff_ids: HashSet<Digest> = HashSet::new();
        for layers in &stacks {
            for (n, layer) in layers.iter().enumerate() {
                match layer {
                    Layer::Built { snapshot } => {
                        snapshots.insert(snapshot.clone());
                    }
                    Layer::Tar(l) => {
                        blobs.insert(l.digest.clone());
                        diff_ids.insert(l.diff_id.clone());
                        snapshots.extend(build::chain_id(layers[..=n].iter().map(|l| l.ident())));
                    }
                }
            }
        }
        for diff_id in &diff_ids {
            for (snapshot, _) in db::tar_sources(conn, diff_id)? {
                snapshots.insert(snapshot);
            }
        }
        for (kind, d) in holds {
            match kind {
                Kind::Blob => blobs.insert(d.clone()),
                Kind::Snapshot => snapshots.insert(d.clone()),
            };
        }
        let mut stmt = conn.prepare(
            "SELECT layer_blobs.digest, layer_tars.snapshot FROM layer_blobs
             JOIN layer_tars ON layer_tars.diff_id = layer_blobs.diff_id",
        )?;
        let made = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in made {
            let (blob, snapshot) = row?;
            if let (Ok(blob), Ok(snapshot)) = (blob.parse::<Digest>(), snapshot.parse::<Digest>()) {
                if snapshots.contains(&snapshot) {
                    blobs.insert(blob);
                }
            }
        }
        Ok((blobs, snapshots))
    }

    fn manifest_layer_digests(&self, manifest: &Digest) -> Vec<Digest> {
        let Ok(bytes) = self.blobs.read(manifest) else {
            return Vec::new();
        };
        let Ok(m) = serde_json::from_slice::<oci_spec::image::ImageManifest>(&bytes) else {
            return Vec::new();
        };
        m.layers()
            .iter()
            .filter_map(|l| crate::image::kiln_digest(l.digest(), "layer").ok())
            .collect()
    }

    /// Every blob some image or build cache record needs (not counting
    /// holds): what `system df` calls in use.
    pub(crate) fn referenced_blobs(&self) -> Result<HashSet<Digest>> {
        self.db().immediate(|tx| {
            let images = db::image_rows(tx)?;
            let cache = db::cache_texts(tx)?;
            Ok(self.live(tx, &images, &cache, &HashSet::new())?.0)
        })
    }
}
