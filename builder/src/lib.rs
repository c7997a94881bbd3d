//! `kiln build`: the Dockerfile frontend's graph, solved on the real
//! executor and store, exported as an image.
//!
//! Owns: the solver's [`Worker`] for real ops (RUN in containers, file ops
//! on detached overlay views, sources from the store and the context), the
//! cache index lookups, progress output and the exporters. The frontend,
//! the solver, the executor and the store stay unaware of each other.

pub mod download;
pub mod explain;
pub mod fileop;
pub mod progress;
pub mod remote_cache;

use kiln_executor::{view, Mount, MountSource, Network, Sharing, Spec, Stdio};
use kiln_frontend_dockerfile::dockerignore::Ignore;
use kiln_frontend_dockerfile::lower::{ImageSource, LayerSlot, Lowered, ResolvedImage};
use kiln_solver::{
    Cancel, Definition, Exec, FileOp, Fingerprint, MountKind, Op, Source, Vertex, VertexId, Worker,
};
use kiln_store::layer::WriteOptions;
use kiln_store::{LayerRef, LayerStack, Reference, Store};
use progress::Progress;
use serde_json::{json, Value};
use sha2::Digest as _;
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use progress::Mode as ProgressMode;

/// What a vertex produced.
#[derive(Clone)]
pub enum Output {
    /// A filesystem as a layer stack.
    Stack(Arc<LayerStack>),
    /// A host directory (the build context, a download), with the
    /// context's ignore rules.
    Dir(Arc<PathBuf>, Arc<Ignore>),
}

impl Output {
    fn stack(&self) -> Result<&LayerStack, String> {
        match self {
            Output::Stack(s) => Ok(s),
            Output::Dir(..) => Err("internal error: expected a filesystem".into()),
        }
    }
}

/// The store as the frontend's image source; images it lacks are pulled
/// when a registry client is given.
pub struct StoreImages<'a> {
    pub store: &'a Store,
    /// None: offline, the store only.
    pub registry: Option<&'a kiln_registry::Client>,
    /// `--pull`: resolve every image against its registry again.
    pub always_pull: bool,
    pub platform: kiln_registry::Platform,
    /// Say what is pulled (on stderr).
    pub verbose: bool,
}

impl<'a> StoreImages<'a> {
    /// The image `reference` names: from the store, else pulled.
    pub fn image(&self, reference: &str) -> Result<kiln_store::Image, String> {
        let local = if self.always_pull {
            None
        } else {
            match self.store.resolve(reference) {
                Ok(image) => return Ok(image),
                Err(e) => Some(e),
            }
        };
        let hint = "(kiln pull, kiln load or kiln import put images in the local store)";
        let parsed = Reference::parse(reference);
        match (self.registry, parsed) {
            (Some(client), Ok(r)) => {
                if self.verbose {
                    eprintln!("pulling {}", r.familiar());
                }
                client
                    .pull(self.store, &r, &self.platform)
                    .map(|p| p.image)
                    .map_err(|e| match &local {
                        Some(_) => format!("{e}; it is not in the local store either {hint}"),
                        None => e.to_string(),
                    })
            }
            (_, Err(e)) => Err(format!("{reference}: {e}")),
            (None, Ok(_)) => Err(format!(
                "{reference}: {} {hint}",
                local.map_or("not in the store".to_string(), |e| e.to_string())
            )),
        }
    }
}

impl ImageSource for StoreImages<'_> {
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, String> {
        let image = self.image(reference)?;
        let canonical = Reference::parse(reference)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| reference.to_string());
        Ok(ResolvedImage {
            reference: canonical,
            manifest_digest: image.manifest_digest.to_string(),
            config: image.config.clone(),
        })
    }
}

