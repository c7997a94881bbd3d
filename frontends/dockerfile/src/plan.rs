//! Stages and their scope, as BuildKit resolves them before lowering:
//!
//! - global `ARG`s (before the first `FROM`) are usable in `FROM` lines;
//!   inside a stage an ARG must be declared again to be visible (`ARG X`
//!   takes the global value);
//! - `--build-arg` overrides a declared default; undeclared build args are
//!   ignored (BuildKit warns), except the predefined proxy args;
//! - the platform ARGs (`TARGETPLATFORM`, `BUILDARCH`, ...) are predefined
//!   in the global scope;
//! - `ENV` wins over an `ARG` of the same name for expansion;
//! - `FROM name` names an earlier stage (case-insensitive) or an image;
//!   `COPY --from` takes a stage name, a stage index or an image;
//! - the target is `--target`, else the last stage.
//!
//! Which stages a build needs is found by lowering itself (`lower.rs`):
//! it lowers the target and, on demand, every stage it reads from (its
//! base, `COPY --from`, `RUN --mount=from=`, ONBUILD triggers), with each
//! value expanded in the scope where it appears. So there is one place
//! that knows a stage's dependencies, and unused stages are never lowered.

use crate::split_stages;
use kiln_parser::instructions::{Instruction, Spanned};
use kiln_parser::shell::Lexer;
use kiln_parser::{ParseError, Pos};
use std::collections::{BTreeMap, HashMap};

/// The proxy args: passed to RUN, kept out of the image and cache keys.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Where a stage starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    Image(String),
    Stage(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    pub index: usize,
    pub name: Option<String>,
    pub base: Base,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<StagePlan>,
    pub target: usize,
    /// Values of the global ARGs (after --build-arg), for the stages to
    /// re-declare.
    pub global_args: BTreeMap<String, String>,
    /// BuildKit's predefined args (TARGETPLATFORM..., BUILDPLATFORM...,
    /// TARGETSTAGE): in the global scope, and in a stage once declared.
    pub predefined: Vec<(String, String)>,
    /// The Dockerfile's escape character (`# escape=`).
    pub escape: char,
}

/// Why a platform string (`linux/amd64`) is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlatformError(pub String);

/// Platform values for the predefined ARGs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: String,
}

impl Platform {
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: String::new(),
        }
    }

    /// `os/arch[/variant]`, as BuildKit's platform parser accepts it
    /// (lower-case; `x86_64` and `aarch64` are the usual aliases).
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        const OSES: [&str; 8] = [
            "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos",
        ];
        const ARCHES: [&str; 12] = [
            "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le",
            "mips64", "mipsle", "loong64",
        ];
        let lower = s.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, ""),
            [os, arch, variant] => (*os, *arch, *variant),
            _ => return Err(PlatformError(format!("{s:?}: expected OS/ARCH[/VARIANT]"))),
        };
        let arch = match arch {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        if !OSES.contains(&os) {
            return Err(PlatformError(format!(
                "{s:?}: unknown operating system {os:?}"
            )));
        }
        if !ARCHES.contains(&arch) {
            return Err(PlatformError(format!(
                "{s:?}: unknown architecture {arch:?}"
            )));
        }
        // containerd's normalization: arm means arm/v7, arm64/v8 is arm64.
        let variant = match (arch, variant) {
            ("arm", "") => "v7",
            ("arm64", "v8") => "",
            (_, v) => v,
        };
        Ok(Platform {
            os: os.into(),
            arch: arch.into(),
            variant: variant.into(),
        })
    }

    /// Whether programs of this platform run here without emulation.
    pub fn is_host(&self) -> bool {
        let host = Platform::host();
        self.os == host.os && self.arch == host.arch
    }

    /// `os/arch[/variant]`.
    pub fn name(&self) -> String {
        if self.variant.is_empty() {
            format!("{}/{}", self.os, self.arch)
        } else {
            format!("{}/{}/{}", self.os, self.arch, self.variant)
        }
    }

    fn args(&self, prefix: &str) -> Vec<(String, String)> {
        vec![
            (format!("{prefix}PLATFORM"), self.name()),
            (format!("{prefix}OS"), self.os.clone()),
            (format!("{prefix}ARCH"), self.arch.clone()),
            (format!("{prefix}VARIANT"), self.variant.clone()),
        ]
    }
}

fn err(pos: Pos, message: impl Into<String>) -> ParseError {
    ParseError::new(pos, message)
}

