//! Splitting one logical line into keyword, flags and arguments, and the
//! argument shapes of each instruction. These are small state machines with
//! BuildKit's exact quoting rules; every word keeps its byte offset in the
//! logical line so errors can point at it.

use crate::ast::{Args, KeyValue, Word};
use crate::json::{parse_array, JsonArray};
use crate::span::LineMap;

/// An error at a byte offset of the logical line.
pub(crate) struct SplitError {
    pub offset: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// BuildKit splits plain argument lists on runs of these (note: no `\n`,
/// which cannot occur in a logical line, and no Unicode spaces).
fn is_list_space(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Trims Unicode whitespace on both ends, returning the offset of the rest.
fn trim_with_offset(s: &str, base: usize) -> (&str, usize) {
    let start = s.len() - s.trim_start().len();
    (s[start..].trim_end(), base + start)
}

/// Keyword, flags and the offset/text of the arguments.
pub(crate) struct CommandLine<'a> {
    pub keyword: &'a str,
    pub keyword_offset: usize,
    pub flags: Vec<(String, usize)>,
    pub args: &'a str,
    pub args_offset: usize,
}

pub(crate) fn split_command(line: &str, escape: char) -> CommandLine<'_> {
    let (trimmed, base) = trim_with_offset(line, 0);
    let Some(kw_end) = trimmed.find(is_list_space) else {
        return CommandLine {
            keyword: trimmed,
            keyword_offset: base,
            flags: Vec::new(),
            args: "",
            args_offset: base + trimmed.len(),
        };
    };
    let after_kw = &trimmed[kw_end..];
    let rest_start = kw_end + (after_kw.len() - after_kw.trim_start_matches(is_list_space).len());
    let rest = &trimmed[rest_start..];
    let (args_rel, flags) = extract_flags(rest, escape);
    let (args, args_offset) = trim_with_offset(&rest[args_rel..], base + rest_start + args_rel);
    CommandLine {
        keyword: &trimmed[..kw_end],
        keyword_offset: base,
        flags: flags
            .into_iter()
            .map(|(f, off)| (f, off + base + rest_start))
            .collect(),
        args,
        args_offset,
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Leading `--flag` words: quotes removed, escapes resolved; a bare `--`
/// ends the flags and is dropped. Returns where the arguments start.
fn extract_flags(line: &str, escape: char) -> (usize, Vec<(String, usize)>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut buf = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut start = 0;
    let mut k = 0;
    loop {
        let (off, mut ch) = if k < n { chars[k] } else { (line.len(), '\0') };
        if phase == Phase::Spaces {
            if k == n {
                break;
            }
            if ch.is_whitespace() {
                k += 1;
                continue;
            }
            if ch != '-' || k + 1 == n || chars[k + 1].1 != '-' {
                return (off, words);
            }
            phase = Phase::Word;
            start = off;
        }
        if k == n {
            if buf != "--" && (blank_ok || !buf.is_empty()) {
                words.push((buf, start));
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if buf == "--" {
                    return (off, words);
                }
                if blank_ok || !buf.is_empty() {
                    words.push((std::mem::take(&mut buf), start));
                }
                buf.clear();
                blank_ok = false;
                k += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                k += 1;
                continue;
            }
            if ch == escape {
                if k + 1 == n {
                    k += 1;
                    continue;
                }
                k += 1;
                ch = chars[k].1;
            }
            buf.push(ch);
            k += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            k += 1;
            continue;
        }
        if ch == escape {
            if k + 1 == n {
                phase = Phase::Word;
                k += 1;
                continue;
            }
            k += 1;
            ch = chars[k].1;
        }
        buf.push(ch);
        k += 1;
    }
    (line.len(), words)
}

/// Words split on unquoted whitespace, quotes and escapes kept verbatim
/// (ENV, LABEL, ARG): the shell lexer interprets them later.
fn parse_words(rest: &str, base: usize, escape: char) -> Vec<(String, usize)> {
    let chars: Vec<(usize, char)> = rest.char_indices().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut buf = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut start = 0;
    let mut k = 0;
    loop {
        let (off, mut ch) = if k < n { chars[k] } else { (rest.len(), '\0') };
        if phase == Phase::Spaces {
            if k == n {
                break;
            }
            if ch.is_whitespace() {
                k += 1;
                continue;
            }
            phase = Phase::Word;
            start = off;
        }
        if k == n {
            if blank_ok || !buf.is_empty() {
                words.push((buf, base + start));
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !buf.is_empty() {
                    words.push((std::mem::take(&mut buf), base + start));
                }
                blank_ok = false;
                k += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if k + 1 == n {
                    k += 1;
                    continue;
                }
                buf.push(ch);
                k += 1;
                ch = chars[k].1;
            }
            buf.push(ch);
            k += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if k + 1 == n {
                phase = Phase::Word;
                k += 1;
                continue;
            }
            buf.push(ch);
            k += 1;
            ch = chars[k].1;
        }
        buf.push(ch);
        k += 1;
    }
    words
}

/// Splits on runs of ASCII blanks, keeping offsets (empty edge words are
/// kept, as Go's `regexp.Split` keeps them).
fn split_list(rest: &str, base: usize, map: &LineMap, line: &str) -> Vec<Word> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !is_list_space(c) {
            continue;
        }
        ranges.push((start, i));
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = chars.peek() {
            if !is_list_space(d) {
                break;
            }
            end = j + d.len_utf8();
            chars.next();
        }
        start = end;
    }
    ranges.push((start, rest.len()));
    ranges
        .into_iter()
        .map(|(s, e)| Word {
            text: rest[s..e].to_string(),
            pos: map.pos_of(line, base + s),
        })
        .collect()
}