/// Runs ops for the solver.
pub struct BuildWorker {
    pub store: Arc<Store>,
    pub context: Arc<PathBuf>,
    pub ignore: Arc<Ignore>,
    pub secrets: HashMap<String, Vec<u8>>,
    pub progress: Arc<Progress>,
    pub labels: HashMap<VertexId, String>,
    /// Which vertices each cache key answers (for progress on hits).
    pub by_key: HashMap<Fingerprint, Vec<VertexId>>,
    pub def: Arc<Definition>,
    pub write_opts: WriteOptions,
    pub downloads: Arc<download::Downloads>,
    /// Other machines' caches (`--cache-from`), asked after the store.
    pub imports: Vec<remote_cache::Imported>,
    /// Every vertex's cache key, by vertex index.
    pub keys: Vec<Fingerprint>,
    /// Vertices never looked up (`--no-cache`: all; `--no-cache-filter`:
    /// those stages').
    pub no_cache: std::collections::BTreeSet<VertexId>,
    /// Why steps miss: the project's identity (see [`explain::step_id`])
    /// and the context files each context source reads.
    pub explain: Explain,
}

/// What the worker needs to say why a step missed the cache.
#[derive(Default)]
pub struct Explain {
    pub project: String,
    pub context_files: ContextFiles,
}

/// Per context source: (path, short checksum) of each file it selects.
pub type ContextFiles = HashMap<VertexId, kiln_store::FileSums>;

/// The host directory behind `RUN --mount=type=cache,id=ID`.
pub fn cache_mount_dir(store: &Store, id: &str) -> PathBuf {
    store
        .root()
        .join("cache-mounts")
        .join(hex::encode(sha2::Sha256::digest(id.as_bytes())))
}

impl BuildWorker {
    /// A result from an imported cache: its layers are fetched now. A
    /// blob that is missing or corrupt costs a warning and a rebuild.
    fn imported(&self, key: &Fingerprint, id: VertexId) -> Option<LayerStack> {
        let hex = key.hex();
        for import in &self.imports {
            let Some(record) = import.record(&hex) else {
                continue;
            };
            match import.restore(&self.store, record) {
                Ok(stack) => return Some(stack),
                Err(e) => self.progress.warn(&format!(
                    "cache from {} unusable for {}: {e}; building the step",
                    import.location(),
                    self.label(id)
                )),
            }
        }
        None
    }

    /// What a step is now, for comparing with its last run.
    fn step_state(&self, id: VertexId, vertex: &Vertex, key: &Fingerprint) -> explain::StepState {
        let label = self.label(id);
        let text = label
            .split_once("] ")
            .map_or(label.as_str(), |(_, t)| t)
            .to_string();
        let env = match &vertex.op {
            Op::Exec(x) => x.env.iter().cloned().collect(),
            _ => Default::default(),
        };
        let mut files = std::collections::BTreeMap::new();
        let mut inputs = Vec::new();
        for input in &vertex.inputs {
            if let Some(list) = self.explain.context_files.get(input) {
                files.extend(list.iter().cloned());
            }
            let input_key = self.keys.get(input.0).map(|k| k.hex()).unwrap_or_default();
            inputs.push((input_key, self.label(*input)));
        }
        explain::StepState {
            key: key.hex(),
            text,
            env,
            files,
            inputs,
        }
    }

    fn label(&self, id: VertexId) -> String {
        self.labels
            .get(&id)
            .cloned()
            .unwrap_or_else(|| self.def.vertex(id).name.clone())
    }

    fn visible(&self, id: VertexId) -> bool {
        !matches!(
            self.def.vertex(id).op,
            Op::Source(Source::Scratch) | Op::Source(Source::Image { .. }) | Op::Merge
        ) && !self.label(id).starts_with("[internal] heredoc")
    }

    fn source(&self, src: &Source) -> Result<Option<Output>, String> {
        Ok(Some(match src {
            Source::Scratch => Output::Stack(Arc::new(Vec::new())),
            Source::Image {
                reference,
                manifest_digest,
            } => {
                let image = self
                    .store
                    .resolve(manifest_digest)
                    .map_err(|e| format!("{reference}: {e}"))?;
                Output::Stack(Arc::new(
                    self.store.image_stack(&image).map_err(|e| e.to_string())?,
                ))
            }
            Source::Context { .. } => Output::Dir(self.context.clone(), self.ignore.clone()),
            Source::Http {
                url,
                checksum,
                filename,
            } => {
                let fetched = self.downloads.get(url, filename, checksum.as_deref())?;
                Output::Dir(
                    Arc::new(fetched.dir.clone()),
                    Arc::new(Ignore::from_patterns(&[]).map_err(|e| e.to_string())?),
                )
            }
        }))
    }

