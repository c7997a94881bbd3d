//! Push: every blob the registry lacks (HEAD first), mounted from another
//! repository of the same registry when the store knows one that holds it,
//! else uploaded in one PUT or, past `chunk_size`, in PATCH chunks; then
//! the manifest, byte for byte as stored, so its digest is unchanged.

use crate::client::{status_message, Target};
use crate::pull::BlobDesc;
use crate::{Client, Error};
use kiln_store::{Digest, Image, Reference, Store, MEDIA_OCI_MANIFEST};
use std::io::Read;
use ureq::http::Response;
use ureq::Body;

/// What a push did.
#[derive(Debug, Clone, Default)]
pub struct Pushed {
    /// The manifest digest (`repo@digest` now names the image remotely).
    pub digest: Option<Digest>,
    pub uploaded: usize,
    pub mounted: usize,
    pub existing: usize,
    pub bytes_uploaded: u64,
}

enum BlobOutcome {
    Existing,
    Mounted,
    Uploaded,
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A `Location` answer as an absolute URL.
fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        format!("{base}{location}")
    }
}

fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

impl Client {
    /// `kiln push`: uploads `image` as `reference`.
    pub fn push(
        &self,
        store: &Store,
        image: &Image,
        reference: &Reference,
    ) -> Result<Pushed, Error> {
        let what = reference.familiar();
        // A built image's layers are compressed now (once: the blobs are
        // kept); what is pushed is that manifest, the same image ID.
        let image = &store
            .materialize(image, kiln_store::layer::Compression::Gzip)
            .map_err(|e| Error::protocol(&what, e.to_string()))?;
        let layers = image
            .layers()
            .map_err(|e| Error::protocol(&what, e.to_string()))?;
        let config_size = store
            .blobs()
            .size(&image.config_digest)
            .map_err(|e| Error::protocol(&what, e.to_string()))?;
        let mut blobs: Vec<(Digest, u64)> =
            layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
        blobs.push((image.config_digest.clone(), config_size));
        let mut report = self.push_blobs(store, reference, &blobs)?;
        let manifest = store
            .blobs()
            .read(&image.manifest_digest)
            .map_err(|e| Error::protocol(&what, e.to_string()))?;
        let digest = self.push_manifest(reference, &manifest)?;
        // `repo@digest` now names the image remotely: recorded, as a pull
        // records it (RepoDigests). Best effort: the push itself is done.
        if digest == image.manifest_digest {
            let _ = store.name_by_digest(reference, &digest);
        }
        report.digest = Some(digest);
        Ok(report)
    }

    /// Uploads the blobs (from the store) the repository lacks,
    /// `parallel_transfers` at a time.
    pub fn push_blobs(
        &self,
        store: &Store,
        reference: &Reference,
        blobs: &[(Digest, u64)],
    ) -> Result<Pushed, Error> {
        let what = reference.familiar();
        let mut blobs: Vec<BlobDesc> = blobs
            .iter()
            .map(|(digest, size)| BlobDesc {
                digest: digest.clone(),
                size: *size,
            })
            .collect();
        blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        blobs.dedup_by(|a, b| a.digest == b.digest);
        let outcomes = self.in_parallel(&blobs, |blob| {
            self.push_blob(store, reference, blob, &what)
                .map(|o| (o, blob.size))
        })?;
        let mut report = Pushed::default();
        for (outcome, size) in outcomes {
            match outcome {
                BlobOutcome::Existing => report.existing += 1,
                BlobOutcome::Mounted => report.mounted += 1,
                BlobOutcome::Uploaded => {
                    report.uploaded += 1;
                    report.bytes_uploaded += size;
                }
            }
        }
        let all: Vec<Digest> = blobs.iter().map(|b| b.digest.clone()).collect();
        let _ = store.record_blob_sources(&all, &reference.repository());
        Ok(report)
    }

    /// PUTs a manifest (its blobs must be there) under the reference's tag
    /// (or its digest); returns the digest, checked against the
    /// registry's.
    pub fn push_manifest(&self, reference: &Reference, manifest: &[u8]) -> Result<Digest, Error> {
        let what = reference.familiar();
        let digest = Digest::of(manifest);
        let media_type = serde_json::from_slice::<serde_json::Value>(manifest)
            .ok()
            .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
            .unwrap_or_else(|| MEDIA_OCI_MANIFEST.to_string());
        let tag_or_digest = reference.tag.clone().unwrap_or_else(|| digest.to_string());
        let target = Target {
            domain: &reference.domain,
            scopes: vec![format!("repository:{}:pull,push", reference.path)],
            what: &what,
            retry: true,
            mirrored: false,
        };
        let mut resp = self.send(&target, &|base, auth| {
            let mut req = self
                .agent_for(base)
                .put(format!(
                    "{base}/v2/{}/manifests/{tag_or_digest}",
                    reference.path
                ))
                .header("Content-Type", &media_type);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send(manifest)
        })?;
        if resp.status().as_u16() != 201 {
            return Err(Error::protocol(
                &what,
                format!("manifest upload: {}", status_message(&mut resp)),
            ));
        }
        if let Some(d) = header(&resp, "docker-content-digest") {
            if d != digest.to_string() {
                return Err(Error::protocol(
                    &what,
                    format!("the registry stored the manifest as {d}, not {digest}"),
                ));
            }
        }
        Ok(digest)
    }

