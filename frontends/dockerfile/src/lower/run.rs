//! RUN: the command (exec form, shell form, heredocs), its mounts, its
//! network, and the environment it sees (ENV, declared ARGs, and the
//! proxy build args, which stay out of the cache key and the image).

use super::{err, LayerSlot, Lowerer, StageState, StepInfo};
use crate::error::LowerError;
use crate::plan::PROXY_ARGS;
use kiln_parser::instructions::{self, Command};
use kiln_parser::{Heredoc, Span};
use kiln_solver::{Exec, ExecMount, FileOp, MountKind, Network, Op, Vertex, VertexId};
use serde_json::Value;

/// Variables in order, as an exec op holds them.
type Vars = Vec<(String, String)>;

impl Lowerer<'_> {
    /// CMD/ENTRYPOINT/RUN argv: exec form as written, shell form through
    /// the stage's SHELL.
    pub(super) fn command_argv(c: &Command, state: &StageState) -> Vec<String> {
        match c {
            Command::Exec(argv) => argv.clone(),
            Command::Shell(s) => {
                let mut argv = state.shell.clone();
                argv.push(s.clone());
                argv
            }
        }
    }

    pub(super) fn run(
        &mut self,
        state: &mut StageState,
        span: Span,
        run: &instructions::Run,
        text: &str,
    ) -> Result<(), LowerError> {
        let mut inputs = vec![state.fs];
        let mut mounts = Vec::new();
        let argv = self.run_argv(state, run, span, &mut inputs, &mut mounts)?;
        for spec in &run.mounts {
            let m = self.mount(spec, state, &mut inputs, span)?;
            mounts.push(m);
        }
        let network = self.run_network(run, span)?;
        let (env, proxy_env) = self.run_env(state);
        let user = state
            .config
            .get("User")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let created_by = format!("RUN {}{} # kiln", args_prefix(state), argv.join(" "));
        let masked: Vec<String> = mounts
            .iter()
            .filter_map(|m| match &m.kind {
                kiln_solver::MountKind::Secret { env, .. } => env.clone(),
                _ => None,
            })
            .collect();
        let label = self.label_masking(state, text, &masked);
        state.fs = self.add(
            Vertex {
                op: Op::Exec(Exec {
                    argv,
                    env,
                    proxy_env,
                    cwd: Self::workdir(state),
                    user,
                    network,
                    mounts,
                    // BuildKit's build arg for the RUN containers' hostname.
                    hostname: self
                        .opts
                        .build_args
                        .get("BUILDKIT_SANDBOX_HOSTNAME")
                        .filter(|h| !h.is_empty())
                        .cloned(),
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
        if !self.current.platform.is_host() {
            self.emulated
                .insert(state.fs, self.current.platform.clone());
        }
        Self::history(state, created_by, LayerSlot::Step);
        Ok(())
    }

    /// The command. Heredocs: a lone `<<EOF` runs the body as the script
    /// (a `#!` body as a file of its own, mounted in); otherwise the shell
    /// gets the command line with the bodies, as written.
    fn run_argv(
        &mut self,
        state: &StageState,
        run: &instructions::Run,
        span: Span,
        inputs: &mut Vec<VertexId>,
        mounts: &mut Vec<ExecMount>,
    ) -> Result<Vec<String>, LowerError> {
        Ok(match (&run.command, run.heredocs.as_slice()) {
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
            (c, _) => Self::command_argv(c, state),
        })
    }

    /// The build's default network is the invoker's (`--network`); a step
    /// may ask for less (none), or for the host's only when the invoker
    /// allowed it. `--security` may only be `sandbox`.
    fn run_network(&self, run: &instructions::Run, span: Span) -> Result<Network, LowerError> {
        let pos = span.start;
        if let Some(sec) = &run.security {
            match sec.as_str() {
                "sandbox" => {}
                // BuildKit's entitlement error; kiln grants none.
                "insecure" => {
                    return Err(err(
                        pos,
                        "RUN --security=insecure: security.insecure is not allowed",
                    )
                    .with_hint("kiln never runs build steps with extra privileges"))
                }
                other => {
                    return Err(err(
                        pos,
                        format!("RUN --security={other}: unsupported security mode"),
                    )
                    .with_hint("use sandbox"))
                }
            }
        }
        let default_network = match self.opts.network {
            Network::None => Network::None,
            Network::Bridge => Network::Bridge,
            Network::Host | Network::Default => Network::Host,
        };
        match run.network.as_deref().unwrap_or("default") {
            "" | "default" => Ok(default_network),
            "none" => Ok(Network::None),
            "host" if self.opts.allow_host_network => Ok(Network::Host),
            "host" => Err(err(
                pos,
                "RUN --network=host: network.host is not allowed for this build",
            )
            .with_hint("allow it with: kiln build --allow network.host")),
            other => Err(
                err(pos, format!("RUN --network={other}: unknown network mode"))
                    .with_hint("use default, none or host"),
            ),
        }
    }

    /// (env, proxy env): ENV and declared ARGs; proxy build args apply to
    /// every RUN even when undeclared, and stay out of the key unless an
    /// ENV sets them.
    fn run_env(&self, state: &StageState) -> (Vars, Vars) {
        let mut env = Vec::new();
        let mut proxy_env = Vec::new();
        for (k, v) in state.scope.run_env() {
            if PROXY_ARGS.contains(&k.as_str()) && !state.scope.env_has(&k) {
                proxy_env.push((k, v));
            } else {
                env.push((k, v));
            }
        }
        // BuildKit's proxy env: each of the five from its build arg (the
        // lower-case one when both cases are given), set in both cases.
        for lower in PROXY_ARGS
            .iter()
            .filter(|p| p.starts_with(|c: char| c.is_lowercase()))
        {
            let upper = lower.to_ascii_uppercase();
            let args = &self.opts.build_args;
            let Some(v) = args.get(*lower).or_else(|| args.get(&upper)) else {
                continue;
            };
            for name in [upper.as_str(), lower] {
                let set = |list: &[(String, String)]| list.iter().any(|(k, _)| k == name);
                if !set(&proxy_env) && !set(&env) {
                    proxy_env.push((name.to_string(), v.clone()));
                }
            }
        }
        (env, proxy_env)
    }

    /// A one-file tree holding a heredoc body at `/<name>`.
    pub(super) fn heredoc_file(
        &mut self,
        doc: &Heredoc,
        mode: u32,
        span: Span,
    ) -> Result<VertexId, LowerError> {
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
}

/// `RUN <<EOF` alone: the heredoc is the whole script.
fn is_lone_heredoc(cmd: &str, doc: &Heredoc) -> bool {
    let c = cmd.trim();
    let rest = c.strip_prefix("<<-").or_else(|| c.strip_prefix("<<"));
    rest.is_some_and(|r| r.trim_matches(|ch| ch == '"' || ch == '\'') == doc.name)
}

/// BuildKit's history prefix for a RUN: the declared ARGs with their
/// values as the RUN sees them, each once (at its first place, with its
/// latest value), counted: `|2 foo=bar2 bar=123 `.
fn args_prefix(state: &StageState) -> String {
    let mut names: Vec<&str> = Vec::new();
    for n in &state.declared_args {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    if names.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = names
        .iter()
        .map(|n| format!("{n}={}", state.scope.get(n).unwrap_or_default()))
        .collect();
    format!("|{} {} ", names.len(), pairs.join(" "))
}
