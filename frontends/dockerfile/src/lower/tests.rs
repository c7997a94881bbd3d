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
