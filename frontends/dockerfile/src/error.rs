//! The frontend's errors: each at a Dockerfile position, with an
//! optional hint, rendered like the parser's (`FILE:LINE:COL: message`,
//! the line, a caret).

use kiln_parser::{ParseError, Pos};
use std::fmt;

/// What the frontend refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerError {
    pub pos: Pos,
    pub kind: LowerErrorKind,
    /// A second line of advice (`hint: ...`).
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LowerErrorKind {
    /// The Dockerfile does not parse, or an instruction is malformed.
    Parse(ParseError),
    /// FROM or `--from` named an image the image source could not give
    /// (the message names the reference).
    Image { reference: String, message: String },
    /// Stages that depend on each other in a circle.
    Cycle { stage: String },
    /// Anything else the frontend refuses; the message says what.
    Invalid(String),
}

impl LowerError {
    pub fn invalid(pos: Pos, message: impl Into<String>) -> LowerError {
        LowerError {
            pos,
            kind: LowerErrorKind::Invalid(message.into()),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> LowerError {
        self.hint = Some(hint.into());
        self
    }

    /// The message without position (what `Display` shows).
    pub fn message(&self) -> String {
        match &self.kind {
            LowerErrorKind::Parse(e) => e.message.clone(),
            LowerErrorKind::Image { message, .. } => message.clone(),
            LowerErrorKind::Cycle { stage } => {
                format!("circular dependency detected on stage: {stage}")
            }
            LowerErrorKind::Invalid(m) => m.clone(),
        }
    }

    /// As the parser renders its errors: position, message, the line and
    /// a caret, then the hint.
    pub fn render(&self, file: &str, source: &str) -> String {
        let mut e = ParseError::new(self.pos, self.message());
        e.hint = self.hint.clone().or_else(|| match &self.kind {
            LowerErrorKind::Parse(p) => p.hint.clone(),
            _ => None,
        });
        e.render(file, source)
    }
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message())
    }
}

impl std::error::Error for LowerError {}

impl From<ParseError> for LowerError {
    fn from(e: ParseError) -> LowerError {
        LowerError {
            pos: e.pos,
            hint: None,
            kind: LowerErrorKind::Parse(e),
        }
    }
}
