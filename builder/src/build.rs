//! One build, end to end, in the style of BuildKit's `llbsolver.Solve`:
//! the Dockerfile parsed and lowered, cache keys computed, the graph
//! solved by the worker, the result exported, the cache exported.

use crate::contexts::{self, Contexts};
use crate::download::Downloads;
use crate::error::{BuildError, StepError};
use crate::export;
use crate::images::StoreImages;
use crate::keys;
use crate::platforms;
use crate::progress::Progress;
use crate::remote_cache::{self, Exported, Location};
use crate::request::Output;
use crate::request::{BuildRequest, NoCache};
use crate::worker::{BuildWorker, Output as StepOutput};
use kiln_frontend_dockerfile::dockerignore::Ignore;
use kiln_frontend_dockerfile::lower::{self, Lowered, NamedContext};
use kiln_frontend_dockerfile::plan::Platform;
use kiln_frontend_dockerfile::LowerError;
use kiln_solver::{CacheKey, Cancel, Failure, VertexId};
use kiln_store::{Image, LayerStack, Reference, Store};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs builds.
pub struct Build;

/// What a build made.
#[derive(Debug)]
pub struct Built {
    /// The image, for the image and archive outputs (of a multi-platform
    /// build: this machine's platform's, else the first).
    pub image: Option<Image>,
    /// Every platform's image, in `--platform` order.
    pub images: Vec<Image>,
    /// Each name pushed (`--push`), how the push went and how long it took.
    pub pushed: Vec<(Reference, kiln_registry::Pushed, std::time::Duration)>,
    /// Each `--cache-to` location, what was written and how long it took.
    pub cache_exports: Vec<(Location, Exported, std::time::Duration)>,
    /// What the build checks found (shown as they were found, and again
    /// at the end).
    pub warnings: Vec<kiln_frontend_dockerfile::checks::CheckWarning>,
}

