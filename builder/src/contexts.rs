//! The build's contexts: the main one and buildx's named contexts
//! (`--build-context NAME=path|docker-image://REF|git-url|https-url`).
//! The frontend sees what each one is; local directories (and their
//! `.dockerignore` rules) are opened here and read by the worker.

use crate::error::BuildError;
use kiln_frontend_dockerfile::dockerignore::Ignore;
use kiln_frontend_dockerfile::lower::{self, NamedContext};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a `--build-context` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextSource {
    /// A directory on this machine.
    Local(PathBuf),
    /// `docker-image://REF`: an image (from the store or its registry).
    Image(String),
    /// A git repository: `https://host/repo.git#ref:dir`, `git@host:repo`,
    /// `git://`, `ssh://`.
    Git(String),
    /// Any other http(s) URL: one downloaded file, named `context`.
    Http(String),
}

/// A `--build-context` value that names nothing kiln can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ContextSourceError(pub String);

impl ContextSource {
    /// Reads a value as buildx does: a scheme picks the kind, anything
    /// else is a local path.
    pub fn parse(value: &str) -> Result<ContextSource, ContextSourceError> {
        if value.is_empty() {
            return Err(ContextSourceError("the value is empty".into()));
        }
        if let Some(reference) = value.strip_prefix("docker-image://") {
            if reference.is_empty() {
                return Err(ContextSourceError("docker-image:// names no image".into()));
            }
            return Ok(ContextSource::Image(reference.to_string()));
        }
        if lower::git_ref(value).is_some() {
            return Ok(ContextSource::Git(value.to_string()));
        }
        if value.starts_with("http://") || value.starts_with("https://") {
            return Ok(ContextSource::Http(value.to_string()));
        }
        if let Some((scheme, _)) = value.split_once("://") {
            return Err(ContextSourceError(format!(
                "unsupported context source {scheme}:// (kiln reads a path, docker-image://, a git URL or an http(s) URL)"
            )));
        }
        Ok(ContextSource::Local(PathBuf::from(value)))
    }
}

/// The main context's `Source::Context` name.
pub const MAIN: &str = "context";

/// The local directories a build reads, by `Source::Context` name.
#[derive(Default)]
pub struct Contexts {
    dirs: HashMap<String, (Arc<PathBuf>, Arc<Ignore>)>,
}

impl Contexts {
    /// The main context and the request's named ones: what the frontend
    /// is told of each, and the directories to read.
    pub(crate) fn open(
        main: PathBuf,
        ignore: Ignore,
        named: &BTreeMap<String, ContextSource>,
    ) -> Result<(Contexts, BTreeMap<String, NamedContext>), BuildError> {
        let mut dirs = HashMap::new();
        dirs.insert(MAIN.to_string(), (Arc::new(main), Arc::new(ignore)));
        let mut frontend = BTreeMap::new();
        for (name, source) in named {
            let context = match source {
                ContextSource::Local(path) => {
                    let dir = canonical_dir(path)?;
                    let ignore = read_ignore(&dir.join(".dockerignore"))?;
                    let told = NamedContext::Local {
                        ignore: ignore.patterns().to_vec(),
                    };
                    let key = lower::source_name(&lower::context_key(name));
                    dirs.insert(key, (Arc::new(dir), Arc::new(ignore)));
                    told
                }
                ContextSource::Image(r) if r == "scratch" => NamedContext::Scratch,
                ContextSource::Image(r) => NamedContext::Image(r.clone()),
                ContextSource::Git(url) => NamedContext::Git(
                    lower::git_ref(url).expect("ContextSource::parse checked it is git"),
                ),
                ContextSource::Http(url) => NamedContext::Http(url.clone()),
            };
            frontend.insert(name.clone(), context);
        }
        Ok((Contexts { dirs }, frontend))
    }

    /// The directory and ignore rules of context source `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&(Arc<PathBuf>, Arc<Ignore>)> {
        self.dirs.get(name)
    }

    /// The main context's directory.
    pub(crate) fn main(&self) -> &Path {
        &self.dirs[MAIN].0
    }

    /// The main context's ignore rules.
    pub(crate) fn main_ignore(&self) -> &Ignore {
        &self.dirs[MAIN].1
    }
}

/// `path` made absolute; it must be a directory.
pub(crate) fn canonical_dir(path: &Path) -> Result<PathBuf, BuildError> {
    let dir = path.canonicalize().map_err(|source| BuildError::Context {
        path: path.to_path_buf(),
        source,
    })?;
    if !dir.is_dir() {
        return Err(BuildError::Context {
            path: path.to_path_buf(),
            source: std::io::Error::other("not a directory"),
        });
    }
    Ok(dir)
}

/// The rules of an ignore file; none when it does not exist.
pub(crate) fn read_ignore(path: &Path) -> Result<Ignore, BuildError> {
    if !path.is_file() {
        return Ok(Ignore::empty());
    }
    let text = std::fs::read_to_string(path).map_err(|e| BuildError::Dockerignore {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ignore::parse(&text).map_err(|e| BuildError::Dockerignore {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_buildx_reads_them() {
        let p = |v| ContextSource::parse(v).unwrap();
        assert_eq!(
            p("docker-image://alpine:3"),
            ContextSource::Image("alpine:3".into())
        );
        assert_eq!(p("../lib"), ContextSource::Local("../lib".into()));
        assert_eq!(
            p("https://h/r.git#main:dir"),
            ContextSource::Git("https://h/r.git#main:dir".into())
        );
        assert_eq!(
            p("git@h:o/r.git"),
            ContextSource::Git("git@h:o/r.git".into())
        );
        assert_eq!(
            p("https://h/f.tar"),
            ContextSource::Http("https://h/f.tar".into())
        );
        assert!(ContextSource::parse("oci-layout://x")
            .unwrap_err()
            .0
            .contains("oci-layout://"));
        assert!(ContextSource::parse("docker-image://").is_err());
        assert!(ContextSource::parse("").is_err());
    }
}
