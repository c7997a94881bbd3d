//! Build checks: BuildKit's Dockerfile lint rules, with its names,
//! messages and meaning, run on the parsed tree with a scope of their
//! own (ARG/ENV/WORKDIR/SHELL per stage, stages inheriting from their
//! parents). `# check=skip=A,B;error=true` and `BUILDKIT_DOCKERFILE_CHECK`
//! configure them.
//!
//! A `# check=skip=...` comment right above an instruction adds to the
//! configuration for that instruction alone, as in BuildKit.
//! InvalidBaseImagePlatform needs the resolved image: the lowering
//! reports it (`Lowered::warnings`).

use crate::dockerignore::Ignore;
use kiln_parser::ast::{Args, Dockerfile, Node};
use kiln_parser::shell::{Env, Lexer};
use std::collections::{BTreeMap, BTreeSet};

/// A rule: its name, BuildKit's one-line description, its docs page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    pub description: &'static str,
    /// The docs page's slug (`https://docs.docker.com/go/dockerfile/rule/<slug>/`).
    slug: &'static str,
}

impl Rule {
    pub fn url(&self) -> String {
        format!("https://docs.docker.com/go/dockerfile/rule/{}/", self.slug)
    }
}

macro_rules! rules {
    ($($id:ident = $name:literal, $slug:literal, $desc:literal;)*) => {
        $(pub const $id: Rule = Rule { name: $name, slug: $slug, description: $desc };)*
        /// Every rule kiln runs.
        pub const RULES: &[Rule] = &[$($id),*];
    };
}

rules! {
    STAGE_NAME_CASING = "StageNameCasing", "stage-name-casing", "Stage names should be lowercase";
    FROM_AS_CASING = "FromAsCasing", "from-as-casing", "The 'as' keyword should match the case of the 'from' keyword";
    NO_EMPTY_CONTINUATION = "NoEmptyContinuation", "no-empty-continuation", "Empty continuation lines will become errors in a future release";
    CONSISTENT_INSTRUCTION_CASING = "ConsistentInstructionCasing", "consistent-instruction-casing", "All commands within the Dockerfile should use the same casing (either upper or lower)";
    DUPLICATE_STAGE_NAME = "DuplicateStageName", "duplicate-stage-name", "Stage names should be unique";
    RESERVED_STAGE_NAME = "ReservedStageName", "reserved-stage-name", "Reserved words should not be used as stage names";
    JSON_ARGS_RECOMMENDED = "JSONArgsRecommended", "json-args-recommended", "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals";
    MAINTAINER_DEPRECATED = "MaintainerDeprecated", "maintainer-deprecated", "The MAINTAINER instruction is deprecated, use a label instead to define an image author";
    UNDEFINED_ARG_IN_FROM = "UndefinedArgInFrom", "undefined-arg-in-from", "FROM command must use declared ARGs";
    WORKDIR_RELATIVE_PATH = "WorkdirRelativePath", "workdir-relative-path", "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes";
    UNDEFINED_VAR = "UndefinedVar", "undefined-var", "Variables should be defined before their use";
    MULTIPLE_INSTRUCTIONS_DISALLOWED = "MultipleInstructionsDisallowed", "multiple-instructions-disallowed", "Multiple instructions of the same type should not be used in the same stage";
    LEGACY_KEY_VALUE_FORMAT = "LegacyKeyValueFormat", "legacy-key-value-format", "Legacy key/value format with whitespace separator should not be used";
    REDUNDANT_TARGET_PLATFORM = "RedundantTargetPlatform", "redundant-target-platform", "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior";
    SECRETS_USED_IN_ARG_OR_ENV = "SecretsUsedInArgOrEnv", "secrets-used-in-arg-or-env", "Sensitive data should not be used in the ARG or ENV commands";
    INVALID_DEFAULT_ARG_IN_FROM = "InvalidDefaultArgInFrom", "invalid-default-arg-in-from", "Default value for global ARG results in an empty or invalid base image name";
    FROM_PLATFORM_FLAG_CONST_DISALLOWED = "FromPlatformFlagConstDisallowed", "from-platform-flag-const-disallowed", "FROM --platform flag should not use a constant value";
    COPY_IGNORED_FILE = "CopyIgnoredFile", "copy-ignored-file", "Attempting to Copy file that is excluded by .dockerignore";
    EXPOSE_PROTO_CASING = "ExposeProtoCasing", "expose-proto-casing", "Protocol in EXPOSE instruction should be lowercase";
    EXPOSE_INVALID_FORMAT = "ExposeInvalidFormat", "expose-invalid-format", "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release";
    INVALID_BASE_IMAGE_PLATFORM = "InvalidBaseImagePlatform", "invalid-base-image-platform", "Base image platform does not match expected target platform";
    INVALID_DEFINITION_DESCRIPTION = "InvalidDefinitionDescription", "invalid-definition-description", "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.";
}