    fn view_of(&self, input: &Output, scratch: &Path) -> Result<view::View, String> {
        match input {
            Output::Dir(dir, _) => view::host_dir(dir).map_err(|e| e.to_string()),
            Output::Stack(stack) => {
                let lowers = self
                    .store
                    .snapshot_chain(stack)
                    .map_err(|e| e.to_string())?;
                view::readonly(&lowers, &scratch.join("empty")).map_err(|e| e.to_string())
            }
        }
    }

    fn exec(
        &self,
        id: VertexId,
        x: &Exec,
        inputs: &[Output],
        cancel: &Cancel,
    ) -> Result<Output, String> {
        let stack = inputs[0].stack()?;
        let lowers = self
            .store
            .snapshot_chain(stack)
            .map_err(|e| e.to_string())?;
        let state = self.store.scratch_dir("exec").map_err(|e| e.to_string())?;
        let result = self.exec_in(id, x, inputs, stack, lowers, &state, cancel);
        let _ = std::fs::remove_dir_all(&state);
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn exec_in(
        &self,
        id: VertexId,
        x: &Exec,
        inputs: &[Output],
        stack: &LayerStack,
        lowers: Vec<PathBuf>,
        state: &Path,
        cancel: &Cancel,
    ) -> Result<Output, String> {
        let mut mounts = Vec::new();
        // Views and pinned paths must outlive the container's setup.
        let mut keep: Vec<(view::View, OwnedFd)> = Vec::new();
        for m in &x.mounts {
            let source = match &m.kind {
                MountKind::Bind { readonly } => {
                    let input = m
                        .input
                        .and_then(|i| inputs.get(i))
                        .ok_or("internal error: bind mount without input")?;
                    let v = self.view_of(input, state)?;
                    let (fd, path) = fileop::pin_path(v.root(), &m.selector)
                        .map_err(|e| format!("--mount source: {e}"))?;
                    let source = if *readonly {
                        MountSource::Tree(
                            kiln_executor::clone_tree(fd.as_fd())
                                .map_err(|e| format!("--mount source {}: {e}", m.selector))?,
                        )
                    } else {
                        // Writes go to a throwaway upper: the source needs a
                        // host path (the context, or a one-layer stack).
                        let real = std::fs::read_link(&path).map_err(|e| e.to_string())?;
                        let single = match input {
                            Output::Dir(..) => true,
                            Output::Stack(s) => s.iter().flatten().count() <= 1,
                        };
                        if !single || !real.is_absolute() || !real.is_dir() {
                            return Err(format!(
                                "--mount {}: rw bind mounts need a directory in the context or a one-layer stage (not supported yet otherwise)",
                                m.target
                            ));
                        }
                        MountSource::Copy(real)
                    };
                    keep.push((v, fd));
                    source
                }
                MountKind::Cache {
                    id: cache_id,
                    sharing,
                    uid,
                    gid,
                    mode,
                } => MountSource::Cache {
                    dir: cache_mount_dir(&self.store, cache_id),
                    sharing: match sharing.as_str() {
                        "private" => Sharing::Private,
                        "locked" => Sharing::Locked,
                        _ => Sharing::Shared,
                    },
                    uid: *uid,
                    gid: *gid,
                    mode: *mode,
                },
                MountKind::Tmpfs { size } => MountSource::Tmpfs { size: *size },
                MountKind::Secret {
                    id: secret,
                    required,
                } => match self.secrets.get(secret) {
                    Some(data) => MountSource::Secret(data.clone()),
                    None if *required => {
                        return Err(format!(
                            "secret {secret:?} is required but was not given (--secret id={secret},src=FILE)"
                        ))
                    }
                    None => continue,
                },
            };
            mounts.push(Mount {
                source,
                target: m.target.clone(),
                readonly: matches!(m.kind, MountKind::Bind { readonly: true }),
            });
        }
        let env: Vec<String> = x
            .env
            .iter()
            .chain(x.proxy_env.iter())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let spec = Spec {
            lowers,
            state_dir: state.to_path_buf(),
            argv: x.argv.clone(),
            env,
            cwd: x.cwd.clone(),
            user: x.user.clone(),
            hostname: "kiln".into(),
            network: if x.network == "none" {
                Network::None
            } else {
                Network::Host
            },
            mounts,
            stdio: Stdio::Piped,
            rlimits: vec![],
            limits: Default::default(),
            cgroup_root: "/sys/fs/cgroup".into(),
            runtime: Default::default(),
            init: false,
        };
        let running = kiln_executor::spawn(spec).map_err(|e| e.to_string())?;
        drop(keep);
        let handle = running.handle();
        // Kills the container when the build is cancelled; wakes at once
        // when the container ends (the sender drops).
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let watcher = {
            let cancel = cancel.clone();
            std::thread::spawn(move || loop {
                match done_rx.recv_timeout(std::time::Duration::from_millis(50)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if cancel.is_cancelled() {
                            handle.kill();
                            return;
                        }
                    }
                    _ => return,
                }
            })
        };
        let exit = running.wait_with_lines(|_, line| self.progress.log(id, line));
        drop(done_tx);
        let _ = watcher.join();
        let exit = exit.map_err(|e| e.to_string())?;
        if cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        let code = exit.code();
        if code != 0 {
            return Err(format!(
                "process {:?} did not complete successfully: exit code: {code}",
                x.argv.join(" ")
            ));
        }
        let layer = self
            .store
            .commit_diff(&state.join("upper"), stack, self.write_opts)
            .map_err(|e| e.to_string())?;
        let mut next = stack.clone();
        next.push(layer);
        Ok(Output::Stack(Arc::new(next)))
    }

