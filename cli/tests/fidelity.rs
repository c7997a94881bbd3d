//! The fidelity corpus (`fixtures/fidelity`, format in its README): each
//! case is a behaviour BuildKit's own frontend tests assert, built and
//! checked end to end. One test per area directory; every case of an
//! area runs and all failures are reported together.

use kiln_tests::{repo_root, FileServer, Kiln};
use std::path::PathBuf;

const KILN: &str = env!("CARGO_BIN_EXE_kiln");

/// One parsed case file.
struct Case {
    files: Vec<(String, String)>,
    served: Vec<(String, String)>,
    script: Vec<(usize, String)>,
}

fn parse_case(text: &str) -> Result<Case, String> {
    let mut case = Case {
        files: Vec::new(),
        served: Vec::new(),
        script: Vec::new(),
    };
    let mut header = Vec::new();
    let mut current: Option<(String, usize, String)> = None;
    let mut sections = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let title = line.strip_prefix("-- ").and_then(|l| l.strip_suffix(" --"));
        if let Some(title) = title {
            sections.extend(current.take());
            current = Some((title.to_string(), i + 2, String::new()));
        } else if let Some((_, _, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        } else {
            header.push(line);
        }
    }
    sections.extend(current);
    if !header.iter().any(|l| l.starts_with("follows: ")) {
        return Err("the header has no `follows:` line".into());
    }
    for (title, first_line, body) in sections {
        if title == "script" {
            for (i, line) in body.lines().enumerate() {
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') {
                    case.script.push((first_line + i, line.to_string()));
                }
            }
        } else if let Some(path) = title.strip_prefix("serve/") {
            case.served.push((path.to_string(), body));
        } else {
            case.files.push((title, body));
        }
    }
    if case.script.is_empty() {
        return Err("no script".into());
    }
    Ok(case)
}

/// Splits a script line into words: whitespace-separated, with single and
/// double quotes (no escapes inside single quotes; `\"` and `\\` inside
/// double quotes).
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated '".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => word.extend(chars.next()),
                        Some(c) => word.push(c),
                        None => return Err("unterminated \"".into()),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

/// What the last command printed, and the last build's progress.
#[derive(Default)]
struct Last {
    stdout: String,
    stderr: String,
    progress: String,
}

struct Runner<'a> {
    kiln: &'a Kiln,
    vars: Vec<(&'static str, String)>,
    last: Last,
    /// Every build's progress so far, for `cached`.
    seen: String,
}

