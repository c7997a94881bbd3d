//! The JSON array form (`CMD ["a", "b"]`), parsed with nom.
//!
//! Dockerfile semantics: text that is a JSON array of strings is exec form;
//! text that is not JSON at all is shell form; valid JSON that is an array of
//! anything else is an error. So this grammar recognises every JSON value,
//! not just string arrays.

use nom::{
    branch::alt,
    bytes::complete::{tag, take_while, take_while1, take_while_m_n},
    character::complete::{char, digit0, digit1, one_of},
    combinator::{opt, recognize, value},
    IResult, Parser,
};

/// Nesting deeper than this is treated as "not JSON" (shell form) rather
/// than risking the stack on hostile input.
const MAX_DEPTH: usize = 64;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JsonArray {
    /// Not a JSON array at all: the caller falls back to shell form.
    NotJson,
    /// Valid JSON, but some element is not a string.
    NotStrings,
    Strings(Vec<String>),
}

/// Classifies `text` (leading Unicode whitespace allowed).
pub(crate) fn parse_array(text: &str) -> JsonArray {
    let text = text.trim_start();
    if !text.starts_with('[') {
        return JsonArray::NotJson;
    }
    let parsed = array(text, 0).and_then(|(rest, items)| ws(rest).map(|(rest, _)| (rest, items)));
    match parsed {
        Ok(("", items)) => {
            let mut strings = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Json::Str(s) => strings.push(s),
                    Json::Other => return JsonArray::NotStrings,
                }
            }
            JsonArray::Strings(strings)
        }
        _ => JsonArray::NotJson,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Json {
    Str(String),
    Other,
}

fn ws(i: &str) -> IResult<&str, &str> {
    take_while(|c| matches!(c, ' ' | '\t' | '\n' | '\r')).parse(i)
}

fn too_deep(i: &str) -> nom::Err<nom::error::Error<&str>> {
    nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::TooLarge))
}

fn json_value(i: &str, depth: usize) -> IResult<&str, Json> {
    if depth > MAX_DEPTH {
        return Err(too_deep(i));
    }
    let (i, _) = ws(i)?;
    match i.chars().next() {
        Some('"') => string.map(Json::Str).parse(i),
        Some('[') => array(i, depth + 1).map(|(i, _)| (i, Json::Other)),
        Some('{') => object(i, depth + 1),
        _ => alt((value(Json::Other, literal), value(Json::Other, number))).parse(i),
    }
}

fn literal(i: &str) -> IResult<&str, &str> {
    alt((tag("true"), tag("false"), tag("null"))).parse(i)
}

fn number(i: &str) -> IResult<&str, &str> {
    recognize((
        opt(char('-')),
        alt((tag("0"), recognize((one_of("123456789"), digit0)))),
        opt((char('.'), digit1)),
        opt((one_of("eE"), opt(one_of("+-")), digit1)),
    ))
    .parse(i)
}

/// `[ value, ... ]`, returning the elements.
fn array(i: &str, depth: usize) -> IResult<&str, Vec<Json>> {
    let (mut i, _) = char('[').parse(i)?;
    let mut items = Vec::new();
    let (rest, _) = ws(i)?;
    if let Ok((rest, _)) = char::<_, nom::error::Error<&str>>(']').parse(rest) {
        return Ok((rest, items));
    }
    loop {
        let (rest, item) = json_value(i, depth)?;
        items.push(item);
        let (rest, _) = ws(rest)?;
        let (rest, sep) = one_of(",]").parse(rest)?;
        i = rest;
        if sep == ']' {
            return Ok((i, items));
        }
    }
}

