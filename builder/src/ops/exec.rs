//! RUN: the step's mounts made concrete (binds as detached trees cloned
//! from views, caches, tmpfs, secrets), the container run with its output
//! streamed to progress, killed on cancel, and its upper dir committed.

use crate::error::StepError;
use crate::fileop;
use crate::ops::ssh_proxy::SshProxy;
use crate::worker::{BuildWorker, Output};
use kiln_executor::{view, Mount, MountSource, Network, Sharing, Spec};
use kiln_solver::{Cancel, Exec, ExecMount, MountKind, VertexId};
use kiln_store::{LayerStack, Store};
use sha2::Digest as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the step's mounts need alive until its container is set up: the
/// views and pinned paths bind sources come from, and the in-use holds
/// on caches seeded with `from=` (the container then holds them itself).
#[derive(Default)]
struct SetupHolds {
    views: Vec<(view::View, OwnedFd)>,
    cache_holds: Vec<std::fs::File>,
}

/// The host directory behind `RUN --mount=type=cache,id=ID`.
pub fn cache_mount_dir(store: &Store, id: &str) -> PathBuf {
    store
        .root()
        .join("cache-mounts")
        .join(hex::encode(sha2::Sha256::digest(id.as_bytes())))
}

impl BuildWorker {
    pub(crate) fn exec(
        &self,
        id: VertexId,
        x: &Exec,
        inputs: &[Output],
        cancel: &Cancel,
    ) -> Result<Output, StepError> {
        let stack = inputs[0].stack()?;
        let lowers = self.store.snapshot_chain(stack)?;
        let state = self.store.scratch_dir("exec")?;
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
    ) -> Result<Output, StepError> {
        // Views, pinned paths and seeded caches' in-use holds must
        // outlive the container's setup.
        let mut keep = SetupHolds::default();
        // The ssh mounts' sockets serve until the step ends.
        let mut ssh_proxies = Vec::new();
        let mut mounts = Vec::new();
        for m in &x.mounts {
            if let Some(mount) = self.mount(m, inputs, state, &mut keep, &mut ssh_proxies)? {
                mounts.push(mount);
            }
        }
        let mut spec = Spec::new(lowers, state.to_path_buf(), x.argv.clone());
        spec.env = x
            .env
            .iter()
            .chain(x.proxy_env.iter())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        spec.env.extend(self.secret_env(x)?);
        // BuildKit's: SSH_AUTH_SOCK names the first ssh mount.
        if let Some(m) = x
            .mounts
            .iter()
            .find(|m| matches!(m.kind, MountKind::Ssh { .. }))
        {
            spec.env.retain(|e| !e.starts_with("SSH_AUTH_SOCK="));
            spec.env.push(format!("SSH_AUTH_SOCK={}", m.target));
        }
        spec.cwd = x.cwd.clone();
        spec.user = x.user.clone();
        if let Some(h) = &x.hostname {
            spec.hostname = h.clone();
        }
        let mut network = None;
        spec.network = match x.network {
            kiln_solver::Network::None => Network::None,
            kiln_solver::Network::Host | kiln_solver::Network::Default => Network::Host,
            kiln_solver::Network::Bridge => {
                // Held until the step ends: dropping it frees the address.
                let step = kiln_network::Attachment::setup(
                    self.store.root(),
                    &kiln_network::AttachRequest {
                        // A random id: the step's veth is named from it.
                        container: kiln_network::random_id(),
                        name: "build-step".into(),
                        hostname: spec.hostname.clone(),
                        networks: vec![kiln_network::NetworkRequest {
                            name: kiln_network::DEFAULT_NETWORK.into(),
                            aliases: Vec::new(),
                        }],
                        ..Default::default()
                    },
                )?;
                spec.address = Some(step.address.into());
                spec.resolv_conf = Some(step.resolv_conf.clone());
                let ns = kiln_executor::NetNamespace(step.netns.clone());
                network = Some(step);
                Network::Join(ns)
            }
        };
        spec.mounts = mounts;
        // The step's writes become durable with the build's one syncfs.
        spec.deferred_sync = true;
        spec.cache_wait = Some(self.cache_waiter(id, x, cancel));
        let running = match kiln_executor::spawn(spec) {
            Err(kiln_executor::ExecError::Cancelled) => return Err(StepError::Cancelled),
            other => other?,
        };
        drop(keep);
        let _network = network;
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
        let exit = exit?;
        if cancel.is_cancelled() {
            return Err(StepError::Cancelled);
        }
        if exit.code() != 0 {
            return Err(StepError::Failed {
                command: x.argv.join(" "),
                exit: format!("exit code: {}", exit.code()),
            });
        }
        let layer = self.store.commit_diff(&state.join("upper"))?;
        let mut next = stack.clone();
        next.push(layer);
        Ok(Output::Stack(Arc::new(next)))
    }

