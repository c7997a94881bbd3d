//! Plain downloads (`ADD https://...`): the body streams into a file while
//! it is hashed; `Last-Modified` becomes the file's mtime, as docker does.

use crate::client::{backoff, transport_message};
use crate::{Client, Error};
use kiln_store::{Digest, HashingWriter};
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

/// A finished download.
#[derive(Debug, Clone)]
pub struct Download {
    pub digest: Digest,
    pub size: u64,
    /// From `Last-Modified`, if the server sent one.
    pub last_modified: Option<SystemTime>,
}

impl Client {
    /// GETs `url` into a new file at `dest` (mode 0600, as BuildKit
    /// writes downloads). Connection failures and 5xx are retried.
    pub fn download(&self, url: &str, dest: &Path) -> Result<Download, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.options.attempts;
            let resp = match self.agent_for(url).get(url).call() {
                Ok(r) => r,
                Err(e) if !last && !matches!(e, ureq::Error::HostNotFound) => {
                    std::thread::sleep(backoff(attempt));
                    continue;
                }
                Err(e) => return Err(Error::transport(url, transport_message(&e))),
            };
            let status = resp.status().as_u16();
            if status >= 500 && !last {
                std::thread::sleep(backoff(attempt));
                continue;
            }
            if status != 200 {
                return Err(Error::status(
                    url,
                    status,
                    format!("download failed: HTTP {status}"),
                ));
            }
            let last_modified = resp
                .headers()
                .get("last-modified")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok());
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(dest)
                .map_err(|e| Error::protocol(url, format!("{}: {e}", dest.display())))?;
            let mut w = HashingWriter::new(std::io::BufWriter::new(file));
            let mut body = resp.into_body().into_reader();
            match std::io::copy(&mut body, &mut w).and_then(|_| w.flush()) {
                Ok(()) => {}
                Err(_) if !last => {
                    std::thread::sleep(backoff(attempt));
                    continue;
                }
                Err(e) => return Err(Error::transport(url, format!("download failed: {e}"))),
            }
            let (_, digest, size) = w.finish();
            return Ok(Download {
                digest,
                size,
                last_modified,
            });
        }
    }
}
