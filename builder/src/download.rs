//! `ADD <url>` downloads for one build: each URL is fetched at most once,
//! into its own one-file directory that the copy reads like a context.
//! Without `--checksum` the content must be known before the cache key
//! is, so the download happens while keys are computed; with one, the
//! checksum is the key and a cache hit downloads nothing.

use kiln_registry::{Client, Download};
use kiln_store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::UNIX_EPOCH;

/// A download (`ADD <url>`) that failed or did not match its checksum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DownloadError(pub String);

/// A finished download: `dir` holds one file.
#[derive(Debug)]
pub struct Fetched {
    pub dir: PathBuf,
    pub download: Download,
}

impl Fetched {
    /// What a download contributes to its cache key: the content digest
    /// and the time the file gets.
    pub fn content_key(&self) -> String {
        let secs = self
            .download
            .last_modified
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        format!("{} mtime={secs}", self.download.digest)
    }
}

type Slot = Arc<OnceLock<Result<Arc<Fetched>, String>>>;

/// The downloads of a build; the files go when the build ends.
pub struct Downloads {
    client: Arc<Client>,
    root: PathBuf,
    slots: Mutex<HashMap<(String, String), Slot>>,
    count: AtomicUsize,
}

impl Downloads {
    pub fn new(store: &Store, client: Arc<Client>) -> Result<Downloads, DownloadError> {
        Self::new_inner(store, client).map_err(DownloadError)
    }

    fn new_inner(store: &Store, client: Arc<Client>) -> Result<Downloads, String> {
        // A pid-tagged scratch dir: a crashed build's leftovers are swept.
        let root = store.scratch_dir("download").map_err(|e| e.to_string())?;
        Ok(Downloads {
            client,
            root,
            slots: Mutex::new(HashMap::new()),
            count: AtomicUsize::new(0),
        })
    }

    /// Downloads `url` as `filename` (once per build), checking `checksum`
    /// (`sha256:<hex>`) when given.
    pub fn get(
        &self,
        url: &str,
        filename: &str,
        checksum: Option<&str>,
    ) -> Result<Arc<Fetched>, DownloadError> {
        self.get_inner(url, filename, checksum)
            .map_err(DownloadError)
    }

    fn get_inner(
        &self,
        url: &str,
        filename: &str,
        checksum: Option<&str>,
    ) -> Result<Arc<Fetched>, String> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((url.to_string(), filename.to_string()))
            .or_default()
            .clone();
        let fetched = slot
            .get_or_init(|| self.fetch(url, filename).map(Arc::new))
            .clone()?;
        if let Some(want) = checksum {
            let got = fetched.download.digest.to_string();
            if !want.eq_ignore_ascii_case(&got) {
                return Err(format!(
                    "digest mismatch for {url}: {got} (expected: {want})"
                ));
            }
        }
        Ok(fetched)
    }

    fn fetch(&self, url: &str, filename: &str) -> Result<Fetched, String> {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.join(n.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = dir.join(filename);
        let download = self
            .client
            .download(url, &file)
            .map_err(|e| e.to_string())?;
        // Last-Modified is the file's time, as in docker; without one the
        // epoch, so the layer does not depend on when it was built.
        let mtime = download.last_modified.unwrap_or(UNIX_EPOCH);
        let f = std::fs::File::options()
            .write(true)
            .open(&file)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        f.set_modified(mtime)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(Fetched { dir, download })
    }
}

impl Drop for Downloads {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