/// Rules that run only when `experimental=` names them (or `all`);
/// `skip=` does not apply to them.
const EXPERIMENTAL: &[&str] = &["InvalidDefinitionDescription"];

/// MaintainerDeprecated's message (meta and stage MAINTAINERs alike).
const MAINTAINER_MESSAGE: &str = "Maintainer instruction is deprecated in favor of using label";

/// One rule firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckWarning {
    pub rule: Rule,
    pub message: String,
    /// The instruction's lines (first and last, 1-based).
    pub line: u32,
    pub end_line: u32,
}

/// `# check=skip=A,B;error=true` or `BUILDKIT_DOCKERFILE_CHECK`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    pub skip_all: bool,
    pub skip: BTreeSet<String>,
    /// Experimental rules turned on (`experimental=A,B|all`).
    pub experimental_all: bool,
    pub experimental: BTreeSet<String>,
    /// Any warning fails the build.
    pub error: bool,
}

impl CheckConfig {
    /// `skip=A,B|all;error=true|false;experimental=A,B|all`.
    pub fn parse(text: &str) -> Result<CheckConfig, String> {
        let mut c = CheckConfig::default();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("invalid check option {part:?}: expected key=value"))?;
            match k.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    for r in v.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                        if r == "all" {
                            c.skip_all = true;
                        } else {
                            c.skip.insert(r.to_string());
                        }
                    }
                }
                "error" => {
                    c.error = match v.trim() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => {
                            return Err(format!(
                                "invalid check error value {other:?}: expected true or false"
                            ))
                        }
                    }
                }
                "experimental" => {
                    for r in v.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                        if r == "all" {
                            c.experimental_all = true;
                        } else {
                            c.experimental.insert(r.to_string());
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "invalid check option {other:?}: expected skip, error or experimental"
                    ))
                }
            }
        }
        Ok(c)
    }

    /// BuildKit's precedence: the build arg, when given at all, replaces
    /// the file's directive. The directive's value ends at a space.
    pub fn of(df: &Dockerfile, build_arg: Option<&str>) -> Result<CheckConfig, String> {
        match build_arg {
            Some(v) => CheckConfig::parse(v),
            None => match df.directive("check") {
                Some(v) => CheckConfig::parse(v.split_whitespace().next().unwrap_or("")),
                None => Ok(CheckConfig::default()),
            },
        }
    }

    /// Whether this configuration keeps `w`, a warning found outside
    /// [`check`] (by the lowering), given the instruction at its line.
    pub fn keeps(&self, w: &CheckWarning, df: &Dockerfile) -> bool {
        match df.instructions.iter().find(|n| n.span.start.line == w.line) {
            Some(n) => self.runs_on(&w.rule, n),
            None => self.runs(&w.rule),
        }
    }

    fn runs(&self, rule: &Rule) -> bool {
        if EXPERIMENTAL.contains(&rule.name) {
            self.experimental_all || self.experimental.contains(rule.name)
        } else {
            !self.skip_all && !self.skip.contains(rule.name)
        }
    }

    /// Whether `rule` runs on `n`: this configuration plus the skips and
    /// experiments of a `# check=` comment above it (its value ends at a
    /// space; an invalid one is ignored, as BuildKit ignores it).
    fn runs_on(&self, rule: &Rule, n: &Node) -> bool {
        let local = n
            .check_comment()
            .and_then(|v| CheckConfig::parse(v.split_whitespace().next().unwrap_or("")).ok());
        let Some(local) = local else {
            return self.runs(rule);
        };
        let merged = CheckConfig {
            skip_all: self.skip_all || local.skip_all,
            skip: self.skip.union(&local.skip).cloned().collect(),
            experimental_all: self.experimental_all || local.experimental_all,
            experimental: self
                .experimental
                .union(&local.experimental)
                .cloned()
                .collect(),
            error: self.error,
        };
        merged.runs(rule)
    }
}

