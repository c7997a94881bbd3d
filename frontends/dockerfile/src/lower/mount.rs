//! `RUN --mount=...` → an exec mount: the value is parsed once into the
//! parser's typed [`RunMount`] (each field expanded in the stage's scope),
//! and a `from=` is resolved here, so the stage it names is lowered first.

use super::{err, Lowerer, StageState};
use crate::error::LowerError;
use crate::path::{clean_abs, join_workdir};
use kiln_parser::mount::{MountError, MountType, RunMount};
use kiln_parser::Span;
use kiln_solver::{ExecMount, MountKind, Sharing, VertexId};

impl Lowerer<'_> {
    pub(super) fn mount(
        &mut self,
        spec: &str,
        state: &StageState,
        inputs: &mut Vec<VertexId>,
        span: Span,
    ) -> Result<ExecMount, LowerError> {
        let pos = span.start;
        let bad = |m: String| err(pos, format!("RUN --mount={spec}: {m}"));
        let m = RunMount::parse(spec, &mut |v| {
            self.lexer
                .process_word(v, &state.scope)
                .map_err(|e| MountError(e.to_string()))
        })
        .map_err(|e| bad(e.0))?;
        let workdir = Self::workdir(state);
        let target = m.target.as_deref().map(|t| join_workdir(&workdir, t));
        let need_target = |kind: &str| {
            target
                .clone()
                .ok_or_else(|| bad(format!("a {kind} mount needs target=")))
        };
        match m.kind {
            MountType::Bind => {
                let target = need_target("bind")?;
                let source = m.source.clone().unwrap_or_else(|| "/".into());
                let input = match &m.from {
                    Some(from) => self.named_source(from, span)?,
                    None => {
                        let rel = clean_abs(&source).trim_start_matches('/').to_string();
                        self.context(vec![rel], span, spec)?
                    }
                };
                inputs.push(input);
                Ok(ExecMount {
                    target,
                    input: Some(inputs.len() - 1),
                    selector: clean_abs(&source),
                    kind: MountKind::Bind {
                        readonly: m.readonly,
                    },
                })
            }
            MountType::Cache => {
                let target = need_target("cache")?;
                // from=: the stage (path source=) a new cache starts as;
                // otherwise source= is a directory inside the cache.
                let (input, selector) = match &m.from {
                    Some(from) => {
                        inputs.push(self.named_source(from, span)?);
                        let source = m.source.as_deref().unwrap_or("/");
                        (Some(inputs.len() - 1), clean_abs(source))
                    }
                    None => (None, m.source.as_deref().map(clean_abs).unwrap_or_default()),
                };
                let sharing = m
                    .sharing
                    .as_deref()
                    .map_or(Some(Sharing::Shared), Sharing::parse)
                    .ok_or_else(|| bad("sharing: use shared, private or locked".into()))?;
                Ok(ExecMount {
                    target: target.clone(),
                    input,
                    selector,
                    kind: MountKind::Cache {
                        id: m.id.clone().unwrap_or(target),
                        sharing,
                        uid: m.uid.unwrap_or(0),
                        gid: m.gid.unwrap_or(0),
                        mode: m.mode.unwrap_or(0o755),
                    },
                })
            }
            MountType::Tmpfs => Ok(ExecMount {
                target: need_target("tmpfs")?,
                input: None,
                selector: String::new(),
                kind: MountKind::Tmpfs {
                    size: m.size.unwrap_or(0),
                },
            }),
            MountType::Secret => {
                let id =
                    m.id.clone()
                        .or_else(|| m.source.clone())
                        .or_else(|| {
                            m.target
                                .as_deref()
                                .map(|t| t.rsplit('/').next().unwrap_or(t).to_string())
                        })
                        .ok_or_else(|| bad("a secret mount needs id= or target=".into()))?;
                // `env=` alone is no file; with a target it is both.
                let target = match (target, &m.env) {
                    (Some(t), _) => t,
                    (None, Some(_)) => String::new(),
                    (None, None) => format!("/run/secrets/{id}"),
                };
                Ok(ExecMount {
                    target,
                    input: None,
                    selector: String::new(),
                    kind: MountKind::Secret {
                        id,
                        required: m.required,
                        env: m.env.clone(),
                        uid: m.uid,
                        gid: m.gid,
                        mode: m.mode,
                    },
                })
            }
            MountType::Ssh => {
                let id = m.id.clone().unwrap_or_else(|| "default".into());
                Ok(ExecMount {
                    target: target.unwrap_or_else(|| "/run/buildkit/ssh_agent.0".into()),
                    input: None,
                    selector: String::new(),
                    kind: MountKind::Ssh {
                        id,
                        required: m.required,
                        uid: m.uid,
                        gid: m.gid,
                        mode: m.mode,
                    },
                })
            }
        }
    }
}
