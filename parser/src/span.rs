//! Source positions. Lines and columns are 1-based; columns count characters
//! (not bytes), as editors show them.

use std::fmt;

/// One place in a Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn new(line: u32, col: u32) -> Self {
        Pos { line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// An inclusive range: `start` is the first character, `end` the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    pub fn new(start: Pos, end: Pos) -> Self {
        Span { start, end }
    }
}

/// Maps byte offsets in a *logical* line (physical lines joined by line
/// continuations) back to physical positions, so errors found late can still
/// point at the exact character.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineMap {
    /// (byte offset in the logical line, position of that byte in the file)
    segments: Vec<(usize, Pos)>,
}

impl LineMap {
    pub(crate) fn push(&mut self, offset: usize, pos: Pos) {
        self.segments.push((offset, pos));
    }

    /// The map of the part of `logical` that starts at byte `offset`.
    pub(crate) fn shifted(&self, logical: &str, offset: usize) -> LineMap {
        let mut out = LineMap::default();
        out.push(0, self.pos_of(logical, offset));
        for &(start, pos) in &self.segments {
            if start > offset {
                out.push(start - offset, pos);
            }
        }
        out
    }

    /// Position of byte `offset` of `logical`. Offsets past the end map to the
    /// character after the last one.
    pub fn pos_of(&self, logical: &str, offset: usize) -> Pos {
        let offset = offset.min(logical.len());
        let idx = self
            .segments
            .partition_point(|(start, _)| *start <= offset)
            .saturating_sub(1);
        match self.segments.get(idx) {
            Some(&(start, pos)) => {
                let chars = logical
                    .get(start..offset)
                    .map(|s| s.chars().count())
                    .unwrap_or(0);
                Pos::new(pos.line, pos.col + chars as u32)
            }
            None => Pos::new(1, 1),
        }
    }
}
