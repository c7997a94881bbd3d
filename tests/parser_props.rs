//! Property tests for the parser: no input makes it panic, and printing a
//! parsed file then parsing the output gives the same tree.

use kiln_parser::{parse, print::print, Dockerfile, Node};
use proptest::prelude::*;

fn shape(df: &Dockerfile) -> Vec<Node> {
    df.instructions
        .iter()
        .map(Node::without_positions)
        .collect()
}

/// Characters that drive the parser's interesting paths.
const ALPHABET: &[char] = &[
    'a', 'b', 'R', 'U', 'N', 'F', 'O', 'M', ' ', ' ', '\t', '\n', '\n', '\r', '\\', '`', '"', '\'',
    '$', '{', '}', '[', ']', ',', '<', '-', '#', '=', ':', '%', '/', '?', '*', '0', '3', 'é',
    '\u{feff}', '\u{b}', '\u{a0}',
];

fn dockerfileish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ALPHABET), 0..400)
        .prop_map(|v| v.into_iter().collect())
}

/// Strings made of instruction-shaped lines, so most of them parse.
fn instruction_lines() -> impl Strategy<Value = String> {
    let keyword = prop::sample::select(vec![
        "FROM",
        "from",
        "RUN",
        "Run",
        "CMD",
        "ENTRYPOINT",
        "SHELL",
        "COPY",
        "ADD",
        "ENV",
        "LABEL",
        "ARG",
        "EXPOSE",
        "VOLUME",
        "USER",
        "WORKDIR",
        "STOPSIGNAL",
        "MAINTAINER",
        "HEALTHCHECK",
        "ONBUILD RUN",
        "ONBUILD COPY",
        "NOPE",
    ]);
    let flag = prop::sample::select(vec![
        "--from=build",
        "--chown=1:1",
        "--mount=type=cache,target=/x",
        "--link",
        "--a=\"q w\"",
        "--b='x'",
        "--e=\\ space",
        "--",
    ]);
    let word = prop::sample::select(vec![
        "a",
        "b=c",
        "k=\"v w\"",
        "'s q'",
        "$X",
        "${Y:-z}",
        "[\"x\",",
        "\"y\"]",
        "[\"j\"]",
        "<<EOF",
        "<<-T",
        "3<<'Q'",
        "\\$",
        "--x",
        "#c",
        "é",
        "[]",
        "[1]",
        "&&",
        "\\\\",
    ]);
    let sep = prop::sample::select(vec![
        " ",
        "  ",
        "\t",
        " \\\n  ",
        " \\\n# comment\n ",
        " \\\n\n ",
    ]);
    let line = (
        keyword,
        prop::collection::vec(flag, 0..3),
        prop::collection::vec((sep, word), 0..6),
    )
        .prop_map(|(k, flags, words)| {
            let mut s = k.to_string();
            for f in flags {
                s.push(' ');
                s.push_str(f);
            }
            for (sep, w) in words {
                s.push_str(sep);
                s.push_str(w);
            }
            // Close any heredocs the words opened so most files parse.
            s.push_str("\nbody line\n\tEOF\nEOF\nT\nQ\n");
            s
        });
    (
        prop::sample::select(vec![
            "",
            "# escape=`\n",
            "# syntax=x\n# check=error=true\n",
            "\u{feff}",
        ]),
        prop::collection::vec(line, 1..8),
    )
        .prop_map(|(head, lines)| format!("{head}{}", lines.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        kiln_parser::fuzz_one(&data);
    }

    #[test]
    fn dockerfile_like_text_never_panics(text in dockerfileish()) {
        kiln_parser::fuzz_one(text.as_bytes());
    }

    #[test]
    fn print_then_parse_is_identity(text in prop_oneof![instruction_lines(), dockerfileish()]) {
        if let Ok(df) = parse(&text) {
            let printed = print(&df);
            let again = parse(&printed).map_err(|e| {
                TestCaseError::fail(format!("printed form fails to parse: {e}\n--- input\n{text}\n--- printed\n{printed}"))
            })?;
            prop_assert_eq!(shape(&again), shape(&df), "input:\n{}\nprinted:\n{}", text, printed);
            prop_assert_eq!(again.escape, df.escape);
            prop_assert_eq!(again.directives.len(), df.directives.len());
        }
    }
}

#[test]
fn generator_mostly_parses() {
    // Guards the round-trip property against vacuity: the structured
    // generator must produce files that parse.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = instruction_lines();
    let parsed = (0..200)
        .filter(|_| parse(&strategy.new_tree(&mut runner).unwrap().current()).is_ok())
        .count();
    assert!(parsed > 120, "only {parsed}/200 generated files parsed");
}