    /// One blob: already there, mounted from another repository of the
    /// same registry that this store pulled it from, or uploaded (in
    /// chunks past `chunk_size`).
    fn push_blob(
        &self,
        store: &Store,
        reference: &Reference,
        blob: &BlobDesc,
        what: &str,
    ) -> Result<BlobOutcome, Error> {
        let push = BlobPush {
            client: self,
            reference,
            blob,
            what,
        };
        let path = &reference.path;
        let resp = self.send(&push.target(None), &|base, auth| {
            let mut req = self
                .agent_for(base)
                .head(format!("{base}/v2/{path}/blobs/{}", blob.digest));
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.call()
        })?;
        if resp.status().as_u16() == 200 {
            return Ok(BlobOutcome::Existing);
        }
        let prefix = format!("{}/", reference.domain);
        let mount_from = store
            .blob_sources(&blob.digest)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.strip_prefix(&prefix).map(str::to_string))
            .find(|p| p != path);
        let target = push.target(
            mount_from
                .as_ref()
                .map(|from| format!("repository:{from}:pull")),
        );
        let mut resp = self.send(&target, &|base, auth| {
            let mut url = format!("{base}/v2/{path}/blobs/uploads/");
            if let Some(from) = &mount_from {
                url = format!("{url}?mount={}&from={from}", blob.digest);
            }
            let mut req = self.agent_for(&url).post(&url);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send_empty()
        })?;
        match resp.status().as_u16() {
            201 if mount_from.is_some() => return Ok(BlobOutcome::Mounted),
            202 => {}
            _ => return Err(push.fail(format!("upload start: {}", status_message(&mut resp)))),
        }
        let base = self.base_url(&reference.domain)?;
        let location = absolute(
            &base,
            &header(&resp, "location")
                .ok_or_else(|| push.fail("upload without a Location".into()))?,
        );
        let file = store.blobs().path(&blob.digest);
        if blob.size > self.options.chunk_size.max(1) {
            push.chunked(&file, &base, location)?;
        } else {
            push.whole(&file, &location)?;
        }
        Ok(BlobOutcome::Uploaded)
    }
}

/// One blob's upload, once the registry gave its Location.
struct BlobPush<'a> {
    client: &'a Client,
    reference: &'a Reference,
    blob: &'a BlobDesc,
    what: &'a str,
}

impl BlobPush<'_> {
    /// Push access to the repository, plus `extra` scope (a mount's
    /// source).
    fn target(&self, extra: Option<String>) -> Target<'_> {
        Target {
            domain: &self.reference.domain,
            scopes: std::iter::once(format!("repository:{}:pull,push", self.reference.path))
                .chain(extra)
                .collect(),
            what: self.what,
            retry: true,
            mirrored: false,
        }
    }

    fn fail(&self, msg: String) -> Error {
        Error::protocol(self.what, format!("blob {}: {msg}", self.blob.digest))
    }

    fn open(&self, file: &std::path::Path) -> Result<std::fs::File, Error> {
        std::fs::File::open(file).map_err(|e| self.fail(format!("{}: {e}", file.display())))
    }

    /// One PUT with the whole blob.
    fn whole(&self, file: &std::path::Path, location: &str) -> Result<(), Error> {
        let url = with_query(location, "digest", &self.blob.digest.to_string());
        let mut resp = self.client.send(&self.target(None), &|_, auth| {
            let body = self
                .open(file)
                .map_err(|e| ureq::Error::Io(std::io::Error::other(e)))?;
            let mut req = self
                .client
                .agent_for(&url)
                .put(&url)
                .header("Content-Type", "application/octet-stream");
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send(body)
        })?;
        if resp.status().as_u16() != 201 {
            return Err(self.fail(format!("upload: {}", status_message(&mut resp))));
        }
        Ok(())
    }

    /// PATCH each range (the registry answers with where the next one
    /// goes; a chunk is never re-sent blindly), then PUT the digest.
    fn chunked(
        &self,
        file: &std::path::Path,
        base: &str,
        mut location: String,
    ) -> Result<(), Error> {
        let chunk = self.client.options.chunk_size.max(1);
        let mut file = self.open(file)?;
        let mut offset = 0u64;
        let mut buf = Vec::with_capacity(chunk as usize);
        while offset < self.blob.size {
            buf.clear();
            (&mut file)
                .take(chunk)
                .read_to_end(&mut buf)
                .map_err(|e| self.fail(e.to_string()))?;
            if buf.is_empty() {
                return Err(self.fail("blob shorter than its size".into()));
            }
            let end = offset + buf.len() as u64 - 1;
            let mut t = self.target(None);
            t.retry = false;
            let loc = location.clone();
            let mut resp = self.client.send(&t, &|_, auth| {
                let mut req = self
                    .client
                    .agent_for(&loc)
                    .patch(&loc)
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", format!("{offset}-{end}"));
                if let Some(a) = auth {
                    req = req.header("Authorization", a);
                }
                req.send(&buf[..])
            })?;
            if resp.status().as_u16() != 202 {
                return Err(self.fail(format!(
                    "chunk {offset}-{end}: {}",
                    status_message(&mut resp)
                )));
            }
            if let Some(l) = header(&resp, "location") {
                location = absolute(base, &l);
            }
            offset = end + 1;
        }
        let url = with_query(&location, "digest", &self.blob.digest.to_string());
        let mut resp = self.client.send(&self.target(None), &|_, auth| {
            let mut req = self.client.agent_for(&url).put(&url);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send_empty()
        })?;
        if resp.status().as_u16() != 201 {
            return Err(self.fail(format!("upload end: {}", status_message(&mut resp))));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_and_take_queries() {
        assert_eq!(
            absolute("http://h:1", "/v2/x/blobs/uploads/u?_state=s"),
            "http://h:1/v2/x/blobs/uploads/u?_state=s"
        );
        assert_eq!(absolute("http://h:1", "https://o/u"), "https://o/u");
        assert_eq!(
            with_query("http://h/u?a=b", "digest", "d"),
            "http://h/u?a=b&digest=d"
        );
        assert_eq!(
            with_query("http://h/u", "digest", "d"),
            "http://h/u?digest=d"
        );
    }
}
