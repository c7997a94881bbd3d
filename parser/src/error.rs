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
    pub fn render(&self, file: &str, source: &str) -> String {
        let mut out = format!(
            "{}:{}:{}: {}\n",
            file, self.pos.line, self.pos.col, self.message
        );
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        if let Some(line) = source
            .split('\n')
            .nth(self.pos.line.saturating_sub(1) as usize)
        {
            let line = line.trim_end_matches(['\r', '\n']);
            let num = self.pos.line.to_string();
            let pad = " ".repeat(num.len());
            out.push_str(&format!(" {num} | {line}\n"));
            // The caret goes under the character, with tabs kept so it lines up.
            let prefix: String = line
                .chars()
                .take(self.pos.col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(" {pad} | {prefix}^\n"));
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("hint: {hint}\n"));
        }
        out
    }
}

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
