//! Lowering: a planned Dockerfile → the build graph plus the image config
//! the target stage ends with.
//!
//! Each stage keeps its state as BuildKit's dispatcher does: the vertex
//! holding its filesystem so far, the image config (Env, Cmd, WorkingDir,
//! ...), the history, the ARG/ENV scope and the SHELL. Filesystem
//! instructions (RUN, COPY, ADD, WORKDIR) add a vertex and a history entry
//! that owns one place in the layer stack; metadata instructions change
//! only the config and add a history entry without a layer.

use crate::plan::{plan, Base, Plan, Platform, Scope, PROXY_ARGS};
use kiln_parser::instructions::{
    self, Command, Healthcheck, Instruction, Source as CopySource, Spanned,
};
use kiln_parser::shell::Lexer;
use kiln_parser::{Dockerfile, Heredoc, ParseError, Pos, Span};
use kiln_solver::{Definition, Exec, ExecMount, FileOp, MountKind, Op, Source, Vertex, VertexId};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    /// `--network` default for RUN: `default` (host), `host` or `none`.
    pub network: String,
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

/// Looks images up (in the store; later in registries).
pub trait ImageSource {
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, String>;
}

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
#[derive(Debug)]
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
}

struct Lowerer<'a> {
    def: Definition,
    opts: &'a Options,
    images: &'a dyn ImageSource,
    plan: Plan,
    platform: Platform,
    lexer: Lexer,
    /// Each instruction's source text, by its span.
    node_text: HashMap<Span, String>,
    steps: HashMap<VertexId, StepInfo>,
    no_cache: BTreeSet<VertexId>,
    image_cache: HashMap<String, (VertexId, ResolvedImage)>,
    scratch: Option<VertexId>,
    ignore_patterns: Vec<String>,
    /// The stage being lowered: its label and whether it skips the cache.
    stage_label: String,
    stage_index: usize,
    stage_no_cache: bool,
    /// The final filesystem of each stage lowered so far.
    stage_fs: HashMap<usize, VertexId>,
}

fn err(pos: Pos, message: impl Into<String>) -> ParseError {
    ParseError::new(pos, message)
}

/// `path.Join` + `path.Clean` for absolute slash paths.
pub fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn join_workdir(workdir: &str, p: &str) -> String {
    if p.starts_with('/') {
        clean_abs(p)
    } else {
        clean_abs(&format!("{workdir}/{p}"))
    }
}

