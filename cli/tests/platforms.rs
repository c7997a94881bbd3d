//! Other platforms: an arm64 busybox (Debian's busybox-static for arm64,
//! fetched by `tests/setup/arm64-busybox.sh`) beside the host's under one
//! name, RUN steps under binfmt_misc emulation (Debian's
//! qemu-user-static, registered by `kiln system binfmt --install`, which
//! `.ci/run` runs), `FROM --platform`, `kiln run --platform`.

use kiln_tests::Kiln;

/// A store whose `busybox` has an amd64 and an arm64 image.
fn two_platform_busybox() -> Kiln {
    let k = Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"));
    let tar = k.path("busybox-arm64.tar");
    let out = std::process::Command::new("bash")
        .arg(kiln_tests::repo_root().join("examples/busybox-rootfs.sh"))
        .env("BUSYBOX", kiln_tests::arm64_busybox())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&tar, out.stdout).unwrap();
    k.ok(&[
        "import",
        "--platform",
        "linux/arm64",
        tar.to_str().unwrap(),
        "busybox",
    ]);
    k
}

#[test]
fn an_arm64_build_runs_its_steps_under_emulation() {
    let k = two_platform_busybox();
    let images = k.ok(&["images"]);
    assert!(
        images.contains("linux/arm64") && images.contains("linux/amd64"),
        "{images}"
    );
    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nARG TARGETARCH\nARG BUILDARCH\n\
         RUN uname -m > /arch && echo $TARGETARCH $BUILDARCH >> /arch\n",
    );
    k.build(&["--platform", "linux/arm64", "-t", "app"]);
    let config = k.inspect("app");
    assert_eq!(config["Architecture"], "arm64", "{config}");
    assert_eq!(
        k.run_rm(&["--platform", "linux/arm64", "app", "cat", "/arch"]),
        "aarch64\narm64 amd64\n"
    );
    // The same tag built for the host: both platforms under one name,
    // the host's the default.
    k.build(&["-t", "app"]);
    assert_eq!(k.run_rm(&["app", "cat", "/arch"]), "x86_64\namd64 amd64\n");
    assert_eq!(
        k.run_rm(&["--platform", "linux/arm64", "app", "uname", "-m"]),
        "aarch64\n"
    );
}

#[test]
fn from_platform_picks_that_platforms_base_or_warns_about_another() {
    let k = two_platform_busybox();
    // A host build whose one stage is arm64 (and copied into the host's).
    k.write_ctx(
        "Dockerfile",
        "FROM --platform=linux/arm64 busybox AS arm\nRUN uname -m > /m\n\
         FROM busybox\nCOPY --from=arm /m /arm-m\nRUN uname -m > /m\n",
    );
    k.build(&["-t", "mixed"]);
    assert_eq!(
        k.run_rm(&["mixed", "cat", "/arm-m", "/m"]),
        "aarch64\nx86_64\n"
    );
    // A platform the base does not have: the error names what it has.
    k.write_ctx(
        "Dockerfile",
        "FROM --platform=linux/s390x busybox\nRUN true\n",
    );
    let (code, _, err) = k.try_build(&["--network", "none"]);
    assert_ne!(code, 0);
    assert!(err.contains("Dockerfile:1:1"), "{err}");
    assert!(err.contains("no image for linux/s390x"), "{err}");
    assert!(err.contains("linux/amd64, linux/arm64"), "{err}");
    // A single-platform image for another platform is BuildKit's base
    // all the same, with InvalidBaseImagePlatform at its FROM.
    let host_id = k.inspect("busybox")["Id"].as_str().unwrap().to_string();
    k.ok(&["tag", &host_id, "only-host"]);
    k.write_ctx("Dockerfile", "FROM only-host\nRUN uname -m > /m\n");
    let (_, err) = k.build(&["--platform", "linux/arm64", "-t", "subst"]);
    let warning = "InvalidBaseImagePlatform: Base image only-host was pulled with platform \"linux/amd64\", expected \"linux/arm64\" for current build";
    assert!(err.contains(warning), "{err}");
    assert!(err.contains("Dockerfile:1"), "{err}");
    assert_eq!(
        k.run_rm(&["--platform", "linux/arm64", "subst", "cat", "/m"]),
        "x86_64\n"
    );
    // Quiet for the platform it is for; a check error with error=true.
    let (_, err) = k.build(&["-t", "native"]);
    assert!(!err.contains("InvalidBaseImagePlatform"), "{err}");
    k.write_ctx(
        "Dockerfile",
        "# check=error=true\nFROM only-host\nRUN uname -m > /m\n",
    );
    let (code, _, err) = k.try_build(&["--platform", "linux/arm64"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("lint violation found for rules: InvalidBaseImagePlatform"),
        "{err}"
    );
}

#[test]
fn binfmt_shows_what_this_machine_runs() {
    let k = Kiln::new(env!("CARGO_BIN_EXE_kiln"));
    let out = k.ok(&["system", "binfmt"]);
    assert!(out.contains("linux/amd64     native"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("linux/arm64") && l.contains("emulated")),
        "{out}"
    );
}

#[test]
fn a_two_platform_build_pushes_an_index_that_skopeo_and_podman_read() {
    let k = two_platform_busybox();
    let registry = kiln_tests::Registry::start(None);
    let name = format!("127.0.0.1:{}/multi/app:1", registry.port);
    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nRUN uname -m > /arch\nCMD [\"cat\", \"/arch\"]\n",
    );
    k.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        &name,
        "--push",
    ]);
    // Both images in the store under the one name.
    assert_eq!(k.run_rm(&["--platform", "linux/amd64", &name]), "x86_64\n");
    assert_eq!(k.run_rm(&["--platform", "linux/arm64", &name]), "aarch64\n");
    // The registry has an index with the two platforms.
    let platforms = index_platforms(&["--tls-verify=false", &format!("docker://{name}")]);
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    // skopeo copies all of it back.
    let copy = k.path("copy");
    kiln_tests::tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:app", copy.display()),
        ],
    );
    let layout: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(copy.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        layout["manifests"].as_array().unwrap().len(),
        1,
        "one index"
    );
    // podman runs the arm64 image (emulated) from the registry.
    let runc = kiln_tests::tool_path("runc");
    let out = std::process::Command::new(kiln_tests::tool_path("podman"))
        .args([
            "--runtime",
            runc.to_str().unwrap(),
            "run",
            "--rm",
            "--network",
            "none",
        ])
        // Under this host's hard open-files limit (podman asks for more).
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(["--tls-verify=false", "--platform", "linux/arm64", &name])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "aarch64\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::process::Command::new(kiln_tests::tool_path("podman"))
        .args(["rmi", "-f", &name])
        .output();
    // Another machine's FROM picks each platform's manifest from the
    // registry's index: an arm64 build, then the host's, same name.
    let other = Kiln::new(env!("CARGO_BIN_EXE_kiln"));
    other.write_ctx(
        "Dockerfile",
        format!("FROM {name}\nRUN cat /arch > /base-arch\n"),
    );
    other.build(&["--platform", "linux/arm64", "-t", "derived"]);
    other.build(&["-t", "derived"]);
    assert_eq!(
        other.run_rm(&["--platform", "linux/arm64", "derived", "cat", "/base-arch"]),
        "aarch64\n"
    );
    assert_eq!(other.run_rm(&["derived", "cat", "/base-arch"]), "x86_64\n");
}