/// `{ "key": value, ... }`; only validated.
fn object(i: &str, depth: usize) -> IResult<&str, Json> {
    let (mut i, _) = char('{').parse(i)?;
    let (rest, _) = ws(i)?;
    if let Ok((rest, _)) = char::<_, nom::error::Error<&str>>('}').parse(rest) {
        return Ok((rest, Json::Other));
    }
    loop {
        let (rest, _) = ws(i)?;
        let (rest, _) = string(rest)?;
        let (rest, _) = (ws, char(':')).parse(rest)?;
        let (rest, _) = json_value(rest, depth)?;
        let (rest, _) = ws(rest)?;
        let (rest, sep) = one_of(",}").parse(rest)?;
        i = rest;
        if sep == '}' {
            return Ok((i, Json::Other));
        }
    }
}

/// A JSON string. Lone surrogate escapes become U+FFFD, as Go's decoder
/// (and so BuildKit) does.
fn string(i: &str) -> IResult<&str, String> {
    let (mut i, _) = char('"').parse(i)?;
    let mut out = String::new();
    loop {
        if let Ok((rest, chunk)) = take_while1::<_, _, nom::error::Error<&str>>(|c: char| {
            c != '"' && c != '\\' && c >= ' '
        })
        .parse(i)
        {
            out.push_str(chunk);
            i = rest;
            continue;
        }
        let (rest, c) = one_of("\"\\").parse(i)?;
        if c == '"' {
            return Ok((rest, out));
        }
        let (rest, esc) = one_of("\"\\/bfnrtu").parse(rest)?;
        i = rest;
        match esc {
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let (rest, unit) = hex4(i)?;
                i = rest;
                if (0xD800..0xDC00).contains(&unit) {
                    // A high surrogate must be followed by `\u` + a low one.
                    if let Ok((rest, low)) = (tag("\\u"), hex4).map(|(_, low)| low).parse(i) {
                        if (0xDC00..0xE000).contains(&low) {
                            let cp = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                            out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                            i = rest;
                            continue;
                        }
                    }
                    out.push('\u{fffd}');
                } else {
                    out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                }
            }
            other => out.push(other),
        }
    }
}

fn hex4(i: &str) -> IResult<&str, u32> {
    take_while_m_n(4, 4, |c: char| c.is_ascii_hexdigit())
        .map(|h: &str| u32::from_str_radix(h, 16).unwrap_or(0xFFFD))
        .parse(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> JsonArray {
        JsonArray::Strings(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn classifies() {
        assert_eq!(parse_array(r#"["a", "b"]"#), strings(&["a", "b"]));
        assert_eq!(parse_array("[]"), strings(&[]));
        assert_eq!(parse_array(" [ \"a\" ,\t\"b\"\t] "), strings(&["a", "b"]));
        assert_eq!(parse_array(r#"["a", 1]"#), JsonArray::NotStrings);
        assert_eq!(
            parse_array(r#"[ "echo", [ "nested json" ] ]"#),
            JsonArray::NotStrings
        );
        assert_eq!(
            parse_array(r#"[{"a": [1, 2.5e3, true, null]}]"#),
            JsonArray::NotStrings
        );
        assert_eq!(parse_array(r#"["a", "b""#), JsonArray::NotJson);
        assert_eq!(parse_array(r#"['a']"#), JsonArray::NotJson);
        assert_eq!(parse_array(r#"["a"] x"#), JsonArray::NotJson);
        assert_eq!(parse_array("echo hi"), JsonArray::NotJson);
        assert_eq!(parse_array("[01]"), JsonArray::NotJson);
        assert_eq!(parse_array("[\"a\u{1}\"]"), JsonArray::NotJson);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            parse_array(r#"["\" \\ \/ \b \f \n \r \t \u0000 \u2665 \ud83d\ude00 \ud800"]"#),
            strings(&["\" \\ / \u{8} \u{c} \n \r \t \u{0} ♥ 😀 \u{fffd}"])
        );
    }

    #[test]
    fn deep_nesting_is_not_json() {
        let deep = "[".repeat(10_000);
        assert_eq!(parse_array(&deep), JsonArray::NotJson);
        let ok = format!("[{}1{}]", "[".repeat(20), "]".repeat(20));
        assert_eq!(parse_array(&ok), JsonArray::NotStrings);
    }
}