/// What the checks need besides the tree.
pub struct CheckInputs<'a> {
    pub build_args: &'a BTreeMap<String, String>,
    /// The context's .dockerignore (CopyIgnoredFile).
    pub ignore: Option<&'a Ignore>,
    /// The environment of a base image, when it is known (None: unknown,
    /// and UndefinedVar stays quiet in that stage rather than guess).
    pub base_env: &'a dyn Fn(&str) -> Option<Vec<String>>,
}

/// The platform ARGs BuildKit defines in every scope.
const PLATFORM_ARGS: &[&str] = &[
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

struct Vars<'a>(&'a BTreeMap<String, String>);

impl Env for Vars<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

fn line_of(n: &Node) -> (u32, u32) {
    (n.span.start.line, n.span.end.line.max(n.span.start.line))
}

fn words(n: &Node) -> Vec<String> {
    match &n.args {
        Args::List(w) => w.iter().map(|w| w.text.clone()).collect(),
        Args::Exec(v) => v.clone(),
        Args::Shell(s) | Args::Text(s) | Args::Unknown(s) => {
            s.split_whitespace().map(str::to_string).collect()
        }
        _ => Vec::new(),
    }
}

fn flag<'a>(n: &'a Node, name: &str) -> Option<&'a str> {
    n.flags.iter().find_map(|f| {
        f.text
            .strip_prefix("--")
            .and_then(|t| t.strip_prefix(name))
            .and_then(|t| t.strip_prefix('='))
    })
}

/// `(?:_|^)(?:apikey|auth|...)(?:_|$)` and not `public|file|version` the
/// same way: a `_`-separated token of the key.
fn looks_secret(key: &str) -> bool {
    const DENY: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    const ALLOW: &[&str] = &["public", "file", "version"];
    let lower = key.to_ascii_lowercase();
    let tokens: Vec<&str> = lower.split('_').collect();
    tokens.iter().any(|t| DENY.contains(t)) && !tokens.iter().any(|t| ALLOW.contains(t))
}

/// A stage's scope while its instructions are walked.
#[derive(Clone, Default)]
struct Scope {
    /// ENV and ARG names with their values (what UndefinedVar sees).
    env: BTreeMap<String, String>,
    /// Every ARG declared so far, with or without a value.
    args: BTreeSet<String>,
    workdir_set: bool,
    shell_set: bool,
    /// Whether the base image's env is known (else UndefinedVar is off).
    known: bool,
}

struct Run<'a> {
    out: Vec<CheckWarning>,
    config: &'a CheckConfig,
    lexer: Lexer,
}

impl Run<'_> {
    fn warn(&mut self, rule: Rule, n: &Node, message: String) {
        if self.config.runs_on(&rule, n) {
            let (line, end_line) = line_of(n);
            self.out.push(CheckWarning {
                rule,
                message,
                line,
                end_line,
            });
        }
    }

    /// UndefinedVar for each word, against the stage's scope.
    fn undefined(&mut self, n: &Node, scope: &Scope, texts: &[String]) {
        if !scope.known {
            return;
        }
        let vars = Vars(&scope.env);
        let mut seen = BTreeSet::new();
        for t in texts {
            let Ok(e) = self.lexer.expand(t, &vars) else {
                continue;
            };
            for name in e.unmatched {
                if scope.args.contains(&name) || !seen.insert(name.clone()) {
                    continue;
                }
                let keys: Vec<&str> = scope.env.keys().map(String::as_str).collect();
                let hint = kiln_parser::suggest::closest(&name, &keys)
                    .map(|s| format!(" (did you mean ${s}?)"))
                    .unwrap_or_default();
                self.warn(
                    UNDEFINED_VAR,
                    n,
                    format!("Usage of undefined variable '${name}'{hint}"),
                );
            }
        }
    }
}

