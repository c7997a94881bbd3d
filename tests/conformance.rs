//! BuildKit's parser and shell-lexer conformance corpus, read from
//! `../shared/conformance/buildkit` at test time (see its NOTICE.md for the
//! format of each file).

use kiln_parser::shell::Lexer;
use kiln_tests::{case_dirs, shared};
use std::fs;

fn corpus() -> std::path::PathBuf {
    shared().join("conformance/buildkit")
}

#[test]
fn positive_cases_match_result_byte_for_byte() {
    let dirs = case_dirs(&corpus().join("parser/testfiles"));
    assert_eq!(dirs.len(), 33, "the corpus has 33 positive cases");
    let mut failures = Vec::new();
    for dir in &dirs {
        let src = fs::read(dir.join("Dockerfile")).unwrap();
        let expected = fs::read_to_string(dir.join("result")).unwrap();
        match kiln_parser::parse_bytes(&src) {
            Ok(df) => {
                let got = kiln_parser::dump::dump(&df);
                if got != expected {
                    failures.push(format!(
                        "{}:\n--- expected\n{expected}--- got\n{got}",
                        dir.display()
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: unexpected error {e}", dir.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn negative_cases_fail() {
    let dirs = case_dirs(&corpus().join("parser/testfiles-negative"));
    assert_eq!(dirs.len(), 4, "the corpus has 4 negative cases");
    for dir in dirs {
        let src = fs::read(dir.join("Dockerfile")).unwrap();
        assert!(
            kiln_parser::parse_bytes(&src).is_err(),
            "{} parsed but must fail",
            dir.display()
        );
    }
}

#[test]
fn line_numbers() {
    let src = fs::read(corpus().join("parser/testfile-line/Dockerfile")).unwrap();
    let df = kiln_parser::parse_bytes(&src).unwrap();
    let lines: Vec<(u32, u32)> = df
        .instructions
        .iter()
        .map(|n| (n.span.start.line, n.span.end.line))
        .collect();
    assert_eq!(lines, [(5, 5), (11, 12), (17, 31)]);
}

/// The environment every envVarTest line runs in.
fn envvar_env() -> Vec<(String, String)> {
    [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn env_var_table() {
    let text = fs::read_to_string(corpus().join("shell/envVarTest")).unwrap();
    let lexer = Lexer::new('\\');
    let env = envvar_env();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(fields.len(), 3, "line {}: {line}", n + 1);
        let (tag, input, expected) = (fields[0], fields[1], fields[2]);
        if tag == "W" {
            continue; // Windows-only expectation
        }
        checked += 1;
        let got = lexer.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(v), e) => v == e,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: {input:?} → {got:?}, expected {expected:?}",
                n + 1
            ));
        }
    }
    assert!(checked > 200, "only {checked} lines checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn words_table() {
    let text = fs::read_to_string(corpus().join("shell/wordsTest")).unwrap();
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(def) = line.strip_prefix("ENV ") {
            let (k, v) = def.trim_start().split_once('=').expect("ENV name=value");
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let (input, expected) = line.split_once('|').expect("INPUT | EXPECTED");
        let input = input.trim();
        let expected: Vec<&str> = expected.trim_start().split(',').collect();
        checked += 1;
        let got = lexer.process_words(input, &env);
        let ok = match &got {
            Err(_) => expected == ["error"],
            Ok(words) => *words == expected,
        };
        if !ok {
            failures.push(format!(
                "line {}: {input:?} → {got:?}, expected {expected:?}",
                n + 1
            ));
        }
    }
    assert!(checked >= 20, "only {checked} lines checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
