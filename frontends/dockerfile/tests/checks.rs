//! Each build check: a Dockerfile that triggers it (rule, line, message as
//! BuildKit's frontend tests expect them, `dockerfile_check_test.go`) and
//! one that does not.

use kiln_frontend_dockerfile::checks::{check, CheckConfig, CheckInputs, CheckWarning};
use kiln_frontend_dockerfile::dockerignore::Ignore;
use std::collections::BTreeMap;

fn run_with(text: &str, args: &[(&str, &str)], ignore: Option<&Ignore>) -> Vec<CheckWarning> {
    let df = kiln_parser::parse(text).unwrap();
    let build_args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = CheckConfig::of(
        &df,
        build_args
            .get("BUILDKIT_DOCKERFILE_CHECK")
            .map(String::as_str),
    )
    .unwrap();
    // Every base image is known, with an empty environment.
    let base_env = |_: &str| Some(Vec::new());
    check(
        &df,
        &config,
        &CheckInputs {
            build_args: &build_args,
            ignore,
            base_env: &base_env,
        },
    )
}

fn run(text: &str) -> Vec<(String, u32, String)> {
    run_with(text, &[], None)
        .into_iter()
        .map(|w| (w.rule.name.to_string(), w.line, w.message))
        .collect()
}

fn fires(text: &str, rule: &str, line: u32, message: &str) {
    let got = run(text);
    assert!(
        got.iter()
            .any(|(r, l, m)| r == rule && *l == line && m == message),
        "{rule} at {line}: {message:?} not in {got:?}\nfor:\n{text}"
    );
}

fn quiet(text: &str, rule: &str) {
    let got = run(text);
    assert!(
        !got.iter().any(|(r, _, _)| r == rule),
        "{rule} fired: {got:?}\nfor:\n{text}"
    );
}

#[test]
fn stage_and_keyword_casing() {
    fires(
        "\n#\n#\nFROM scratch AS BadStageName\n",
        "StageNameCasing",
        4,
        "Stage name 'BadStageName' should be lowercase",
    );
    quiet("FROM scratch AS base3\n", "StageNameCasing");
    fires(
        "FROM scratch as base2\n",
        "FromAsCasing",
        1,
        "'as' and 'FROM' keywords' casing do not match",
    );
    fires(
        "from scratch AS base\n",
        "FromAsCasing",
        1,
        "'AS' and 'from' keywords' casing do not match",
    );
    quiet("from scratch as base2\n", "FromAsCasing");
    quiet("From scratch as base\nFROM scratch AS b2\n", "FromAsCasing");
    fires(
        "\n\n\nFrom scratch as base\nFROM scratch AS base2\n",
        "ConsistentInstructionCasing",
        4,
        "Command 'From' should match the case of the command majority (uppercase)",
    );
    fires(
        "FROM scratch\ncopy a /foo\nCOPY a /bar\n",
        "ConsistentInstructionCasing",
        2,
        "Command 'copy' should match the case of the command majority (uppercase)",
    );
    fires(
        "from scratch\nFROM scratch\nfrom scratch\n",
        "ConsistentInstructionCasing",
        2,
        "Command 'FROM' should match the case of the command majority (lowercase)",
    );
    // A tie is upper case.
    fires(
        "FROM scratch as base\ncopy a .\n",
        "ConsistentInstructionCasing",
        2,
        "Command 'copy' should match the case of the command majority (uppercase)",
    );
    quiet("from scratch\ncopy a .\n", "ConsistentInstructionCasing");
    // Meta ARGs are not counted.
    quiet(
        "arg X=1\nFROM scratch\nCOPY a .\n",
        "ConsistentInstructionCasing",
    );
}

#[test]
fn stage_names() {
    fires(
        "FROM scratch AS a\nFROM scratch AS A\n",
        "DuplicateStageName",
        2,
        "Duplicate stage name \"a\", stage names should be unique",
    );
    quiet(
        "FROM scratch AS a\nFROM scratch AS b\n",
        "DuplicateStageName",
    );
    fires(
        "FROM busybox AS scratch\n",
        "ReservedStageName",
        1,
        "Stage name should not use the same name as reserved stage \"scratch\"",
    );
    fires(
        "FROM busybox AS context\n",
        "ReservedStageName",
        1,
        "Stage name should not use the same name as reserved stage \"context\"",
    );
    quiet("FROM busybox AS ctx\n", "ReservedStageName");
}

