//! The build graph and the solver.
//!
//! Owns: the graph format (vertices, ops, their canonical encoding and the
//! two fingerprints — definition digest and cache key) and the demand-driven
//! parallel solver that answers each vertex from the cache or runs it.
//!
//! Must not depend on the Dockerfile frontend (the graph is frontend-neutral)
//! nor call the kernel directly: running an op goes through the executor's
//! trait, storing results through the store's.
//!
//! Status: lands with the `kiln build` issue.
