//! The line-level parser: physical lines → logical lines (continuations,
//! comments, directives) → instruction nodes, then heredoc bodies.
//! Follows BuildKit's `parser.Parse` rule for rule; see NOTICE.md of the
//! conformance corpus for the behaviour being matched.

use crate::ast::{Args, Directive, Dockerfile, Heredoc, Node};
use crate::error::{ParseError, Warning};
use crate::shell::{Lexer, NoEnv};
use crate::span::{LineMap, Pos, Span};
use crate::split::{parse_args, split_command};
use crate::{directives, Flag};

use nom::{
    bytes::complete::{tag, take_while},
    character::complete::{char, digit0},
    combinator::{opt, rest},
    IResult, Parser,
};

const BOM: char = '\u{feff}';

/// Parses Dockerfile bytes. Invalid UTF-8 is replaced (U+FFFD) with a
/// warning rather than rejected: docker accepts Latin-1 comments.
pub fn parse_bytes(src: &[u8]) -> Result<Dockerfile, ParseError> {
    match std::str::from_utf8(src) {
        Ok(s) => parse(s),
        Err(e) => {
            let line = src[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u32
                + 1;
            let text = String::from_utf8_lossy(src);
            let mut df = parse(&text)?;
            df.warnings.insert(
                0,
                Warning {
                    pos: Pos::new(line, 1),
                    message: "the Dockerfile is not valid UTF-8; invalid bytes were replaced"
                        .into(),
                },
            );
            Ok(df)
        }
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

fn char_len(s: &str) -> u32 {
    s.chars().count() as u32
}

/// Strips a trailing line-continuation (the escape character, then only
/// blanks) and says whether the instruction ends on this line. An escaped
/// escape (`\\`) at the end is not a continuation.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

struct State {
    escape: char,
    directives: Vec<Directive>,
    directives_done: bool,
    warnings: Vec<Warning>,
}

impl State {
    /// Feeds a (left-trimmed) line to the directive recogniser. Directives
    /// are only honoured in the leading run of comment lines. True when
    /// the line was one.
    fn directive(&mut self, line: &str, line_no: u32) -> Result<bool, ParseError> {
        if self.directives_done {
            return Ok(false);
        }
        let Some((name, value)) = directives::parse_line(line) else {
            self.directives_done = true;
            return Ok(false);
        };
        if !directives::KNOWN.contains(&name.as_str()) {
            self.directives_done = true;
            return Ok(false);
        }
        let col = 1;
        if self.directives.iter().any(|d| d.name == name) {
            return Err(ParseError::new(
                Pos::new(line_no, col),
                format!("only one {name} parser directive can be used"),
            ));
        }
        if name == "escape" {
            self.escape = match value.as_str() {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(ParseError::new(
                        Pos::new(line_no, col),
                        format!("invalid escape token '{value}' does not match ` or \\"),
                    ))
                }
            };
        }
        self.directives.push(Directive {
            name,
            value,
            line: line_no,
        });
        Ok(true)
    }
}

/// Parses a Dockerfile.
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = src.split_inclusive('\n').collect();
    let mut st = State {
        escape: '\\',
        directives: Vec::new(),
        directives_done: false,
        warnings: Vec::new(),
    };
    let mut instructions = Vec::new();
    // The comment lines the next instruction gets (`Node::comments`).
    let mut comments = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let mut text = trim_newline(lines[i]);
        if i == 0 {
            text = text.strip_prefix(BOM).unwrap_or(text);
        }
        let trimmed = text.trim_start();
        let lead = char_len(text) - char_len(trimmed);
        i += 1;
        let line_no = i as u32;
        let directive = st.directive(trimmed, line_no)?;
        if is_comment(trimmed) {
            match trimmed[1..].trim() {
                _ if directive => {}
                "" => comments.clear(),
                comment => comments.push(comment.to_string()),
            }
            continue;
        }
        let (content, mut ends) = trim_continuation(trimmed, st.escape);
        if ends && content.is_empty() {
            continue;
        }
        let start = Pos::new(line_no, lead + 1);
        let mut logical = content.to_string();
        let mut map = LineMap::default();
        map.push(0, start);
        let mut end = Pos::new(line_no, char_len(text).max(1));
        while !ends && i < lines.len() {
            let t = trim_newline(lines[i]);
            i += 1;
            let ln = i as u32;
            end = Pos::new(ln, char_len(t).max(1));
            if is_comment(t) {
                continue;
            }
            if t.trim_start().is_empty() {
                st.warnings.push(Warning {
                    pos: Pos::new(ln, 1),
                    message: "empty continuation line".into(),
                });
                continue;
            }
            let (c, e) = trim_continuation(t, st.escape);
            ends = e;
            map.push(logical.len(), Pos::new(ln, 1));
            logical.push_str(c);
        }

        // Only escape characters and blanks: nothing to build a node from.
        if logical.trim().is_empty() {
            continue;
        }
        let mut node = node_from_line(&logical, map, st.escape, start, end)?;
        node.comments = std::mem::take(&mut comments);
        if can_contain_heredoc(&node) && logical.contains("<<") {
            let docs = heredocs_from_line(&logical).map_err(|m| ParseError::new(start, m))?;
            for mut doc in docs {
                let mut terminated = false;
                let mut content = String::new();
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    end = Pos::new(i as u32, char_len(trim_newline(raw)).max(1));
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                }
                if !terminated {
                    let pos = heredoc_marker_pos(&node, &doc.name).unwrap_or(start);
                    return Err(
                        ParseError::new(pos, "unterminated heredoc").with_hint(format!(
                            "end the heredoc with a line that is exactly {:?}",
                            doc.name
                        )),
                    );
                }
                doc.content = content;
                node.heredocs.push(doc);
            }
            node.span.end = end;
        }
        instructions.push(node);
    }
    if instructions.is_empty() {
        let last = lines.len().max(1) as u32;
        return Err(
            ParseError::new(Pos::new(last, 1), "file with no instructions")
                .with_hint("a Dockerfile needs at least a FROM instruction"),
        );
    }
    Ok(Dockerfile {
        directives: st.directives,
        escape: st.escape,
        instructions,
        warnings: st.warnings,
    })
}

