//! Typed instructions: the syntax tree checked for arity and flags, one
//! struct per instruction. Values are still unexpanded (`$VAR` intact):
//! expansion needs the ARG/ENV scope, which is the frontend's business.

use crate::ast::{Args, Dockerfile, Heredoc, Node};
use crate::error::ParseError;
use crate::span::{Pos, Span};
use crate::suggest::closest;
use std::collections::BTreeMap;
use std::time::Duration;

use nom::{
    branch::alt,
    bytes::complete::tag,
    character::complete::{char, digit0, digit1, one_of},
    combinator::{all_consuming, opt, recognize},
    multi::many1,
    IResult, Parser,
};

/// Every instruction keyword, upper-case.
pub const KEYWORDS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// An instruction with the span it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub span: Span,
    pub inner: T,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From(From),
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    Env(Vec<Pair>),
    Label(Vec<Pair>),
    Maintainer(String),
    Expose(Vec<String>),
    Add(Add),
    Copy(Copy),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Arg(Vec<ArgDecl>),
    Onbuild(Onbuild),
    StopSignal(String),
    Healthcheck(Healthcheck),
}

impl Instruction {
    /// The keyword, upper-case (`RUN`).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::Env(_) => "ENV",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Arg(_) => "ARG",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub image: String,
    /// Lower-cased `AS name`.
    pub stage_name: Option<String>,
    pub platform: Option<String>,
}

