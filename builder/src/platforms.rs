//! Multi-platform builds: the Dockerfile is lowered once per target
//! platform, and the lowerings become one graph with one target per
//! platform. Nothing is merged by hand: the solver runs each definition
//! digest once, so a vertex every platform has alike (a `FROM
//! --platform=$BUILDPLATFORM` stage, a context) is built once for all.

use kiln_frontend_dockerfile::lower::Lowered;
use kiln_frontend_dockerfile::plan::Platform;
use kiln_solver::{Definition, VertexId};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One platform's part of a combined build: its lowering, with the
/// combined graph as its definition (so ids mean the same everywhere).
pub(crate) struct PlatformView {
    pub platform: Option<Platform>,
    pub lowered: Lowered,
}

/// Appends each lowering's graph to one definition; returns the combined
/// lowering (every step, the first platform's target, config and
/// history) and each platform's view of it. One platform: itself.
pub(crate) fn combine(parts: Vec<(Option<Platform>, Lowered)>) -> (Lowered, Vec<PlatformView>) {
    if parts.len() == 1 {
        let (platform, lowered) = parts.into_iter().next().expect("one part");
        let view = PlatformView {
            platform,
            lowered: lowered.clone(),
        };
        return (lowered, vec![view]);
    }
    let mut def = Definition::new();
    let mut steps = HashMap::new();
    let mut no_cache = BTreeSet::new();
    let mut emulated = BTreeMap::new();
    let mut stages = Vec::new();
    let mut remapped = Vec::new();
    for (platform, lowered) in parts {
        let offset = def.len();
        let map = |id: VertexId| VertexId(id.0 + offset);
        for (_, v) in lowered.definition.vertices() {
            let mut v = v.clone();
            v.inputs = v.inputs.iter().map(|i| map(*i)).collect();
            def.add(v).expect("inputs come first in each lowering");
        }
        let name = platform.as_ref().map(Platform::name).unwrap_or_default();
        for (id, mut info) in lowered.steps.clone() {
            // `[linux/arm64 build 2/4] RUN make`, as BuildKit labels them.
            if let Some(rest) = info.label.strip_prefix('[') {
                info.label = format!("[{name} {rest}");
            }
            steps.insert(map(id), info);
        }
        no_cache.extend(lowered.no_cache.iter().map(|id| map(*id)));
        emulated.extend(lowered.emulated.iter().map(|(id, p)| (map(*id), p.clone())));
        stages.extend(lowered.stages.iter().copied());
        remapped.push((platform, map(lowered.target), lowered));
    }
    stages.sort();
    stages.dedup();
    // One warning per base and platform pair, whichever lowering saw it.
    let mut warnings: Vec<kiln_frontend_dockerfile::checks::CheckWarning> = Vec::new();
    for (_, _, l) in &remapped {
        for w in &l.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
    }
    let views: Vec<PlatformView> = remapped
        .into_iter()
        .map(|(platform, target, l)| PlatformView {
            platform,
            lowered: Lowered {
                definition: def.clone(),
                target,
                config: l.config,
                history: l.history,
                no_cache: no_cache.clone(),
                steps: steps.clone(),
                stages: l.stages,
                source_date_epoch: l.source_date_epoch,
                emulated: emulated.clone(),
                warnings: l.warnings,
            },
        })
        .collect();
    let first = &views[0].lowered;
    let combined = Lowered {
        definition: def,
        target: first.target,
        config: first.config.clone(),
        history: first.history.clone(),
        no_cache,
        steps,
        stages,
        source_date_epoch: first.source_date_epoch,
        emulated,
        warnings,
    };
    (combined, views)
}

/// `linux/arm64` → `linux_arm64` (BuildKit's local exporter's subdirectory).
pub(crate) fn dir_name(platform: &Platform) -> String {
    platform.name().replace('/', "_")
}