/// Runs every rule the config keeps on `df`; warnings in file order.
pub fn check(df: &Dockerfile, config: &CheckConfig, inputs: &CheckInputs<'_>) -> Vec<CheckWarning> {
    let mut run = Run {
        out: Vec::new(),
        config,
        lexer: Lexer::new(df.escape),
    };
    // NoEmptyContinuation: the parser's warnings, reported on the last
    // line of their instruction, once per instruction.
    let mut reported = BTreeSet::new();
    for w in df
        .warnings
        .iter()
        .filter(|w| w.message.contains("empty continuation"))
    {
        if let Some(n) = df
            .instructions
            .iter()
            .find(|n| n.span.start.line <= w.pos.line && w.pos.line <= n.span.end.line)
        {
            if reported.insert(n.span.start.line) && config.runs_on(&NO_EMPTY_CONTINUATION, n) {
                run.out.push(CheckWarning {
                    rule: NO_EMPTY_CONTINUATION,
                    message: "Empty continuation line".into(),
                    line: n.span.end.line,
                    end_line: n.span.end.line,
                });
            }
        }
    }
    casing(df, &mut run);
    for n in &df.instructions {
        definition_description(n, &mut run);
    }
    // Meta ARGs: before the first FROM.
    let first_from = df
        .instructions
        .iter()
        .position(|n| n.command() == "from")
        .unwrap_or(df.instructions.len());
    let mut meta: BTreeMap<String, Option<String>> = BTreeMap::new();
    for n in &df.instructions[..first_from] {
        if n.command() == "arg" {
            for w in words(n) {
                let (k, v) = match w.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (w.clone(), None),
                };
                let v = inputs.build_args.get(&k).cloned().or(v);
                meta.insert(k, v);
            }
        }
        if n.command() == "maintainer" {
            run.warn(MAINTAINER_DEPRECATED, n, MAINTAINER_MESSAGE.into());
        }
    }
    let mut stages: BTreeMap<String, Scope> = BTreeMap::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut scope = Scope::default();
    let mut seen_once: BTreeMap<String, &Node> = BTreeMap::new();
    let mut stage_name: Option<String> = None;
    for n in &df.instructions[first_from..] {
        let cmd = n.command();
        if cmd == "from" {
            if let Some(name) = stage_name.take() {
                stages.insert(name, scope.clone());
            }
            seen_once.clear();
            scope = from(n, &meta, &stages, &mut names, inputs, &mut run);
            let w = words(n);
            if w.len() == 3 {
                stage_name = Some(w[2].to_ascii_lowercase());
            }
            continue;
        }
        instruction(n, &cmd, &mut scope, &mut seen_once, inputs, &mut run);
    }
    run.out.sort_by_key(|w| w.line);
    run.out
}

