//! The shared build cache: export this build's cache records (and their
//! layers) to a directory or a registry, import another machine's, and
//! answer cache misses from them.
//!
//! Format (see docs/cache-format.md): an OCI image manifest whose config
//! blob (`application/vnd.kiln.cache.config.v1+json`) is a [`CacheConfig`]
//! — the records, each a cache key → layer stack, the time it was first
//! built, its input records' keys and its step — and whose layers are the
//! layer blobs the records name (plus, with `mounts=true`, one tarball per
//! `RUN --mount=type=cache` directory). A local export is an OCI image
//! layout; a registry export is that manifest under a tag. `type=inline`
//! puts the same config, min mode, under `kiln.cache.v1` in the image's
//! own config.
//!
//! Import reads the manifest and the config only; a record's layers are
//! fetched when a lookup hits it. Any failure there (a missing or corrupt
//! blob) is a warning and a miss: the step is rebuilt.

use kiln_registry::Client;
use kiln_store::layer::{self, WriteOptions};
use kiln_store::{Digest, Layer, LayerRef, LayerStack, Reference, Store, MEDIA_OCI_MANIFEST};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An exported cache that cannot be read or written, or a bad `--cache-to`/`--cache-from` value (the message says which).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CacheError(pub String);

pub const CACHE_CONFIG_TYPE: &str = "application/vnd.kiln.cache.config.v1+json";
const MOUNT_TYPE: &str = "application/vnd.kiln.cache.mount.v1.tar+gzip";
/// Where inline cache lives in an image config.
pub const INLINE_KEY: &str = "kiln.cache.v1";

/// One cached result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The step's cache key (hex).
    pub key: String,
    /// The layer stack, base first; `null` marks a step that changed
    /// nothing.
    pub layers: Vec<Option<LayerRef>>,
    /// Unix seconds the result was first built (the image's `created`).
    pub created: i64,
    /// Cache keys of the step's inputs.
    pub inputs: Vec<String>,
    /// What the step was (`[stage 2/4] RUN make`), for people.
    pub step: String,
}

/// A cache mount's contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountBlob {
    pub id: String,
    pub digest: String,
    pub size: u64,
}

/// The config blob of a cache export.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CacheConfig {
    pub version: u32,
    pub records: Vec<CacheRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountBlob>,
}

/// Where a cache lives.
#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    Registry(Reference),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Registry(r) => write!(f, "{}", r.familiar()),
        }
    }
}

/// `--cache-to`.
#[derive(Debug, Clone)]
pub struct CacheTo {
    /// None: `type=inline`.
    pub location: Option<Location>,
    /// Every vertex (`mode=max`), or the target's chain (`mode=min`).
    pub max: bool,
    /// Include `RUN --mount=type=cache` contents.
    pub mounts: bool,
}

fn options(spec: &str) -> Result<HashMap<String, String>, String> {
    spec.split(',')
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("{p:?} is not KEY=VALUE"))
        })
        .collect()
}

fn location(o: &HashMap<String, String>, dir_key: &str) -> Result<Location, String> {
    match o.get("type").map(String::as_str) {
        Some("local") => o
            .get(dir_key)
            .map(|d| Location::Local(PathBuf::from(d)))
            .ok_or_else(|| format!("type=local needs {dir_key}=DIR")),
        Some("registry") => {
            let r = o.get("ref").ok_or("type=registry needs ref=REF")?;
            Reference::parse(r)
                .map(Location::Registry)
                .map_err(|e| e.to_string())
        }
        Some(t) => Err(format!("unknown cache type {t:?}: use local or registry")),
        None => Err("needs type=local|registry".into()),
    }
}

/// Parses `--cache-to type=local,dest=DIR[,mode=min|max][,mounts=true]`,
/// `type=registry,ref=REF[,...]` or `type=inline`.
pub fn parse_cache_to(spec: &str) -> Result<CacheTo, CacheError> {
    parse_cache_to_inner(spec).map_err(CacheError)
}

fn parse_cache_to_inner(spec: &str) -> Result<CacheTo, String> {
    let o = options(spec)?;
    let max = match o.get("mode").map(String::as_str) {
        None | Some("min") => false,
        Some("max") => true,
        Some(m) => return Err(format!("mode={m}: use min or max")),
    };
    let mounts = match o.get("mounts").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(m) => return Err(format!("mounts={m}: use true or false")),
    };
    for k in o.keys() {
        if !["type", "dest", "ref", "mode", "mounts"].contains(&k.as_str()) {
            return Err(format!("unknown option {k:?}"));
        }
    }
    if o.get("type").map(String::as_str) == Some("inline") {
        if max {
            return Err("type=inline exports mode=min only".into());
        }
        return Ok(CacheTo {
            location: None,
            max: false,
            mounts: false,
        });
    }
    Ok(CacheTo {
        location: Some(location(&o, "dest")?),
        max,
        mounts,
    })
}

