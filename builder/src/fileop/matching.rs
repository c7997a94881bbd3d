//! What a COPY's sources name: `.dockerignore` and `--exclude` filters,
//! and source patterns expanded against the tree.

use super::{
    components, errno, is_dir, list, open_dir_in, rel_of, stat_in, CopySpec, FileOpError, OpResult,
};
use globset::{GlobBuilder, GlobMatcher};
use kiln_frontend_dockerfile::dockerignore::Ignore;
use rustix::fs::{AtFlags, FileType};
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

/// Filters applied while walking a source: the context's `.dockerignore`
/// (paths relative to the source root) and `--exclude` patterns.
/// `--exclude` patterns match below the source being copied: `*.md`
/// excludes `b.md` when copying `src/`.
pub struct Filter<'a> {
    pub ignore: Option<&'a Ignore>,
    pub exclude: Option<&'a Ignore>,
    /// The source path `--exclude` patterns are relative to.
    pub base: String,
}

impl<'a> Filter<'a> {
    pub(super) fn excluded(&self, rel: &str) -> bool {
        if self.ignore.is_some_and(|i| i.excludes(Path::new(rel))) {
            return true;
        }
        let below = if self.base.is_empty() {
            rel
        } else {
            rel.strip_prefix(self.base.as_str())
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(rel)
        };
        self.exclude.is_some_and(|i| i.excludes(Path::new(below)))
    }

    pub(super) fn ignored(&self, rel: &str) -> bool {
        self.ignore.is_some_and(|i| i.excludes(Path::new(rel)))
    }

    pub(super) fn based(&self, base: &str) -> Filter<'a> {
        Filter {
            ignore: self.ignore,
            exclude: self.exclude,
            base: base.to_string(),
        }
    }
}

/// Every path below `base` in the tree (symlinks not followed).
fn descendants(root: BorrowedFd<'_>, base: &[String], out: &mut Vec<Vec<String>>) -> OpResult<()> {
    let Ok(dir) = open_dir_in(root, &rel_of(base)) else {
        return Ok(());
    };
    for name in list(dir.as_fd())? {
        let mut p = base.to_vec();
        p.push(name.to_string_lossy().into_owned());
        let is_dir = rustix::fs::statat(dir.as_fd(), &name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
        if is_dir {
            descendants(root, &p, out)?;
        }
        out.push(p);
    }
    Ok(())
}

/// A source path, expanded: wildcards (`*`, `?`, `[..]`, one component
/// each; `**` any number of them) matched against the tree. Returns relative paths; a wildcard
/// may match none.
pub fn expand_source(
    root: BorrowedFd<'_>,
    pattern: &str,
    filter: &Filter<'_>,
) -> OpResult<Vec<String>> {
    let parts = components(pattern);
    let has_glob = |s: &str| s.contains(['*', '?', '[']);
    if !parts.iter().any(|p| has_glob(p)) {
        let rel = parts.join("/");
        if !rel.is_empty() && filter.excluded(&rel) {
            return Err(FileOpError(format!(
                "\"/{rel}\": not found (excluded by .dockerignore)"
            )));
        }
        return match stat_in(root, &rel) {
            Ok(_) => Ok(vec![rel]),
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => {
                Err(FileOpError(format!("\"/{rel}\": not found")))
            }
            Err(e) => Err(errno(format!("/{rel}"))(e)),
        };
    }
    let mut current: Vec<Vec<String>> = vec![vec![]];
    for part in &parts {
        let mut next = Vec::new();
        if part == "**" {
            // Any number of directories, none included.
            for base in current {
                descendants(root, &base, &mut next)?;
                next.push(base);
            }
        } else if !has_glob(part) {
            for base in current {
                let mut p = base.clone();
                p.push(part.clone());
                if stat_in(root, &rel_of(&p)).is_ok() {
                    next.push(p);
                }
            }
        } else {
            let matcher: GlobMatcher = GlobBuilder::new(part)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("invalid pattern {pattern:?}: {e}"))?
                .compile_matcher();
            for base in current {
                let Ok(dir) = open_dir_in(root, &rel_of(&base)) else {
                    continue;
                };
                for name in list(dir.as_fd())? {
                    if matcher.is_match(Path::new(&name)) {
                        let mut p = base.clone();
                        p.push(name.to_string_lossy().into_owned());
                        next.push(p);
                    }
                }
            }
        }
        current = next;
    }
    // A matched directory is copied even when --exclude patterns match
    // it: they filter what is below it (BuildKit's copier checks them
    // only under the source), so `--exclude=* dir*` makes an empty dest.
    // A wildcard matching nothing copies nothing (BuildKit's
    // AllowEmptyWildcard), not an error.
    let out: Vec<String> = current
        .into_iter()
        .map(|p| p.join("/"))
        .filter(|p| {
            let dir = stat_in(root, p).is_ok_and(|st| is_dir(&st));
            !(filter.ignored(p) || !dir && filter.excluded(p))
        })
        .collect();
    Ok(out)
}

/// The sources of a copy, each with how many of its leading components
/// `--parents` drops: those before the pattern's first `/./` (its pivot).
pub(super) fn sources(
    src_root: BorrowedFd<'_>,
    spec: &CopySpec<'_>,
    filter: &Filter<'_>,
) -> OpResult<Vec<(String, usize)>> {
    let mut matches = Vec::new();
    for p in spec.paths {
        let kept_from = match p.find("/./") {
            Some(i) if spec.parents => components(&p[..i]).len(),
            _ => 0,
        };
        matches.extend(
            expand_source(src_root, p, filter)?
                .into_iter()
                .map(|m| (m, kept_from)),
        );
    }
    Ok(matches)
}