/// Builds one instruction node from a logical line.
fn node_from_line(
    line: &str,
    map: LineMap,
    escape: char,
    start: Pos,
    end: Pos,
) -> Result<Node, ParseError> {
    let cl = split_command(line, escape);
    let command = cl.keyword.to_lowercase();
    let err_at = |offset: usize, message: String, hint: Option<String>| {
        let e = ParseError::new(map.pos_of(line, offset), message);
        match hint {
            Some(h) => e.with_hint(h),
            None => e,
        }
    };
    let args = if command == "onbuild" {
        if cl.args.is_empty() {
            Args::None
        } else {
            let child_map = map.shifted(line, cl.args_offset);
            let child_start = map.pos_of(line, cl.args_offset);
            Args::OnBuild(Box::new(node_from_line(
                cl.args,
                child_map,
                escape,
                child_start,
                end,
            )?))
        }
    } else {
        parse_args(&command, cl.args, cl.args_offset, &map, line, escape)
            .map_err(|e| err_at(e.offset, e.message, e.hint))?
    };
    let flags = cl
        .flags
        .iter()
        .map(|(text, off)| Flag {
            text: text.clone(),
            pos: map.pos_of(line, *off),
        })
        .collect();
    Ok(Node {
        keyword: cl.keyword.to_string(),
        flags,
        args,
        heredocs: Vec::new(),
        original: line.to_string(),
        span: Span::new(map.pos_of(line, cl.keyword_offset).max(start), end),
        args_pos: map.pos_of(line, cl.args_offset),
        line_map: map,
        comments: Vec::new(),
    })
}

/// RUN, COPY and ADD (also as ONBUILD triggers) take heredocs, except in
/// JSON form.
fn can_contain_heredoc(node: &Node) -> bool {
    let node = match &node.args {
        Args::OnBuild(child) if node.command() == "onbuild" => child,
        _ => node,
    };
    matches!(node.command().as_str(), "run" | "copy" | "add") && !node.args.is_exec()
}

/// Where `<<NAME` is written in the node's line, for error messages.
fn heredoc_marker_pos(node: &Node, name: &str) -> Option<Pos> {
    node.original.match_indices("<<").find_map(|(off, _)| {
        let after = node.original[off + 2..]
            .trim_start_matches('-')
            .trim_start()
            .trim_start_matches(['\'', '"']);
        after.starts_with(name).then(|| node.pos_at(off))
    })
}

/// `[fd]<<[-][blanks]word` as one shell word.
fn heredoc_marker(i: &str) -> IResult<&str, (&str, bool, &str)> {
    (
        digit0,
        tag("<<"),
        opt(char('-')),
        take_while(|c| matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')),
        rest,
    )
        .map(|(fd, _, chomp, _, word)| (fd, chomp.is_some(), word))
        .parse(i)
}

/// Heredocs named on a line. The line is lexed as shell words with quotes
/// and escapes kept, so `"<<EOF"` (quoted) is not a heredoc.
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let mut lexer = Lexer::new('\\');
    lexer.raw_quotes = true;
    lexer.raw_escapes = true;
    lexer.skip_unset_env = true;
    let words = lexer.process_words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        let Ok((_, (fd, chomp, rest))) = heredoc_marker(&word) else {
            continue;
        };
        if rest.is_empty() || rest.contains('<') {
            continue;
        }
        let mut plain = Lexer::new('\\');
        plain.skip_unset_env = true;
        let names = plain
            .process_words(rest, &NoEnv)
            .map_err(|e| format!("invalid heredoc delimiter {rest:?}: {e}"))?;
        let [name] = names.as_slice() else {
            continue;
        };
        plain.raw_quotes = true;
        let raw = plain
            .process_words(rest, &NoEnv)
            .map_err(|e| format!("invalid heredoc delimiter {rest:?}: {e}"))?;
        let [raw_name] = raw.as_slice() else {
            return Err(format!("inconsistent lexing of heredoc delimiter {rest:?}"));
        };
        let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
        docs.push(Heredoc {
            name: name.clone(),
            fd: fd.parse().unwrap_or(0),
            expand: quotes(name) == quotes(raw_name),
            chomp,
            content: String::new(),
        });
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("echo \\", '\\'), ("echo ", false));
        assert_eq!(trim_continuation("echo \\  \t", '\\'), ("echo ", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("echo \\\\", '\\'), ("echo \\\\", true));
        assert_eq!(trim_continuation("echo `", '`'), ("echo ", false));
        assert_eq!(trim_continuation("echo \\", '`'), ("echo \\", true));
    }

    #[test]
    fn heredoc_markers() {
        let docs = heredocs_from_line("RUN 3<<-EOF cat <<'END' \"<<NO\" <<\"E2\"").unwrap();
        let got: Vec<_> = docs
            .iter()
            .map(|d| (d.name.as_str(), d.fd, d.chomp, d.expand))
            .collect();
        assert_eq!(
            got,
            [
                ("EOF", 3, true, true),
                ("END", 0, false, false),
                ("E2", 0, false, false)
            ]
        );
    }
}
