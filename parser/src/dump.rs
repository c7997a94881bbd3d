//! BuildKit's AST dump (`(keyword ["--flag"] "arg" ...)`), byte for byte as
//! its parser tests' `result` files.

use crate::ast::{Args, Dockerfile, Node};
use std::fmt::Write;

/// One line per instruction, each ending in `\n`.
pub fn dump(df: &Dockerfile) -> String {
    let mut out = String::new();
    for node in &df.instructions {
        out.push_str(&dump_node(node));
        out.push('\n');
    }
    out
}

/// `(keyword [flags] args...)` for one instruction.
pub fn dump_node(node: &Node) -> String {
    let mut s = String::from("(");
    s.push_str(&node.keyword.to_lowercase());
    if !node.flags.is_empty() {
        s.push_str(" [");
        for (i, f) in node.flags.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&go_quote(&f.text));
        }
        s.push(']');
    }
    dump_args(&node.args, &mut s);
    s.push(')');
    s
}

fn dump_args(args: &Args, s: &mut String) {
    let mut arg = |v: &str| {
        s.push(' ');
        s.push_str(&go_quote(v));
    };
    match args {
        Args::None => {}
        Args::Shell(t) | Args::Text(t) => arg(t),
        Args::Unknown(_) => arg(""),
        Args::Exec(v) => v.iter().for_each(|x| arg(x)),
        Args::List(words) => words.iter().for_each(|w| arg(&w.text)),
        Args::Pairs(pairs) => {
            for p in pairs {
                arg(&p.key);
                arg(&p.value);
                arg(if p.legacy { "" } else { "=" });
            }
        }
        Args::Healthcheck { kind, cmd } => {
            arg(kind);
            dump_args(cmd, s);
        }
        Args::OnBuild(child) => {
            s.push(' ');
            s.push_str(&dump_node(child));
        }
    }
}

/// Go's `strconv.Quote`: printable characters as they are, the rest escaped.
pub fn go_quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if is_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint`: letters, marks, numbers,
/// punctuation, symbols and the ASCII space. Unassigned code points are
/// treated as printable (no Unicode tables are carried for them).
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format = matches!(u, 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0xE0001 | 0xE0020..=0xE007F);
    let private = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let nonchar = (u & 0xFFFE) == 0xFFFE || (0xFDD0..=0xFDEF).contains(&u);
    !(format || private || nonchar)
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("\u{0}\u{7f}\u{85}\u{a0}"),
            r#""\x00\x7f\u0085\u00a0""#
        );
        assert_eq!(go_quote("♥ 한국어"), "\"♥ 한국어\"");
        assert_eq!(go_quote("\u{feff}\u{10ffff}"), r#""\ufeff\U0010ffff""#);
    }
}
