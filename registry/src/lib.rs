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
mod download;
mod pull;
mod push;

pub use auth::{Credential, DockerConfig};
pub use client::{Client, ClientOptions};
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
}

impl Error {
    pub(crate) fn new(what: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            what: what.into(),
            message: message.into(),
        }
    }
}
