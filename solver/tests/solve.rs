//! The solver with a fake worker that counts calls (no containers): what
//! runs, what is looked up, what runs at once, and what a failure stops.

use kiln_solver::{
    needed, solve, CacheKey, Cancel, Definition, Exec, Network, Op, SolveOptions, Source, Vertex,
    VertexId, Worker,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Fake {
    cache: Mutex<HashMap<CacheKey, String>>,
    runs: Mutex<Vec<String>>,
    lookups: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
    /// Runs that stopped because the build was cancelled.
    cancelled: AtomicUsize,
    /// Runs that reached a rendezvous (only ever grows).
    arrived: AtomicUsize,
}

/// The fake worker's failure: a message.
#[derive(Debug)]
struct FakeError(String);

impl std::fmt::Display for FakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Worker for Fake {
    type Output = String;
    type Error = FakeError;

    fn lookup(&self, key: &CacheKey) -> Option<String> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.cache.lock().unwrap().get(key).cloned()
    }

    fn run(
        &self,
        _id: VertexId,
        v: &Vertex,
        inputs: Vec<String>,
        _key: &CacheKey,
        cancel: &Cancel,
    ) -> Result<String, FakeError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        self.runs.lock().unwrap().push(v.name.clone());
        let result = (|| {
            if let Op::Exec(x) = &v.op {
                let cmd = x.argv.last().cloned().unwrap_or_default();
                if let Some(ms) = cmd.strip_prefix("sleep ") {
                    let end = Instant::now() + Duration::from_millis(ms.parse().unwrap());
                    while Instant::now() < end {
                        if cancel.is_cancelled() {
                            self.cancelled.fetch_add(1, Ordering::SeqCst);
                            return Err(FakeError("cancelled".to_string()));
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                if let Some(n) = cmd.strip_prefix("rendezvous ") {
                    // Wait until `n` runs are in progress at once (proves
                    // parallelism without timing); give up after 10 s.
                    let n: usize = n.split_whitespace().next().unwrap().parse().unwrap();
                    let end = Instant::now() + Duration::from_secs(10);
                    self.arrived.fetch_add(1, Ordering::SeqCst);
                    // Nobody leaves before all have arrived, so all `n`
                    // were running at once.
                    while self.arrived.load(Ordering::SeqCst) < n {
                        if Instant::now() > end {
                            return Err(FakeError(format!(
                                "{} never saw {n} parallel runs",
                                v.name
                            )));
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                if let Some(after) = cmd.strip_prefix("fail-after ") {
                    // Fail only once `after` is running, so the test knows
                    // what the failure interrupts.
                    while !self.runs.lock().unwrap().iter().any(|r| r == after) {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    return Err(FakeError(format!("{} failed", v.name)));
                }
            }
            Ok(format!("{}({})", v.name, inputs.join(",")))
        })();
        self.running.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn record(&self, key: &CacheKey, output: &String) {
        self.cache.lock().unwrap().insert(*key, output.clone());
    }
}

fn base(d: &mut Definition, name: &str) -> VertexId {
    d.add(Vertex {
        op: Op::Source(Source::Image {
            reference: name.into(),
            manifest_digest: format!("sha256:{name}"),
        }),
        inputs: vec![],
        name: name.into(),
    })
    .unwrap()
}

fn exec(d: &mut Definition, inputs: Vec<VertexId>, name: &str, cmd: &str) -> VertexId {
    d.add(Vertex {
        op: Op::Exec(Exec {
            argv: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
            env: vec![],
            proxy_env: vec![],
            cwd: "/".into(),
            user: String::new(),
            network: Network::Default,
            mounts: vec![],
            hostname: None,
        }),
        inputs,
        name: name.into(),
    })
    .unwrap()
}

fn go(
    worker: &Arc<Fake>,
    d: &Definition,
    target: VertexId,
    options: SolveOptions,
) -> Result<String, kiln_solver::SolveError<FakeError>> {
    let keys = d.cache_keys(|_, _| None);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(solve(
        worker.clone(),
        Arc::new(d.clone()),
        keys,
        target,
        options,
        Cancel::default(),
    ))
}

fn runs(w: &Fake) -> Vec<String> {
    let mut r = w.runs.lock().unwrap().clone();
    r.sort();
    r
}

#[test]
fn cold_then_fully_cached() {
    let mut d = Definition::new();
    let b = base(&mut d, "busybox");
    let s1 = exec(&mut d, vec![b], "step1", "echo 1");
    let s2 = exec(&mut d, vec![s1], "step2", "echo 2");
    let w = Arc::new(Fake::default());
    assert_eq!(
        go(&w, &d, s2, SolveOptions::default()).unwrap(),
        "step2(step1(busybox()))"
    );
    assert_eq!(runs(&w), ["busybox", "step1", "step2"]);
    // Second build: the target is a hit, so nothing runs and nothing
    // upstream is even looked up.
    w.runs.lock().unwrap().clear();
    w.lookups.store(0, Ordering::SeqCst);
    assert_eq!(
        go(&w, &d, s2, SolveOptions::default()).unwrap(),
        "step2(step1(busybox()))"
    );
    assert!(runs(&w).is_empty());
    assert_eq!(w.lookups.load(Ordering::SeqCst), 1);
}

#[test]
fn unneeded_stages_never_run_and_identical_work_runs_once() {
    let mut d = Definition::new();
    let b = base(&mut d, "busybox");
    let unused = exec(&mut d, vec![b], "unused-stage", "echo never");
    let a = exec(&mut d, vec![b], "same", "echo same");
    let a2 = exec(&mut d, vec![b], "same (again)", "echo same");
    let t = exec(&mut d, vec![a, a2], "target", "echo t");
    assert!(!needed(&d, t).contains(&unused));
    let w = Arc::new(Fake::default());
    go(&w, &d, t, SolveOptions::default()).unwrap();
    let r = runs(&w);
    assert!(!r.contains(&"unused-stage".to_string()));
    assert_eq!(
        r.iter().filter(|n| n.starts_with("same")).count(),
        1,
        "identical vertices run once: {r:?}"
    );
}

#[test]
fn independent_work_runs_in_parallel_under_the_semaphore() {
    // Four distinct stages (so none is deduplicated) that each wait until
    // all four run at once: the build finishes only if the solver really
    // runs them in parallel.
    let four_stages = |cmd: &dyn Fn(usize) -> String| {
        let mut d = Definition::new();
        let b = base(&mut d, "busybox");
        let stages: Vec<VertexId> = (0..4)
            .map(|i| exec(&mut d, vec![b], &format!("stage{i}"), &cmd(i)))
            .collect();
        let t = exec(&mut d, stages, "final", "echo done");
        (d, t)
    };
    let (d, t) = four_stages(&|i| format!("rendezvous 4 #{i}"));
    let w = Arc::new(Fake::default());
    go(
        &w,
        &d,
        t,
        SolveOptions {
            max_parallel_exec: 4,
            no_cache: BTreeSet::new(),
        },
    )
    .unwrap();
    assert_eq!(
        w.max_running.load(Ordering::SeqCst),
        4,
        "all four stages at once"
    );
    // With one exec slot they run one at a time.
    let (d, t) = four_stages(&|i| format!("sleep {}", 20 + i));
    let w = Arc::new(Fake::default());
    go(
        &w,
        &d,
        t,
        SolveOptions {
            max_parallel_exec: 1,
            no_cache: BTreeSet::new(),
        },
    )
    .unwrap();
    assert_eq!(
        w.max_running.load(Ordering::SeqCst),
        1,
        "the semaphore caps exec ops"
    );
}

#[test]
fn a_failure_cancels_the_rest() {
    let mut d = Definition::new();
    let b = base(&mut d, "busybox");
    let slow = exec(&mut d, vec![b], "slow", "sleep 2000");
    let after_slow = exec(&mut d, vec![slow], "after-slow", "echo never");
    let bad = exec(&mut d, vec![b], "bad", "fail-after slow");
    let t = exec(&mut d, vec![after_slow, bad], "final", "echo never");
    let w = Arc::new(Fake::default());
    // Two exec slots at least: `bad` waits in one for `slow` to start.
    let options = SolveOptions {
        max_parallel_exec: 4,
        no_cache: BTreeSet::new(),
    };
    let err = go(&w, &d, t, options).unwrap_err();
    assert_eq!(err.to_string(), "bad failed");
    assert_eq!(err.vertex, bad);
    // go() drops its runtime, which waits for the blocking run: it must
    // have stopped on the cancel flag, not slept out its 2 s.
    assert_eq!(
        w.cancelled.load(Ordering::SeqCst),
        1,
        "the slow sibling was told to stop"
    );
    let r = runs(&w);
    assert!(
        !r.contains(&"after-slow".to_string()) && !r.contains(&"final".to_string()),
        "{r:?}"
    );
}

#[test]
fn no_cache_and_partial_invalidation() {
    let mut d = Definition::new();
    let b = base(&mut d, "busybox");
    let s1 = exec(&mut d, vec![b], "early", "echo 1");
    let s2 = exec(&mut d, vec![s1], "late", "echo 2");
    let w = Arc::new(Fake::default());
    go(&w, &d, s2, SolveOptions::default()).unwrap();
    // --no-cache for one vertex reruns it (its inputs stay cached).
    w.runs.lock().unwrap().clear();
    go(
        &w,
        &d,
        s2,
        SolveOptions {
            max_parallel_exec: 2,
            no_cache: [s2].into(),
        },
    )
    .unwrap();
    assert_eq!(runs(&w), ["late"]);
    // Changing the late step reruns only it.
    let mut d2 = Definition::new();
    let b = base(&mut d2, "busybox");
    let s1 = exec(&mut d2, vec![b], "early", "echo 1");
    let s2 = exec(&mut d2, vec![s1], "late", "echo CHANGED");
    w.runs.lock().unwrap().clear();
    go(&w, &d2, s2, SolveOptions::default()).unwrap();
    assert_eq!(runs(&w), ["late"]);
}
