//! Parser directives: `# syntax=...`, `# escape=...`, `# check=...`, only in
//! the leading block of comment lines.

use nom::{
    bytes::complete::{take_while, take_while1},
    character::complete::{char, satisfy},
    combinator::recognize,
    IResult, Parser,
};

/// The directives kiln (like BuildKit) understands.
pub const KNOWN: [&str; 3] = ["syntax", "escape", "check"];

fn blank(i: &str) -> IResult<&str, &str> {
    take_while(|c| matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')).parse(i)
}

fn key(i: &str) -> IResult<&str, &str> {
    recognize((
        satisfy(|c| c.is_ascii_alphabetic()),
        take_while(|c: char| c.is_ascii_alphanumeric()),
    ))
    .parse(i)
}

/// `line` with leading whitespace already removed. Returns the lower-cased
/// key and the value when the line has a directive's shape (`#key=value`,
/// blanks allowed around `=`), whether or not the key is known.
pub(crate) fn parse_line(line: &str) -> Option<(String, String)> {
    let parsed: IResult<&str, (&str, &str)> = (
        char('#'),
        take_while(char::is_whitespace),
        key,
        blank,
        char('='),
        blank,
        take_while1(|_| true),
    )
        .map(|(_, _, k, _, _, _, v)| (k, v))
        .parse(line);
    let (_, (k, v)) = parsed.ok()?;
    let v = v.trim_end_matches([' ', '\t', '\n', '\x0c', '\r']);
    if v.is_empty() {
        return None;
    }
    Some((k.to_ascii_lowercase(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn shapes() {
        let p = |s| parse_line(s).map(|(k, v)| format!("{k}={v}"));
        assert_eq!(p("# escape=`").as_deref(), Some("escape=`"));
        assert_eq!(
            p("#Syntax = docker/dockerfile:1 ").as_deref(),
            Some("syntax=docker/dockerfile:1")
        );
        assert_eq!(p("# check=skip=all").as_deref(), Some("check=skip=all"));
        assert_eq!(p("# just a comment"), None);
        assert_eq!(p("# escape="), None);
        assert_eq!(p("escape=`"), None);
    }
}
