//! The real-world corpus (issue 22): public projects' Dockerfiles in
//! `corpus/`, each built by kiln from the stand-in bases and checked
//! against what Docker 20.10's BuildKit built from the same file and
//! context (`expected.json`, written by `corpus/record.py`): the config
//! fields a Dockerfile sets, every file under the project's own
//! directories, and a smoke command run in the image with `kiln run`.
//!
//! The builds reach the package registries (Debian, PyPI, npm,
//! crates.io), as the projects' Dockerfiles do. `KILN_CORPUS=a,b` checks
//! only those projects. Every project is built and checked before the
//! test reports, so one run lists all differences.

use kiln_tests::{debian_rootfs, repo_root, Kiln};
use serde_json::Value;
use sha2::Digest as _;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The stand-in bases `corpus/bases/Dockerfile` makes: (its target,
/// the name the corpus's Dockerfiles use).
const BASES: [(&str, &str); 6] = [
    ("debian-ca", "kiln-corpus/debian:12"),
    ("python", "kiln-corpus/python:3.11"),
    ("node", "kiln-corpus/node:18"),
    ("rust", "kiln-corpus/rust:1"),
    ("golang", "kiln-corpus/golang:1"),
    ("nginx", "kiln-corpus/nginx:1"),
];

/// The config fields `record.py` records: those a Dockerfile sets.
const CONFIG_FIELDS: [&str; 12] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Healthcheck",
    "Labels",
    "StopSignal",
    "Shell",
    "OnBuild",
];

fn corpus() -> PathBuf {
    repo_root().join("corpus")
}

/// One project: its directory (the build context is its `context/`) and
/// what `smoke.json` and `expected.json` say.
struct Project {
    name: String,
    dir: PathBuf,
    spec: Value,
    expected: Value,
}

fn projects() -> Vec<Project> {
    let only: Option<Vec<String>> = std::env::var("KILN_CORPUS")
        .ok()
        .map(|s| s.split(',').map(str::to_string).collect());
    let mut out = Vec::new();
    for dir in kiln_tests::case_dirs(&corpus()) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !dir.join("smoke.json").is_file() || only.as_ref().is_some_and(|o| !o.contains(&name)) {
            continue;
        }
        let read = |file: &str| -> Value {
            let text = std::fs::read_to_string(dir.join(file))
                .unwrap_or_else(|e| panic!("corpus/{name}/{file}: {e} (record.py writes it)"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("corpus/{name}/{file}: {e}"))
        };
        let (spec, expected) = (read("smoke.json"), read("expected.json"));
        out.push(Project {
            name,
            dir,
            spec,
            expected,
        });
    }
    out
}

/// Builds the stand-ins into `k`'s store from debian:bookworm, with the
/// machine's CA bundle in their context.
fn build_bases(k: &Kiln) {
    k.ok(&[
        "import",
        debian_rootfs().to_str().unwrap(),
        "debian:bookworm",
    ]);
    k.ok(&["tag", "debian:bookworm", "debian:bookworm-slim"]);
    let ctx = k.path("bases");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(corpus().join("bases/Dockerfile"), ctx.join("Dockerfile")).unwrap();
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        ctx.join("host-ca.crt"),
    )
    .expect("the machine's CA bundle");
    for (target, name) in BASES {
        k.build_dir(&ctx, &["--target", target, "-t", name]);
    }
}

/// The build flags a project's `smoke.json` asks for.
fn build_flags(p: &Project) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(t) = p.spec["target"].as_str() {
        flags.extend(["--target".to_string(), t.to_string()]);
    }
    if let Some(args) = p.spec["build_args"].as_object() {
        for (k, v) in args {
            flags.extend([
                "--build-arg".to_string(),
                format!("{k}={}", v.as_str().unwrap()),
            ]);
        }
    }
    flags
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A config value as docker prints it, with "unset" spelled one way:
/// docker shows an empty list or map as null.
fn normalized(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Array(a)) if a.is_empty() => Value::Null,
        Some(Value::Object(o)) if o.is_empty() => Value::Null,
        Some(Value::String(s)) if s.is_empty() => Value::Null,
        Some(v) => v.clone(),
    }
}

fn check_config(p: &Project, config: &Value) -> Vec<String> {
    CONFIG_FIELDS
        .iter()
        .filter_map(|field| {
            let want = normalized(p.expected["config"].get(*field));
            let got = normalized(config.get(*field));
            (want != got).then(|| format!("config {field}: BuildKit {want}, kiln {got}"))
        })
        .collect()
}

/// A tar entry's name relative to the root, as `record.py` spells it.
fn tar_path(name: &str) -> String {
    let mut n = name;
    while let Some(rest) = n.strip_prefix("./") {
        n = rest;
    }
    if n == "." {
        String::new()
    } else {
        n.trim_matches('/').to_string()
    }
}

fn under(path: &str, dirs: &[String]) -> bool {
    let p = format!("/{path}");
    dirs.iter().any(|d| {
        let d = d.trim_end_matches('/');
        p == d || p.starts_with(&format!("{d}/"))
    })
}