/// Resolves stages, their names and bases, the global ARGs and the
/// target. `escape` is the Dockerfile's escape character.
pub fn plan(
    instructions: Vec<Spanned<Instruction>>,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    platform: &Platform,
    escape: char,
) -> Result<(Plan, Vec<crate::Stage>), ParseError> {
    let (globals, stages) = split_stages(instructions);
    if stages.is_empty() {
        let pos = globals
            .first()
            .map(|g| g.span.start)
            .unwrap_or(Pos::new(1, 1));
        return Err(err(pos, "dockerfile contains no stages to build")
            .with_hint("a Dockerfile needs at least one FROM instruction"));
    }
    let lexer = Lexer::new(escape);
    // TARGETSTAGE: the --target, else the last stage's name, else
    // "default" (BuildKit's predefined arg).
    let last_name = match &stages[stages.len() - 1].from.inner {
        Instruction::From(f) => f.stage_name.clone(),
        _ => None,
    };
    let target_stage = target
        .map(str::to_string)
        .or(last_name)
        .unwrap_or_else(|| "default".into());
    let mut predefined = platform.args("TARGET");
    // BUILD*: the machine building (steps for the target run emulated).
    predefined.extend(Platform::host().args("BUILD"));
    predefined.push(("TARGETSTAGE".into(), target_stage));
    let (global, global_args) = global_scope(&globals, build_args, &predefined, &lexer)?;
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut plans: Vec<StagePlan> = Vec::new();
    for (index, stage) in stages.iter().enumerate() {
        let plan = stage_plan(index, stage, &global, &names, &lexer)?;
        if let Some(name) = &plan.name {
            if names.insert(name.clone(), index).is_some() {
                return Err(err(
                    stage.from.span.start,
                    format!("duplicate stage name {name:?}"),
                ));
            }
        }
        plans.push(plan);
    }
    let target = match target {
        None => plans.len() - 1,
        Some(t) => find_target(&names, t)?,
    };
    Ok((
        Plan {
            stages: plans,
            target,
            global_args,
            predefined,
            escape,
        },
        stages,
    ))
}

/// Variables in the order they were set.
type GlobalScope = Vec<(String, String)>;

/// The global scope: the predefined platform args, then the ARGs before
/// the first FROM (build args win over their defaults). Also returns the
/// global ARGs alone, for stages that redeclare them.
fn global_scope(
    globals: &[Spanned<Instruction>],
    build_args: &BTreeMap<String, String>,
    predefined: &[(String, String)],
    lexer: &Lexer,
) -> Result<(GlobalScope, BTreeMap<String, String>), ParseError> {
    let mut global: Vec<(String, String)> = predefined.to_vec();
    let mut global_args = BTreeMap::new();
    for g in globals {
        let Instruction::Arg(decls) = &g.inner else {
            return Err(err(g.span.start, "only ARG may come before the first FROM"));
        };
        for d in decls {
            let value = match (build_args.get(&d.name), &d.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => Some(
                    lexer
                        .process_word(default, &global)
                        .map_err(|e| err(g.span.start, format!("ARG {}: {e}", d.name)))?,
                ),
                (None, None) => None,
            };
            if let Some(v) = value {
                global.push((d.name.clone(), v.clone()));
                global_args.insert(d.name.clone(), v);
            }
        }
    }
    Ok((global, global_args))
}

/// One stage's FROM, expanded in the global scope: its base (scratch, an
/// earlier stage named in `names`, or an image) and `--platform`.
fn stage_plan(
    index: usize,
    stage: &crate::Stage,
    global: &dyn kiln_parser::shell::Env,
    names: &BTreeMap<String, usize>,
    lexer: &Lexer,
) -> Result<StagePlan, ParseError> {
    let Instruction::From(from) = &stage.from.inner else {
        unreachable!("stages start with FROM")
    };
    let pos = stage.from.span.start;
    let image = lexer
        .process_word(&from.image, global)
        .map_err(|e| err(pos, format!("FROM {}: {e}", from.image)))?;
    if image.is_empty() {
        return Err(err(
            pos,
            format!("FROM {}: the image name expands to nothing", from.image),
        )
        .with_hint("give the ARG a default or pass --build-arg"));
    }
    let platform_flag = from
        .platform
        .as_ref()
        .map(|p| lexer.process_word(p, global))
        .transpose()
        .map_err(|e| err(pos, format!("FROM --platform: {e}")))?;
    if let Some(p) = &platform_flag {
        Platform::parse(p).map_err(|e| err(pos, format!("FROM --platform: {e}")))?;
    }
    let base = if image.eq_ignore_ascii_case("scratch") {
        Base::Scratch
    } else if let Some(&i) = names.get(&image.to_ascii_lowercase()) {
        Base::Stage(i)
    } else {
        Base::Image(image)
    };
    Ok(StagePlan {
        index,
        name: from.stage_name.clone(),
        base,
        platform: platform_flag,
    })
}

