//! What `kiln build` needs from the store: turning a container's upper
//! directory into a snapshot, the snapshot chain of a layer stack, the
//! cache index (cache key → layer stack) and committing a built image from
//! its layers and config.
//!
//! A step's result is a *built snapshot*: its upper directory renamed into
//! `snapshots/`, with no tar and no blob. The image commit computes each
//! such layer's diff ID by streaming its tar through a hasher; compressed
//! blobs are made only when something needs bytes (`lazy.rs`).
//!
//! A layer stack may hold empty entries (`None`): a step that changed
//! nothing still takes a place, so the exporter can mark its history entry
//! `empty_layer` instead of writing an empty tar.

use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::image::{canonical_json, descriptor, Image, LayerRef, MEDIA_OCI_CONFIG};
use crate::layer::Compression;
use crate::lease::Kind;
use crate::{db, time, Reference, Store};
use oci_spec::image::{ImageManifestBuilder, SCHEMA_VERSION};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// One layer of a built filesystem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Layer {
    /// A layer known by its tar (diff ID): an image's, a pull's, an
    /// import's. Its blob may still be to make: a built image's layers
    /// name their uncompressed tar, made on demand from the snapshot.
    Tar(LayerRef),
    /// A build step's result: a snapshot directory, with no tar yet.
    Built { snapshot: Digest },
}

impl Layer {
    /// What names this layer in a chain: its diff ID, or for a built
    /// layer its snapshot id (never equal to a diff ID).
    pub fn ident(&self) -> &Digest {
        match self {
            Layer::Tar(l) => &l.diff_id,
            Layer::Built { snapshot } => snapshot,
        }
    }
}

/// One place in a built filesystem's layer stack; `None` = the step
/// changed nothing.
pub type LayerStack = Vec<Option<Layer>>;

/// ChainID of a stack (OCI image spec): the identity of the snapshot that
/// holds all of these layers. Over [`Layer::ident`]s it names stacks with
/// built layers too; for image layers alone it is the OCI ChainID.
pub fn chain_id<'a>(diff_ids: impl IntoIterator<Item = &'a Digest>) -> Option<Digest> {
    let mut chain: Option<Digest> = None;
    for d in diff_ids {
        chain = Some(match chain {
            None => d.clone(),
            Some(p) => Digest::of(format!("{p} {d}").as_bytes()),
        });
    }
    chain
}

/// A layer stack as the cache index stores it. Going through a `Value`
/// sorts the keys, so equal stacks always give equal text (`cache_put`
/// compares it to keep `created`).
fn stack_text(stack: &[Option<Layer>]) -> String {
    serde_json::to_value(stack)
        .expect("a layer stack is plain data")
        .to_string()
}

/// A stored stack; None if the record cannot be read.
pub(crate) fn stack_from_text(text: &str) -> Option<LayerStack> {
    serde_json::from_str(text).ok()
}

/// A fresh id for a built snapshot: unique to this process and moment
/// (what is in it is only known once its tar is hashed).
fn fresh_snapshot_id(lease: &str) -> Digest {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Digest::of(format!("kiln built snapshot {lease} {nanos} {n}").as_bytes())
}

impl Store {
    /// A fresh directory for work in progress (a container's state, a
    /// file op's upper dir). Its name carries our pid, so one left by a
    /// process that died is swept at the next open.
    pub fn scratch_dir(&self, what: &str) -> Result<PathBuf> {
        let dir = crate::blobs::temp_path(&self.snapshots, what);
        fs::create_dir_all(&dir).at(&dir)?;
        Ok(dir)
    }

    /// Snapshot directories (base first) for the non-empty layers of a
    /// stack, unpacking image layers that are missing.
    pub fn snapshot_chain(&self, stack: &[Option<Layer>]) -> Result<Vec<PathBuf>> {
        let mut parent: Option<Digest> = None;
        let mut chain = Vec::new();
        for layer in stack.iter().flatten() {
            let id = chain_id(parent.iter().chain([layer.ident()])).expect("non-empty");
            chain.push((layer, id.clone(), parent.replace(id)));
        }
        self.hold_stack(stack)?;
        let mut dirs = Vec::with_capacity(chain.len());
        let mut unpack = Vec::new();
        // overlayfs refuses a directory twice among the lowers (ELOOP): a
        // layer that appears twice (equal diff IDs, a merge of the same
        // layer) is unpacked again from its blob, made if need be.
        let mut used: HashSet<PathBuf> = HashSet::new();
        for (layer, id, parent) in &chain {
            let dir = match layer {
                Layer::Built { snapshot } => Some(self.built_dir(snapshot)?),
                Layer::Tar(l) => self.built_source(&l.diff_id, &used)?.map(|(d, _)| d),
            };
            match dir.filter(|d| !used.contains(d)) {
                Some(dir) => {
                    used.insert(dir.clone());
                    dirs.push(Some(dir));
                }
                None => {
                    let blob = self.stack_layer_blob(layer, None, Compression::Gzip)?;
                    unpack.push((dirs.len(), blob, id, parent.as_ref()));
                    dirs.push(None);
                }
            }
        }
        // Missing image layers unpack at once, each into its own directory.
        let unpacked: Vec<(usize, Result<PathBuf>)> = std::thread::scope(|s| {
            let handles: Vec<_> = unpack
                .iter()
                .map(|(at, l, id, parent)| {
                    (*at, s.spawn(move || self.ensure_snapshot(l, id, *parent)))
                })
                .collect();
            handles
                .into_iter()
                .map(|(at, h)| {
                    let r = h.join().unwrap_or_else(|_| {
                        Err(StoreError::Invalid("unpacking a layer panicked".into()))
                    });
                    (at, r)
                })
                .collect()
        });
        for (at, dir) in unpacked {
            dirs[at] = Some(dir?);
        }
        Ok(dirs.into_iter().flatten().collect())
    }

