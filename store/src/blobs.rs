//! Content-addressed blobs under `blobs/sha256/<hex>`. Every write goes to a
//! temp file in `tmp/`, is hashed while it streams, fsynced, verified, and
//! only then renamed into place: a reader never sees a partial blob, and a
//! crash leaves at most a temp file.

use crate::digest::{Digest, HashingWriter};
use crate::error::{IoContext, Result, StoreError};
use crate::lease::{Keeper, Kind};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique temp path in `dir`, tagged with our pid so a later process can
/// tell abandoned temp files (dead pid) from ones still being written.
pub(crate) fn temp_path(dir: &Path, what: &str) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!("{what}-{}-{n}-{nanos:x}", std::process::id()))
}

#[derive(Clone)]
pub struct Blobs {
    dir: PathBuf,
    tmp: PathBuf,
    /// The store's lease: every blob looked up or written is held.
    pub(crate) keeper: Option<Keeper>,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs").field("dir", &self.dir).finish()
    }
}

/// A blob being written: hash as you go, then [`BlobWriter::commit`].
pub struct BlobWriter {
    /// `None` once committed.
    inner: Option<HashingWriter<io::BufWriter<File>>>,
    tmp: PathBuf,
    blobs: Blobs,
}

fn committed() -> io::Error {
    io::Error::other("blob already committed")
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.as_mut().ok_or_else(committed)?.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.as_mut().ok_or_else(committed)?.flush()
    }
}

impl BlobWriter {
    /// Verifies against `expected` (if given) and moves the blob into place.
    pub fn commit(
        self,
        expected: Option<(&Digest, Option<u64>)>,
        what: &str,
    ) -> Result<(Digest, u64)> {
        self.commit_new(expected, what).map(|(d, s, _)| (d, s))
    }

    /// Like [`BlobWriter::commit`], also saying whether the blob is new to
    /// the store (false when an identical blob was already there).
    pub fn commit_new(
        mut self,
        expected: Option<(&Digest, Option<u64>)>,
        what: &str,
    ) -> Result<(Digest, u64, bool)> {
        let tmp = self.tmp.clone();
        let inner = self.inner.take().ok_or_else(committed).at(&tmp)?;
        let (buf, digest, size) = inner.finish();
        let file = buf.into_inner().map_err(|e| e.into_error()).at(&tmp)?;
        let check = || -> Result<()> {
            if let Some((want, want_size)) = expected {
                if *want != digest {
                    return Err(StoreError::DigestMismatch {
                        what: what.to_string(),
                        expected: want.to_string(),
                        actual: digest.to_string(),
                    });
                }
                if let Some(ws) = want_size {
                    if ws != size {
                        return Err(StoreError::SizeMismatch {
                            what: what.to_string(),
                            expected: ws,
                            actual: size,
                        });
                    }
                }
            }
            file.sync_all().at(&tmp)?;
            Ok(())
        };
        check()?; // on error, Drop removes the temp file
        if let Some(keeper) = &self.blobs.keeper {
            // Held before it appears, so no prune can take it in between.
            keeper.hold_new(Kind::Blob, &digest)?;
        }
        let dest = self.blobs.path(&digest);
        let created = !dest.exists();
        fs::rename(&tmp, &dest).at(&dest)?;
        Ok((digest, size, created))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // Not committed (error or early return): leave nothing behind.
        let _ = fs::remove_file(&self.tmp);
    }
}

impl Blobs {
    pub(crate) fn open(root: &Path) -> Result<Blobs> {
        let dir = root.join("blobs/sha256");
        let tmp = root.join("tmp");
        fs::create_dir_all(&dir).at(&dir)?;
        fs::create_dir_all(&tmp).at(&tmp)?;
        Ok(Blobs {
            dir,
            tmp,
            keeper: None,
        })
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Whether the blob is here. Asking means using it: the blob is held
    /// (see lease.rs), so it stays until the store is closed.
    pub fn contains(&self, digest: &Digest) -> bool {
        let present = |_: Kind, d: &Digest| self.path(d).is_file();
        match &self.keeper {
            Some(k) => k
                .hold(&[(Kind::Blob, digest.clone())], &present)
                .is_ok_and(|p| p[0]),
            None => self.path(digest).is_file(),
        }
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        File::open(self.path(digest)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobMissing {
                digest: digest.to_string(),
            },
            _ => StoreError::Io {
                path: self.path(digest),
                source: e,
            },
        })
    }

    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut data)
            .at(self.path(digest))?;
        Ok(data)
    }

    pub fn size(&self, digest: &Digest) -> Result<u64> {
        Ok(fs::metadata(self.path(digest)).at(self.path(digest))?.len())
    }

    pub fn writer(&self) -> Result<BlobWriter> {
        let tmp = temp_path(&self.tmp, "blob");
        let file = File::create(&tmp).at(&tmp)?;
        Ok(BlobWriter {
            inner: Some(HashingWriter::new(io::BufWriter::with_capacity(
                256 * 1024,
                file,
            ))),
            tmp,
            blobs: self.clone(),
        })
    }

    /// Stores `data`, returning its digest.
    pub fn put(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::of(data);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut w = self.writer()?;
        let tmp = w.tmp.clone();
        w.write_all(data).at(&tmp)?;
        w.commit(Some((&digest, None)), "blob").map(|(d, _)| d)
    }

    /// Streams `reader` into the store; fails (storing nothing) if it does
    /// not hash to `expected`.
    pub fn put_reader(
        &self,
        reader: &mut dyn Read,
        expected: Option<(&Digest, Option<u64>)>,
        what: &str,
    ) -> Result<(Digest, u64, bool)> {
        let mut w = self.writer()?;
        let tmp = w.tmp.clone();
        io::copy(reader, &mut w).map_err(|e| StoreError::BadArchive {
            file: what.to_string(),
            reason: format!("read failed: {e}"),
        })?;
        w.flush().at(&tmp)?;
        w.commit_new(expected, what)
    }

    /// Every blob digest on disk (files with a malformed name are skipped
    /// and reported by `check`).
    pub fn list(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).at(&self.dir)? {
            let entry = entry.at(&self.dir)?;
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
        out.sort();
        Ok(out)
    }

    pub(crate) fn tmp_dir(&self) -> &Path {
        &self.tmp
    }
}
