//! Where filesystems come from: the empty one, base images, the build
//! context, other stages (by name or index); and the state a stage starts
//! in from its base (config, history, scope, shell).

use super::config::{env_list, set_env_list};
use super::{err, History, LayerSlot, Lowerer, ResolvedImage, StageState, StepInfo, DEFAULT_PATH};
use crate::error::{LowerError, LowerErrorKind};
use crate::plan::{Base, Scope};
use kiln_parser::{Pos, Span};
use kiln_solver::{Op, Source, Vertex, VertexId};
use serde_json::Value;

impl Lowerer<'_> {
    pub(super) fn scratch(&mut self) -> Result<VertexId, LowerError> {
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

    pub(super) fn image(
        &mut self,
        reference: &str,
        span: Span,
    ) -> Result<(VertexId, ResolvedImage), LowerError> {
        let platform = self.current.platform.clone();
        let key = (reference.to_string(), platform.name());
        if let Some(hit) = self.image_cache.get(&key) {
            return Ok(hit.clone());
        }
        let resolved = self
            .images
            .resolve(reference, &platform)
            .map_err(|e| LowerError {
                pos: span.start,
                kind: LowerErrorKind::Image {
                    reference: reference.to_string(),
                    message: e.0,
                },
                hint: None,
            })?;
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
        self.image_cache.insert(key, (id, resolved.clone()));
        Ok((id, resolved))
    }

    /// The context's `include` paths as a source. Only `.dockerignore`
    /// narrows it: COPY `--exclude` patterns are relative to the copied
    /// source, not the context root, and live on the copy op.
    pub(super) fn context(
        &mut self,
        include: Vec<String>,
        span: Span,
        text: &str,
    ) -> Result<VertexId, LowerError> {
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

    pub(super) fn named_source(&mut self, from: &str, span: Span) -> Result<VertexId, LowerError> {
        let current = self.current.index;
        let index =
            crate::plan::resolve_ref(from, &self.plan.stages).map_err(|m| err(span.start, m))?;
        match index {
            Some(i) if i >= current => Err(self.forward_ref(from, i, span.start)),
            Some(i) => self.stage(i, span.start),
            None => match self.named_context(from) {
                Some((key, context)) => Ok(self.named_state(&key, &context, span)?.fs),
                None => Ok(self.image(from, span)?.0),
            },
        }
    }

    /// Why a stage cannot use stage `later` (itself or one defined after
    /// it), as BuildKit says it: a circle of stages is "circular
    /// dependency detected", anything else "cannot copy from stage".
    fn forward_ref(&mut self, from: &str, later: usize, pos: Pos) -> LowerError {
        let current = self.current.index;
        let cycle = if later == current {
            Some(self.cycle_error(current, pos))
        } else {
            // Lowering the later stage finds the circle if there is one
            // (it reaches this stage again); the build fails either way.
            match self.stage(later, pos) {
                Err(e) if matches!(e.kind, LowerErrorKind::Cycle { .. }) => Some(e),
                _ => None,
            }
        };
        cycle.unwrap_or_else(|| {
            err(
                pos,
                format!(
                    "cannot copy from stage {from:?}, it needs to be defined before current stage {:?}",
                    self.current.label
                ),
            )
        })
    }

    /// The state a stage starts in: its base's filesystem, config,
    /// history, scope and shell (a fresh scope: ARGs do not carry over).
    /// A named context for the base image's name answers it instead.
    pub(super) fn base_state(
        &mut self,
        base: &Base,
        from_span: Span,
    ) -> Result<StageState, LowerError> {
        Ok(match base.clone() {
            Base::Scratch => {
                let fs = self.scratch()?;
                self.empty_state(fs)
            }
            Base::Stage(i) => {
                self.stage(i, from_span.start)?;
                let base = self.done[&i].clone();
                StageState {
                    scope: Scope::new(base.scope.env().to_vec()),
                    cmd_set: false,
                    ..base
                }
            }
            Base::Image(reference) => match self.named_context(&reference) {
                Some((key, context)) => self.named_state(&key, &context, from_span)?,
                None => self.image_state(&reference, from_span)?,
            },
        })
    }

    /// InvalidBaseImagePlatform: the image source may answer with a
    /// single-platform image for another platform (BuildKit uses it, and
    /// warns); its OS or architecture differs from the stage's.
    fn check_base_platform(&mut self, reference: &str, img: &ResolvedImage, from_span: Span) {
        let field = |k: &str| img.config.get(k).and_then(Value::as_str).unwrap_or("");
        let (os, arch) = (field("os"), field("architecture"));
        let expected = &self.current.platform;
        if arch.is_empty() || (os == expected.os && arch == expected.arch) {
            return;
        }
        let actual = match field("variant") {
            "" => format!("{os}/{arch}"),
            v => format!("{os}/{arch}/{v}"),
        };
        self.warnings.push(crate::checks::CheckWarning {
            rule: crate::checks::INVALID_BASE_IMAGE_PLATFORM,
            message: format!(
                "Base image {reference} was pulled with platform {actual:?}, expected {:?} for current build",
                expected.name()
            ),
            line: from_span.start.line,
            end_line: from_span.end.line,
        });
    }

    /// The state an image gives a stage: its layers, config, history,
    /// shell and environment.
    pub(super) fn image_state(
        &mut self,
        reference: &str,
        from_span: Span,
    ) -> Result<StageState, LowerError> {
        let (fs, img) = self.image(reference, from_span)?;
        self.check_base_platform(reference, &img, from_span);
        let mut config = img
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
                        slot: base_slot(e),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut env = env_list(&config);
        // Every Linux stage has a PATH: BuildKit adds its default when
        // the base image's config has none.
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), DEFAULT_PATH.into()));
            set_env_list(&mut config, &env);
        }
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
        Ok(StageState {
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
            declared_args: Vec::new(),
            platform: self.current.platform.clone(),
        })
    }
}

/// A base image's history entry keeps its layer slot.
fn base_slot(entry: &Value) -> LayerSlot {
    if entry.get("empty_layer").and_then(Value::as_bool) == Some(true) {
        LayerSlot::None
    } else {
        LayerSlot::Base
    }
}
