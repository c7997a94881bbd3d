//! The store's errors: each names the file, blob or reference involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("no such image: {0}")]
    ImageNotFound(String),
    #[error("{image} has no image for {wanted}; it has {}", available.join(", "))]
    WrongPlatform {
        image: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("blob {digest} is missing from the store")]
    BlobMissing { digest: String },
    #[error("built snapshot {id} is missing from the store")]
    SnapshotMissing { id: String },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{file}: {reason}")]
    BadArchive { file: String, reason: String },
    #[error("{what}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },
    /// A layer tar that cannot be read (the caller says which layer).
    #[error("{0}")]
    BadLayer(String),
    #[error("layer {digest}: {source}")]
    Layer {
        digest: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("the store at {} holds {blobs} blobs and {snapshots} snapshots, but its metadata database (meta.db) is {state}: every image and cache record is gone, so kiln will not use it (a prune would delete everything)\nhint: restore meta.db from a backup, or move {} away to start a new store", root.display(), root.display())]
    MetadataLost {
        root: PathBuf,
        state: &'static str,
        blobs: usize,
        snapshots: usize,
    },
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.into(),
            source,
        })
    }
}
