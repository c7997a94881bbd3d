//! Parse errors that carry a position, and their rendering as
//! `FILE:LINE:COL: message` followed by the offending line and a caret.

use crate::span::Pos;
use std::fmt;

/// A syntax or validation error at one place in a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
    /// An optional second line of advice, printed as `hint: ...`.
    pub hint: Option<String>,
}

impl ParseError {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        ParseError {
            pos,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders the error the way a user wants to read it:
    ///
    /// ```text
    /// Dockerfile:3:6: unknown flag: --form
    ///     3 | COPY --form=build /a /b
    ///       |      ^
    /// hint: did you mean --from?
    /// ```
    ///
    /// Untrusted text in it (the file name, the line, the message) is
    /// printed with its control characters escaped.
    pub fn render(&self, file: &str, source: &str) -> String {
        self.render_lines(file, source, self.pos.line)
    }

    /// As [`ParseError::render`], showing the lines up to `last_line` too
    /// (an instruction continued over several lines, as BuildKit shows
    /// it), at most `SHOWN_LINES` (6) of them.
    pub fn render_lines(&self, file: &str, source: &str, last_line: u32) -> String {
        let mut out = format!(
            "{}:{}:{}: {}\n",
            crate::terminal_safe_line(file),
            self.pos.line,
            self.pos.col,
            crate::terminal_safe(&self.message)
        );
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        let first = self.pos.line.max(1);
        let last = last_line.clamp(first, first + SHOWN_LINES - 1);
        let width = last.to_string().len();
        for (i, line) in source
            .split('\n')
            .enumerate()
            .skip(first as usize - 1)
            .take((last - first + 1) as usize)
        {
            let line = line.trim_end_matches(['\r', '\n']);
            let (shown, caret) = excerpt(line, self.pos.col.saturating_sub(1) as usize);
            let num = i + 1;
            out.push_str(&format!(" {num:>width$} | {shown}\n"));
            if num as u32 == first {
                let pad = " ".repeat(width);
                out.push_str(&format!(" {pad} | {caret}^\n"));
            }
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("hint: {}\n", crate::terminal_safe(hint)));
        }
        out
    }
}

/// How many lines of a multi-line instruction an error shows.
const SHOWN_LINES: u32 = 6;

/// The line as printed under an error: control characters escaped, and a
/// window of at most [`EXCERPT`] characters around column `col` (0-based)
/// when the line is longer; plus the whitespace that puts a caret under
/// that column (tabs kept, so it lines up).
fn excerpt(line: &str, col: usize) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let col = col.min(chars.len());
    let (start, end) = if chars.len() <= EXCERPT {
        (0, chars.len())
    } else {
        let start = col.saturating_sub(EXCERPT / 4);
        (start, (start + EXCERPT).min(chars.len()))
    };
    let mut shown = String::new();
    let mut caret = String::new();
    if start > 0 {
        shown.push('…');
        caret.push(' ');
    }
    for (i, c) in chars[start..end].iter().enumerate() {
        let text = crate::safe_text::shown(*c);
        if start + i < col {
            let filler = if *c == '\t' { '\t' } else { ' ' };
            caret.extend(std::iter::repeat_n(filler, text.chars().count()));
        }
        shown.push_str(&text);
    }
    if end < chars.len() {
        shown.push('…');
    }
    (shown, caret)
}

/// The most characters of a source line an error shows.
const EXCERPT: usize = 120;

/// A non-fatal finding, e.g. an empty line inside a continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_around_the_column_and_controls_escaped() {
        let e = ParseError::new(Pos { line: 1, col: 3 }, "bad \x1b[2J");
        assert_eq!(
            e.render("Dockerfile", "A\x1bB C\n"),
            "Dockerfile:1:3: bad \\x1b[2J\n 1 | A\\x1bB C\n   |      ^\n"
        );
        let line = format!("ENV X={}", "y".repeat(1000));
        let e = ParseError::new(Pos { line: 1, col: 500 }, "here");
        let out = e.render("Dockerfile", &line);
        let shown = out.lines().nth(1).unwrap();
        assert!(shown.chars().count() < 140, "{shown}");
        let caret = out.lines().nth(2).unwrap();
        assert_eq!(caret.find('^').unwrap() - 5, 1 + EXCERPT / 4, "{out}");
    }
}
