//! `kiln build`: flags → a checked [`BuildRequest`] → [`Build::run`] →
//! what was made, rendered. The pipeline itself is the builder's.

use crate::flags::{build_args, dockerfile, parse_output, platform, secrets};
use crate::{emit, fail, CliError};
use kiln_builder::contexts::ContextSource;
use kiln_builder::progress::Progress;
use kiln_builder::remote_cache;
use kiln_builder::{Build, BuildError, BuildRequest, Built, NoCache, Output};
use kiln_solver::Network;
use kiln_store::{Reference, Store};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args, Debug, Clone)]
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
    /// Network for RUN steps: `default` (the host's, as buildkitd without
    /// CNI), `host`, `none`, or `bridge` (kiln's default bridge network:
    /// isolated from the host, NAT out; needs root).
    #[arg(long, default_value = "default", value_parser = ["default", "host", "none", "bridge"])]
    network: String,
    /// Allow an entitlement: `network.host` lets `RUN --network=host` use
    /// the host's network (refused otherwise, as BuildKit does).
    #[arg(long = "allow", value_name = "ENTITLEMENT", value_parser = ["network.host"])]
    allow: Vec<String>,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` or `id=ID,env=VAR`.
    #[arg(long = "secret", value_name = "SPEC")]
    secrets: Vec<String>,
    /// Forward an SSH agent to `RUN --mount=type=ssh`: `default` (your
    /// $SSH_AUTH_SOCK), `ID=SOCKET`, or `ID=KEYFILE[,KEYFILE]` (kiln runs
    /// an agent holding those keys for the build).
    #[arg(long = "ssh", value_name = "ID[=SOCKET|KEY]")]
    ssh: Vec<String>,
    /// A named context for FROM, `COPY --from` and `RUN --mount=from`:
    /// `NAME=DIR`, `NAME=docker-image://REF`, `NAME=GIT-URL` or
    /// `NAME=HTTPS-URL`. It replaces the image or stage of that name.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    build_contexts: Vec<String>,
    /// Target platforms, comma-separated (`linux/amd64,linux/arm64`);
    /// another architecture's RUN steps run under binfmt_misc emulation.
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
    /// Write what the build made as JSON to this file, with buildx's keys:
    /// `containerimage.digest` (the pushed digest, an index's for several
    /// platforms), `containerimage.config.digest`, `image.name`.
    #[arg(long = "metadata-file", value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// Print only the image ID; no progress.
    #[arg(short, long)]
    quiet: bool,
    /// Progress output: `auto` (tty when stderr is a terminal), `tty`,
    /// `plain`, `rawjson` (one JSON event per line) or `quiet`. Unset, it
    /// is `$KILN_PROGRESS`, else `$BUILDKIT_PROGRESS`, else `auto`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "tty", "plain", "rawjson", "quiet"])]
    progress: String,
    /// Output: `type=image` (default: store it under its tags),
    /// `type=oci|docker,dest=FILE` (an archive), `type=tar,dest=FILE` (the
    /// root filesystem) or `type=local,dest=DIR`; a bare path means local.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    output: Option<String>,
    /// Run only the build checks (BuildKit's lint rules): nothing is
    /// built; exit 1 when any rule fires.
    #[arg(long)]
    check: bool,
    /// With --check: `text` or `json` (buildx's `--call=check,format=json`).
    #[arg(long, default_value = "text", value_parser = ["text", "json"], requires = "check")]
    format: String,
    /// The build context: a directory, `-` (a tar on stdin), a git URL
    /// (`https://host/repo.git#ref:dir`, `git://…`), or the http(s) URL of
    /// a tarball.
    #[arg(value_name = "CONTEXT")]
    context: PathBuf,
}

