//! The solver's real [`Worker`]: cache lookups in the store (then in
//! imported caches), ops run on the executor and the store (`ops/`), and
//! progress, with `--explain`'s record of what each step was.

use crate::error::StepError;
use crate::explain;
use crate::progress::Progress;
use crate::remote_cache;
use kiln_frontend_dockerfile::dockerignore::Ignore;
use kiln_solver::{CacheKey, Cancel, Definition, Op, Source, Vertex, VertexId, Worker};
use kiln_store::{LayerStack, Store};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

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
    pub(crate) fn stack(&self) -> Result<&LayerStack, StepError> {
        match self {
            Output::Stack(s) => Ok(s),
            Output::Dir(..) => Err(StepError::Internal("expected a filesystem".into())),
        }
    }
}

/// Per context source: (path, short checksum) of each file it selects.
pub type ContextFiles = HashMap<VertexId, kiln_store::FileSums>;

/// Runs ops for the solver. Made by [`crate::Build`] only.
pub struct BuildWorker {
    pub(crate) store: Arc<Store>,
    pub(crate) contexts: Arc<crate::contexts::Contexts>,
    pub(crate) secrets: HashMap<String, Vec<u8>>,
    pub(crate) ssh: HashMap<String, std::path::PathBuf>,
    pub(crate) progress: Arc<Progress>,
    pub(crate) labels: HashMap<VertexId, String>,
    /// Each step's instruction as written (labels show values expanded;
    /// `--explain` compares the instruction itself).
    pub(crate) texts: HashMap<VertexId, String>,
    /// Which vertices each cache key answers (for progress on hits).
    pub(crate) by_key: HashMap<CacheKey, Vec<VertexId>>,
    pub(crate) def: Arc<Definition>,
    /// Results to record in the cache index, all at once after the solve
    /// (one filesystem sync for every snapshot the build made).
    pub(crate) pending: std::sync::Mutex<Vec<(String, LayerStack)>>,
    pub(crate) downloads: Arc<crate::download::Downloads>,
    /// Other machines' caches (`--cache-from`), asked after the store.
    pub(crate) imports: Vec<remote_cache::Imported>,
    /// Every vertex's cache key, by vertex index.
    pub(crate) keys: Vec<CacheKey>,
    /// Vertices never looked up (`--no-cache`: all; `--no-cache-filter`:
    /// those stages').
    pub(crate) no_cache: BTreeSet<VertexId>,
    /// The project's identity (see [`explain::step_id`]).
    pub(crate) project: String,
    /// The context files each context source reads (for `--explain`).
    pub(crate) context_files: ContextFiles,
}

impl BuildWorker {
    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<(String, LayerStack)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the build's results in the cache index (after one sync of
    /// their snapshots). A failure only costs a rebuild next time.
    pub(crate) fn commit_records(&self) {
        let records = std::mem::take(&mut *self.pending());
        if let Err(e) = self.store.cache_commit(&records) {
            self.progress
                .warn(&format!("recording the build cache failed: {e}"));
        }
    }