/// InvalidDefinitionDescription: the comment right above a named FROM or
/// an ARG describes it (`--call=outline`), so its first word must be the
/// stage's name or one of the ARG's keys.
fn definition_description(n: &Node, run: &mut Run<'_>) {
    let (instruction, keys) = match n.command().as_str() {
        "from" => match words(n).as_slice() {
            [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => ("FROM", vec![name.clone()]),
            _ => return,
        },
        "arg" => (
            "ARG",
            words(n)
                .iter()
                .map(|w| w.split_once('=').map_or(w.as_str(), |(k, _)| k).to_string())
                .collect(),
        ),
        _ => return,
    };
    let Some(last) = n.comments.last() else {
        return;
    };
    let first_word = last.split(' ').next().unwrap_or("");
    if keys.is_empty() || keys.iter().any(|k| k == first_word) {
        return;
    }
    let example = if keys.len() > 1 {
        "<arg_key>"
    } else {
        &keys[0]
    };
    run.warn(
        INVALID_DEFINITION_DESCRIPTION,
        n,
        format!("Comment for {instruction} should follow the format: `# {example} <description>`"),
    );
}

/// ConsistentInstructionCasing: the majority of FROM and in-stage
/// keywords (meta ARGs not counted; a tie is upper case).
fn casing(df: &Dockerfile, run: &mut Run<'_>) {
    let first_from = df.instructions.iter().position(|n| n.command() == "from");
    let Some(first) = first_from else { return };
    let keywords: Vec<&Node> = df.instructions[first..].iter().collect();
    let lower = keywords
        .iter()
        .filter(|n| n.keyword == n.keyword.to_ascii_lowercase())
        .count();
    let upper = keywords
        .iter()
        .filter(|n| n.keyword == n.keyword.to_ascii_uppercase())
        .count();
    let majority_lower = lower > upper;
    for n in keywords {
        let (fits, which) = if majority_lower {
            (n.keyword == n.keyword.to_ascii_lowercase(), "lowercase")
        } else {
            (n.keyword == n.keyword.to_ascii_uppercase(), "uppercase")
        };
        if !fits {
            run.warn(
                CONSISTENT_INSTRUCTION_CASING,
                n,
                format!(
                    "Command '{}' should match the case of the command majority ({which})",
                    n.keyword
                ),
            );
        }
    }
}

/// A FROM: the stage-name, casing and platform rules, and the new
/// stage's scope (its parent stage's, when it builds on one).
fn from(
    n: &Node,
    meta: &BTreeMap<String, Option<String>>,
    stages: &BTreeMap<String, Scope>,
    names: &mut BTreeSet<String>,
    inputs: &CheckInputs<'_>,
    run: &mut Run<'_>,
) -> Scope {
    let w = words(n);
    if w.len() == 3 {
        let (as_kw, name) = (&w[1], &w[2]);
        if *name != name.to_ascii_lowercase() {
            run.warn(
                STAGE_NAME_CASING,
                n,
                format!("Stage name '{name}' should be lowercase"),
            );
        }
        let kw = &n.keyword;
        let from_lower = *kw == kw.to_ascii_lowercase();
        let from_upper = *kw == kw.to_ascii_uppercase();
        if (from_lower && *as_kw != as_kw.to_ascii_lowercase())
            || (from_upper && *as_kw != as_kw.to_ascii_uppercase())
        {
            run.warn(
                FROM_AS_CASING,
                n,
                format!("'{as_kw}' and '{kw}' keywords' casing do not match"),
            );
        }
        let lower = name.to_ascii_lowercase();
        if !names.insert(lower.clone()) {
            run.warn(
                DUPLICATE_STAGE_NAME,
                n,
                format!("Duplicate stage name {lower:?}, stage names should be unique"),
            );
        }
        if lower == "scratch" || lower == "context" {
            run.warn(
                RESERVED_STAGE_NAME,
                n,
                format!("Stage name should not use the same name as reserved stage {lower:?}"),
            );
        }
    }
    // The base and --platform against the meta ARGs (and the platform
    // ones BuildKit defines).
    let mut global: BTreeMap<String, String> = meta
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect();
    for p in PLATFORM_ARGS {
        global
            .entry(p.to_string())
            .or_insert_with(|| "linux/amd64".into());
    }
    let declared = |name: &str| meta.contains_key(name) || PLATFORM_ARGS.contains(&name);
    let base = w.first().cloned().unwrap_or_default();
    let mut undeclared = Vec::new();
    if let Ok(e) = run.lexer.expand(&base, &Vars(&global)) {
        undeclared.extend(e.unmatched.into_iter().filter(|v| !declared(v)));
        let expanded = e.value;
        let invalid = expanded.is_empty() || expanded.ends_with(':') || expanded.ends_with('@');
        if base.contains('$') && invalid && e.matched.iter().all(|m| meta.contains_key(m)) {
            run.warn(
                INVALID_DEFAULT_ARG_IN_FROM,
                n,
                format!("Default value for ARG {base} results in empty or invalid base image name"),
            );
        }
    }
    if let Some(platform) = flag(n, "platform") {
        if let Ok(e) = run.lexer.expand(platform, &Vars(&global)) {
            undeclared.extend(e.unmatched.iter().filter(|v| !declared(v)).cloned());
            if e.matched.len() == 1
                && e.matched.contains("TARGETPLATFORM")
                && e.unmatched.is_empty()
            {
                run.warn(REDUNDANT_TARGET_PLATFORM, n, format!("Setting platform to predefined {platform} in FROM is redundant as this is the default behavior"));
            }
            if !platform.contains('$') {
                run.warn(
                    FROM_PLATFORM_FLAG_CONST_DISALLOWED,
                    n,
                    format!("FROM --platform flag should not use constant value {platform:?}"),
                );
            }
        }
    }
    for v in undeclared {
        let keys: Vec<&str> = meta.keys().map(String::as_str).collect();
        let hint = kiln_parser::suggest::closest(&v, &keys)
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default();
        run.warn(
            UNDEFINED_ARG_IN_FROM,
            n,
            format!("FROM argument '{v}' is not declared{hint}"),
        );
    }
    // The stage's scope: its parent stage's, or a base image's env.
    let expanded = run
        .lexer
        .process_word(&base, &Vars(&global))
        .unwrap_or(base);
    let lower = expanded.to_ascii_lowercase();
    if let Some(parent) = stages.get(&lower) {
        return parent.clone();
    }
    let mut scope = Scope::default();
    let env = if lower == "scratch" {
        Some(Vec::new())
    } else {
        (inputs.base_env)(&expanded)
    };
    if let Some(env) = env {
        scope.known = true;
        for e in env {
            let (k, v) = e.split_once('=').unwrap_or((&e, ""));
            scope.env.insert(k.to_string(), v.to_string());
        }
    }
    scope
        .env
        .entry("PATH".into())
        .or_insert_with(|| crate::lower::DEFAULT_PATH.into());
    scope
}

/// One instruction inside a stage.
fn instruction<'n>(
    n: &'n Node,
    cmd: &str,
    scope: &mut Scope,
    seen_once: &mut BTreeMap<String, &'n Node>,
    inputs: &CheckInputs<'_>,
    run: &mut Run<'_>,
) {
    match cmd {
        "maintainer" => run.warn(MAINTAINER_DEPRECATED, n, MAINTAINER_MESSAGE.into()),
        "cmd" | "entrypoint" | "healthcheck" => {
            if let Some(earlier) = seen_once.insert(cmd.to_string(), n) {
                run.warn(MULTIPLE_INSTRUCTIONS_DISALLOWED, earlier, format!("Multiple {} instructions should not be used in the same stage because only the last one will be used", n.keyword));
            }
            if cmd != "healthcheck" && !n.args.is_exec() && !scope.shell_set {
                run.warn(JSON_ARGS_RECOMMENDED, n, format!("JSON arguments recommended for {} to prevent unintended behavior related to OS signals", n.keyword));
            }
        }
        "shell" => scope.shell_set = true,
        "env" | "label" => {
            if let Args::Pairs(pairs) = &n.args {
                let mut texts = Vec::new();
                for p in pairs {
                    if p.legacy {
                        run.warn(LEGACY_KEY_VALUE_FORMAT, n, format!("\"{kw} key=value\" should be used instead of legacy \"{kw} key value\" format", kw = n.keyword));
                    }
                    texts.push(p.key.clone());
                    texts.push(p.value.clone());
                }
                run.undefined(n, scope, &texts);
                for p in pairs {
                    if cmd == "env" {
                        if looks_secret(&p.key) {
                            run.warn(SECRETS_USED_IN_ARG_OR_ENV, n, format!("Do not use ARG or ENV instructions for sensitive data (ENV {:?})", p.key));
                        }
                        let vars = Vars(&scope.env);
                        let value = run.lexer.process_word(&p.value, &vars).unwrap_or_default();
                        scope.env.insert(p.key.clone(), value);
                    }
                }
            }
        }
        "arg" => {
            for w in words(n) {
                let (k, v) = match w.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (w.clone(), None),
                };
                if looks_secret(&k) {
                    run.warn(
                        SECRETS_USED_IN_ARG_OR_ENV,
                        n,
                        format!(
                            "Do not use ARG or ENV instructions for sensitive data (ARG {k:?})"
                        ),
                    );
                }
                if let (Some(v), false) = (&v, inputs.build_args.contains_key(&k)) {
                    run.undefined(n, scope, std::slice::from_ref(v));
                }
                scope.args.insert(k.clone());
                let vars = Vars(&scope.env);
                let value =
                    inputs.build_args.get(&k).cloned().or_else(|| {
                        v.map(|v| run.lexer.process_word(&v, &vars).unwrap_or_default())
                    });
                if let Some(value) = value {
                    scope.env.insert(k, value);
                }
            }
        }
        "workdir" => {
            let w = words(n).join(" ");
            run.undefined(n, scope, std::slice::from_ref(&w));
            let path = run.lexer.process_word(&w, &Vars(&scope.env)).unwrap_or(w);
            if !scope.workdir_set && !path.starts_with('/') {
                run.warn(WORKDIR_RELATIVE_PATH, n, format!("Relative workdir {path:?} can have unexpected results if the base image changes"));
            }
            scope.workdir_set = true;
        }
        "user" | "volume" | "stopsignal" => run.undefined(n, scope, &words(n)),
        "copy" | "add" => {
            let mut texts: Vec<String> = words(n);
            texts.extend(
                n.flags
                    .iter()
                    .filter(|f| {
                        ["--chown", "--chmod", "--checksum"]
                            .iter()
                            .any(|p| f.text.starts_with(p))
                    })
                    .map(|f| {
                        f.text
                            .split_once('=')
                            .map_or(String::new(), |(_, v)| v.to_string())
                    }),
            );
            run.undefined(n, scope, &texts);
            if flag(n, "from").is_none() {
                if let Some(ignore) = inputs.ignore {
                    let w = words(n);
                    let verb = if cmd == "copy" { "Copy" } else { "Add" };
                    for src in w.iter().take(w.len().saturating_sub(1)) {
                        let clean = crate::path::clean_rel(src);
                        if !src.contains("://") && ignore.excludes(std::path::Path::new(&clean)) {
                            run.warn(COPY_IGNORED_FILE, n, format!("Attempting to {verb} file {clean:?} that is excluded by .dockerignore"));
                        }
                    }
                }
            }
        }
        "expose" => {
            let vars = Vars(&scope.env);
            for p in words(n) {
                let spec = run.lexer.process_word(&p, &vars).unwrap_or(p);
                let (ports, proto) = spec.split_once('/').unwrap_or((&spec, ""));
                if proto != proto.to_ascii_lowercase() {
                    run.warn(
                        EXPOSE_PROTO_CASING,
                        n,
                        format!(
                            "Defined protocol '{spec}' in EXPOSE instruction should be lowercase"
                        ),
                    );
                }
                if ports.contains(':') {
                    run.warn(EXPOSE_INVALID_FORMAT, n, format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{spec}'"));
                }
            }
        }
        "run" => {
            let mounts: Vec<String> = n
                .flags
                .iter()
                .filter_map(|f| f.text.strip_prefix("--mount=").map(str::to_string))
                .collect();
            run.undefined(n, scope, &mounts);
        }
        _ => {}
    }
}

