//! The registry client (OCI distribution protocol): resolve, pull, push,
//! auth. The only crate allowed an HTTP client.
//!
//! Must not depend on the frontend, the solver or the executor; it moves
//! blobs into and out of the store.
//!
//! Status: lands with the registry issue.
