//! Moving images in and out: `import` (a flat rootfs tarball → one-layer
//! image), `load` (docker archive or OCI layout tar, auto-detected) and
//! `save` (a docker archive that is also an OCI layout, as docker ≥ 25
//! writes it). Archives are streamed; only small JSON files are held in
//! memory. A failed load leaves no image record and removes the blobs it
//! added.

use crate::digest::{Digest, HashingReader, VerifyingReader};
use crate::error::{IoContext, Result, StoreError};
use crate::image::{
    self, canonical_json, descriptor, Image, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use crate::layer::{self, Compression, WriteOptions};
use crate::{time, Reference, Store};
use oci_spec::image::{ImageIndex, ImageManifest, ImageManifestBuilder, SCHEMA_VERSION};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};

/// Archive path → the blob stored for it, and its size.
type Files = BTreeMap<String, (Digest, u64)>;
/// The small JSON files of an archive (index.json, manifest.json, ...).
type JsonFiles = BTreeMap<String, Vec<u8>>;

/// JSON files in archives are small; anything bigger is not what it claims.
const MAX_JSON: u64 = 16 << 20;

/// Options for `kiln import`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The image config's `config` object (Cmd, Env, ...), from `--change`.
    pub config: serde_json::Map<String, Value>,
    /// History `created_by` text.
    pub created_by: String,
    pub compression: Option<Compression>,
    /// `SOURCE_DATE_EPOCH`: the image's `created` and the clamp on file
    /// times; now when None.
    pub epoch: Option<i64>,
    /// The image's platform (`os/arch[/variant]`); this machine's when None.
    pub platform: Option<String>,
}

/// What `load` added.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub images: Vec<(Digest, Vec<String>)>,
}