fn whitespace_list(rest: &str, base: usize, map: &LineMap, line: &str) -> Args {
    if rest.is_empty() {
        Args::None
    } else {
        Args::List(split_list(rest, base, map, line))
    }
}

fn not_strings(offset: usize) -> SplitError {
    SplitError {
        offset,
        message: "when using JSON array syntax, arrays must be comprised of strings only".into(),
        hint: Some("quote every element, e.g. [\"echo\", \"1\"]".into()),
    }
}

/// RUN, CMD, ENTRYPOINT, SHELL: exec form if JSON, else shell form.
fn maybe_json(rest: &str, base: usize) -> Result<Args, SplitError> {
    if rest.is_empty() {
        return Ok(Args::None);
    }
    match parse_array(rest) {
        JsonArray::Strings(v) => Ok(Args::Exec(v)),
        JsonArray::NotStrings => Err(not_strings(base)),
        JsonArray::NotJson => Ok(Args::Shell(rest.to_string())),
    }
}

/// The argument shape for `command` (lower-case keyword).
pub(crate) fn parse_args(
    command: &str,
    rest: &str,
    base: usize,
    map: &LineMap,
    line: &str,
    escape: char,
) -> Result<Args, SplitError> {
    match command {
        "add" | "copy" | "volume" => match parse_array(rest) {
            JsonArray::Strings(v) => Ok(Args::Exec(v)),
            JsonArray::NotStrings => Err(not_strings(base)),
            JsonArray::NotJson => Ok(whitespace_list(rest, base, map, line)),
        },
        "run" | "cmd" | "entrypoint" | "shell" => maybe_json(rest, base),
        "from" | "expose" => Ok(whitespace_list(rest, base, map, line)),
        "arg" => {
            let words = parse_words(rest, base, escape);
            if words.is_empty() {
                return Ok(Args::None);
            }
            Ok(Args::List(
                words
                    .into_iter()
                    .map(|(text, off)| Word {
                        text,
                        pos: map.pos_of(line, off),
                    })
                    .collect(),
            ))
        }
        "env" | "label" => name_values(command, rest, base, map, line, escape),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(if rest.is_empty() {
            Args::None
        } else {
            Args::Text(rest.to_string())
        }),
        "healthcheck" => {
            let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if sep == 0 {
                return Ok(Args::None);
            }
            let cmd_text = rest[sep..].trim_start();
            let cmd_base = base + rest.len() - cmd_text.len();
            Ok(Args::Healthcheck {
                kind: rest[..sep].to_string(),
                cmd: Box::new(maybe_json(cmd_text, cmd_base)?),
            })
        }
        // ONBUILD is handled by the caller: its argument is a whole instruction.
        _ => Ok(Args::Unknown(rest.to_string())),
    }
}

/// ENV and LABEL: `k=v k2=v2`, or the legacy `k v` (value = rest of line).
fn name_values(
    command: &str,
    rest: &str,
    base: usize,
    map: &LineMap,
    line: &str,
    escape: char,
) -> Result<Args, SplitError> {
    let words = parse_words(rest, base, escape);
    let Some((first, _)) = words.first() else {
        return Ok(Args::None);
    };
    let upper = command.to_ascii_uppercase();
    if !first.contains('=') {
        let key_end = rest.find(is_list_space);
        let Some(key_end) = key_end else {
            return Err(SplitError {
                offset: base,
                message: format!("{upper} must have two arguments"),
                hint: Some(format!("write {upper} {rest}=VALUE")),
            });
        };
        let after = &rest[key_end..];
        let value = after.trim_start_matches(is_list_space);
        return Ok(Args::Pairs(vec![KeyValue {
            key: rest[..key_end].to_string(),
            value: value.to_string(),
            legacy: true,
            pos: map.pos_of(line, base),
        }]));
    }
    let mut pairs = Vec::with_capacity(words.len());
    for (word, off) in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(SplitError {
                offset: off,
                message: format!(
                    "syntax error - can't find = in {word:?}. Must be of the form: name=value"
                ),
                hint: None,
            });
        };
        pairs.push(KeyValue {
            key: k.to_string(),
            value: v.to_string(),
            legacy: false,
            pos: map.pos_of(line, off),
        });
    }
    Ok(Args::Pairs(pairs))
}
