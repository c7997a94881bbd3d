//! The word processor Dockerfile instructions use for `$var` expansion,
//! quotes and escapes. It is not a shell: no command substitution, no
//! arithmetic, no globbing — exactly the forms BuildKit accepts:
//!
//! `$v` `${v}` `${v:-w}` `${v-w}` `${v:+w}` `${v+w}` `${v:?m}` `${v?m}`
//! `${v#p}` `${v##p}` `${v%p}` `${v%%p}` `${v/p/r}` `${v//p/r}`.
//!
//! Anything else in `${...}` (e.g. `${v:=w}`) is an error rather than being
//! passed through silently.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// Variables visible to an expansion.
pub trait Env {
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// An ordered list of `(name, value)`; the last definition of a name wins.
impl Env for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// No variables at all.
pub struct NoEnv;

impl Env for NoEnv {
    fn lookup(&self, _: &str) -> Option<&str> {
        None
    }
}

/// Why a word could not be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ShellError {
    pub message: String,
    /// Character offset in the word where the problem was found.
    pub offset: usize,
}

impl fmt::Display for ShellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of expanding one word, with the variable names it referred to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    pub value: String,
    /// Names that were looked up and found.
    pub matched: BTreeSet<String>,
    /// Names that were looked up and not set.
    pub unmatched: BTreeSet<String>,
}

/// Options of the word processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// `\` by default; `` ` `` with `# escape=``.
    pub escape: char,
    /// Keep quote characters in the output (they still group words).
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Expands `word` into one string: quotes removed, escapes resolved,
    /// variables substituted, no splitting.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ShellError> {
        self.expand(word, env).map(|e| e.value)
    }

    /// Like [`Lexer::process_word`], also reporting which variables were used.
    pub fn expand(&self, word: &str, env: &dyn Env) -> Result<Expansion, ShellError> {
        let mut w = WordProcessor::new(self, word, env);
        let (value, _) = w.process_stop_on(None, self.raw_escapes)?;
        Ok(Expansion {
            value,
            matched: w.matched,
            unmatched: w.unmatched,
        })
    }

    /// Expands `word` and splits the result on unquoted whitespace. Quoted
    /// text, including quoted expansions, is never split.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        let mut w = WordProcessor::new(self, word, env);
        w.process_stop_on(None, self.raw_escapes)
            .map(|(_, words)| words)
    }
}

/// Accumulates split words: whitespace outside quotes ends a word.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

struct WordProcessor<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    chars: Vec<char>,
    pos: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    /// How many `${...}` we are inside (bounded: nesting recurses).
    depth: usize,
}

/// The deepest `${...}` nesting accepted. Real Dockerfiles nest a few
/// levels; each level is a stack frame, and an untrusted Dockerfile must
/// not be able to overflow the stack.
pub const MAX_NESTING: usize = 100;