/// Parses `--cache-from type=local,src=DIR` or `type=registry,ref=REF`
/// (a bare reference means type=registry).
pub fn parse_cache_from(spec: &str) -> Result<Location, CacheError> {
    parse_cache_from_inner(spec).map_err(CacheError)
}

fn parse_cache_from_inner(spec: &str) -> Result<Location, String> {
    if !spec.contains('=') {
        return Reference::parse(spec)
            .map(Location::Registry)
            .map_err(|e| e.to_string());
    }
    let o = options(spec)?;
    for k in o.keys() {
        if !["type", "src", "ref"].contains(&k.as_str()) {
            return Err(format!("unknown option {k:?}"));
        }
    }
    location(&o, "src")
}

/// An imported cache: the records, and where their blobs are.
pub struct Imported {
    location: Location,
    records: HashMap<String, CacheRecord>,
    mounts: Vec<MountBlob>,
    client: Arc<Client>,
}

fn read_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{what}: {e}"))
}

/// The blob path in an OCI layout.
fn layout_blob(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    dir.join("blobs").join(alg).join(hex)
}

/// Reads a cache's manifest and config (nothing else).
pub fn import(store: &Store, client: Arc<Client>, from: &Location) -> Result<Imported, CacheError> {
    import_inner(store, client, from).map_err(CacheError)
}

fn import_inner(store: &Store, client: Arc<Client>, from: &Location) -> Result<Imported, String> {
    let fail = |m: String| format!("--cache-from {from}: {m}");
    let (manifest, config_bytes): (Value, Vec<u8>) = match from {
        Location::Local(dir) => {
            let index: Value = read_json(
                &std::fs::read(dir.join("index.json"))
                    .map_err(|e| fail(format!("index.json: {e}")))?,
                "index.json",
            )
            .map_err(fail)?;
            let digest = index
                .pointer("/manifests/0/digest")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("index.json names no manifest".into()))?;
            let manifest_bytes = verified_read(&layout_blob(dir, digest), digest).map_err(fail)?;
            let manifest: Value = read_json(&manifest_bytes, "manifest").map_err(fail)?;
            let cd = manifest
                .pointer("/config/digest")
                .and_then(Value::as_str)
                .ok_or_else(|| fail("manifest without a config".into()))?;
            let config = verified_read(&layout_blob(dir, cd), cd).map_err(fail)?;
            (manifest, config)
        }
        Location::Registry(r) => {
            let (bytes, _, _) = client
                .resolve(r, &kiln_registry::Platform::host())
                .map_err(|e| e.to_string())?;
            let manifest: Value = read_json(&bytes, "manifest").map_err(fail)?;
            let cd: Digest = manifest
                .pointer("/config/digest")
                .and_then(Value::as_str)
                .unwrap_or("")
                .parse()
                .map_err(|e| fail(format!("manifest config: {e}")))?;
            let size = manifest
                .pointer("/config/size")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            client
                .pull_blob(store, r, &cd, size)
                .map_err(|e| e.to_string())?;
            let config = store.blobs().read(&cd).map_err(|e| fail(e.to_string()))?;
            (manifest, config)
        }
    };
    let config_type = manifest
        .pointer("/config/mediaType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let config: CacheConfig = if config_type == CACHE_CONFIG_TYPE {
        read_json(&config_bytes, "cache config").map_err(fail)?
    } else {
        // An image pushed with inline cache.
        let image: Value = read_json(&config_bytes, "image config").map_err(fail)?;
        match image.get(INLINE_KEY) {
            Some(v) => {
                serde_json::from_value(v.clone()).map_err(|e| fail(format!("inline cache: {e}")))?
            }
            None => {
                return Err(fail(
                    "neither a kiln cache export nor an image with inline cache".into(),
                ))
            }
        }
    };
    Ok(Imported {
        location: from.clone(),
        records: config
            .records
            .into_iter()
            .map(|r| (r.key.clone(), r))
            .collect(),
        mounts: config.mounts,
        client,
    })
}

fn verified_read(path: &Path, digest: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let got = Digest::of(&bytes).to_string();
    if got != digest {
        return Err(format!(
            "{}: digest mismatch: expected {digest}, got {got}",
            path.display()
        ));
    }
    Ok(bytes)
}

impl Imported {
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn record(&self, key: &str) -> Option<&CacheRecord> {
        self.records.get(key)
    }