impl Runner<'_> {
    fn expand(&self, word: &str) -> String {
        let mut w = word.to_string();
        for (k, v) in &self.vars {
            w = w.replace(&format!("${k}"), v);
        }
        w
    }

    fn words(&self, rest: &str) -> Result<Vec<String>, String> {
        Ok(words(rest)?.iter().map(|w| self.expand(w)).collect())
    }

    fn kiln_cmd(&mut self, args: &[String]) -> Result<(), String> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.kiln.out(&args);
        self.last.stdout = out.stdout;
        self.last.stderr = out.stderr;
        if out.code != 0 {
            return Err(format!(
                "kiln {args:?} exited {}:\n{}",
                out.code, self.last.stderr
            ));
        }
        Ok(())
    }

    fn build(&mut self, flags: &[String], should_fail: bool) -> Result<(), String> {
        let out = self
            .kiln
            .cmd()
            .args(["build", "--progress", "plain", "-t", "case"])
            .args(flags)
            .arg(self.kiln.ctx())
            .output()
            .map_err(|e| e.to_string())?;
        let code = out.status.code().unwrap_or(-1);
        self.last.stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        self.last.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        self.last.progress = self.last.stderr.clone();
        self.seen.push_str(&self.last.progress);
        if self.last.stderr.contains("panicked") {
            return Err(format!("kiln panicked:\n{}", self.last.stderr));
        }
        match (should_fail, code) {
            (false, 0) => Ok(()),
            (false, _) => Err(format!("build failed ({code}):\n{}", self.last.stderr)),
            (true, 1) => Ok(()),
            (true, _) => Err(format!(
                "build should fail with exit 1, got {code}:\n{}",
                self.last.stderr
            )),
        }
    }

    fn step(&mut self, line: &str) -> Result<(), String> {
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        match cmd {
            "build" => self.build(&self.words(rest)?, false),
            "fails" => self.build(&self.words(rest)?, true),
            "run" => {
                let mut args = vec!["run".to_string(), "--rm".into(), "case".into()];
                args.extend(self.words(rest)?);
                self.kiln_cmd(&args)
            }
            "kiln" => self.kiln_cmd(&self.words(rest)?),
            "sh" => self.sh(rest),
            "stdout" | "!stdout" | "stderr" | "!stderr" => {
                let text = if cmd.ends_with("stdout") {
                    &self.last.stdout
                } else {
                    &self.last.stderr
                };
                let want = !cmd.starts_with('!');
                if text.contains(rest) == want {
                    Ok(())
                } else {
                    Err(format!(
                        "{} {} {rest:?}:\n{text}",
                        cmd.trim_start_matches('!'),
                        if want { "lacks" } else { "has" }
                    ))
                }
            }
            "stdout-is" => {
                let got = self
                    .last
                    .stdout
                    .strip_suffix('\n')
                    .unwrap_or(&self.last.stdout);
                let want = rest.replace("\\n", "\n");
                if got == want {
                    Ok(())
                } else {
                    Err(format!("stdout is {got:?}, want {want:?}"))
                }
            }
            "config" | "config-has" | "oci-config" => {
                let (pointer, json) = rest.split_once(' ').ok_or("POINTER JSON")?;
                let want: serde_json::Value =
                    serde_json::from_str(json).map_err(|e| format!("{json}: {e}"))?;
                let doc = if cmd == "oci-config" {
                    self.oci_config()?
                } else {
                    self.kiln_cmd(&["inspect".into(), "case".into()])?;
                    let v: serde_json::Value =
                        serde_json::from_str(&self.last.stdout).map_err(|e| e.to_string())?;
                    v[0].clone()
                };
                let got = doc.pointer(pointer).cloned().unwrap_or_default();
                let ok = if cmd == "config-has" {
                    got.as_array().is_some_and(|a| a.contains(&want))
                } else {
                    got == want
                };
                if ok {
                    Ok(())
                } else {
                    Err(format!("{pointer} is {got}, want {cmd} {want}"))
                }
            }
            "cached" | "ran" => {
                let cached = match step_cached(&self.last.progress, rest) {
                    Ok(cached) => cached,
                    // A step below a cache answer is never visited, so a
                    // fully cached rebuild does not list it: it did not
                    // run. An earlier build must have listed it, so a
                    // mistyped label still fails.
                    Err(_) if self.seen.contains(rest) => true,
                    Err(e) => return Err(e),
                };
                if cached == (cmd == "cached") {
                    Ok(())
                } else {
                    Err(format!(
                        "step {rest:?} {}:\n{}",
                        if cached { "was cached" } else { "ran" },
                        self.last.progress
                    ))
                }
            }
            other => Err(format!("unknown script command {other:?}")),
        }
    }

    fn sh(&mut self, text: &str) -> Result<(), String> {
        let mut c = std::process::Command::new("sh");
        c.arg("-c").arg(text).current_dir(self.kiln.ctx());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        let out = c.output().map_err(|e| e.to_string())?;
        self.last.stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        self.last.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            return Err(format!("sh {text:?} failed:\n{}", self.last.stderr));
        }
        Ok(())
    }

    /// The OCI config of image `case`, from `kiln save`.
    fn oci_config(&mut self) -> Result<serde_json::Value, String> {
        let tar_path = self.kiln.path("case-save.tar");
        self.kiln_cmd(&[
            "save".into(),
            "-o".into(),
            tar_path.display().to_string(),
            "case".into(),
        ])?;
        let read = |name: &str| -> Result<Vec<u8>, String> {
            let f = std::fs::File::open(&tar_path).map_err(|e| e.to_string())?;
            for entry in tar::Archive::new(f).entries().map_err(|e| e.to_string())? {
                let mut entry = entry.map_err(|e| e.to_string())?;
                if entry.path().map_err(|e| e.to_string())?.to_str() == Some(name) {
                    let mut buf = Vec::new();
                    std::io::Read::read_to_end(&mut entry, &mut buf).map_err(|e| e.to_string())?;
                    return Ok(buf);
                }
            }
            Err(format!("{name} is not in the saved archive"))
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&read("manifest.json")?).map_err(|e| e.to_string())?;
        let config = manifest[0]["Config"].as_str().ok_or("no Config")?;
        serde_json::from_slice(&read(config)?).map_err(|e| e.to_string())
    }
}

/// Whether the step whose label contains `label` was CACHED in `progress`
/// (plain progress: `#N label`, then `#N CACHED` for a cache answer).
fn step_cached(progress: &str, label: &str) -> Result<bool, String> {
    let number = progress
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| l.split_once(' '))
        .find(|(n, text)| n.parse::<u32>().is_ok() && text.contains(label))
        .map(|(n, _)| n.to_string())
        .ok_or_else(|| format!("no step {label:?} in:\n{progress}"))?;
    Ok(progress.lines().any(|l| l == format!("#{number} CACHED")))
}