/// `--target`: a stage by name (case-insensitive).
fn find_target(names: &BTreeMap<String, usize>, target: &str) -> Result<usize, ParseError> {
    names
        .get(&target.to_ascii_lowercase())
        .copied()
        .ok_or_else(|| {
            let known: Vec<&str> = names.keys().map(String::as_str).collect();
            let suggestion = kiln_parser::suggest::closest(target, &known)
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            err(
                Pos::new(1, 1),
                format!("target stage {target:?} could not be found{suggestion}"),
            )
            .with_hint(format!(
                "stages: {}",
                if known.is_empty() {
                    "(none named)".into()
                } else {
                    known.join(", ")
                }
            ))
        })
}

/// What `--from=` names: a stage by name (case-insensitive, any stage:
/// the caller refuses a later one with BuildKit's wording) or by index,
/// else (`None`) an image.
pub(crate) fn resolve_ref(from: &str, stages: &[StagePlan]) -> Result<Option<usize>, String> {
    let by_name = stages.iter().position(|s| {
        s.name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(from))
    });
    if let Some(i) = by_name {
        return Ok(Some(i));
    }
    if let Ok(i) = from.parse::<usize>() {
        if i >= stages.len() {
            return Err(format!("invalid stage index {i}"));
        }
        return Ok(Some(i));
    }
    Ok(None)
}

/// Variables in the order they were first set; setting one again
/// replaces its value in place (so an inherited `PATH` stays first, as in
/// BuildKit's config `Env`). Lookups are by hash: a stage with 10,000 ENV
/// lines stays linear.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    items: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Vars {
    pub fn from_list(list: Vec<(String, String)>) -> Vars {
        let mut v = Vars::default();
        for (k, val) in list {
            v.set(&k, val);
        }
        v
    }

    pub fn set(&mut self, name: &str, value: String) {
        match self.index.get(name) {
            Some(&i) => self.items[i].1 = value,
            None => {
                self.index.insert(name.to_string(), self.items.len());
                self.items.push((name.to_string(), value));
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.items[i].1.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn as_slice(&self) -> &[(String, String)] {
        &self.items
    }
}

/// The variables visible at one point of a stage: ARGs declared so far
/// (with build-arg overrides), then ENV, which wins.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    args: Vars,
    env: Vars,
}

impl kiln_parser::shell::Env for Scope {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.env.get(name).or_else(|| self.args.get(name))
    }
}

impl Scope {
    /// A stage's starting scope: the base stage's (or image's) ENV.
    pub fn new(env: Vec<(String, String)>) -> Scope {
        Scope {
            args: Vars::default(),
            env: Vars::from_list(env),
        }
    }

    /// `ARG name[=default]` inside a stage.
    pub fn declare_arg(
        &mut self,
        name: &str,
        default: Option<&str>,
        build_args: &BTreeMap<String, String>,
        plan: &Plan,
    ) -> Result<(), String> {
        let value = if let Some(v) = build_args.get(name) {
            Some(v.clone())
        } else if let Some(d) = default {
            Some(
                Lexer::new(plan.escape)
                    .process_word(d, self)
                    .map_err(|e| format!("ARG {name}: {e}"))?,
            )
        } else if let Some(v) = plan.global_args.get(name) {
            Some(v.clone())
        } else {
            plan.predefined
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if let Some(v) = value {
            self.args.set(name, v);
        }
        Ok(())
    }

    pub fn set_env(&mut self, name: &str, value: String) {
        self.env.set(name, value);
    }

    /// For tests and `--explain`: every visible variable (ENV shadowing ARG).
    /// An ARG's value in this stage, if it has one.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args.get(name)
    }