pub fn build(
    store: Store,
    client: Arc<kiln_registry::Client>,
    mut o: BuildOptions,
) -> Result<i32, CliError> {
    let store = Arc::new(store);
    let scratch = remote_context(&store, &client, &mut o)?;
    let result = build_in(&store, &client, &o);
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// A context that is not a local directory made into one: `-` (a tar,
/// plain or compressed, on stdin), a git URL (`#ref[:dir]`), or the
/// http(s) URL of a tarball. `-f` is then relative to it. Returns the
/// scratch directory to remove afterwards, if one was made.
fn remote_context(
    store: &Store,
    client: &Arc<kiln_registry::Client>,
    o: &mut BuildOptions,
) -> Result<Option<PathBuf>, CliError> {
    let spec = o.context.to_string_lossy().into_owned();
    let (dir, scratch) = if spec == "-" {
        if o.file.as_deref() == Some(std::path::Path::new("-")) {
            return Err(fail(
                "-f - and a build context on stdin (-) cannot both read standard input",
            ));
        }
        let dir = store.scratch_dir("context").map_err(fail)?;
        extract_context(std::io::stdin().lock(), &dir, "standard input")?;
        (dir, true)
    } else if let Some(dir) = kiln_builder::git::context(store, &spec)
        .map_err(|e| fail(format!("build context {spec}: {e}")))?
    {
        (dir, false)
    } else if spec.starts_with("http://") || spec.starts_with("https://") {
        let downloads = kiln_builder::download::Downloads::new(store, client.clone())
            .map_err(|e| fail(format!("build context {spec}: {}", e.0)))?;
        let fetched = downloads
            .get(&spec, "context.tar", None)
            .map_err(|e| fail(format!("build context {spec}: {}", e.0)))?;
        let dir = store.scratch_dir("context").map_err(fail)?;
        let tar = fetched.dir.join("context.tar");
        let file =
            std::fs::File::open(&tar).map_err(|e| fail(format!("{}: {e}", tar.display())))?;
        extract_context(file, &dir, &spec)?;
        (dir, true)
    } else {
        return Ok(None);
    };
    if let Some(f) = &o.file {
        if f.as_os_str() != "-" && f.is_relative() {
            o.file = Some(dir.join(f));
        }
    }
    o.context = dir.clone();
    Ok(scratch.then_some(dir))
}

/// Agents kiln started for `--ssh ID=KEYFILE`; killed when dropped.
struct Agents(Vec<std::process::Child>, Vec<PathBuf>);

impl Drop for Agents {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in &self.1 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// `--ssh` specs as agent sockets by id.
fn ssh_agents(
    store: &Store,
    specs: &[String],
) -> Result<(std::collections::HashMap<String, PathBuf>, Agents), CliError> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = std::collections::HashMap::new();
    let mut agents = Agents(Vec::new(), Vec::new());
    for spec in specs {
        let (id, paths) = spec.split_once('=').unwrap_or((spec, ""));
        let paths: Vec<&str> = paths.split(',').filter(|p| !p.is_empty()).collect();
        let bad = |why: String| fail(format!("--ssh {spec}: {why}"));
        let socket = match paths.as_slice() {
            [] => std::env::var_os("SSH_AUTH_SOCK")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    bad("SSH_AUTH_SOCK is not set: give ID=SOCKET or ID=KEYFILE".into())
                })?,
            [one] if std::fs::metadata(one).is_ok_and(|m| m.file_type().is_socket()) => {
                PathBuf::from(one)
            }
            keys => {
                for k in keys {
                    if !std::path::Path::new(k).is_file() {
                        return Err(bad(format!("{k}: no such socket or key file")));
                    }
                }
                let dir = store.scratch_dir("ssh").map_err(fail)?;
                agents.1.push(dir.clone());
                let sock = dir.join("agent.sock");
                let child = std::process::Command::new("ssh-agent")
                    .arg("-D")
                    .arg("-a")
                    .arg(&sock)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .map_err(|e| {
                        bad(format!("starting ssh-agent (Debian's openssh-client): {e}"))
                    })?;
                agents.0.push(child);
                let start = std::time::Instant::now();
                while !sock.exists() {
                    if start.elapsed().as_secs() > 5 {
                        return Err(bad("ssh-agent did not start".into()));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                let added = std::process::Command::new("ssh-add")
                    .args(keys)
                    .env("SSH_AUTH_SOCK", &sock)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| bad(format!("ssh-add: {e}")))?;
                if !added.status.success() {
                    return Err(bad(format!(
                        "ssh-add: {}",
                        String::from_utf8_lossy(&added.stderr).trim()
                    )));
                }
                sock
            }
        };
        out.insert(id.to_string(), socket);
    }
    Ok((out, agents))
}