#[test]
fn command_forms() {
    fires(
        "\nFROM scratch\nCMD mycommand\n",
        "JSONArgsRecommended",
        3,
        "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals",
    );
    fires("\nFROM scratch\nENTRYPOINT mycommand\n", "JSONArgsRecommended", 3, "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals");
    quiet(
        "FROM scratch\nSHELL [\"/usr/bin/customshell\"]\nCMD mycommand\n",
        "JSONArgsRecommended",
    );
    quiet(
        "FROM scratch AS base\nSHELL [\"/x\"]\nFROM base\nCMD mycommand\n",
        "JSONArgsRecommended",
    );
    quiet("FROM scratch\nCMD [\"mycommand\"]\n", "JSONArgsRecommended");
    let multi = "\nFROM scratch\nENTRYPOINT [\"/myapp\"]\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myapp\"]\nCMD [\"/myotherapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myotherapp\"]\n";
    fires(multi, "MultipleInstructionsDisallowed", 3, "Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used");
    fires(multi, "MultipleInstructionsDisallowed", 5, "Multiple CMD instructions should not be used in the same stage because only the last one will be used");
    fires(multi, "MultipleInstructionsDisallowed", 7, "Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used");
    quiet(
        "FROM scratch AS a\nCMD [\"a\"]\nFROM a AS b\nCMD [\"b\"]\n",
        "MultipleInstructionsDisallowed",
    );
    fires(
        "\nFROM scratch\nMAINTAINER me\n",
        "MaintainerDeprecated",
        3,
        "Maintainer instruction is deprecated in favor of using label",
    );
    quiet(
        "FROM scratch\nLABEL org.opencontainers.image.authors=me\n",
        "MaintainerDeprecated",
    );
    fires(
        "\nFROM scratch\nENV testkey value\nLABEL key value\n",
        "LegacyKeyValueFormat",
        3,
        "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format",
    );
    fires(
        "\nFROM scratch\nENV testkey value\nLABEL key value\n",
        "LegacyKeyValueFormat",
        4,
        "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format",
    );
    quiet(
        "FROM scratch\nENV testkey=value\nLABEL key=value\n",
        "LegacyKeyValueFormat",
    );
    fires(
        "\nFROM scratch\nWORKDIR app\n",
        "WorkdirRelativePath",
        3,
        "Relative workdir \"app\" can have unexpected results if the base image changes",
    );
    quiet(
        "FROM scratch\nWORKDIR /app\nWORKDIR sub\n",
        "WorkdirRelativePath",
    );
    quiet(
        "FROM scratch AS a\nWORKDIR /app\nFROM a\nWORKDIR sub\n",
        "WorkdirRelativePath",
    );
}

#[test]
fn variables() {
    fires(
        "\nFROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n",
        "UndefinedVar",
        3,
        "Usage of undefined variable '$foo'",
    );
    quiet(
        "FROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n",
        "UndefinedVar",
    );
    quiet(
        "FROM alpine AS base\nARG foo=Dockerfile\nFROM base\nCOPY $foo .\n",
        "UndefinedVar",
    );
    quiet("FROM alpine\nRUN echo $PATH $UNSET\n", "UndefinedVar");
    fires("FROM alpine\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\nARG DIR_CONFIG=config/\nCOPY $DIR_ASSET .\n", "UndefinedVar", 5, "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)");
    fires(
        "\nFROM alpine\nENV PATH=$PAHT:/tmp/bin\n",
        "UndefinedVar",
        3,
        "Usage of undefined variable '$PAHT' (did you mean $PATH?)",
    );
    fires(
        "\nFROM alpine:$VERSION\n",
        "UndefinedArgInFrom",
        2,
        "FROM argument 'VERSION' is not declared",
    );
    fires(
        "ARG VERSION=1\nFROM alpine:$VERSIN\n",
        "UndefinedArgInFrom",
        2,
        "FROM argument 'VERSIN' is not declared (did you mean VERSION?)",
    );
    quiet(
        "ARG VERSION=1\nFROM alpine:$VERSION\n",
        "UndefinedArgInFrom",
    );
    quiet(
        "FROM --platform=$BUILDPLATFORM alpine\n",
        "UndefinedArgInFrom",
    );
    fires(
        "ARG VERSION\nFROM busybox:$VERSION\n",
        "InvalidDefaultArgInFrom",
        2,
        "Default value for ARG busybox:$VERSION results in empty or invalid base image name",
    );
    fires(
        "ARG IMAGE\nFROM $IMAGE\n",
        "InvalidDefaultArgInFrom",
        2,
        "Default value for ARG $IMAGE results in empty or invalid base image name",
    );
    quiet(
        "ARG VERSION=latest\nFROM busybox:$VERSION\n",
        "InvalidDefaultArgInFrom",
    );
    // A --build-arg gives it a value.
    let with_arg = run_with("ARG IMAGE\nFROM $IMAGE\n", &[("IMAGE", "busybox")], None);
    assert!(
        with_arg
            .iter()
            .all(|w| w.rule.name != "InvalidDefaultArgInFrom"),
        "{with_arg:?}"
    );
}