fn env_list(config: &Map<String, Value>) -> Vec<(String, String)> {
    config
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv.to_string(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn set_env_list(config: &mut Map<String, Value>, env: &[(String, String)]) {
    config.insert(
        "Env".into(),
        Value::Array(
            env.iter()
                .map(|(k, v)| Value::String(format!("{k}={v}")))
                .collect(),
        ),
    );
}

/// The config's object under `key`, created (or replacing a non-object).
fn object_mut<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = config
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().expect("made an object above")
}

fn json_strs(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

fn go_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Lowers a parsed Dockerfile. `images` answers `FROM` and `COPY --from`
/// image references.
pub fn lower(
    df: &Dockerfile,
    opts: &Options,
    images: &dyn ImageSource,
) -> Result<Lowered, ParseError> {
    let typed = instructions::parse_instructions(df)?;
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let (plan, stages) = plan(typed, &opts.build_args, opts.target.as_deref(), &platform)?;
    let mut l = Lowerer {
        def: Definition::new(),
        opts,
        images,
        plan,
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
        scratch: None,
        ignore_patterns: opts.ignore.clone(),
        stage_label: String::new(),
        stage_index: 0,
        stage_no_cache: false,
        stage_fs: HashMap::new(),
    };
    let mut states: BTreeMap<usize, StageState> = BTreeMap::new();
    for &i in &l.plan.needed.clone() {
        let stage = &stages[i];
        let state = l.lower_stage(i, stage, &states)?;
        l.stage_fs.insert(i, state.fs);
        states.insert(i, state);
    }
    let target = l.plan.target;
    let final_state = states.remove(&target).expect("the target was lowered");
    let mut config = final_state.config;
    if !opts.labels.is_empty() {
        let labels = object_mut(&mut config, "Labels");
        for (k, v) in &opts.labels {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
    }
    // `created` and `history` are the exporter's: they depend on the result.
    let mut image_config = json!({
        "architecture": l.platform.arch,
        "os": l.platform.os,
        "config": Value::Object(config),
    });
    if let Some(author) = &final_state.author {
        image_config["author"] = Value::String(author.clone());
    }
    if !l.platform.variant.is_empty() {
        image_config["variant"] = Value::String(l.platform.variant.clone());
    }
    Ok(Lowered {
        definition: l.def,
        target: final_state.fs,
        config: image_config,
        history: final_state.history,
        no_cache: l.no_cache,
        steps: l.steps,
    })
}

impl Lowerer<'_> {
    fn add(&mut self, vertex: Vertex, info: StepInfo) -> Result<VertexId, ParseError> {
        let pos = info.span.map_or(Pos::new(1, 1), |s| s.start);
        let id = self
            .def
            .add(vertex)
            .map_err(|e| err(pos, format!("internal error: {e}")))?;
        if self.stage_no_cache {
            self.no_cache.insert(id);
        }
        self.steps.insert(id, info);
        Ok(id)
    }

    fn scratch(&mut self) -> Result<VertexId, ParseError> {
        if let Some(s) = self.scratch {
            return Ok(s);
        }
        let id = self.add(
            Vertex {
                op: Op::Source(Source::Scratch),
                inputs: vec![],
                name: "scratch".into(),
            },
            StepInfo {
                label: "[internal] scratch".into(),
                span: None,
                text: String::new(),
            },
        )?;
        self.scratch = Some(id);
        Ok(id)
    }

    fn image(
        &mut self,
        reference: &str,
        span: Span,
    ) -> Result<(VertexId, ResolvedImage), ParseError> {
        if let Some(hit) = self.image_cache.get(reference) {
            return Ok(hit.clone());
        }
        let resolved = self
            .images
            .resolve(reference)
            .map_err(|m| err(span.start, m))?;
        let id = self.add(
            Vertex {
                op: Op::Source(Source::Image {
                    reference: resolved.reference.clone(),
                    manifest_digest: resolved.manifest_digest.clone(),
                }),
                inputs: vec![],
                name: format!("FROM {}", resolved.reference),
            },
            StepInfo {
                label: format!(
                    "[internal] load {}@{}",
                    resolved.reference, &resolved.manifest_digest
                ),
                span: Some(span),
                text: format!("FROM {reference}"),
            },
        )?;
        self.image_cache
            .insert(reference.to_string(), (id, resolved.clone()));
        Ok((id, resolved))
    }

    /// The context's `include` paths as a source. Only `.dockerignore`
    /// narrows it: COPY `--exclude` patterns are relative to the copied
    /// source, not the context root, and live on the copy op.
    fn context(
        &mut self,
        include: Vec<String>,
        span: Span,
        text: &str,
    ) -> Result<VertexId, ParseError> {
        let exclude = self.ignore_patterns.clone();
        self.add(
            Vertex {
                op: Op::Source(Source::Context {
                    name: "context".into(),
                    include,
                    exclude,
                }),
                inputs: vec![],
                name: "context".into(),
            },
            StepInfo {
                label: "[internal] load build context".into(),
                span: Some(span),
                text: text.to_string(),
            },
        )
    }

    fn lower_stage(
        &mut self,
        index: usize,
        stage: &crate::Stage,
        done: &BTreeMap<usize, StageState>,
    ) -> Result<StageState, ParseError> {
        let sp = &self.plan.stages[index];
        self.stage_label = sp.name.clone().unwrap_or_else(|| format!("stage-{index}"));
        self.stage_index = index;
        self.stage_no_cache =
            self.opts.no_cache_stages.iter().any(|s| {
                s.eq_ignore_ascii_case(&self.stage_label) || s.parse::<usize>() == Ok(index)
            });
        let total = stage.instructions.len() + 1;
        let from_span = stage.from.span;
        let mut onbuild: Vec<String> = Vec::new();
        let mut state: StageState = match sp.base.clone() {
            Base::Scratch => {
                let fs = self.scratch()?;
                let mut config = Map::new();
                set_env_list(&mut config, &[("PATH".into(), DEFAULT_PATH.into())]);
                StageState {
                    fs,
                    config,
                    history: Vec::new(),
                    shell: vec!["/bin/sh".into(), "-c".into()],
                    scope: Scope::new(vec![("PATH".into(), DEFAULT_PATH.into())]),
                    cmd_set: false,
                    author: None,
                }
            }
            Base::Stage(i) => {
                let base = done.get(&i).expect("dependencies come first").clone();
                StageState {
                    scope: Scope::new(base.scope.env().to_vec()),
                    cmd_set: false,
                    ..base
                }
            }
            Base::Image(reference) => {
                let (fs, img) = self.image(&reference, from_span)?;
                let config = img
                    .config
                    .get("config")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let history = img
                    .config
                    .get("history")
                    .and_then(Value::as_array)
                    .map(|h| {
                        h.iter()
                            .map(|e| History {
                                raw: Some(e.clone()),
                                created_by: e
                                    .get("created_by")
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_string(),
                                slot: if e.get("empty_layer").and_then(Value::as_bool) == Some(true)
                                {
                                    LayerSlot::None
                                } else {
                                    LayerSlot::Base
                                },
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let env = env_list(&config);
                let shell = config
                    .get("Shell")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                StageState {
                    fs,
                    config,
                    history,
                    shell,
                    scope: Scope::new(env),
                    cmd_set: false,
                    author: img
                        .config
                        .get("author")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                }
            }
        };
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
                self.instruction(&mut state, &ins, &trigger, 1, total)?;
            }
        }
        for (n, ins) in stage.instructions.iter().enumerate() {
            let text = self.text_of(ins.span);
            self.instruction(&mut state, ins, &text, n + 2, total)?;
        }
        set_env_list(&mut state.config, state.scope.env());
        Ok(state)
    }

    /// The instruction's source text (its logical line).
    fn text_of(&self, span: Span) -> String {
        self.node_text.get(&span).cloned().unwrap_or_default()
    }

    fn expand(&self, word: &str, state: &StageState, pos: Pos) -> Result<String, ParseError> {
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

    fn label(&self, n: usize, total: usize, text: &str) -> String {
        format!("[{} {n}/{total}] {}", self.stage_label, text.trim())
    }

    fn instruction(
        &mut self,
        state: &mut StageState,
        ins: &Spanned<Instruction>,
        text: &str,
        n: usize,
        total: usize,
    ) -> Result<(), ParseError> {
        let pos = ins.span.start;
        let info = |label: String| StepInfo {
            label,
            span: Some(ins.span),
            text: text.to_string(),
        };
        match &ins.inner {
            Instruction::From(_) => unreachable!("FROM starts a stage"),
            Instruction::Arg(decls) => {
                for d in decls {
                    let (plan, platform) = (&self.plan, &self.platform);
                    state
                        .scope
                        .declare_arg(
                            &d.name,
                            d.default.as_deref(),
                            &self.opts.build_args,
                            plan,
                            platform,
                        )
                        .map_err(|m| err(pos, m))?;
                }
            }
            Instruction::Env(pairs) => {
                // Every pair sees the variables as they were before this
                // instruction (`ENV A=new B=$A` gives B the old A). The
                // config's Env is written from the scope when the stage ends.
                let mut set = Vec::with_capacity(pairs.len());
                for p in pairs {
                    let value = self.expand(&p.value, state, pos)?;
                    let key = self.expand(&p.key, state, pos)?;
                    set.push((key, value));
                }
                for (key, value) in set {
                    state.scope.set_env(&key, value);
                }
                Self::history(state, text.trim().to_string(), LayerSlot::None);
            }
            Instruction::Label(pairs) => {
                let mut expanded = Vec::new();
                for p in pairs {
                    let key = self
                        .lexer
                        .process_word(&p.key, &state.scope)
                        .map_err(|e| err(pos, e.message))?;
                    let value = self
                        .lexer
                        .process_word(&p.value, &state.scope)
                        .map_err(|e| err(pos, e.message))?;
                    expanded.push((key, value));
                }
                let labels = object_mut(&mut state.config, "Labels");
                for (k, v) in expanded {
                    labels.insert(k, Value::String(v));
                }
                Self::history(state, text.trim().to_string(), LayerSlot::None);
            }
            Instruction::Maintainer(m) => {
                state.author = Some(m.clone());
                Self::history(state, text.trim().to_string(), LayerSlot::None);
            }
            Instruction::Expose(ports) => {
                let mut exposed = Vec::new();
                for p in ports {
                    let p = self.expand(p, state, pos)?;
                    for p in p.split_whitespace() {
                        let p = if p.contains('/') {
                            p.to_ascii_lowercase()
                        } else {
                            format!("{p}/tcp")
                        };
                        let (num, proto) = p.split_once('/').expect("has a slash");
                        let valid_num = num
                            .split('-')
                            .all(|n| !n.is_empty() && n.parse::<u16>().is_ok());
                        if !valid_num || !matches!(proto, "tcp" | "udp" | "sctp") {
                            return Err(err(pos, format!("EXPOSE: invalid port {p:?}"))
                                .with_hint("use PORT, PORT/tcp, PORT/udp or PORT/sctp"));
                        }
                        exposed.push(p);
                    }
                }
                let ports = object_mut(&mut state.config, "ExposedPorts");
                for p in exposed {
                    ports.insert(p, json!({}));
                }
                Self::history(state, text.trim().to_string(), LayerSlot::None);
            }
            Instruction::Volume(vols) => {
                let mut volumes = Vec::new();
                for v in vols {
                    let v = self.expand(v, state, pos)?;
                    if v.trim().is_empty() {
                        return Err(err(pos, "VOLUME: a volume path cannot be empty"));
                    }
                    volumes.push(v);
                }
                let config_volumes = object_mut(&mut state.config, "Volumes");
                for v in volumes {
                    config_volumes.insert(v, json!({}));
                }
                Self::history(state, text.trim().to_string(), LayerSlot::None);
            }
            Instruction::User(u) => {
                let u = self.expand(u, state, pos)?;
                state.config.insert("User".into(), Value::String(u));
                Self::history(state, text.trim().to_string(), LayerSlot::None);
            }
            Instruction::StopSignal(s) => {
                let s = self.expand(s, state, pos)?;
                if !valid_signal(&s) {
                    return Err(err(pos, format!("STOPSIGNAL: unknown signal {s:?}"))
                        .with_hint("use a name like SIGTERM or a number"));
                }
                state.config.insert("StopSignal".into(), Value::String(s));
                Self::history(state, text.trim().to_string(), LayerSlot::None);
            }
            Instruction::Shell(shell) => {
                state.shell = shell.clone();
                state.config.insert("Shell".into(), json_strs(shell));
                Self::history(state, text.trim().to_string(), LayerSlot::None);
            }
            Instruction::Cmd(c) => {
                let argv = self.command_argv(c, state);
                state.config.insert("Cmd".into(), json_strs(&argv));
                state.cmd_set = true;
                Self::history(state, format!("CMD {}", go_json(&argv)), LayerSlot::None);
            }
            Instruction::Entrypoint(c) => {
                let argv = self.command_argv(c, state);
                state.config.insert("Entrypoint".into(), json_strs(&argv));
                if !state.cmd_set {
                    state.config.remove("Cmd");
                }
                Self::history(
                    state,
                    format!("ENTRYPOINT {}", go_json(&argv)),
                    LayerSlot::None,
                );
            }
            Instruction::Healthcheck(h) => {
                let value = match h {
                    Healthcheck::None => json!({ "Test": ["NONE"] }),
                    Healthcheck::Cmd {
                        test,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => {
                        let test = match test {
                            Command::Exec(argv) => {
                                let mut t = vec!["CMD".to_string()];
                                t.extend(argv.iter().cloned());
                                t
                            }
                            Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                        };
                        let mut v = json!({ "Test": test });
                        for (k, d) in [
                            ("Interval", interval),
                            ("Timeout", timeout),
                            ("StartPeriod", start_period),
                            ("StartInterval", start_interval),
                        ] {
                            if let Some(d) = d {
                                v[k] = json!(d.as_nanos() as u64);
                            }
                        }
                        if let Some(r) = retries {
                            v["Retries"] = json!(r);
                        }
                        v
                    }
                };
                state.config.insert("Healthcheck".into(), value);
                Self::history(state, text.trim().to_string(), LayerSlot::None);
            }
            Instruction::Onbuild(o) => {
                let mut triggers = state
                    .config
                    .get("OnBuild")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                triggers.push(Value::String(o.expression.trim().to_string()));
                state
                    .config
                    .insert("OnBuild".into(), Value::Array(triggers));
                Self::history(state, text.trim().to_string(), LayerSlot::None);
            }
            Instruction::Workdir(w) => {
                let w = self.expand(w, state, pos)?;
                let dir = join_workdir(&Self::workdir(state), &w);
                state
                    .config
                    .insert("WorkingDir".into(), Value::String(dir.clone()));
                let label = self.label(n, total, text);
                state.fs = self.add(
                    Vertex {
                        op: Op::File(FileOp::Mkdir {
                            path: dir.clone(),
                            mode: 0o755,
                            parents: true,
                        }),
                        inputs: vec![state.fs],
                        name: format!("WORKDIR {dir}"),
                    },
                    info(label),
                )?;
                Self::history(state, format!("WORKDIR {dir}"), LayerSlot::Step);
            }
            Instruction::Run(run) => self.run(state, ins.span, run, text, n, total)?,
            Instruction::Copy(c) => {
                let args = CopyArgs {
                    sources: &c.sources,
                    dest: &c.dest,
                    from: c.from.as_deref(),
                    chown: c.chown.as_deref(),
                    chmod: c.chmod.as_deref(),
                    link: c.link,
                    parents: c.parents,
                    excludes: &c.excludes,
                    unpack: None,
                    checksum: None,
                    keyword: "COPY",
                };
                self.copy(state, ins.span, args, text, n, total)?
            }
            Instruction::Add(a) => {
                let args = CopyArgs {
                    sources: &a.sources,
                    dest: &a.dest,
                    from: None,
                    chown: a.chown.as_deref(),
                    chmod: a.chmod.as_deref(),
                    link: a.link,
                    parents: false,
                    excludes: &a.excludes,
                    unpack: a.unpack,
                    checksum: a.checksum.as_deref(),
                    keyword: "ADD",
                };
                self.copy(state, ins.span, args, text, n, total)?
            }
        }
        Ok(())
    }

    fn command_argv(&self, c: &Command, state: &StageState) -> Vec<String> {
        match c {
            Command::Exec(argv) => argv.clone(),
            Command::Shell(s) => {
                let mut argv = state.shell.clone();
                argv.push(s.clone());
                argv
            }
        }
    }

    fn run(
        &mut self,
        state: &mut StageState,
        span: Span,
        run: &instructions::Run,
        text: &str,
        n: usize,
        total: usize,
    ) -> Result<(), ParseError> {
        let pos = span.start;
        let mut inputs = vec![state.fs];
        let mut mounts = Vec::new();
        // Heredocs: a lone `<<EOF` runs the body as the script; otherwise
        // the shell gets the command line with the bodies, as written.
        let argv = match (&run.command, run.heredocs.as_slice()) {
            (Command::Shell(cmd), [only]) if is_lone_heredoc(cmd, only) => {
                let body = only.body();
                if body.starts_with("#!") {
                    let file = self.heredoc_file(only, 0o755, span)?;
                    inputs.push(file);
                    mounts.push(ExecMount {
                        target: "/.kiln-heredoc".into(),
                        input: Some(inputs.len() - 1),
                        selector: format!("/{}", only.name),
                        kind: MountKind::Bind { readonly: true },
                    });
                    vec!["/.kiln-heredoc".to_string()]
                } else {
                    let mut argv = state.shell.clone();
                    argv.push(body);
                    argv
                }
            }
            (Command::Shell(cmd), docs) if !docs.is_empty() => {
                let mut script = cmd.clone();
                for d in docs {
                    script.push('\n');
                    script.push_str(&d.content);
                    script.push_str(&d.name);
                }
                let mut argv = state.shell.clone();
                argv.push(script);
                argv
            }
            (c, _) => self.command_argv(c, state),
        };
        for spec in &run.mounts {
            let spec = self.expand(spec, state, pos)?;
            let m = self.mount(&spec, state, &mut inputs, span)?;
            mounts.push(m);
        }
        // The build's default network is the invoker's (`--network`); a
        // step may ask for less (none), or for the host's only when the
        // invoker allowed it.
        let default_network = match self.opts.network.as_str() {
            "none" => "none",
            _ => "host",
        };
        let network = match run.network.as_deref().unwrap_or("default") {
            "" | "default" => default_network,
            "none" => "none",
            "host" if self.opts.allow_host_network => "host",
            "host" => {
                return Err(err(
                    pos,
                    "RUN --network=host: network.host is not allowed for this build",
                )
                .with_hint("allow it with: kiln build --allow network.host"))
            }
            other => {
                return Err(
                    err(pos, format!("RUN --network={other}: unknown network mode"))
                        .with_hint("use default, none or host"),
                )
            }
        };
        if let Some(sec) = &run.security {
            if sec != "sandbox" {
                return Err(err(
                    pos,
                    format!("RUN --security={sec}: only sandbox is allowed"),
                )
                .with_hint("kiln never runs build steps with extra privileges"));
            }
        }
        let mut env = Vec::new();
        let mut proxy_env = Vec::new();
        for (k, v) in state.scope.run_env() {
            if PROXY_ARGS.contains(&k.as_str()) && !state.scope.env_has(&k) {
                proxy_env.push((k, v));
            } else {
                env.push((k, v));
            }
        }
        // Proxy build args apply to every RUN even when undeclared.
        for p in PROXY_ARGS {
            if let Some(v) = self.opts.build_args.get(p) {
                if !proxy_env.iter().any(|(k, _)| k == p) && !env.iter().any(|(k, _)| k == p) {
                    proxy_env.push((p.to_string(), v.clone()));
                }
            }
        }
        let user = state
            .config
            .get("User")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let created_by = format!("RUN {} # kiln", argv.join(" "));
        let label = self.label(n, total, text);
        state.fs = self.add(
            Vertex {
                op: Op::Exec(Exec {
                    argv,
                    env,
                    proxy_env,
                    cwd: Self::workdir(state),
                    user,
                    network: network.into(),
                    mounts,
                }),
                inputs,
                name: text.trim().to_string(),
            },
            StepInfo {
                label,
                span: Some(span),
                text: text.to_string(),
            },
        )?;
        Self::history(state, created_by, LayerSlot::Step);
        Ok(())
    }

    /// A one-file tree holding a heredoc body at `/<name>`.
    fn heredoc_file(
        &mut self,
        doc: &Heredoc,
        mode: u32,
        span: Span,
    ) -> Result<VertexId, ParseError> {
        let scratch = self.scratch()?;
        self.add(
            Vertex {
                op: Op::File(FileOp::Mkfile {
                    path: format!("/{}", doc.name),
                    mode,
                    data: doc.body().into_bytes(),
                }),
                inputs: vec![scratch],
                name: format!("heredoc {}", doc.name),
            },
            StepInfo {
                label: format!("[internal] heredoc {}", doc.name),
                span: Some(span),
                text: String::new(),
            },
        )
    }

    /// `RUN --mount=...`.
    fn mount(
        &mut self,
        spec: &str,
        state: &StageState,
        inputs: &mut Vec<VertexId>,
        span: Span,
    ) -> Result<ExecMount, ParseError> {
        let pos = span.start;
        let bad = |m: String| err(pos, format!("RUN --mount={spec}: {m}"));
        let mut kv: BTreeMap<String, String> = BTreeMap::new();
        let mut flags: BTreeSet<String> = BTreeSet::new();
        for part in spec.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match part.split_once('=') {
                Some((k, v)) => {
                    kv.insert(k.to_ascii_lowercase(), v.to_string());
                }
                None => {
                    flags.insert(part.to_ascii_lowercase());
                }
            }
        }
        let get = |names: &[&str]| names.iter().find_map(|n| kv.get(*n).cloned());
        let truthy = |name: &str| {
            flags.contains(name) || kv.get(name).is_some_and(|v| v == "true" || v == "1")
        };
        let kind = get(&["type"]).unwrap_or_else(|| "bind".into());
        let target = get(&["target", "dst", "destination"]);
        let workdir = Self::workdir(state);
        let known: &[&str] = &[
            "type",
            "target",
            "dst",
            "destination",
            "source",
            "src",
            "from",
            "readonly",
            "ro",
            "rw",
            "readwrite",
            "id",
            "sharing",
            "mode",
            "uid",
            "gid",
            "size",
            "required",
            "env",
        ];
        if let Some(k) = kv
            .keys()
            .chain(flags.iter())
            .find(|k| !known.contains(&k.as_str()))
        {
            return Err(bad(format!("unknown option {k:?}")));
        }
        let octal = |v: Option<String>, default: u32| -> Result<u32, ParseError> {
            match v {
                None => Ok(default),
                Some(v) => u32::from_str_radix(&v, 8)
                    .map_err(|_| bad(format!("mode {v:?} is not an octal number"))),
            }
        };
        let number = |v: Option<String>, what: &str| -> Result<u32, ParseError> {
            match v {
                None => Ok(0),
                Some(v) => v
                    .parse()
                    .map_err(|_| bad(format!("{what} {v:?} is not a number"))),
            }
        };
        match kind.as_str() {
            "bind" => {
                let target = target.ok_or_else(|| bad("a bind mount needs target=".into()))?;
                let source = get(&["source", "src"]).unwrap_or_else(|| "/".into());
                let input = match get(&["from"]) {
                    Some(from) => self.named_source(&from, span)?,
                    None => {
                        let rel = clean_abs(&source).trim_start_matches('/').to_string();
                        self.context(vec![rel], span, spec)?
                    }
                };
                inputs.push(input);
                let readonly = !(truthy("rw") || truthy("readwrite"));
                Ok(ExecMount {
                    target: join_workdir(&workdir, &target),
                    input: Some(inputs.len() - 1),
                    selector: clean_abs(&source),
                    kind: MountKind::Bind { readonly },
                })
            }
            "cache" => {
                let target = target.ok_or_else(|| bad("a cache mount needs target=".into()))?;
                let target = join_workdir(&workdir, &target);
                let sharing = get(&["sharing"]).unwrap_or_else(|| "shared".into());
                if !matches!(sharing.as_str(), "shared" | "private" | "locked") {
                    return Err(bad(format!(
                        "sharing={sharing}: use shared, private or locked"
                    )));
                }
                if get(&["from"]).is_some() {
                    return Err(bad("cache mounts with from= are not supported yet".into()));
                }
                Ok(ExecMount {
                    target: target.clone(),
                    input: None,
                    selector: String::new(),
                    kind: MountKind::Cache {
                        id: get(&["id"]).unwrap_or(target),
                        sharing,
                        uid: number(get(&["uid"]), "uid")?,
                        gid: number(get(&["gid"]), "gid")?,
                        mode: octal(get(&["mode"]), 0o755)?,
                    },
                })
            }
            "tmpfs" => {
                let target = target.ok_or_else(|| bad("a tmpfs mount needs target=".into()))?;
                let size = match get(&["size"]) {
                    None => 0,
                    Some(s) => {
                        parse_size(&s).ok_or_else(|| bad(format!("size={s} is not a size")))?
                    }
                };
                Ok(ExecMount {
                    target: join_workdir(&workdir, &target),
                    input: None,
                    selector: String::new(),
                    kind: MountKind::Tmpfs { size },
                })
            }
            "secret" => {
                let id = get(&["id"])
                    .or_else(|| {
                        target
                            .as_deref()
                            .map(|t| t.rsplit('/').next().unwrap_or(t).to_string())
                    })
                    .ok_or_else(|| bad("a secret mount needs id= or target=".into()))?;
                if get(&["env"]).is_some() {
                    return Err(bad("secrets as env= are not supported yet".into()));
                }
                let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                Ok(ExecMount {
                    target: join_workdir(&workdir, &target),
                    input: None,
                    selector: String::new(),
                    kind: MountKind::Secret {
                        id,
                        required: truthy("required"),
                    },
                })
            }
            "ssh" => Err(bad("ssh mounts are not supported yet".into())),
            other => Err(bad(format!(
                "unknown mount type {other:?}: use bind, cache, tmpfs or secret"
            ))),
        }
    }

    /// `--from=` of COPY and RUN --mount: a stage (name or index) or an image.
    fn named_source(&mut self, from: &str, span: Span) -> Result<VertexId, ParseError> {
        let current = self.stage_index;
        let index = crate::plan::resolve_ref(from, &self.plan.stages[..current], current)
            .map_err(|m| err(span.start, m))?;
        if let Some(i) = index {
            if let Some(fs) = self.stage_fs.get(&i) {
                return Ok(*fs);
            }
            return Err(err(
                span.start,
                format!("--from={from}: stage {i} is not built before this one"),
            ));
        }
        Ok(self.image(from, span)?.0)
    }
}

struct CopyArgs<'a> {
    sources: &'a [CopySource],
    dest: &'a str,
    from: Option<&'a str>,
    chown: Option<&'a str>,
    chmod: Option<&'a str>,
    link: bool,
    parents: bool,
    excludes: &'a [String],
    /// `--unpack` as given: archives are unpacked by default only when
    /// ADD copies them from a local tree.
    unpack: Option<bool>,
    checksum: Option<&'a str>,
    keyword: &'static str,
}

fn is_lone_heredoc(cmd: &str, doc: &Heredoc) -> bool {
    let c = cmd.trim();
    let rest = c.strip_prefix("<<-").or_else(|| c.strip_prefix("<<"));
    rest.is_some_and(|r| r.trim_matches(|ch| ch == '"' || ch == '\'') == doc.name)
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The name a download gets: the URL path's last segment, as BuildKit
/// names it (`__unnamed__` when the path has none).
fn url_filename(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .split_once('/')
        .map_or("", |(_, p)| p);
    // Go's path.Base: trailing slashes do not count.
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(base) if !base.is_empty() && base != "." && base != ".." => base.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

fn is_git(s: &str) -> bool {
    s.starts_with("git@") || s.ends_with(".git") || s.starts_with("git://")
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (s.as_str(), 1),
        Some((i, _)) => {
            let mult = match s[i..].trim_end_matches('b').trim_end_matches('i') {
                "" => 1,
                "k" => 1 << 10,
                "m" => 1 << 20,
                "g" => 1 << 30,
                _ => return None,
            };
            (&s[..i], mult)
        }
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let name = s.strip_prefix("SIG").unwrap_or(s);
    matches!(
        name,
        "HUP"
            | "INT"
            | "QUIT"
            | "ILL"
            | "TRAP"
            | "ABRT"
            | "BUS"
            | "FPE"
            | "KILL"
            | "USR1"
            | "SEGV"
            | "USR2"
            | "PIPE"
            | "ALRM"
            | "TERM"
            | "STKFLT"
            | "CHLD"
            | "CONT"
            | "STOP"
            | "TSTP"
            | "TTIN"
            | "TTOU"
            | "URG"
            | "XCPU"
            | "XFSZ"
            | "VTALRM"
            | "PROF"
            | "WINCH"
            | "IO"
            | "PWR"
            | "SYS"
    ) || name.starts_with("RTMIN")
        || name.starts_with("RTMAX")
}

impl Lowerer<'_> {
    fn copy(
        &mut self,
        state: &mut StageState,
        span: Span,
        a: CopyArgs<'_>,
        text: &str,
        n: usize,
        total: usize,
    ) -> Result<(), ParseError> {
        let pos = span.start;
        let kw = a.keyword;
        let dest_raw = self.expand(a.dest, state, pos)?;
        let dest_is_dir = dest_raw.ends_with('/')
            || dest_raw == "."
            || dest_raw.ends_with("/.")
            || dest_raw == ".."
            || dest_raw.ends_with("/..");
        let mut dest = join_workdir(&Self::workdir(state), &dest_raw);
        if dest_is_dir && dest != "/" {
            dest.push('/');
        }
        if a.sources.len() > 1 && !dest_is_dir {
            return Err(err(
                pos,
                format!("{kw} with more than one source: the destination must be a directory and end with a /"),
            )
            .with_hint(format!("write {dest_raw}/")));
        }
        let chown = a
            .chown
            .map(|c| self.expand(c, state, pos))
            .transpose()?
            .filter(|c| !c.is_empty());
        let chmod = a
            .chmod
            .map(|c| self.expand(c, state, pos))
            .transpose()?
            .filter(|c| !c.is_empty());
        if let Some(m) = &chmod {
            if u32::from_str_radix(m, 8).map_or(true, |v| v > 0o7777) {
                return Err(err(pos, format!("{kw} --chmod={m}: not an octal mode"))
                    .with_hint("symbolic modes are not supported; use e.g. 0755"));
            }
        }
        let excludes: Vec<String> = a
            .excludes
            .iter()
            .map(|e| self.expand(e, state, pos))
            .collect::<Result<_, _>>()?;
        let from = a.from.map(|f| self.expand(f, state, pos)).transpose()?;

        // Group sources: heredocs and URLs each get their own source tree;
        // paths share one (the context, a stage or an image).
        let mut paths = Vec::new();
        // (source tree, paths in it, unpack archives)
        let mut steps: Vec<(VertexId, Vec<String>, bool)> = Vec::new();
        for s in a.sources {
            match s {
                CopySource::Heredoc(doc) => {
                    let mut doc = doc.clone();
                    if doc.expand {
                        doc.content = self
                            .lexer
                            .process_word(&doc.content, &state.scope)
                            .unwrap_or(doc.content);
                    }
                    let mode = 0o644;
                    let file = self.heredoc_file(&doc, mode, span)?;
                    steps.push((file, vec![format!("/{}", doc.name)], false));
                }
                CopySource::Path(p) => {
                    let p = self.expand(p, state, pos)?;
                    if kw == "ADD" && is_url(&p) {
                        let checksum =
                            a.checksum.map(|c| self.expand(c, state, pos)).transpose()?;
                        if let Some(c) = &checksum {
                            let hex = c.strip_prefix("sha256:").unwrap_or("");
                            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                                return Err(err(
                                    pos,
                                    format!("ADD --checksum={c}: want sha256:<64 hex digits>"),
                                ));
                            }
                        }
                        let filename = url_filename(&p);
                        let id = self.add(
                            Vertex {
                                op: Op::Source(Source::Http {
                                    url: p.clone(),
                                    checksum: checksum.map(|c| c.to_ascii_lowercase()),
                                    filename: filename.clone(),
                                }),
                                inputs: vec![],
                                name: format!("ADD {p}"),
                            },
                            StepInfo {
                                label: format!("[internal] download {p}"),
                                span: Some(span),
                                text: text.to_string(),
                            },
                        )?;
                        // Remote archives are not unpacked unless asked.
                        steps.push((id, vec![format!("/{filename}")], a.unpack == Some(true)));
                    } else if kw == "ADD" && is_git(&p) {
                        return Err(err(
                            pos,
                            format!("ADD {p}: git sources are not supported yet"),
                        )
                        .with_hint("clone in a RUN step, or add the files to the context"));
                    } else {
                        paths.push(p);
                    }
                }
            }
        }
        if a.checksum.is_some()
            && a.sources
                .iter()
                .any(|s| matches!(s, CopySource::Path(p) if !is_url(p)))
        {
            return Err(err(pos, "ADD --checksum only applies to http(s) sources"));
        }
        if !paths.is_empty() {
            let src = match &from {
                Some(f) => self.named_source(f, span)?,
                None => {
                    let include: Vec<String> = paths
                        .iter()
                        .map(|p| {
                            let c = clean_abs(p);
                            c.trim_start_matches('/').to_string()
                        })
                        .collect();
                    self.context(include, span, text)?
                }
            };
            steps.insert(0, (src, paths, a.unpack.unwrap_or(kw == "ADD")));
        }
        let label = self.label(n, total, text);
        let mut fs = state.fs;
        let single = steps.len() == 1;
        let groups = steps.len();
        // `--link` (one source group, ids not names: names need the base's
        // /etc/passwd): copy onto scratch, then merge onto the stage, so
        // the copy's cache key does not depend on the base.
        let numeric_chown = chown
            .as_deref()
            .is_none_or(|c| c.split(':').all(|p| p.parse::<u32>().is_ok()));
        let linked = a.link && single && numeric_chown;
        for (src, paths, unpack) in steps {
            let onto = if linked { self.scratch()? } else { fs };
            let copy = self.add(
                Vertex {
                    op: Op::File(FileOp::Copy {
                        src: 1,
                        paths,
                        dest: dest.clone(),
                        chown: chown.clone(),
                        chmod: chmod.clone(),
                        exclude: excludes.clone(),
                        parents: a.parents,
                        unpack,
                        link: a.link && single,
                    }),
                    inputs: vec![onto, src],
                    name: text.trim().to_string(),
                },
                StepInfo {
                    label: label.clone(),
                    span: Some(span),
                    text: text.to_string(),
                },
            )?;
            fs = if linked {
                self.add(
                    Vertex {
                        op: Op::Merge,
                        inputs: vec![fs, copy],
                        name: format!("link {}", text.trim()),
                    },
                    StepInfo {
                        label: format!("[internal] link {}", text.trim()),
                        span: Some(span),
                        text: text.to_string(),
                    },
                )?
            } else {
                copy
            };
        }
        state.fs = fs;
        // One history entry per layer place (more than one only when a
        // COPY mixes heredocs, URLs and paths).
        for _ in 0..groups {
            Self::history(state, format!("{} # kiln", text.trim()), LayerSlot::Step);
        }
        Ok(())
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
mod tests {
    use super::*;

    struct NoImages;

    impl ImageSource for NoImages {
        fn resolve(&self, reference: &str) -> Result<ResolvedImage, String> {
            Err(format!("{reference}: not here"))
        }
    }

    fn config_env(src: &str) -> Vec<String> {
        let df = kiln_parser::parse(src).unwrap();
        let opts = Options {
            network: "default".into(),
            ..Default::default()
        };
        let lowered = lower(&df, &opts, &NoImages).unwrap();
        lowered.config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// BuildKit: every pair of one ENV sees the values from before it, and
    /// a key set again keeps its place (an inherited PATH stays first).
    #[test]
    fn env_pairs_see_the_old_values_and_keys_keep_their_place() {
        let env =
            config_env("FROM scratch\nENV A=first B=x\nENV A=changed H=$A\nENV PATH=/bin:$PATH\n");
        assert_eq!(
            env,
            [
                format!("PATH=/bin:{DEFAULT_PATH}"),
                "A=changed".into(),
                "B=x".into(),
                "H=first".into()
            ]
        );
    }

    #[test]
    fn run_host_network_needs_the_entitlement() {
        let df = kiln_parser::parse("FROM scratch\nRUN --network=host true\n").unwrap();
        let mut opts = Options {
            network: "none".into(),
            ..Default::default()
        };
        let e = lower(&df, &opts, &NoImages).unwrap_err();
        assert!(e.message.contains("network.host is not allowed"), "{e:?}");
        assert_eq!(e.pos.line, 2);
        opts.allow_host_network = true;
        let lowered = lower(&df, &opts, &NoImages).unwrap();
        let net = lowered
            .definition
            .vertices()
            .find_map(|(_, v)| match &v.op {
                kiln_solver::Op::Exec(x) => Some(x.network.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(net, "host");
        // The invoker's none is the default for RUN steps.
        let df = kiln_parser::parse("FROM scratch\nRUN --network=default true\n").unwrap();
        opts.allow_host_network = false;
        let lowered = lower(&df, &opts, &NoImages).unwrap();
        assert!(lowered
            .definition
            .vertices()
            .any(|(_, v)| matches!(&v.op, kiln_solver::Op::Exec(x) if x.network == "none")));
    }

    #[test]
    fn downloads_are_named_like_buildkit_names_them() {
        assert_eq!(url_filename("https://h/a/b.tar.gz?x=1#f"), "b.tar.gz");
        assert_eq!(url_filename("http://h:8/file"), "file");
        assert_eq!(url_filename("https://h/"), "__unnamed__");
        assert_eq!(url_filename("https://h"), "__unnamed__");
        assert_eq!(url_filename("https://h/dir/"), "dir");
    }
}
