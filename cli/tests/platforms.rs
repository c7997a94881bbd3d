//! Other platforms: an arm64 busybox (Debian's busybox-static for arm64,
//! fetched by `tests/setup/arm64-busybox.sh`) beside the host's under one
//! name, RUN steps under binfmt_misc emulation (Debian's
//! qemu-user-static, registered by `kiln system binfmt --install`, which
//! `.ci/run` runs), `FROM --platform`, `kiln run --platform`.

use kiln_tests::Kiln;
use std::path::PathBuf;

fn arm64_busybox() -> PathBuf {
    let p = PathBuf::from(
        std::env::var_os("KILN_TEST_CACHE").unwrap_or_else(|| "/var/cache/kiln-tests".into()),
    )
    .join("busybox-arm64");
    assert!(
        p.is_file(),
        "{} is missing: run `bash tests/setup/arm64-busybox.sh` (.ci/run does)",
        p.display()
    );
    p
}

/// A store whose `busybox` has an amd64 and an arm64 image.
fn two_platform_busybox() -> Kiln {
    let k = Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"));
    let tar = k.path("busybox-arm64.tar");
    let out = std::process::Command::new("bash")
        .arg(kiln_tests::repo_root().join("examples/busybox-rootfs.sh"))
        .env("BUSYBOX", arm64_busybox())
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
fn from_platform_picks_that_platforms_base_and_never_another() {
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
    // And a store image of one platform only is never a substitute.
    let host_id = k.inspect("busybox")["Id"].as_str().unwrap().to_string();
    k.ok(&["tag", &host_id, "only-host"]);
    k.write_ctx("Dockerfile", "FROM only-host\nRUN true\n");
    let (code, _, err) = k.try_build(&["--platform", "linux/arm64"]);
    assert_ne!(code, 0);
    assert!(err.contains("no image for linux/arm64"), "{err}");
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
