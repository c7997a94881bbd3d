//! `kiln build`: a Dockerfile and a context in, an image (or an archive,
//! a tar, a directory) out — one call, [`Build::run`], with a validated
//! [`BuildRequest`].
//!
//! Owns: the build pipeline (`build.rs`: frontend → cache keys → solve →
//! exporters → cache export), the solver's real [`Worker`]
//! (`worker.rs`, with the ops in `ops/`: RUN in containers, file ops on
//! detached overlay views, sources from the store and the context), cache
//! keys with context checksums (`keys.rs`), the exporters (`export.rs`),
//! base images from the store or a registry (`images.rs`), the shared
//! cache (`remote_cache.rs`), `--explain` (`explain.rs`) and progress. The
//! frontend, the solver, the executor and the store stay unaware of each
//! other; the CLI only asks and renders.
//!
//! [`Worker`]: kiln_solver::Worker

mod build;
pub mod contexts;
pub mod download;
mod error;
pub mod explain;
mod export;
pub mod fileop;
pub mod gc;
pub mod git;
mod images;
mod keys;
mod ops;
mod platforms;
pub mod progress;
pub mod remote_cache;
mod request;
mod worker;

pub use build::{Build, Built, Checked};
pub use error::{BuildError, StepError};
pub use images::StoreImages;
pub use keys::checksum_roots;
pub use ops::cache_mount_dir;
pub use progress::Mode as ProgressMode;
pub use request::{BuildRequest, DockerfileSource, NoCache, Output};
pub use worker::{BuildWorker, ContextFiles};