    /// What a step waiting for a cache another holds (`sharing=locked`)
    /// does: says so in its log, naming the cache id and the holder, at
    /// once and then every few seconds with the time waited; gives up
    /// when the build is cancelled.
    fn cache_waiter(&self, id: VertexId, x: &Exec, cancel: &Cancel) -> kiln_executor::CacheWaiter {
        let names: Vec<(PathBuf, String)> = x
            .mounts
            .iter()
            .filter_map(|m| match &m.kind {
                MountKind::Cache { id, .. } => Some((cache_mount_dir(&self.store, id), id.clone())),
                _ => None,
            })
            .collect();
        let progress = self.progress.clone();
        let cancel = cancel.clone();
        // The next whole second of waiting to report at.
        let next = std::sync::atomic::AtomicU64::new(0);
        kiln_executor::CacheWaiter(Arc::new(move |wait: &kiln_executor::CacheWait| {
            let secs = wait.waited.as_secs();
            if secs >= next.load(std::sync::atomic::Ordering::Relaxed) {
                next.store(secs + 5, std::sync::atomic::Ordering::Relaxed);
                let name = names
                    .iter()
                    .find(|(dir, _)| *dir == wait.dir)
                    .map_or("?", |(_, name)| name.as_str());
                progress.log(
                    id,
                    format!(
                        "waiting for cache mount {name}, held by {} ({secs}s)",
                        wait.holder
                    )
                    .as_bytes(),
                );
            }
            !cancel.is_cancelled()
        }))
    }

    /// One `RUN --mount` as the executor's mount; None for an optional
    /// secret that was not given.
    /// A cache mount with `from=` that does not exist yet starts as a
    /// copy of `selector` in `seed` (made as the executor makes every
    /// cache directory: whole, or not at all).
    /// The cache is held in use from before it is made until the step's
    /// container holds it (the returned file), so a prune in between
    /// cannot take the seed away.
    fn seed_cache(
        &self,
        dir: &Path,
        seed: &Output,
        selector: &str,
        state: &Path,
        owner_mode: (u32, u32, u32),
    ) -> Result<std::fs::File, StepError> {
        let hold = kiln_executor::hold_cache_dir(dir)?;
        if dir.exists() {
            return Ok(hold);
        }
        let v = self.view_of(seed, &state.join("cache-seed"))?;
        kiln_executor::create_cache_dir(dir, owner_mode, |tmp| {
            let dst = std::fs::File::open(tmp)?;
            fileop::copy_tree(v.root(), selector, dst.as_fd(), true)
                .map_err(|e| StepError::Invalid(format!("cache mount from=: {e}")))
        })?;
        Ok(hold)
    }

    /// The secrets asked for as `env=` (`NAME=value`, after the step's
    /// own env so they win); a missing required secret is BuildKit's
    /// "secret ID: not found".
    fn secret_env(&self, x: &Exec) -> Result<Vec<String>, StepError> {
        let mut env = Vec::new();
        for m in &x.mounts {
            let MountKind::Secret {
                id,
                required,
                env: name,
                ..
            } = &m.kind
            else {
                continue;
            };
            match self.secrets.get(id) {
                Some(data) => {
                    if let Some(name) = name {
                        env.push(format!("{name}={}", String::from_utf8_lossy(data)));
                    }
                }
                None if *required => {
                    return Err(StepError::Invalid(format!(
                        "secret {id}: not found (pass it with --secret id={id},src=FILE)"
                    )))
                }
                None => {}
            }
        }
        for m in &x.mounts {
            if let MountKind::Ssh {
                id, required: true, ..
            } = &m.kind
            {
                if !self.ssh.contains_key(id) {
                    return Err(StepError::Invalid(format!(
                        "no SSH key {id:?} forwarded from the client (pass it with --ssh {id})"
                    )));
                }
            }
        }
        Ok(env)
    }

