//! Pull: tag → manifest (through an index to one platform) → config and
//! layer blobs, downloaded concurrently and verified as they stream. The
//! image record is written last; layers are unpacked only when a build or
//! `kiln run` needs their files.

use crate::client::{backoff, status_message, Target};
use crate::{Client, Error};
use kiln_store::{
    Digest, Image, Reference, Store, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use serde_json::Value;

pub(crate) const MEDIA_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// Manifests are small; a bigger answer is not a manifest.
const MAX_MANIFEST: u64 = 4 << 20;

/// An image platform (`linux/amd64`, `linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The machine kiln runs on.
    pub fn host() -> Platform {
        let (os, arch) = kiln_store::host_platform();
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: None,
        }
    }

    /// `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts.get(2).map(|v| v.to_string()),
            }),
            _ => Err(Error::local(s, "invalid platform: want os/arch[/variant]")),
        }
    }

    fn matches(&self, p: &Value) -> bool {
        let field = |k: &str| p.get(k).and_then(Value::as_str);
        field("os") == Some(self.os.as_str())
            && field("architecture") == Some(self.architecture.as_str())
            && match (&self.variant, field("variant")) {
                (Some(want), Some(got)) => want == got,
                (Some(want), None) => want == "v8" && self.architecture == "arm64",
                (None, _) => true,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What a pull brought.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub image: Image,
    /// The digest the registry gave for the reference (an index's digest
    /// for a multi-platform image): `repo@digest` names the image.
    pub repo_digest: Digest,
    /// Blobs downloaded (the rest were already in the store).
    pub blobs_fetched: usize,
    pub bytes_fetched: u64,
}

/// A blob a manifest names.
#[derive(Debug, Clone)]
pub(crate) struct BlobDesc {
    pub digest: Digest,
    pub size: u64,
}

fn descriptor(v: &Value, what: &str) -> Result<BlobDesc, Error> {
    let digest = v
        .get("digest")
        .and_then(Value::as_str)
        .unwrap_or("")
        .parse::<Digest>()
        .map_err(|e| Error::protocol(what, format!("manifest: {e}")))?;
    let size = v
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::protocol(what, "manifest: descriptor without a size"))?;
    Ok(BlobDesc { digest, size })
}