impl Build {
    /// Builds `request`. Progress (and warnings) go to `progress`; the
    /// registry client pulls bases, downloads, pushes and moves caches.
    pub fn run(
        store: &Arc<Store>,
        registry: &Arc<kiln_registry::Client>,
        request: &BuildRequest,
        progress: &Arc<Progress>,
    ) -> Result<Built, BuildError> {
        progress.set_explain(request.explain);
        let (contexts, named) = open_contexts(request)?;
        let ignore = contexts.main_ignore();
        // Build checks first, once for every platform: shown, and with
        // `error=true` the build stops before anything runs.
        let mut warnings = Vec::new();
        let mut checked = None;
        if !request.dockerfile.text.is_empty() {
            let found = checks(store, request, ignore)?;
            report_checks(request, progress, &found.config, &found.warnings)?;
            warnings = found.warnings.clone();
            checked = Some(found);
        }
        let platforms: Vec<Option<Platform>> = if request.platforms.is_empty() {
            vec![None]
        } else {
            request.platforms.iter().cloned().map(Some).collect()
        };
        let mut parts = Vec::new();
        for platform in platforms {
            let lowered = lower_dockerfile(
                store,
                Some(registry),
                request,
                platform.as_ref(),
                (&contexts, &named),
                progress,
            )?;
            parts.push((platform, lowered));
        }
        let (lowered, views) = platforms::combine(parts);
        // The lowering's own checks (a base image for another platform).
        if let Some(checked) = &checked {
            let found: Vec<_> = lowered
                .warnings
                .iter()
                .filter(|w| checked.config.keeps(w, &checked.df))
                .cloned()
                .collect();
            report_checks(request, progress, &checked.config, &found)?;
            warnings.extend(found);
            warnings.sort_by_key(|w| w.line);
        }
        check_emulation(&lowered)?;
        let multi = views.len() > 1;
        let targets: Vec<VertexId> = views.iter().map(|v| v.lowered.target).collect();
        // A SOURCE_DATE_EPOCH build arg (or global ARG default) wins over
        // the environment's.
        let epoch = lowered.source_date_epoch.or(request.epoch);
        let def = Arc::new(lowered.definition.clone());
        let downloads = Arc::new(Downloads::new(store, registry.clone())?);
        let (keys, context_files) = keys::cache_keys(
            store,
            &def,
            &targets,
            &contexts,
            &downloads,
            &crate::git::Access::dockerfile(
                store,
                request.ssh.get("default").map(PathBuf::as_path),
            ),
        )
        .map_err(|(id, e)| step_error(&lowered, id, Failure::Worker(e), Vec::new()))?;
        let imports = import_caches(store, registry, &request.cache_from, progress);
        let worker = Arc::new(BuildWorker {
            store: store.clone(),
            contexts: contexts.clone(),
            secrets: request.secrets.clone(),
            ssh: request.ssh.clone(),
            progress: progress.clone(),
            labels: lowered
                .steps
                .iter()
                .map(|(id, s)| (*id, s.label.clone()))
                .collect(),
            texts: lowered
                .steps
                .iter()
                .map(|(id, s)| (*id, s.text.clone()))
                .collect(),
            by_key: by_key(&def, &keys),
            def: def.clone(),
            pending: Default::default(),
            downloads,
            imports,
            no_cache: match request.no_cache {
                NoCache::All => def.vertices().map(|(id, _)| id).collect(),
                NoCache::Stages(_) | NoCache::None => with_dependents(&def, &lowered.no_cache),
            },
            keys: keys.clone(),
            // The project: where its context is and which Dockerfile.
            project: format!("{}\0{}", contexts.main().display(), request.dockerfile.name),
            context_files,
        });
        let solved = solve(worker.clone(), &targets);
        // What ran is recorded whether or not the build succeeded.
        worker.commit_records();
        progress.finish();
        let stacks = solved.map_err(|e| {
            let output = progress.tail(e.vertex);
            let source = e.source.clone();
            step_error(&lowered, e.vertex, source, output)
        })?;
        // Layer tars clamp their mtimes to the epoch (reproducible builds).
        let layer_epoch = epoch.map(|e| e.max(0) as u64);
        let mut images = Vec::new();
        let mut pushed = Vec::new();
        for (view, stack) in views.iter().zip(&stacks) {
            if multi && matches!(request.output, Output::Tar { .. }) {
                continue; // one tar for every platform, written below
            }
            // The image's time: SOURCE_DATE_EPOCH, else when the target's
            // result was first made, so a fully cached rebuild gives the
            // same image ID.
            let target_key = keys[view.lowered.target.0].hex();
            let created = kiln_store::rfc3339(epoch.unwrap_or_else(|| {
                store
                    .cache_created(&target_key)
                    .ok()
                    .flatten()
                    .unwrap_or_else(kiln_store::now)
            }));
            let inline = request
                .cache_to
                .iter()
                .any(|t| t.location.is_none())
                .then(|| {
                    export::cache_records(
                        store,
                        &view.lowered,
                        &keys,
                        false,
                        &worker.imports,
                        layer_epoch,
                    )
                });
            let output = match (&request.output, &view.platform) {
                // Each platform's image is named; the names are pushed
                // (or written) once all are there, as one index.
                (Output::Image { names, .. } | Output::Archive { names, .. }, Some(_)) if multi => {
                    Output::Image {
                        names: names.clone(),
                        push: false,
                    }
                }
                (
                    Output::Local {
                        dest,
                        platform_split,
                    },
                    Some(p),
                ) if multi => Output::Local {
                    dest: if *platform_split {
                        dest.join(platforms::dir_name(p))
                    } else {
                        dest.clone()
                    },
                    platform_split: *platform_split,
                },
                (other, _) => other.clone(),
            };
            let exports = export::export(
                store,
                registry,
                &view.lowered,
                stack,
                &export::Stamp {
                    created,
                    epoch: layer_epoch,
                },
                &output,
                inline,
            )?;
            images.extend(exports.image);
            pushed.extend(exports.pushed);
        }
        if let (true, Output::Image { names, push: true }) = (multi, &request.output) {
            for name in names {
                let start = std::time::Instant::now();
                let report = export::push_index(store, registry, &images, name)?;
                pushed.push((name.clone(), report, start.elapsed()));
            }
        }
        if let (true, Output::Archive { dest, names }) = (multi, &request.output) {
            export::write_archive(store, &images, names, dest)?;
        }
        if let (
            true,
            Output::Tar {
                dest,
                platform_split,
            },
        ) = (multi, &request.output)
        {
            let parts: Vec<(String, &LayerStack)> = views
                .iter()
                .zip(&stacks)
                .map(|(v, stack)| {
                    let dir = match (&v.platform, platform_split) {
                        (Some(p), true) => platforms::dir_name(p),
                        _ => ".".to_string(),
                    };
                    (dir, stack)
                })
                .collect();
            export::export_tar(store, &parts, dest)?;
        }
        let all_views: Vec<&Lowered> = views.iter().map(|v| &v.lowered).collect();
        let cache_exports = export::export_caches(
            store,
            registry,
            &all_views,
            &keys,
            &worker.imports,
            &request.cache_to,
            layer_epoch,
        )?;
        // The image commands without --platform use: this machine's.
        let host = kiln_store::host_platform_name();
        let image = images
            .iter()
            .find(|i| kiln_store::platform_name(&i.config) == host)
            .or(images.first())
            .cloned();
        // The build cache kept under the machine's limit, least recently
        // used first (what this build used is the most recent).
        if let Some(policy) = crate::gc::after_build_policy(store) {
            if let Ok(p) = crate::gc::prune(store, &policy) {
                if p.records + p.mounts > 0 {
                    progress.info(&format!(
                        "build cache over its limit: removed {} record(s) and {} cache mount(s), {} bytes freed",
                        p.records, p.mounts, p.bytes
                    ));
                }
            }
        }
        Ok(Built {
            image,
            images,
            pushed,
            cache_exports,
            warnings,
        })
    }
}

