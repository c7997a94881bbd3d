//! Unit tests of lowering that need more than a golden file: what was
//! asked of the image source, and errors' kinds.

use super::*;

struct NoImages;

impl ImageSource for NoImages {
    fn resolve(
        &self,
        reference: &str,
        _platform: &crate::plan::Platform,
    ) -> Result<ResolvedImage, ImageError> {
        Err(ImageError(format!("{reference}: not here")))
    }
}

fn config_env(src: &str) -> Vec<String> {
    let df = kiln_parser::parse(src).unwrap();
    let opts = Options {
        network: kiln_solver::Network::Default,
        ..Default::default()
    };
    let lowered = lower(&df, &opts, &NoImages).unwrap();
    lowered.config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// BuildKit: every pair of one ENV sees the values from before it, and
/// a key set again keeps its place (an inherited PATH stays first).
#[test]
fn env_pairs_see_the_old_values_and_keys_keep_their_place() {
    let env =
        config_env("FROM scratch\nENV A=first B=x\nENV A=changed H=$A\nENV PATH=/bin:$PATH\n");
    assert_eq!(
        env,
        [
            format!("PATH=/bin:{DEFAULT_PATH}"),
            "A=changed".into(),
            "B=x".into(),
            "H=first".into()
        ]
    );
}

#[test]
fn run_host_network_needs_the_entitlement() {
    let df = kiln_parser::parse("FROM scratch\nRUN --network=host true\n").unwrap();
    let mut opts = Options {
        network: kiln_solver::Network::None,
        ..Default::default()
    };
    let e = lower(&df, &opts, &NoImages).unwrap_err();
    assert!(e.message().contains("network.host is not allowed"), "{e:?}");
    assert_eq!(e.pos.line, 2);
    opts.allow_host_network = true;
    let lowered = lower(&df, &opts, &NoImages).unwrap();
    let net = lowered
        .definition
        .vertices()
        .find_map(|(_, v)| match &v.op {
            kiln_solver::Op::Exec(x) => Some(x.network),
            _ => None,
        })
        .unwrap();
    assert_eq!(net, kiln_solver::Network::Host);
    // The invoker's none is the default for RUN steps.
    let df = kiln_parser::parse("FROM scratch\nRUN --network=default true\n").unwrap();
    opts.allow_host_network = false;
    let lowered = lower(&df, &opts, &NoImages).unwrap();
    assert!(lowered
        .definition
        .vertices()
        .any(|(_, v)| matches!(&v.op, kiln_solver::Op::Exec(x) if x.network == kiln_solver::Network::None)));
}

/// An image source that knows every name and records what was asked.
#[derive(Default)]
struct AnyImage(std::sync::Mutex<Vec<String>>);

impl ImageSource for AnyImage {
    fn resolve(
        &self,
        reference: &str,
        _platform: &crate::plan::Platform,
    ) -> Result<ResolvedImage, ImageError> {
        self.0.lock().unwrap().push(reference.to_string());
        Ok(ResolvedImage {
            reference: reference.to_string(),
            manifest_digest: format!("sha256:{:064}", 0),
            config: json!({"config": {"Env": ["PATH=/bin"]}}),
        })
    }
}

fn lowered(src: &str, target: Option<&str>) -> Result<(Lowered, Vec<String>), LowerError> {
    let df = kiln_parser::parse(src).unwrap();
    let opts = Options {
        network: kiln_solver::Network::Default,
        target: target.map(str::to_string),
        ..Default::default()
    };
    let images = AnyImage::default();
    let l = lower(&df, &opts, &images)?;
    Ok((l, images.0.into_inner().unwrap()))
}

/// Only the stages the target reads are lowered (moved here from the
/// planner, which no longer finds dependencies itself).
#[test]
fn only_what_the_target_reads_is_lowered() {
    let src = "ARG BASE=busybox\nFROM ${BASE} AS build\nRUN make\nFROM build AS test\nRUN test\nFROM scratch AS unused\nFROM alpine\nCOPY --from=build /out /out\nCOPY --from=0 /x /x\nCOPY --from=nginx:latest /etc/nginx /etc/nginx\n";
    let (l, images) = lowered(src, None).unwrap();
    assert_eq!(l.stages, [0, 3], "test and unused are never built");
    assert!(images.contains(&"nginx:latest".to_string()), "{images:?}");
    let (l, _) = lowered(src, Some("TEST")).unwrap();
    assert_eq!(l.stages, [0, 1]);
    let e = lowered("FROM a\nCOPY --from=1 /x /y\n", None).unwrap_err();
    assert_eq!(e.message(), "invalid stage index 1");
}

/// Regression (issue 13): RUN --mount's keys are case-insensitive; a
/// variable in from= is refused as BuildKit refuses it (issue 14), not
/// silently resolved to something else.
#[test]
fn mount_from_is_found_however_it_is_written() {
    let src = "FROM busybox AS build\nRUN make\nFROM busybox AS unused\nFROM busybox\nARG S=build\nRUN --mount=type=bind,FROM=build,source=/out,target=/in cat /in/x\n";
    let (l, _) = lowered(src, None).unwrap();
    assert_eq!(l.stages, [0, 2]);
    let e = lowered(&src.replace("FROM=build", "from=$S"), None).unwrap_err();
    assert!(
        e.message()
            .contains("'from' doesn't support variable expansion, define alias stage instead"),
        "{e:?}"
    );
}

#[test]
fn the_escape_directive_applies_to_from_lines() {
    // With ` as the escape, a backslash is a plain character.
    let (_, images) = lowered("# escape=`\nARG V=1\nFROM img\\$V\n", None).unwrap();
    assert_eq!(images, ["img\\1"]);
    let (_, images) = lowered("ARG V=1\nFROM img\\$V\n", None).unwrap();
    assert_eq!(images, ["img$V"]);
}

fn with_contexts(
    src: &str,
    contexts: &[(&str, NamedContext)],
) -> Result<(Lowered, Vec<String>), LowerError> {
    let df = kiln_parser::parse(src).unwrap();
    let opts = Options {
        network: kiln_solver::Network::Default,
        named_contexts: contexts
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Default::default()
    };
    let images = AnyImage::default();
    let l = lower(&df, &opts, &images)?;
    Ok((l, images.0.into_inner().unwrap()))
}

fn sources(l: &Lowered) -> Vec<kiln_solver::Source> {
    l.definition
        .vertices()
        .filter_map(|(_, v)| match &v.op {
            kiln_solver::Op::Source(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// BuildKit's dockerui: a named context for a base image's name replaces
/// the image (the stage's steps run on it); one for a stage's name
/// replaces the stage (its steps never run); COPY --from finds either.
#[test]
fn named_contexts_answer_images_and_stages() {
    let src = "FROM docker.io/library/busybox:latest AS base\nRUN cat /etc/alpine-release > /out\nFROM scratch\nCOPY --from=base /out /\n";
    let (l, asked) =
        with_contexts(src, &[("busybox", NamedContext::Image("alpine".into()))]).unwrap();
    assert_eq!(
        asked,
        ["alpine"],
        "the registry is asked for the context's image only"
    );
    assert!(l
        .definition
        .vertices()
        .any(|(_, v)| matches!(v.op, kiln_solver::Op::Exec(_))));

    let local = NamedContext::Local {
        ignore: vec!["out2".into()],
    };
    let (l, asked) = with_contexts(src, &[("base", local.clone())]).unwrap();
    assert!(
        asked.is_empty(),
        "the overridden stage's base is never resolved: {asked:?}"
    );
    assert!(
        !l.definition
            .vertices()
            .any(|(_, v)| matches!(v.op, kiln_solver::Op::Exec(_))),
        "the overridden stage's RUN is not in the graph"
    );
    assert!(sources(&l).contains(&kiln_solver::Source::Context {
        name: source_name("base"),
        include: vec![String::new()],
        exclude: vec!["out2".into()],
    }));

    // COPY --from and RUN --mount=from name a context that is no stage.
    let src = "FROM scratch\nCOPY --from=extra /a /a\n";
    let (l, asked) = with_contexts(src, &[("extra", local)]).unwrap();
    assert!(asked.is_empty());
    assert_eq!(
        sources(&l)
            .iter()
            .filter(|s| matches!(s, kiln_solver::Source::Context { .. }))
            .count(),
        1
    );
    let src = "FROM busybox\nRUN --mount=from=repo,target=/r cat /r/x\n";
    let git = NamedContext::Git(git_ref("https://h/r.git#v1:sub").unwrap());
    let (l, _) = with_contexts(src, &[("repo", git)]).unwrap();
    assert!(sources(&l).iter().any(|s| matches!(s,
        kiln_solver::Source::Git { url, reference, subdir, .. }
            if url == "https://h/r.git" && reference == "v1" && subdir == "sub")));

    // A stage built on a tree context starts from the empty image's config.
    let src = "FROM files\nENV A=1\n";
    let (l, _) =
        with_contexts(src, &[("files", NamedContext::Http("https://h/f".into()))]).unwrap();
    assert_eq!(
        l.config["config"]["Env"],
        json!([format!("PATH={DEFAULT_PATH}"), "A=1"])
    );
    assert_eq!(l.config["config"]["WorkingDir"], "/");
    let (l, _) = with_contexts("FROM busybox\n", &[("busybox", NamedContext::Scratch)]).unwrap();
    assert_eq!(sources(&l), [kiln_solver::Source::Scratch]);
}
