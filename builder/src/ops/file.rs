//! File ops (COPY, ADD, WORKDIR, heredoc files) on detached overlay
//! views: the target stack's snapshots under a fresh upper dir, which is
//! then committed as the step's layer.

use crate::error::StepError;
use crate::fileop;
use crate::worker::{BuildWorker, Output};
use kiln_executor::view;
use kiln_frontend_dockerfile::dockerignore::Ignore;
use kiln_solver::{Chown, FileOp, Owner};
use kiln_store::LayerStack;
use std::path::{Path, PathBuf};
use std::sync::Arc;

impl BuildWorker {
    pub(crate) fn file(&self, op: &FileOp, inputs: &[Output]) -> Result<Output, StepError> {
        let stack = inputs[0].stack()?;
        let scratch = self.store.scratch_dir("file")?;
        let result = self.file_in(op, inputs, stack, &scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    fn file_in(
        &self,
        op: &FileOp,
        inputs: &[Output],
        stack: &LayerStack,
        scratch: &Path,
    ) -> Result<Output, StepError> {
        let upper = scratch.join("upper");
        let link = matches!(op, FileOp::Copy { link: true, .. });
        let lowers = self.store.snapshot_chain(stack)?;
        // `--link` copies onto an empty tree: its layer is its own.
        let view_lowers: &[PathBuf] = if link { &[] } else { &lowers };
        let target = view::writable(view_lowers, &upper, scratch)?;
        match op {
            FileOp::Copy {
                src,
                paths,
                dest,
                chown,
                chmod,
                exclude,
                parents,
                unpack,
                link: _,
            } => {
                let input = inputs
                    .get(*src)
                    .ok_or_else(|| StepError::Internal("copy without a source".into()))?;
                let source = self.view_of(input, scratch)?;
                let chown = chown
                    .as_ref()
                    .map(|c| resolve_chown(c, &lowers))
                    .transpose()?;
                let chmod = chmod.as_ref();
                let (ignore, keep_owner) = match input {
                    Output::Dir(_, ignore) => (Some(ignore.as_ref()), false),
                    Output::Stack(_) => (None, true),
                };
                let exclude = if exclude.is_empty() {
                    None
                } else {
                    Some(
                        Ignore::from_patterns(exclude)
                            .map_err(|e| StepError::Invalid(format!("--exclude: {e}")))?,
                    )
                };
                let filter = fileop::Filter {
                    ignore,
                    exclude: exclude.as_ref(),
                    base: String::new(),
                };
                let spec = fileop::CopySpec {
                    paths,
                    dest,
                    attrs: fileop::Attrs {
                        chown,
                        chmod,
                        keep_owner,
                    },
                    parents: *parents,
                    unpack: *unpack,
                };
                fileop::copy(source.root(), target.root(), &spec, &filter)?;
            }
            FileOp::Mkdir {
                path, mode, owner, ..
            } => {
                let owner = match owner {
                    Some(o) => resolve_chown(o, &lowers)?,
                    None => (0, 0),
                };
                fileop::mkdir_p(target.root(), path, *mode, owner)?;
            }
            FileOp::Mkfile { path, mode, data } => {
                fileop::mkfile(target.root(), path, *mode, data)?;
            }
            FileOp::Rm { .. } | FileOp::Symlink { .. } => {
                return Err(StepError::Internal(
                    "rm/symlink file ops are not used by the Dockerfile frontend".into(),
                ))
            }
        }
        drop(target);
        let layer = self.store.commit_diff(&upper)?;
        let mut next = stack.clone();
        next.push(layer);
        Ok(Output::Stack(Arc::new(next)))
    }
}

/// `--chown=user[:group]` against the image's /etc/passwd and /etc/group.
/// Without a group, a user named in /etc/passwd gets its primary group
/// and a numeric one the same number for both (BuildKit's rule).
fn resolve_chown(chown: &Chown, lowers: &[PathBuf]) -> Result<(u32, u32), StepError> {
    let top_first: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
    let bad = |e: kiln_executor::ExecError| StepError::Invalid(format!("--chown={chown}: {e}"));
    let (uid, primary_gid) = match &chown.user {
        Owner::Id(n) => (*n, *n),
        Owner::Name(name) => {
            let user = kiln_executor::user::resolve(name, &top_first).map_err(bad)?;
            (user.uid, user.gid)
        }
    };
    let gid = match &chown.group {
        None => primary_gid,
        Some(Owner::Id(n)) => *n,
        Some(Owner::Name(g)) => {
            kiln_executor::user::resolve(&format!("0:{g}"), &top_first)
                .map_err(bad)?
                .gid
        }
    };
    let mapped =
        kiln_executor::rootless::uid_mapped(uid) && kiln_executor::rootless::gid_mapped(gid);
    if !mapped {
        return Err(StepError::Invalid(format!(
            "--chown={chown}: uid {uid} / gid {gid} does not exist here: {}",
            kiln_executor::rootless::unmapped_hint()
        )));
    }
    Ok((uid, gid))
}
