//! Untrusted text made safe for a terminal. A Dockerfile (and an archive
//! entry name, a RUN step's output) can hold escape sequences that retitle
//! or rewrite the user's terminal, or bidi controls that make an error
//! read differently from what it says. Before such text is printed, every
//! control character is shown as an escape instead (`\x1b`, `\u{202e}`).

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal raw. Tab is kept; newline is the
/// caller's business (see [`terminal_safe_line`]).
fn is_unsafe(c: char, keep_newline: bool) -> bool {
    match c {
        '\t' => false,
        '\n' => !keep_newline,
        // C0, DEL and C1 (U+009B is CSI on some terminals).
        '\0'..='\x1f' | '\x7f'..='\u{9f}' => true,
        // Bidi embeddings, overrides and isolates ("Trojan Source").
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

fn escape(c: char, out: &mut String) {
    if (c as u32) < 0x100 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// `s` with every control character but tab and newline escaped.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    sanitize(s, true)
}

/// `s` as one line: newlines escaped too.
pub fn terminal_safe_line(s: &str) -> Cow<'_, str> {
    sanitize(s, false)
}

fn sanitize(s: &str, keep_newline: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c, keep_newline)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c, keep_newline) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The printed form of one character (its escape, or itself).
pub(crate) fn shown(c: char) -> Cow<'static, str> {
    if is_unsafe(c, false) {
        let mut out = String::new();
        escape(c, &mut out);
        Cow::Owned(out)
    } else {
        Cow::Owned(c.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_text_is_kept() {
        assert_eq!(terminal_safe("plain\ttext\n"), "plain\ttext\n");
        assert!(matches!(terminal_safe("plain"), Cow::Borrowed(_)));
        assert_eq!(terminal_safe("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
        assert_eq!(terminal_safe("\u{9b}2J"), "\\x9b2J");
        assert_eq!(terminal_safe("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(terminal_safe_line("a\nb\r"), "a\\x0ab\\x0d");
        assert_eq!(terminal_safe("é ü 日本"), "é ü 日本");
    }
}
