//! Lowering: a planned Dockerfile → the build graph plus the image config
//! the target stage ends with.
//!
//! Each stage keeps its state as BuildKit's dispatcher does: the vertex
//! holding its filesystem so far, the image config (Env, Cmd, WorkingDir,
//! ...), the history, the ARG/ENV scope and the SHELL. Filesystem
//! instructions (RUN, COPY, ADD, WORKDIR) add a vertex and a history entry
//! that owns one place in the layer stack; metadata instructions change
//! only the config and add a history entry without a layer.
//!
//! Stages are lowered on demand, starting from the target: a stage's base,
//! `COPY --from` and `RUN --mount=from=` lower the stage they name first
//! (a circle is an error), so a stage the target never reads is never
//! lowered, and every reference is resolved with its value expanded where
//! it appears. This module has the stage loop and the dispatch; the
//! instructions live in `config.rs` (metadata), `run.rs`, `mount.rs` and
//! `copy.rs`, as BuildKit's `convert_*.go` files split them.

mod config;
mod copy;
pub use copy::{git_ref, GitRef};
mod expose;
mod mount;
mod named;
pub use named::{context_key, source_name, NamedContext};
mod run;
mod source;

use crate::error::{LowerError, LowerErrorKind};
use crate::plan::{plan, Plan, Platform, Scope};
use config::{object_mut, set_env_list};
use kiln_parser::instructions::{self, Instruction, Spanned};
use kiln_parser::shell::Lexer;
use kiln_parser::{Dockerfile, Pos, Span};
use kiln_solver::{Definition, Vertex, VertexId};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const EPOCH_ARG: &str = "SOURCE_DATE_EPOCH";

/// Docker's default `PATH`, given to images built from scratch.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Options of one build that shape the graph.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<Platform>,
    /// `--label`: added to the final image's labels.
    pub labels: BTreeMap<String, String>,
    /// The invoker's `--network`, every RUN step's default (`Default` is
    /// the host's, as buildkitd without CNI).
    pub network: kiln_solver::Network,
    /// `--allow network.host`: a RUN step may ask for the host's network
    /// (`RUN --network=host`). Without it that is an error: a Dockerfile
    /// never chooses more network than the invoker allowed (BuildKit's
    /// entitlement rule).
    pub allow_host_network: bool,
    /// `--no-cache-filter`: stages (by name or index) whose steps never
    /// come from the cache.
    pub no_cache_stages: Vec<String>,
    /// `.dockerignore` patterns.
    pub ignore: Vec<String>,
    /// `--build-context NAME=...`, by name.
    pub named_contexts: BTreeMap<String, NamedContext>,
}

/// An image a stage starts from or copies from, as the store knows it.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The canonical reference, e.g. `docker.io/library/busybox:latest`.
    pub reference: String,
    pub manifest_digest: String,
    /// The image config JSON (with `config`, `history`, ...).
    pub config: Value,
}

/// Looks images up (the store, then registries).
pub trait ImageSource {
    /// The image `reference` names, for `platform` (a multi-platform
    /// image's manifest for it). A single-platform image for another
    /// platform may answer when nothing for `platform` exists, as
    /// BuildKit takes it; never silently: the lowering warns
    /// (InvalidBaseImagePlatform).
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, ImageError>;
}

/// Why an image source could not give an image; the message names the
/// reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ImageError(pub String);

/// Where a history entry's layer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerSlot {
    /// A metadata-only instruction, or an empty base image entry.
    None,
    /// A base image's entry with a layer.
    Base,
    /// A filesystem step of this build: one place in the layer stack,
    /// empty when the step changed nothing.
    Step,
}

#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The base image's entry as it was, for `LayerSlot::Base`/`None` ones.
    pub raw: Option<Value>,
    pub created_by: String,
    pub slot: LayerSlot,
}

/// What a vertex is, for progress output and error messages.
#[derive(Debug, Clone)]
pub struct StepInfo {
    /// `[build 2/4] RUN make`.
    pub label: String,
    pub span: Option<Span>,
    /// The instruction text, for error messages.
    pub text: String,
}

