//! The build graph and the solver.
//!
//! Owns: the graph format ([`graph`]: vertices, ops, their canonical
//! encoding ([`encode`]) and the two fingerprints, definition digest and
//! cache key) and the demand-driven parallel solver ([`mod@solve`]) that
//! answers each vertex from the cache or runs it.
//!
//! Must not depend on the Dockerfile frontend (the graph is
//! frontend-neutral) nor call the kernel directly: running an op will go
//! through the executor, storing results through the store, behind traits.

mod canonical;
pub mod chmod;
pub mod dump;
pub mod encode;
pub mod graph;
pub mod solve;

pub use encode::{Encoder, Fingerprint};
pub use graph::{
    CacheKey, Chmod, Chown, Definition, DefinitionDigest, Exec, ExecMount, FileOp, GraphError,
    MountKind, Network, Op, Owner, Sharing, Source, Vertex, VertexId,
};
pub use solve::{needed, solve, solve_all, Cancel, Failure, SolveError, SolveOptions, Worker};