/// Shell form runs through the image's SHELL; exec form runs as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: Command,
    pub heredocs: Vec<Heredoc>,
    /// Raw `--mount` specs, parsed after variable expansion.
    pub mounts: Vec<String>,
    pub network: Option<String>,
    pub security: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    /// Raw value: quotes and escapes are interpreted at expansion time.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(String),
    Heredoc(Heredoc),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub sources: Vec<Source>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub excludes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub sources: Vec<Source>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub keep_git_dir: bool,
    pub checksum: Option<String>,
    pub unpack: Option<bool>,
    pub excludes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// Raw default value, if one was given.
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as written, recorded in the image config.
    pub expression: String,
    pub trigger: Box<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    Cmd {
        test: Command,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

/// Validates every instruction of a parsed Dockerfile.
pub fn parse_instructions(df: &Dockerfile) -> Result<Vec<Spanned<Instruction>>, ParseError> {
    df.instructions
        .iter()
        .map(|node| {
            Ok(Spanned {
                span: node.span,
                inner: parse_instruction(node)?,
            })
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Bool,
    Many,
}

/// Flags after validation: name → values in order.
struct Flags {
    values: BTreeMap<&'static str, Vec<(String, Pos)>>,
}

impl Flags {
    fn string(&self, name: &str) -> Option<String> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(|(s, _)| s.clone())
    }

    fn strings(&self, name: &str) -> Vec<String> {
        self.values
            .get(name)
            .map(|v| v.iter().map(|(s, _)| s.clone()).collect())
            .unwrap_or_default()
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, ParseError> {
        let Some((v, pos)) = self.values.get(name).and_then(|v| v.last()) else {
            return Ok(None);
        };
        match v.to_ascii_lowercase().as_str() {
            "" | "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(ParseError::new(
                *pos,
                format!("expecting boolean value for flag --{name}, not: {v}"),
            )),
        }
    }

    fn duration(&self, name: &str) -> Result<Option<Duration>, ParseError> {
        let Some((v, pos)) = self.values.get(name).and_then(|v| v.last()) else {
            return Ok(None);
        };
        let d = parse_duration(v).ok_or_else(|| {
            ParseError::new(*pos, format!("invalid duration {v:?} for --{name}"))
                .with_hint("durations look like 30s, 1m30s, 500ms or 1h")
        })?;
        if !d.is_zero() && d < Duration::from_millis(1) {
            return Err(ParseError::new(
                *pos,
                format!("--{name} cannot be less than 1ms"),
            ));
        }
        Ok(Some(d))
    }
}

/// Checks the node's flags against the instruction's known ones.
fn flags(node: &Node, known: &[(&'static str, Kind)]) -> Result<Flags, ParseError> {
    let mut values: BTreeMap<&'static str, Vec<(String, Pos)>> = BTreeMap::new();
    let keyword = node.keyword.to_ascii_uppercase();
    for flag in &node.flags {
        let body = flag.text.strip_prefix("--").unwrap_or(&flag.text);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(spec_name, kind)) = known.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
            let mut err = ParseError::new(flag.pos, format!("unknown flag: --{name}"));
            err = match closest(name, &names) {
                Some(s) => err.with_hint(format!("did you mean {s}?")),
                None if names.is_empty() => err.with_hint(format!("{keyword} takes no flags")),
                None => err.with_hint(format!(
                    "{keyword} accepts {}",
                    names
                        .iter()
                        .map(|n| format!("--{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            return Err(err);
        };
        let value = match (kind, value) {
            (Kind::Bool, v) => v.unwrap_or("").to_string(),
            (_, Some(v)) => v.to_string(),
            (_, None) => {
                return Err(
                    ParseError::new(flag.pos, format!("missing a value on flag: --{name}"))
                        .with_hint(format!("write --{name}=VALUE")),
                )
            }
        };
        let entry = values.entry(spec_name).or_default();
        if kind != Kind::Many && !entry.is_empty() {
            return Err(ParseError::new(
                flag.pos,
                format!("duplicate flag specified: --{name}"),
            ));
        }
        entry.push((value, flag.pos));
    }
    Ok(Flags { values })
}

fn err(node: &Node, message: impl Into<String>) -> ParseError {
    ParseError::new(node.args_pos, message)
}

/// Plain words of an argument list (JSON or not).
fn words(args: &Args) -> Vec<String> {
    match args {
        Args::None => Vec::new(),
        Args::Shell(t) | Args::Text(t) | Args::Unknown(t) => vec![t.clone()],
        Args::Exec(v) => v.clone(),
        Args::List(w) => w.iter().map(|w| w.text.clone()).collect(),
        Args::Pairs(p) => p.iter().map(|p| format!("{}={}", p.key, p.value)).collect(),
        Args::Healthcheck { kind, .. } => vec![kind.clone()],
        Args::OnBuild(n) => vec![n.original.clone()],
    }
}

fn exactly_one(node: &Node) -> Result<String, ParseError> {
    match &node.args {
        Args::Text(t) => Ok(t.clone()),
        _ => {
            let w = words(&node.args);
            match w.as_slice() {
                [one] => Ok(one.clone()),
                _ => Err(err(
                    node,
                    format!(
                        "{} requires exactly one argument",
                        node.keyword.to_ascii_uppercase()
                    ),
                )),
            }
        }
    }
}

fn at_least_one(node: &Node) -> Result<Vec<String>, ParseError> {
    let w = words(&node.args);
    if w.is_empty() {
        return Err(err(
            node,
            format!(
                "{} requires at least one argument",
                node.keyword.to_ascii_uppercase()
            ),
        ));
    }
    Ok(w)
}

fn command(args: &Args) -> Command {
    match args {
        Args::Exec(v) => Command::Exec(v.clone()),
        Args::None => Command::Exec(Vec::new()),
        other => Command::Shell(words(other).join(" ")),
    }
}

fn pairs(node: &Node) -> Result<Vec<Pair>, ParseError> {
    let kw = node.keyword.to_ascii_uppercase();
    let Args::Pairs(kvs) = &node.args else {
        return Err(err(node, format!("{kw} requires at least one argument"))
            .with_hint(format!("write {kw} NAME=VALUE")));
    };
    kvs.iter()
        .map(|kv| {
            if kv.key.is_empty() {
                return Err(ParseError::new(
                    kv.pos,
                    format!("{kw} names can not be blank"),
                ));
            }
            Ok(Pair {
                key: kv.key.clone(),
                value: kv.value.clone(),
            })
        })
        .collect()
}

/// A `<<EOF`-style word naming one of the node's heredocs.
fn heredoc_source(word: &str, heredocs: &[Heredoc]) -> Option<Heredoc> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let name = rest.trim_matches(|c| c == '"' || c == '\'');
    heredocs.iter().find(|h| h.name == name).cloned()
}

fn sources_and_dest(node: &Node) -> Result<(Vec<Source>, String), ParseError> {
    let kw = node.keyword.to_ascii_uppercase();
    let mut w = words(&node.args);
    if w.len() < 2 {
        let e = err(
            node,
            format!("{kw} requires at least two arguments, but only one was provided. Destination could not be determined"),
        );
        return Err(if w.is_empty() {
            err(
                node,
                format!("{kw} requires at least two arguments: a source and a destination"),
            )
        } else {
            e
        }
        .with_hint(format!("write {kw} SOURCE... DEST")));
    }
    let dest = w.pop().unwrap_or_default();
    let exec = node.args.is_exec();
    let sources = w
        .into_iter()
        .map(|s| match (exec, heredoc_source(&s, &node.heredocs)) {
            (false, Some(h)) => Source::Heredoc(h),
            _ => Source::Path(s),
        })
        .collect();
    Ok((sources, dest))
}

/// Turns one syntax node into a typed instruction.
pub fn parse_instruction(node: &Node) -> Result<Instruction, ParseError> {
    let kw = node.keyword.to_ascii_uppercase();
    Ok(match node.command().as_str() {
        "from" => from_instruction(node)?,
        "run" => run_instruction(node)?,
        "cmd" => {
            flags(node, &[])?;
            Instruction::Cmd(command(&node.args))
        }
        "entrypoint" => {
            flags(node, &[])?;
            Instruction::Entrypoint(command(&node.args))
        }
        "shell" => shell_instruction(node)?,
        "env" => {
            flags(node, &[])?;
            Instruction::Env(pairs(node)?)
        }
        "label" => {
            flags(node, &[])?;
            Instruction::Label(pairs(node)?)
        }
        "maintainer" => {
            flags(node, &[])?;
            Instruction::Maintainer(exactly_one(node)?)
        }
        "expose" => {
            flags(node, &[])?;
            Instruction::Expose(at_least_one(node)?)
        }
        "add" => add_instruction(node)?,
        "copy" => copy_instruction(node)?,
        "volume" => {
            flags(node, &[])?;
            let vols = at_least_one(node)?;
            if vols.iter().any(|v| v.trim().is_empty()) {
                return Err(err(node, "VOLUME specified can not be an empty string"));
            }
            Instruction::Volume(vols)
        }
        "user" => {
            flags(node, &[])?;
            Instruction::User(exactly_one(node)?)
        }
        "workdir" => {
            flags(node, &[])?;
            Instruction::Workdir(exactly_one(node)?)
        }
        "stopsignal" => {
            flags(node, &[])?;
            Instruction::StopSignal(exactly_one(node)?)
        }
        "arg" => arg_instruction(node)?,
        "onbuild" => onbuild_instruction(node)?,
        "healthcheck" => healthcheck_instruction(node)?,
        _ => {
            let mut e = ParseError::new(node.span.start, format!("unknown instruction: {kw}"));
            if let Some(s) = closest(&kw, &KEYWORDS) {
                e = e.with_hint(format!("did you mean {s}?"));
            }
            return Err(e);
        }
    })
}

/// `FROM image [AS name]` with `--platform`.
fn from_instruction(node: &Node) -> Result<Instruction, ParseError> {
    use Kind::*;
    let f = flags(node, &[("platform", Str)])?;
    let w = words(&node.args);
    let stage_name = match w.as_slice() {
        [_] => None,
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let name = name.to_ascii_lowercase();
            if !valid_stage_name(&name) {
                let pos = match &node.args {
                    Args::List(l) => l[2].pos,
                    _ => node.args_pos,
                };
                return Err(ParseError::new(
                    pos,
                    format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols"),
                ));
            }
            Some(name)
        }
        _ => {
            return Err(err(node, "FROM requires either one or three arguments")
                .with_hint("write FROM IMAGE or FROM IMAGE AS NAME"))
        }
    };
    Ok(Instruction::From(From {
        image: w[0].clone(),
        stage_name,
        platform: f.string("platform"),
    }))
}

/// `RUN` with `--mount`, `--network`, `--security`.
fn run_instruction(node: &Node) -> Result<Instruction, ParseError> {
    use Kind::*;
    let f = flags(
        node,
        &[("mount", Many), ("network", Str), ("security", Str)],
    )?;
    if matches!(node.args, Args::None) || matches!(&node.args, Args::Exec(v) if v.is_empty()) {
        return Err(err(node, "RUN requires at least one argument"));
    }
    Ok(Instruction::Run(Run {
        command: command(&node.args),
        heredocs: node.heredocs.clone(),
        mounts: f.strings("mount"),
        network: f.string("network"),
        security: f.string("security"),
    }))
}

/// `SHELL ["exe", "arg"]`: JSON form only.
fn shell_instruction(node: &Node) -> Result<Instruction, ParseError> {
    flags(node, &[])?;
    Ok(match &node.args {
        Args::Exec(v) if !v.is_empty() => Instruction::Shell(v.clone()),
        Args::Exec(_) | Args::None => {
            return Err(err(node, "SHELL requires at least one argument"))
        }
        _ => {
            return Err(err(node, "SHELL requires the arguments to be in JSON form")
                .with_hint("write SHELL [\"/bin/sh\", \"-c\"]"))
        }
    })
}

/// `ADD` and its flags.
fn add_instruction(node: &Node) -> Result<Instruction, ParseError> {
    use Kind::*;
    let f = flags(
        node,
        &[
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("keep-git-dir", Bool),
            ("checksum", Str),
            ("unpack", Bool),
            ("exclude", Many),
        ],
    )?;
    let (sources, dest) = sources_and_dest(node)?;
    Ok(Instruction::Add(Add {
        sources,
        dest,
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link")?.unwrap_or(false),
        keep_git_dir: f.bool("keep-git-dir")?.unwrap_or(false),
        checksum: f.string("checksum"),
        unpack: f.bool("unpack")?,
        excludes: f.strings("exclude"),
    }))
}

/// `COPY` and its flags.
fn copy_instruction(node: &Node) -> Result<Instruction, ParseError> {
    use Kind::*;
    let f = flags(
        node,
        &[
            ("from", Str),
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Many),
        ],
    )?;
    let (sources, dest) = sources_and_dest(node)?;
    Ok(Instruction::Copy(Copy {
        sources,
        dest,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link")?.unwrap_or(false),
        parents: f.bool("parents")?.unwrap_or(false),
        excludes: f.strings("exclude"),
    }))
}

/// `ARG name[=default] ...`.
fn arg_instruction(node: &Node) -> Result<Instruction, ParseError> {
    flags(node, &[])?;
    let Args::List(list) = &node.args else {
        return Err(err(node, "ARG requires at least one argument"));
    };
    let mut decls = Vec::new();
    for w in list {
        let (name, default) = match w.text.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (w.text.clone(), None),
        };
        if name.is_empty() {
            return Err(ParseError::new(w.pos, "ARG names can not be blank"));
        }
        decls.push(ArgDecl { name, default });
    }
    Ok(Instruction::Arg(decls))
}

/// `ONBUILD INSTRUCTION`: any but ONBUILD, FROM and MAINTAINER.
fn onbuild_instruction(node: &Node) -> Result<Instruction, ParseError> {
    flags(node, &[])?;
    let Args::OnBuild(child) = &node.args else {
        return Err(err(node, "ONBUILD requires at least one argument"));
    };
    match child.command().as_str() {
        "onbuild" => {
            return Err(err(
                node,
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ))
        }
        c @ ("from" | "maintainer") => {
            return Err(err(
                node,
                format!(
                    "{} isn't allowed as an ONBUILD trigger",
                    c.to_ascii_uppercase()
                ),
            ))
        }
        _ => {}
    }
    let mut child = (**child).clone();
    child.heredocs = node.heredocs.clone();
    // The recorded trigger carries its heredoc bodies (and terminators),
    // so the child build parses the whole instruction.
    let mut expression = child.original.trim().to_string();
    for doc in &child.heredocs {
        expression.push('\n');
        expression.push_str(&doc.content);
        expression.push_str(&doc.name);
    }
    Ok(Instruction::Onbuild(Onbuild {
        expression,
        trigger: Box::new(parse_instruction(&child)?),
    }))
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD command`.
fn healthcheck_instruction(node: &Node) -> Result<Instruction, ParseError> {
    use Kind::*;
    let Args::Healthcheck { kind, cmd } = &node.args else {
        return Err(err(node, "HEALTHCHECK requires at least one argument")
            .with_hint("write HEALTHCHECK CMD command, or HEALTHCHECK NONE"));
    };
    Ok(match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            flags(node, &[])?;
            if !matches!(**cmd, Args::None) {
                return Err(err(node, "HEALTHCHECK NONE takes no arguments"));
            }
            Instruction::Healthcheck(Healthcheck::None)
        }
        "CMD" => {
            let f = flags(
                node,
                &[
                    ("interval", Str),
                    ("timeout", Str),
                    ("start-period", Str),
                    ("start-interval", Str),
                    ("retries", Str),
                ],
            )?;
            if matches!(**cmd, Args::None) {
                return Err(err(node, "missing command after HEALTHCHECK CMD"));
            }
            let retries = match f.values.get("retries").and_then(|v| v.last()) {
                None => None,
                Some((v, pos)) => Some(v.parse::<u32>().map_err(|_| {
                    ParseError::new(
                        *pos,
                        format!("--retries must be a whole number of 0 or more, not {v:?}"),
                    )
                })?),
            };
            Instruction::Healthcheck(Healthcheck::Cmd {
                test: command(cmd),
                interval: f.duration("interval")?,
                timeout: f.duration("timeout")?,
                start_period: f.duration("start-period")?,
                start_interval: f.duration("start-interval")?,
                retries,
            })
        }
        _ => {
            return Err(err(
                node,
                format!("unknown type {kind:?} in HEALTHCHECK (try CMD)"),
            ))
        }
    })
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// Go's `time.ParseDuration` format: `1h2m3.5s`, `300ms`, `0`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    fn unit(i: &str) -> IResult<&str, &str> {
        alt((
            tag("ns"),
            tag("us"),
            tag("µs"),
            tag("μs"),
            tag("ms"),
            tag("s"),
            tag("m"),
            tag("h"),
        ))
        .parse(i)
    }
    fn number(i: &str) -> IResult<&str, &str> {
        alt((
            recognize((digit1, opt((char('.'), digit0)))),
            recognize((char('.'), digit1)),
        ))
        .parse(i)
    }
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let (_, (sign, parts)) = all_consuming((opt(one_of("+-")), many1((number, unit))))
        .parse(s)
        .ok()?;
    if sign == Some('-') {
        return None;
    }
    let mut nanos: f64 = 0.0;
    for (n, u) in parts {
        let n: f64 = n.parse().ok()?;
        let scale = match u {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            _ => 3600e9,
        };
        nanos += n * scale;
    }
    (nanos.is_finite() && nanos < u64::MAX as f64)
        .then(|| Duration::from_nanos(nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration(""), None);
    }
}