#[test]
fn a_two_platform_build_writes_one_directory_per_platform() {
    let k = two_platform_busybox();
    k.write_ctx("Dockerfile", "FROM busybox\nRUN uname -m > /arch\n");
    let dest = k.path("out");
    k.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        &format!("type=local,dest={}", dest.display()),
    ]);
    assert_eq!(
        std::fs::read_to_string(dest.join("linux_amd64/arch")).unwrap(),
        "x86_64\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("linux_arm64/arch")).unwrap(),
        "aarch64\n"
    );
    // One tar, a directory per platform.
    let tar = k.path("out.tar");
    k.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        &format!("type=tar,dest={}", tar.display()),
    ]);
    let listing = kiln_tests::tool("tar", &["-tf", tar.to_str().unwrap()]);
    for want in [
        "linux_amd64/arch",
        "linux_arm64/arch",
        "linux_arm64/bin/busybox",
    ] {
        assert!(
            listing.lines().any(|l| l.trim_start_matches("./") == want),
            "{want}:\n{listing}"
        );
    }
    // platform-split=false: one tree, the later platform's files over the earlier's.
    let merged = k.path("merged");
    k.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        &format!("type=local,dest={},platform-split=false", merged.display()),
    ]);
    assert_eq!(
        std::fs::read_to_string(merged.join("arch")).unwrap(),
        "aarch64\n"
    );
    assert!(!merged.join("linux_amd64").exists());
}

/// The platforms of the image index `skopeo inspect --raw ARGS` shows
/// (which must be an OCI index), sorted.
fn index_platforms(args: &[&str]) -> Vec<String> {
    let mut full = vec!["inspect", "--raw"];
    full.extend_from_slice(args);
    let raw = kiln_tests::tool("skopeo", &full);
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{raw}"
    );
    let mut out: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// The platforms of the image index an OCI archive's `index.json` names.
fn archive_platforms(archive: &std::path::Path) -> Vec<String> {
    index_platforms(&[&format!("oci-archive:{}", archive.display())])
}

