//! Content checksums of build-context selections, for cache keys.
//!
//! A selection's checksum covers exactly the paths an op reads: per file
//! (mode, size, content), per symlink its target, per directory the sorted
//! (name, child) list — never mtimes, owners or the context's absolute
//! path, so a fresh checkout on another machine, by another user, keys the
//! same. File contents are memoized in the store by (dev, inode, size,
//! mtime, ctime), like git's index: an unchanged context costs one `stat`
//! per file and reads nothing.

use crate::db::MemoRow;
use crate::digest::{Digest, HashingReader};
use crate::error::{IoContext, Result, StoreError};
use crate::Store;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// (path, short checksum) of each file in a selection.
pub type FileSums = Vec<(String, String)>;

/// How much work a checksum took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContextStats {
    /// Files whose content was read and hashed.
    pub files_hashed: usize,
    /// Files answered from the memo.
    pub memo_hits: usize,
}

struct Walk<'a> {
    root: PathBuf,
    excluded: &'a dyn Fn(&Path) -> bool,
    memo: HashMap<(u64, u64), MemoRow>,
    fresh: Vec<((u64, u64), MemoRow)>,
    stats: ContextStats,
    /// (path, short checksum) of every file and symlink walked.
    files: FileSums,
}

impl Walk<'_> {
    fn node(&mut self, rel: &Path) -> Result<[u8; 32]> {
        let path = self.root.join(rel);
        let meta = fs::symlink_metadata(&path).at(&path)?;
        let ft = meta.file_type();
        let mut h = Sha256::new();
        if ft.is_symlink() {
            h.update(b"symlink\0");
            h.update(fs::read_link(&path).at(&path)?.as_os_str().as_bytes());
        } else if ft.is_file() {
            h.update(b"file\0");
            h.update((meta.mode() & 0o7777).to_be_bytes());
            h.update(meta.len().to_be_bytes());
            h.update(self.content(&path, &meta)?.as_bytes());
        } else if ft.is_dir() {
            h.update(b"dir\0");
            h.update((meta.mode() & 0o7777).to_be_bytes());
            let mut names: Vec<std::ffi::OsString> = fs::read_dir(&path)
                .at(&path)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()
                .at(&path)?;
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for name in names {
                let child = rel.join(&name);
                if (self.excluded)(&child) {
                    continue;
                }
                let sum = self.node(&child)?;
                h.update((name.len() as u64).to_be_bytes());
                h.update(name.as_bytes());
                h.update(sum);
            }
        } else {
            h.update(b"other\0");
            h.update(u64::from(ft.is_fifo()).to_be_bytes());
        }
        let sum: [u8; 32] = h.finalize().into();
        if !ft.is_dir() {
            self.files
                .push((rel.to_string_lossy().into_owned(), hex::encode(&sum[..8])));
        }
        Ok(sum)
    }

    /// The content hash, from the memo when (size, mtime, ctime) still match.
    fn content(&mut self, path: &Path, meta: &fs::Metadata) -> Result<String> {
        let key = (meta.dev(), meta.ino());
        let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        let ctime_ns = meta.ctime() * 1_000_000_000 + meta.ctime_nsec();
        if let Some(m) = self.memo.get(&key) {
            if m.size == meta.len() && m.mtime_ns == mtime_ns && m.ctime_ns == ctime_ns {
                self.stats.memo_hits += 1;
                return Ok(m.sha256.clone());
            }
        }
        let mut r = HashingReader::new(fs::File::open(path).at(path)?);
        io::copy(&mut r, &mut io::sink()).at(path)?;
        let sha256 = r.finish().0.hex();
        self.stats.files_hashed += 1;
        let row = MemoRow {
            size: meta.len(),
            mtime_ns,
            ctime_ns,
            sha256: sha256.clone(),
        };
        self.memo.insert(key, row.clone());
        self.fresh.push((key, row));
        Ok(sha256)
    }
}

impl Store {
    /// The checksum of `paths` (relative to `root`, in the order given) in a
    /// build context, skipping whatever `excluded` says (e.g. .dockerignore).
    pub fn context_checksum(
        &self,
        root: &Path,
        paths: &[String],
        excluded: &dyn Fn(&Path) -> bool,
    ) -> Result<(Digest, ContextStats)> {
        self.context_checksum_files(root, paths, excluded)
            .map(|(d, stats, _)| (d, stats))
    }

    /// [`Store::context_checksum`], also giving each file's (and symlink's)
    /// path and short checksum: what `--explain` compares to say which
    /// file changed.
    pub fn context_checksum_files(
        &self,
        root: &Path,
        paths: &[String],
        excluded: &dyn Fn(&Path) -> bool,
    ) -> Result<(Digest, ContextStats, FileSums)> {
        let memo = self.db().context_memo()?;
        let mut walk = Walk {
            root: root.to_path_buf(),
            excluded,
            memo,
            fresh: Vec::new(),
            stats: ContextStats::default(),
            files: Vec::new(),
        };
        let mut h = Sha256::new();
        for p in paths {
            let rel = Path::new(p.trim_start_matches('/'));
            if rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(StoreError::Invalid(format!(
                    "{p}: outside the build context"
                )));
            }
            if !rel.as_os_str().is_empty() && excluded(rel) {
                return Err(StoreError::Invalid(format!(
                    "{p}: excluded by .dockerignore"
                )));
            }
            if fs::symlink_metadata(root.join(rel)).is_err() {
                // BuildKit's wording, so a search for it finds the answer.
                return Err(StoreError::Invalid(format!(
                    "\"/{}\": not found in the build context",
                    rel.display()
                )));
            }
            let sum = walk.node(rel)?;
            h.update((p.len() as u64).to_be_bytes());
            h.update(p.as_bytes());
            h.update(sum);
        }
        let stats = walk.stats;
        self.db().save_context_memo(&walk.fresh)?;
        Ok((Digest::from_hasher(h), stats, walk.files))
    }
}
