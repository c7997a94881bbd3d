//! Golden tests, one folder per case:
//!
//! - `fixtures/parser/<case>/Dockerfile` → `ast` (BuildKit dump),
//!   `instructions` (typed instructions) or `error` (rendered error), and
//!   `warnings` when the parser warns, `directives` when it has any;
//! - `fixtures/shell/<case>/cases`: `ENV name=value` lines set variables,
//!   `INPUT => EXPECTED` lines expand one word (`error` = must fail).
//!
//! `KILN_BLESS=1 cargo test --test golden` rewrites the expected files.

use kiln_parser::{dump, instructions, parse_bytes, print, shell::Lexer};
use kiln_tests::{case_dirs, check_golden, fixtures};
use std::fs;

#[test]
fn parser_cases() {
    let dirs = case_dirs(&fixtures("parser"));
    assert!(
        dirs.len() >= 30,
        "expected the parser fixtures, found {}",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let bytes = fs::read(dir.join("Dockerfile")).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let (mut ast, mut typed, mut error, mut warnings, mut directives) =
            (None, None, None, None, None);
        match parse_bytes(&bytes) {
            Err(e) => error = Some(e.render("Dockerfile", &text)),
            Ok(df) => {
                ast = Some(dump::dump(&df));
                if !df.directives.is_empty() {
                    directives = Some(
                        df.directives
                            .iter()
                            .map(|d| format!("{}: {}={}\n", d.line, d.name, d.value))
                            .collect::<String>(),
                    );
                }
                if !df.warnings.is_empty() {
                    warnings = Some(
                        df.warnings
                            .iter()
                            .map(|w| format!("{w}\n"))
                            .collect::<String>(),
                    );
                }
                match instructions::parse_instructions(&df) {
                    Ok(list) => {
                        typed = Some(
                            list.iter()
                                .map(|i| format!("{}: {:#?}\n", i.span.start.line, i.inner))
                                .collect::<String>(),
                        )
                    }
                    Err(e) => error = Some(e.render("Dockerfile", &text)),
                }
                // Printing then re-parsing gives the same tree.
                let printed = print::print(&df);
                let again = kiln_parser::parse(&printed).unwrap_or_else(|e| {
                    panic!(
                        "{}: printed form does not parse: {e}\n{printed}",
                        dir.display()
                    )
                });
                assert_eq!(
                    dump::dump(&again),
                    dump::dump(&df),
                    "{}: round trip changed the tree",
                    dir.display()
                );
                let heredocs = |d: &kiln_parser::Dockerfile| {
                    d.instructions
                        .iter()
                        .map(|n| n.heredocs.clone())
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    heredocs(&again),
                    heredocs(&df),
                    "{}: heredocs changed",
                    dir.display()
                );
            }
        }
        check_golden(dir, "ast", ast.as_deref(), &mut failures);
        check_golden(dir, "instructions", typed.as_deref(), &mut failures);
        check_golden(dir, "error", error.as_deref(), &mut failures);
        check_golden(dir, "warnings", warnings.as_deref(), &mut failures);
        check_golden(dir, "directives", directives.as_deref(), &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn shell_cases() {
    let dirs = case_dirs(&fixtures("shell"));
    assert!(dirs.len() >= 4);
    let lexer = Lexer::new('\\');
    let mut failures = Vec::new();
    let mut checked = 0;
    for dir in &dirs {
        let text = fs::read_to_string(dir.join("cases")).unwrap();
        let mut env: Vec<(String, String)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if let Some(def) = line.strip_prefix("ENV ") {
                let (k, v) = def.split_once('=').expect("ENV name=value");
                env.push((k.into(), v.into()));
                continue;
            }
            let Some((input, expected)) = line.split_once(" => ") else {
                assert!(
                    line.trim().is_empty(),
                    "{}:{}: bad line",
                    dir.display(),
                    n + 1
                );
                continue;
            };
            let expected = expected.strip_suffix(' ').unwrap_or(expected);
            checked += 1;
            let got = lexer.process_word(input, &env);
            let ok = match &got {
                Ok(v) => v == expected,
                Err(_) => expected == "error",
            };
            if !ok {
                failures.push(format!(
                    "{}:{}: {input} → {got:?}, expected {expected:?}",
                    dir.display(),
                    n + 1
                ));
            }
        }
    }
    assert!(checked >= 30, "only {checked} shell cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