fn busybox_tar() -> PathBuf {
    static TAR: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    TAR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busybox-rootfs.tar");
        kiln_tests::write_busybox_rootfs(&path);
        (dir, path)
    })
    .1
    .clone()
}

/// The kiln under test: this build's, or `KILN_FIDELITY_BIN` (to show
/// which cases an older kiln fails).
fn kiln_bin() -> PathBuf {
    std::env::var_os("KILN_FIDELITY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(KILN))
}

fn run_case(case: &Case) -> Result<(), String> {
    let kiln = Kiln::new(kiln_bin());
    let tar = busybox_tar();
    kiln.ok(&["import", tar.to_str().unwrap(), "busybox"]);
    let serve_dir = kiln.path("serve");
    std::fs::create_dir_all(&serve_dir).unwrap();
    for (path, body) in &case.served {
        kiln.write(&format!("serve/{path}"), body);
    }
    let server = (!case.served.is_empty()).then(|| FileServer::start(&serve_dir));
    let base = server
        .as_ref()
        .map(|s| s.url("").trim_end_matches('/').to_string())
        .unwrap_or_default();
    for (path, body) in &case.files {
        kiln.write_ctx(path, body.replace("{{SERVER}}", &base));
    }
    let out = kiln.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut runner = Runner {
        kiln: &kiln,
        vars: vec![
            ("CTX", kiln.ctx().display().to_string()),
            ("OUT", out.display().to_string()),
            ("BUSYBOX_TAR", tar.display().to_string()),
            ("SERVER", base),
        ],
        last: Last::default(),
        seen: String::new(),
    };
    for (line_no, line) in &case.script {
        runner
            .step(line)
            .map_err(|e| format!("line {line_no}: {line}\n{e}"))?;
    }
    Ok(())
}

fn cases_in(area: &str) -> Vec<(PathBuf, String)> {
    let dir = repo_root().join("fixtures/fidelity").join(area);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = format!("{area}/{}", p.file_stem().unwrap().to_string_lossy());
            (p, name)
        })
        .collect()
}

fn run_area(area: &str) {
    let filter = std::env::var("KILN_FIDELITY").unwrap_or_default();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (path, name) in cases_in(area) {
        if !name.contains(&filter) {
            continue;
        }
        ran += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let result = parse_case(&text).and_then(|case| run_case(&case));
        if let Err(e) = result {
            failures.push(format!("--- {name} ({})\n{e}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} {area} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The areas, one test each; `every_case_belongs_to_an_area` keeps this
/// list and the directories in step.
const AREAS: &[&str] = &[
    "args", "copy", "add", "heredoc", "stages", "run", "mount", "metadata", "errors",
];

macro_rules! areas {
    ($($area:ident),*) => {
        $(#[test] fn $area() { run_area(stringify!($area)); })*
    };
}
areas!(args, copy, add, heredoc, stages, run, mount, metadata, errors);

#[test]
fn every_case_belongs_to_an_area() {
    let root = repo_root().join("fixtures/fidelity");
    let mut total = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let area = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                AREAS.contains(&area.as_str()),
                "{area} has no test in fidelity.rs"
            );
            total += cases_in(&area).len();
        }
    }
    for area in AREAS {
        assert!(
            root.join(area).is_dir(),
            "fixtures/fidelity/{area} is missing"
        );
    }
    // The issue that made this corpus asks for at least 150 cases.
    assert!(total >= 150, "only {total} fidelity cases");
}

/// A case may assert kiln's behaviour where it deliberately differs from
/// BuildKit (a `differs:` header line), at most five of them, each named
/// in ARCHITECTURE.md's list of deliberate differences.
#[test]
fn deliberate_differences_are_few_and_documented() {
    let architecture = std::fs::read_to_string(repo_root().join("ARCHITECTURE.md")).unwrap();
    let mut differing = Vec::new();
    for area in AREAS {
        for (path, name) in cases_in(area) {
            let text = std::fs::read_to_string(&path).unwrap();
            let header = text.split("\n-- ").next().unwrap_or_default();
            if header.lines().any(|l| l.starts_with("differs: ")) {
                differing.push(name);
            }
        }
    }
    let undocumented: Vec<&String> = differing
        .iter()
        .filter(|n| !architecture.contains(n.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "ARCHITECTURE.md does not name {undocumented:?}"
    );
    assert!(
        differing.len() <= 5,
        "{} deliberate differences: {differing:?}",
        differing.len()
    );
}

#[test]
fn script_words_split_like_a_shell() {
    assert_eq!(
        words(r#"a 'b c' "d \"e\"" f'g'"#).unwrap(),
        vec!["a", "b c", "d \"e\"", "fg"]
    );
    assert!(words("'open").is_err());
}