/// A context tarball unpacked with the store's one safe extractor (no
/// entry leaves `dir`).
fn extract_context(
    r: impl std::io::Read,
    dir: &std::path::Path,
    what: &str,
) -> Result<(), CliError> {
    use std::os::fd::AsFd;
    let root = std::fs::File::open(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let opts = kiln_store::apply::ExtractOptions {
        whiteouts: false,
        under: "/".into(),
        owner: None,
        mode: None,
    };
    kiln_store::apply::extract(r, root.as_fd(), &opts)
        .map_err(|e| fail(format!("build context from {what}: {e}")))?;
    Ok(())
}

fn build_in(
    store: &Arc<Store>,
    client: &Arc<kiln_registry::Client>,
    o: &BuildOptions,
) -> Result<i32, CliError> {
    let store = store.clone();
    let client = client.clone();
    let o = o.clone();
    let mut request = request(&o)?;
    // The agents kiln starts for key files live until the build ends.
    let (ssh, _agents) = ssh_agents(&store, &o.ssh)?;
    request.ssh = ssh;
    if o.check {
        return check(&store, &request, &o.format);
    }
    let progress = Arc::new(Progress::new(
        progress_mode(&o)?,
        Box::new(std::io::stderr()),
    ));
    Progress::start_ticker(&progress);
    let built =
        Build::run(&store, &client, &request, &progress).map_err(|e| build_error(&request, e))?;
    show(&built, &request, &o)?;
    Ok(0)
}

/// The progress mode: `-q`, else `--progress`, else `$KILN_PROGRESS`, else
/// `$BUILDKIT_PROGRESS` (buildx's variable, so CI settings carry over);
/// `auto` is the live view on a terminal and plain lines elsewhere.
fn progress_mode(o: &BuildOptions) -> Result<kiln_builder::ProgressMode, CliError> {
    use kiln_builder::ProgressMode;
    if o.quiet {
        return Ok(ProgressMode::Quiet);
    }
    let (value, source) = match o.progress.as_str() {
        "auto" => ["KILN_PROGRESS", "BUILDKIT_PROGRESS"]
            .into_iter()
            .find_map(|var| {
                std::env::var(var)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| (v, format!("${var}")))
            })
            .unwrap_or_else(|| ("auto".into(), "--progress".into())),
        flag => (flag.to_string(), "--progress".into()),
    };
    match ProgressMode::parse(&value).map_err(|e| fail(format!("{source}: {e}")))? {
        Some(mode) => Ok(mode),
        None if std::io::stderr().is_terminal() => Ok(ProgressMode::Tty),
        None => Ok(ProgressMode::Plain),
    }
}

/// `kiln build --check`: the warnings with their source lines (or as
/// JSON); 1 when there are any, as buildx's check call exits.
fn check(store: &Store, request: &BuildRequest, format: &str) -> Result<i32, CliError> {
    use kiln_frontend_dockerfile::checks;
    let checked = Build::check(store, request).map_err(|e| build_error(request, e))?;
    let file = &request.dockerfile.name;
    let text = String::from_utf8_lossy(&request.dockerfile.text);
    let found = checked.warnings.len();
    if format == "json" {
        let v = checks::to_json(file, &text, &checked.warnings);
        crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ))?;
    } else if found == 0 {
        crate::emit("Check complete, no warnings found.\n")?;
    } else {
        let s = if found == 1 { "" } else { "s" };
        crate::emit(&format!(
            "Check complete, {found} warning{s} have been found!\n{}",
            checks::render(file, &text, &checked.warnings)
        ))?;
    }
    Ok(i32::from(found > 0))
}

/// A failed build, to be shown at its Dockerfile line.
pub(crate) fn build_error(request: &BuildRequest, error: BuildError) -> CliError {
    let file = &request.dockerfile;
    CliError::Build {
        error: Box::new(error),
        file: file.name.clone(),
        text: String::from_utf8_lossy(&file.text).into_owned(),
    }
}

/// What the build made, as `docker build` says it: the image, its names,
/// each push and each cache export.
/// `--metadata-file`: buildx's keys for what the build made (`{}` for an
/// output that is no image), written whole or not at all.
fn write_metadata(file: &Path, built: &Built, request: &BuildRequest) -> Result<(), CliError> {
    let mut meta = serde_json::Map::new();
    if let Some(image) = &built.image {
        let digest = built
            .pushed
            .iter()
            .find_map(|(_, pushed, _)| pushed.digest.clone())
            .unwrap_or_else(|| image.manifest_digest.clone());
        meta.insert("containerimage.digest".into(), digest.to_string().into());
        meta.insert(
            "containerimage.config.digest".into(),
            image.config_digest.to_string().into(),
        );
        if let Output::Image { names, .. } | Output::Archive { names, .. } = &request.output {
            if !names.is_empty() {
                let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
                meta.insert("image.name".into(), names.join(",").into());
            }
        }
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(meta))
        .map_err(|e| fail(format!("--metadata-file: {e}")))?;
    let tmp = PathBuf::from(format!(
        "{}.kiln-tmp-{}",
        file.display(),
        std::process::id()
    ));
    std::fs::write(&tmp, text + "\n")
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(format!("--metadata-file {}: {e}", file.display()))
        })
}

