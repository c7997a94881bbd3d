//! The build graph and the solver.
//!
//! Owns: the graph format ([`graph`]: vertices, ops, their canonical
//! encoding ([`encode`]) and the two fingerprints, definition digest and
//! cache key) and, next, the demand-driven parallel solver that answers
//! each vertex from the cache or runs it.
//!
//! Must not depend on the Dockerfile frontend (the graph is
//! frontend-neutral) nor call the kernel directly: running an op will go
//! through the executor, storing results through the store, behind traits.
//!
//! Status: the graph format exists; the solver lands with the `kiln build`
//! issue.

pub mod encode;
pub mod graph;

pub use encode::{Encoder, Fingerprint};
pub use graph::{
    Definition, Exec, ExecMount, FileOp, GraphError, MountKind, Op, Source, Vertex, VertexId,
};