/// A lowered build.
#[derive(Debug, Clone)]
pub struct Lowered {
    pub definition: Definition,
    pub target: VertexId,
    /// The image config of the target stage, without `rootfs`, `created`
    /// and `history`.
    pub config: Value,
    pub history: Vec<History>,
    /// Vertices never answered from the cache (`--no-cache-filter`).
    pub no_cache: BTreeSet<VertexId>,
    pub steps: HashMap<VertexId, StepInfo>,
    /// The stages lowered (the target and what it reads), by index.
    pub stages: Vec<usize>,
    /// `SOURCE_DATE_EPOCH` from a build arg or a global ARG default.
    pub source_date_epoch: Option<i64>,
    /// RUN steps whose stage is for a platform this machine runs only
    /// under emulation, with that platform.
    pub emulated: BTreeMap<VertexId, Platform>,
    /// Check warnings only the lowering can see (InvalidBaseImagePlatform:
    /// a base image for another platform than its stage's), unfiltered by
    /// the check configuration.
    pub warnings: Vec<crate::checks::CheckWarning>,
}

impl Lowered {
    /// The graph the target needs, as canonical text (digests included):
    /// what golden tests compare and `kiln debug dump-graph` prints.
    pub fn dump_graph(&self) -> String {
        kiln_solver::dump::dump(&self.definition, self.target)
    }

    /// The image-config template with its history (each entry's
    /// `created_by` and where its layer comes from), as pretty JSON.
    pub fn dump_config(&self) -> String {
        let history: Vec<Value> = self
            .history
            .iter()
            .map(|h| {
                let layer = match h.slot {
                    LayerSlot::None => "none",
                    LayerSlot::Base => "base",
                    LayerSlot::Step => "step",
                };
                serde_json::json!({"created_by": h.created_by, "layer": layer})
            })
            .collect();
        let mut doc = self.config.clone();
        doc["history"] = Value::Array(history);
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[derive(Clone)]
struct StageState {
    fs: VertexId,
    /// The image config's `config` object.
    config: Map<String, Value>,
    history: Vec<History>,
    shell: Vec<String>,
    scope: Scope,
    cmd_set: bool,
    /// MAINTAINER: the config's top-level `author`.
    author: Option<String>,
    /// The ARGs declared so far (a stage built on another inherits its
    /// list), for RUN's history line (`RUN |2 a=1 b=2 ...`).
    declared_args: Vec<String>,
    /// What the stage is for: its FROM --platform, else its base stage's,
    /// else the build's target platform.
    platform: Platform,
}

/// The stage being lowered (saved and restored around a nested stage).
#[derive(Clone, Default)]
struct Current {
    index: usize,
    /// `build` or `stage-N` (`--no-cache-filter` matches it).
    label: String,
    /// `--no-cache-filter` names it.
    no_cache: bool,
    /// BuildKit's step numbering, `[label i/n]`: the steps are FROM an
    /// image, WORKDIR, RUN, COPY, ADD and the base's ONBUILD triggers.
    steps: usize,
    step: usize,
    /// Lowering a base image's ONBUILD trigger (labels say `ONBUILD`).
    in_trigger: bool,
    /// The stage's platform (see `StageState::platform`).
    platform: Platform,
}

struct Lowerer<'a> {
    def: Definition,
    opts: &'a Options,
    images: &'a dyn ImageSource,
    plan: Plan,
    stages: Vec<crate::Stage>,
    platform: Platform,
    lexer: Lexer,
    /// Each instruction's source text, by its span.
    node_text: HashMap<Span, String>,
    steps: HashMap<VertexId, StepInfo>,
    no_cache: BTreeSet<VertexId>,
    image_cache: HashMap<(String, String), (VertexId, ResolvedImage)>,
    emulated: BTreeMap<VertexId, Platform>,
    warnings: Vec<crate::checks::CheckWarning>,
    scratch: Option<VertexId>,
    ignore_patterns: Vec<String>,
    current: Current,
    /// Stages lowered so far, by index.
    done: HashMap<usize, StageState>,
    /// Named contexts used so far, by key.
    named_done: HashMap<String, StageState>,
    /// Stages being lowered right now, outermost first (a circle check).
    lowering: Vec<usize>,
}

fn err(pos: Pos, message: impl Into<String>) -> LowerError {
    LowerError::invalid(pos, message)
}

/// Lowers a parsed Dockerfile. `images` answers `FROM` and `--from`
/// image references.
/// `# syntax=` names the frontend image BuildKit would build with. kiln
/// is its own Dockerfile frontend and implements `docker/dockerfile`
/// (any tag or digest, and its `-upstream` builds); another frontend
/// would build something else, so it is refused rather than ignored.
fn check_syntax(df: &Dockerfile) -> Result<(), LowerError> {
    let Some(d) = df.directives.iter().find(|d| d.name == "syntax") else {
        return Ok(());
    };
    let reference = d.value.trim();
    let name = reference.split('@').next().unwrap_or_default();
    let repo = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    };
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    if matches!(repo, "docker/dockerfile" | "docker/dockerfile-upstream") {
        return Ok(());
    }
    Err(err(
        Pos::new(d.line, 1),
        format!(
            "unsupported frontend {reference:?}: kiln builds Dockerfiles with its own frontend (docker/dockerfile:1)"
        ),
    )
    .with_hint("remove the `# syntax=` line or name docker/dockerfile:1"))
}

