//! The solver: demand-driven from the target, parallel, deduplicating.
//!
//! 1. Keys for every needed vertex are computed first (they need inputs'
//!    keys, not inputs' results).
//! 2. Solving a vertex asks the cache for its key first; only on a miss are
//!    its inputs solved (in parallel) and the vertex run. So a hit on the
//!    target runs nothing and unpacks nothing upstream.
//! 3. Identical vertices (same definition digest) are solved once per
//!    build, however many places need them.
//! 4. Exec ops run under a semaphore (default: the number of CPUs).
//! 5. The first failure cancels the build: nothing new starts, and the
//!    worker is told to stop what runs.

use crate::graph::{CacheKey, Definition, DefinitionDigest, Op, Vertex, VertexId};
use petgraph::graphmap::DiGraphMap;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OnceCell, Semaphore};

/// What went wrong at a vertex.
#[derive(Debug)]
pub enum Failure<E> {
    /// The worker's own error running the vertex.
    Worker(E),
    /// Stopped because another vertex failed (or the caller cancelled).
    Cancelled,
    /// A task of the solver itself panicked or was refused.
    Internal(String),
}

impl<E: std::fmt::Display> std::fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Worker(e) => e.fmt(f),
            Failure::Cancelled => f.write_str("cancelled"),
            Failure::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Failure<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failure::Worker(e) => Some(e),
            _ => None,
        }
    }
}

/// Why solving failed, and at which vertex. Shared (`Arc`) because every
/// vertex that waited on the failed one reports the same failure.
#[derive(Debug)]
pub struct SolveError<E> {
    pub vertex: VertexId,
    pub source: Arc<Failure<E>>,
}

impl<E> Clone for SolveError<E> {
    fn clone(&self) -> Self {
        SolveError {
            vertex: self.vertex,
            source: self.source.clone(),
        }
    }
}

impl<E> SolveError<E> {
    fn new(vertex: VertexId, failure: Failure<E>) -> Self {
        SolveError {
            vertex,
            source: Arc::new(failure),
        }
    }

    /// The worker's error, when the worker failed (not a cancellation).
    pub fn worker_error(&self) -> Option<&E> {
        match &*self.source {
            Failure::Worker(e) => Some(e),
            _ => None,
        }
    }
}

impl<E: std::fmt::Display> std::fmt::Display for SolveError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl<E: std::error::Error + 'static> std::error::Error for SolveError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.source {
            Failure::Worker(e) => Some(e),
            _ => None,
        }
    }
}

/// Set once the build is cancelled; workers poll it to stop early.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What the solver needs from the rest of kiln: cache lookups and running
/// ops (the executor and the store behind it).
pub trait Worker: Send + Sync + 'static {
    /// A vertex's result: a snapshot reference in real builds.
    type Output: Clone + Send + Sync + 'static;
    /// Why running a vertex failed.
    type Error: std::fmt::Debug + std::fmt::Display + Send + Sync + 'static;

    /// The cached result for `key`, if any. Must be cheap: no unpacking.
    fn lookup(&self, key: &CacheKey) -> Option<Self::Output>;

    /// Runs `vertex` on its inputs' results. Blocking is fine (it runs on a
    /// blocking thread); `cancel` says when to give up.
    fn run(
        &self,
        id: VertexId,
        vertex: &Vertex,
        inputs: Vec<Self::Output>,
        key: &CacheKey,
        cancel: &Cancel,
    ) -> Result<Self::Output, Self::Error>;

    /// Records a fresh result in the cache.
    fn record(&self, key: &CacheKey, output: &Self::Output);
}

/// Options for one build.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// Concurrent exec ops.
    pub max_parallel_exec: usize,
    /// Skip cache lookups for these vertices (`--no-cache` = all).
    pub no_cache: BTreeSet<VertexId>,
}

impl Default for SolveOptions {
    /// Build steps often wait (sleep, network, disk) rather than compute,
    /// so the cap is twice the CPUs, at least 4: independent stages run
    /// together on a 2-core machine, as BuildKit runs them.
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        SolveOptions {
            max_parallel_exec: (2 * cpus).max(4),
            no_cache: BTreeSet::new(),
        }
    }
}

/// The vertices `target` depends on (itself included): stages the target
/// does not need are never looked at.
pub fn needed(def: &Definition, target: VertexId) -> BTreeSet<VertexId> {
    let mut g: DiGraphMap<usize, ()> = DiGraphMap::new();
    for (id, v) in def.vertices() {
        g.add_node(id.0);
        for i in &v.inputs {
            g.add_edge(id.0, i.0, ());
        }
    }
    let mut out = BTreeSet::new();
    let mut dfs = petgraph::visit::Dfs::new(&g, target.0);
    while let Some(n) = dfs.next(&g) {
        out.insert(VertexId(n));
    }
    out
}

type Slot<O, E> = Arc<OnceCell<Result<O, SolveError<E>>>>;
/// The once-map: definition digest → the one solve of that work.
type Inflight<W> =
    Mutex<HashMap<DefinitionDigest, Slot<<W as Worker>::Output, <W as Worker>::Error>>>;
/// A vertex's solve, boxed (it recurses).
type Solving<W> = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<<W as Worker>::Output, SolveError<<W as Worker>::Error>>,
            > + Send,
    >,
>;

