//! The store: content-addressed blobs, unpacked layer snapshots, and the
//! metadata database (image names, refcounts, cache index); plus the formats
//! images travel in (OCI layout, docker archive, layer tars).
//!
//! Must not depend on the frontend, the solver, the executor or any network
//! code; every write it makes is atomic.
//!
//! Status: lands with the image store issue.