pub fn lower(
    df: &Dockerfile,
    opts: &Options,
    images: &dyn ImageSource,
) -> Result<Lowered, LowerError> {
    check_syntax(df)?;
    let typed = instructions::parse_instructions(df)?;
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let (mut plan, stages) = plan(
        typed,
        &opts.build_args,
        opts.target.as_deref(),
        &platform,
        df.escape,
    )?;
    // SOURCE_DATE_EPOCH: a build arg, else a global ARG's default; what
    // the stages see is the resolved seconds (or nothing).
    let epoch_value = opts
        .build_args
        .get(EPOCH_ARG)
        .or_else(|| plan.global_args.get(EPOCH_ARG))
        .cloned();
    let source_date_epoch = match &epoch_value {
        Some(v) => crate::epoch::resolve(v, &stages).map_err(|m| err(Pos::new(1, 1), m))?,
        None => None,
    };
    let adjusted;
    let opts = if epoch_value.is_some() {
        let mut o = opts.clone();
        match source_date_epoch {
            Some(s) => {
                o.build_args.insert(EPOCH_ARG.into(), s.to_string());
                plan.global_args.insert(EPOCH_ARG.into(), s.to_string());
            }
            None => {
                o.build_args.remove(EPOCH_ARG);
                plan.global_args.remove(EPOCH_ARG);
            }
        }
        adjusted = o;
        &adjusted
    } else {
        opts
    };
    let mut l = Lowerer {
        def: Definition::new(),
        opts,
        images,
        plan,
        stages,
        platform,
        lexer: Lexer::new(df.escape),
        node_text: df
            .instructions
            .iter()
            .map(|n| (n.span, n.original.clone()))
            .collect(),
        steps: HashMap::new(),
        no_cache: BTreeSet::new(),
        image_cache: HashMap::new(),
        emulated: BTreeMap::new(),
        warnings: Vec::new(),
        scratch: None,
        ignore_patterns: opts.ignore.clone(),
        current: Current::default(),
        done: HashMap::new(),
        named_done: HashMap::new(),
        lowering: Vec::new(),
    };
    let target = l.plan.target;
    let pos = l.stages[target].from.span.start;
    l.stage(target, pos)?;
    let final_state = l.done.remove(&target).expect("the target was lowered");
    let mut built: Vec<usize> = l.done.keys().copied().chain([target]).collect();
    built.sort();
    let mut config = final_state.config;
    if !opts.labels.is_empty() {
        let labels = object_mut(&mut config, "Labels");
        for (k, v) in &opts.labels {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
    }
    // `created` and `history` are the exporter's: they depend on the result.
    // The target stage's platform (its FROM --platform, else the build's).
    let mut image_config = json!({
        "architecture": final_state.platform.arch,
        "os": final_state.platform.os,
        "config": Value::Object(config),
    });
    if let Some(author) = &final_state.author {
        image_config["author"] = Value::String(author.clone());
    }
    if !final_state.platform.variant.is_empty() {
        image_config["variant"] = Value::String(final_state.platform.variant.clone());
    }
    Ok(Lowered {
        definition: l.def,
        target: final_state.fs,
        config: image_config,
        history: final_state.history,
        no_cache: l.no_cache,
        steps: l.steps,
        stages: built,
        source_date_epoch,
        emulated: l.emulated,
        warnings: l.warnings,
    })
}

impl Lowerer<'_> {
    fn add(&mut self, vertex: Vertex, info: StepInfo) -> Result<VertexId, LowerError> {
        let pos = info.span.map_or(Pos::new(1, 1), |s| s.start);
        let id = self
            .def
            .add(vertex)
            .map_err(|e| err(pos, format!("internal error: {e}")))?;
        if self.current.no_cache {
            self.no_cache.insert(id);
        }
        self.steps.insert(id, info);
        Ok(id)
    }

    /// The final filesystem of stage `index`, lowering it first if
    /// needed; `pos` is where it was asked for (for a circle's error).
    /// Stage `index` was reached again while being lowered: the stages
    /// from it to the top of the stack are a circle, named (as BuildKit
    /// names it) by its first stage in file order.
    fn cycle_error(&self, index: usize, pos: Pos) -> LowerError {
        let from = self.lowering.iter().position(|&i| i == index).unwrap_or(0);
        let first = self.lowering[from..].iter().copied().min().unwrap_or(index);
        let stage = self.plan.stages[first]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{index}"));
        LowerError {
            pos,
            kind: LowerErrorKind::Cycle { stage },
            hint: None,
        }
    }

    fn stage(&mut self, index: usize, pos: Pos) -> Result<VertexId, LowerError> {
        if let Some(done) = self.done.get(&index) {
            return Ok(done.fs);
        }
        if self.lowering.contains(&index) {
            return Err(self.cycle_error(index, pos));
        }
        // A named context for the stage's own name replaces the stage.
        if let Some((key, context)) = self.plan.stages[index]
            .name
            .clone()
            .and_then(|n| self.named_context(&n))
        {
            let span = self.stages[index].from.span;
            let state = self.named_state(&key, &context, span)?;
            let fs = state.fs;
            self.done.insert(index, state);
            return Ok(fs);
        }
        self.lowering.push(index);
        let label = self.plan.stages[index]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{index}"));
        let no_cache = self
            .opts
            .no_cache_stages
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&label) || s.parse::<usize>() == Ok(index));
        let platform = self.stage_platform(index, pos)?;
        let outer = std::mem::replace(
            &mut self.current,
            Current {
                index,
                label,
                no_cache,
                steps: 0,
                step: 0,
                in_trigger: false,
                platform,
            },
        );
        let result = self.lower_stage(index);
        self.current = outer;
        self.lowering.pop();
        let state = result?;
        let fs = state.fs;
        self.done.insert(index, state);
        Ok(fs)
    }

    /// Stage `index`'s platform: its FROM --platform, else its base
    /// stage's (lowered first), else the build's.
    fn stage_platform(&mut self, index: usize, pos: Pos) -> Result<Platform, LowerError> {
        let sp = self.plan.stages[index].clone();
        if let Some(p) = &sp.platform {
            let at = self.stages[index].from.span.start;
            return Platform::parse(p).map_err(|e| err(at, format!("FROM --platform: {e}")));
        }
        if let crate::plan::Base::Stage(i) = sp.base {
            self.stage(i, pos)?;
            return Ok(self.done[&i].platform.clone());
        }
        Ok(self.platform.clone())
    }

    fn lower_stage(&mut self, index: usize) -> Result<StageState, LowerError> {
        let sp = self.plan.stages[index].clone();
        let stage = self.stages[index].clone();
        let from_span = stage.from.span;
        let mut onbuild: Vec<String> = Vec::new();
        let mut state = self.base_state(&sp.base, from_span)?;
        state.platform = self.current.platform.clone();
        if let Some(triggers) = state
            .config
            .remove("OnBuild")
            .and_then(|v| v.as_array().cloned())
        {
            onbuild = triggers
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
        }
        // ONBUILD triggers of the base image run first, as if written
        // right after FROM.
        let mut triggers = Vec::new();
        for trigger in onbuild {
            let parsed = kiln_parser::parse(&trigger).map_err(|e| {
                err(
                    from_span.start,
                    format!(
                        "ONBUILD trigger {trigger:?} of the base image: {}",
                        e.message
                    ),
                )
            })?;
            let typed = instructions::parse_instructions(&parsed).map_err(|e| {
                err(
                    from_span.start,
                    format!(
                        "ONBUILD trigger {trigger:?} of the base image: {}",
                        e.message
                    ),
                )
            })?;
            for ins in typed {
                let ins = Spanned {
                    span: from_span,
                    inner: ins.inner,
                };
                triggers.push((ins, trigger.clone()));
            }
        }
        let numbered = |i: &Instruction| {
            matches!(
                i,
                Instruction::Workdir(_)
                    | Instruction::Run(_)
                    | Instruction::Copy(_)
                    | Instruction::Add(_)
            )
        };
        self.current.steps = usize::from(matches!(sp.base, crate::plan::Base::Image(_)))
            + triggers.len()
            + stage
                .instructions
                .iter()
                .filter(|i| numbered(&i.inner))
                .count();
        self.current.step = usize::from(matches!(sp.base, crate::plan::Base::Image(_)));
        if self.current.step == 1 {
            self.label_from(state.fs);
        }
        self.current.in_trigger = true;
        for (ins, trigger) in &triggers {
            self.instruction(&mut state, ins, trigger)?;
        }
        self.current.in_trigger = false;
        for ins in &stage.instructions {
            let text = self.text_of(ins.span);
            self.instruction(&mut state, ins, &text)?;
        }
        set_env_list(&mut state.config, state.scope.env());
        Ok(state)
    }

    /// The instruction's source text (its logical line).
    fn text_of(&self, span: Span) -> String {
        self.node_text.get(&span).cloned().unwrap_or_default()
    }

    fn expand(&self, word: &str, state: &StageState, pos: Pos) -> Result<String, LowerError> {
        self.lexer
            .process_word(word, &state.scope)
            .map_err(|e| err(pos, format!("{}: {e}", abbreviate(word))))
    }

    fn workdir(state: &StageState) -> String {
        state
            .config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    fn history(state: &mut StageState, created_by: String, slot: LayerSlot) {
        state.history.push(History {
            raw: None,
            created_by,
            slot,
        });
    }

    /// A base image's progress label, once the stage's step count is
    /// known: BuildKit's `[build 1/4] FROM docker.io/library/x:1@sha256:…`
    /// (an image several stages share keeps its first stage's).
    fn label_from(&mut self, image: VertexId) {
        let kiln_solver::Op::Source(kiln_solver::Source::Image {
            reference,
            manifest_digest,
        }) = &self.def.vertex(image).op
        else {
            return;
        };
        let c = &self.current;
        let name = if self.plan.stages.len() > 1 {
            format!("{} ", c.label)
        } else {
            String::new()
        };
        let width = c.steps.to_string().len();
        let label = format!(
            "[{name}{:>width$}/{}] FROM {reference}@{manifest_digest}",
            1, c.steps
        );
        if let Some(info) = self.steps.get_mut(&image) {
            if info.label.starts_with("[internal] load ") {
                info.label = label;
            }
        }
    }

    /// The next step's progress label, numbered as BuildKit numbers it:
    /// `[build 2/4] RUN make` (no stage name when there is one stage).
    fn label(&mut self, state: &StageState, text: &str) -> String {
        self.label_masking(state, text, &[])
    }

    /// [`Lowerer::label`], showing the variables in `masked` (secrets
    /// mounted as `env=`) as `****`, as BuildKit does.
    fn label_masking(&mut self, state: &StageState, text: &str, masked: &[String]) -> String {
        let scope = Masked {
            scope: &state.scope,
            masked,
        };
        let text = display_text(text, &scope, self.plan.escape);
        let c = &mut self.current;
        c.step += 1;
        let width = c.steps.to_string().len();
        let name = if self.plan.stages.len() > 1 {
            format!("{} ", c.label)
        } else {
            String::new()
        };
        let onbuild = if c.in_trigger { "ONBUILD " } else { "" };
        format!(
            "[{name}{:>width$}/{}] {onbuild}{}",
            c.step,
            c.steps,
            text.trim()
        )
    }

    fn instruction(
        &mut self,
        state: &mut StageState,
        ins: &Spanned<Instruction>,
        text: &str,
    ) -> Result<(), LowerError> {
        let pos = ins.span.start;
        match &ins.inner {
            Instruction::From(_) => unreachable!("FROM starts a stage"),
            Instruction::Arg(decls) => self.arg(state, decls, pos)?,
            Instruction::Env(pairs) => self.env(state, pairs, text, pos)?,
            Instruction::Label(pairs) => self.labels(state, pairs, text, pos)?,
            Instruction::Maintainer(m) => Self::maintainer(state, m, text),
            Instruction::Expose(ports) => self.expose(state, ports, pos)?,
            Instruction::Volume(vols) => self.volume(state, vols, text, pos)?,
            Instruction::User(u) => self.user(state, u, text, pos)?,
            Instruction::StopSignal(s) => self.stop_signal(state, s, text, pos)?,
            Instruction::Shell(shell) => Self::shell(state, shell, text),
            Instruction::Cmd(c) => Self::cmd(state, c),
            Instruction::Entrypoint(c) => Self::entrypoint(state, c),
            Instruction::Healthcheck(h) => Self::healthcheck(state, h, text),
            Instruction::Onbuild(o) => Self::onbuild(state, &o.expression, text),
            Instruction::Workdir(w) => self.workdir_instruction(state, ins.span, w, text)?,
            Instruction::Run(run) => self.run(state, ins.span, run, text)?,
            Instruction::Copy(c) => self.copy(state, ins.span, copy::CopyArgs::copy(c), text)?,
            Instruction::Add(a) => self.copy(state, ins.span, copy::CopyArgs::add(a), text)?,
        }
        Ok(())
    }
}

