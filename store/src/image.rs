//! Image records: the OCI manifest, the config (kept as JSON so docker's
//! extensions — Healthcheck, OnBuild, Shell — survive), and the views
//! `kiln inspect` / `kiln history` / `kiln images` print.

use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::layer::Compression;
use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde_json::{json, Map, Value};

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// One image in the store.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: Value,
    /// Full references naming it.
    pub names: Vec<String>,
}

/// A layer as the manifest and the config see it together. Its JSON form
/// (`{digest, diff_id, size, media_type}`) is how the cache index and
/// cache exports name layers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerRef {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
}

impl From<crate::layer::LayerBlob> for LayerRef {
    fn from(b: crate::layer::LayerBlob) -> LayerRef {
        LayerRef {
            digest: b.digest,
            diff_id: b.diff_id,
            size: b.size,
            media_type: b.media_type.to_string(),
        }
    }
}

pub(crate) fn oci_digest(d: &Digest) -> oci_spec::image::Digest {
    d.to_string()
        .parse()
        .expect("a kiln digest is always a valid OCI digest")
}

pub(crate) fn kiln_digest(d: &oci_spec::image::Digest, what: &str) -> Result<Digest> {
    d.to_string()
        .parse()
        .map_err(|e: crate::digest::DigestError| StoreError::Invalid(format!("{what}: {e}")))
}

pub(crate) fn media_type_str(mt: &MediaType) -> String {
    mt.to_string()
}

/// A descriptor for a blob.
pub(crate) fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    Descriptor::new(MediaType::from(media_type), size, oci_digest(digest))
}

