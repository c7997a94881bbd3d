//! Cache keys for a build: the graph's keys with the content of what each
//! source reads — the store's memoized checksum of exactly the context
//! paths a COPY names, or a download's content (its `--checksum` when
//! pinned, else the fetched file's digest and time).

use crate::download::Downloads;
use crate::error::StepError;
use crate::worker::ContextFiles;
use kiln_frontend_dockerfile::dockerignore::Ignore;
use kiln_solver::{CacheKey, Definition, Fingerprint, Op, Source, VertexId};
use kiln_store::Store;
use std::collections::HashMap;
use std::path::Path;

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

/// Keys of every vertex, and the files each context source reads. A
/// context source's own exclude list (the `.dockerignore` rules) decides
/// what its checksum skips; stages the target does not need download
/// nothing. An error names the vertex it happened at.
pub(crate) fn cache_keys(
    store: &Store,
    def: &Definition,
    target: VertexId,
    context: &Path,
    downloads: &Downloads,
) -> Result<(Vec<CacheKey>, ContextFiles), (VertexId, StepError)> {
    let mut sums: HashMap<VertexId, Fingerprint> = HashMap::new();
    let mut files: ContextFiles = HashMap::new();
    let needed = kiln_solver::needed(def, target);
    for (id, v) in def.vertices() {
        match &v.op {
            Op::Source(Source::Http {
                url,
                checksum,
                filename,
            }) => {
                // A checksum is the content's name: nothing to fetch.
                // Without one, only the content can say whether the
                // cache applies.
                let content = match checksum {
                    Some(sum) => sum.clone(),
                    None if needed.contains(&id) => downloads
                        .get(url, filename, None)
                        .map_err(|e| (id, e.into()))?
                        .content_key(),
                    None => continue,
                };
                let mut e = kiln_solver::Encoder::new();
                e.str(&content);
                sums.insert(id, e.finish());
            }
            Op::Source(Source::Context {
                include, exclude, ..
            }) => {
                let rules = Ignore::from_patterns(exclude)
                    .map_err(|e| (id, StepError::Invalid(e.to_string())))?;
                let excluded = |p: &Path| rules.excludes(p);
                let (d, _, list) = store
                    .context_checksum_files(context, &checksum_roots(include), &excluded)
                    .map_err(|e| (id, e.into()))?;
                let mut e = kiln_solver::Encoder::new();
                e.str(&d.to_string());
                sums.insert(id, e.finish());
                files.insert(id, list);
            }
            _ => {}
        }
    }
    Ok((def.cache_keys(|id, _| sums.get(&id).copied()), files))
}
