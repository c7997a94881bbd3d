//! `kiln build`: flags → frontend → solver → exporter.

use crate::{emit, fail, Reported};
use kiln_builder::fileop;
use kiln_builder::remote_cache::{self, CacheTo};
use kiln_builder::{BuildWorker, ProgressMode, StoreImages};
use kiln_executor::view;
use kiln_frontend_dockerfile::dockerignore::Ignore;
use kiln_frontend_dockerfile::lower::{self, Lowered};
use kiln_frontend_dockerfile::plan::Platform;
use kiln_parser::ParseError;
use kiln_solver::VertexId;
use kiln_store::{LayerStack, Reference, Store};
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct BuildOptions {
    /// The Dockerfile (`-` for standard input) [default: CONTEXT/Dockerfile]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Name the image (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    tags: Vec<String>,
    /// A build arg: `K=V`, or `K` to take the value from the environment.
    #[arg(long = "build-arg", value_name = "K[=V]")]
    build_args: Vec<String>,
    /// The stage to build [default: the last one].
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// Run every step; use no cached result.
    #[arg(long)]
    no_cache: bool,
    /// Stages whose steps are never taken from the cache.
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',')]
    no_cache_filter: Vec<String>,
    /// A label for the image: `K=V` (repeatable).
    #[arg(long = "label", value_name = "K=V")]
    labels: Vec<String>,
    /// Network for RUN steps: `default` (the host's, as buildkitd without CNI), `host` or `none`.
    #[arg(long, default_value = "default", value_parser = ["default", "host", "none"])]
    network: String,
    /// Allow an entitlement: `network.host` lets `RUN --network=host` use
    /// the host's network (refused otherwise, as BuildKit does).
    #[arg(long = "allow", value_name = "ENTITLEMENT", value_parser = ["network.host"])]
    allow: Vec<String>,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` or `id=ID,env=VAR`.
    #[arg(long = "secret", value_name = "SPEC")]
    secrets: Vec<String>,
    /// Target platform; only the host's is supported (no emulation).
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<String>,
    /// Resolve every base image against its registry again (else images
    /// already in the store are used, so builds work offline).
    #[arg(long)]
    pull: bool,
    /// Push the image to its registry under each tag (same as
    /// `-o type=image,push=true`).
    #[arg(long)]
    push: bool,
    /// Export the build cache: `type=local,dest=DIR` or
    /// `type=registry,ref=REF` (with `,mode=min|max` and `,mounts=true`
    /// for `RUN --mount=type=cache` contents), or `type=inline` (in the
    /// image's config). Repeatable.
    #[arg(long = "cache-to", value_name = "SPEC")]
    cache_to: Vec<String>,
    /// Use an exported cache: `type=local,src=DIR` or
    /// `type=registry,ref=REF` (or an image pushed with inline cache).
    /// Repeatable.
    #[arg(long = "cache-from", value_name = "SPEC")]
    cache_from: Vec<String>,
    /// Say why each step that ran missed the cache (which instruction,
    /// build arg / ENV value, context file or earlier step changed);
    /// `--progress plain` always says it.
    #[arg(long)]
    explain: bool,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Print only the image ID; no progress.
    #[arg(short, long)]
    quiet: bool,
    /// Progress output: `auto` (tty when stderr is a terminal), `tty`, `plain` or `quiet`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "tty", "plain", "quiet"])]
    progress: String,
    /// Output: `type=image` (default: store it under its tags),
    /// `type=oci|docker,dest=FILE` (an archive), `type=tar,dest=FILE` (the
    /// root filesystem) or `type=local,dest=DIR`; a bare path means local.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    output: Option<String>,
    /// The build context directory.
    #[arg(value_name = "CONTEXT")]
    context: PathBuf,
}

enum OutputSpec {
    Image { push: bool },
    Archive(PathBuf),
    Tar(PathBuf),
    Local(PathBuf),
}

fn parse_output(spec: Option<&str>) -> Result<OutputSpec, Reported> {
    let Some(spec) = spec else {
        return Ok(OutputSpec::Image { push: false });
    };
    if !spec.contains('=') {
        return Ok(OutputSpec::Local(PathBuf::from(spec)));
    }
    let mut kind = None;
    let mut dest = None;
    let mut push = false;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(PathBuf::from(v)),
            Some(("push", v)) => {
                push = match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(fail(format!("-o {spec}: push={v}: want true or false"))),
                }
            }
            _ => {
                return Err(fail(format!(
                    "-o {spec}: unknown option {part:?} (use type=...,dest=...)"
                )))
            }
        }
    }
    let need_dest = |dest: Option<PathBuf>| {
        dest.ok_or_else(|| fail(format!("-o {spec}: this output type needs dest=PATH")))
    };
    match kind.as_deref() {
        Some("image") | None => Ok(OutputSpec::Image { push }),
        _ if push => Err(fail(format!("-o {spec}: push=true needs type=image"))),
        Some("oci") | Some("docker") => Ok(OutputSpec::Archive(need_dest(dest)?)),
        Some("tar") => Ok(OutputSpec::Tar(need_dest(dest)?)),
        Some("local") => Ok(OutputSpec::Local(need_dest(dest)?)),
        Some(other) => Err(fail(format!(
            "-o {spec}: unknown output type {other:?}: use image, oci, docker, tar or local"
        ))),
    }
}

fn parse_secrets(specs: &[String]) -> Result<HashMap<String, Vec<u8>>, Reported> {
    let mut out = HashMap::new();
    for spec in specs {
        let mut id = None;
        let mut data = None;
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => {
                    data = Some(
                        std::fs::read(v)
                            .map_err(|e| fail(format!("--secret {spec}: cannot read {v}: {e}")))?,
                    )
                }
                Some(("env", v)) => {
                    data = Some(
                        std::env::var(v)
                            .map_err(|_| fail(format!("--secret {spec}: ${v} is not set")))?
                            .into_bytes(),
                    )
                }
                Some(("type", "file" | "env")) => {}
                _ => return Err(fail(format!("--secret {spec}: unknown option {part:?}"))),
            }
        }
        let id = id.ok_or_else(|| fail(format!("--secret {spec}: needs id=ID")))?;
        let data = match data {
            Some(d) => d,
            None => std::env::var(&id)
                .map(String::into_bytes)
                .map_err(|_| fail(format!("--secret {spec}: give src=FILE or env=VAR")))?,
        };
        out.insert(id, data);
    }
    Ok(out)
}

fn parse_platform(p: Option<&str>) -> Result<Option<Platform>, Reported> {
    let Some(p) = p else { return Ok(None) };
    let host = Platform::host();
    let parts: Vec<&str> = p.split('/').collect();
    let (os, arch, variant) = match parts.as_slice() {
        [os, arch] => (*os, *arch, ""),
        [os, arch, variant] => (*os, *arch, *variant),
        _ => return Err(fail(format!("--platform {p}: expected OS/ARCH[/VARIANT]"))),
    };
    if os != host.os || arch != host.arch {
        return Err(fail(format!(
            "--platform {p}: this machine builds only {}/{} (no emulation)",
            host.os, host.arch
        )));
    }
    Ok(Some(Platform {
        os: os.into(),
        arch: arch.into(),
        variant: variant.into(),
    }))
}

/// Prints a Dockerfile error at its position.
/// Prints `message` at the Dockerfile line of the step `id` (or plainly
/// for steps without one).
fn report_step(
    lowered: &Lowered,
    id: VertexId,
    message: &str,
    name: &str,
    source: &str,
) -> Reported {
    match lowered.steps.get(&id).and_then(|s| s.span) {
        Some(span) => eprint!(
            "{}",
            ParseError::new(span.start, message).render(name, source)
        ),
        None => {
            let _ = fail(message);
        }
    }
    Reported
}

pub fn build(
    store: Store,
    client: Arc<kiln_registry::Client>,
    o: BuildOptions,
) -> Result<i32, Reported> {
    let store = Arc::new(store);
    let context = o
        .context
        .canonicalize()
        .map_err(|e| fail(format!("build context {}: {e}", o.context.display())))?;
    if !context.is_dir() {
        return Err(fail(format!(
            "build context {}: not a directory",
            o.context.display()
        )));
    }
    let dockerfile = o.file.clone().unwrap_or_else(|| context.join("Dockerfile"));
    let crate::Loaded {
        name,
        text: source,
        df,
    } = crate::load_dockerfile(&dockerfile)?;
    // `<Dockerfile>.dockerignore` wins over the context's `.dockerignore`.
    let specific = PathBuf::from(format!("{}.dockerignore", dockerfile.display()));
    let ignore_file = if dockerfile != Path::new("-") && specific.is_file() {
        Some(specific)
    } else {
        Some(context.join(".dockerignore")).filter(|p| p.is_file())
    };
    let ignore = match &ignore_file {
        None => Ignore::empty(),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| fail(format!("{}: {e}", p.display())))?;
            Ignore::parse(&text).map_err(|e| fail(format!("{}: {e}", p.display())))?
        }
    };

    let mut build_args = BTreeMap::new();
    for a in &o.build_args {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    let mut labels = BTreeMap::new();
    for l in &o.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut output = parse_output(o.output.as_deref())?;
    if o.push {
        match &mut output {
            OutputSpec::Image { push } => *push = true,
            _ => return Err(fail("--push needs the image output (not -o local/tar/oci)")),
        }
    }
    if matches!(output, OutputSpec::Image { push: true }) && o.tags.is_empty() {
        return Err(fail("--push needs a name to push to: give -t NAME"));
    }
    let tags: Vec<Reference> = o
        .tags
        .iter()
        .map(|t| Reference::parse(t).map_err(|e| fail(format!("-t {t}: {e}"))))
        .collect::<Result<_, _>>()?;
    let secrets = parse_secrets(&o.secrets)?;
    let cache_to: Vec<CacheTo> = o
        .cache_to
        .iter()
        .map(|spec| {
            remote_cache::parse_cache_to(spec).map_err(|e| fail(format!("--cache-to {spec}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let cache_from: Vec<remote_cache::Location> = o
        .cache_from
        .iter()
        .map(|spec| {
            remote_cache::parse_cache_from(spec)
                .map_err(|e| fail(format!("--cache-from {spec}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let platform = parse_platform(o.platform.as_deref())?;
    let pull_platform = match &platform {
        Some(p) => kiln_registry::Platform {
            os: p.os.clone(),
            architecture: p.arch.clone(),
            variant: Some(p.variant.clone()).filter(|v| !v.is_empty()),
        },
        None => kiln_registry::Platform::host(),
    };
    let options = lower::Options {
        build_args,
        target: o.target.clone(),
        platform,
        labels,
        network: o.network.clone(),
        allow_host_network: o.allow.iter().any(|a| a == "network.host"),
        no_cache_stages: o.no_cache_filter.clone(),
        ignore: ignore.patterns().to_vec(),
    };
    let images = StoreImages {
        store: &store,
        registry: Some(&client),
        always_pull: o.pull,
        platform: pull_platform,
        verbose: !o.quiet && o.progress != "quiet",
    };
    let lowered = lower::lower(&df, &options, &images).map_err(|e| {
        eprint!("{}", e.render(&name, &source));
        Reported
    })?;
    let def = Arc::new(lowered.definition.clone());
    let ignore = Arc::new(ignore);
    let downloads = Arc::new(
        kiln_builder::download::Downloads::new(&store, client.clone())
            .map_err(|e| fail(format!("download area: {e}")))?,
    );
    let (keys, context_files) =
        kiln_builder::cache_keys(&store, &def, lowered.target, &context, &downloads).map_err(
            |(id, m)| {
                let text = lowered
                    .steps
                    .get(&id)
                    .map(|s| s.text.trim().to_string())
                    .unwrap_or_default();
                report_step(&lowered, id, &format!("{text}: {m}"), &name, &source)
            },
        )?;
    let mut by_key: HashMap<kiln_solver::Fingerprint, Vec<VertexId>> = HashMap::new();
    for (id, _) in def.vertices() {
        by_key.entry(keys[id.0]).or_default().push(id);
    }
    let mode = match (o.quiet, o.progress.as_str()) {
        (true, _) | (_, "quiet") => ProgressMode::Quiet,
        (_, "plain") => ProgressMode::Plain,
        (_, "tty") => ProgressMode::Tty,
        _ if std::io::stderr().is_terminal() => ProgressMode::Tty,
        _ => ProgressMode::Plain,
    };
    let mut progress = kiln_builder::progress::Progress::new(mode, Box::new(std::io::stderr()));
    progress.explain = o.explain;
    let progress = Arc::new(progress);
    // Other machines' caches: their records now, their layers on a hit.
    // An unreachable cache is a warning, never a failed build.
    let mut imports = Vec::new();
    for from in &cache_from {
        match remote_cache::import(&store, client.clone(), from) {
            Ok(imported) => {
                for w in
                    imported.restore_mounts(&store, &|id| kiln_builder::cache_mount_dir(&store, id))
                {
                    progress.warn(&w);
                }
                imports.push(imported);
            }
            Err(e) => progress.warn(&format!("{e}; building without it")),
        }
    }
    let worker = Arc::new(BuildWorker {
        store: store.clone(),
        context: Arc::new(context.clone()),
        ignore,
        secrets,
        progress: progress.clone(),
        labels: lowered
            .steps
            .iter()
            .map(|(id, s)| (*id, s.label.clone()))
            .collect(),
        by_key,
        def: def.clone(),
        write_opts: Default::default(),
        downloads,
        imports,
        no_cache: if o.no_cache {
            def.vertices().map(|(id, _)| id).collect()
        } else {
            lowered.no_cache.clone()
        },
        keys: keys.clone(),
        explain: kiln_builder::Explain {
            // The project: where its context is and which Dockerfile.
            project: format!("{}\0{}", context.display(), name),
            context_files,
        },
    });
    let target_key = keys[lowered.target.0].hex();
    let solved = kiln_builder::solve(worker.clone(), &lowered);
    progress.finish();
    let stack = match solved {
        Ok(s) => s,
        Err((id, message)) => {
            return Err(report_failure(
                &lowered, &progress, id, &message, &name, &source,
            ))
        }
    };
    // The image's time: SOURCE_DATE_EPOCH, else when the target's result
    // was first made, so a fully cached rebuild gives the same image ID.
    let created = kiln_store::rfc3339(epoch.unwrap_or_else(|| {
        store
            .cache_created(&target_key)
            .ok()
            .flatten()
            .unwrap_or(now)
    }));
    let inline = cache_to
        .iter()
        .any(|t| t.location.is_none())
        .then(|| kiln_builder::cache_records(&store, &lowered, &keys, false, &worker.imports));
    let code = export(
        &store, &client, &lowered, &stack, &created, &tags, output, inline, &o,
    )?;
    for to in &cache_to {
        let Some(location) = &to.location else {
            continue;
        };
        let start = std::time::Instant::now();
        let mut config = remote_cache::CacheConfig {
            version: 1,
            records: kiln_builder::cache_records(&store, &lowered, &keys, to.max, &worker.imports),
            mounts: Vec::new(),
        };
        if to.mounts {
            config.mounts =
                remote_cache::mount_blobs(&store, &kiln_builder::cache_mounts(&store, &lowered))
                    .map_err(|e| fail(format!("--cache-to {location}: {e}")))?;
        }
        let report = remote_cache::export(&store, &client, location, &config).map_err(fail)?;
        if !o.quiet {
            eprintln!(
                "exporting cache to {location}: {} records, {} new blob(s) ({}) in {:.1}s done",
                report.records,
                report.blobs,
                crate::images::human_size(report.bytes),
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(code)
}

fn report_failure(
    lowered: &Lowered,
    progress: &kiln_builder::progress::Progress,
    id: VertexId,
    message: &str,
    name: &str,
    source: &str,
) -> Reported {
    let step = lowered.steps.get(&id);
    let label = step.map(|s| s.label.clone()).unwrap_or_default();
    eprintln!("------");
    eprintln!(" > {}:", kiln_parser::terminal_safe_line(&label));
    for line in progress.tail(id) {
        eprintln!("   {line}");
    }
    eprintln!("------");
    report_step(lowered, id, message, name, source)
}

#[allow(clippy::too_many_arguments)]
fn export(
    store: &Arc<Store>,
    client: &kiln_registry::Client,
    lowered: &Lowered,
    stack: &LayerStack,
    created: &str,
    tags: &[Reference],
    output: OutputSpec,
    inline_cache: Option<Vec<remote_cache::CacheRecord>>,
    o: &BuildOptions,
) -> Result<i32, Reported> {
    let (mut config, layers) = kiln_builder::image_config(lowered, stack, created);
    if let Some(records) = inline_cache {
        // `--cache-to type=inline`: the image carries its own chain's records.
        config[remote_cache::INLINE_KEY] = serde_json::to_value(remote_cache::CacheConfig {
            version: 1,
            records,
            mounts: Vec::new(),
        })
        .unwrap_or_default();
    }
    match output {
        OutputSpec::Local(dir) => return export_local(store, stack, &dir),
        OutputSpec::Tar(file) => return export_tar(store, stack, &file),
        _ => {}
    }
    let image = store
        .commit_built_image(config, &layers, tags)
        .map_err(|e| fail(format!("storing the image: {e}")))?;
    let id = image.config_digest.to_string();
    if let OutputSpec::Archive(file) = &output {
        let list: Vec<(kiln_store::Image, Option<Reference>)> = if tags.is_empty() {
            vec![(image.clone(), None)]
        } else {
            tags.iter()
                .map(|t| (image.clone(), Some(t.clone())))
                .collect()
        };
        write_atomically(file, |f| store.save(&list, f).map_err(|e| e.to_string()))?;
    }
    if let Some(f) = &o.iidfile {
        std::fs::write(f, &id).map_err(|e| fail(format!("--iidfile {}: {e}", f.display())))?;
    }
    if o.quiet {
        emit(&format!("{id}\n"))?;
    } else {
        eprintln!("writing image {id} done");
        for t in tags {
            eprintln!("naming to {} done", t.familiar());
        }
    }
    if let OutputSpec::Image { push: true } = output {
        for t in tags {
            crate::registry::push_image(store, client, &image, t, o.quiet)?;
        }
    }
    Ok(0)
}

fn write_atomically(
    file: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<(), String>,
) -> Result<(), Reported> {
    let tmp = PathBuf::from(format!(
        "{}.kiln-tmp-{}",
        file.display(),
        std::process::id()
    ));
    let result = std::fs::File::create(&tmp)
        .map_err(|e| e.to_string())
        .and_then(|mut f| {
            write(&mut f)?;
            f.sync_all().map_err(|e| e.to_string())
        })
        .and_then(|()| std::fs::rename(&tmp, file).map_err(|e| e.to_string()));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(format!("writing {}: {e}", file.display())));
    }
    Ok(())
}

/// `-o type=local`: the final filesystem copied into a directory.
fn export_local(store: &Store, stack: &LayerStack, dir: &Path) -> Result<i32, Reported> {
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let scratch = store.scratch_dir("export").map_err(fail)?;
    let result = (|| -> Result<(), String> {
        let lowers = store.snapshot_chain(stack).map_err(|e| e.to_string())?;
        let src = view::readonly(&lowers, &scratch.join("empty")).map_err(|e| e.to_string())?;
        let dst = view::host_dir(dir).map_err(|e| e.to_string())?;
        let spec = fileop::CopySpec {
            paths: &["/".to_string()],
            dest: "/",
            attrs: fileop::Attrs {
                chown: None,
                chmod: None,
                keep_owner: true,
            },
            parents: false,
            unpack: false,
        };
        let filter = fileop::Filter {
            ignore: None,
            exclude: None,
            base: String::new(),
        };
        fileop::copy(src.root(), dst.root(), &spec, &filter)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result.map_err(|e| fail(format!("-o type=local: {e}")))?;
    Ok(0)
}

/// `-o type=tar`: the final filesystem as one tar.
fn export_tar(store: &Store, stack: &LayerStack, file: &Path) -> Result<i32, Reported> {
    let scratch = store.scratch_dir("export").map_err(fail)?;
    let result = (|| -> Result<(), Reported> {
        let lowers = store.snapshot_chain(stack).map_err(fail)?;
        let src = view::readonly(&lowers, &scratch.join("empty")).map_err(fail)?;
        let root = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&src.root())
        ));
        write_atomically(file, |f| {
            let mut b = tar::Builder::new(f);
            b.follow_symlinks(false);
            b.append_dir_all(".", &root).map_err(|e| e.to_string())?;
            b.finish().map_err(|e| e.to_string())
        })
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result?;
    Ok(0)
}
