//! The registry client (OCI distribution protocol): resolve, pull, push,
//! auth, and plain downloads for `ADD <url>`. The only crate allowed an
//! HTTP client.
//!
//! Must not depend on the frontend, the solver or the executor; it moves
//! blobs into and out of the store. Every blob is verified (digest and
//! size) while it streams into a temp file, and only a verified blob is
//! renamed into the store; an image record is written last, so a failed
//! pull leaves no image behind.

pub mod auth;
mod client;
pub mod config;
mod download;
mod pull;
mod push;

pub use auth::{ConfigError, Credential, DockerConfig};
pub use client::{Client, ClientOptions};
pub use config::{RegistryConfig, RegistryConfigError};
pub use download::Download;
pub use pull::{Platform, Pulled};
pub use push::Pushed;

/// A registry failure, one line: `what` is the reference (or URL or host)
/// the user gave.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct Error {
    pub what: String,
    pub message: String,
    pub kind: ErrorKind,
}

/// What sort of failure, for callers that react differently (a missing
/// image, bad credentials, a network that is down, a registry that
/// misbehaves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Credentials missing, refused, or a token that could not be had.
    Auth,
    /// No such repository, tag, blob or platform.
    NotFound,
    /// The registry could not be reached, or the connection broke.
    Transport,
    /// The registry (or a download) answered something it should not have:
    /// a bad status, a digest or size mismatch, malformed JSON.
    Protocol,
    /// Local: the store, the docker config, a file.
    Local,
}

impl Error {
    pub(crate) fn new(
        kind: ErrorKind,
        what: impl Into<String>,
        message: impl Into<String>,
    ) -> Error {
        Error {
            what: what.into(),
            message: message.into(),
            kind,
        }
    }

    pub(crate) fn auth(what: impl Into<String>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Auth, what, message)
    }

    pub(crate) fn not_found(what: impl Into<String>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, what, message)
    }

    pub(crate) fn transport(what: impl Into<String>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Transport, what, message)
    }

    pub(crate) fn protocol(what: impl Into<String>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Protocol, what, message)
    }

    pub(crate) fn local(what: impl Into<String>, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Local, what, message)
    }

    /// A failed request, classified by its HTTP status.
    pub(crate) fn status(
        what: impl Into<String>,
        status: u16,
        message: impl Into<String>,
    ) -> Error {
        let kind = match status {
            401 | 403 => ErrorKind::Auth,
            404 => ErrorKind::NotFound,
            _ => ErrorKind::Protocol,
        };
        Error::new(kind, what, message)
    }
}