struct Build<W: Worker> {
    worker: Arc<W>,
    def: Arc<Definition>,
    keys: Vec<CacheKey>,
    digests: Vec<DefinitionDigest>,
    options: SolveOptions,
    exec_slots: Semaphore,
    inflight: Inflight<W>,
    cancel: Cancel,
}

/// Solves `target` of `def` with `keys` (from [`Definition::cache_keys`]).
pub async fn solve<W: Worker>(
    worker: Arc<W>,
    def: Arc<Definition>,
    keys: Vec<CacheKey>,
    target: VertexId,
    options: SolveOptions,
    cancel: Cancel,
) -> Result<W::Output, SolveError<W::Error>> {
    let mut all = solve_all(worker, def, keys, &[target], options, cancel).await?;
    Ok(all.remove(0))
}

/// Solves every target of `def` at once (a multi-platform build: one
/// graph, one target per platform). Vertices with the same definition
/// digest are one solve whichever targets need them, so a stage every
/// platform shares runs once. The outputs are in `targets`' order; the
/// first failure cancels the rest.
pub async fn solve_all<W: Worker>(
    worker: Arc<W>,
    def: Arc<Definition>,
    keys: Vec<CacheKey>,
    targets: &[VertexId],
    options: SolveOptions,
    cancel: Cancel,
) -> Result<Vec<W::Output>, SolveError<W::Error>> {
    let digests = def.definition_digests();
    let build = Arc::new(Build {
        worker,
        exec_slots: Semaphore::new(options.max_parallel_exec.max(1)),
        def,
        keys,
        digests,
        options,
        inflight: Mutex::new(HashMap::new()),
        cancel,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for (pos, target) in targets.iter().copied().enumerate() {
        let b = build.clone();
        tasks.spawn(async move { (pos, solve_vertex(b, target).await) });
    }
    let mut outputs: Vec<Option<W::Output>> = vec![None; targets.len()];
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((pos, Ok(out))) => outputs[pos] = Some(out),
            Ok((_, Err(e))) => {
                build.cancel.cancel();
                // The first real failure, not a sibling's cancellation.
                let cancelled = matches!(*e.source, Failure::Cancelled);
                if failure.is_none() || (!cancelled && failure_is_cancel(&failure)) {
                    failure = Some(e);
                }
            }
            Err(e) => {
                build.cancel.cancel();
                if failure.is_none() {
                    let at = targets.first().copied().unwrap_or(VertexId(0));
                    failure = Some(SolveError::new(at, Failure::Internal(e.to_string())));
                }
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(outputs
        .into_iter()
        .map(|o| o.expect("every target solved"))
        .collect())
}

fn failure_is_cancel<E>(f: &Option<SolveError<E>>) -> bool {
    f.as_ref()
        .is_some_and(|e| matches!(*e.source, Failure::Cancelled))
}

fn solve_vertex<W: Worker>(build: Arc<Build<W>>, id: VertexId) -> Solving<W> {
    Box::pin(async move {
        let slot = {
            let mut map = build.inflight.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(build.digests[id.0]).or_default().clone()
        };
        let b = build.clone();
        slot.get_or_init(|| async move { compute(b, id).await })
            .await
            .clone()
    })
}

async fn compute<W: Worker>(
    build: Arc<Build<W>>,
    id: VertexId,
) -> Result<W::Output, SolveError<W::Error>> {
    if build.cancel.is_cancelled() {
        return Err(SolveError::new(id, Failure::Cancelled));
    }
    let key = build.keys[id.0];
    if !build.options.no_cache.contains(&id) {
        if let Some(hit) = build.worker.lookup(&key) {
            return Ok(hit);
        }
    }
    // A miss: solve the inputs in parallel, then run.
    let vertex = build.def.vertex(id).clone();
    let mut tasks = tokio::task::JoinSet::new();
    for (pos, input) in vertex.inputs.iter().enumerate() {
        let b = build.clone();
        let input = *input;
        tasks.spawn(async move { (pos, solve_vertex(b, input).await) });
    }
    let mut inputs: Vec<Option<W::Output>> = vec![None; vertex.inputs.len()];
    while let Some(joined) = tasks.join_next().await {
        let (pos, result) =
            joined.map_err(|e| SolveError::new(id, Failure::Internal(e.to_string())))?;
        match result {
            Ok(out) => inputs[pos] = Some(out),
            Err(e) => {
                // Stop siblings: nothing new starts once cancelled.
                build.cancel.cancel();
                tasks.abort_all();
                return Err(e);
            }
        }
    }
    let inputs: Vec<W::Output> = inputs
        .into_iter()
        .map(|o| o.expect("every input solved"))
        .collect();
    let _permit = match vertex.op {
        Op::Exec(_) => Some(
            build
                .exec_slots
                .acquire()
                .await
                .map_err(|e| SolveError::new(id, Failure::Internal(e.to_string())))?,
        ),
        _ => None,
    };
    if build.cancel.is_cancelled() {
        return Err(SolveError::new(id, Failure::Cancelled));
    }
    let b = build.clone();
    let output =
        tokio::task::spawn_blocking(move || b.worker.run(id, &vertex, inputs, &key, &b.cancel))
            .await
            .map_err(|e| SolveError::new(id, Failure::Internal(e.to_string())))?
            .map_err(|e| SolveError::new(id, Failure::Worker(e)))?;
    build.worker.record(&key, &output);
    Ok(output)
}
