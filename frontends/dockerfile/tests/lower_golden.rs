//! Lowering golden cases, one folder per case under `fixtures/lower/`:
//!
//! - `Dockerfile`: the input;
//! - `options` (optional): one flag per line, as `kiln build` spells it
//!   without the dashes: `build-arg K=V`, `target S`, `label K=V`,
//!   `network none|host|default`, `allow network.host`, `ignore PATTERN`
//!   (a `.dockerignore` line), `no-cache-filter S`, `platform OS/ARCH`;
//! - `images.json` (optional): image configs by reference, for bases
//!   that need more than the default fake image;
//! - expected: `graph` (the canonical dump, digests included) and
//!   `config` (the image-config template with history), or `error` (the
//!   rendered error) when lowering must fail.
//!
//! No root, no store, no containers: images come from a fake source.
//! `KILN_BLESS=1 cargo test -p kiln-frontend-dockerfile --test
//! lower_golden` rewrites the expected files.

use kiln_frontend_dockerfile::lower::{self, ImageError, ImageSource, Options, ResolvedImage};
use kiln_frontend_dockerfile::plan::Platform;
use kiln_frontend_dockerfile::LowerError;
use kiln_solver::{Encoder, Network};
use kiln_tests::{case_dirs, check_golden, fixtures};
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

/// Any reference resolves: to its entry in the case's `images.json` (for
/// its platform only), else to a busybox-like image for any platform.
/// Digests are derived from the reference and the platform, so a
/// different base is a different graph.
struct FakeImages {
    configs: serde_json::Map<String, Value>,
}

impl ImageSource for FakeImages {
    fn resolve(
        &self,
        reference: &str,
        platform: &kiln_frontend_dockerfile::plan::Platform,
    ) -> Result<ResolvedImage, ImageError> {
        if reference.contains("missing") {
            return Err(ImageError(format!(
                "{reference}: not found (the fake registry has no image named *missing*)"
            )));
        }
        if let Some(c) = self.configs.get(reference) {
            let arch = c["architecture"].as_str().unwrap_or("amd64");
            if arch != platform.arch {
                return Err(ImageError(format!(
                    "{reference} has no image for {}; it has linux/{arch}",
                    platform.name()
                )));
            }
        }
        let config = self.configs.get(reference).cloned().unwrap_or_else(|| {
            json!({
                "architecture": platform.arch,
                "os": "linux",
                "config": {
                    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    "Cmd": ["sh"],
                },
                "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", fake_digest("layer", reference))]},
                "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:busybox in / "}],
            })
        });
        // The host's digest as before; another platform's its own.
        let key = if platform.is_host() {
            reference.to_string()
        } else {
            format!("{reference} for {}", platform.name())
        };
        Ok(ResolvedImage {
            reference: canonical(reference),
            manifest_digest: format!("sha256:{}", fake_digest("manifest", &key)),
            config,
        })
    }
}

fn fake_digest(what: &str, reference: &str) -> String {
    let mut e = Encoder::new();
    e.tag(what).str(reference);
    e.finish().hex()
}

/// `busybox` → `docker.io/library/busybox:latest`, as the store names it.
fn canonical(reference: &str) -> String {
    let (name, tag) = match reference.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
        _ => (reference.to_string(), "latest".to_string()),
    };
    let first = name.split('/').next().unwrap_or("");
    let name = if first.contains('.') || first.contains(':') || first == "localhost" {
        name
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    format!("{name}:{tag}")
}

fn options(dir: &Path) -> Options {
    let mut o = Options {
        platform: Some(Platform {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: String::new(),
        }),
        ..Options::default()
    };
    let text = fs::read_to_string(dir.join("options")).unwrap_or_default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (flag, value) = line.split_once(' ').unwrap_or((line, ""));
        let pair = || {
            let (k, v) = value.split_once('=').unwrap_or((value, ""));
            (k.to_string(), v.to_string())
        };
        match flag {
            "build-arg" => {
                o.build_args.insert(pair().0, pair().1);
            }
            "label" => {
                o.labels.insert(pair().0, pair().1);
            }
            "target" => o.target = Some(value.to_string()),
            "network" => {
                o.network = match value {
                    "none" => Network::None,
                    "host" => Network::Host,
                    _ => Network::Default,
                }
            }
            "allow" => o.allow_host_network = value == "network.host",
            "ignore" => o.ignore.push(value.to_string()),
            "no-cache-filter" => o.no_cache_stages.push(value.to_string()),
            "platform" => {
                let mut parts = value.split('/');
                o.platform = Some(Platform {
                    os: parts.next().unwrap_or("").into(),
                    arch: parts.next().unwrap_or("").into(),
                    variant: parts.next().unwrap_or("").into(),
                });
            }
            other => panic!("{}: unknown option {other:?}", dir.display()),
        }
    }
    o
}

/// (graph, config) or the rendered error.
fn lower_case(dir: &Path) -> Result<(String, String), String> {
    let bytes = fs::read(dir.join("Dockerfile")).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let configs = match fs::read_to_string(dir.join("images.json")) {
        Ok(s) => serde_json::from_str(&s).unwrap(),
        Err(_) => serde_json::Map::new(),
    };
    let images = FakeImages { configs };
    let render = |e: LowerError| e.render("Dockerfile", &text);
    let df = kiln_parser::parse_bytes(&bytes).map_err(|e| render(e.into()))?;
    let lowered = lower::lower(&df, &options(dir), &images).map_err(render)?;
    Ok((lowered.dump_graph(), lowered.dump_config()))
}

#[test]
fn lowering_cases() {
    let dirs = case_dirs(&fixtures("lower"));
    assert!(
        dirs.len() >= 40,
        "expected ≥ 40 lowering cases, found {}",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let (graph, config, error) = match lower_case(dir) {
            Ok((g, c)) => (Some(g), Some(c), None),
            Err(e) => (None, None, Some(e)),
        };
        check_golden(dir, "graph", graph.as_deref(), &mut failures);
        check_golden(dir, "config", config.as_deref(), &mut failures);
        check_golden(dir, "error", error.as_deref(), &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ (KILN_BLESS=1 to accept):\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
