//! Exporters: the solved stack as an image in the store (optionally
//! pushed, optionally also an OCI/docker archive), a root filesystem tar
//! or a local directory; the image config and history; the build cache
//! (`--cache-to`: its records, inline in the image or to a directory or a
//! registry). Every file output is written to a temp name and renamed.

use crate::error::BuildError;
use crate::fileop;
use crate::remote_cache::{self, CacheConfig, CacheTo, Exported, Location};
use crate::request::Output;
use kiln_executor::view;
use kiln_frontend_dockerfile::lower::{LayerSlot, Lowered};
use kiln_solver::{CacheKey, MountKind, Op, VertexId};
use kiln_store::layer::Compression;
use kiln_store::{Image, Layer, LayerRef, LayerStack, Reference, Store};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The cache records a `--cache-to` exports: `max` = every step the target
/// needed, else the target's own chain (its filesystem's first inputs).
/// A step this store never recorded (the build hit a later step in an
/// imported cache) is exported as imported, if its blobs are here: so a
/// cache passed on stays whole, and inline records stay the same.
pub(crate) fn cache_records(
    store: &Store,
    lowered: &Lowered,
    keys: &[CacheKey],
    max: bool,
    imports: &[remote_cache::Imported],
    epoch: Option<u64>,
) -> Vec<remote_cache::CacheRecord> {
    let def = &lowered.definition;
    let ids: Vec<VertexId> = if max {
        kiln_solver::needed(def, lowered.target)
            .into_iter()
            .collect()
    } else {
        let mut chain = Vec::new();
        let mut at = Some(lowered.target);
        while let Some(id) = at {
            chain.push(id);
            let v = def.vertex(id);
            at = match v.op {
                Op::Source(_) => None,
                _ => v.inputs.first().copied(),
            };
        }
        chain
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for id in ids {
        let v = def.vertex(id);
        let key = keys[id.0].hex();
        if matches!(v.op, Op::Source(_)) || !seen.insert(key.clone()) {
            continue;
        }
        let Some(stack) = store.cache_get(&key).ok().flatten() else {
            let imported = imports.iter().find_map(|i| i.record(&key)).filter(|r| {
                r.layers
                    .iter()
                    .flatten()
                    .all(|l| store.blobs().contains(&l.digest))
            });
            out.extend(imported.cloned());
            continue;
        };
        let created = store.cache_created(&key).ok().flatten().unwrap_or(0);
        // A record travels as blobs: built layers are compressed now. One
        // that cannot be (its snapshot is gone) is left out, as a miss.
        let Some(layers) = record_blobs(store, &stack, epoch) else {
            continue;
        };
        out.push(remote_cache::CacheRecord {
            key,
            layers,
            created,
            inputs: v.inputs.iter().map(|i| keys[i.0].hex()).collect(),
            step: lowered
                .steps
                .get(&id)
                .map(|s| s.label.clone())
                .unwrap_or_else(|| v.name.clone()),
        });
    }
    out
}

/// A stack's layers as blobs (made now where they are built layers).
fn record_blobs(
    store: &Store,
    stack: &LayerStack,
    epoch: Option<u64>,
) -> Option<Vec<Option<LayerRef>>> {
    stack
        .iter()
        .map(|l| match l {
            None => Some(None),
            Some(layer) => store
                .stack_layer_blob(layer, epoch, Compression::Gzip)
                .ok()
                .map(Some),
        })
        .collect()
}

/// The `RUN --mount=type=cache` ids the target's steps use, with their
/// directories.
pub(crate) fn cache_mounts(store: &Store, lowered: &Lowered) -> Vec<(String, PathBuf)> {
    let def = &lowered.definition;
    let mut ids: Vec<String> = kiln_solver::needed(def, lowered.target)
        .into_iter()
        .filter_map(|id| match &def.vertex(id).op {
            Op::Exec(x) => Some(x.mounts.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|m| match m.kind {
            MountKind::Cache { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let dir = crate::ops::cache_mount_dir(store, &id);
            (id, dir)
        })
        .collect()
}

/// The image config of a build: the frontend's config plus history, with
/// each step's history entry marked empty when its layer place is empty.
pub(crate) fn image_config(
    lowered: &Lowered,
    stack: &LayerStack,
    created: &str,
) -> (Value, Vec<Layer>) {
    let steps = lowered
        .history
        .iter()
        .filter(|h| h.slot == LayerSlot::Step)
        .count();
    let step_layers = &stack[stack.len().saturating_sub(steps)..];
    let mut next_step = step_layers.iter();
    let mut history = Vec::new();
    for h in &lowered.history {
        match (h.slot, &h.raw) {
            (LayerSlot::Step, _) => {
                let empty = next_step.next().is_none_or(|l| l.is_none());
                let mut e = json!({
                    "created": created,
                    "created_by": h.created_by,
                    "comment": "kiln",
                });
                if empty {
                    e["empty_layer"] = json!(true);
                }
                history.push(e);
            }
            (_, Some(raw)) => history.push(raw.clone()),
            (LayerSlot::None, None) => history.push(json!({
                "created": created,
                "created_by": h.created_by,
                "comment": "kiln",
                "empty_layer": true,
            })),
            (LayerSlot::Base, None) => {}
        }
    }
    let mut config = lowered.config.clone();
    config["created"] = Value::String(created.to_string());
    config["history"] = Value::Array(history);
    (config, kiln_store::stack_layers(stack))
}

/// Writes `file` through a temp file beside it, renamed into place only
/// when complete: never a half-written output. `-` is stdout, written as
/// it comes (a pipe has no rename; the reader sees the build fail).
pub(crate) fn write_atomically(
    file: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<(), BuildError>,
) -> Result<(), BuildError> {
    if file == Path::new("-") {
        use std::os::fd::AsFd;
        let fd = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(BuildError::output("stdout"))?;
        let mut out = std::fs::File::from(fd);
        return write(&mut out);
    }
    let tmp = PathBuf::from(format!(
        "{}.kiln-tmp-{}",
        file.display(),
        std::process::id()
    ));
    let result = std::fs::File::create(&tmp)
        .map_err(BuildError::output(file.display().to_string()))
        .and_then(|mut f| {
            write(&mut f)?;
            f.sync_all()
                .map_err(BuildError::output(file.display().to_string()))
        })
        .and_then(|()| {
            std::fs::rename(&tmp, file).map_err(BuildError::output(file.display().to_string()))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `-o type=local`: the final filesystem copied into a directory.
fn export_local(store: &Store, stack: &LayerStack, dir: &Path) -> Result<(), BuildError> {
    let what = || format!("-o type=local,dest={}", dir.display());
    std::fs::create_dir_all(dir).map_err(BuildError::output(what()))?;
    let scratch = store.scratch_dir("export")?;
    let result = (|| -> Result<(), BuildError> {
        let lowers = store.snapshot_chain(stack)?;
        let src =
            view::readonly(&lowers, &scratch.join("empty")).map_err(BuildError::output(what()))?;
        let dst = view::host_dir(dir).map_err(BuildError::output(what()))?;
        // A rootless kiln writes the files as its caller (namespace root),
        // as BuildKit's client does: owners from the image would be the
        // caller's subordinate ids on disk, files the caller cannot manage.
        let keep_owner = !kiln_executor::rootless::is_rootless();
        fileop::copy_tree(src.root(), "/", dst.root(), keep_owner)
            .map_err(|e| BuildError::Invalid(format!("{}: {e}", what())))
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// `-o type=tar`: the final filesystem as one tar; of several platforms,
/// each under its directory in `parts` (`.` merges them, later ones over
/// earlier, as BuildKit's platform-split=false).
pub(crate) fn export_tar(
    store: &Store,
    parts: &[(String, &LayerStack)],
    file: &Path,
) -> Result<(), BuildError> {
    let what = format!("-o type=tar,dest={}", file.display());
    let mut scratches = Vec::new();
    let result = (|| -> Result<(), BuildError> {
        let mut roots = Vec::new();
        for (dir, stack) in parts {
            let scratch = store.scratch_dir("export")?;
            scratches.push(scratch.clone());
            let lowers = store.snapshot_chain(stack)?;
            let src = view::readonly(&lowers, &scratch.join("empty"))
                .map_err(BuildError::output(&what))?;
            roots.push((dir.clone(), src));
        }
        write_atomically(file, |f| {
            let mut b = tar::Builder::new(f);
            b.follow_symlinks(false);
            for (dir, src) in &roots {
                let root = PathBuf::from(format!(
                    "/proc/self/fd/{}",
                    std::os::fd::AsRawFd::as_raw_fd(&src.root())
                ));
                b.append_dir_all(dir, &root)
                    .map_err(BuildError::output(&what))?;
            }
            b.finish().map_err(BuildError::output(&what))
        })
    })();
    for scratch in scratches {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result
}

/// What [`export`] made.
pub(crate) struct Exports {
    pub(crate) image: Option<Image>,
    pub(crate) pushed: Vec<(Reference, kiln_registry::Pushed, std::time::Duration)>,
}

/// When an image is made: its `created` time, and the epoch its layer
/// tars clamp mtimes to (`SOURCE_DATE_EPOCH`).
pub(crate) struct Stamp {
    pub(crate) created: String,
    pub(crate) epoch: Option<u64>,
}

/// Exports the solved `stack` as `output` says; `inline` is the cache to
/// put in the image config (`--cache-to type=inline`).
pub(crate) fn export(
    store: &Store,
    client: &kiln_registry::Client,
    lowered: &Lowered,
    stack: &LayerStack,
    stamp: &Stamp,
    output: &Output,
    inline: Option<Vec<remote_cache::CacheRecord>>,
) -> Result<Exports, BuildError> {
    let names = match output {
        Output::Local { dest: dir, .. } => {
            export_local(store, stack, dir)?;
            return Ok(Exports {
                image: None,
                pushed: Vec::new(),
            });
        }
        Output::Tar { dest: file, .. } => {
            export_tar(store, &[(".".to_string(), stack)], file)?;
            return Ok(Exports {
                image: None,
                pushed: Vec::new(),
            });
        }
        Output::Image { names, .. } | Output::Archive { names, .. } => names,
    };
    let (mut config, layers) = image_config(lowered, stack, &stamp.created);
    if let Some(records) = inline {
        // `--cache-to type=inline`: the image carries its own chain's records.
        config[remote_cache::INLINE_KEY] = serde_json::to_value(CacheConfig {
            version: 1,
            records,
            mounts: Vec::new(),
        })
        .unwrap_or_default();
    }
    let image = store.commit_built_image(config, &layers, stamp.epoch, names)?;
    if let Output::Archive { dest, .. } = output {
        write_archive(store, std::slice::from_ref(&image), names, dest)?;
    }
    let mut pushed = Vec::new();
    if let Output::Image { push: true, .. } = output {
        for name in names {
            let start = std::time::Instant::now();
            let report = client.push(store, &image, name)?;
            pushed.push((name.clone(), report, start.elapsed()));
        }
    }
    Ok(Exports {
        image: Some(image),
        pushed,
    })
}

/// Every `--cache-to` that is not inline: its records (and cache-mount
/// contents with `mounts=true`) written where it says.
pub(crate) fn export_caches(
    store: &Store,
    client: &kiln_registry::Client,
    views: &[&Lowered],
    keys: &[CacheKey],
    imports: &[remote_cache::Imported],
    cache_to: &[CacheTo],
    epoch: Option<u64>,
) -> Result<Vec<(Location, Exported, std::time::Duration)>, BuildError> {
    let mut out = Vec::new();
    for to in cache_to {
        let Some(location) = &to.location else {
            continue;
        };
        let start = std::time::Instant::now();
        // Every platform's records in one cache (a multi-platform build
        // has a view per platform); a step they share once.
        let mut records: Vec<remote_cache::CacheRecord> = Vec::new();
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        for view in views {
            for r in cache_records(store, view, keys, to.max, imports, epoch) {
                if !records.iter().any(|x| x.key == r.key) {
                    records.push(r);
                }
            }
            for m in cache_mounts(store, view) {
                if !mounts.contains(&m) {
                    mounts.push(m);
                }
            }
        }
        let mut config = CacheConfig {
            version: 1,
            records,
            mounts: Vec::new(),
        };
        if to.mounts {
            config.mounts = remote_cache::mount_blobs(store, &mounts)?;
        }
        let report = remote_cache::export(store, client, location, &config)?;
        out.push((location.clone(), report, start.elapsed()));
    }
    Ok(out)
}

/// `--push` of a multi-platform build: every platform's image by digest,
/// then an OCI image index naming them (with their platforms) under
/// `name`'s tag.
pub(crate) fn push_index(
    store: &Store,
    client: &kiln_registry::Client,
    images: &[Image],
    name: &Reference,
) -> Result<kiln_registry::Pushed, BuildError> {
    let mut by_digest = name.clone();
    by_digest.tag = None;
    by_digest.digest = None;
    let mut manifests = Vec::new();
    let mut total = kiln_registry::Pushed::default();
    for image in images {
        let report = client.push(store, image, &by_digest)?;
        let digest = report
            .digest
            .clone()
            .unwrap_or_else(|| image.manifest_digest.clone());
        let bytes = store.blobs().read(&digest)?;
        let platform = kiln_store::platform_json(&image.config);
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|m| m.get("mediaType")?.as_str().map(str::to_string))
            .unwrap_or_else(|| kiln_store::MEDIA_OCI_MANIFEST.to_string());
        manifests.push(serde_json::json!({
            "mediaType": media_type,
            "digest": digest.to_string(),
            "size": bytes.len(),
            "platform": platform,
        }));
        total.uploaded += report.uploaded;
        total.mounted += report.mounted;
        total.existing += report.existing;
        total.bytes_uploaded += report.bytes_uploaded;
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": kiln_store::MEDIA_OCI_INDEX,
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&index).map_err(|e| BuildError::Invalid(e.to_string()))?;
    total.digest = Some(client.push_manifest(name, &bytes)?);
    Ok(total)
}

/// `-o type=oci|docker`: the images (one per platform) under each name;
/// several platforms under a name are one image index in the archive.
pub(crate) fn write_archive(
    store: &Store,
    images: &[Image],
    names: &[Reference],
    dest: &Path,
) -> Result<(), BuildError> {
    let mut list: Vec<(Image, Option<Reference>)> = Vec::new();
    if names.is_empty() {
        list.extend(images.iter().map(|i| (i.clone(), None)));
    } else {
        for name in names {
            list.extend(images.iter().map(|i| (i.clone(), Some(name.clone()))));
        }
    }
    write_atomically(dest, |f| Ok(store.save(&list, f)?))
}
