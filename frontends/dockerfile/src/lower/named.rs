//! Named contexts (`--build-context NAME=...`, buildx's): a name that
//! `FROM`, `COPY --from` or `RUN --mount=from=` use is answered by the
//! invoker's source instead of the registry or the stage of that name.
//!
//! As in BuildKit's dockerui: a named context for a stage's own name
//! replaces the whole stage (its instructions never run); one for a base
//! image's name replaces that image, and the stage's instructions run on
//! it. Image names are compared in their familiar form, so
//! `--build-context alpine=...` answers `FROM docker.io/library/alpine:latest`.

use super::config::set_env_list;
use super::copy::GitRef;
use super::{Lowerer, StageState, StepInfo, DEFAULT_PATH};
use crate::error::LowerError;
use crate::plan::Scope;
use kiln_parser::Span;
use kiln_solver::{Op, Source, Vertex};
use serde_json::{Map, Value};

/// What a named context is, as the frontend needs it (no I/O: a local
/// directory is read by the worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory, with its own `.dockerignore` patterns; the
    /// worker knows the directory by the context's name.
    Local { ignore: Vec<String> },
    /// `docker-image://REF`: an image, with its config.
    Image(String),
    /// `docker-image://scratch`: the empty filesystem.
    Scratch,
    /// A git repository (`https://host/repo.git#ref:dir`, `git@...`).
    Git(GitRef),
    /// An http(s) URL that is not a repository: one file named `context`.
    Http(String),
}

/// The name a named context is known by: an image reference's familiar
/// form (no `docker.io/`, no `library/`, no `:latest`), lower-case, as
/// BuildKit's `NamedContext` normalizes it.
pub fn context_key(name: &str) -> String {
    let mut n = name.to_ascii_lowercase();
    for host in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
        if let Some(rest) = n.strip_prefix(host) {
            n = rest.to_string();
            break;
        }
    }
    if let Some(rest) = n.strip_prefix("library/") {
        if !rest.contains('/') {
            n = rest.to_string();
        }
    }
    if let Some(rest) = n.strip_suffix(":latest") {
        n = rest.to_string();
    }
    n
}

/// The `Source::Context` name a local named context's tree has.
pub fn source_name(key: &str) -> String {
    format!("context:{key}")
}

impl Lowerer<'_> {
    /// The invoker's named context for `name`, if any.
    pub(super) fn named_context(&self, name: &str) -> Option<(String, NamedContext)> {
        if self.opts.named_contexts.is_empty() {
            return None;
        }
        let key = context_key(name);
        self.opts
            .named_contexts
            .iter()
            .find(|(k, _)| context_key(k) == key)
            .map(|(_, c)| (key, c.clone()))
    }

    /// The state a stage starts in from named context `key`: an image's
    /// filesystem and config, or a tree with the empty image's config.
    pub(super) fn named_state(
        &mut self,
        key: &str,
        context: &NamedContext,
        span: Span,
    ) -> Result<StageState, LowerError> {
        if let Some(hit) = self.named_done.get(key) {
            return Ok(hit.clone());
        }
        let label = |what: &str| format!("[context {key}] {what}");
        let tree = |op: Source, what: String| {
            (
                Vertex {
                    op: Op::Source(op),
                    inputs: vec![],
                    name: format!("context {key}"),
                },
                StepInfo {
                    label: label(&what),
                    span: Some(span),
                    text: format!("--build-context {key}"),
                },
            )
        };
        let fs = match context {
            NamedContext::Image(reference) => {
                let state = self.image_state(reference, span)?;
                self.named_done.insert(key.to_string(), state.clone());
                return Ok(state);
            }
            NamedContext::Scratch => self.scratch()?,
            NamedContext::Local { ignore } => {
                let (v, i) = tree(
                    Source::Context {
                        name: source_name(key),
                        include: vec![String::new()],
                        exclude: ignore.clone(),
                    },
                    "load local directory".into(),
                );
                self.add(v, i)?
            }
            NamedContext::Git(g) => {
                let (v, i) = tree(
                    Source::Git {
                        url: g.url.clone(),
                        reference: g.reference.clone(),
                        subdir: g.subdir.clone(),
                        keep_git_dir: false,
                        submodules: g.submodules,
                        checksum: g.commit.clone(),
                    },
                    format!("git {}", g.url),
                );
                self.add(v, i)?
            }
            NamedContext::Http(url) => {
                let (v, i) = tree(
                    Source::Http {
                        url: url.clone(),
                        checksum: None,
                        filename: "context".into(),
                    },
                    format!("download {url}"),
                );
                self.add(v, i)?
            }
        };
        let state = self.empty_state(fs);
        self.named_done.insert(key.to_string(), state.clone());
        Ok(state)
    }

    /// A stage on `fs` with the empty image's config: the default PATH,
    /// working in `/` (BuildKit's `emptyImage`).
    pub(super) fn empty_state(&self, fs: kiln_solver::VertexId) -> StageState {
        let mut config = Map::new();
        set_env_list(&mut config, &[("PATH".into(), DEFAULT_PATH.into())]);
        config.insert("WorkingDir".into(), Value::String("/".into()));
        StageState {
            fs,
            config,
            history: Vec::new(),
            shell: vec!["/bin/sh".into(), "-c".into()],
            scope: Scope::new(vec![("PATH".into(), DEFAULT_PATH.into())]),
            cmd_set: false,
            author: None,
            declared_args: Vec::new(),
            platform: self.current.platform.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::context_key;

    #[test]
    fn names_compare_in_their_familiar_form() {
        assert_eq!(context_key("docker.io/library/alpine:latest"), "alpine");
        assert_eq!(context_key("alpine"), "alpine");
        assert_eq!(context_key("Base"), "base");
        assert_eq!(context_key("alpine:3.19"), "alpine:3.19");
        assert_eq!(context_key("docker.io/me/app:latest"), "me/app");
        assert_eq!(context_key("ghcr.io/o/app"), "ghcr.io/o/app");
        assert_eq!(
            context_key("127.0.0.1:5000/app:latest"),
            "127.0.0.1:5000/app"
        );
    }
}
