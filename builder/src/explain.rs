//! Why a step missed the cache. Each step that runs leaves a small record
//! of what it was (instruction, environment, the context files it read,
//! its inputs' keys) in the store under the step's identity (project,
//! stage, position); the next time that step misses, the two are compared
//! and the first difference is the reason: the instruction, a build
//! arg / ENV value, a context file, or an earlier step.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use std::collections::BTreeMap;

/// What a step was when it ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StepState {
    pub key: String,
    pub text: String,
    /// The environment RUN sees (ENV, and ARGs in scope).
    pub env: BTreeMap<String, String>,
    /// Context files the step reads: path → short checksum.
    pub files: BTreeMap<String, String>,
    /// The inputs' cache keys and what they are.
    pub inputs: Vec<(String, String)>,
}

/// A step's identity across builds: the project (context + Dockerfile)
/// and the step's place (`[build 2/5] ...` → `build 2`). Internal steps
/// (heredoc files, downloads) have none: the step using them explains.
pub fn step_id(project: &str, label: &str) -> Option<String> {
    let inner = label.strip_prefix('[')?.split(']').next()?;
    if inner.starts_with("internal") {
        return None;
    }
    // `build 2/5` → `build 2`; `linux/arm64 build 2/5` → `linux/arm64 build 2`.
    let place = inner.rsplit_once('/').map_or(inner, |(place, _)| place);
    let mut h = sha2::Sha256::new();
    h.update(project.as_bytes());
    h.update([0]);
    h.update(place.as_bytes());
    Some(hex::encode(h.finalize()))
}

fn list(names: &[&String], what: &str) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let shown: Vec<&str> = names.iter().take(3).map(|s| s.as_str()).collect();
    let more = if names.len() > 3 {
        format!(" (+{} more)", names.len() - 3)
    } else {
        String::new()
    };
    Some(format!("{what}: {}{more}", shown.join(", ")))
}

/// The reason `now` missed, compared with `before` (the step's last run).
pub fn why(before: Option<&StepState>, now: &StepState, no_cache: bool) -> String {
    if no_cache {
        return "--no-cache".to_string();
    }
    let Some(before) = before else {
        return "no earlier build of this step to compare with".to_string();
    };
    if before.key == now.key {
        return "the cached result is gone (pruned, or its layers are missing)".to_string();
    }
    if before.text != now.text {
        return format!("the instruction changed (was: {})", before.text);
    }
    let mut env_changes = Vec::new();
    for (k, v) in &now.env {
        match before.env.get(k) {
            Some(old) if old != v => env_changes.push(format!("{k}={old:?} → {v:?}")),
            None => env_changes.push(format!("{k}={v:?} (new)")),
            _ => {}
        }
    }
    for k in before.env.keys() {
        if !now.env.contains_key(k) {
            env_changes.push(format!("{k} (unset)"));
        }
    }
    if !env_changes.is_empty() {
        return format!("build arg / ENV changed: {}", env_changes.join(", "));
    }
    let changed: Vec<&String> = now
        .files
        .iter()
        .filter(|(p, sum)| before.files.get(*p).is_some_and(|old| old != *sum))
        .map(|(p, _)| p)
        .collect();
    let added: Vec<&String> = now
        .files
        .keys()
        .filter(|p| !before.files.contains_key(*p))
        .collect();
    let removed: Vec<&String> = before
        .files
        .keys()
        .filter(|p| !now.files.contains_key(*p))
        .collect();
    let files: Vec<String> = [
        list(&changed, "changed"),
        list(&added, "added"),
        list(&removed, "removed"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !files.is_empty() {
        return format!("context files {}", files.join("; "));
    }
    for (i, (key, label)) in now.inputs.iter().enumerate() {
        if before.inputs.get(i).map(|(k, _)| k) != Some(key) {
            return format!("an earlier step changed: {label}");
        }
    }
    "its inputs changed".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(text: &str) -> StepState {
        StepState {
            key: "k1".into(),
            text: text.into(),
            ..StepState::default()
        }
    }

    #[test]
    fn reasons_name_what_changed() {
        let a = state("RUN make");
        let mut b = state("RUN make all");
        b.key = "k2".into();
        assert_eq!(
            why(None, &a, false),
            "no earlier build of this step to compare with"
        );
        assert_eq!(
            why(Some(&a), &a, false),
            "the cached result is gone (pruned, or its layers are missing)"
        );
        assert_eq!(
            why(Some(&a), &b, false),
            "the instruction changed (was: RUN make)"
        );
        assert_eq!(why(Some(&a), &b, true), "--no-cache");
        let mut c = a.clone();
        c.key = "k3".into();
        c.env.insert("V".into(), "2".into());
        let mut a2 = a.clone();
        a2.env.insert("V".into(), "1".into());
        assert_eq!(
            why(Some(&a2), &c, false),
            "build arg / ENV changed: V=\"1\" → \"2\""
        );
        let mut d = a.clone();
        d.key = "k4".into();
        d.files.insert("src/x".into(), "1".into());
        let mut a3 = a.clone();
        a3.files.insert("src/x".into(), "0".into());
        assert_eq!(why(Some(&a3), &d, false), "context files changed: src/x");
        let mut e = a.clone();
        e.key = "k5".into();
        e.inputs = vec![("i2".into(), "[2/3] COPY . /".into())];
        let mut a4 = a.clone();
        a4.inputs = vec![("i1".into(), "x".into())];
        assert_eq!(
            why(Some(&a4), &e, false),
            "an earlier step changed: [2/3] COPY . /"
        );
        assert_eq!(step_id("p", "[internal] heredoc"), None);
        assert_eq!(
            step_id("p", "[build 2/5] RUN x"),
            step_id("p", "[build 2/6] RUN y")
        );
    }
}
