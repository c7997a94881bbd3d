//! What `kiln build` needs from the store: turning a container's upper
//! directory into a layer and a snapshot, the snapshot chain of a layer
//! stack, the cache index (cache key → layer stack) and committing a built
//! image from its layers and config.
//!
//! A layer stack may hold empty entries (`None`): a step that changed
//! nothing still takes a place, so the exporter can mark its history entry
//! `empty_layer` instead of writing an empty tar.

use crate::db::SnapshotRow;
use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::image::{canonical_json, descriptor, Image, LayerRef, MEDIA_OCI_CONFIG};
use crate::layer::{self, WriteOptions};
use crate::lease::Kind;
use crate::{blobs, time, Reference, Store};
use oci_spec::image::{ImageManifestBuilder, SCHEMA_VERSION};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

/// One place in a built filesystem's layer stack; `None` = the step
/// changed nothing.
pub type LayerStack = Vec<Option<LayerRef>>;

/// ChainID of a stack (OCI image spec): the identity of the snapshot that
/// holds all of these layers.
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
fn stack_text(stack: &[Option<LayerRef>]) -> String {
    serde_json::to_value(stack)
        .expect("a layer stack is plain data")
        .to_string()
}

/// A stored stack; None if the record cannot be read.
pub(crate) fn stack_from_text(text: &str) -> Option<LayerStack> {
    serde_json::from_str(text).ok()
}

impl Store {
    /// A fresh directory for work in progress (a container's state, a
    /// file op's upper dir). Its name carries our pid, so one left by a
    /// process that died is swept at the next open.
    pub fn scratch_dir(&self, what: &str) -> Result<PathBuf> {
        let dir = blobs::temp_path(&self.snapshots, what);
        fs::create_dir_all(&dir).at(&dir)?;
        Ok(dir)
    }

    /// Snapshot directories (base first) for the non-empty layers of a
    /// stack, unpacking any that are missing.
    pub fn snapshot_chain(&self, stack: &[Option<LayerRef>]) -> Result<Vec<PathBuf>> {
        let mut parent: Option<Digest> = None;
        let mut chain = Vec::new();
        for layer in stack.iter().flatten() {
            let id = chain_id(parent.iter().chain([&layer.diff_id])).expect("non-empty");
            chain.push((layer, id.clone(), parent.replace(id)));
        }
        // One transaction holds the whole chain (each snapshot and the blob
        // it comes from); `ensure_snapshot` then finds them held.
        let items: Vec<(Kind, Digest)> = chain
            .iter()
            .flat_map(|(l, id, _)| [(Kind::Snapshot, id.clone()), (Kind::Blob, l.digest.clone())])
            .collect();
        self.keeper.hold(&items, &|_, _| true)?;
        chain
            .iter()
            .map(|(layer, id, parent)| self.ensure_snapshot(layer, id, parent.as_ref()))
            .collect()
    }

    /// Turns `dir` (a container's upper directory, or a file op's) into a
    /// layer on top of `below`: writes the layer blob, then moves `dir`
    /// into place as its snapshot. Returns `None` (and removes `dir`) when
    /// `dir` is empty: the step changed nothing.
    pub fn commit_diff(
        &self,
        dir: &Path,
        below: &[Option<LayerRef>],
        opts: WriteOptions,
    ) -> Result<Option<LayerRef>> {
        let empty = fs::read_dir(dir).at(dir)?.next().is_none();
        if empty {
            let _ = fs::remove_dir(dir);
            return Ok(None);
        }
        let layer: LayerRef = layer::write_layer(&self.blobs, dir, opts)?.into();
        let parent = chain_id(below.iter().flatten().map(|l| &l.diff_id));
        let chain = chain_id(parent.iter().chain([&layer.diff_id])).expect("non-empty");
        let final_dir = self.snapshots.join(chain.hex());
        // Held before it appears (see lease.rs).
        self.keeper.hold_new(Kind::Snapshot, &chain)?;
        let known = self.db().snapshot(&chain)?.is_some() && final_dir.is_dir();
        if known {
            fs::remove_dir_all(dir).at(dir)?;
        } else {
            match fs::rename(dir, &final_dir) {
                Ok(()) => {}
                // Another build made the same snapshot first: keep theirs.
                Err(_) if final_dir.is_dir() => fs::remove_dir_all(dir).at(dir)?,
                Err(e) => return Err(e).at(&final_dir),
            }
            self.db().add_snapshot(&SnapshotRow {
                chain_id: chain.clone(),
                parent,
                diff_id: layer.diff_id.clone(),
                dir: chain.hex(),
                size: layer.size,
            })?;
        }
        Ok(Some(layer))
    }

    /// The cached result for a build step's cache key, if every blob it
    /// needs is still here.
    pub fn cache_get(&self, key: &str) -> Result<Option<LayerStack>> {
        let row = self.db().cache_get(key)?;
        let Some((text, _)) = row else {
            return Ok(None);
        };
        let Some(stack) = stack_from_text(&text) else {
            return Ok(None);
        };
        // Held with the check, in one transaction: a hit stays a hit.
        let digests: Vec<Digest> = stack.iter().flatten().map(|l| l.digest.clone()).collect();
        match self.hold_blobs(&digests) {
            Ok(()) => Ok(Some(stack)),
            Err(StoreError::BlobMissing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// When the result under a cache key was first recorded (unix seconds).
    pub fn cache_created(&self, key: &str) -> Result<Option<i64>> {
        Ok(self.db().cache_get(key)?.map(|(_, created)| created))
    }

    /// Records a build step's result under its cache key.
    pub fn cache_put(&self, key: &str, stack: &[Option<LayerRef>]) -> Result<()> {
        self.db().cache_put(key, &stack_text(stack), time::now())
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
    pub fn cache_import(&self, key: &str, stack: &[Option<LayerRef>], created: i64) -> Result<()> {
        for l in stack.iter().flatten() {
            if !self.blobs.contains(&l.digest) {
                return Err(StoreError::BlobMissing {
                    digest: l.digest.to_string(),
                });
            }
        }
        self.db().cache_put(key, &stack_text(stack), created)
    }

    /// Stores a built image: `config` is the whole image config except
    /// `rootfs`, which is filled from `layers`. Returns the image, named.
    pub fn commit_built_image(
        &self,
        mut config: Value,
        layers: &[LayerRef],
        names: &[Reference],
    ) -> Result<Image> {
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
        config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
        let config_bytes = canonical_json(&config);
        let config_digest = self.blobs.put(&config_bytes)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(oci_spec::image::MediaType::ImageManifest)
            .config(descriptor(
                MEDIA_OCI_CONFIG,
                &config_digest,
                config_bytes.len() as u64,
            ))
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
            .map_err(|e| StoreError::Invalid(format!("manifest: {e}")))?;
        self.commit_image(&canonical_json(&manifest), names)
    }

    /// The layers of an image, as a stack. Its blobs are held (an image
    /// removed and pruned since it was resolved gives BlobMissing).
    pub fn image_stack(&self, image: &Image) -> Result<LayerStack> {
        let layers = image.layers()?;
        let mut digests = vec![image.manifest_digest.clone(), image.config_digest.clone()];
        digests.extend(layers.iter().map(|l| l.digest.clone()));
        self.hold_blobs(&digests)?;
        Ok(layers.into_iter().map(Some).collect())
    }
}

/// The layer stack's non-empty layers.
pub fn stack_layers(stack: &[Option<LayerRef>]) -> Vec<LayerRef> {
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
        let stack = vec![Some(l.clone()), None];
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
    }
}