/// The warnings as BuildKit's `--check` prints them: a count, then each
/// with its rule, description, URL, message and source lines.
pub fn render(file: &str, text: &str, warnings: &[CheckWarning]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for w in warnings {
        out.push_str(&format!(
            "\nWARNING: {} - {}\n{}\n{}\n\n{}:{}\n--------------------\n",
            w.rule.name,
            w.rule.url(),
            w.rule.description,
            w.message,
            file,
            w.line
        ));
        let from = w.line.saturating_sub(2).max(1);
        let to = (w.end_line + 2).min(lines.len() as u32);
        for l in from..=to {
            let mark = if (w.line..=w.end_line).contains(&l) {
                ">>>"
            } else {
                "   "
            };
            out.push_str(&format!(
                " {l:>3} | {mark} {}\n",
                lines.get(l as usize - 1).unwrap_or(&"")
            ));
        }
        out.push_str("--------------------\n");
    }
    out
}

/// The warnings as buildx's `--call=check,format=json` writes them.
pub fn to_json(file: &str, text: &str, warnings: &[CheckWarning]) -> serde_json::Value {
    serde_json::json!({
        "warnings": warnings.iter().map(|w| serde_json::json!({
            "ruleName": w.rule.name,
            "description": w.rule.description,
            "url": w.rule.url(),
            "detail": w.message,
            "location": {
                "sourceIndex": 0,
                "ranges": (w.line..=w.end_line).map(|l| serde_json::json!({"start": {"line": l}, "end": {"line": l}})).collect::<Vec<_>>(),
            },
        })).collect::<Vec<_>>(),
        "sources": [{"fileName": file, "language": "Dockerfile", "data": text}],
    })
}

/// What a build prints at its end (buildx's "N warnings found"): each
/// warning's rule, message and `file:line`, and its first source line.
/// Dockerfile text is made terminal-safe here.
pub fn summary(file: &str, text: &str, warnings: &[CheckWarning]) -> String {
    use kiln_parser::{terminal_safe, terminal_safe_line};
    let lines: Vec<&str> = text.lines().collect();
    let n = warnings.len();
    let mut out = format!("{n} warning{} found:\n", if n == 1 { "" } else { "s" });
    for w in warnings {
        out.push_str(&format!(
            " - {}:{} {}: {}\n",
            terminal_safe_line(file),
            w.line,
            w.rule.name,
            terminal_safe(&w.message)
        ));
        if let Some(l) = lines.get(w.line as usize - 1) {
            out.push_str(&format!(
                "   {:>4} | {}\n",
                w.line,
                terminal_safe_line(l.trim_end())
            ));
        }
    }
    out
}

/// The one-line form printed after a build: `Rule: message (line N)`.
pub fn short(w: &CheckWarning) -> String {
    format!("{}: {} (line {})", w.rule.name, w.message, w.line)
}
