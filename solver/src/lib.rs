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
//!
//! Status: the graph format and the solver core exist (tested with fake
//! workers); wiring them to the executor and store lands with `kiln build`.

pub mod encode;
pub mod graph;
pub mod solve;

pub use encode::{Encoder, Fingerprint};
pub use graph::{
    Definition, Exec, ExecMount, FileOp, GraphError, MountKind, Op, Source, Vertex, VertexId,
};
pub use solve::{needed, solve, Cancel, SolveError, SolveOptions, Worker};