#[test]
fn platforms_secrets_and_expose() {
    fires("\nFROM --platform=$TARGETPLATFORM scratch\n", "RedundantTargetPlatform", 2, "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior");
    fires("\nFROM --platform=${TARGETPLATFORM} scratch\n", "RedundantTargetPlatform", 2, "Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior");
    quiet(
        "FROM --platform=$BUILDPLATFORM scratch\n",
        "RedundantTargetPlatform",
    );
    fires(
        "FROM --platform=linux/amd64 scratch\n",
        "FromPlatformFlagConstDisallowed",
        1,
        "FROM --platform flag should not use constant value \"linux/amd64\"",
    );
    quiet(
        "FROM --platform=$BUILDPLATFORM scratch\n",
        "FromPlatformFlagConstDisallowed",
    );
    let secrets = "FROM scratch\nARG SECRET_PASSPHRASE\nENV SUPER_Secret=foo\nENV password=bar secret=baz\nARG super_duper_secret_token=foo auth=bar\nENV apikey=bar sunflower=foo\nENV git_key=\nENV PUBLIC_KEY=\nARG public_token\nARG SECRET_PASSPHRASE_FILE\nENV password_file=bar secret_File=baz\nARG AUTH_MODULE_VERSION\n";
    let got: Vec<String> = run(secrets)
        .into_iter()
        .filter(|(r, _, _)| r == "SecretsUsedInArgOrEnv")
        .map(|(_, _, m)| m)
        .collect();
    assert_eq!(got.len(), 8, "{got:#?}");
    assert!(got.contains(
        &"Do not use ARG or ENV instructions for sensitive data (ARG \"SECRET_PASSPHRASE\")"
            .to_string()
    ));
    assert!(got.contains(
        &"Do not use ARG or ENV instructions for sensitive data (ENV \"git_key\")".to_string()
    ));
    fires(
        "FROM scratch\nEXPOSE 80/TcP\n",
        "ExposeProtoCasing",
        2,
        "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase",
    );
    quiet(
        "FROM scratch\nEXPOSE 80/tcp 53/udp 8080\n",
        "ExposeProtoCasing",
    );
    fires("FROM scratch\nEXPOSE 127.0.0.1:80:80\n", "ExposeInvalidFormat", 2, "EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'");
    fires(
        "FROM scratch\nEXPOSE 8080:80\n",
        "ExposeInvalidFormat",
        2,
        "EXPOSE instruction should not define an IP address or host-port mapping, found '8080:80'",
    );
    quiet("FROM scratch\nEXPOSE 80\n", "ExposeInvalidFormat");
}

#[test]
fn continuation_and_ignored_files() {
    fires("\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n", "NoEmptyContinuation", 6, "Empty continuation line");
    assert_eq!(
        run("\nFROM scratch\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n")
            .iter()
            .filter(|(r, _, _)| r == "NoEmptyContinuation")
            .count(),
        1
    );
    let ignore = Ignore::parse("secret.txt\nlogs/\n").unwrap();
    let got = run_with("FROM scratch\nCOPY ./secret.txt logs/a /\nCOPY keep.txt /\nCOPY --from=other secret.txt /\n", &[], Some(&ignore));
    let msgs: Vec<&str> = got
        .iter()
        .filter(|w| w.rule.name == "CopyIgnoredFile")
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(
        msgs,
        [
            "Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore",
            "Attempting to Copy file \"logs/a\" that is excluded by .dockerignore"
        ]
    );
}

