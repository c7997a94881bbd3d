//! COPY and ADD: sources grouped by where they come from (the context, a
//! stage or image, a heredoc, a URL), `--chown`/`--chmod`/`--exclude`/
//! `--parents`/`--link`, ADD's archive unpacking and downloads.

use super::{err, LayerSlot, Lowerer, StageState, StepInfo};
use crate::error::LowerError;
use crate::path::{clean_abs, join_workdir};
use crate::plan::Scope;
use kiln_parser::instructions::{Add, Copy, Source as CopySource};
use kiln_parser::Span;
use kiln_solver::{Chmod, Chown, FileOp, Op, Source, Vertex, VertexId};

pub(super) struct CopyArgs<'a> {
    sources: &'a [CopySource],
    dest: &'a str,
    from: Option<&'a str>,
    chown: Option<&'a str>,
    chmod: Option<&'a str>,
    link: bool,
    parents: bool,
    excludes: &'a [String],
    /// `--unpack` as given: archives are unpacked by default only when
    /// ADD copies them from a local tree.
    unpack: Option<bool>,
    checksum: Option<&'a str>,
    keep_git_dir: bool,
    keyword: &'static str,
}

impl<'a> CopyArgs<'a> {
    pub(super) fn copy(c: &'a Copy) -> CopyArgs<'a> {
        CopyArgs {
            sources: &c.sources,
            dest: &c.dest,
            from: c.from.as_deref(),
            chown: c.chown.as_deref(),
            chmod: c.chmod.as_deref(),
            link: c.link,
            parents: c.parents,
            excludes: &c.excludes,
            unpack: None,
            checksum: None,
            keep_git_dir: false,
            keyword: "COPY",
        }
    }

    pub(super) fn add(a: &'a Add) -> CopyArgs<'a> {
        CopyArgs {
            sources: &a.sources,
            dest: &a.dest,
            from: None,
            chown: a.chown.as_deref(),
            chmod: a.chmod.as_deref(),
            link: a.link,
            parents: false,
            excludes: &a.excludes,
            unpack: a.unpack,
            checksum: a.checksum.as_deref(),
            keep_git_dir: a.keep_git_dir,
            keyword: "ADD",
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The name a download gets: the URL path's last segment, as BuildKit
/// names it (`__unnamed__` when the path has none).
pub(super) fn url_filename(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .split_once('/')
        .map_or("", |(_, p)| p);
    // Go's path.Base: trailing slashes do not count.
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(base) if !base.is_empty() && base != "." && base != ".." => base.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

/// A git source as BuildKit reads one: `git://`, `ssh://`, `git@host:`,
/// or an http(s) URL whose path ends in `.git`; then `#ref[:subdir]`, or
/// the query form (`?ref=&branch=&tag=&commit=&subdir=&submodules=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRef {
    pub url: String,
    pub reference: String,
    pub subdir: String,
    pub submodules: bool,
    /// `?commit=`: the ref must resolve to it.
    pub commit: Option<String>,
}

pub fn git_ref(s: &str) -> Option<GitRef> {
    let (base, fragment) = s.split_once('#').unwrap_or((s, ""));
    let (remote, query) = base.split_once('?').unwrap_or((base, ""));
    let git = remote.starts_with("git://")
        || remote.starts_with("ssh://")
        || remote.starts_with("git@")
        || (is_url(remote) && remote.trim_end_matches('/').ends_with(".git"));
    if !git {
        return None;
    }
    let (mut reference, mut subdir) = match fragment.split_once(':') {
        Some((r, d)) => (r.to_string(), d.to_string()),
        None => (fragment.to_string(), String::new()),
    };
    let (mut submodules, mut commit) = (true, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "ref" | "branch" | "tag" => reference = v.to_string(),
            "commit" => {
                if reference.is_empty() {
                    reference = v.to_string();
                }
                commit = Some(v.to_string());
            }
            "subdir" => subdir = v.to_string(),
            "submodules" => submodules = v != "false",
            _ => {}
        }
    }
    Some(GitRef {
        url: remote.to_string(),
        reference,
        subdir,
        submodules,
        commit,
    })
}

/// What every copy of one COPY/ADD shares, expanded.
struct Expanded {
    dest: String,
    chown: Option<Chown>,
    chmod: Option<Chmod>,
    excludes: Vec<String>,
    from: Option<String>,
}

/// One group of sources: a tree and the paths in it, and whether archives
/// among them are unpacked.
type Group = (VertexId, Vec<String>, bool);

impl Lowerer<'_> {
    pub(super) fn copy(
        &mut self,
        state: &mut StageState,
        span: Span,
        a: CopyArgs<'_>,
        text: &str,
    ) -> Result<(), LowerError> {
        let x = self.copy_expand(state, &a, span)?;
        let groups = self.copy_groups(state, &a, x.from.as_deref(), span, text)?;
        let count = groups.len();
        let label = self.label(state, text);
        self.copy_vertices(state, &a, &x, groups, span, label, text)?;
        // One history entry per layer place (more than one only when a
        // COPY mixes heredocs, URLs and paths), worded as BuildKit's.
        let message = self.commit_message(state, &a, &x, span)?;
        for _ in 0..count {
            Self::history(state, format!("{message} # kiln"), LayerSlot::Step);
        }
        Ok(())
    }

    /// BuildKit's history line for a COPY/ADD: the keyword, `--parents`,
    /// `--chown`, `--chmod` (never `--from`, `--link`...), the sources
    /// and the destination, expanded.
    fn commit_message(
        &self,
        state: &StageState,
        a: &CopyArgs<'_>,
        x: &Expanded,
        span: Span,
    ) -> Result<String, LowerError> {
        let mut m = a.keyword.to_string();
        if a.parents {
            m.push_str(" --parents");
        }
        if let Some(c) = &x.chown {
            m.push_str(&format!(" --chown={c}"));
        }
        if let Some(c) = a.chmod {
            m.push_str(&format!(" --chmod={}", self.expand(c, state, span.start)?));
        }
        // Paths first, then heredocs (`<<NAME`), as BuildKit writes them.
        for s in a.sources {
            if let CopySource::Path(p) = s {
                m.push(' ');
                m.push_str(&self.expand(p, state, span.start)?);
            }
        }
        for s in a.sources {
            if let CopySource::Heredoc(doc) = s {
                m.push_str(&format!(" <<{}", doc.name));
            }
        }
        m.push(' ');
        m.push_str(&self.expand(a.dest, state, span.start)?);
        Ok(m)
    }

    /// The destination (a directory when it ends in `/`, `.` or `..`) and
    /// the flags, expanded in the stage's scope.
    fn copy_expand(
        &self,
        state: &StageState,
        a: &CopyArgs<'_>,
        span: Span,
    ) -> Result<Expanded, LowerError> {
        let pos = span.start;
        let kw = a.keyword;
        let dest_raw = self.expand(a.dest, state, pos)?;
        // An empty destination (`COPY f $unset`) is the working directory.
        let dest_is_dir = dest_raw.is_empty()
            || dest_raw.ends_with('/')
            || dest_raw == "."
            || dest_raw.ends_with("/.")
            || dest_raw == ".."
            || dest_raw.ends_with("/..");
        let mut dest = join_workdir(&Self::workdir(state), &dest_raw);
        if dest_is_dir && dest != "/" {
            dest.push('/');
        }
        if a.sources.len() > 1 && !dest_is_dir {
            return Err(err(
                pos,
                format!("{kw} with more than one source: the destination must be a directory and end with a /"),
            )
            .with_hint(format!("write {dest_raw}/")));
        }
        let chown = a
            .chown
            .map(|c| self.expand(c, state, pos))
            .transpose()?
            .filter(|c| !c.is_empty())
            .map(|c| Chown::parse(&c));
        let chmod = a
            .chmod
            .map(|c| self.expand(c, state, pos))
            .transpose()?
            .filter(|c| !c.is_empty())
            .map(|m| Chmod::parse(&m).map_err(|e| err(pos, format!("{kw} --chmod: {e}"))))
            .transpose()?;
        let excludes = a
            .excludes
            .iter()
            .map(|e| self.expand(e, state, pos))
            .collect::<Result<_, _>>()?;
        // BuildKit resolves --from before any expansion and refuses a
        // value that would expand (with no variables set) to another.
        if let Some(f) = a.from {
            let bare = self.lexer.process_word(f, &Scope::new(Vec::new()));
            if !matches!(&bare, Ok(v) if v == f) {
                return Err(err(pos, "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"));
            }
        }
        let from = a.from.map(str::to_string);
        Ok(Expanded {
            dest,
            chown,
            chmod,
            excludes,
            from,
        })
    }

    /// Sources grouped by tree: heredocs and URLs each get their own;
    /// paths share one (the context, or the stage or image `--from`
    /// names), first.
    fn copy_groups(
        &mut self,
        state: &StageState,
        a: &CopyArgs<'_>,
        from: Option<&str>,
        span: Span,
        text: &str,
    ) -> Result<Vec<Group>, LowerError> {
        let pos = span.start;
        let kw = a.keyword;
        let mut paths = Vec::new();
        let mut groups: Vec<Group> = Vec::new();
        for s in a.sources {
            match s {
                CopySource::Heredoc(doc) => {
                    let mut doc = doc.clone();
                    if doc.expand {
                        // Variables only: quotes and other characters stay
                        // as written (BuildKit's raw expansion: quotes are
                        // not processed, `\` escapes whatever follows it).
                        let lexer = kiln_parser::shell::Lexer {
                            skip_process_quotes: true,
                            ..kiln_parser::shell::Lexer::new('\\')
                        };
                        doc.content = lexer
                            .process_word(&doc.content, &state.scope)
                            .map_err(|e| err(pos, format!("{kw} <<{}: {e}", doc.name)))?;
                    }
                    let file = self.heredoc_file(&doc, 0o644, span)?;
                    groups.push((file, vec![format!("/{}", doc.name)], false));
                }
                CopySource::Path(p) => {
                    let p = self.expand(p, state, pos)?;
                    if kw == "COPY" && is_url(&p) {
                        return Err(err(pos, "source can't be a URL for COPY")
                            .with_hint("use ADD to download, or RUN with curl or wget"));
                    }
                    if let (Some(g), "ADD") = (git_ref(&p), kw) {
                        groups.push(self.git_checkout(state, a, g, &p, span, text)?);
                    } else if kw == "ADD" && is_url(&p) {
                        groups.push(self.download(state, a, &p, span, text)?);
                    } else {
                        paths.push(p);
                    }
                }
            }
        }
        // Checked on the expanded sources (`--checksum=$SUM $URL`).
        if a.checksum.is_some() {
            if a.sources.len() > 1 {
                return Err(err(pos, "checksum can't be specified for multiple sources"));
            }
            if !paths.is_empty()
                || a.sources
                    .iter()
                    .any(|s| matches!(s, CopySource::Heredoc(_)))
            {
                return Err(err(pos, "checksum requires HTTP(S) or Git sources"));
            }
        }
        if !paths.is_empty() {
            let src = match from {
                Some(f) => self.named_source(f, span)?,
                None => {
                    let include = paths
                        .iter()
                        .map(|p| clean_abs(p).trim_start_matches('/').to_string())
                        .collect();
                    self.context(include, span, text)?
                }
            };
            groups.insert(0, (src, paths, a.unpack.unwrap_or(kw == "ADD")));
        }
        Ok(groups)
    }

    /// `ADD <url>`: a download, pinned by `--checksum` when given; remote
    /// archives are not unpacked unless asked.
    fn download(
        &mut self,
        state: &StageState,
        a: &CopyArgs<'_>,
        url: &str,
        span: Span,
        text: &str,
    ) -> Result<Group, LowerError> {
        let pos = span.start;
        let checksum = a.checksum.map(|c| self.expand(c, state, pos)).transpose()?;
        if let Some(c) = &checksum {
            check_digest(c).map_err(|m| {
                err(pos, format!("ADD --checksum={c}: {m}")).with_hint("use sha256:<64 hex digits>")
            })?;
        }
        let filename = url_filename(url);
        let id = self.add(
            Vertex {
                op: Op::Source(Source::Http {
                    url: url.to_string(),
                    checksum: checksum.map(|c| c.to_ascii_lowercase()),
                    filename: filename.clone(),
                }),
                inputs: vec![],
                name: format!("ADD {url}"),
            },
            StepInfo {
                label: format!("[internal] download {url}"),
                span: Some(span),
                text: text.to_string(),
            },
        )?;
        Ok((id, vec![format!("/{filename}")], a.unpack == Some(true)))
    }

    /// `ADD <git-url>`: the checkout's tree, copied like a directory's
    /// contents.
    fn git_checkout(
        &mut self,
        state: &StageState,
        a: &CopyArgs<'_>,
        g: GitRef,
        url: &str,
        span: Span,
        text: &str,
    ) -> Result<Group, LowerError> {
        let pos = span.start;
        let checksum = a.checksum.map(|c| self.expand(c, state, pos)).transpose()?;
        if let Some(c) = &checksum {
            if c.len() < 7 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(
                    pos,
                    format!("ADD --checksum={c}: expected a commit id for a git source"),
                ));
            }
        }
        let id = self.add(
            Vertex {
                op: Op::Source(Source::Git {
                    url: g.url,
                    reference: g.reference,
                    subdir: g.subdir,
                    keep_git_dir: a.keep_git_dir,
                    submodules: g.submodules,
                    checksum: checksum.or(g.commit).map(|c| c.to_ascii_lowercase()),
                }),
                inputs: vec![],
                name: format!("ADD {url}"),
            },
            StepInfo {
                label: format!("[internal] git {url}"),
                span: Some(span),
                text: text.to_string(),
            },
        )?;
        Ok((id, vec!["/".to_string()], false))
    }

    /// One copy vertex per group onto the stage. `--link` (one group, ids
    /// not names: names need the base's /etc/passwd) copies onto scratch
    /// and merges onto the stage, so the copy's key does not depend on
    /// the base.
    #[allow(clippy::too_many_arguments)]
    fn copy_vertices(
        &mut self,
        state: &mut StageState,
        a: &CopyArgs<'_>,
        x: &Expanded,
        groups: Vec<Group>,
        span: Span,
        label: String,
        text: &str,
    ) -> Result<(), LowerError> {
        let single = groups.len() == 1;
        let numeric_chown = x.chown.as_ref().is_none_or(Chown::is_numeric);
        let linked = a.link && single && numeric_chown;
        let info = |label: String| StepInfo {
            label,
            span: Some(span),
            text: text.to_string(),
        };
        let mut fs = state.fs;
        for (src, paths, unpack) in groups {
            let onto = if linked { self.scratch()? } else { fs };
            let op = FileOp::Copy {
                src: 1,
                paths,
                dest: x.dest.clone(),
                chown: x.chown.clone(),
                chmod: x.chmod.clone(),
                exclude: x.excludes.clone(),
                parents: a.parents,
                unpack,
                link: a.link && single,
            };
            let copy = self.add(
                Vertex {
                    op: Op::File(op),
                    inputs: vec![onto, src],
                    name: text.trim().to_string(),
                },
                info(label.clone()),
            )?;
            fs = match linked {
                false => copy,
                true => self.add(
                    Vertex {
                        op: Op::Merge,
                        inputs: vec![fs, copy],
                        name: format!("link {}", text.trim()),
                    },
                    info(format!("[internal] link {}", text.trim())),
                )?,
            };
        }
        state.fs = fs;
        Ok(())
    }
}

/// An OCI digest as `--checksum` takes it, worded as go-digest's errors
/// (what BuildKit reports). kiln verifies sha256 downloads.
fn check_digest(d: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return Err("invalid checksum digest format".into());
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" | "sha512" => {
            return Err(format!(
                "unsupported digest algorithm: kiln verifies sha256, not {algorithm}"
            ))
        }
        _ => return Err(format!("unsupported digest algorithm: {algorithm}")),
    };
    if hex.len() != length {
        return Err("invalid checksum digest length".into());
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("invalid checksum digest format".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::url_filename;

    #[test]
    fn downloads_are_named_like_buildkit_names_them() {
        assert_eq!(url_filename("https://h/a/b.tar.gz?x=1#f"), "b.tar.gz");
        assert_eq!(url_filename("http://h:8/file"), "file");
        assert_eq!(url_filename("https://h/"), "__unnamed__");
        assert_eq!(url_filename("https://h"), "__unnamed__");
        assert_eq!(url_filename("https://h/dir/"), "dir");
    }
}
