//! `.dockerignore` (and `<Dockerfile>.dockerignore`) with docker's rules:
//! one pattern per line, `#` comments, patterns cleaned and made relative,
//! `*`/`?`/`[...]` within one path component, `**` across any number, `!`
//! to re-include; the last matching pattern wins, and a path is excluded
//! when it or any of its parent directories is.

use crate::path::clean_rel;
use globset::{GlobBuilder, GlobMatcher};
use std::path::Path;

/// docker's pattern rules: `*` and `?` stay within a component, `\`
/// escapes.
fn glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()?
        .compile_matcher())
}

struct Rule {
    matcher: GlobMatcher,
    /// `!pattern`: re-include.
    include: bool,
    /// The pattern's components, each matched on its own (`None` for
    /// `**`), for "could it match below this directory" (re-includes
    /// only; compiled once here, not per walked path).
    components: Vec<Option<GlobMatcher>>,
}

/// A parsed ignore file.
pub struct Ignore {
    rules: Vec<Rule>,
    /// The rules as cleaned pattern lines (`!` kept), for the build graph.
    patterns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for IgnoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for IgnoreError {}

impl Ignore {
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let mut rules = Vec::new();
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, pattern) = match line.strip_prefix('!') {
                Some(rest) if rest.trim().is_empty() => {
                    return Err(IgnoreError {
                        line: n + 1,
                        message: format!("illegal exclusion pattern: {line:?}"),
                    })
                }
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = clean_rel(pattern);
            if pattern.is_empty() {
                continue;
            }
            let matcher = glob(&pattern).map_err(|e| IgnoreError {
                line: n + 1,
                message: format!("invalid pattern {pattern:?}: {e}"),
            })?;
            patterns.push(if include {
                format!("!{pattern}")
            } else {
                pattern.clone()
            });
            let components = if include {
                pattern
                    .split('/')
                    .map(|c| (c != "**").then(|| glob(c)).transpose())
                    .collect::<Result<_, _>>()
                    .map_err(|e| IgnoreError {
                        line: n + 1,
                        message: format!("invalid pattern {pattern:?}: {e}"),
                    })?
            } else {
                Vec::new()
            };
            rules.push(Rule {
                matcher,
                include,
                components,
            });
        }
        Ok(Ignore { rules, patterns })
    }

    /// Rules from pattern lines as [`Ignore::patterns`] returns them.
    pub fn from_patterns(patterns: &[String]) -> Result<Ignore, IgnoreError> {
        Ignore::parse(&patterns.join("\n"))
    }

    /// The cleaned pattern lines, `!` marking re-includes.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// No rules: nothing excluded.
    pub fn empty() -> Ignore {
        Ignore {
            rules: Vec::new(),
            patterns: Vec::new(),
        }
    }

    /// Whether `rel` (relative to the context, `/`-separated) is excluded:
    /// it or a parent matches (the last rule wins), and no re-include
    /// could match below it — so an excluded directory holding a
    /// re-included file (`build` then `!build/keep.txt`) is still walked.
    pub fn excludes(&self, rel: &Path) -> bool {
        let clean = clean_rel(&rel.to_string_lossy());
        self.matches(rel) && !self.reincludes_below(&clean)
    }

    /// Whether a re-include rule could match a path below `rel`.
    fn reincludes_below(&self, rel: &str) -> bool {
        let path: Vec<&str> = rel.split('/').collect();
        self.rules.iter().filter(|r| r.include).any(|r| {
            for (i, component) in r.components.iter().enumerate() {
                let Some(matcher) = component else {
                    return true; // `**`
                };
                let Some(name) = path.get(i) else {
                    // The pattern goes deeper than the path.
                    return true;
                };
                if !matcher.is_match(name) {
                    return false;
                }
            }
            false
        })
    }

    /// The rules alone: `rel` or a parent matches, the last rule winning.
    fn matches(&self, rel: &Path) -> bool {
        let rel = clean_rel(&rel.to_string_lossy());
        if rel.is_empty() {
            return false;
        }
        // The path or any parent matching counts; the last rule wins.
        let mut excluded = false;
        let parents: Vec<&str> = {
            let mut v = Vec::new();
            for (i, c) in rel.char_indices() {
                if c == '/' {
                    v.push(&rel[..i]);
                }
            }
            v.push(&rel);
            v
        };
        for rule in &self.rules {
            if parents.iter().any(|p| rule.matcher.is_match(p)) {
                excluded = !rule.include;
            }
        }
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(rules: &str, path: &str) -> bool {
        Ignore::parse(rules).unwrap().excludes(Path::new(path))
    }

    #[test]
    fn docker_rules() {
        assert!(
            ex("node_modules", "node_modules/x/y.js"),
            "a directory excludes its contents"
        );
        assert!(ex("*.log", "a.log"));
        assert!(!ex("*.log", "dir/a.log"), "* stays within one component");
        assert!(ex("**/*.log", "dir/sub/a.log"));
        assert!(ex("**/*.log", "a.log"), "**/ matches zero directories");
        assert!(
            ex("/build", "build/out"),
            "leading slash is the context root"
        );
        assert!(ex("./tmp/../cache", "cache"), "patterns are cleaned");
        assert!(!ex("*.md\n!README.md", "README.md"), "! re-includes");
        assert!(
            ex("*.md\n!README.md\nREADME*", "README.md"),
            "the last match wins"
        );
        assert!(ex("# comment\n\n  docs  ", "docs/a"));
        assert!(!ex("# docs", "docs/a"));
        assert!(ex("a?c", "abc") && !ex("a?c", "a/c"));
        assert!(ex("[ab]x", "bx"));
        assert!(!ex("", "anything"));
        assert!(Ignore::parse("[unclosed").is_err());
        assert!(
            Ignore::parse("a\n!").is_err(),
            "a lone ! is BuildKit's illegal pattern"
        );
        let keep = "build\n!build/keep-me.txt";
        assert!(
            !ex(keep, "build/keep-me.txt"),
            "re-included inside an excluded dir"
        );
        assert!(!ex(keep, "build"), "walked, to reach what is re-included");
        assert!(ex(keep, "build/other.txt"));
        assert!(ex(keep, "build/sub"), "no re-include below build/sub");
    }
}