#[test]
fn the_check_directive_and_build_arg_configure_them() {
    let text = "# check=skip=JSONArgsRecommended,MaintainerDeprecated\nFROM scratch\nMAINTAINER me\nCMD x\nWORKDIR a\n";
    let got = run(text);
    assert_eq!(
        got.iter().map(|(r, _, _)| r.as_str()).collect::<Vec<_>>(),
        ["WorkdirRelativePath"]
    );
    assert!(run("# check=skip=all\nFROM scratch\nCMD x\n").is_empty());
    // The build arg replaces the directive whole.
    let got = run_with(
        text,
        &[("BUILDKIT_DOCKERFILE_CHECK", "skip=WorkdirRelativePath")],
        None,
    );
    let rules: Vec<&str> = got.iter().map(|w| w.rule.name).collect();
    assert_eq!(rules, ["MaintainerDeprecated", "JSONArgsRecommended"]);
    let df = kiln_parser::parse("# check=error=true\nFROM scratch\n").unwrap();
    assert!(CheckConfig::of(&df, None).unwrap().error);
    assert!(CheckConfig::parse("skip=A;bogus=1")
        .unwrap_err()
        .contains("bogus"));
    assert!(CheckConfig::parse("error=maybe").is_err());
}

#[test]
fn definition_descriptions_are_experimental_and_name_what_they_describe() {
    // BuildKit's testDefinitionDescription: descriptions that start with
    // the stage's name or one of the ARG's keys, an empty `#` resetting
    // the comments, a comment above anything else: all quiet.
    let good = "# check=skip=all;experimental=InvalidDefinitionDescription\n# foo this is the foo\nARG foo=bar\n\n# base this is the base image\nFROM scratch AS base\n\n# version this is the version number\nARG version=latest\n\n# baz this is the baz\nARG foo=baz bar=qux baz=quux\n#\nARG bit=bat\n\n# comment for something other than ARG or FROM\nCOPY Dockerfile .\n";
    assert!(run(good).is_empty(), "{:?}", run(good));
    let bad = "# check=experimental=InvalidDefinitionDescription\n# bar this is the bar\nARG foo=bar\n# BasE this is the BasE image\nFROM scratch AS base\n# definitely a bad comment\nARG version=latest\n# definitely a bad comment\nARG foo=baz bar=qux baz=quux\n";
    let got: Vec<(u32, String)> = run(bad)
        .into_iter()
        .filter(|(r, _, _)| r == "InvalidDefinitionDescription")
        .map(|(_, l, m)| (l, m))
        .collect();
    let expected = [
        (
            3,
            "Comment for ARG should follow the format: `# foo <description>`",
        ),
        (
            5,
            "Comment for FROM should follow the format: `# base <description>`",
        ),
        (
            7,
            "Comment for ARG should follow the format: `# version <description>`",
        ),
        (
            9,
            "Comment for ARG should follow the format: `# <arg_key> <description>`",
        ),
    ];
    assert_eq!(
        got,
        expected
            .iter()
            .map(|(l, m)| (*l, m.to_string()))
            .collect::<Vec<_>>()
    );
    // Experimental: off unless named, and `skip=` alone does not turn it on.
    quiet(
        "# bar this is the bar\nFROM scratch\nARG foo=bar\n",
        "InvalidDefinitionDescription",
    );
    let all = "# check=experimental=all\nFROM scratch\n# nope\nARG foo=bar\n";
    fires(
        all,
        "InvalidDefinitionDescription",
        4,
        "Comment for ARG should follow the format: `# foo <description>`",
    );
}

#[test]
fn a_check_comment_configures_its_instruction_alone() {
    // BuildKit's testSecretsUsedInArgOrEnv tail: `# check=` right above an
    // instruction skips for it only; the text after a space is a remark.
    let text = "FROM scratch\n# check=skip=SecretsUsedInArgOrEnv // allow secret in environment\nENV password=bar\n# check=skip=all // is local to only this instruction\nARG alternate_password\n# an unrelated comment\n# check=skip=SecretsUsedInArgOrEnv\nARG token\nARG secret_key\n";
    let got: Vec<(u32, String)> = run(text)
        .into_iter()
        .filter(|(r, _, _)| r == "SecretsUsedInArgOrEnv")
        .map(|(_, l, m)| (l, m))
        .collect();
    assert_eq!(
        got,
        [(
            9,
            "Do not use ARG or ENV instructions for sensitive data (ARG \"secret_key\")"
                .to_string()
        )]
    );
    // The file's directive is not an instruction's comment.
    let df = kiln_parser::parse("# check=skip=all\nFROM scratch\n").unwrap();
    assert!(df.instructions[0].comments.is_empty());
}
