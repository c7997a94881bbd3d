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
        out.push_str(&print_node(node, df.escape));
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
    out
}

/// One instruction on one line (without heredoc bodies).
pub fn print_node(node: &Node, escape: char) -> String {
    let mut s = node.keyword.clone();
    for f in &node.flags {
        s.push(' ');
        s.push_str(&escape_flag(&f.text, escape));
    }
    print_args(&node.command(), &node.args, escape, &mut s);
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

/// Text that would be read as flags gets a `--` in front.
fn push_raw(s: &mut String, text: &str) {
    s.push(' ');
    if text.starts_with("--") {
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

fn print_args(command: &str, args: &Args, escape: char, s: &mut String) {
    match args {
        Args::None => {}
        Args::Shell(t) | Args::Text(t) | Args::Unknown(t) => push_raw(s, t),
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
            push_raw(s, &joined);
        }
        Args::Pairs(pairs) => {
            for p in pairs {
                if p.legacy {
                    push_raw(s, &p.key);
                    s.push(' ');
                    s.push_str(&p.value);
                } else {
                    push_raw(s, &format!("{}={}", p.key, p.value));
                }
            }
        }
        Args::Healthcheck { kind, cmd } => {
            push_raw(s, kind);
            print_args("cmd", cmd, escape, s);
        }
        Args::OnBuild(child) => {
            s.push(' ');
            s.push_str(&print_node(child, escape));
        }
    }
}
