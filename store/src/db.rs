//! The metadata database (SQLite, WAL mode): image records, names, and
//! unpacked snapshots. Several kiln processes share it; every multi-row
//! change is one transaction, so a crash leaves the old state or the new.
//!
//! Reference counts are not stored: what is in use is computed by
//! reachability from names (and, later, cache records) when pruning, so a
//! crash can never leave a count that is off by one.

use crate::digest::Digest;
use crate::error::Result;
use crate::lease::{Kind, Lease, ProcessId};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    manifest TEXT PRIMARY KEY,      -- manifest digest (the image record)
    config   TEXT NOT NULL,         -- config digest (the image ID)
    added    INTEGER NOT NULL       -- unix seconds when it entered this store
);
CREATE TABLE IF NOT EXISTS names (
    name     TEXT PRIMARY KEY,      -- full reference, e.g. docker.io/library/busybox:latest
    manifest TEXT NOT NULL REFERENCES images(manifest)
);
CREATE TABLE IF NOT EXISTS platform_names (
    name     TEXT NOT NULL,         -- a name (as in names) of a multi-platform image:
    platform TEXT NOT NULL,         -- os/arch[/variant] →
    manifest TEXT NOT NULL,         -- that platform's image; names.manifest is the default
    PRIMARY KEY (name, platform)
);
CREATE TABLE IF NOT EXISTS image_platforms (
    manifest TEXT PRIMARY KEY,      -- an image record's
    platform TEXT NOT NULL          -- os/arch[/variant], from its config
);
CREATE TABLE IF NOT EXISTS context_files (
    dev      INTEGER NOT NULL,      -- memo of build-context file contents:
    ino      INTEGER NOT NULL,      -- valid while (size, mtime, ctime) match
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    sha256   TEXT NOT NULL,
    PRIMARY KEY (dev, ino)
);
CREATE TABLE IF NOT EXISTS snapshots (
    chain_id TEXT PRIMARY KEY,      -- OCI ChainID of the layer stack ending here
    parent   TEXT,                  -- chain id of the snapshot below, NULL for the base
    diff_id  TEXT NOT NULL,         -- digest of this layer's uncompressed tar
    dir      TEXT NOT NULL,         -- directory under snapshots/
    size     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS built_snapshots (
    id       TEXT PRIMARY KEY,      -- a build step's result: snapshots/<hex of id>/, no tar yet
    created  INTEGER NOT NULL       -- unix seconds
);
CREATE TABLE IF NOT EXISTS layer_tars (
    snapshot TEXT NOT NULL,         -- a built snapshot
    epoch    INTEGER NOT NULL,      -- SOURCE_DATE_EPOCH its tar clamps mtimes to (-1: none)
    diff_id  TEXT NOT NULL,         -- that tar's digest, computed streaming (never stored)
    size     INTEGER NOT NULL,      -- and its length
    PRIMARY KEY (snapshot, epoch)
);
CREATE INDEX IF NOT EXISTS layer_tars_by_diff ON layer_tars (diff_id);
CREATE TABLE IF NOT EXISTS layer_blobs (
    diff_id    TEXT NOT NULL,       -- a layer made into a blob on demand
    media_type TEXT NOT NULL,       -- in this compression
    digest     TEXT NOT NULL,       -- is this blob
    size       INTEGER NOT NULL,
    PRIMARY KEY (diff_id, media_type)
);
CREATE TABLE IF NOT EXISTS blob_sources (
    digest     TEXT NOT NULL,       -- a blob pulled from or pushed to a registry
    repository TEXT NOT NULL,       -- where it lives: host/path (for cross-repo mounts)
    PRIMARY KEY (digest, repository)
);
CREATE TABLE IF NOT EXISTS step_history (
    step     TEXT PRIMARY KEY,      -- a Dockerfile step's identity (project, stage, position)
    info     TEXT NOT NULL          -- JSON: what the step was when it last ran (for --explain)
);
CREATE TABLE IF NOT EXISTS leases (
    id       TEXT PRIMARY KEY,      -- a store instance: pid:start:n (see lease.rs)
    pid      INTEGER NOT NULL,      -- its process, alive while /proc/<pid>/stat
    start    INTEGER NOT NULL       -- still shows this start time
);
CREATE TABLE IF NOT EXISTS lease_items (
    lease    TEXT NOT NULL,         -- what a live process uses: never collected
    kind     TEXT NOT NULL,         -- blob | snapshot
    digest   TEXT NOT NULL,         -- blob digest or snapshot chain id
    PRIMARY KEY (lease, kind, digest)
);
CREATE TABLE IF NOT EXISTS build_cache (
    key      TEXT PRIMARY KEY,      -- a build step's cache key
    layers   TEXT NOT NULL,         -- JSON layer stack: null | {digest, diff_id, size, media_type} | {snapshot}
    created  INTEGER NOT NULL,      -- unix seconds when these layers were first recorded
    used     INTEGER NOT NULL       -- unix seconds of the last hit or write
);
";

pub struct Db {
    conn: Connection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    pub manifest: Digest,
    pub config: Digest,
    pub added: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub chain_id: Digest,
    pub parent: Option<Digest>,
    pub diff_id: Digest,
    pub dir: String,
    pub size: u64,
}

fn digest(s: String) -> rusqlite::Result<Digest> {
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Db { conn })
    }

    /// Runs `f` in an immediate (write-locked) transaction, committed if
    /// it returns Ok. Other processes' writes wait (up to the busy timeout).
    pub fn immediate<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Records `new` under the lease, then answers `present` for each of
    /// `all`, in one immediate transaction (see lease.rs for why).
    pub(crate) fn hold(
        &mut self,
        lease: &Lease,
        new: &[(Kind, Digest)],
        all: &[(Kind, Digest)],
        present: &dyn Fn(Kind, &Digest) -> bool,
    ) -> Result<Vec<bool>> {
        self.immediate(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO leases (id, pid, start) VALUES (?1, ?2, ?3)",
                params![lease.id, lease.owner.pid, lease.owner.start as i64],
            )?;
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO lease_items (lease, kind, digest) VALUES (?1, ?2, ?3)",
            )?;
            for (kind, digest) in new {
                stmt.execute(params![lease.id, kind.as_str(), digest.to_string()])?;
            }
            Ok(all.iter().map(|(k, d)| present(*k, d)).collect())
        })
    }

    /// Ends a lease (its store is closing).
    pub(crate) fn release(&mut self, lease: &str) -> Result<()> {
        self.immediate(|tx| {
            tx.execute("DELETE FROM lease_items WHERE lease = ?1", [lease])?;
            tx.execute("DELETE FROM leases WHERE id = ?1", [lease])?;
            Ok(())
        })
    }

    pub fn image(&self, manifest: &Digest) -> Result<Option<ImageRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT manifest, config, added FROM images WHERE manifest = ?1",
                [manifest.to_string()],
                |r| {
                    Ok(ImageRow {
                        manifest: digest(r.get(0)?)?,
                        config: digest(r.get(1)?)?,
                        added: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn images(&self) -> Result<Vec<ImageRow>> {
        image_rows(&self.conn)
    }

    pub fn resolve_name(&self, name: &str) -> Result<Option<Digest>> {
        Ok(self
            .conn
            .query_row("SELECT manifest FROM names WHERE name = ?1", [name], |r| {
                digest(r.get(0)?)
            })
            .optional()?)
    }

    /// All (name, manifest) pairs, sorted by name.
    pub fn names(&self) -> Result<Vec<(String, Digest)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, manifest FROM names ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, digest(r.get(1)?)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Points `name` at `manifest` (a tag): a multi-platform name's entry
    /// for the old manifest follows it (the same image, its blobs made).
    pub fn set_name(&mut self, name: &str, manifest: &Digest) -> Result<()> {
        let old = self.resolve_name(name)?;
        self.conn.execute(
            "INSERT INTO names (name, manifest) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET manifest = excluded.manifest",
            params![name, manifest.to_string()],
        )?;
        if let Some(old) = old {
            self.conn.execute(
                "UPDATE platform_names SET manifest = ?3 WHERE name = ?1 AND manifest = ?2",
                params![name, old.to_string(), manifest.to_string()],
            )?;
        }
        Ok(())
    }

    /// Gives `target` every platform entry `source` has (a tag of a
    /// multi-platform image).
    pub fn copy_platform_names(&mut self, source: &str, target: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM platform_names WHERE name = ?1", [target])?;
        self.conn.execute(
            "INSERT INTO platform_names (name, platform, manifest)
             SELECT ?2, platform, manifest FROM platform_names WHERE name = ?1",
            params![source, target],
        )?;
        Ok(())
    }

    pub fn remove_name(&mut self, name: &str) -> Result<bool> {
        self.conn
            .execute("DELETE FROM platform_names WHERE name = ?1", [name])?;
        Ok(self
            .conn
            .execute("DELETE FROM names WHERE name = ?1", [name])?
            > 0)
    }

    /// The names an image has: its own, and the multi-platform names it
    /// is a platform of; sorted.
    pub fn names_of(&self, manifest: &Digest) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT name FROM names WHERE manifest = ?1
             UNION SELECT name FROM platform_names WHERE manifest = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([manifest.to_string()], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Image records with no platform recorded: (manifest, config).
    pub fn images_without_platform(&self) -> Result<Vec<(Digest, Digest)>> {
        let mut stmt = self.conn.prepare(
            "SELECT manifest, config FROM images
             WHERE manifest NOT IN (SELECT manifest FROM image_platforms)",
        )?;
        let rows = stmt.query_map([], |r| Ok((digest(r.get(0)?)?, digest(r.get(1)?)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A name's platform entries (platform, manifest), sorted by platform;
    /// empty for a single-platform name.
    pub fn platform_names(&self, name: &str) -> Result<Vec<(String, Digest)>> {
        let mut stmt = self.conn.prepare(
            "SELECT platform, manifest FROM platform_names WHERE name = ?1 ORDER BY platform",
        )?;
        let rows = stmt.query_map([name], |r| Ok((r.get(0)?, digest(r.get(1)?)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes an image record and every name pointing at it.
    pub fn remove_image(&mut self, manifest: &Digest) -> Result<()> {
        self.immediate(|tx| remove_image(tx, manifest))
    }

    pub fn add_snapshot(&mut self, row: &SnapshotRow) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO snapshots (chain_id, parent, diff_id, dir, size) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                row.chain_id.to_string(),
                row.parent.as_ref().map(|p| p.to_string()),
                row.diff_id.to_string(),
                row.dir,
                row.size as i64
            ],
        )?;
        Ok(())
    }

    pub fn snapshot(&self, chain_id: &Digest) -> Result<Option<SnapshotRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT chain_id, parent, diff_id, dir, size FROM snapshots WHERE chain_id = ?1",
                [chain_id.to_string()],
                snapshot_row,
            )
            .optional()?)
    }

    pub fn snapshots(&self) -> Result<Vec<SnapshotRow>> {
        snapshot_rows(&self.conn)
    }

    /// Records a build step's result directory (already in place).
    pub fn add_built_snapshot(&mut self, id: &Digest, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO built_snapshots (id, created) VALUES (?1, ?2)",
            params![id.to_string(), now],
        )?;
        Ok(())
    }

    /// (diff ID, size) of a built snapshot's tar with this epoch, if known.
    pub fn layer_tar(&self, snapshot: &Digest, epoch: i64) -> Result<Option<(Digest, u64)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT diff_id, size FROM layer_tars WHERE snapshot = ?1 AND epoch = ?2",
                params![snapshot.to_string(), epoch],
                |r| Ok((digest(r.get(0)?)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()?)
    }

    pub fn put_layer_tar(
        &mut self,
        snapshot: &Digest,
        epoch: i64,
        diff_id: &Digest,
        size: u64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO layer_tars (snapshot, epoch, diff_id, size) VALUES (?1, ?2, ?3, ?4)",
            params![snapshot.to_string(), epoch, diff_id.to_string(), size as i64],
        )?;
        Ok(())
    }

    /// The built snapshots (and epochs) whose tar has this diff ID.
    pub fn tar_sources(&self, diff_id: &Digest) -> Result<Vec<(Digest, i64)>> {
        tar_sources(&self.conn, diff_id)
    }

    /// A blob made from a layer in one compression: (digest, size).
    pub fn layer_blob(&self, diff_id: &Digest, media_type: &str) -> Result<Option<(Digest, u64)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT digest, size FROM layer_blobs WHERE diff_id = ?1 AND media_type = ?2",
                params![diff_id.to_string(), media_type],
                |r| Ok((digest(r.get(0)?)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()?)
    }

    pub fn put_layer_blob(
        &mut self,
        diff_id: &Digest,
        media_type: &str,
        blob: &Digest,
        size: u64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO layer_blobs (diff_id, media_type, digest, size) VALUES (?1, ?2, ?3, ?4)",
            params![diff_id.to_string(), media_type, blob.to_string(), size as i64],
        )?;
        Ok(())
    }

    pub fn built_snapshots(&self) -> Result<Vec<Digest>> {
        built_snapshot_ids(&self.conn)
    }

    /// The whole context memo: (dev, ino) → (size, mtime_ns, ctime_ns, sha256).
    pub fn context_memo(&self) -> Result<std::collections::HashMap<(u64, u64), MemoRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT dev, ino, size, mtime_ns, ctime_ns, sha256 FROM context_files")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64),
                MemoRow {
                    size: r.get::<_, i64>(2)? as u64,
                    mtime_ns: r.get(3)?,
                    ctime_ns: r.get(4)?,
                    sha256: r.get(5)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records freshly hashed context files, in one transaction.
    pub fn save_context_memo(&mut self, rows: &[((u64, u64), MemoRow)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO context_files (dev, ino, size, mtime_ns, ctime_ns, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(dev, ino) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,
                 ctime_ns = excluded.ctime_ns, sha256 = excluded.sha256",
            )?;
            for ((dev, ino), m) in rows {
                stmt.execute(params![
                    *dev as i64,
                    *ino as i64,
                    m.size as i64,
                    m.mtime_ns,
                    m.ctime_ns,
                    m.sha256
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// (layers JSON, created) of a cache record.
    pub fn cache_get(&self, key: &str) -> Result<Option<(String, i64)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT layers, created FROM build_cache WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Records layers under a key; `created` changes only with the layers.
    pub fn cache_put(&mut self, key: &str, layers: &str, now: i64) -> Result<()> {
        cache_put(&self.conn, key, layers, now)
    }

    /// Remembers that `repository` holds these blobs.
    pub fn add_blob_sources(&mut self, digests: &[Digest], repository: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        for d in digests {
            tx.execute(
                "INSERT OR IGNORE INTO blob_sources (digest, repository) VALUES (?1, ?2)",
                params![d.to_string(), repository],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Repositories known to hold `digest`.
    pub fn blob_sources(&self, digest: &Digest) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT repository FROM blob_sources WHERE digest = ?1")?;
        let rows = stmt.query_map([digest.to_string()], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn step_info(&self, step: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT info FROM step_history WHERE step = ?1",
                [step],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_step_info(&mut self, step: &str, info: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO step_history (step, info) VALUES (?1, ?2)
             ON CONFLICT(step) DO UPDATE SET info = excluded.info",
            params![step, info],
        )?;
        Ok(())
    }

    /// SQLite's own consistency check.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let out: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
        Ok(out.into_iter().filter(|r| r != "ok").collect())
    }
}

/// Records an image for `platform` and points `names` at it. A name that
/// has an image for another platform keeps it: the name becomes (or
/// stays) multi-platform, one image per platform, and its default (what
/// commands without `--platform` use) is this machine's platform's image
/// if it has one, else the newest.
pub(crate) fn add_image(
    conn: &Connection,
    row: &ImageRow,
    names: &[String],
    platform: &str,
    host_platform: &str,
) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO images (manifest, config, added) VALUES (?1, ?2, ?3)",
        params![row.manifest.to_string(), row.config.to_string(), row.added],
    )?;
    for name in names {
        let old: Option<String> = conn
            .query_row("SELECT manifest FROM names WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        let mut multi: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM platform_names WHERE name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        // A single-platform name whose image is for another platform
        // becomes multi-platform: that image's entry first.
        if let (Some(old_manifest), false) = (&old, multi) {
            if let Some(old_platform) = platform_of_manifest(conn, old_manifest)? {
                if old_platform != platform {
                    conn.execute(
                        "INSERT OR REPLACE INTO platform_names (name, platform, manifest)
                         VALUES (?1, ?2, ?3)",
                        params![name, old_platform, old_manifest],
                    )?;
                    multi = true;
                }
            }
        }
        if multi {
            conn.execute(
                "INSERT OR REPLACE INTO platform_names (name, platform, manifest) VALUES (?1, ?2, ?3)",
                params![name, platform, row.manifest.to_string()],
            )?;
        }
        let default = if multi {
            conn.query_row(
                "SELECT manifest FROM platform_names WHERE name = ?1 AND platform = ?2",
                params![name, host_platform],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .unwrap_or_else(|| row.manifest.to_string())
        } else {
            row.manifest.to_string()
        };
        conn.execute(
            "INSERT INTO names (name, manifest) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET manifest = excluded.manifest",
            params![name, default],
        )?;
    }
    Ok(())
}

/// The platform recorded for a manifest in `image_platforms`.
fn platform_of_manifest(conn: &Connection, manifest: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT platform FROM image_platforms WHERE manifest = ?1",
            [manifest],
            |r| r.get(0),
        )
        .optional()?)
}

/// Remembers which platform an image is for (from its config).
pub(crate) fn set_image_platform(
    conn: &Connection,
    manifest: &Digest,
    platform: &str,
) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO image_platforms (manifest, platform) VALUES (?1, ?2)",
        params![manifest.to_string(), platform],
    )?;
    Ok(())
}

pub(crate) fn remove_image(conn: &Connection, manifest: &Digest) -> Result<()> {
    conn.execute(
        "DELETE FROM names WHERE manifest = ?1",
        [manifest.to_string()],
    )?;
    conn.execute(
        "DELETE FROM platform_names WHERE manifest = ?1",
        [manifest.to_string()],
    )?;
    conn.execute(
        "DELETE FROM image_platforms WHERE manifest = ?1",
        [manifest.to_string()],
    )?;
    // A multi-platform name whose default went keeps its other platforms.
    conn.execute(
        "INSERT OR IGNORE INTO names (name, manifest)
         SELECT name, MIN(manifest) FROM platform_names
         WHERE name NOT IN (SELECT name FROM names) GROUP BY name",
        [],
    )?;
    conn.execute(
        "DELETE FROM images WHERE manifest = ?1",
        [manifest.to_string()],
    )?;
    Ok(())
}

/// Every image row, newest first.
pub(crate) fn image_rows(conn: &Connection) -> Result<Vec<ImageRow>> {
    let mut stmt =
        conn.prepare("SELECT manifest, config, added FROM images ORDER BY added DESC, manifest")?;
    let rows = stmt.query_map([], |r| {
        Ok(ImageRow {
            manifest: digest(r.get(0)?)?,
            config: digest(r.get(1)?)?,
            added: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Manifest digests that some name points at.
pub(crate) fn named_manifests(conn: &Connection) -> Result<Vec<Digest>> {
    let mut stmt =
        conn.prepare("SELECT manifest FROM names UNION SELECT manifest FROM platform_names")?;
    let rows = stmt.query_map([], |r| digest(r.get(0)?))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every cache record's layer stack (JSON).
impl Db {
    /// (key, layers JSON, last used) of every build cache record.
    pub fn cache_rows(&self) -> Result<Vec<(String, String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, layers, used FROM build_cache")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

pub(crate) fn cache_texts(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT layers FROM build_cache")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn snapshot_rows(conn: &Connection) -> Result<Vec<SnapshotRow>> {
    let mut stmt = conn
        .prepare("SELECT chain_id, parent, diff_id, dir, size FROM snapshots ORDER BY chain_id")?;
    let rows = stmt.query_map([], snapshot_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records layers under a key; `created` changes only with the layers.
pub(crate) fn cache_put(conn: &Connection, key: &str, layers: &str, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO build_cache (key, layers, created, used) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(key) DO UPDATE SET
           created = CASE WHEN build_cache.layers = excluded.layers THEN build_cache.created ELSE excluded.created END,
           layers = excluded.layers, used = excluded.used",
    )?
    .execute(params![key, layers, now])?;
    Ok(())
}

pub(crate) fn built_snapshot_ids(conn: &Connection) -> Result<Vec<Digest>> {
    let mut stmt = conn.prepare("SELECT id FROM built_snapshots ORDER BY id")?;
    let rows = stmt.query_map([], |r| digest(r.get(0)?))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn tar_sources(conn: &Connection, diff_id: &Digest) -> Result<Vec<(Digest, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT snapshot, epoch FROM layer_tars WHERE diff_id = ?1 ORDER BY snapshot, epoch",
    )?;
    let rows = stmt.query_map([diff_id.to_string()], |r| {
        Ok((digest(r.get(0)?)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Forgets a built snapshot and the tars known for it.
pub(crate) fn remove_built_snapshot(conn: &Connection, id: &Digest) -> Result<()> {
    conn.execute(
        "DELETE FROM built_snapshots WHERE id = ?1",
        [id.to_string()],
    )?;
    conn.execute(
        "DELETE FROM layer_tars WHERE snapshot = ?1",
        [id.to_string()],
    )?;
    Ok(())
}

/// What live leases hold, by kind; leases of dead processes are deleted.
/// `except` (a lease id) is left out: the caller is letting those go.
pub(crate) fn live_holds(
    conn: &Connection,
    except: Option<&str>,
) -> Result<std::collections::HashSet<(Kind, Digest)>> {
    let leases: Vec<(String, i32, i64)> = {
        let mut stmt = conn.prepare("SELECT id, pid, start FROM leases")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut live = Vec::new();
    for (id, pid, start) in leases {
        let owner = ProcessId {
            pid,
            start: start as u64,
        };
        if owner.alive() {
            live.push(id);
        } else {
            conn.execute("DELETE FROM lease_items WHERE lease = ?1", [&id])?;
            conn.execute("DELETE FROM leases WHERE id = ?1", [&id])?;
        }
    }
    let mut out = std::collections::HashSet::new();
    let mut stmt = conn.prepare("SELECT kind, digest FROM lease_items WHERE lease = ?1")?;
    for id in live.iter().filter(|id| Some(id.as_str()) != except) {
        let rows = stmt.query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (kind, d) = row?;
            let kind = if kind == "snapshot" {
                Kind::Snapshot
            } else {
                Kind::Blob
            };
            if let Ok(d) = d.parse() {
                out.insert((kind, d));
            }
        }
    }
    Ok(out)
}

/// Drops some of a lease's items.
pub(crate) fn release_items(
    conn: &Connection,
    lease: &str,
    items: &[(Kind, Digest)],
) -> Result<()> {
    let mut stmt =
        conn.prepare("DELETE FROM lease_items WHERE lease = ?1 AND kind = ?2 AND digest = ?3")?;
    for (kind, d) in items {
        stmt.execute(params![lease, kind.as_str(), d.to_string()])?;
    }
    Ok(())
}

/// A memoized context file hash and the metadata it is valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoRow {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub sha256: String,
}

fn snapshot_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SnapshotRow> {
    Ok(SnapshotRow {
        chain_id: digest(r.get(0)?)?,
        parent: r.get::<_, Option<String>>(1)?.map(digest).transpose()?,
        diff_id: digest(r.get(2)?)?,
        dir: r.get(3)?,
        size: r.get::<_, i64>(4)? as u64,
    })
}