impl Client {
    /// GETs a manifest (or index) by tag or digest; verifies a digest
    /// reference and the registry's `Docker-Content-Digest`.
    pub(crate) fn fetch_manifest(
        &self,
        r: &Reference,
        tag_or_digest: &str,
        what: &str,
    ) -> Result<(Vec<u8>, Digest), Error> {
        let target = Target {
            domain: &r.domain,
            scopes: vec![format!("repository:{}:pull", r.path)],
            what,
            retry: true,
            mirrored: true,
        };
        let accept = [
            MEDIA_OCI_INDEX,
            MEDIA_DOCKER_LIST,
            MEDIA_OCI_MANIFEST,
            MEDIA_DOCKER_MANIFEST,
        ]
        .join(", ");
        let mut resp = self.send(&target, &|base, auth| {
            let mut req = self
                .agent_for(base)
                .get(format!("{base}/v2/{}/manifests/{tag_or_digest}", r.path))
                .header("Accept", &accept);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.call()
        })?;
        if resp.status().as_u16() != 200 {
            let status = resp.status().as_u16();
            return Err(Error::status(what, status, status_message(&mut resp)));
        }
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST)
            .read_to_vec()
            .map_err(|e| Error::protocol(what, format!("reading the manifest: {e}")))?;
        let digest = Digest::of(&bytes);
        let expected = tag_or_digest.parse::<Digest>().ok().or(header_digest);
        if let Some(want) = expected {
            if want != digest {
                return Err(Error::protocol(
                    what,
                    format!("manifest digest mismatch: expected {want}, got {digest}"),
                ));
            }
        }
        Ok((bytes, digest))
    }

    /// Resolves `reference` for `platform` without downloading blobs:
    /// (manifest bytes, manifest digest, repo digest).
    pub fn resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<(Vec<u8>, Digest, Digest), Error> {
        let what = reference.familiar();
        let tag_or_digest = match (&reference.digest, &reference.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        };
        let (bytes, repo_digest) = self.fetch_manifest(reference, &tag_or_digest, &what)?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::protocol(&what, format!("manifest is not JSON: {e}")))?;
        if v.get("manifests").is_none() {
            return Ok((bytes, repo_digest.clone(), repo_digest));
        }
        // An index: pick the platform; attestations are `unknown/unknown`.
        let entries = v["manifests"].as_array().cloned().unwrap_or_default();
        let pick = entries
            .iter()
            .find(|m| m.get("platform").is_some_and(|p| platform.matches(p)));
        let Some(pick) = pick else {
            let mut have: Vec<String> = entries
                .iter()
                .filter_map(|m| {
                    let p = m.get("platform")?;
                    let os = p.get("os")?.as_str()?;
                    let arch = p.get("architecture")?.as_str()?;
                    (os != "unknown").then(|| format!("{os}/{arch}"))
                })
                .collect();
            have.dedup();
            return Err(Error::not_found(
                &what,
                format!(
                    "no image for platform {platform} (the image has: {})",
                    have.join(", ")
                ),
            ));
        };
        let d = descriptor(pick, &what)?;
        let (bytes, digest) = self.fetch_manifest(reference, &d.digest.to_string(), &what)?;
        if bytes.len() as u64 != d.size {
            return Err(Error::protocol(
                &what,
                format!(
                    "manifest {digest}: size mismatch: the index says {}, got {}",
                    d.size,
                    bytes.len()
                ),
            ));
        }
        Ok((bytes, digest, repo_digest))
    }

    /// `kiln pull`: brings `reference` for `platform` into the store and
    /// names it (`repo:tag` and `repo@digest`). A single-platform image
    /// for another platform is refused, as `docker pull` refuses it.
    pub fn pull(
        &self,
        store: &Store,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Pulled, Error> {
        self.pull_for(store, reference, platform, false)
    }

    /// A build's base image: as [`Client::pull`], except that a
    /// single-platform image for another platform is taken (BuildKit
    /// builds on it and warns, InvalidBaseImagePlatform). An index must
    /// still have the platform.
    pub fn pull_base(
        &self,
        store: &Store,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Pulled, Error> {
        self.pull_for(store, reference, platform, true)
    }

    fn pull_for(
        &self,
        store: &Store,
        reference: &Reference,
        platform: &Platform,
        any_single_platform: bool,
    ) -> Result<Pulled, Error> {
        let what = reference.familiar();
        let (manifest_bytes, _manifest_digest, repo_digest) = self.resolve(reference, platform)?;
        let manifest: Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| Error::protocol(&what, format!("manifest is not JSON: {e}")))?;
        if manifest.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
            return Err(Error::protocol(
                &what,
                "docker schema 1 manifests are not supported (re-push the image with a current tool)",
            ));
        }
        let mt = manifest
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(MEDIA_OCI_MANIFEST);
        if mt != MEDIA_OCI_MANIFEST && mt != MEDIA_DOCKER_MANIFEST {
            return Err(Error::protocol(
                &what,
                format!("unsupported manifest media type {mt:?}"),
            ));
        }
        let config = descriptor(&manifest["config"], &what)?;
        let layers: Vec<BlobDesc> = manifest
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|l| descriptor(l, &what))
            .collect::<Result<_, _>>()?;

        // The config first: it says whether this is the right platform.
        let mut fetched = 0;
        let mut bytes = 0;
        if self.fetch_blob(store, reference, &config, &what)? {
            fetched += 1;
            bytes += config.size;
        }
        let config_json: Value = serde_json::from_slice(
            &store
                .blobs()
                .read(&config.digest)
                .map_err(|e| Error::protocol(&what, e.to_string()))?,
        )
        .map_err(|e| Error::protocol(&what, format!("image config is not JSON: {e}")))?;
        let os = config_json.get("os").and_then(Value::as_str).unwrap_or("");
        let arch = config_json
            .get("architecture")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !any_single_platform
            && !os.is_empty()
            && (os != platform.os || arch != platform.architecture)
        {
            return Err(Error::not_found(
                &what,
                format!("the image is for {os}/{arch} only, not {platform}"),
            ));
        }

        let (n, b) = self.fetch_blobs(store, reference, &layers, &what)?;
        fetched += n;
        bytes += b;

        let mut names = Vec::new();
        if reference.tag.is_some() {
            let mut tagged = reference.clone();
            tagged.digest = None;
            names.push(tagged);
        }
        let mut by_digest = reference.clone();
        by_digest.tag = None;
        by_digest.digest = Some(repo_digest.clone());
        names.push(by_digest);
        let image = store
            .commit_pulled(&manifest_bytes, &names)
            .map_err(|e| Error::protocol(&what, e.to_string()))?;
        let all: Vec<Digest> = std::iter::once(config.digest.clone())
            .chain(layers.iter().map(|l| l.digest.clone()))
            .collect();
        // Where blobs came from, so a push to another repository of the
        // same registry can mount them instead of uploading.
        let _ = store.record_blob_sources(&all, &reference.repository());
        Ok(Pulled {
            image,
            repo_digest,
            blobs_fetched: fetched,
            bytes_fetched: bytes,
        })
    }

    /// Downloads the missing blobs, `parallel_transfers` at a time.
    fn fetch_blobs(
        &self,
        store: &Store,
        reference: &Reference,
        blobs: &[BlobDesc],
        what: &str,
    ) -> Result<(usize, u64), Error> {
        // The size of each blob that was downloaded (None: already here).
        let fetched = self.in_parallel(blobs, |blob| {
            self.fetch_blob(store, reference, blob, what)
                .map(|new| new.then_some(blob.size))
        })?;
        let sizes: Vec<u64> = fetched.into_iter().flatten().collect();
        Ok((sizes.len(), sizes.iter().sum()))
    }

    /// Brings one blob of `reference`'s repository into the store (unless
    /// it is there), verified; true if it was downloaded.
    pub fn pull_blob(
        &self,
        store: &Store,
        reference: &Reference,
        digest: &Digest,
        size: u64,
    ) -> Result<bool, Error> {
        let blob = BlobDesc {
            digest: digest.clone(),
            size,
        };
        self.fetch_blob(store, reference, &blob, &reference.familiar())
    }

    /// Streams one blob into the store unless it is there; true if it was
    /// downloaded. A connection lost mid-body is retried from the start
    /// (nothing half-verified is kept); a wrong digest is not retried.
    pub(crate) fn fetch_blob(
        &self,
        store: &Store,
        reference: &Reference,
        blob: &BlobDesc,
        what: &str,
    ) -> Result<bool, Error> {
        if store.blobs().contains(&blob.digest) {
            return Ok(false);
        }
        let target = Target {
            domain: &reference.domain,
            scopes: vec![format!("repository:{}:pull", reference.path)],
            what,
            retry: true,
            mirrored: true,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut resp = self.send(&target, &|base, auth| {
                let mut req = self.agent_for(base).get(format!(
                    "{base}/v2/{}/blobs/{}",
                    reference.path, blob.digest
                ));
                if let Some(a) = auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            })?;
            if resp.status().as_u16() != 200 {
                let status = resp.status().as_u16();
                let msg = status_message(&mut resp);
                return Err(Error::status(
                    what,
                    status,
                    format!("blob {}: {msg}", blob.digest),
                ));
            }
            // One byte past the declared size is enough to know it lies.
            let mut body = std::io::Read::take(resp.into_body().into_reader(), blob.size + 1);
            let label = format!("blob {}", blob.digest);
            match store
                .blobs()
                .put_reader(&mut body, Some((&blob.digest, Some(blob.size))), &label)
            {
                Ok(_) => return Ok(true),
                // The stream broke (the temp file is already gone): again
                // from the start, a few times.
                Err(kiln_store::StoreError::BadArchive { reason, .. }) => {
                    if attempt >= self.options.attempts {
                        return Err(Error::protocol(
                            what,
                            format!(
                                "blob {}: the download broke off {attempt} times ({reason})",
                                blob.digest
                            ),
                        ));
                    }
                    std::thread::sleep(backoff(attempt));
                }
                Err(e) => return Err(Error::protocol(what, e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(p.matches(&serde_json::json!({"os":"linux","architecture":"arm64"})));
        assert!(!p.matches(&serde_json::json!({"os":"linux","architecture":"amd64"})));
        assert!(Platform::parse("linux").is_err());
        let amd = Platform::parse("linux/amd64").unwrap();
        assert!(amd.matches(&serde_json::json!({"os":"linux","architecture":"amd64"})));
    }
}