    /// What `$name` expands to (ENV shadows ARG).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.env.get(name).or_else(|| self.args.get(name))
    }

    pub fn vars(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .args
            .as_slice()
            .iter()
            .filter(|(k, _)| !self.env.contains(k))
            .cloned()
            .collect();
        out.extend(self.env.as_slice().iter().cloned());
        out
    }

    /// The environment a RUN sees: ENV plus declared ARGs not shadowed by
    /// ENV (ARGs are not saved in the image).
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out = self.env.as_slice().to_vec();
        for (k, v) in self.args.as_slice() {
            if !self.env.contains(k) {
                out.push((k.clone(), v.clone()));
            }
        }
        out
    }

    pub fn env(&self) -> &[(String, String)] {
        self.env.as_slice()
    }

    /// Whether ENV (not only an ARG) sets `name`.
    pub fn env_has(&self, name: &str) -> bool {
        self.env.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Vec<Spanned<Instruction>> {
        let df = kiln_parser::parse(src).unwrap();
        kiln_parser::instructions::parse_instructions(&df).unwrap()
    }

    fn args(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn host() -> Platform {
        Platform {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: String::new(),
        }
    }

    #[test]
    fn stages_targets_and_needed() {
        let src = "ARG BASE=busybox\nFROM ${BASE} AS build\nRUN make\nFROM build AS test\nRUN test\nFROM scratch AS unused\nFROM alpine\nCOPY --from=build /out /out\nCOPY --from=0 /x /x\nCOPY --from=nginx:latest /etc/nginx /etc/nginx\n";
        let (p, stages) = plan(parse(src), &BTreeMap::new(), None, &host(), '\\').unwrap();
        assert_eq!(stages.len(), 4);
        assert_eq!(p.stages[0].base, Base::Image("busybox".into()));
        assert_eq!(p.stages[1].base, Base::Stage(0));
        assert_eq!(p.stages[2].base, Base::Scratch);
        assert_eq!(p.target, 3);
        let (p, _) = plan(
            parse(src),
            &args(&[("BASE", "debian")]),
            Some("TEST"),
            &host(),
            '\\',
        )
        .unwrap();
        assert_eq!(p.stages[0].base, Base::Image("debian".into()));
        assert_eq!(p.target, 1);
    }

    #[test]
    fn from_platform_must_be_a_platform() {
        let e = plan(
            parse("FROM --platform=foo/bar busybox\n"),
            &BTreeMap::new(),
            None,
            &host(),
            '\\',
        )
        .unwrap_err();
        assert!(
            e.message.contains("unknown operating system \"foo\""),
            "{e:?}"
        );
        // Another platform is a stage for it (built under emulation).
        let (p, _) = plan(
            parse("FROM --platform=linux/arm64 busybox\n"),
            &BTreeMap::new(),
            None,
            &host(),
            '\\',
        )
        .unwrap();
        assert_eq!(p.stages[0].platform.as_deref(), Some("linux/arm64"));
        assert!(plan(
            parse("FROM --platform=linux/x86_64 busybox\n"),
            &BTreeMap::new(),
            None,
            &host(),
            '\\'
        )
        .is_ok());
    }

    #[test]
    fn platform_args_in_from_and_errors() {
        let (p, _) = plan(
            parse("FROM --platform=$BUILDPLATFORM img-$TARGETARCH\n"),
            &BTreeMap::new(),
            None,
            &host(),
            '\\',
        )
        .unwrap();
        assert_eq!(p.stages[0].base, Base::Image("img-amd64".into()));
        assert_eq!(p.stages[0].platform.as_deref(), Some("linux/amd64"));
        let e = plan(
            parse("ARG IMG\nFROM $IMG\n"),
            &BTreeMap::new(),
            None,
            &host(),
            '\\',
        )
        .unwrap_err();
        assert!(e.message.contains("expands to nothing"), "{}", e.message);
        let e = plan(
            parse("FROM a AS x\nFROM b\n"),
            &BTreeMap::new(),
            Some("nope"),
            &host(),
            '\\',
        )
        .unwrap_err();
        assert!(e.message.contains("\"nope\" could not be found"));
        let e = plan(
            parse("FROM a AS x\nFROM b AS x\n"),
            &BTreeMap::new(),
            None,
            &host(),
            '\\',
        )
        .unwrap_err();
        assert!(e.message.contains("duplicate stage name"));
        let e = plan(
            parse("ENV A=1\nFROM a\n"),
            &BTreeMap::new(),
            None,
            &host(),
            '\\',
        )
        .unwrap_err();
        assert!(e.message.contains("only ARG"));
    }

    #[test]
    fn arg_and_env_scoping() {
        let src = "ARG V=global\nFROM a\n";
        let (p, _) = plan(parse(src), &BTreeMap::new(), None, &host(), '\\').unwrap();
        let mut s = Scope::new(vec![("PATH".into(), "/bin".into())]);
        // A global ARG is invisible until re-declared.
        assert!(!s.vars().iter().any(|(k, _)| k == "V"));
        s.declare_arg("V", None, &BTreeMap::new(), &p).unwrap();
        assert!(s.vars().contains(&("V".into(), "global".into())));
        // --build-arg beats a default; ENV beats ARG.
        s.declare_arg("W", Some("default-$V"), &args(&[("W", "from-cli")]), &p)
            .unwrap();
        s.declare_arg("X", Some("x-$V"), &BTreeMap::new(), &p)
            .unwrap();
        assert!(s.vars().contains(&("X".into(), "x-global".into())));
        s.set_env("W", "from-env".into());
        let w: Vec<_> = s.vars().into_iter().filter(|(k, _)| k == "W").collect();
        assert_eq!(w.last().unwrap().1, "from-env");
        assert!(s.run_env().contains(&("W".into(), "from-env".into())));
        assert!(
            s.run_env().contains(&("X".into(), "x-global".into())),
            "ARGs reach RUN"
        );
        assert_eq!(s.env().len(), 2, "but only ENV is saved in the image");
        // Predefined platform args need declaring in a stage too.
        s.declare_arg("TARGETOS", None, &BTreeMap::new(), &p)
            .unwrap();
        assert!(s.vars().contains(&("TARGETOS".into(), "linux".into())));
    }
}