    /// Brings one blob into the store, verified.
    fn fetch_blob(&self, store: &Store, digest: &Digest, size: u64) -> Result<(), String> {
        if store.blobs().contains(digest) {
            return Ok(());
        }
        match &self.location {
            Location::Local(dir) => {
                let path = layout_blob(dir, &digest.to_string());
                let mut f =
                    std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                store
                    .blobs()
                    .put_reader(
                        &mut f,
                        Some((digest, Some(size))),
                        &path.display().to_string(),
                    )
                    .map_err(|e| e.to_string())?;
            }
            Location::Registry(r) => {
                self.client
                    .pull_blob(store, r, digest, size)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The record's layers, fetched into the store and recorded in its
    /// cache index under `key`.
    pub fn restore(&self, store: &Store, record: &CacheRecord) -> Result<LayerStack, CacheError> {
        self.restore_inner(store, record).map_err(CacheError)
    }

    fn restore_inner(&self, store: &Store, record: &CacheRecord) -> Result<LayerStack, String> {
        for l in record.layers.iter().flatten() {
            self.fetch_blob(store, &l.digest, l.size)?;
        }
        store
            .cache_import(&record.key, &record.layers, record.created)
            .map_err(|e| e.to_string())?;
        Ok(record
            .layers
            .iter()
            .map(|l| l.clone().map(Layer::Tar))
            .collect())
    }

    /// Fills empty cache-mount directories from the export
    /// (`mounts=true`); `dir_of` maps a mount id to its directory.
    pub fn restore_mounts(&self, store: &Store, dir_of: &dyn Fn(&str) -> PathBuf) -> Vec<String> {
        let mut warnings = Vec::new();
        for m in &self.mounts {
            let dir = dir_of(&m.id);
            if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
                continue; // this machine's own contents win
            }
            let result = (|| -> Result<(), String> {
                let digest: Digest = m.digest.parse().map_err(|e| format!("{e}"))?;
                self.fetch_blob(store, &digest, m.size)?;
                let blob = store
                    .blobs()
                    .open_blob(&digest)
                    .map_err(|e| e.to_string())?;
                let tmp = dir.with_extension(format!("import-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&tmp);
                layer::apply_layer(blob, &tmp).map_err(|e| e.to_string())?;
                let _ = std::fs::remove_dir_all(&dir);
                if let Some(parent) = dir.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                std::fs::rename(&tmp, &dir).map_err(|e| e.to_string())
            })();
            if let Err(e) = result {
                warnings.push(format!(
                    "cache mount {:?} from {}: {e}",
                    m.id, self.location
                ));
            }
        }
        warnings
    }
}

/// What an export wrote.
#[derive(Debug, Default)]
pub struct Exported {
    pub records: usize,
    pub blobs: usize,
    pub bytes: u64,
}

/// Layers of the records, deduplicated, in first-use order.
fn record_layers(records: &[CacheRecord]) -> Vec<LayerRef> {
    let mut seen = std::collections::HashSet::new();
    records
        .iter()
        .flat_map(|r| r.layers.iter().flatten())
        .filter(|l| seen.insert(l.digest.clone()))
        .cloned()
        .collect()
}

/// Tars each cache-mount directory into a blob.
pub fn mount_blobs(
    store: &Store,
    mounts: &[(String, PathBuf)],
) -> Result<Vec<MountBlob>, CacheError> {
    mount_blobs_inner(store, mounts).map_err(CacheError)
}

fn mount_blobs_inner(
    store: &Store,
    mounts: &[(String, PathBuf)],
) -> Result<Vec<MountBlob>, String> {
    let mut out = Vec::new();
    for (id, dir) in mounts {
        if !dir.is_dir() {
            continue;
        }
        let blob = layer::write_layer(store.blobs(), dir, WriteOptions::default())
            .map_err(|e| format!("cache mount {id:?}: {e}"))?;
        out.push(MountBlob {
            id: id.clone(),
            digest: blob.digest.to_string(),
            size: blob.size,
        });
    }
    Ok(out)
}

/// The manifest of an export whose config is `config_bytes`.
fn manifest_for(config_bytes: &[u8], config: &CacheConfig) -> Vec<u8> {
    let mut layers: Vec<Value> = record_layers(&config.records)
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size}))
        .collect();
    layers.extend(
        config
            .mounts
            .iter()
            .map(|m| json!({"mediaType": MOUNT_TYPE, "digest": m.digest, "size": m.size})),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {
            "mediaType": CACHE_CONFIG_TYPE,
            "digest": Digest::of(config_bytes).to_string(),
            "size": config_bytes.len(),
        },
        "layers": layers,
    });
    serde_json::to_vec(&manifest).unwrap_or_default()
}