impl Build {
    /// Only the build checks (`kiln build --check`): no image is pulled
    /// and nothing runs.
    pub fn check(store: &Store, request: &BuildRequest) -> Result<Checked, BuildError> {
        let context = contexts::canonical_dir(&request.context)?;
        let ignore = dockerignore(request, &context)?;
        checks(store, request, &ignore)
    }

    /// Only the frontend: the graph and image config `request` lowers
    /// to, with base images from the store alone (no registry is asked).
    /// What `kiln debug dump-graph` prints.
    pub fn lower(
        store: &Store,
        request: &BuildRequest,
        progress: &Arc<Progress>,
    ) -> Result<Lowered, BuildError> {
        let (contexts, named) = open_contexts(request)?;
        lower_dockerfile(
            store,
            None,
            request,
            request.platforms.first(),
            (&contexts, &named),
            progress,
        )
    }
}

/// The main context (with its ignore rules) and the named ones.
fn open_contexts(
    request: &BuildRequest,
) -> Result<(Arc<Contexts>, BTreeMap<String, NamedContext>), BuildError> {
    let context = contexts::canonical_dir(&request.context)?;
    let ignore = dockerignore(request, &context)?;
    let (contexts, named) = Contexts::open(context, ignore, &request.named_contexts)?;
    Ok((Arc::new(contexts), named))
}

/// The ignore rules: `<Dockerfile>.dockerignore` wins over the context's
/// `.dockerignore`.
/// What the build checks found, and how they were configured.
pub struct Checked {
    pub warnings: Vec<kiln_frontend_dockerfile::checks::CheckWarning>,
    pub config: kiln_frontend_dockerfile::checks::CheckConfig,
    /// The tree they ran on (for the lowering's own warnings' comments).
    pub df: kiln_parser::Dockerfile,
}

