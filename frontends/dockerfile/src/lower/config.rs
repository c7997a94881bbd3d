//! The instructions that change the image config (and the stage's scope)
//! but no files: ARG, ENV, LABEL, MAINTAINER, EXPOSE, VOLUME, USER,
//! STOPSIGNAL, SHELL, CMD, ENTRYPOINT, HEALTHCHECK, ONBUILD, and WORKDIR,
//! which also makes its directory. Each adds a history entry.

use super::{err, LayerSlot, Lowerer, StageState, StepInfo};
use crate::error::LowerError;
use crate::path::join_workdir;
use kiln_parser::instructions::{ArgDecl, Command, Healthcheck, Pair};
use kiln_parser::{Pos, Span};
use kiln_solver::{Chown, FileOp, Op, Vertex};
use serde_json::{json, Map, Value};

impl Lowerer<'_> {
    pub(super) fn arg(
        &mut self,
        state: &mut StageState,
        decls: &[ArgDecl],
        pos: Pos,
    ) -> Result<(), LowerError> {
        let mut shown = Vec::new();
        for d in decls {
            state
                .scope
                .declare_arg(
                    &d.name,
                    d.default.as_deref(),
                    &self.opts.build_args,
                    &self.plan,
                )
                .map_err(|m| err(pos, m))?;
            state.declared_args.push(d.name.clone());
            shown.push(match state.scope.arg(&d.name) {
                Some(v) => format!("{}={v}", d.name),
                None => d.name.clone(),
            });
        }
        // An empty-layer history entry per ARG line, as BuildKit writes.
        Self::history(state, format!("ARG {}", shown.join(" ")), LayerSlot::None);
        Ok(())
    }

    /// Every pair sees the variables as they were before this instruction
    /// (`ENV A=new B=$A` gives B the old A). The config's Env is written
    /// from the scope when the stage ends.
    pub(super) fn env(
        &mut self,
        state: &mut StageState,
        pairs: &[Pair],
        text: &str,
        pos: Pos,
    ) -> Result<(), LowerError> {
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
        Ok(())
    }

    pub(super) fn labels(
        &mut self,
        state: &mut StageState,
        pairs: &[Pair],
        text: &str,
        pos: Pos,
    ) -> Result<(), LowerError> {
        let mut expanded = Vec::new();
        for p in pairs {
            let key = self.expand(&p.key, state, pos)?;
            let value = self.expand(&p.value, state, pos)?;
            expanded.push((key, value));
        }
        let labels = object_mut(&mut state.config, "Labels");
        for (k, v) in expanded {
            labels.insert(k, Value::String(v));
        }
        Self::history(state, text.trim().to_string(), LayerSlot::None);
        Ok(())
    }

    pub(super) fn maintainer(state: &mut StageState, m: &str, text: &str) {
        state.author = Some(m.to_string());
        Self::history(state, text.trim().to_string(), LayerSlot::None);
    }

    pub(super) fn expose(
        &mut self,
        state: &mut StageState,
        ports: &[String],
        pos: Pos,
    ) -> Result<(), LowerError> {
        // BuildKit sorts the words, then parses each.
        let mut words = Vec::new();
        for p in ports {
            let p = self.expand(p, state, pos)?;
            words.extend(p.split_whitespace().map(str::to_string));
        }
        words.sort();
        let mut exposed = Vec::new();
        for w in &words {
            exposed.extend(super::expose::container_ports(w).map_err(|m| err(pos, m))?);
        }
        let ports = object_mut(&mut state.config, "ExposedPorts");
        for p in &exposed {
            ports.insert(p.clone(), json!({}));
        }
        Self::history(
            state,
            format!("EXPOSE [{}]", exposed.join(" ")),
            LayerSlot::None,
        );
        Ok(())
    }

    pub(super) fn volume(
        &mut self,
        state: &mut StageState,
        vols: &[String],
        text: &str,
        pos: Pos,
    ) -> Result<(), LowerError> {
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
        Ok(())
    }

    pub(super) fn user(
        &mut self,
        state: &mut StageState,
        u: &str,
        text: &str,
        pos: Pos,
    ) -> Result<(), LowerError> {
        let u = self.expand(u, state, pos)?;
        state.config.insert("User".into(), Value::String(u));
        Self::history(state, text.trim().to_string(), LayerSlot::None);
        Ok(())
    }

    pub(super) fn stop_signal(
        &mut self,
        state: &mut StageState,
        s: &str,
        text: &str,
        pos: Pos,
    ) -> Result<(), LowerError> {
        let s = self.expand(s, state, pos)?;
        if kiln_parser::units::signal_number(&s).is_none() {
            return Err(err(pos, format!("STOPSIGNAL: unknown signal {s:?}"))
                .with_hint("use a name like SIGTERM or a number"));
        }
        state.config.insert("StopSignal".into(), Value::String(s));
        Self::history(state, text.trim().to_string(), LayerSlot::None);
        Ok(())
    }

    pub(super) fn shell(state: &mut StageState, shell: &[String], text: &str) {
        state.shell = shell.to_vec();
        state.config.insert("Shell".into(), json_strs(shell));
        Self::history(state, text.trim().to_string(), LayerSlot::None);
    }

    pub(super) fn cmd(state: &mut StageState, c: &Command) {
        let argv = Self::command_argv(c, state);
        state.config.insert("Cmd".into(), json_strs(&argv));
        state.cmd_set = true;
        Self::history(state, format!("CMD {}", go_json(&argv)), LayerSlot::None);
    }

    /// ENTRYPOINT resets a CMD inherited from the base (not one set in
    /// this stage).
    pub(super) fn entrypoint(state: &mut StageState, c: &Command) {
        let argv = Self::command_argv(c, state);
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

    pub(super) fn healthcheck(state: &mut StageState, h: &Healthcheck, text: &str) {
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

    /// A trigger for images built FROM this one (stored, not run).
    pub(super) fn onbuild(state: &mut StageState, expression: &str, text: &str) {
        let mut triggers = state
            .config
            .get("OnBuild")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        triggers.push(Value::String(expression.trim().to_string()));
        state
            .config
            .insert("OnBuild".into(), Value::Array(triggers));
        Self::history(state, text.trim().to_string(), LayerSlot::None);
    }

    /// WORKDIR sets the config's WorkingDir and makes the directory.
    pub(super) fn workdir_instruction(
        &mut self,
        state: &mut StageState,
        span: Span,
        w: &str,
        text: &str,
    ) -> Result<(), LowerError> {
        let w = self.expand(w, state, span.start)?;
        let dir = join_workdir(&Self::workdir(state), &w);
        state
            .config
            .insert("WorkingDir".into(), Value::String(dir.clone()));
        let label = self.label(state, text);
        state.fs = self.add(
            Vertex {
                op: Op::File(FileOp::Mkdir {
                    path: dir.clone(),
                    mode: 0o755,
                    parents: true,
                    // Made as the current USER, as BuildKit makes it.
                    owner: state
                        .config
                        .get("User")
                        .and_then(Value::as_str)
                        .filter(|u| !u.is_empty())
                        .map(Chown::parse),
                }),
                inputs: vec![state.fs],
                name: format!("WORKDIR {dir}"),
            },
            StepInfo {
                label,
                span: Some(span),
                text: text.to_string(),
            },
        )?;
        Self::history(state, format!("WORKDIR {dir}"), LayerSlot::Step);
        Ok(())
    }
}

/// The config's `Env` as pairs.
pub(super) fn env_list(config: &Map<String, Value>) -> Vec<(String, String)> {
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

pub(super) fn set_env_list(config: &mut Map<String, Value>, env: &[(String, String)]) {
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
pub(super) fn object_mut<'a>(
    config: &'a mut Map<String, Value>,
    key: &str,
) -> &'a mut Map<String, Value> {
    let v = config
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().expect("made an object above")
}

pub(super) fn json_strs(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

pub(super) fn go_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