/// The entries under the project's roots (less its excludes) of the
/// image's filesystem tar, in `record.py`'s shape.
fn file_entries(p: &Project, tar_file: &Path) -> BTreeMap<String, Value> {
    let (roots, exclude) = (strs(&p.spec["roots"]), strs(&p.spec["exclude"]));
    let mut content: HashMap<String, (u64, String)> = HashMap::new();
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(tar_file).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = tar_path(&entry.path().unwrap().to_string_lossy());
        if path.is_empty() {
            continue;
        }
        let h = entry.header();
        let mut e = serde_json::json!({
            "path": path,
            "mode": format!("{:04o}", h.mode().unwrap() & 0o7777),
            "uid": h.uid().unwrap(),
            "gid": h.gid().unwrap(),
        });
        let link = || tar_path(&h.link_name().unwrap().unwrap().to_string_lossy());
        match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
                let sum = hex::encode(sha2::Sha256::digest(&data));
                content.insert(path.clone(), (data.len() as u64, sum));
                let (size, sum) = &content[&path];
                e["type"] = "file".into();
                e["size"] = (*size).into();
                e["sha256"] = sum.clone().into();
            }
            tar::EntryType::Link => {
                let (size, sum) = content[&link()].clone();
                e["type"] = "file".into();
                e["size"] = size.into();
                e["sha256"] = sum.into();
            }
            tar::EntryType::Directory => e["type"] = "dir".into(),
            tar::EntryType::Symlink => {
                e["type"] = "symlink".into();
                e["target"] = h.link_name().unwrap().unwrap().to_string_lossy().into();
            }
            _ => e["type"] = "other".into(),
        }
        if under(&path, &roots) && !under(&path, &exclude) {
            out.insert(path, e);
        }
    }
    out
}

fn check_files(p: &Project, tar_file: &Path) -> Vec<String> {
    let got = file_entries(p, tar_file);
    let want: BTreeMap<String, Value> = p.expected["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    let mut diffs = Vec::new();
    for (path, w) in &want {
        match got.get(path) {
            None => diffs.push(format!("/{path}: missing (BuildKit: {w})")),
            Some(g) if g != w => diffs.push(format!("/{path}: BuildKit {w}, kiln {g}")),
            Some(_) => {}
        }
    }
    for (path, g) in &got {
        if !want.contains_key(path) {
            diffs.push(format!("/{path}: only in kiln's image ({g})"));
        }
    }
    diffs
}

/// `kiln run --rm --network none IMAGE smoke.cmd`; its stdout must hold
/// `smoke.expect`. A list `entrypoint` is its executable and first args.
fn check_smoke(k: &Kiln, p: &Project, image: &str) -> Vec<String> {
    let smoke = &p.spec["smoke"];
    let mut args = vec![
        "run".to_string(),
        "--rm".into(),
        "--network".into(),
        "none".into(),
    ];
    let mut cmd = Vec::new();
    match &smoke["entrypoint"] {
        Value::String(e) => args.extend(["--entrypoint".into(), e.clone()]),
        Value::Array(_) => {
            let e = strs(&smoke["entrypoint"]);
            args.extend(["--entrypoint".into(), e[0].clone()]);
            cmd.extend(e[1..].iter().cloned());
        }
        _ => {}
    }
    args.push(image.to_string());
    args.extend(cmd);
    args.extend(strs(&smoke["cmd"]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = k.out(&args).parts();
    let expect = smoke["expect"].as_str().unwrap();
    if stdout.contains(expect) {
        return Vec::new();
    }
    vec![format!(
        "smoke {args:?} exited {code} without {expect:?} in its output:\n{stdout}\n{stderr}"
    )]
}

/// Builds one project and checks it; the differences, empty if none.
fn check(k: &Kiln, p: &Project) -> Vec<String> {
    let image = format!("kiln-corpus-test/{}", p.name);
    let mut flags = build_flags(p);
    flags.extend(["-t".to_string(), image.clone()]);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, _, progress) = k.try_build_dir(&p.dir.join("context"), &flag_refs);
    if code != 0 {
        let tail: Vec<&str> = progress.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return vec![format!("build failed ({code}):\n{}", tail.join("\n"))];
    }
    let config = &k.inspect(&image)["Config"];
    let mut diffs = check_config(p, config);

    // The same build again, cached, written out as the image's filesystem.
    let tar_file = k.path(&format!("{}.tar", p.name));
    let mut flags = build_flags(p);
    flags.extend([
        "--output".to_string(),
        format!("type=tar,dest={}", tar_file.display()),
    ]);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    k.build_dir(&p.dir.join("context"), &flag_refs);
    diffs.extend(check_files(p, &tar_file));
    let _ = std::fs::remove_file(&tar_file);

    diffs.extend(check_smoke(k, p, &image));
    diffs
}

#[test]
fn public_projects_dockerfiles_build_and_match_buildkits_images() {
    let projects = projects();
    assert!(
        std::env::var_os("KILN_CORPUS").is_some() || projects.len() >= 15,
        "the corpus has {} projects; issue 22 asks for at least 15",
        projects.len()
    );
    let k = Kiln::new(env!("CARGO_BIN_EXE_kiln"));
    build_bases(&k);
    let mut failures = Vec::new();
    for p in &projects {
        let started = std::time::Instant::now();
        let diffs = check(&k, p);
        eprintln!(
            "corpus/{}: {} ({:.1}s)",
            p.name,
            if diffs.is_empty() { "ok" } else { "DIFFERS" },
            started.elapsed().as_secs_f64()
        );
        if !diffs.is_empty() {
            failures.push(format!("corpus/{}:\n  {}", p.name, diffs.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