    /// A result from an imported cache: its layers are fetched now. A
    /// blob that is missing or corrupt costs a warning and a rebuild.
    fn imported(&self, key: &CacheKey, id: VertexId) -> Option<LayerStack> {
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
    fn step_state(&self, id: VertexId, vertex: &Vertex, key: &CacheKey) -> explain::StepState {
        let label = self.label(id);
        let text = match self.texts.get(&id) {
            Some(t) => t.trim().to_string(),
            None => label
                .split_once("] ")
                .map_or(label.as_str(), |(_, t)| t)
                .to_string(),
        };
        let env = match &vertex.op {
            Op::Exec(x) => x.env.iter().cloned().collect(),
            _ => Default::default(),
        };
        let mut files = std::collections::BTreeMap::new();
        let mut inputs = Vec::new();
        for input in &vertex.inputs {
            if let Some(list) = self.context_files.get(input) {
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

    pub(crate) fn label(&self, id: VertexId) -> String {
        self.labels
            .get(&id)
            .cloned()
            .unwrap_or_else(|| self.def.vertex(id).name.clone())
    }

    /// Whether the step is shown: not scratch, merges or heredoc
    /// sources; a base image only as its stage's FROM (not as a
    /// `--from` source, labelled `[internal] load`).
    fn visible(&self, id: VertexId) -> bool {
        let label = self.label(id);
        match self.def.vertex(id).op {
            Op::Source(Source::Scratch) | Op::Merge => false,
            Op::Source(Source::Image { .. }) => !label.starts_with("[internal]"),
            _ => !label.starts_with("[internal] heredoc"),
        }
    }

    /// `ids` and every vertex they read from, in graph order (inputs
    /// first).
    fn with_ancestors(&self, ids: &[VertexId]) -> std::collections::BTreeSet<VertexId> {
        let mut all = std::collections::BTreeSet::new();
        let mut todo: Vec<VertexId> = ids.to_vec();
        while let Some(id) = todo.pop() {
            if all.insert(id) {
                todo.extend(self.def.vertex(id).inputs.iter().copied());
            }
        }
        all
    }

    /// Says why a step missed the cache; returns what to record if it runs.
    fn explain_miss(
        &self,
        id: VertexId,
        vertex: &Vertex,
        key: &CacheKey,
    ) -> Option<(String, explain::StepState)> {
        let step = explain::step_id(&self.project, &self.label(id))
            .filter(|_| !matches!(vertex.op, Op::Source(_)))?;
        let now = self.step_state(id, vertex, key);
        let before = self
            .store
            .step_info(&step)
            .ok()
            .flatten()
            .and_then(|t| serde_json::from_str::<explain::StepState>(&t).ok());
        // A first build has nothing to explain unless asked.
        if before.is_some() || self.progress.explains() || self.no_cache.contains(&id) {
            let reason = explain::why(before.as_ref(), &now, self.no_cache.contains(&id));
            self.progress.note(id, &format!("cache miss: {reason}"));
        }
        Some((step, now))
    }

    /// `COPY --link`'s merge: input 1's layers on input 0's, no work.
    fn merge(inputs: &[Output]) -> Result<Output, StepError> {
        let mut stack = inputs
            .first()
            .ok_or_else(|| StepError::Internal("merge without a base".into()))?
            .stack()?
            .clone();
        for input in &inputs[1..] {
            stack.extend(input.stack()?.iter().cloned());
        }
        Ok(Output::Stack(Arc::new(stack)))
    }
}

impl Worker for BuildWorker {
    type Output = Output;
    type Error = StepError;

    fn lookup(&self, key: &CacheKey) -> Option<Output> {
        let ids = self.by_key.get(key)?;
        let first = *ids.first()?;
        if let Op::Source(src) = &self.def.vertex(first).op {
            // Downloads and checkouts are work, done (and reported) by `run`.
            if matches!(src, Source::Http { .. } | Source::Git { .. }) {
                return None;
            }
            let found = self.source(src).ok();
            if found.is_some() {
                for &id in ids.iter().filter(|&&id| self.visible(id)) {
                    self.progress.cached(id, &self.label(id));
                }
            }
            return found;
        }
        let hex = key.hex();
        let pending = self
            .pending()
            .iter()
            .find(|(k, _)| *k == hex)
            .map(|(_, s)| s.clone());
        let stack = match pending.or_else(|| self.store.cache_get(&hex).ok().flatten()) {
            Some(stack) => stack,
            None => self.imported(key, first)?,
        };
        // The hit stands for everything beneath it too: each of those
        // steps is listed as CACHED, inputs first, as BuildKit lists them.
        for id in self.with_ancestors(ids) {
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
        key: &CacheKey,
        cancel: &Cancel,
    ) -> Result<Output, StepError> {
        let visible = self.visible(id);
        let mut explained = None;
        if visible {
            self.progress.start(id, &self.label(id));
            explained = self.explain_miss(id, vertex, key);
        }
        let result = match &vertex.op {
            Op::Source(src) => self.source(src),
            Op::Exec(x) => self.exec(id, x, &inputs, cancel),
            Op::File(f) => self.file(f, &inputs),
            Op::Merge => Self::merge(&inputs),
        };
        if visible {
            match &result {
                Ok(_) => self.progress.done(id),
                Err(e) => self.progress.failed(id, &e.to_string()),
            }
        }
        if let (Ok(_), Some((step, now))) = (&result, explained) {
            if let Ok(text) = serde_json::to_string(&now) {
                let _ = self.store.set_step_info(&step, &text);
            }
        }
        result
    }

    fn record(&self, key: &CacheKey, output: &Output) {
        let Some(first) = self.by_key.get(key).and_then(|ids| ids.first()) else {
            return;
        };
        if matches!(self.def.vertex(*first).op, Op::Source(_)) {
            return;
        }
        if let Output::Stack(stack) = output {
            self.pending().push((key.hex(), stack.as_ref().clone()));
        }
    }
}
