//! Cache keys for a build: the graph's keys with the content of what each
//! source reads — the store's memoized checksum of exactly the context
//! paths a COPY names, or a download's content (its `--checksum` when
//! pinned, else the fetched file's digest and time).

use crate::contexts::Contexts;
use crate::download::Downloads;
use crate::error::StepError;
use crate::fileop;
use crate::worker::ContextFiles;
use kiln_executor::view;
use kiln_frontend_dockerfile::dockerignore::Ignore;
use kiln_solver::{CacheKey, Definition, Fingerprint, Op, Source, VertexId};
use kiln_store::Store;
use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::path::Path;

/// The context paths a source's include patterns name: plain paths as
/// they are, wildcards matched against the context by the copier's own
/// matcher ([`fileop::expand_source`], with the `.dockerignore` rules), so
/// a wildcard COPY's key covers exactly the files it will copy (BuildKit's
/// content selector). `**` widens to its directory; a pattern the matcher
/// refuses widens to the directory above its first wildcard (the copy
/// then fails with the matcher's error).
pub fn checksum_roots(context: BorrowedFd<'_>, include: &[String], ignore: &Ignore) -> Vec<String> {
    let has_glob = |c: &str| c.contains(['*', '?', '[']);
    let filter = fileop::Filter {
        ignore: Some(ignore),
        exclude: None,
        base: String::new(),
    };
    let mut out = Vec::new();
    for pattern in include {
        let parts: Vec<String> = fileop::components(pattern)
            .into_iter()
            .take_while(|c| c != "**")
            .collect();
        if !parts.iter().any(|c| has_glob(c)) {
            out.push(parts.join("/"));
            continue;
        }
        match fileop::expand_source(context, &parts.join("/"), &filter) {
            Ok(matched) => out.extend(matched),
            Err(_) => out.push(
                parts
                    .iter()
                    .take_while(|c| !has_glob(c))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("/"),
            ),
        }
    }
    out
}

/// Keys of every vertex, and the files each context source reads. A
/// context source's own exclude list (the `.dockerignore` rules) decides
/// what its checksum skips; stages the target does not need download
/// nothing. An error names the vertex it happened at.
pub(crate) fn cache_keys(
    store: &Store,
    def: &Definition,
    targets: &[VertexId],
    contexts: &Contexts,
    downloads: &Downloads,
    git_access: &crate::git::Access,
) -> Result<(Vec<CacheKey>, ContextFiles), (VertexId, StepError)> {
    let mut sums: HashMap<VertexId, Fingerprint> = HashMap::new();
    let mut files: ContextFiles = HashMap::new();
    let needed: std::collections::BTreeSet<VertexId> = targets
        .iter()
        .flat_map(|t| kiln_solver::needed(def, *t))
        .collect();
    // Each context, opened once, for matching wildcard sources.
    let mut views: HashMap<&str, view::View> = HashMap::new();
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
            Op::Source(Source::Git {
                url,
                reference,
                checksum,
                ..
            }) => {
                // The commit is the content: an unmoved ref hits the cache
                // after one `ls-remote`, a moved one misses.
                let commit = crate::git::resolve(url, reference, checksum.as_deref(), git_access)
                    .map_err(|e| (id, e))?;
                let mut e = kiln_solver::Encoder::new();
                e.str(&commit);
                sums.insert(id, e.finish());
            }
            Op::Source(Source::Context {
                name,
                include,
                exclude,
            }) => {
                let rules = Ignore::from_patterns(exclude)
                    .map_err(|e| (id, StepError::Invalid(e.to_string())))?;
                let excluded = |p: &Path| rules.excludes(p);
                let (context, _) = contexts.get(name).ok_or_else(|| {
                    (
                        id,
                        StepError::Invalid(format!("no build context named {name:?}")),
                    )
                })?;
                if !views.contains_key(name.as_str()) {
                    let v = view::host_dir(context).map_err(|e| (id, e.into()))?;
                    views.insert(name, v);
                }
                let root = views[name.as_str()].root();
                let roots = checksum_roots(root, include, &rules);
                let (d, _, list) = store
                    .context_checksum_files(context, &roots, &excluded)
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
