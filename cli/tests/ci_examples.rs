//! The CI jobs in `examples/ci/` run their shell step as it is, here
//! against a local registry: two machines (two stores) build the same
//! project; the first pushes the image and the cache, the second builds
//! from that cache (its RUN step CACHED) and pushes; the metadata file's
//! digest is what skopeo sees in the registry.

use kiln_tests::{repo_root, tool, Kiln, Registry};
use std::fs;

/// Whether the RUN step's output is in the log (not just its label).
fn step_ran(log: &str) -> bool {
    log.lines()
        .any(|l| l.ends_with(" ran-the-step") && !l.contains("RUN "))
}

fn run_script(k: &Kiln, registry: &Registry, tag: &str) -> String {
    let project = k.path("project");
    let out = std::process::Command::new("sh")
        .arg(repo_root().join("examples/ci/build-and-push.sh"))
        .current_dir(&project)
        .env("KILN", k.bin())
        .env("KILN_ROOT", k.root())
        .env("DOCKER_CONFIG", k.path("docker"))
        .env("XDG_CONFIG_HOME", k.path("config"))
        .env("REGISTRY", registry.host())
        .env("IMAGE", "team/app")
        .env("TAG", tag)
        .env_remove("REGISTRY_USER")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// A machine with the same busybox base as every other (loaded from
/// `base`, as if pulled from one registry) and the project checked out.
fn machine(base: &std::path::Path) -> Kiln {
    let k = Kiln::new(env!("CARGO_BIN_EXE_kiln"));
    k.ok(&["load", "-q", "-i", base.to_str().unwrap()]);
    let project = k.path("project");
    fs::create_dir_all(&project).unwrap();
    fs::write(project.join("app.txt"), "app\n").unwrap();
    fs::write(
        project.join("Dockerfile"),
        "FROM busybox\nCOPY app.txt /\nRUN cat /app.txt > /built && echo ran-the-step\n",
    )
    .unwrap();
    k
}

#[test]
fn the_ci_jobs_build_share_the_cache_and_push() {
    for job in ["github-actions.yml", "gitlab-ci.yml"] {
        let text = fs::read_to_string(repo_root().join("examples/ci").join(job)).unwrap();
        assert!(text.contains("sh examples/ci/build-and-push.sh"), "{job}");
    }
    let registry = Registry::start(None);
    let seed = Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"));
    let base = seed.path("busybox.tar");
    seed.ok(&["save", "-o", base.to_str().unwrap(), "busybox"]);
    let first = machine(&base);
    let log = run_script(&first, &registry, "1");
    assert!(step_ran(&log), "{log}");
    let meta: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(first.path("project/metadata.json")).unwrap())
            .unwrap();
    let remote = |tag: &str| -> serde_json::Value {
        let out = tool(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                &format!("docker://{}/team/app:{tag}", registry.host()),
            ],
        );
        serde_json::from_str(&out).unwrap()
    };
    assert_eq!(remote("1")["Digest"], meta["containerimage.digest"]);

    // Another machine: the registry's cache answers the RUN step.
    let second = machine(&base);
    let log = run_script(&second, &registry, "2");
    assert!(!step_ran(&log), "{log}");
    let run_line = log
        .lines()
        .find(|l| l.contains("RUN cat /app.txt"))
        .unwrap_or_else(|| panic!("{log}"));
    let number = run_line.split_whitespace().next().unwrap();
    assert!(log.contains(&format!("{number} CACHED")), "{log}");
    // The same layers: the cached step's blob is the first machine's.
    assert_eq!(remote("2")["Layers"], remote("1")["Layers"]);
}