/// An instruction as progress shows it (BuildKit's `processCmdEnv` and
/// `uppercaseCmd`): the keyword upper-cased, the stage's variables
/// substituted with quotes kept and unset ones left as written.
fn display_text(text: &str, scope: &dyn kiln_parser::shell::Env, escape: char) -> String {
    let text = text.trim();
    let (keyword, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let lexer = Lexer {
        raw_quotes: true,
        skip_unset_env: true,
        ..Lexer::new(escape)
    };
    let rest = lexer
        .process_word(rest, scope)
        .unwrap_or_else(|_| rest.to_string());
    if rest.is_empty() {
        keyword.to_ascii_uppercase()
    } else {
        format!("{} {rest}", keyword.to_ascii_uppercase())
    }
}

/// A stage's variables with some hidden (secret env names).
struct Masked<'a> {
    scope: &'a Scope,
    masked: &'a [String],
}

impl kiln_parser::shell::Env for Masked<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        if self.masked.iter().any(|m| m == name) {
            Some("****")
        } else {
            self.scope.get(name)
        }
    }
}

/// A word for an error message: whole when short, else its start (an
/// untrusted Dockerfile's 100 kB word should not fill the terminal).
fn abbreviate(word: &str) -> String {
    const MAX: usize = 60;
    match word.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &word[..at]),
        None => word.to_string(),
    }
}

#[cfg(test)]
mod tests;