impl Store {
    /// `kiln import`: a flat root filesystem tarball becomes a one-layer
    /// image named `name`. The tarball is unpacked with the safe applier and
    /// re-written deterministically, so hostile entries never reach a layer.
    pub fn import(
        &self,
        reader: impl Read,
        name: &Reference,
        opts: &ImportOptions,
    ) -> Result<Image> {
        let staging = crate::blobs::temp_path(self.blobs.tmp_dir(), "import");
        let result = (|| {
            let applied = layer::apply_layer(reader, &staging)?;
            crate::warnings::skipped_devices("the imported tarball", applied.skipped_devices);
            let write_opts = WriteOptions {
                compression: opts.compression.unwrap_or(Compression::Gzip),
                source_date_epoch: opts.epoch.map(|e| e as u64),
            };
            let blob = layer::write_layer(&self.blobs, &staging, write_opts)?;
            let created = time::rfc3339(opts.epoch.unwrap_or_else(time::now));
            let platform = opts
                .platform
                .clone()
                .unwrap_or_else(image::host_platform_name);
            let mut parts = platform.splitn(3, '/');
            let (os, arch, variant) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next(),
            );
            let created_by = if opts.created_by.is_empty() {
                "kiln import".to_string()
            } else {
                opts.created_by.clone()
            };
            let mut config = json!({
                "architecture": arch,
                "os": os,
                "created": created,
                "config": Value::Object(opts.config.clone()),
                "history": [{ "created": created, "created_by": created_by, "comment": "imported from tarball" }],
            });
            if let Some(v) = variant {
                config["variant"] = Value::String(v.to_string());
            }
            self.commit_built_image(
                config,
                &[crate::Layer::Tar(blob.into())],
                None,
                std::slice::from_ref(name),
            )
        })();
        let _ = fs::remove_dir_all(&staging);
        result
    }

    /// `kiln load`: a docker archive or an OCI layout tar (auto-detected).
    pub fn load(&self, reader: impl Read, source: &str) -> Result<LoadReport> {
        let mut added: HashSet<Digest> = HashSet::new();
        let result = self.load_inner(reader, source, &mut added);
        // On failure nothing stays; on success, neither do files that were
        // not blobs (legacy `VERSION`, `<id>/json` in old docker archives).
        self.collect_blobs(&added);
        result
    }

    fn load_inner(
        &self,
        reader: impl Read,
        source: &str,
        added: &mut HashSet<Digest>,
    ) -> Result<LoadReport> {
        let bad = |reason: String| StoreError::BadArchive {
            file: source.to_string(),
            reason,
        };
        let mut ingest = Ingest::new(self, source, added);
        let mut archive = tar::Archive::new(layer::decompress(reader).at(source)?);
        let entries = archive
            .entries()
            .map_err(|e| bad(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(format!("corrupt or truncated archive: {e}")))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let size = entry.size();
            ingest.file(&path, size, &mut entry)?;
        }
        let (files, json_files) = ingest.finish();
        self.assemble(files, json_files, source)
    }

    /// `kiln load` of an OCI image layout directory.
    pub fn load_dir(&self, dir: &std::path::Path) -> Result<LoadReport> {
        let source = dir.display().to_string();
        let mut added: HashSet<Digest> = HashSet::new();
        let result = (|| {
            let mut ingest = Ingest::new(self, &source, &mut added);
            let mut stack = vec![dir.to_path_buf()];
            while let Some(d) = stack.pop() {
                for e in fs::read_dir(&d).at(&d)? {
                    let e = e.at(&d)?;
                    let path = e.path();
                    let ft = e.file_type().at(&path)?;
                    if ft.is_dir() {
                        stack.push(path);
                    } else if ft.is_file() {
                        let rel = path
                            .strip_prefix(dir)
                            .unwrap_or(&path)
                            .to_string_lossy()
                            .into_owned();
                        let mut f = fs::File::open(&path).at(&path)?;
                        let size = f.metadata().at(&path)?.len();
                        ingest.file(&rel, size, &mut f)?;
                    }
                }
            }
            let (files, json_files) = ingest.finish();
            self.assemble(files, json_files, &source)
        })();
        self.collect_blobs(&added);
        result
    }

    /// Turns ingested files into image records (an OCI `index.json` first,
    /// else a docker `manifest.json`).
    fn assemble(&self, files: Files, json_files: JsonFiles, source: &str) -> Result<LoadReport> {
        let bad = |reason: String| StoreError::BadArchive {
            file: source.to_string(),
            reason,
        };
        let json = |name: &str| -> Result<Option<Value>> {
            json_files
                .get(name)
                .map(|b| serde_json::from_slice(b).map_err(|e| bad(format!("{name}: {e}"))))
                .transpose()
        };
        let mut report = LoadReport::default();
        if let Some(index) = json("index.json")? {
            let index: ImageIndex =
                serde_json::from_value(index).map_err(|e| bad(format!("index.json: {e}")))?;
            for desc in index.manifests() {
                let digest = image::kiln_digest(desc.digest(), "index.json manifest")?;
                let names = names_from_annotations(desc.annotations().as_ref(), source);
                // A multi-platform image: every platform the archive holds,
                // one image each under the same names.
                for manifest_bytes in self.resolve_manifests(&digest, source, 0)? {
                    let img = self.commit_loaded(&manifest_bytes, &names, source)?;
                    report.images.push((img.config_digest, img.names));
                }
            }
        } else if let Some(manifest) = json("manifest.json")? {
            let list = manifest
                .as_array()
                .cloned()
                .ok_or_else(|| bad("manifest.json is not a list".into()))?;
            for item in list {
                let config_path = item
                    .get("Config")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("manifest.json entry has no Config".into()))?;
                let (config_digest, config_size) = files
                    .get(config_path.trim_start_matches("./"))
                    .cloned()
                    .ok_or_else(|| bad(format!("config {config_path} is not in the archive")))?;
                let config: Value = serde_json::from_slice(&self.blobs.read(&config_digest)?)
                    .map_err(|e| bad(format!("config {config_path}: {e}")))?;
                let diff_ids: Vec<Value> = config
                    .pointer("/rootfs/diff_ids")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let layer_paths: Vec<&str> = item
                    .get("Layers")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if layer_paths.len() != diff_ids.len() {
                    return Err(bad(format!(
                        "{config_path}: {} layers but {} diff IDs",
                        layer_paths.len(),
                        diff_ids.len()
                    )));
                }
                let mut layers = Vec::new();
                for (lp, diff) in layer_paths.iter().zip(&diff_ids) {
                    let (digest, size) = files
                        .get(lp.trim_start_matches("./"))
                        .cloned()
                        .ok_or_else(|| bad(format!("layer {lp} is not in the archive")))?;
                    let diff: Digest = diff
                        .as_str()
                        .unwrap_or_default()
                        .parse()
                        .map_err(|e| bad(format!("{config_path}: {e}")))?;
                    // The layer must be what the config says it is.
                    let mut head = [0u8; 4];
                    let n = self
                        .blobs
                        .open_blob(&digest)?
                        .read(&mut head)
                        .at(self.blobs.path(&digest))?;
                    let compression = Compression::detect(&head[..n]);
                    let actual_diff = if compression == Compression::None {
                        digest.clone()
                    } else {
                        let mut r = HashingReader::new(
                            layer::decompress(self.blobs.open_blob(&digest)?).at(lp)?,
                        );
                        io::copy(&mut r, &mut io::sink())
                            .map_err(|e| bad(format!("layer {lp}: {e}")))?;
                        r.finish().0
                    };
                    if actual_diff != diff {
                        return Err(StoreError::DigestMismatch {
                            what: format!("{source}: layer {lp}"),
                            expected: diff.to_string(),
                            actual: actual_diff.to_string(),
                        });
                    }
                    layers.push(descriptor(compression.media_type(), &digest, size));
                }
                let manifest = ImageManifestBuilder::default()
                    .schema_version(SCHEMA_VERSION)
                    .media_type(oci_spec::image::MediaType::ImageManifest)
                    .config(descriptor(MEDIA_OCI_CONFIG, &config_digest, config_size))
                    .layers(layers)
                    .build()
                    .map_err(|e| StoreError::Invalid(format!("manifest: {e}")))?;
                let mut names = Vec::new();
                for tag in item
                    .get("RepoTags")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(t) = tag.as_str() {
                        names.push(Reference::parse(t)?);
                    }
                }
                let img = self.commit_loaded(&canonical_json(&manifest), &names, source)?;
                report.images.push((img.config_digest, img.names));
            }
        } else {
            return Err(bad(
                "neither a docker archive (manifest.json) nor an OCI layout (index.json)".into(),
            ));
        }
        Ok(report)
    }

    /// Follows an index to every platform's manifest the archive holds
    /// (an index may name platforms whose blobs were left out, as skopeo
    /// copies one platform); returns their manifest bytes.
    fn resolve_manifests(
        &self,
        digest: &Digest,
        source: &str,
        depth: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let bytes = self
            .blobs
            .read(digest)
            .map_err(|_| StoreError::BadArchive {
                file: source.to_string(),
                reason: format!("manifest {digest} named by index.json is not in the archive"),
            })?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| StoreError::BadArchive {
            file: source.to_string(),
            reason: format!("manifest {digest}: {e}"),
        })?;
        let mt = v.get("mediaType").and_then(Value::as_str).unwrap_or("");
        if v.get("manifests").is_some() {
            if depth > 4 {
                return Err(StoreError::Invalid(format!(
                    "{source}: indexes nested too deep"
                )));
            }
            let mut out = Vec::new();
            for m in v["manifests"].as_array().into_iter().flatten() {
                let d: Digest = m["digest"]
                    .as_str()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e| StoreError::Invalid(format!("{source}: {e}")))?;
                if !self.blobs.contains(&d) {
                    continue;
                }
                out.extend(self.resolve_manifests(&d, source, depth + 1)?);
            }
            if out.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "{source}: index {digest} names no manifest the archive holds"
                )));
            }
            return Ok(out);
        }
        if !(mt.is_empty() || mt == MEDIA_OCI_MANIFEST || mt == image::MEDIA_DOCKER_MANIFEST) {
            return Err(StoreError::UnsupportedMediaType {
                what: format!("{source}: manifest {digest}"),
                media_type: mt.to_string(),
            });
        }
        Ok(vec![bytes])
    }

    /// Checks a loaded manifest's blobs (sizes, media types) and records it.
    fn commit_loaded(
        &self,
        manifest_bytes: &[u8],
        names: &[Reference],
        source: &str,
    ) -> Result<Image> {
        let manifest: ImageManifest =
            serde_json::from_slice(manifest_bytes).map_err(|e| StoreError::BadArchive {
                file: source.to_string(),
                reason: format!("manifest: {e}"),
            })?;
        for (i, l) in manifest.layers().iter().enumerate() {
            let mt = image::media_type_str(l.media_type());
            if Compression::from_media_type(&mt).is_none() {
                return Err(StoreError::UnsupportedMediaType {
                    what: format!("{source}: layer {i} ({})", l.digest()),
                    media_type: mt,
                });
            }
        }
        for d in std::iter::once(manifest.config()).chain(manifest.layers().iter()) {
            let digest = image::kiln_digest(d.digest(), "blob")?;
            if !self.blobs.contains(&digest) {
                return Err(StoreError::BadArchive {
                    file: source.to_string(),
                    reason: format!("blob {digest} named by the manifest is not in the archive"),
                });
            }
            let size = self.blobs.size(&digest)?;
            if size != d.size() {
                return Err(StoreError::SizeMismatch {
                    what: format!("{source}: blob {digest}"),
                    expected: d.size(),
                    actual: size,
                });
            }
        }
        self.commit_image(manifest_bytes, names)
    }

    /// Records an image whose blobs a registry pull put in the store,
    /// after the same checks a load makes. The manifest is stored as the
    /// registry served it, so its digest stays the registry's.
    pub fn commit_pulled(&self, manifest_bytes: &[u8], names: &[Reference]) -> Result<Image> {
        self.commit_loaded(manifest_bytes, names, "pull")
    }

    /// Remembers that a registry repository (`host/path`) holds these blobs.
    pub fn record_blob_sources(&self, digests: &[Digest], repository: &str) -> Result<()> {
        self.db().add_blob_sources(digests, repository)
    }

    /// Registry repositories known to hold `digest`.
    pub fn blob_sources(&self, digest: &Digest) -> Result<Vec<String>> {
        self.db().blob_sources(digest)
    }

    /// What a save writes: every blob, `index.json`, and the docker
    /// `manifest.json` / `repositories`.
    fn save_plan(&self, images: &[(Image, Option<Reference>)]) -> Result<SavePlan> {
        let mut blobs: BTreeMap<String, (Digest, u64)> = BTreeMap::new();
        let mut extra: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut index_manifests = Vec::new();
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        // Entries naming the same reference with images of different
        // platforms are one multi-platform image: a nested index.
        let mut groups: Vec<(Option<&Reference>, Vec<&Image>)> = Vec::new();
        for (img, reference) in images {
            match groups
                .iter_mut()
                .find(|(r, _)| r.is_some() && *r == reference.as_ref())
            {
                Some((_, imgs))
                    if !imgs
                        .iter()
                        .any(|i| i.manifest_digest == img.manifest_digest) =>
                {
                    imgs.push(img)
                }
                Some(_) => {}
                None => groups.push((reference.as_ref(), vec![img])),
            }
        }
        let host = crate::image::host_platform_name();
        for (reference, group) in groups {
            let mut platform_descs = Vec::new();
            // The image docker's manifest.json tags: this machine's, else the first.
            let tagged = group
                .iter()
                .position(|i| crate::image::platform_name(&i.config) == host)
                .unwrap_or(0);
            for (n, img) in group.iter().enumerate() {
                // A built image's layers become gzip blobs now (kept for the
                // next save or push).
                let img = &self.materialize(img, Compression::Gzip)?;
                let mut layer_paths = Vec::new();
                // Held while we write them; sizes are the manifest's, so a
                // blob that changed on disk is caught as it streams.
                self.image_stack(img)?;
                for l in img.layers()? {
                    layer_paths.push(format!("blobs/sha256/{}", l.digest.hex()));
                    blobs.insert(l.digest.hex(), (l.digest.clone(), l.size));
                }
                blobs.insert(
                    img.config_digest.hex(),
                    (img.config_digest.clone(), img.manifest.config().size()),
                );
                let manifest_size = self.blobs.size(&img.manifest_digest)?;
                blobs.insert(
                    img.manifest_digest.hex(),
                    (img.manifest_digest.clone(), manifest_size),
                );
                let mut repo_tags = Vec::new();
                if let (Some(r), true) = (reference, n == tagged) {
                    repo_tags.push(r.familiar());
                }
                docker_manifest.push(json!({
                    "Config": format!("blobs/sha256/{}", img.config_digest.hex()),
                    "RepoTags": repo_tags,
                    "Layers": layer_paths,
                }));
                let mut desc = json!({
                    "mediaType": MEDIA_OCI_MANIFEST,
                    "digest": img.manifest_digest.to_string(),
                    "size": manifest_size,
                });
                if group.len() > 1 {
                    desc["platform"] = image::platform_json(&img.config);
                }
                platform_descs.push(desc);
            }
            let mut annotations = BTreeMap::new();
            if let Some(r) = reference {
                annotations.insert("io.containerd.image.name".to_string(), r.to_string());
                if let Some(tag) = &r.tag {
                    annotations
                        .insert("org.opencontainers.image.ref.name".to_string(), tag.clone());
                }
            }
            let mut desc = if platform_descs.len() == 1 {
                platform_descs.remove(0)
            } else {
                let nested = canonical_json(&json!({
                    "schemaVersion": 2,
                    "mediaType": MEDIA_OCI_INDEX,
                    "manifests": platform_descs,
                }));
                let digest = Digest::of(&nested);
                let desc = json!({
                    "mediaType": MEDIA_OCI_INDEX,
                    "digest": digest.to_string(),
                    "size": nested.len(),
                });
                extra.insert(digest.hex(), nested);
                desc
            };
            if let (Some(r), Some(tag)) = (reference, reference.and_then(|r| r.tag.clone())) {
                let target = desc["digest"].as_str().unwrap_or_default();
                repositories
                    .entry(r.familiar_repository())
                    .or_default()
                    .insert(tag, target.trim_start_matches("sha256:").to_string());
            }
            if !annotations.is_empty() {
                desc["annotations"] = json!(annotations);
            }
            index_manifests.push(desc);
        }
        let index = json!({ "schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index_manifests });
        Ok(SavePlan {
            blobs,
            extra,
            index: canonical_json(&index),
            docker_manifest: canonical_json(&docker_manifest),
            repositories: (!repositories.is_empty()).then(|| canonical_json(&repositories)),
        })
    }

    /// `kiln save`: writes the images as one tar that is both a docker
    /// archive (`manifest.json`, `repositories`) and an OCI layout
    /// (`oci-layout`, `index.json`, `blobs/`). Byte-identical for the same
    /// images: sorted entries, fixed times and owners.
    pub fn save(&self, images: &[(Image, Option<Reference>)], out: impl Write) -> Result<()> {
        let SavePlan {
            blobs,
            extra,
            index,
            docker_manifest,
            repositories,
        } = self.save_plan(images)?;
        let mut tar = tar::Builder::new(out);
        let dir = |tar: &mut tar::Builder<_>, path: &str| -> io::Result<()> {
            let mut h = fixed_header(tar::EntryType::Directory, 0o755, 0);
            tar.append_data(&mut h, path, io::empty())
        };
        dir(&mut tar, "blobs/").at("save")?;
        dir(&mut tar, "blobs/sha256/").at("save")?;
        // One sorted list of both kinds of blob, so the bytes stay fixed.
        let mut names: Vec<&String> = blobs.keys().chain(extra.keys()).collect();
        names.sort();
        names.dedup();
        for hex in names {
            if let Some((digest, size)) = blobs.get(hex) {
                let mut h = fixed_header(tar::EntryType::Regular, 0o644, *size);
                let file =
                    VerifyingReader::new(self.blobs.open_blob(digest)?, digest.clone(), *size);
                tar.append_data(&mut h, format!("blobs/sha256/{hex}"), file)
                    .at(self.blobs.path(digest))?;
            } else if let Some(bytes) = extra.get(hex) {
                let mut h = fixed_header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
                tar.append_data(&mut h, format!("blobs/sha256/{hex}"), bytes.as_slice())
                    .at("save")?;
            }
        }
        let file = |tar: &mut tar::Builder<_>, path: &str, data: Vec<u8>| -> io::Result<()> {
            let mut h = fixed_header(tar::EntryType::Regular, 0o644, data.len() as u64);
            tar.append_data(&mut h, path, data.as_slice())
        };
        file(&mut tar, "index.json", index).at("save")?;
        file(&mut tar, "manifest.json", docker_manifest).at("save")?;
        file(
            &mut tar,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        )
        .at("save")?;
        if let Some(repositories) = repositories {
            file(&mut tar, "repositories", repositories).at("save")?;
        }
        tar.into_inner().at("save")?.flush().at("save")?;
        Ok(())
    }

    /// `kiln save --format oci-dir`: an OCI image layout directory at
    /// `dir`, which must not exist yet. Built beside it and renamed into
    /// place, so a failure never leaves a partial layout.
    pub fn save_dir(
        &self,
        images: &[(Image, Option<Reference>)],
        dir: &std::path::Path,
    ) -> Result<()> {
        if dir.exists() {
            return Err(StoreError::Invalid(format!(
                "{} already exists",
                dir.display()
            )));
        }
        let plan = self.save_plan(images)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.with_file_name(format!(".{name}.kiln-{}", std::process::id()));
        let result = (|| -> Result<()> {
            let blob_dir = tmp.join("blobs/sha256");
            fs::create_dir_all(&blob_dir).at(&blob_dir)?;
            for (hex, (digest, size)) in &plan.blobs {
                // Copied, not hardlinked: an edit in the layout must never
                // change a blob in the store. Verified as it is copied.
                let dest = blob_dir.join(hex);
                let mut from =
                    VerifyingReader::new(self.blobs.open_blob(digest)?, digest.clone(), *size);
                let mut to = fs::File::create(&dest).at(&dest)?;
                io::copy(&mut from, &mut to).at(self.blobs.path(digest))?;
            }
            for (hex, bytes) in &plan.extra {
                let dest = blob_dir.join(hex);
                fs::write(&dest, bytes).at(&dest)?;
            }
            fs::write(tmp.join("index.json"), &plan.index).at(tmp.join("index.json"))?;
            fs::write(tmp.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
                .at(tmp.join("oci-layout"))?;
            fs::rename(&tmp, dir).at(dir)
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }
}

struct SavePlan {
    /// hex → (digest, size the manifest gives).
    blobs: BTreeMap<String, (Digest, u64)>,
    /// Blobs made for the archive alone (a multi-platform image's index).
    extra: BTreeMap<String, Vec<u8>>,
    index: Vec<u8>,
    docker_manifest: Vec<u8>,
    repositories: Option<Vec<u8>>,
}

/// Files of an archive or layout as they arrive: blobs go to the store
/// (verified when named by digest), the small JSON files stay in memory.
struct Ingest<'a> {
    store: &'a Store,
    source: &'a str,
    added: &'a mut HashSet<Digest>,
    files: Files,
    json_files: JsonFiles,
}

impl<'a> Ingest<'a> {
    fn new(store: &'a Store, source: &'a str, added: &'a mut HashSet<Digest>) -> Self {
        Ingest {
            store,
            source,
            added,
            files: BTreeMap::new(),
            json_files: BTreeMap::new(),
        }
    }

    fn file(&mut self, path: &str, size: u64, reader: &mut dyn Read) -> Result<()> {
        let source = self.source;
        let bad = |reason: String| StoreError::BadArchive {
            file: source.to_string(),
            reason,
        };
        let path = path.trim_start_matches("./").to_string();
        if matches!(
            path.as_str(),
            "manifest.json" | "index.json" | "oci-layout" | "repositories"
        ) {
            if size > MAX_JSON {
                return Err(bad(format!("{path} is implausibly large")));
            }
            let mut buf = Vec::new();
            reader
                .read_to_end(&mut buf)
                .map_err(|e| bad(format!("reading {path}: {e}")))?;
            self.json_files.insert(path, buf);
            return Ok(());
        }
        // OCI layout blobs are named by digest: verify while storing.
        let expected: Option<Digest> = path
            .strip_prefix("blobs/sha256/")
            .map(|hex| format!("sha256:{hex}").parse())
            .transpose()
            .map_err(|e| bad(format!("{path}: {e}")))?;
        let blobs = self.store.blobs();
        let entry = match &expected {
            Some(d) if blobs.contains(d) => {
                io::copy(reader, &mut io::sink()).map_err(|e| bad(format!("{path}: {e}")))?;
                (d.clone(), size)
            }
            _ => {
                let what = format!("{source}: {path}");
                let (d, s, created) =
                    blobs.put_reader(reader, expected.as_ref().map(|d| (d, Some(size))), &what)?;
                if created {
                    self.added.insert(d.clone());
                }
                (d, s)
            }
        };
        self.files.insert(path, entry);
        Ok(())
    }

    fn finish(self) -> (Files, JsonFiles) {
        (self.files, self.json_files)
    }
}

fn fixed_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

fn names_from_annotations(
    annotations: Option<&std::collections::HashMap<String, String>>,
    source: &str,
) -> Vec<Reference> {
    let Some(a) = annotations else {
        return Vec::new();
    };
    if let Some(full) = a
        .get("io.containerd.image.name")
        .and_then(|n| Reference::parse(n).ok())
    {
        return vec![full];
    }
    let Some(name) = a.get("org.opencontainers.image.ref.name") else {
        return Vec::new();
    };
    // podman/skopeo write the whole reference into ref.name.
    if name.contains('/') || name.contains(':') {
        return Reference::parse(name).into_iter().collect();
    }
    // A bare tag (umoci, `skopeo copy oci:layout:latest`) names the image
    // only together with the layout: skopeo calls it `oci:<path>:<tag>`.
    // kiln names it the same way, `<layout file name>:<tag>`.
    bare_tag_name(source, name).into_iter().collect()
}

/// `<stem of the layout's file name>:<tag>`, if that is a valid reference
/// (`/x/busybox-oci` + `latest` → `busybox-oci:latest`).
fn bare_tag_name(source: &str, tag: &str) -> Option<Reference> {
    let file = std::path::Path::new(source.trim_end_matches('/')).file_name()?;
    let mut stem = file.to_string_lossy().to_lowercase();
    for ext in [".tgz", ".gz", ".zst", ".tar", ".oci"] {
        if let Some(s) = stem.strip_suffix(ext) {
            stem = s.to_string();
        }
    }
    let repo: String = stem
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '-',
        })
        .collect();
    let repo = repo.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if repo.is_empty() {
        return None;
    }
    Reference::parse(&format!("{repo}:{tag}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ref_name: &str, source: &str) -> Vec<String> {
        let a = std::collections::HashMap::from([(
            "org.opencontainers.image.ref.name".to_string(),
            ref_name.to_string(),
        )]);
        names_from_annotations(Some(&a), source)
            .iter()
            .map(|r| r.familiar())
            .collect()
    }

    /// A layout's bare tag names the image after the layout, as skopeo's
    /// `oci:<path>:<tag>` does; a full reference is taken as it is.
    #[test]
    fn bare_tags_are_named_after_the_layout() {
        assert_eq!(
            names("latest", "/var/lib/bench-anchors/busybox-oci"),
            ["busybox-oci:latest"]
        );
        assert_eq!(names("v1", "./My Image.tar.gz"), ["my-image:v1"]);
        assert_eq!(names("latest", "layout/"), ["layout:latest"]);
        assert_eq!(names("quay.io/a/b:2", "x.tar"), ["quay.io/a/b:2"]);
        // Nothing usable: no name rather than a wrong one.
        assert!(names("latest", "-").is_empty());
        assert!(names("not a tag!", "x.tar").is_empty());
    }
}