fn show(built: &Built, request: &BuildRequest, o: &BuildOptions) -> Result<(), CliError> {
    let human = crate::images::human_size;
    if let Some(file) = &o.metadata_file {
        write_metadata(file, built, request)?;
    }
    if let Some(image) = &built.image {
        let id = image.config_digest.to_string();
        if let Some(f) = &o.iidfile {
            std::fs::write(f, &id).map_err(|e| fail(format!("--iidfile {}: {e}", f.display())))?;
        }
        let archive_on_stdout =
            matches!(&request.output, Output::Archive { dest, .. } if dest.as_os_str() == "-");
        if o.quiet && !archive_on_stdout {
            emit(&format!("{id}\n"))?;
        } else if !o.quiet {
            eprintln!("writing image {id} done");
            if let Output::Image { names, .. } | Output::Archive { names, .. } = &request.output {
                for name in names {
                    eprintln!("naming to {} done", name.familiar());
                }
            }
        }
    }
    if o.quiet {
        return Ok(());
    }
    if !built.warnings.is_empty() {
        eprint!(
            "{}",
            kiln_frontend_dockerfile::checks::summary(
                &request.dockerfile.name,
                &String::from_utf8_lossy(&request.dockerfile.text),
                &built.warnings
            )
        );
    }
    for (name, pushed, took) in &built.pushed {
        eprintln!(
            "{}: {} blob(s) uploaded ({}), {} mounted, {} already there, in {:.1}s",
            name.familiar(),
            pushed.uploaded,
            human(pushed.bytes_uploaded),
            pushed.mounted,
            pushed.existing,
            took.as_secs_f64()
        );
        if let Some(d) = &pushed.digest {
            eprintln!("Digest: {d}");
        }
    }
    for (location, exported, took) in &built.cache_exports {
        eprintln!(
            "exporting cache to {location}: {} records, {} new blob(s) ({}) in {:.1}s done",
            exported.records,
            exported.blobs,
            human(exported.bytes),
            took.as_secs_f64()
        );
    }
    Ok(())
}

/// `--build-context NAME=VALUE`s, by name.
fn named_contexts(
    specs: &[String],
) -> Result<std::collections::BTreeMap<String, ContextSource>, CliError> {
    let mut out = std::collections::BTreeMap::new();
    for spec in specs {
        let bad = |why: &str| fail(format!("--build-context {spec}: {why}"));
        let Some((name, value)) = spec.split_once('=') else {
            return Err(bad("expected NAME=VALUE"));
        };
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        let source = ContextSource::parse(value).map_err(|e| bad(&e.0))?;
        if out.insert(name.to_string(), source).is_some() {
            return Err(bad("the name is given twice"));
        }
    }
    Ok(out)
}

/// The request the flags describe, every value checked and every file read.
fn request(o: &BuildOptions) -> Result<BuildRequest, CliError> {
    let dockerfile = dockerfile(o.file.as_deref(), &o.context)?;
    let output = output(o)?;
    let cache_to = o
        .cache_to
        .iter()
        .map(|spec| {
            remote_cache::parse_cache_to(spec).map_err(|e| fail(format!("--cache-to {spec}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let cache_from = o
        .cache_from
        .iter()
        .map(|spec| {
            remote_cache::parse_cache_from(spec)
                .map_err(|e| fail(format!("--cache-from {spec}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let epoch = crate::images::source_date_epoch()?;
    Ok(BuildRequest {
        context: o.context.clone(),
        named_contexts: named_contexts(&o.build_contexts)?,
        dockerfile,
        build_args: build_args(&o.build_args),
        target: o.target.clone(),
        platforms: platform(o.platform.as_deref())?,
        labels: o
            .labels
            .iter()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        network: match o.network.as_str() {
            "host" => Network::Host,
            "none" => Network::None,
            "bridge" => Network::Bridge,
            _ => Network::Default,
        },
        allow_host_network: o.allow.iter().any(|a| a == "network.host"),
        output,
        secrets: secrets(&o.secrets)?,
        ssh: std::collections::HashMap::new(),
        cache_to,
        cache_from,
        epoch,
        no_cache: if o.no_cache {
            NoCache::All
        } else if !o.no_cache_filter.is_empty() {
            NoCache::Stages(o.no_cache_filter.clone())
        } else {
            NoCache::None
        },
        pull: o.pull,
        explain: o.explain,
    })
}

/// `-o`, `--push` and `-t` together.
fn output(o: &BuildOptions) -> Result<Output, CliError> {
    let names: Vec<Reference> = o
        .tags
        .iter()
        .map(|t| Reference::parse(t).map_err(|e| fail(format!("-t {t}: {e}"))))
        .collect::<Result<_, _>>()?;
    let mut output = parse_output(o.output.as_deref(), names)?;
    if o.push {
        match &mut output {
            Output::Image { push, .. } => *push = true,
            _ => return Err(fail("--push needs the image output (not -o local/tar/oci)")),
        }
    }
    if let Output::Image { push: true, names } = &output {
        if names.is_empty() {
            return Err(fail("--push needs a name to push to: give -t NAME"));
        }
    }
    Ok(output)
}