/// Writes the export to a directory (an OCI layout; blobs already there
/// are kept) or a registry.
pub fn export(
    store: &Store,
    client: &Client,
    location: &Location,
    config: &CacheConfig,
) -> Result<Exported, CacheError> {
    export_inner(store, client, location, config).map_err(CacheError)
}

fn export_inner(
    store: &Store,
    client: &Client,
    location: &Location,
    config: &CacheConfig,
) -> Result<Exported, String> {
    let fail = |m: String| format!("--cache-to {location}: {m}");
    let config_bytes = serde_json::to_vec(config).map_err(|e| fail(e.to_string()))?;
    let manifest = manifest_for(&config_bytes, config);
    let mut blobs: Vec<(Digest, u64)> = Vec::new();
    for l in record_layers(&config.records) {
        blobs.push((l.digest, l.size));
    }
    for m in &config.mounts {
        blobs.push((m.digest.parse().map_err(|e| fail(format!("{e}")))?, m.size));
    }
    let mut report = Exported {
        records: config.records.len(),
        ..Exported::default()
    };
    match location {
        Location::Local(dir) => {
            let blob_dir = dir.join("blobs/sha256");
            std::fs::create_dir_all(&blob_dir)
                .map_err(|e| fail(format!("{}: {e}", blob_dir.display())))?;
            let write = |name: &Path, bytes: &[u8]| -> Result<(), String> {
                let tmp = name.with_extension(format!("tmp-{}", std::process::id()));
                std::fs::write(&tmp, bytes)
                    .and_then(|()| std::fs::rename(&tmp, name))
                    .map_err(|e| fail(format!("{}: {e}", name.display())))
            };
            for (d, size) in &blobs {
                let dest = blob_dir.join(d.hex());
                if dest.is_file() {
                    continue;
                }
                let tmp = dest.with_extension(format!("tmp-{}", std::process::id()));
                std::fs::copy(store.blobs().path(d), &tmp)
                    .and_then(|_| std::fs::rename(&tmp, &dest))
                    .map_err(|e| fail(format!("{}: {e}", dest.display())))?;
                report.blobs += 1;
                report.bytes += size;
            }
            write(
                &blob_dir.join(Digest::of(&config_bytes).hex()),
                &config_bytes,
            )?;
            let manifest_digest = Digest::of(&manifest);
            write(&blob_dir.join(manifest_digest.hex()), &manifest)?;
            write(
                &dir.join("oci-layout"),
                br#"{"imageLayoutVersion":"1.0.0"}"#,
            )?;
            let index = json!({
                "schemaVersion": 2,
                "mediaType": kiln_store::MEDIA_OCI_INDEX,
                "manifests": [{
                    "mediaType": MEDIA_OCI_MANIFEST,
                    "digest": manifest_digest.to_string(),
                    "size": manifest.len(),
                    "annotations": {"org.opencontainers.image.ref.name": "latest"},
                }],
            });
            // index.json last: a reader sees the old export or the new one.
            write(&dir.join("index.json"), index.to_string().as_bytes())?;
        }
        Location::Registry(r) => {
            let config_digest = store
                .blobs()
                .put(&config_bytes)
                .map_err(|e| fail(e.to_string()))?;
            blobs.push((config_digest, config_bytes.len() as u64));
            let pushed = client
                .push_blobs(store, r, &blobs)
                .map_err(|e| e.to_string())?;
            report.blobs = pushed.uploaded;
            report.bytes = pushed.bytes_uploaded;
            client
                .push_manifest(r, &manifest)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_clear_errors() {
        let to = parse_cache_to("type=local,dest=/c,mode=max,mounts=true").unwrap();
        assert!(to.max && to.mounts);
        assert!(matches!(to.location, Some(Location::Local(_))));
        let to = parse_cache_to("type=registry,ref=127.0.0.1:5000/c:build").unwrap();
        assert!(!to.max);
        assert!(parse_cache_to("type=inline").unwrap().location.is_none());
        assert!(parse_cache_to("type=inline,mode=max").is_err());
        assert!(parse_cache_to("type=local")
            .unwrap_err()
            .0
            .contains("dest=DIR"));
        assert!(parse_cache_to("type=s3,ref=x")
            .unwrap_err()
            .0
            .contains("unknown cache type"));
        assert!(parse_cache_to("type=local,dest=/c,mode=all").is_err());
        assert!(matches!(
            parse_cache_from("type=local,src=/c").unwrap(),
            Location::Local(_)
        ));
        assert!(matches!(
            parse_cache_from("127.0.0.1:5000/c:1").unwrap(),
            Location::Registry(_)
        ));
        assert!(parse_cache_from("type=local,dest=/c").is_err());
    }
}
