//! Prints a syntax tree back as Dockerfile text: one line per instruction
//! (continuations and comments dropped, flags re-escaped), heredoc bodies
//! after their instruction. Parsing the output gives the same tree.

use crate::ast::{Args, Dockerfile, Node};
use crate::json::{parse_array, JsonArray};

pub fn print(df: &Dockerfile) -> String {
    let mut out = String::new();
    for d in &df.directives {
        out.push_str(&format!("# {}={}\n", d.name, d.value));
    }
    for node in &df.instructions {
        let line = print_node(node, df.escape);
        out.push_str(&line);
        // A line ending in a lone escape character would continue onto the
        // next one; a vertical tab after it is trimmed as argument
        // whitespace but stops the continuation, as it did in the source.
        let t = line.trim_end_matches([' ', '\t']);
        if t.ends_with(df.escape) && !t[..t.len() - df.escape.len_utf8()].ends_with(df.escape) {
            out.push('\x0b');
        }
        out.push('\n');
        for doc in &node.heredocs {
            out.push_str(&doc.content);
            if !doc.content.is_empty() && !doc.content.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&doc.name);
            out.push('\n');
        }
    }
    // A leading U+FEFF would be read as a byte-order mark and dropped.
    if out.starts_with('\u{feff}') {
        out.insert(0, '\u{feff}');
    }
    out
}

/// One instruction on one line (without heredoc bodies).
pub fn print_node(node: &Node, escape: char) -> String {
    let mut s = node.keyword.clone();
    for f in &node.flags {
        s.push(' ');
        s.push_str(&escape_flag(&f.text, escape));
    }
    print_args(&node.command(), &node.args, escape, &mut s, true);
    s
}

/// Escapes what flag splitting would otherwise interpret.
fn escape_flag(text: &str, escape: char) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_whitespace() || c == '"' || c == '\'' || c == escape {
            out.push(escape);
        }
        out.push(c);
    }
    out
}

/// Appends one argument. Right after the keyword and flags (`first`), text
/// that would be read as another flag gets a `--` (end of flags) in front.
fn push_raw(s: &mut String, text: &str, first: bool) {
    if text.is_empty() {
        return;
    }
    s.push(' ');
    if first && text.starts_with("--") {
        s.push_str("-- ");
    }
    s.push_str(text);
}

fn json_array(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        for c in item.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

fn print_args(command: &str, args: &Args, escape: char, s: &mut String, first: bool) {
    match args {
        Args::None => {}
        Args::Shell(t) | Args::Text(t) | Args::Unknown(t) => push_raw(s, t, first),
        Args::Exec(v) => {
            s.push(' ');
            s.push_str(&json_array(v));
        }
        Args::List(words) => {
            let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
            let mut joined = texts.join(" ");
            // Words split at a blank JSON does not allow (\v) must not turn
            // into a JSON array when re-joined with spaces.
            if matches!(command, "add" | "copy" | "volume")
                && parse_array(&joined) != JsonArray::NotJson
            {
                joined = texts.join("\x0b");
            }
            push_raw(s, &joined, first);
        }
        Args::Pairs(pairs) => {
            for (i, p) in pairs.iter().enumerate() {
                if p.legacy {
                    push_raw(s, &p.key, first && i == 0);
                    s.push(' ');
                    s.push_str(&p.value);
                } else {
                    push_raw(s, &format!("{}={}", p.key, p.value), first && i == 0);
                }
            }
        }
        Args::Healthcheck { kind, cmd } => {
            push_raw(s, kind, first);
            print_args("cmd", cmd, escape, s, false);
        }
        Args::OnBuild(child) => {
            s.push(' ');
            s.push_str(&print_node(child, escape));
        }
    }
}