impl Image {
    /// Layers in order (base first), with their diff IDs from the config.
    pub fn layers(&self) -> Result<Vec<LayerRef>> {
        let diff_ids = self.diff_ids()?;
        let layers = self.manifest.layers();
        if diff_ids.len() != layers.len() {
            return Err(StoreError::Invalid(format!(
                "image {}: manifest has {} layers but config lists {} diff IDs",
                self.config_digest,
                layers.len(),
                diff_ids.len()
            )));
        }
        layers
            .iter()
            .zip(diff_ids)
            .map(|(l, diff_id)| {
                let media_type = media_type_str(l.media_type());
                if Compression::from_media_type(&media_type).is_none() {
                    return Err(StoreError::UnsupportedMediaType {
                        what: format!("layer {}", l.digest()),
                        media_type,
                    });
                }
                Ok(LayerRef {
                    digest: kiln_digest(l.digest(), "layer")?,
                    diff_id,
                    size: l.size(),
                    media_type,
                })
            })
            .collect()
    }

    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        let ids = self
            .config
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        ids.iter()
            .map(|v| {
                v.as_str()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e: crate::digest::DigestError| {
                        StoreError::Invalid(format!("config diff_ids: {e}"))
                    })
            })
            .collect()
    }

    /// The short image ID docker prints (12 hex digits of the config digest).
    pub fn short_id(&self) -> String {
        self.config_digest.hex()[..12].to_string()
    }

    pub fn created(&self) -> Option<&str> {
        self.config.get("created").and_then(Value::as_str)
    }

    /// Sum of the layer blobs and the config.
    pub fn size(&self) -> u64 {
        self.manifest.layers().iter().map(|l| l.size()).sum::<u64>() + self.manifest.config().size()
    }

    /// `docker image inspect`-shaped JSON.
    pub fn inspect(&self) -> Value {
        let cfg = self.config.get("config").cloned().unwrap_or(Value::Null);
        let field = |k: &str| cfg.get(k).cloned().unwrap_or(Value::Null);
        let mut config = Map::new();
        for key in [
            "Hostname",
            "Domainname",
            "User",
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "ExposedPorts",
            "Tty",
            "OpenStdin",
            "StdinOnce",
            "Env",
            "Cmd",
            "Healthcheck",
            "ArgsEscaped",
            "Image",
            "Volumes",
            "WorkingDir",
            "Entrypoint",
            "OnBuild",
            "Labels",
            "StopSignal",
            "Shell",
        ] {
            let v = match key {
                "Hostname" | "Domainname" | "Image" => {
                    field(key).as_str().map(Value::from).unwrap_or(json!(""))
                }
                "User" | "WorkingDir" => field(key).as_str().map(Value::from).unwrap_or(json!("")),
                "AttachStdin" | "AttachStdout" | "AttachStderr" | "Tty" | "OpenStdin"
                | "StdinOnce" => {
                    json!(false)
                }
                _ => field(key),
            };
            if key == "ArgsEscaped" && v.is_null()
                || key == "Healthcheck" && v.is_null()
                || key == "Shell" && v.is_null()
                || key == "StopSignal" && v.is_null()
            {
                continue;
            }
            config.insert(key.to_string(), v);
        }
        let repo_tags: Vec<String> = self
            .names
            .iter()
            .filter_map(|n| crate::Reference::parse(n).ok())
            .filter(|r| r.digest.is_none())
            .map(|r| r.familiar())
            .collect();
        // `repo@digest` names: what a pull or push recorded (docker's form).
        let repo_digests: Vec<String> = self
            .names
            .iter()
            .filter_map(|n| crate::Reference::parse(n).ok())
            .filter(|r| r.digest.is_some())
            .map(|r| r.familiar())
            .collect();
        let layers: Vec<Value> = self
            .diff_ids()
            .unwrap_or_default()
            .iter()
            .map(|d| json!(d.to_string()))
            .collect();
        json!({
            "Id": self.config_digest.to_string(),
            "RepoTags": repo_tags,
            "RepoDigests": repo_digests,
            "Parent": "",
            "Comment": self.config.pointer("/history/0/comment").cloned().unwrap_or(json!("")),
            "Created": self.created().unwrap_or(""),
            "DockerVersion": "",
            "Author": self.config.get("author").cloned().unwrap_or(json!("")),
            "Config": Value::Object(config),
            "Architecture": self.config.get("architecture").cloned().unwrap_or(json!("")),
            "Variant": self.config.get("variant").cloned().unwrap_or(Value::Null),
            "Os": self.config.get("os").cloned().unwrap_or(json!("")),
            "Size": self.size(),
            "RootFS": { "Type": "layers", "Layers": layers },
            "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
            "Descriptor": {
                "mediaType": MEDIA_OCI_MANIFEST,
                "digest": self.manifest_digest.to_string(),
            },
        })
    }

    /// History rows, newest first; `size` is the layer blob's for entries
    /// that made a layer, 0 for config-only steps.
    pub fn history(&self) -> Vec<HistoryRow> {
        let entries = self
            .config
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut layer_sizes = self.manifest.layers().iter().map(|l| l.size());
        let mut rows: Vec<HistoryRow> = entries
            .iter()
            .map(|h| {
                let empty = h
                    .get("empty_layer")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                HistoryRow {
                    created: h
                        .get("created")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    created_by: h
                        .get("created_by")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    size: if empty {
                        0
                    } else {
                        layer_sizes.next().unwrap_or(0)
                    },
                    comment: h
                        .get("comment")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                }
            })
            .collect();
        rows.reverse();
        rows
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub created: String,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

/// The host's platform in OCI terms.
/// An image config's platform as `os/arch[/variant]` (`linux/amd64`).
pub fn platform_name(config: &Value) -> String {
    let field = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or("");
    let (os, arch, variant) = (field("os"), field("architecture"), field("variant"));
    let os = if os.is_empty() { "linux" } else { os };
    if variant.is_empty() {
        format!("{os}/{arch}")
    } else {
        format!("{os}/{arch}/{variant}")
    }
}

/// An image config's platform as an OCI descriptor's `platform` object.
pub fn platform_json(config: &Value) -> Value {
    let field = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or("");
    let mut p = serde_json::json!({ "architecture": field("architecture"), "os": field("os") });
    if !field("variant").is_empty() {
        p["variant"] = Value::String(field("variant").to_string());
    }
    p
}

/// This machine's platform as `os/arch`.
pub fn host_platform_name() -> String {
    let (os, arch) = host_platform();
    format!("{os}/{arch}")
}

/// Whether an image of platform `has` serves a request for `wanted`
/// (`os/arch[/variant]`; a wanted variant must match, none wanted
/// matches any).
pub fn platform_matches(has: &str, wanted: &str) -> bool {
    let h: Vec<&str> = has.split('/').collect();
    let w: Vec<&str> = wanted.split('/').collect();
    h.len() >= 2
        && w.len() >= 2
        && h[0] == w[0]
        && h[1] == w[1]
        && (w.len() < 3 || h.get(2) == w.get(2))
}

pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    ("linux", arch)
}

/// Serialises JSON canonically (sorted keys, no spaces), so identical
/// content always gives identical digests.
pub fn canonical_json(v: &impl serde::Serialize) -> Vec<u8> {
    let value = serde_json::to_value(v).expect("serialisable");
    serde_json::to_vec(&value).expect("serialisable")
}