#[test]
fn multi_platform_archives_hold_an_index_and_load_back_whole() {
    let k = two_platform_busybox();
    k.write_ctx("Dockerfile", "FROM busybox\nRUN uname -m > /arch\n");
    let oci = k.path("app-oci.tar");
    k.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        "app",
        "-o",
        &format!("type=oci,dest={}", oci.display()),
    ]);
    assert_eq!(archive_platforms(&oci), ["linux/amd64", "linux/arm64"]);
    // kiln save of the name writes every platform; a clean store loads
    // both back, and each runs.
    let saved = k.path("app-saved.tar");
    k.ok(&["save", "-o", saved.to_str().unwrap(), "app"]);
    assert_eq!(archive_platforms(&saved), ["linux/amd64", "linux/arm64"]);
    let other = Kiln::new(env!("CARGO_BIN_EXE_kiln"));
    other.ok(&["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(
        other.run_rm(&["--platform", "linux/arm64", "app", "cat", "/arch"]),
        "aarch64\n"
    );
    assert_eq!(other.run_rm(&["app", "cat", "/arch"]), "x86_64\n");
}

/// The cross-compilation pattern: the compiler stage is for the building
/// machine (`FROM --platform=$BUILDPLATFORM`) and cross-compiles for
/// `$TARGETARCH`; it is the same work for every target until the
/// compile step, which alone differs. The toolchain install runs once
/// for both platforms (a line in a cache mount per run).
#[test]
fn the_cross_compile_pattern_builds_natively_and_shares_the_toolchain_stage() {
    let k = two_platform_busybox();
    k.ok(&[
        "import",
        kiln_tests::debian_rootfs().to_str().unwrap(),
        "debian:bookworm",
    ]);
    k.write_ctx(
        "hello.c",
        "#include <stdio.h>\n#include <sys/utsname.h>\n\
         int main(void) { struct utsname u; uname(&u); printf(\"hello from %s\\n\", u.machine); return 0; }\n",
    );
    k.write_ctx(
        "Dockerfile",
        "FROM --platform=$BUILDPLATFORM debian:bookworm AS toolchain\n\
         RUN --mount=type=cache,target=/runs,id=runs echo toolchain >> /runs/log \
         && apt-get update -qq && apt-get install -y -qq --no-install-recommends \
         gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null \
         && rm -rf /var/lib/apt/lists/*\n\
         FROM toolchain AS build\n\
         ARG TARGETARCH\n\
         COPY hello.c /src/\n\
         RUN --mount=type=cache,target=/runs,id=runs echo compile-$TARGETARCH >> /runs/log && \
         case $TARGETARCH in arm64) cc=aarch64-linux-gnu-gcc ;; *) cc=gcc ;; esac && \
         $cc -static -O2 -o /hello /src/hello.c && uname -m > /built-on\n\
         FROM busybox\n\
         COPY --from=build /hello /built-on /\n\
         RUN /hello > /ran\n",
    );
    k.build(&["--platform", "linux/amd64,linux/arm64", "-t", "hello"]);
    let mut runs = k.cache_log("runs");
    runs.sort();
    assert_eq!(
        runs,
        ["compile-amd64", "compile-arm64", "toolchain"],
        "the toolchain once"
    );
    assert_eq!(
        k.run_rm(&[
            "--platform",
            "linux/arm64",
            "hello",
            "cat",
            "/ran",
            "/built-on"
        ]),
        "hello from aarch64\nx86_64\n",
        "compiled natively, run under emulation"
    );
    assert_eq!(
        k.run_rm(&["--platform", "linux/amd64", "hello", "cat", "/ran"]),
        "hello from x86_64\n"
    );
}

#[test]
fn a_multi_platform_cache_serves_both_platforms_on_another_machine() {
    let a = two_platform_busybox();
    // The same two-platform base on the other machine (as if pulled).
    let base = a.path("busybox-both.tar");
    a.ok(&["save", "-o", base.to_str().unwrap(), "busybox"]);
    let b = Kiln::new(env!("CARGO_BIN_EXE_kiln"));
    b.ok(&["load", "-i", base.to_str().unwrap()]);
    let dockerfile = "FROM busybox\nRUN --mount=type=cache,target=/c,id=runs uname -m >> /c/log && uname -m > /arch\n";
    a.write_ctx("Dockerfile", dockerfile);
    b.write_ctx("Dockerfile", dockerfile);
    let cache = a.path("cache");
    let both = "linux/amd64,linux/arm64";
    a.build(&[
        "--platform",
        both,
        "--cache-to",
        &format!("type=local,dest={},mode=max", cache.display()),
    ]);
    let mut ran = a.cache_log("runs");
    ran.sort();
    assert_eq!(ran, ["aarch64", "x86_64"]);
    b.build(&[
        "--platform",
        both,
        "-t",
        "app",
        "--cache-from",
        &format!("type=local,src={}", cache.display()),
    ]);
    assert!(
        b.cache_log("runs").is_empty(),
        "B ran a step: {:?}",
        b.cache_log("runs")
    );
    assert_eq!(
        b.run_rm(&["--platform", "linux/arm64", "app", "cat", "/arch"]),
        "aarch64\n"
    );
    assert_eq!(b.run_rm(&["app", "cat", "/arch"]), "x86_64\n");
}
