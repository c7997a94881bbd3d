//! The `kiln` binary's parser commands, run as a user runs them. These live
//! in the crate that owns the binary: only there does Cargo build it before
//! the tests and point `CARGO_BIN_EXE_kiln` at it.

use kiln_tests::{case_dirs, shared, Kiln};
use std::fs;

fn harness() -> Kiln {
    Kiln::new(env!("CARGO_BIN_EXE_kiln"))
}

#[test]
fn dump_ast_matches_corpus_results() {
    let k = harness();
    let dirs = case_dirs(&shared().join("conformance/buildkit/parser/testfiles"));
    assert_eq!(dirs.len(), 33);
    for dir in dirs {
        let expected = fs::read(dir.join("result")).unwrap();
        let out = k
            .kiln()
            .args(["debug", "dump-ast"])
            .arg(dir.join("Dockerfile"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", dir.display());
        assert_eq!(out.stdout, expected, "{}", dir.display());
    }
}

#[test]
fn dump_ast_reads_stdin() {
    let k = harness();
    let out = k
        .kiln()
        .args(["debug", "dump-ast", "-"])
        .write_stdin("FROM busybox\nRUN echo hi\n")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "(from \"busybox\")\n(run \"echo hi\")\n"
    );
}

#[test]
fn parse_error_prints_file_line_col_and_the_line_then_exits_1() {
    let k = harness();
    let file = k.write("Dockerfile", "FROM busybox\nRUN echo ok\nCMD [\"a\", 1]\n");
    let out = k
        .kiln()
        .args(["debug", "dump-ast"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "{}:3:5: when using JSON array syntax, arrays must be comprised of strings only",
            file.display()
        )
    );
    assert!(err.contains(" 3 | CMD [\"a\", 1]"), "{err}");
    assert!(err.contains("   |     ^"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn dump_instructions_reports_unknown_instruction_with_suggestion() {
    let k = harness();
    let out = k
        .kiln()
        .args(["debug", "dump-instructions", "-"])
        .write_stdin("FROM busybox\nRUNN true\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("<stdin>:2:1: unknown instruction: RUNN\n"),
        "{err}"
    );
    assert!(err.contains("hint: did you mean RUN?"), "{err}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let k = harness();
    let out = k
        .kiln()
        .args(["debug", "dump-ast", "/nonexistent/Dockerfile"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read /nonexistent/Dockerfile"), "{err}");
}

#[test]
fn print_is_canonical_and_reparses() {
    let k = harness();
    let src = "from busybox\nRUN echo a \\\n  # comment\n  b\nCOPY --chown=\"a b\" x y\n";
    let out = k
        .kiln()
        .args(["debug", "print", "-"])
        .write_stdin(src)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from busybox\nRUN echo a   b\nCOPY --chown=a\\ b x y\n"
    );
}

#[test]
fn examples_validate() {
    let k = harness();
    // The README's first command runs dump-instructions on an example.
    // (examples/ci holds CI jobs, not a Dockerfile: ci_examples.rs runs them.)
    let dirs: Vec<_> = case_dirs(&kiln_tests::repo_root().join("examples"))
        .into_iter()
        .filter(|d| !d.ends_with("ci"))
        .collect();
    assert!(!dirs.is_empty());
    for dir in dirs {
        let out = k
            .kiln()
            .args(["debug", "dump-instructions"])
            .arg(dir.join("Dockerfile"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("From("));
    }
}

#[test]
fn closed_stdout_is_not_a_panic() {
    let k = harness();
    // `kiln debug dump-instructions big | head -1`: the reader leaves early.
    let mut src = String::from("FROM busybox\n");
    for i in 0..20_000 {
        src.push_str(&format!("RUN echo {i}\n"));
    }
    let dockerfile = k.write("Dockerfile", &src);
    let bin = k.bin();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' debug dump-instructions '{}' | head -c 10 >/dev/null",
            bin.display(),
            dockerfile.display()
        ))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn dump_graph_prints_what_the_lowering_goldens_hold() {
    let k = harness();
    // FROM scratch needs no image: the dump is the golden file, byte for byte.
    let case = kiln_tests::fixtures("lower/from-scratch-copy");
    let graph = k.ok(&["debug", "dump-graph", case.to_str().unwrap()]);
    assert_eq!(graph, fs::read_to_string(case.join("graph")).unwrap());
    // Build args and --target change the graph; --config gives the template.
    k.write_ctx(
        "Dockerfile",
        "FROM scratch AS a\nARG V=one\nCOPY $V /v\n\nFROM scratch\nCOPY --from=a /v /w\n",
    );
    let ctx = k.ctx();
    let ctx = ctx.to_str().unwrap();
    let default = k.ok(&["debug", "dump-graph", ctx]);
    assert!(default.contains("paths: [\"/v\"]"), "{default}");
    let a = k.ok(&["debug", "dump-graph", "--target", "a", ctx]);
    assert!(a.contains("include: [\"one\"]") && !a.contains("/w"), "{a}");
    let two = k.ok(&[
        "debug",
        "dump-graph",
        "--target",
        "a",
        "--build-arg",
        "V=two",
        ctx,
    ]);
    assert!(two.contains("include: [\"two\"]"), "{two}");
    let config: serde_json::Value =
        serde_json::from_str(&k.ok(&["debug", "dump-graph", "--config", ctx])).unwrap();
    assert_eq!(config["history"][0]["created_by"], "COPY /v /w # kiln");
    // A Dockerfile error is shown at its line, as kiln build shows it.
    let err = k.fails(&["debug", "dump-graph", "--target", "nope", ctx]);
    assert!(
        err.contains("Dockerfile:1:1: target stage \"nope\" could not be found"),
        "{err}"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_flags() {
    let k = harness();
    // bash: the script completes subcommands and flags.
    let script = k.ok(&["completion", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kiln.bash");
    fs::write(&file, &script).unwrap();
    let complete = |words: &str| {
        let line = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; _kiln kiln; echo \"${{COMPREPLY[@]}}\"",
            file.display()
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &line])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let subcommands = complete("kiln bu");
    assert!(
        subcommands.split_whitespace().any(|w| w == "build"),
        "{subcommands}"
    );
    let flags = complete("kiln build --prog");
    assert!(
        flags.split_whitespace().any(|w| w == "--progress"),
        "{flags}"
    );
    for shell in ["zsh", "fish"] {
        assert!(k.ok(&["completion", shell]).contains("build"));
    }
    // kiln(1) on stdout; a page per command into a directory.
    let page = k.ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH kiln 1"),
        "{page}"
    );
    let pages = dir.path().join("man");
    k.ok(&["man", pages.to_str().unwrap()]);
    let build = fs::read_to_string(pages.join("kiln-build.1")).unwrap();
    assert!(
        build.contains("\\-\\-progress") || build.contains("--progress"),
        "{build}"
    );
    assert!(pages.join("kiln-system-df.1").is_file());
    // Not a shell kiln knows: the flag is named.
    let out = k.kiln().args(["completion", "tcsh"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tcsh"));
}
