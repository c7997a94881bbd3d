//! kiln's Dockerfile front end, up to (not including) the build graph.
//!
//! Owns: the syntax tree with exact positions ([`parse`], [`ast`]), the
//! BuildKit-compatible dump ([`dump`]), a printer ([`mod@print`]), the
//! shell-word lexer used for `$var` expansion ([`shell`]), typed,
//! validated instructions ([`instructions`]) and `RUN --mount` values
//! ([`mount`]), the value syntaxes Dockerfiles share with docker's command
//! line ([`units`]: sizes, signals), and terminal-safe display of
//! untrusted text.
//!
//! Must not depend on any other kiln crate, on I/O beyond what callers hand
//! in, or on anything platform-specific: it is pure text → structure.

pub mod ast;
mod directives;
pub mod dump;
mod error;
pub mod instructions;
mod json;
pub mod mount;
mod parser;
pub mod print;
mod safe_text;
pub mod shell;
mod span;
mod split;
pub mod suggest;
pub mod units;

pub use ast::{Args, Directive, Dockerfile, Flag, Heredoc, KeyValue, Node, Word};
pub use error::{ParseError, Warning};
pub use parser::{parse, parse_bytes};
pub use safe_text::{terminal_safe, terminal_safe_line};
pub use span::{LineMap, Pos, Span};

/// Entry point for fuzzers: parse, validate, dump and re-print arbitrary
/// bytes; must never panic.
pub fn fuzz_one(data: &[u8]) {
    if let Ok(df) = parse_bytes(data) {
        let _ = dump::dump(&df);
        let printed = print::print(&df);
        let _ = instructions::parse_instructions(&df);
        let _ = parse(&printed);
        let lexer = shell::Lexer::new(df.escape);
        for node in &df.instructions {
            let _ = lexer.process_words(&node.original, &shell::NoEnv);
        }
    }
}
