//! COPY and ADD: sources grouped by where they come from (the context, a
//! stage or image, a heredoc, a URL), `--chown`/`--chmod`/`--exclude`/
//! `--parents`/`--link`, ADD's archive unpacking and downloads.

use super::{err, LayerSlot, Lowerer, StageState, StepInfo};
use crate::error::LowerError;
use crate::path::{clean_abs, join_workdir};
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

fn is_git(s: &str) -> bool {
    s.starts_with("git@") || s.ends_with(".git") || s.starts_with("git://")
}

impl Lowerer<'_> {
    pub(super) fn copy(
        &mut self,
        state: &mut StageState,
        span: Span,
        a: CopyArgs<'_>,
        text: &str,
        n: usize,
        total: usize,
    ) -> Result<(), LowerError> {
        let pos = span.start;
        let kw = a.keyword;
        let dest_raw = self.expand(a.dest, state, pos)?;
        let dest_is_dir = dest_raw.ends_with('/')
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
            .map(|m| match u32::from_str_radix(&m, 8) {
                Ok(v) if v <= 0o7777 => Ok(Chmod::Octal(v)),
                _ => Err(err(pos, format!("{kw} --chmod={m}: not an octal mode"))
                    .with_hint("symbolic modes are not supported; use e.g. 0755")),
            })
            .transpose()?;
        let excludes: Vec<String> = a
            .excludes
            .iter()
            .map(|e| self.expand(e, state, pos))
            .collect::<Result<_, _>>()?;
        let from = a.from.map(|f| self.expand(f, state, pos)).transpose()?;

        // Group sources: heredocs and URLs each get their own source tree;
        // paths share one (the context, a stage or an image).
        let mut paths = Vec::new();
        // (source tree, paths in it, unpack archives)
        let mut steps: Vec<(VertexId, Vec<String>, bool)> = Vec::new();
        for s in a.sources {
            match s {
                CopySource::Heredoc(doc) => {
                    let mut doc = doc.clone();
                    if doc.expand {
                        doc.content = self
                            .lexer
                            .process_word(&doc.content, &state.scope)
                            .unwrap_or(doc.content);
                    }
                    let mode = 0o644;
                    let file = self.heredoc_file(&doc, mode, span)?;
                    steps.push((file, vec![format!("/{}", doc.name)], false));
                }
                CopySource::Path(p) => {
                    let p = self.expand(p, state, pos)?;
                    if kw == "ADD" && is_url(&p) {
                        let checksum =
                            a.checksum.map(|c| self.expand(c, state, pos)).transpose()?;
                        if let Some(c) = &checksum {
                            let hex = c.strip_prefix("sha256:").unwrap_or("");
                            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                                return Err(err(
                                    pos,
                                    format!("ADD --checksum={c}: want sha256:<64 hex digits>"),
                                ));
                            }
                        }
                        let filename = url_filename(&p);
                        let id = self.add(
                            Vertex {
                                op: Op::Source(Source::Http {
                                    url: p.clone(),
                                    checksum: checksum.map(|c| c.to_ascii_lowercase()),
                                    filename: filename.clone(),
                                }),
                                inputs: vec![],
                                name: format!("ADD {p}"),
                            },
                            StepInfo {
                                label: format!("[internal] download {p}"),
                                span: Some(span),
                                text: text.to_string(),
                            },
                        )?;
                        // Remote archives are not unpacked unless asked.
                        steps.push((id, vec![format!("/{filename}")], a.unpack == Some(true)));
                    } else if kw == "ADD" && is_git(&p) {
                        return Err(err(
                            pos,
                            format!("ADD {p}: git sources are not supported yet"),
                        )
                        .with_hint("clone in a RUN step, or add the files to the context"));
                    } else {
                        paths.push(p);
                    }
                }
            }
        }
        if a.checksum.is_some()
            && a.sources
                .iter()
                .any(|s| matches!(s, CopySource::Path(p) if !is_url(p)))
        {
            return Err(err(pos, "ADD --checksum only applies to http(s) sources"));
        }
        if !paths.is_empty() {
            let src = match &from {
                Some(f) => self.named_source(f, span)?,
                None => {
                    let include: Vec<String> = paths
                        .iter()
                        .map(|p| {
                            let c = clean_abs(p);
                            c.trim_start_matches('/').to_string()
                        })
                        .collect();
                    self.context(include, span, text)?
                }
            };
            steps.insert(0, (src, paths, a.unpack.unwrap_or(kw == "ADD")));
        }
        let label = self.label(n, total, text);
        let mut fs = state.fs;
        let single = steps.len() == 1;
        let groups = steps.len();
        // `--link` (one source group, ids not names: names need the base's
        // /etc/passwd): copy onto scratch, then merge onto the stage, so
        // the copy's cache key does not depend on the base.
        let numeric_chown = chown.as_ref().is_none_or(Chown::is_numeric);
        let linked = a.link && single && numeric_chown;
        for (src, paths, unpack) in steps {
            let onto = if linked { self.scratch()? } else { fs };
            let copy = self.add(
                Vertex {
                    op: Op::File(FileOp::Copy {
                        src: 1,
                        paths,
                        dest: dest.clone(),
                        chown: chown.clone(),
                        chmod: chmod.clone(),
                        exclude: excludes.clone(),
                        parents: a.parents,
                        unpack,
                        link: a.link && single,
                    }),
                    inputs: vec![onto, src],
                    name: text.trim().to_string(),
                },
                StepInfo {
                    label: label.clone(),
                    span: Some(span),
                    text: text.to_string(),
                },
            )?;
            fs = if linked {
                self.add(
                    Vertex {
                        op: Op::Merge,
                        inputs: vec![fs, copy],
                        name: format!("link {}", text.trim()),
                    },
                    StepInfo {
                        label: format!("[internal] link {}", text.trim()),
                        span: Some(span),
                        text: text.to_string(),
                    },
                )?
            } else {
                copy
            };
        }
        state.fs = fs;
        // One history entry per layer place (more than one only when a
        // COPY mixes heredocs, URLs and paths).
        for _ in 0..groups {
            Self::history(state, format!("{} # kiln", text.trim()), LayerSlot::Step);
        }
        Ok(())
    }
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