    fn file(&self, op: &FileOp, inputs: &[Output]) -> Result<Output, String> {
        let stack = inputs[0].stack()?;
        let scratch = self.store.scratch_dir("file").map_err(|e| e.to_string())?;
        let result = self.file_in(op, inputs, stack, &scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    fn file_in(
        &self,
        op: &FileOp,
        inputs: &[Output],
        stack: &LayerStack,
        scratch: &Path,
    ) -> Result<Output, String> {
        let upper = scratch.join("upper");
        let link = matches!(op, FileOp::Copy { link: true, .. });
        let lowers = self
            .store
            .snapshot_chain(stack)
            .map_err(|e| e.to_string())?;
        let view_lowers: &[PathBuf] = if link { &[] } else { &lowers };
        let target = view::writable(view_lowers, &upper, scratch).map_err(|e| e.to_string())?;
        match op {
            FileOp::Copy {
                src,
                paths,
                dest,
                chown,
                chmod,
                exclude,
                parents,
                unpack,
                link: _,
            } => {
                let input = inputs.get(*src).ok_or("internal error: copy source")?;
                let source = self.view_of(input, scratch)?;
                let chown = chown
                    .as_deref()
                    .map(|c| resolve_chown(c, &lowers))
                    .transpose()?;
                let chmod = chmod
                    .as_deref()
                    .map(|m| {
                        u32::from_str_radix(m, 8).map_err(|_| format!("--chmod={m}: not octal"))
                    })
                    .transpose()?;
                let (ignore, keep_owner) = match input {
                    Output::Dir(_, ignore) => (Some(ignore.as_ref()), false),
                    Output::Stack(_) => (None, true),
                };
                let exclude = if exclude.is_empty() {
                    None
                } else {
                    Some(Ignore::from_patterns(exclude).map_err(|e| format!("--exclude: {e}"))?)
                };
                let filter = fileop::Filter {
                    ignore,
                    exclude: exclude.as_ref(),
                    base: String::new(),
                };
                let spec = fileop::CopySpec {
                    paths,
                    dest,
                    attrs: fileop::Attrs {
                        chown,
                        chmod,
                        keep_owner,
                    },
                    parents: *parents,
                    unpack: *unpack,
                };
                fileop::copy(source.root(), target.root(), &spec, &filter)?;
            }
            FileOp::Mkdir { path, mode, .. } => {
                fileop::mkdir_p(target.root(), path, *mode, (0, 0))?;
            }
            FileOp::Mkfile { path, mode, data } => {
                fileop::mkfile(target.root(), path, *mode, data)?;
            }
            FileOp::Rm { .. } | FileOp::Symlink { .. } => {
                return Err(
                    "internal error: rm/symlink file ops are not used by the Dockerfile frontend"
                        .into(),
                )
            }
        }
        drop(target);
        let layer = self
            .store
            .commit_diff(&upper, stack, self.write_opts)
            .map_err(|e| e.to_string())?;
        let mut next = stack.clone();
        next.push(layer);
        Ok(Output::Stack(Arc::new(next)))
    }
}

/// `--chown=user[:group]` against the image's /etc/passwd and /etc/group;
/// a user without a group uses the same number for both (docker's rule).
fn resolve_chown(spec: &str, lowers: &[PathBuf]) -> Result<(u32, u32), String> {
    let top_first: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            kiln_executor::user::resolve(user, &top_first)
                .map_err(|e| format!("--chown={spec}: {e}"))?
                .uid
        }
    };
    let gid = match group {
        None => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                kiln_executor::user::resolve(&format!("0:{g}"), &top_first)
                    .map_err(|e| format!("--chown={spec}: {e}"))?
                    .gid
            }
        },
    };
    Ok((uid, gid))
}