/// Shows check warnings as they are found; with `error=true` any of them
/// stops the build before anything runs.
fn report_checks(
    request: &BuildRequest,
    progress: &Progress,
    config: &kiln_frontend_dockerfile::checks::CheckConfig,
    warnings: &[kiln_frontend_dockerfile::checks::CheckWarning],
) -> Result<(), BuildError> {
    for w in warnings {
        progress.check_warning(
            &request.dockerfile.name,
            &kiln_frontend_dockerfile::checks::short(w),
        );
    }
    match (config.error, warnings.first()) {
        (true, Some(first)) => {
            let rules: std::collections::BTreeSet<&str> =
                warnings.iter().map(|w| w.rule.name).collect();
            Err(LowerError::invalid(
                kiln_parser::Pos::new(first.line, 1),
                format!(
                    "lint violation found for rules: {}",
                    rules.into_iter().collect::<Vec<_>>().join(", ")
                ),
            )
            .into())
        }
        _ => Ok(()),
    }
}

/// Runs the build checks on `request`'s Dockerfile. A base image's
/// environment comes from the store when it is there (UndefinedVar stays
/// quiet for a stage whose base it cannot see).
fn checks(store: &Store, request: &BuildRequest, ignore: &Ignore) -> Result<Checked, BuildError> {
    use kiln_frontend_dockerfile::checks;
    let df = kiln_parser::parse_bytes(&request.dockerfile.text).map_err(LowerError::from)?;
    let config = checks::CheckConfig::of(
        &df,
        request
            .build_args
            .get("BUILDKIT_DOCKERFILE_CHECK")
            .map(String::as_str),
    )
    .map_err(|e| LowerError::invalid(kiln_parser::Pos::new(1, 1), format!("check: {e}")))?;
    let base_env = |name: &str| -> Option<Vec<String>> {
        let image = store.resolve(name).ok()?;
        let env = image.config.get("config").and_then(|c| c.get("Env"));
        Some(
            env.and_then(|e| e.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        )
    };
    let warnings = checks::check(
        &df,
        &config,
        &checks::CheckInputs {
            build_args: &request.build_args,
            ignore: Some(ignore),
            base_env: &base_env,
        },
    );
    Ok(Checked {
        warnings,
        config,
        df,
    })
}

fn dockerignore(request: &BuildRequest, context: &Path) -> Result<Ignore, BuildError> {
    let specific = request
        .dockerfile
        .path
        .as_ref()
        .map(|p| PathBuf::from(format!("{}.dockerignore", p.display())))
        .filter(|p| p.is_file());
    contexts::read_ignore(&specific.unwrap_or_else(|| context.join(".dockerignore")))
}

/// Parses (warnings to progress) and lowers the Dockerfile, resolving
/// base images from the store or the registry.
/// `set` and every vertex that reads from it: a step rerun for
/// `--no-cache-filter` gives a new result, so what uses it cannot be
/// answered from the cache either (kiln's keys are the graph's, not the
/// results' content). Vertices come inputs first, so one pass does.
fn with_dependents(
    def: &kiln_solver::Definition,
    set: &std::collections::BTreeSet<kiln_solver::VertexId>,
) -> std::collections::BTreeSet<kiln_solver::VertexId> {
    let mut out = set.clone();
    for (id, v) in def.vertices() {
        if v.inputs.iter().any(|i| out.contains(i)) {
            out.insert(id);
        }
    }
    out
}

/// RUN steps for another architecture run under binfmt_misc emulation:
/// a machine without the emulator fails at the first such step, saying
/// what to install, before anything runs.
fn check_emulation(lowered: &Lowered) -> Result<(), BuildError> {
    // Once per platform (each check reads binfmt_misc), at its first step.
    let mut checked = std::collections::HashSet::new();
    for (id, platform) in &lowered.emulated {
        if !checked.insert(platform.name()) {
            continue;
        }
        if let Err(why) = kiln_executor::binfmt::check(&platform.arch, &platform.variant) {
            let pos = lowered
                .steps
                .get(id)
                .and_then(|s| s.span)
                .map_or(kiln_parser::Pos::new(1, 1), |s| s.start);
            return Err(
                LowerError::invalid(pos, format!("RUN for {}: {why}", platform.name())).into(),
            );
        }
    }
    Ok(())
}

fn lower_dockerfile(
    store: &Store,
    registry: Option<&kiln_registry::Client>,
    request: &BuildRequest,
    platform: Option<&Platform>,
    (contexts, named): (&Contexts, &BTreeMap<String, NamedContext>),
    progress: &Arc<Progress>,
) -> Result<Lowered, BuildError> {
    // BuildKit's front door refuses a zero-byte file before parsing (one
    // of only comments is the parser's "file with no instructions").
    if request.dockerfile.text.is_empty() {
        return Err(LowerError::invalid(
            kiln_parser::Pos::new(1, 1),
            "the Dockerfile cannot be empty",
        )
        .into());
    }
    let df = kiln_parser::parse_bytes(&request.dockerfile.text).map_err(LowerError::from)?;
    for w in &df.warnings {
        progress.dockerfile_warning(&request.dockerfile.name, w);
    }
    let options = lower::Options {
        build_args: request.build_args.clone(),
        target: request.target.clone(),
        platform: platform.cloned(),
        labels: request.labels.clone(),
        network: request.network,
        allow_host_network: request.allow_host_network,
        no_cache_stages: match &request.no_cache {
            NoCache::Stages(s) => s.clone(),
            _ => Vec::new(),
        },
        ignore: contexts.main_ignore().patterns().to_vec(),
        named_contexts: named.clone(),
    };
    let tell = |r: &Reference| progress.info(&format!("pulling {}", r.familiar()));
    let images = StoreImages {
        store,
        registry,
        always_pull: request.pull,
        on_pull: Some(&tell),
    };
    Ok(lower::lower(&df, &options, &images)?)
}

/// Other machines' caches: their records now, their layers on a hit. An
/// unreachable cache is a warning, never a failed build.
fn import_caches(
    store: &Arc<Store>,
    registry: &Arc<kiln_registry::Client>,
    from: &[Location],
    progress: &Progress,
) -> Vec<remote_cache::Imported> {
    let mut imports = Vec::new();
    for location in from {
        match remote_cache::import(store, registry.clone(), location) {
            Ok(imported) => {
                for w in
                    imported.restore_mounts(store, &|id| crate::ops::cache_mount_dir(store, id))
                {
                    progress.warn(&w);
                }
                imports.push(imported);
            }
            Err(e) => progress.warn(&format!("{e}; building without it")),
        }
    }
    imports
}

/// Which vertices each cache key answers.
fn by_key(def: &kiln_solver::Definition, keys: &[CacheKey]) -> HashMap<CacheKey, Vec<VertexId>> {
    let mut by_key: HashMap<CacheKey, Vec<VertexId>> = HashMap::new();
    for (id, _) in def.vertices() {
        by_key.entry(keys[id.0]).or_default().push(id);
    }
    by_key
}

fn step_error(
    lowered: &Lowered,
    id: VertexId,
    failure: impl Into<Arc<Failure<StepError>>>,
    output: Vec<String>,
) -> BuildError {
    BuildError::Step {
        step: lowered.steps.get(&id).cloned(),
        source: failure.into(),
        output,
    }
}

/// Runs the lowered graph; returns the target's layer stack.
/// Solves every target (one per platform) in one graph; their layer
/// stacks in `targets`' order.
fn solve(
    worker: Arc<BuildWorker>,
    targets: &[VertexId],
) -> Result<Vec<LayerStack>, kiln_solver::SolveError<StepError>> {
    let def = worker.def.clone();
    let options = kiln_solver::SolveOptions {
        no_cache: worker.no_cache.clone(),
        ..Default::default()
    };
    let first = targets.first().copied().unwrap_or(VertexId(0));
    let internal = |m: String| kiln_solver::SolveError {
        vertex: first,
        source: Arc::new(Failure::Internal(m)),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| internal(e.to_string()))?;
    let keys = worker.keys.clone();
    let outputs = rt.block_on(kiln_solver::solve_all(
        worker,
        def,
        keys,
        targets,
        options,
        Cancel::default(),
    ))?;
    outputs
        .into_iter()
        .map(|out| match out {
            StepOutput::Stack(s) => Ok((*s).clone()),
            StepOutput::Dir(..) => Err(internal("the target is not a filesystem".into())),
        })
        .collect()
}
