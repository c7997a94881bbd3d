//! `kiln system check`, `kiln prune`, `kiln system df`.

use crate::digest::{Digest, HashingReader};
use crate::error::{IoContext, Result};
use crate::{image, Store};
use std::collections::HashSet;
use std::fs;
use std::io;

/// Problems found by [`Store::check`]; empty means healthy.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub blobs_checked: usize,
    pub images_checked: usize,
    pub snapshots_checked: usize,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub images_removed: usize,
    pub blobs_removed: usize,
    pub snapshots_removed: usize,
    pub cache_records_removed: usize,
    pub bytes_freed: u64,
}

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = fs::read_dir(&p) else { continue };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

impl Store {
    /// Verifies every blob's digest, that every image's manifest, config
    /// and layers are present, every name points at an image, and every
    /// snapshot record has its directory.
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let rows_integrity_check = self.db().integrity_check()?;

        for problem in rows_integrity_check {
            report.problems.push(format!("database: {problem}"));
        }
        for (name, path) in self.blobs.list()? {
            report.blobs_checked += 1;
            let Ok(expected) = format!("sha256:{name}").parse::<Digest>() else {
                report.problems.push(format!(
                    "blob file {} has a name that is not a digest",
                    path.display()
                ));
                continue;
            };
            let file = fs::File::open(&path).at(&path)?;
            let mut r = HashingReader::new(file);
            io::copy(&mut r, &mut io::sink()).at(&path)?;
            let (actual, _) = r.finish();
            if actual != expected {
                report.problems.push(format!(
                    "blob {expected} is corrupt: its content hashes to {actual}"
                ));
            }
        }
        let rows_images = self.db().images()?;

        for row in rows_images {
            report.images_checked += 1;
            match self.load_image(row.clone()) {
                Err(e) => report.problems.push(format!("image {}: {e}", row.manifest)),
                Ok(img) => {
                    if img.config_digest != row.config {
                        report.problems.push(format!(
                            "image {}: config digest differs from its record",
                            row.manifest
                        ));
                    }
                    match img.layers() {
                        Err(e) => report.problems.push(format!("image {}: {e}", row.manifest)),
                        Ok(layers) => {
                            for l in layers {
                                if !self.blobs.contains(&l.digest) {
                                    report.problems.push(format!(
                                        "image {}: layer blob {} is missing",
                                        row.manifest, l.digest
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
        let images: HashSet<Digest> = self
            .db()
            .images()?
            .into_iter()
            .map(|r| r.manifest)
            .collect();
        let rows_names = self.db().names()?;

        for (name, manifest) in rows_names {
            if !images.contains(&manifest) {
                report.problems.push(format!(
                    "name {name} points at {manifest}, which is not an image"
                ));
            }
        }
        let rows_snapshots = self.db().snapshots()?;

        for snap in rows_snapshots {
            report.snapshots_checked += 1;
            if !self.snapshots.join(&snap.dir).is_dir() {
                report
                    .problems
                    .push(format!("snapshot {} has no directory", snap.chain_id));
            }
        }
        Ok(report)
    }

    /// Removes images without names (all images and the build cache with
    /// `all`), then every blob and snapshot no remaining image or cache
    /// record needs.
    pub fn prune(&self, all: bool) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        if all {
            report.cache_records_removed = self.db().cache_clear()?;
        }
        let named: HashSet<Digest> = self.db().names()?.into_iter().map(|(_, m)| m).collect();
        let rows_images = self.db().images()?;

        for row in rows_images {
            if all || !named.contains(&row.manifest) {
                self.db().remove_image(&row.manifest)?;
                report.images_removed += 1;
            }
        }
        let used = self.referenced_blobs()?;
        for (name, path) in self.blobs.list()? {
            let keep = format!("sha256:{name}")
                .parse::<Digest>()
                .is_ok_and(|d| used.contains(&d));
            if !keep {
                report.bytes_freed += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).at(&path)?;
                report.blobs_removed += 1;
            }
        }
        // Snapshots in use: the chain of every remaining image and cache
        // record.
        let mut live = HashSet::new();
        let mut stacks: Vec<Vec<Digest>> = self
            .images()?
            .iter()
            .map(|img| {
                img.layers()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| l.diff_id)
                    .collect()
            })
            .collect();
        stacks.extend(
            self.cache_stacks()?
                .iter()
                .map(|s| s.iter().flatten().map(|l| l.diff_id.clone()).collect()),
        );
        for diff_ids in stacks {
            for n in 1..=diff_ids.len() {
                live.extend(crate::build::chain_id(&diff_ids[..n]));
            }
        }
        let rows_snapshots = self.db().snapshots()?;

        for snap in rows_snapshots {
            if !live.contains(&snap.chain_id) {
                let dir = self.snapshots.join(&snap.dir);
                report.bytes_freed += dir_size(&dir);
                // The record goes first: a crash then leaves a stray
                // directory (swept below next time), never a record without one.
                self.db().remove_snapshot(&snap.chain_id)?;
                if dir.exists() {
                    fs::remove_dir_all(&dir).at(&dir)?;
                }
                report.snapshots_removed += 1;
            }
        }
        // Directories no record knows (e.g. a crash between the two steps).
        let known: HashSet<String> = self.db().snapshots()?.into_iter().map(|s| s.dir).collect();
        for e in fs::read_dir(&self.snapshots).at(&self.snapshots)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&name)
                && name.len() == 64
                && name.bytes().all(|b| b.is_ascii_hexdigit())
            {
                report.bytes_freed += dir_size(&e.path());
                fs::remove_dir_all(e.path()).at(e.path())?;
                report.snapshots_removed += 1;
            }
        }
        Ok(report)
    }

    /// (images, their total size, blobs bytes, snapshots bytes).
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let images = self.images()?;
        let blobs: u64 = self
            .blobs
            .list()?
            .iter()
            .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        let snaps = self.db().snapshots()?;
        Ok(DiskUsage {
            images: images.len(),
            images_size: images.iter().map(image::Image::size).sum(),
            blobs_bytes: blobs,
            snapshots: snaps.len(),
            snapshots_bytes: snaps
                .iter()
                .map(|s| dir_size(&self.snapshots.join(&s.dir)))
                .sum(),
            reclaimable_bytes: {
                let used = self.referenced_blobs()?;
                self.blobs
                    .list()?
                    .iter()
                    .filter(|(n, _)| {
                        !format!("sha256:{n}")
                            .parse::<Digest>()
                            .is_ok_and(|d| used.contains(&d))
                    })
                    .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
                    .sum()
            },
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub images: usize,
    pub images_size: u64,
    pub blobs_bytes: u64,
    pub snapshots: usize,
    pub snapshots_bytes: u64,
    pub reclaimable_bytes: u64,
}
