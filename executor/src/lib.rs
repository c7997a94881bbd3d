//! The executor: overlayfs rootfs over a snapshot chain, namespaces,
//! capabilities, seccomp, mounts for `RUN --mount`, and the diff that becomes
//! a layer. The same code is the runtime behind `kiln run`.
//!
//! Must not depend on the frontend or the solver. It is the only crate that
//! talks to the kernel, and its `sys` module is the only place in kiln where
//! `unsafe` is allowed (each block with a `// SAFETY:` line).
//!
//! Status: lands with the executor issue.