impl Worker for BuildWorker {
    type Output = Output;

    fn lookup(&self, key: &Fingerprint) -> Option<Output> {
        let ids = self.by_key.get(key)?;
        let first = *ids.first()?;
        if let Op::Source(src) = &self.def.vertex(first).op {
            // Downloads are work, done (and reported) by `run`.
            if matches!(src, Source::Http { .. }) {
                return None;
            }
            return self.source(src).ok().flatten();
        }
        let stack = match self.store.cache_get(&key.hex()).ok().flatten() {
            Some(stack) => stack,
            None => self.imported(key, first)?,
        };
        for &id in ids {
            if self.visible(id) {
                self.progress.cached(id, &self.label(id));
            }
        }
        Some(Output::Stack(Arc::new(stack)))
    }

    fn run(
        &self,
        id: VertexId,
        vertex: &Vertex,
        inputs: Vec<Output>,
        key: &Fingerprint,
        cancel: &Cancel,
    ) -> Result<Output, String> {
        let visible = self.visible(id);
        let mut explained = None;
        if visible {
            self.progress.start(id, &self.label(id));
            if let Some(step) = explain::step_id(&self.explain.project, &self.label(id))
                .filter(|_| !matches!(vertex.op, Op::Source(_)))
            {
                let now = self.step_state(id, vertex, key);
                let before = self
                    .store
                    .step_info(&step)
                    .ok()
                    .flatten()
                    .and_then(|t| serde_json::from_str::<explain::StepState>(&t).ok());
                let reason = explain::why(before.as_ref(), &now, self.no_cache.contains(&id));
                self.progress.note(id, &format!("cache miss: {reason}"));
                explained = Some((step, now));
            }
        }
        let result = match &vertex.op {
            Op::Source(src) => self
                .source(src)
                .and_then(|o| o.ok_or_else(|| "internal error: no source".to_string())),
            Op::Exec(x) => self.exec(id, x, &inputs, cancel),
            Op::File(f) => self.file(f, &inputs),
            Op::Merge => {
                let mut stack = inputs
                    .first()
                    .ok_or("internal error: merge without a base")?
                    .stack()?
                    .clone();
                for input in &inputs[1..] {
                    stack.extend(input.stack()?.iter().cloned());
                }
                Ok(Output::Stack(Arc::new(stack)))
            }
        };
        if visible {
            match &result {
                Ok(_) => self.progress.done(id),
                Err(e) => self.progress.failed(id, e),
            }
        }
        if let (Ok(_), Some((step, now))) = (&result, explained) {
            if let Ok(text) = serde_json::to_string(&now) {
                let _ = self.store.set_step_info(&step, &text);
            }
        }
        result
    }

