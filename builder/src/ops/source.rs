//! Sources: scratch, an image's layers (held in the store), the build
//! context, a download, a git checkout.

use crate::error::StepError;
use crate::worker::{BuildWorker, Output};
use kiln_executor::view;
use kiln_frontend_dockerfile::dockerignore::Ignore;
use kiln_solver::Source;
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl BuildWorker {
    pub(crate) fn source(&self, src: &Source) -> Result<Output, StepError> {
        Ok(match src {
            Source::Scratch => Output::Stack(Arc::new(Vec::new())),
            Source::Image {
                reference,
                manifest_digest,
            } => {
                let image = self
                    .store
                    .resolve(manifest_digest)
                    .map_err(|e| StepError::Invalid(format!("{reference}: {e}")))?;
                Output::Stack(Arc::new(self.store.image_stack(&image)?))
            }
            Source::Context { name, .. } => {
                let (dir, ignore) = self.contexts.get(name).ok_or_else(|| {
                    StepError::Invalid(format!("no build context named {name:?}"))
                })?;
                Output::Dir(dir.clone(), ignore.clone())
            }
            Source::Http {
                url,
                checksum,
                filename,
            } => {
                let fetched = self.downloads.get(url, filename, checksum.as_deref())?;
                Output::Dir(Arc::new(fetched.dir.clone()), Arc::new(Ignore::empty()))
            }
            Source::Git {
                url,
                reference,
                subdir,
                keep_git_dir,
                submodules,
                checksum,
            } => {
                let access = crate::git::Access::dockerfile(
                    &self.store,
                    self.ssh.get("default").map(PathBuf::as_path),
                );
                let commit = crate::git::resolve(url, reference, checksum.as_deref(), &access)?;
                let dir = crate::git::checkout(
                    &self.store.root().join("git"),
                    &crate::git::Checkout {
                        url,
                        reference,
                        commit: &commit,
                        subdir,
                        keep_git_dir: *keep_git_dir,
                        submodules: *submodules,
                    },
                    &access,
                )?;
                Output::Dir(Arc::new(dir), Arc::new(Ignore::empty()))
            }
        })
    }

    /// An input as a read-only tree: a host directory, or a stack's
    /// snapshots as a detached overlay.
    pub(crate) fn view_of(&self, input: &Output, scratch: &Path) -> Result<view::View, StepError> {
        Ok(match input {
            Output::Dir(dir, _) => view::host_dir(dir)?,
            Output::Stack(stack) => {
                let lowers = self.store.snapshot_chain(stack)?;
                view::readonly(&lowers, &scratch.join("empty"))?
            }
        })
    }
}
