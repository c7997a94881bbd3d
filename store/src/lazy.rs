//! Blobs on demand. A build step's result is a built snapshot (build.rs);
//! its tar exists only as a digest until something needs bytes:
//!
//! - committing an image needs each layer's diff ID: the tar is streamed
//!   through a hasher (no file, no compression) and remembered per
//!   (snapshot, `SOURCE_DATE_EPOCH`) in `layer_tars`. The image's manifest
//!   names the uncompressed tar (its digest *is* the diff ID), so the
//!   image has its manifest digest at once, with no blob behind it yet;
//! - `push`, `save`, `-o type=oci|docker` and `--cache-to` need blobs:
//!   [`Store::materialize`] compresses each layer (all of them at once,
//!   each on all cores) from its snapshot, checks that the tar still has
//!   its diff ID, and remembers the blob per (diff ID, media type) in
//!   `layer_blobs`, so a second push compresses nothing.

use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::image::{canonical_json, Image, LayerRef};
use crate::layer::{self, Compression, WriteOptions, MEDIA_TAR};
use crate::lease::Kind;
use crate::{db, Layer, Reference, Store};
use std::collections::HashSet;
use std::path::PathBuf;

/// How `layer_tars` stores "no epoch".
fn epoch_key(epoch: Option<u64>) -> i64 {
    epoch.map_or(-1, |e| e.min(i64::MAX as u64) as i64)
}

fn epoch_of(key: i64) -> Option<u64> {
    (key >= 0).then_some(key as u64)
}