    fn record(&self, key: &Fingerprint, output: &Output) {
        let Some(first) = self.by_key.get(key).and_then(|ids| ids.first()) else {
            return;
        };
        if matches!(self.def.vertex(*first).op, Op::Source(_)) {
            return;
        }
        if let Output::Stack(stack) = output {
            // A failed record only costs a rebuild next time.
            let _ = self.store.cache_put(&key.hex(), stack);
        }
    }
}

/// The cache records a `--cache-to` exports: `max` = every step the target
/// needed, else the target's own chain (its filesystem's first inputs).
/// A step this store never recorded (the build hit a later step in an
/// imported cache) is exported as imported, if its blobs are here: so a
/// cache passed on stays whole, and inline records stay the same.
pub fn cache_records(
    store: &Store,
    lowered: &Lowered,
    keys: &[Fingerprint],
    max: bool,
    imports: &[remote_cache::Imported],
) -> Vec<remote_cache::CacheRecord> {
    let def = &lowered.definition;
    let ids: Vec<VertexId> = if max {
        kiln_solver::needed(def, lowered.target)
            .into_iter()
            .collect()
    } else {
        let mut chain = Vec::new();
        let mut at = Some(lowered.target);
        while let Some(id) = at {
            chain.push(id);
            let v = def.vertex(id);
            at = match v.op {
                Op::Source(_) => None,
                _ => v.inputs.first().copied(),
            };
        }
        chain
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for id in ids {
        let v = def.vertex(id);
        let key = keys[id.0].hex();
        if matches!(v.op, Op::Source(_)) || !seen.insert(key.clone()) {
            continue;
        }
        let Some(stack) = store.cache_get(&key).ok().flatten() else {
            let imported = imports.iter().find_map(|i| i.record(&key)).filter(|r| {
                r.layers
                    .iter()
                    .flatten()
                    .all(|l| store.blobs().contains(&l.digest))
            });
            out.extend(imported.cloned());
            continue;
        };
        let created = store.cache_created(&key).ok().flatten().unwrap_or(0);
        out.push(remote_cache::CacheRecord {
            key,
            layers: stack,
            created,
            inputs: v.inputs.iter().map(|i| keys[i.0].hex()).collect(),
            step: lowered
                .steps
                .get(&id)
                .map(|s| s.label.clone())
                .unwrap_or_else(|| v.name.clone()),
        });
    }
    out
}

/// The `RUN --mount=type=cache` ids the target's steps use, with their
/// directories.
pub fn cache_mounts(store: &Store, lowered: &Lowered) -> Vec<(String, PathBuf)> {
    let def = &lowered.definition;
    let mut ids: Vec<String> = kiln_solver::needed(def, lowered.target)
        .into_iter()
        .filter_map(|id| match &def.vertex(id).op {
            Op::Exec(x) => Some(x.mounts.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|m| match m.kind {
            MountKind::Cache { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let dir = cache_mount_dir(store, &id);
            (id, dir)
        })
        .collect()
}

/// The image config of a build: the frontend's config plus history, with
/// each step's history entry marked empty when its layer place is empty.
pub fn image_config(
    lowered: &Lowered,
    stack: &LayerStack,
    created: &str,
) -> (Value, Vec<LayerRef>) {
    let steps = lowered
        .history
        .iter()
        .filter(|h| h.slot == LayerSlot::Step)
        .count();
    let step_layers = &stack[stack.len().saturating_sub(steps)..];
    let mut next_step = step_layers.iter();
    let mut history = Vec::new();
    for h in &lowered.history {
        match (h.slot, &h.raw) {
            (LayerSlot::Step, _) => {
                let empty = next_step.next().is_none_or(|l| l.is_none());
                let mut e = json!({
                    "created": created,
                    "created_by": h.created_by,
                    "comment": "kiln",
                });
                if empty {
                    e["empty_layer"] = json!(true);
                }
                history.push(e);
            }
            (_, Some(raw)) => history.push(raw.clone()),
            (LayerSlot::None, None) => history.push(json!({
                "created": created,
                "created_by": h.created_by,
                "comment": "kiln",
                "empty_layer": true,
            })),
            (LayerSlot::Base, None) => {}
        }
    }
    let mut config = lowered.config.clone();
    config["created"] = Value::String(created.to_string());
    config["history"] = Value::Array(history);
    (config, kiln_store::stack_layers(stack))
}

/// Expands include paths with wildcards to the directory above the first
/// wildcard: the checksum then covers a little more than the op reads,
/// never less.
pub fn checksum_roots(include: &[String]) -> Vec<String> {
    include
        .iter()
        .map(|p| {
            let parts: Vec<&str> = p
                .split('/')
                .take_while(|c| !c.contains(['*', '?', '[']))
                .collect();
            parts.join("/")
        })
        .collect()
}

/// Keys of every vertex, with the context checksums the store computes
/// (memoized by inode + metadata). A context source's own exclude list
/// (the `.dockerignore` rules) decides what its checksum skips.
pub fn cache_keys(
    store: &Store,
    def: &Definition,
    target: VertexId,
    context: &Path,
    downloads: &download::Downloads,
) -> Result<(Vec<Fingerprint>, ContextFiles), (VertexId, String)> {
    let mut sums: HashMap<VertexId, Fingerprint> = HashMap::new();
    let mut files: ContextFiles = HashMap::new();
    // Stages the target does not need download nothing.
    let needed = kiln_solver::needed(def, target);
    for (id, v) in def.vertices() {
        if let Op::Source(Source::Http {
            url,
            checksum,
            filename,
        }) = &v.op
        {
            // A checksum is the content's name: nothing to fetch. Without
            // one, only the content can say whether the cache applies.
            let content = match checksum {
                Some(sum) => sum.clone(),
                None if needed.contains(&id) => {
                    let fetched = downloads.get(url, filename, None).map_err(|e| (id, e))?;
                    fetched.content_key()
                }
                None => continue,
            };
            let mut e = kiln_solver::Encoder::new();
            e.str(&content);
            sums.insert(id, e.finish());
            continue;
        }
        if let Op::Source(Source::Context {
            include, exclude, ..
        }) = &v.op
        {
            let rules = Ignore::from_patterns(exclude).map_err(|e| (id, e.to_string()))?;
            let excluded = |p: &Path| rules.excludes(p);
            let (d, _, list) = store
                .context_checksum_files(context, &checksum_roots(include), &excluded)
                .map_err(|e| (id, e.to_string()))?;
            let mut e = kiln_solver::Encoder::new();
            e.str(&d.to_string());
            sums.insert(id, e.finish());
            files.insert(id, list);
        }
    }
    Ok((def.cache_keys(|id, _| sums.get(&id).copied()), files))
}

/// Runs the lowered graph; returns the target's layer stack.
pub fn solve(
    worker: Arc<BuildWorker>,
    lowered: &Lowered,
) -> Result<LayerStack, (VertexId, String)> {
    let def = worker.def.clone();
    let options = kiln_solver::SolveOptions {
        no_cache: worker.no_cache.clone(),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| (lowered.target, e.to_string()))?;
    let keys = worker.keys.clone();
    let out = rt.block_on(kiln_solver::solve(
        worker,
        def,
        keys,
        lowered.target,
        options,
        Cancel::default(),
    ));
    match out {
        Ok(Output::Stack(s)) => Ok((*s).clone()),
        Ok(Output::Dir(..)) => Err((
            lowered.target,
            "internal error: target is not a filesystem".into(),
        )),
        Err(e) => Err((e.vertex, e.message)),
    }
}
