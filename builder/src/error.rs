//! The builder's errors: why a step failed ([`StepError`], the solver's
//! `Worker::Error`), and why a build failed ([`BuildError`]), each with
//! what the CLI needs to show it at its Dockerfile line.

use crate::download::DownloadError;
use crate::fileop::FileOpError;
use crate::remote_cache::CacheError;
use kiln_frontend_dockerfile::lower::StepInfo;
use kiln_frontend_dockerfile::LowerError;
use kiln_solver::Failure;
use std::path::PathBuf;
use std::sync::Arc;

/// Why one build step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step's command ran and failed.
    #[error("process {command:?} did not complete successfully: {exit}")]
    Failed {
        command: String,
        /// `exit code: 1`, `killed by signal 9`.
        exit: String,
    },
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    #[error(transparent)]
    Exec(#[from] kiln_executor::ExecError),
    #[error(transparent)]
    Network(#[from] kiln_network::NetworkError),
    #[error(transparent)]
    Registry(#[from] kiln_registry::Error),
    #[error(transparent)]
    File(#[from] FileOpError),
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// A filesystem view or a scratch directory (the message names it).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// What the step asked for cannot be given (a missing required
    /// secret, an unsupported mount).
    #[error("{0}")]
    Invalid(String),
    /// A bug in kiln: the graph did not have the shape the op needs.
    #[error("internal error: {0}")]
    Internal(String),
    #[error("cancelled")]
    Cancelled,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("build context {}: {source}", path.display())]
    Context {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Dockerignore { path: PathBuf, message: String },
    /// The Dockerfile does not parse or lower (it carries its position).
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// A step failed, while its cache key was computed or while it ran.
    #[error("{source}")]
    Step {
        /// Its label, position and text (none for internal vertices).
        step: Option<StepInfo>,
        source: Arc<Failure<StepError>>,
        /// The last lines the step printed.
        output: Vec<String>,
    },
    #[error(transparent)]
    Store(#[from] kiln_store::StoreError),
    #[error(transparent)]
    Registry(#[from] kiln_registry::Error),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// Writing an output (`-o`, `--iidfile`...).
    #[error("{what}: {source}")]
    Output {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The request asks for something that cannot be (checked before any
    /// work).
    #[error("{0}")]
    Invalid(String),
}

impl BuildError {
    pub(crate) fn output(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
        let what = what.into();
        move |source| BuildError::Output { what, source }
    }
}
