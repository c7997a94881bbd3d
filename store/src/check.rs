//! `kiln system check`, `kiln prune`, `kiln system df`.

use crate::digest::{Digest, HashingReader};
use crate::error::{IoContext, Result};
use crate::gc::dir_size;
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
    /// What opening the store repaired (modes it tightened).
    pub fixed: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub images_removed: usize,
    pub blobs_removed: usize,
    pub snapshots_removed: usize,
    pub cache_records_removed: usize,
    pub bytes_freed: u64,
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
        report.problems.extend(crate::loose_modes(&self.root));
        report.fixed.extend(self.tightened.iter().cloned());
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
                                // A built image's layer blob is made on
                                // demand from its snapshot (lazy.rs).
                                let available = self.blobs.contains(&l.digest)
                                    || self
                                        .built_source(&l.diff_id, &Default::default())?
                                        .is_some();
                                if !available {
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
        let built = self.db().built_snapshots()?;
        for id in built {
            report.snapshots_checked += 1;
            if !self.snapshots.join(id.hex()).is_dir() {
                report
                    .problems
                    .push(format!("built snapshot {id} has no directory"));
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
        let mut snaps: Vec<String> = self.db().snapshots()?.into_iter().map(|s| s.dir).collect();
        snaps.extend(self.db().built_snapshots()?.iter().map(|id| id.hex()));
        Ok(DiskUsage {
            images: images.len(),
            images_size: images.iter().map(image::Image::size).sum(),
            blobs_bytes: blobs,
            snapshots: snaps.len(),
            snapshots_bytes: snaps
                .iter()
                .map(|dir| dir_size(&self.snapshots.join(dir)))
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
