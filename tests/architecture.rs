//! ARCHITECTURE.md's "must not depend on" table, checked against
//! `cargo metadata`: a crate may not reach a forbidden kiln crate, directly
//! or through another kiln crate, and every workspace crate has a row.
//! Only normal and build dependencies count; tests may use anything.

use kiln_tests::repo_root;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// package → its kiln dependencies (normal and build).
fn workspace_deps() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut deps = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        let own: BTreeSet<String> = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["path"].is_string() && d["kind"].as_str() != Some("dev"))
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect();
        deps.insert(p["name"].as_str().unwrap().to_string(), own);
    }
    deps
}

/// Everything `name` reaches through kiln crates.
fn reaches(deps: &BTreeMap<String, BTreeSet<String>>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = deps[name].iter().cloned().collect();
    while let Some(d) = todo.pop() {
        if seen.insert(d.clone()) {
            todo.extend(deps.get(&d).into_iter().flatten().cloned());
        }
    }
    seen
}

/// The backticked words of a table cell.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// package → (forbidden kiln crates, "any other kiln crate").
fn table() -> BTreeMap<String, (BTreeSet<String>, bool)> {
    let text = std::fs::read_to_string(repo_root().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("| crate | owns | must not depend on |")
        .expect("ARCHITECTURE.md has the crate table");
    let mut rows = BTreeMap::new();
    for line in text[start..].lines().skip(2) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let package = ticked(cells[1])
            .into_iter()
            .find(|w| w.starts_with("kiln-"))
            .unwrap_or_else(|| panic!("row without a kiln-* package name: {line}"));
        let forbid = cells[3];
        let names = ticked(forbid)
            .into_iter()
            .filter(|w| w.starts_with("kiln-"))
            .collect();
        rows.insert(package, (names, forbid.contains("any other kiln crate")));
    }
    rows
}

#[test]
fn the_dependency_rule_holds() {
    let deps = workspace_deps();
    let rows = table();
    let mut broken = Vec::new();
    for name in deps.keys() {
        let Some((forbidden, none_at_all)) = rows.get(name) else {
            broken.push(format!(
                "{name} has no row in ARCHITECTURE.md's crate table"
            ));
            continue;
        };
        let reached = reaches(&deps, name);
        for d in &reached {
            if *none_at_all || forbidden.contains(d) {
                broken.push(format!("{name} depends on {d}, which its row forbids"));
            }
        }
        for f in forbidden {
            assert!(
                deps.contains_key(f),
                "the row of {name} names {f}, not a crate"
            );
        }
    }
    for row in rows.keys() {
        assert!(
            deps.contains_key(row),
            "ARCHITECTURE.md names {row}, not a crate"
        );
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The check itself can fail: a forbidden edge is reported.
#[test]
fn a_forbidden_edge_is_found() {
    let mut deps = workspace_deps();
    deps.get_mut("kiln-parser")
        .unwrap()
        .insert("kiln-store".into());
    let reached = reaches(&deps, "kiln-parser");
    assert!(reached.contains("kiln-store"));
    let (_, none_at_all) = &table()["kiln-parser"];
    assert!(*none_at_all, "the parser may depend on no kiln crate");
    // Transitively too: the frontend reaching the store through the parser.
    assert!(reaches(&deps, "kiln-frontend-dockerfile").contains("kiln-store"));
    assert!(table()["kiln-frontend-dockerfile"].0.contains("kiln-store"));
}