    /// Holds everything a stack needs, in one transaction: each built
    /// snapshot, each image layer's blob (or, for a layer whose blob is
    /// made on demand, the snapshot it is made from). Errors name the
    /// first thing already gone.
    pub(crate) fn hold_stack(&self, stack: &[Option<Layer>]) -> Result<()> {
        let items: Vec<(Kind, Digest)> = stack
            .iter()
            .flatten()
            .map(|l| match l {
                Layer::Built { snapshot } => (Kind::Snapshot, snapshot.clone()),
                Layer::Tar(t) => (Kind::Blob, t.digest.clone()),
            })
            .collect();
        let present = self.keeper.hold(&items, &|kind, d| match kind {
            Kind::Snapshot => self.snapshots.join(d.hex()).is_dir(),
            Kind::Blob => self.blobs.path(d).is_file(),
        })?;
        for (layer, present) in stack.iter().flatten().zip(present) {
            match layer {
                _ if present => {}
                Layer::Built { snapshot } => {
                    return Err(StoreError::SnapshotMissing {
                        id: snapshot.to_string(),
                    })
                }
                Layer::Tar(l) => {
                    if self
                        .built_source(&l.diff_id, &Default::default())?
                        .is_none()
                    {
                        return Err(StoreError::BlobMissing {
                            digest: l.digest.to_string(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Turns `dir` (a container's upper directory, or a file op's) into a
    /// built snapshot: renamed into `snapshots/`, nothing copied, no tar.
    /// Returns `None` (and removes `dir`) when `dir` is empty: the step
    /// changed nothing. Durable once [`Store::cache_commit`] has synced.
    pub fn commit_diff(&self, dir: &Path) -> Result<Option<Layer>> {
        let empty = fs::read_dir(dir).at(dir)?.next().is_none();
        if empty {
            let _ = fs::remove_dir(dir);
            return Ok(None);
        }
        let id = fresh_snapshot_id(&self.keeper.lease.id);
        let final_dir = self.snapshots.join(id.hex());
        // Held before it appears (see lease.rs).
        self.keeper.hold_new(Kind::Snapshot, &id)?;
        fs::rename(dir, &final_dir).at(&final_dir)?;
        // A crash before this line leaves a directory no record knows,
        // which the next prune removes.
        self.db().add_built_snapshot(&id, time::now())?;
        Ok(Some(Layer::Built { snapshot: id }))
    }

    /// The cached result for a build step's cache key, if everything it
    /// needs is still here (then held: a hit stays a hit).
    pub fn cache_get(&self, key: &str) -> Result<Option<LayerStack>> {
        let row = self.db().cache_get(key)?;
        let Some((text, _)) = row else {
            return Ok(None);
        };
        let Some(stack) = stack_from_text(&text) else {
            return Ok(None);
        };
        match self.hold_stack(&stack) {
            Ok(()) => Ok(Some(stack)),
            Err(StoreError::BlobMissing { .. } | StoreError::SnapshotMissing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// When the result under a cache key was first recorded (unix seconds).
    pub fn cache_created(&self, key: &str) -> Result<Option<i64>> {
        Ok(self.db().cache_get(key)?.map(|(_, created)| created))
    }

    /// Records build steps' results under their cache keys, in one
    /// transaction, after syncing the filesystem their snapshots are on:
    /// a record never outlives (a power cut) the files it names.
    pub fn cache_commit(&self, records: &[(String, LayerStack)]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        // The whole filesystem: snapshots and cache-mount directories
        // alike (build steps' own fsyncs were answered without syncing).
        let dir = fs::File::open(&self.snapshots).at(&self.snapshots)?;
        rustix::fs::syncfs(&dir)
            .map_err(std::io::Error::from)
            .at(&self.snapshots)?;
        let now = time::now();
        self.db().immediate(|tx| {
            for (key, stack) in records {
                db::cache_put(tx, key, &stack_text(stack), now)?;
            }
            Ok(())
        })
    }

    /// What a build step was when it last ran (JSON; see `--explain`).
    pub fn step_info(&self, step: &str) -> Result<Option<String>> {
        self.db().step_info(step)
    }

    pub fn set_step_info(&self, step: &str, info: &str) -> Result<()> {
        self.db().set_step_info(step, info)
    }

    /// Records a result that came from another machine's cache export,
    /// keeping the time it was first made there (the image's `created`,
    /// so both machines build the same image ID). Every blob must be here.
    pub fn cache_import(&self, key: &str, layers: &[Option<LayerRef>], created: i64) -> Result<()> {
        for l in layers.iter().flatten() {
            if !self.blobs.contains(&l.digest) {
                return Err(StoreError::BlobMissing {
                    digest: l.digest.to_string(),
                });
            }
        }
        let stack: LayerStack = layers.iter().map(|l| l.clone().map(Layer::Tar)).collect();
        self.db().cache_put(key, &stack_text(&stack), created)
    }

    /// Stores a built image: `config` is the whole image config except
    /// `rootfs`, which is filled from `layers`. A built layer's diff ID is
    /// computed here, streaming its tar (mtimes clamped to `epoch`), and
    /// the manifest names its uncompressed tar: the blob is made only if
    /// something needs its bytes ([`Store::materialize`]). Returns the
    /// image, named.
    pub fn commit_built_image(
        &self,
        mut config: Value,
        layers: &[Layer],
        epoch: Option<u64>,
        names: &[Reference],
    ) -> Result<Image> {
        let layers = self.layer_tars(layers, epoch)?;
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
        config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
        let config_bytes = canonical_json(&config);
        let config_digest = self.blobs.put(&config_bytes)?;
        let manifest = image_manifest(&config_digest, config_bytes.len() as u64, &layers)?;
        self.commit_image(&canonical_json(&manifest), names)
    }

    /// `kiln commit`: a container's changes (`upper`, its overlay upper
    /// directory) as one new layer on top of `base`'s, under `config`
    /// (the whole image config but `rootfs`).
    pub fn commit_container(
        &self,
        base: &Image,
        upper: &Path,
        config: Value,
        names: &[Reference],
    ) -> Result<Image> {
        let opts = crate::layer::WriteOptions {
            compression: crate::layer::Compression::Gzip,
            source_date_epoch: None,
        };
        let blob = crate::layer::write_layer(&self.blobs, upper, opts)?;
        let mut layers: Vec<Layer> = base.layers()?.into_iter().map(Layer::Tar).collect();
        layers.push(Layer::Tar(blob.into()));
        self.commit_built_image(config, &layers, None, names)
    }

    /// The layers of an image, as a stack. What they need is held (an
    /// image removed and pruned since it was resolved gives BlobMissing).
    pub fn image_stack(&self, image: &Image) -> Result<LayerStack> {
        self.hold_blobs(&[image.manifest_digest.clone(), image.config_digest.clone()])?;
        let stack: LayerStack = image
            .layers()?
            .into_iter()
            .map(|l| Some(Layer::Tar(l)))
            .collect();
        self.hold_stack(&stack)?;
        Ok(stack)
    }
}

/// An OCI manifest for a config and its layers.
pub(crate) fn image_manifest(
    config_digest: &Digest,
    config_size: u64,
    layers: &[LayerRef],
) -> Result<oci_spec::image::ImageManifest> {
    ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(oci_spec::image::MediaType::ImageManifest)
        .config(descriptor(MEDIA_OCI_CONFIG, config_digest, config_size))
        .layers(
            layers
                .iter()
                .map(|l| {
                    // An OCI manifest names OCI layer types: a docker
                    // base layer is the same bytes under its OCI name.
                    let mt = crate::layer::Compression::from_media_type(&l.media_type)
                        .map_or(l.media_type.as_str(), |c| c.media_type());
                    descriptor(mt, &l.digest, l.size)
                })
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(|e| StoreError::Invalid(format!("manifest: {e}")))
}

/// The layer stack's non-empty layers.
pub fn stack_layers(stack: &[Option<Layer>]) -> Vec<Layer> {
    stack.iter().flatten().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index's text form is what earlier kiln versions wrote, so a
    /// record's `created` survives an upgrade (`cache_put` compares text).
    #[test]
    fn stack_text_is_stable_and_round_trips() {
        let l = LayerRef {
            digest: Digest::of(b"a"),
            diff_id: Digest::of(b"b"),
            size: 7,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        };
        let stack = vec![Some(Layer::Tar(l.clone())), None];
        let text = stack_text(&stack);
        assert_eq!(
            text,
            format!(
                r#"[{{"diff_id":"{}","digest":"{}","media_type":"application/vnd.oci.image.layer.v1.tar+gzip","size":7}},null]"#,
                l.diff_id, l.digest
            )
        );
        assert_eq!(stack_from_text(&text), Some(stack));
        assert_eq!(stack_from_text("[{\"digest\":1}]"), None);
        let built = vec![Some(Layer::Built {
            snapshot: Digest::of(b"c"),
        })];
        let text = stack_text(&built);
        assert_eq!(text, format!(r#"[{{"snapshot":"{}"}}]"#, Digest::of(b"c")));
        assert_eq!(stack_from_text(&text), Some(built));
    }
}
