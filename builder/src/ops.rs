//! The ops a build runs, one file each as BuildKit's `llbsolver/ops/`:
//! sources (scratch, images, the context, downloads), exec (RUN in a
//! container) and file ops (COPY/ADD/WORKDIR on detached views).

mod exec;
mod file;
mod source;
mod ssh_proxy;

pub use exec::cache_mount_dir;