    fn mount(
        &self,
        m: &ExecMount,
        inputs: &[Output],
        state: &Path,
        keep: &mut SetupHolds,
        ssh_proxies: &mut Vec<SshProxy>,
    ) -> Result<Option<Mount>, StepError> {
        let source = match &m.kind {
            MountKind::Bind { readonly } => {
                let input = m
                    .input
                    .and_then(|i| inputs.get(i))
                    .ok_or_else(|| StepError::Internal("bind mount without input".into()))?;
                // A rw bind of a stage is a writable overlay of its layers
                // whose upper is this step's, thrown away with it: the
                // source never changes, however many layers it has.
                let v = match (input, *readonly) {
                    (Output::Stack(stack), false) => {
                        let lowers = self.store.snapshot_chain(stack)?;
                        let dir = state.join(format!("rw-bind-{}", keep.views.len()));
                        view::writable(&lowers, &dir.join("upper"), &dir)?
                    }
                    _ => self.view_of(input, state)?,
                };
                let (fd, path) = fileop::pin_path(v.root(), &m.selector)
                    .map_err(|e| StepError::Invalid(format!("--mount source: {e}")))?;
                let source = match (input, *readonly) {
                    (Output::Dir(..), false) => {
                        // The context: an overlay on its host directory.
                        let real = std::fs::read_link(&path)?;
                        if !real.is_absolute() || !real.is_dir() {
                            return Err(StepError::Invalid(format!(
                                "--mount {}: a rw bind of the context needs a directory",
                                m.target
                            )));
                        }
                        MountSource::Copy(real)
                    }
                    _ => MountSource::Tree(kiln_executor::clone_tree(fd.as_fd()).map_err(|e| {
                        StepError::Invalid(format!("--mount source {}: {e}", m.selector))
                    })?),
                };
                keep.views.push((v, fd));
                source
            }
            MountKind::Cache {
                id: cache_id,
                sharing,
                uid,
                gid,
                mode,
            } => {
                let dir = cache_mount_dir(&self.store, cache_id);
                // from=: a new cache starts as a copy of that path of the
                // stage; without from=, source= is a directory inside it.
                let subpath = match m.input.and_then(|i| inputs.get(i)) {
                    Some(seed) => {
                        let hold =
                            self.seed_cache(&dir, seed, &m.selector, state, (*uid, *gid, *mode))?;
                        keep.cache_holds.push(hold);
                        None
                    }
                    None => Some(m.selector.clone()).filter(|s| !s.is_empty()),
                };
                MountSource::Cache {
                    dir,
                    sharing: match sharing {
                        kiln_solver::Sharing::Private => Sharing::Private,
                        kiln_solver::Sharing::Locked => Sharing::Locked,
                        kiln_solver::Sharing::Shared => Sharing::Shared,
                    },
                    uid: *uid,
                    gid: *gid,
                    mode: *mode,
                    subpath,
                }
            }
            MountKind::Tmpfs { size } => MountSource::Tmpfs { size: *size },
            // A socket of the step's own, forwarding to the agent; its
            // mountpoint is not kept in the layer.
            MountKind::Ssh {
                id, uid, gid, mode, ..
            } => match self.ssh.get(id) {
                Some(agent) => {
                    let socket = state.join(format!("ssh-{}.sock", ssh_proxies.len()));
                    let owner_mode = (uid.unwrap_or(0), gid.unwrap_or(0), mode.unwrap_or(0o600));
                    let proxy = SshProxy::serve(agent, &socket, owner_mode).map_err(|e| {
                        StepError::Invalid(format!("--mount=type=ssh,id={id}: {e}"))
                    })?;
                    ssh_proxies.push(proxy);
                    MountSource::Bind(socket)
                }
                None => return Ok(None),
            },
            MountKind::Secret {
                id: secret,
                uid,
                gid,
                mode,
                ..
            } => match self.secrets.get(secret) {
                // `env=` alone: no file (the variable is set by exec_in).
                Some(_) if m.target.is_empty() => return Ok(None),
                Some(data) => MountSource::Secret {
                    data: data.clone(),
                    uid: *uid,
                    gid: *gid,
                    mode: mode.unwrap_or(0o400),
                },
                // A missing required secret fails in exec_in, first.
                None => return Ok(None),
            },
        };
        Ok(Some(Mount {
            source,
            target: m.target.clone(),
            readonly: matches!(m.kind, MountKind::Bind { readonly: true }),
        }))
    }
}
