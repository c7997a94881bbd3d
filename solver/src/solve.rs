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

use crate::encode::Fingerprint;
use crate::graph::{Definition, Op, Vertex, VertexId};
use petgraph::graphmap::DiGraphMap;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OnceCell, Semaphore};

/// Why solving failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolveError {
    pub vertex: VertexId,
    pub message: String,
}

impl std::fmt::Display for SolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for SolveError {}

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

    /// The cached result for `key`, if any. Must be cheap: no unpacking.
    fn lookup(&self, key: &Fingerprint) -> Option<Self::Output>;

    /// Runs `vertex` on its inputs' results. Blocking is fine (it runs on a
    /// blocking thread); `cancel` says when to give up.
    fn run(
        &self,
        id: VertexId,
        vertex: &Vertex,
        inputs: Vec<Self::Output>,
        key: &Fingerprint,
        cancel: &Cancel,
    ) -> Result<Self::Output, String>;

    /// Records a fresh result in the cache.
    fn record(&self, key: &Fingerprint, output: &Self::Output);
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

type Slot<O> = Arc<OnceCell<Result<O, SolveError>>>;

struct Build<W: Worker> {
    worker: Arc<W>,
    def: Arc<Definition>,
    keys: Vec<Fingerprint>,
    digests: Vec<Fingerprint>,
    options: SolveOptions,
    exec_slots: Semaphore,
    /// Once-map: definition digest → the one solve of that work.
    inflight: Mutex<HashMap<Fingerprint, Slot<W::Output>>>,
    cancel: Cancel,
}

/// Solves `target` of `def` with `keys` (from [`Definition::cache_keys`]).
pub async fn solve<W: Worker>(
    worker: Arc<W>,
    def: Arc<Definition>,
    keys: Vec<Fingerprint>,
    target: VertexId,
    options: SolveOptions,
    cancel: Cancel,
) -> Result<W::Output, SolveError> {
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
    let result = solve_vertex(build.clone(), target).await;
    if result.is_err() {
        build.cancel.cancel();
    }
    result
}

fn solve_vertex<W: Worker>(
    build: Arc<Build<W>>,
    id: VertexId,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<W::Output, SolveError>> + Send>> {
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

async fn compute<W: Worker>(build: Arc<Build<W>>, id: VertexId) -> Result<W::Output, SolveError> {
    if build.cancel.is_cancelled() {
        return Err(SolveError {
            vertex: id,
            message: "cancelled".into(),
        });
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
        let (pos, result) = joined.map_err(|e| SolveError {
            vertex: id,
            message: format!("internal error: {e}"),
        })?;
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
        Op::Exec(_) => Some(build.exec_slots.acquire().await.map_err(|e| SolveError {
            vertex: id,
            message: e.to_string(),
        })?),
        _ => None,
    };
    if build.cancel.is_cancelled() {
        return Err(SolveError {
            vertex: id,
            message: "cancelled".into(),
        });
    }
    let b = build.clone();
    let output =
        tokio::task::spawn_blocking(move || b.worker.run(id, &vertex, inputs, &key, &b.cancel))
            .await
            .map_err(|e| SolveError {
                vertex: id,
                message: format!("internal error: {e}"),
            })?
            .map_err(|message| SolveError {
                vertex: id,
                message,
            })?;
    build.worker.record(&key, &output);
    Ok(output)
}