impl<'a> WordProcessor<'a> {
    fn new(lexer: &'a Lexer, word: &str, env: &'a dyn Env) -> Self {
        WordProcessor {
            lexer,
            env,
            chars: word.chars().collect(),
            pos: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn error(&self, message: impl Into<String>) -> ShellError {
        ShellError {
            message: message.into(),
            offset: self.pos,
        }
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// Processes until `stop` (consumed) or the end of input. Returns the
    /// joined result and the split words.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '<' => {
                    let value = self.process_possible_heredoc();
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '\'' if !self.lexer.skip_process_quotes => {
                    let value = self.process_single_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '"' if !self.lexer.skip_process_quotes => {
                    let value = self.process_double_quote(raw_escapes)?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                _ => {
                    self.next();
                    if c == self.lexer.escape {
                        if raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        // A lone escape at the end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(self.error(format!(
                "unexpected end of statement while looking for matching {stop}"
            )));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, ShellError> {
        let start = self.pos;
        let mut out = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(ShellError {
                        message:
                            "unexpected end of statement while looking for matching single-quote"
                                .into(),
                        offset: start,
                    })
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self, raw_escapes: bool) -> Result<String, ShellError> {
        let start = self.pos;
        let mut out = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(ShellError {
                        message:
                            "unexpected end of statement while looking for matching double-quote"
                                .into(),
                        offset: start,
                    })
                }
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    out.push_str(&value);
                }
                Some(_) => {
                    let mut c = self.next().unwrap_or_default();
                    if c == self.lexer.escape {
                        if raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            // Only `"`, `$` and the escape itself are escapable
                            // inside double quotes; other escapes stay as written.
                            Some(n) if n == '"' || n == '$' || n == self.lexer.escape => {
                                c = n;
                                self.next();
                            }
                            None => continue,
                            _ => {
                                if raw_escapes {
                                    continue;
                                }
                            }
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// `<<` and the blanks after it stay together in one word, so that
    /// `<< EOF`-style heredoc markers can be recognised.
    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_numeric() {
                // Positional parameter: all digits.
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && is_special_param(c) {
                self.next();
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.next();
        }
        name
    }

    fn process_dollar(&mut self) -> Result<String, ShellError> {
        if self.depth >= MAX_NESTING {
            return Err(self.error(format!(
                "variable expansion is nested deeper than {MAX_NESTING} levels"
            )));
        }
        self.depth += 1;
        let result = self.process_dollar_inner();
        self.depth -= 1;
        result
    }

    fn process_dollar_inner(&mut self) -> Result<String, ShellError> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(self.error("syntax error: missing '}'")),
            Some('{' | '}' | ':') => return Err(self.error("syntax error: bad substitution")),
            _ => {}
        }
        let name = self.process_name();
        let Some(op) = self.next() else {
            return Err(self.error("syntax error: missing '}'"));
        };
        match op {
            '}' => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => self.modifier(&name, op),
            '/' => self.substitution(&name),
            _ => Err(self.error(format!("unsupported modifier ({op}) in substitution"))),
        }
    }

    /// `${name<op>word}` for `-`, `+`, `?` (each also after `:`, which
    /// makes an empty value count as unset), `#`/`##` and `%`/`%%`.
    fn modifier(&mut self, name: &str, first: char) -> Result<String, ShellError> {
        let mut op = first;
        let mut op_text = op.to_string();
        let null_is_unset = op == ':';
        if null_is_unset {
            let Some(next) = self.next() else {
                return Err(self.error("syntax error: missing '}'"));
            };
            op = next;
            op_text.push(op);
        }
        let pattern_op = op == '#' || op == '%';
        if null_is_unset && pattern_op {
            return Err(self.error(format!("unsupported modifier ({op_text}) in substitution")));
        }
        let word = match self.process_stop_on(Some('}'), pattern_op) {
            Ok((word, _)) => word,
            Err(_) if self.peek().is_none() => return Err(self.error("syntax error: missing '}'")),
            Err(e) => return Err(e),
        };
        let value = self.lookup(name);
        if self.lexer.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{op_text}{word}}}"));
        }
        let empty = value
            .as_deref()
            .is_none_or(|v| null_is_unset && v.is_empty());
        match op {
            '-' => Ok(if empty {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty { String::new() } else { word }),
            '?' if empty => {
                let message = match (word.is_empty(), value.is_none()) {
                    (false, _) => word.as_str(),
                    (true, true) => "is not allowed to be unset",
                    (true, false) => "is not allowed to be empty",
                };
                Err(self.error(format!("{name}: {message}")))
            }
            '?' => Ok(value.unwrap_or_default()),
            '#' | '%' => {
                let (greedy, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let pattern = Pattern::parse(pattern).map_err(|e| {
                    self.error(format!("invalid pattern ({pattern}) in substitution: {e}"))
                })?;
                let value = value.unwrap_or_default();
                Ok(if op == '#' {
                    pattern.trim_prefix(&value, greedy)
                } else {
                    pattern.trim_suffix(&value, greedy)
                })
            }
            _ => Err(self.error(format!("unsupported modifier ({op_text}) in substitution"))),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn substitution(&mut self, name: &str) -> Result<String, ShellError> {
        let replace_all = self.peek() == Some('/');
        if replace_all {
            self.next();
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((p, _)) => p,
            Err(_) if self.peek().is_none() => {
                return Err(self.error("syntax error: missing '/' in ${}"))
            }
            Err(e) => return Err(e),
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((r, _)) => r,
            Err(_) if self.peek().is_none() => return Err(self.error("syntax error: missing '}'")),
            Err(e) => return Err(e),
        };
        let Some(value) = self.lookup(name) else {
            if self.lexer.skip_unset_env {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let compiled = Pattern::parse(&pattern)
            .map_err(|e| self.error(format!("invalid pattern ({pattern}) in substitution: {e}")))?;
        Ok(compiled.replace(&value, &replacement, replace_all))
    }
}

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// A shell pattern for `#`, `%` and `/`: `*` any run, `?` any one
/// character, `\x` the character x (only `\*`, `\?`, `\\`, `\}` and `\/`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum PatToken {
    Lit(char),
    One,
    Star,
}

struct Pattern(Vec<PatToken>);

impl Pattern {
    fn parse(pattern: &str) -> Result<Pattern, String> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => tokens.push(PatToken::Star),
                '?' => tokens.push(PatToken::One),
                '\\' => match chars.next() {
                    Some(e @ ('*' | '?' | '\\' | '}' | '/')) => tokens.push(PatToken::Lit(e)),
                    Some(e) => return Err(format!("invalid escape '\\{e}'")),
                    None => return Err("trailing escape".to_string()),
                },
                c => tokens.push(PatToken::Lit(c)),
            }
        }
        Ok(Pattern(tokens))
    }

    /// Whether the whole of `s` matches.
    fn matches(&self, s: &[char]) -> bool {
        // Classic two-pointer glob match with backtracking to the last star.
        let (p, mut pi, mut si) = (&self.0, 0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            match p.get(pi) {
                Some(PatToken::Lit(c)) if *c == s[si] => {
                    pi += 1;
                    si += 1;
                }
                Some(PatToken::One) => {
                    pi += 1;
                    si += 1;
                }
                Some(PatToken::Star) => {
                    star = Some((pi, si));
                    pi += 1;
                }
                _ => match star {
                    Some((sp, ss)) => {
                        pi = sp + 1;
                        si = ss + 1;
                        star = Some((sp, ss + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|t| *t == PatToken::Star)
    }

    fn trim_prefix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut lens: Box<dyn Iterator<Item = usize>> = if longest {
            Box::new((0..=chars.len()).rev())
        } else {
            Box::new(0..=chars.len())
        };
        match lens.find(|&n| self.matches(&chars[..n])) {
            Some(n) => chars[n..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let len = chars.len();
        let mut lens: Box<dyn Iterator<Item = usize>> = if longest {
            Box::new((0..=len).rev())
        } else {
            Box::new(0..=len)
        };
        match lens.find(|&n| self.matches(&chars[len - n..])) {
            Some(n) => chars[..len - n].iter().collect(),
            None => value.to_string(),
        }
    }

    /// Replaces the first (or every) leftmost-longest match. An empty
    /// pattern matches nothing, as in bash.
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        if self.0.is_empty() {
            return value.to_string();
        }
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i < chars.len() {
            if !replaced || all {
                if let Some(end) = (i + 1..=chars.len())
                    .rev()
                    .find(|&e| self.matches(&chars[i..e]))
                {
                    out.push_str(replacement);
                    i = end;
                    replaced = true;
                    continue;
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("FILE", "archive.tar.gz"),
            ("E", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn x(word: &str) -> Result<String, ShellError> {
        Lexer::new('\\').process_word(word, &env())
    }

    #[test]
    fn pattern_forms() {
        assert_eq!(x("${FILE#*.}").unwrap(), "tar.gz");
        assert_eq!(x("${FILE##*.}").unwrap(), "gz");
        assert_eq!(x("${FILE%.*}").unwrap(), "archive.tar");
        assert_eq!(x("${FILE%%.*}").unwrap(), "archive");
        assert_eq!(x("${FILE/a/A}").unwrap(), "Archive.tar.gz");
        assert_eq!(
            x("${FILE//a/A}").unwrap(),
            "ArchivE.tAr.gz".replace('E', "e")
        );
        assert_eq!(x("${PATH//:/ }").unwrap(), "/usr/local/bin /usr/bin /bin");
        assert_eq!(
            x("${FILE/#/x}").unwrap(),
            "archive.tar.gz".replace("#", "x")
        );
        assert_eq!(x("${NOPE#x}").unwrap(), "");
        assert_eq!(x("${FILE#\\*}").unwrap(), "archive.tar.gz");
        assert!(x("${FILE#\\q}").is_err());
        assert!(x("${FILE:#x}").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}x{}", "${a:-".repeat(30_000), "}".repeat(30_000));
        let err = x(&deep).unwrap_err();
        assert!(err.message.contains("nested deeper than 100"), "{err:?}");
        assert_eq!(
            err.offset,
            5 * MAX_NESTING,
            "points at the first level too deep"
        );
        let ok = format!(
            "{}x{}",
            "${a:-".repeat(MAX_NESTING),
            "}".repeat(MAX_NESTING)
        );
        assert_eq!(x(&ok).unwrap(), "x");
    }

    #[test]
    fn unset_is_kept_when_asked() {
        let mut l = Lexer::new('\\');
        l.skip_unset_env = true;
        assert_eq!(
            l.process_word("$A ${B} ${C:-x} ${FILE%.gz}", &env())
                .unwrap(),
            "$A ${B} ${C:-x} archive.tar"
        );
    }

    #[test]
    fn reports_variables() {
        let e = Lexer::new('\\')
            .expand("$FILE ${MISSING:-d}", &env())
            .unwrap();
        assert!(e.matched.contains("FILE"));
        assert!(e.unmatched.contains("MISSING"));
    }
}