impl Store {
    /// A built snapshot's directory (already held by the caller).
    pub(crate) fn built_dir(&self, id: &Digest) -> Result<PathBuf> {
        let dir = self.snapshots.join(id.hex());
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(StoreError::SnapshotMissing { id: id.to_string() })
        }
    }

    /// A built snapshot whose tar has this diff ID, held, with the epoch
    /// that tar was written with; None if there is none.
    /// Directories in `skip` are not taken (a chain using it already).
    pub(crate) fn built_source(
        &self,
        diff_id: &Digest,
        skip: &HashSet<PathBuf>,
    ) -> Result<Option<(PathBuf, Option<u64>)>> {
        let sources = self.db().tar_sources(diff_id)?;
        for (snapshot, epoch) in sources {
            if skip.contains(&self.snapshots.join(snapshot.hex())) {
                continue;
            }
            let present = self
                .keeper
                .hold(&[(Kind::Snapshot, snapshot.clone())], &|_, d| {
                    self.snapshots.join(d.hex()).is_dir()
                })?;
            if present[0] {
                return Ok(Some((self.snapshots.join(snapshot.hex()), epoch_of(epoch))));
            }
        }
        Ok(None)
    }

    /// Whether a layer blob an image names is here, or can be made from a
    /// built snapshot. Runs inside a transaction (`conn`).
    pub(crate) fn layer_available(&self, conn: &rusqlite::Connection, digest: &Digest) -> bool {
        self.blobs.path(digest).is_file()
            || db::tar_sources(conn, digest).is_ok_and(|sources| {
                sources
                    .iter()
                    .any(|(s, _)| self.snapshots.join(s.hex()).is_dir())
            })
    }

    /// The diff ID and size of a built snapshot's tar with `epoch`.
    fn built_tar(&self, snapshot: &Digest, epoch: Option<u64>) -> Result<(Digest, u64)> {
        let key = epoch_key(epoch);
        let known = self.db().layer_tar(snapshot, key)?;
        if let Some(known) = known {
            return Ok(known);
        }
        let dir = self.built_dir(snapshot)?;
        let (diff_id, size) = layer::tar_digest(&dir, epoch)?;
        self.db().put_layer_tar(snapshot, key, &diff_id, size)?;
        Ok((diff_id, size))
    }

    /// Each layer as its tar: a built one's diff ID is computed (all at
    /// once) and it is named by its uncompressed tar, whose blob is made on
    /// demand.
    pub(crate) fn layer_tars(&self, layers: &[Layer], epoch: Option<u64>) -> Result<Vec<LayerRef>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = layers
                .iter()
                .map(|l| {
                    s.spawn(move || match l {
                        Layer::Tar(t) => Ok(t.clone()),
                        Layer::Built { snapshot } => {
                            let (diff_id, size) = self.built_tar(snapshot, epoch)?;
                            Ok(LayerRef {
                                digest: diff_id.clone(),
                                diff_id,
                                size,
                                media_type: MEDIA_TAR.to_string(),
                            })
                        }
                    })
                })
                .collect();
            handles.into_iter().map(join).collect()
        })
    }

    /// A layer as a blob that exists: itself when its blob is here, else
    /// the blob made from its built snapshot in `compression` (made now,
    /// or found from an earlier time). The blob is held.
    pub fn layer_blob(&self, l: &LayerRef, compression: Compression) -> Result<LayerRef> {
        if self.blobs.contains(&l.digest) {
            return Ok(l.clone());
        }
        let media_type = compression.media_type();
        // (The guard must drop before `contains` locks the database.)
        let made = self.db().layer_blob(&l.diff_id, media_type)?;
        if let Some((digest, size)) = made {
            if self.blobs.contains(&digest) {
                return Ok(LayerRef {
                    digest,
                    diff_id: l.diff_id.clone(),
                    size,
                    media_type: media_type.to_string(),
                });
            }
        }
        let Some((dir, epoch)) = self.built_source(&l.diff_id, &HashSet::new())? else {
            return Err(StoreError::BlobMissing {
                digest: l.digest.to_string(),
            });
        };
        let opts = WriteOptions {
            compression,
            source_date_epoch: epoch,
        };
        let blob = layer::write_layer(&self.blobs, &dir, opts)?;
        if blob.diff_id != l.diff_id {
            // The snapshot changed since its tar was hashed: never give
            // bytes that are not the layer the image names.
            return Err(StoreError::DigestMismatch {
                what: format!("built snapshot {} (layer tar)", dir.display()),
                expected: l.diff_id.to_string(),
                actual: blob.diff_id.to_string(),
            });
        }
        self.db()
            .put_layer_blob(&blob.diff_id, media_type, &blob.digest, blob.size)?;
        Ok(blob.into())
    }

    /// Any layer of a stack as a blob (for cache exports): a built one's
    /// tar with `epoch`, compressed; an image layer's blob, made if need
    /// be. Held.
    pub fn stack_layer_blob(
        &self,
        layer: &Layer,
        epoch: Option<u64>,
        compression: Compression,
    ) -> Result<LayerRef> {
        let tar = self
            .layer_tars(std::slice::from_ref(layer), epoch)?
            .remove(0);
        self.layer_blob(&tar, compression)
    }

    /// The image with every layer blob present: itself when they all are,
    /// else the same image (same config, so the same image ID) under a
    /// manifest naming the blobs made in `compression`, which takes over
    /// the image's names. Layers compress at once.
    pub fn materialize(&self, image: &Image, compression: Compression) -> Result<Image> {
        let layers = image.layers()?;
        if layers.iter().all(|l| self.blobs.contains(&l.digest)) {
            return Ok(image.clone());
        }
        let blobs: Vec<LayerRef> = std::thread::scope(|s| {
            let handles: Vec<_> = layers
                .iter()
                .map(|l| s.spawn(move || self.layer_blob(l, compression)))
                .collect();
            handles.into_iter().map(join).collect::<Result<_>>()
        })?;
        let config = image.manifest.config();
        let manifest = crate::build::image_manifest(&image.config_digest, config.size(), &blobs)?;
        // The names move to the manifest with blobs (what a push gives the
        // registry, so `images` shows the digest users see there); the old
        // one stays, unnamed, as another manifest of the same image.
        let names: Vec<Reference> = image
            .names
            .iter()
            .filter_map(|n| Reference::parse(n).ok())
            .collect();
        self.commit_image(&canonical_json(&manifest), &names)
    }
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join()
        .unwrap_or_else(|_| Err(StoreError::Invalid("a layer worker panicked".into())))
}
