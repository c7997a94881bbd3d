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

/// The context paths a source's include patterns name: plain paths as
/// they are, wildcards (one component each) expanded against the context
/// directory, so a wildcard COPY's key covers exactly the files it
/// matched (BuildKit's content selector). Symlinks are not followed while
/// matching; ignored paths never match.
pub fn checksum_roots(
    context: &Path,
    include: &[String],
    excluded: &dyn Fn(&Path) -> bool,
) -> Vec<String> {
    let has_glob = |c: &str| c.contains(['*', '?', '[']);
    let mut out = Vec::new();
    for pattern in include {
        // `**` can match anything below: the key covers its directory.
        let parts: Vec<&str> = pattern
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .take_while(|c| *c != "**")
            .collect();
        if !parts.iter().any(|c| has_glob(c)) {
            out.push(parts.join("/"));
            continue;
        }
        let mut current = vec![String::new()];
        for part in parts {
            let mut next = Vec::new();
            for base in &current {
                let join = |name: &str| {
                    if base.is_empty() {
                        name.to_string()
                    } else {
                        format!("{base}/{name}")
                    }
                };
                if !has_glob(part) {
                    next.push(join(part));
                    continue;
                }
                let Ok(glob) = globset::GlobBuilder::new(part)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                else {
                    // An invalid pattern fails the copy itself; the key
                    // then covers the directory.
                    next.push(base.clone());
                    continue;
                };
                let matcher = glob.compile_matcher();
                let dir = context.join(base);
                let is_dir = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
                let Ok(entries) = std::fs::read_dir(&dir).map_err(drop).and_then(|e| {
                    if is_dir {
                        Ok(e)
                    } else {
                        Err(())
                    }
                }) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| matcher.is_match(n))
                    .collect();
                names.sort();
                next.extend(names.iter().map(|n| join(n)));
            }
            current = next;
        }
        out.extend(current.into_iter().filter(|p| !excluded(Path::new(p))));
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
                let roots = checksum_roots(context, include, &excluded);
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
