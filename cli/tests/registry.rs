//! Registries end to end: Debian's docker-registry on 127.0.0.1, started
//! by each test, with images put there and checked by skopeo and umoci
//! (independent tools); a token server and faulty registries come from
//! tests/registry-proxy.py in front of it.

use kiln_tests::{tool, Kiln, Proxy, Registry};
use serde_json::Value;
use sha2::Digest as _;
use std::fs;
use std::path::{Path, PathBuf};

/// One "machine": a store and a docker config dir of its own.
fn machine() -> Kiln {
    Kiln::new(env!("CARGO_BIN_EXE_kiln"))
}

/// A busybox image in this store, saved as a docker archive for skopeo.
fn busybox_archive(m: &Kiln) -> PathBuf {
    m.import_busybox("busybox", &[]);
    let archive = m.path("busybox.tar");
    m.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    archive
}

fn manifest_digest(m: &Kiln, name: &str) -> String {
    let out = m.ok(&["images", "--format", "json"]);
    let want = Path::new(name);
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| {
            Path::new(&format!(
                "{}:{}",
                v["Repository"].as_str().unwrap(),
                v["Tag"].as_str().unwrap()
            )) == want
        })
        .unwrap_or_else(|| panic!("{name} not in kiln images:\n{out}"))["Digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn write_context(m: &Kiln, dockerfile: &str) -> PathBuf {
    m.write_ctx("Dockerfile", dockerfile);
    m.ctx()
}

/// skopeo puts an archive into a registry (plain HTTP, optional creds).
fn skopeo_push(archive: &Path, dest: &str, creds: Option<&str>) {
    let src = format!("docker-archive:{}", archive.display());
    let dest = format!("docker://{dest}");
    let mut args = vec!["copy", "-q", "--dest-tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--dest-creds", c]);
    }
    args.extend([src.as_str(), dest.as_str()]);
    tool("skopeo", &args);
}

fn skopeo_inspect(reference: &str, creds: Option<&str>) -> Value {
    let r = format!("docker://{reference}");
    let mut args = vec!["inspect", "--tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.push(&r);
    serde_json::from_str(&tool("skopeo", &args)).unwrap()
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn pull_build_push_round_trip_checked_by_skopeo_and_umoci() {
    let reg = Registry::start(None);
    let host = reg.host();
    let a = machine();
    skopeo_push(&busybox_archive(&a), &format!("{host}/busybox:1"), None);

    // B has no base image: FROM pulls it, --push sends the result.
    let b = machine();
    let ctx = write_context(
        &b,
        &format!("FROM {host}/busybox:1\nRUN echo built > /b\nCMD [\"cat\", \"/b\"]\n"),
    );
    let app = format!("{host}/app:1");
    let metadata = b.path("metadata.json");
    let (code, _, err) = b
        .out(&[
            "build",
            "-t",
            &app,
            "--push",
            "--metadata-file",
            metadata.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ])
        .parts();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("pulling {host}/busybox:1")), "{err}");
    assert_eq!(b.ok(&["run", "--rm", &app]), "built\n");

    // skopeo sees the same manifest digest kiln stored (and wrote to the
    // metadata file, with buildx's keys), and umoci unpacks what skopeo
    // copies back.
    let digest = manifest_digest(&b, &app);
    let inspected = skopeo_inspect(&app, None);
    assert_eq!(inspected["Digest"], digest.as_str());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    assert_eq!(meta["containerimage.digest"], inspected["Digest"], "{meta}");
    assert_eq!(meta["image.name"], app.as_str(), "{meta}");
    assert_eq!(
        meta["containerimage.config.digest"],
        b.inspect(&app)["Id"],
        "{meta}"
    );
    // RepoDigests: what the push and the FROM's pull recorded.
    assert_eq!(
        b.inspect(&app)["RepoDigests"],
        serde_json::json!([format!("{host}/app@{digest}")])
    );
    let base = b.inspect(&format!("{host}/busybox:1"));
    assert!(
        base["RepoDigests"][0]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("{host}/busybox@sha256:"))),
        "{base}"
    );
    let oci = b.path("oci");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{app}"),
            &format!("oci:{}:app", oci.display()),
        ],
    );
    let bundle = b.path("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:app", oci.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/b")).unwrap(),
        "built\n"
    );

    // Pushing again uploads nothing; another repository mounts the blobs;
    // a small chunk size pushes in PATCH chunks (to a second registry,
    // where nothing can be mounted), and skopeo agrees.
    let (_, _, err) = b.out(&["push", &app]).parts();
    assert!(err.contains("0 blob(s) uploaded"), "{err}");
    assert!(err.contains("3 already there"), "{err}");
    // The same manifest, byte for byte: its layers were compressed once.
    assert_eq!(manifest_digest(&b, &app), digest);
    assert_eq!(skopeo_inspect(&app, None)["Digest"], digest.as_str());
    let (_, _, err) = b
        .out(&["push", &app, &format!("{host}/mirror/app:1")])
        .parts();
    assert!(err.contains("3 mounted"), "{err}");
    let reg2 = Registry::start(None);
    let chunked = format!("{}/chunked:1", reg2.host());
    let out = b
        .kiln()
        .env("KILN_PUSH_CHUNK_SIZE", "65536")
        .args(["push", &app, &chunked])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("3 blob(s) uploaded"), "{err}");
    assert_eq!(skopeo_inspect(&chunked, None)["Digest"], digest.as_str());

    // C pulls it: layers come packed and unpack when run.
    let c = machine();
    let (code, out, err) = c.out(&["pull", &chunked]).parts();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{chunked}\n"));
    assert!(err.contains(&format!("Digest: {digest}")), "{err}");
    assert_eq!(
        count_files(&c.path("store/snapshots")),
        0,
        "unpacked lazily"
    );
    assert_eq!(c.ok(&["run", "--rm", &chunked]), "built\n");
    assert_eq!(manifest_digest(&c, &chunked), digest);
    c.ok(&["system", "check"]);
    // By digest, too.
    let by_digest = format!("{}/chunked@{digest}", reg2.host());
    c.ok(&["pull", &by_digest]);

    // Offline: what the store has is used; --pull must reach the registry.
    drop(reg);
    let (code, _, err) = b.out(&["build", "-q", ctx.to_str().unwrap()]).parts();
    assert_eq!(code, 0, "{err}");
    let err = b.fails(&["build", "--pull", ctx.to_str().unwrap()]);
    assert!(err.contains(&format!("{host}/busybox:1")), "{err}");
    assert!(err.contains("Dockerfile:1"), "{err}");
}

#[test]
fn multi_platform_index_picks_the_platform() {
    let reg = Registry::start(None);
    let host = reg.host();
    let a = machine();
    busybox_archive(&a);
    // An OCI layout whose tag names an index: amd64 (the real image) and
    // an arm64 entry; skopeo --all pushes it as an index.
    let layout = a.path("layout");
    a.ok(&[
        "save",
        "--format",
        "oci-dir",
        "-o",
        layout.to_str().unwrap(),
        "busybox",
    ]);
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut amd = index["manifests"][0].clone();
    amd.as_object_mut().unwrap().remove("annotations");
    amd["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
    let mut arm = amd.clone();
    arm["platform"] = serde_json::json!({"os": "linux", "architecture": "arm64"});
    let inner = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [arm, amd],
    }))
    .unwrap();
    let inner_hex = hex::encode(sha2::Sha256::digest(&inner));
    fs::write(layout.join("blobs/sha256").join(&inner_hex), &inner).unwrap();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{inner_hex}"),
            "size": inner.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }],
    });
    fs::write(layout.join("index.json"), top.to_string()).unwrap();
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:multi", layout.display()),
            &format!("docker://{host}/multi:1"),
        ],
    );

    let b = machine();
    let (code, _, err) = b.out(&["pull", &format!("{host}/multi:1")]).parts();
    assert_eq!(code, 0, "{err}");
    // The repo digest is the index's; the image is the amd64 manifest.
    assert!(
        err.contains(&format!("Digest: sha256:{inner_hex}")),
        "{err}"
    );
    assert_eq!(
        manifest_digest(&b, &format!("{host}/multi:1")),
        index["manifests"][0]["digest"].as_str().unwrap()
    );
    assert_eq!(
        b.ok(&["run", "--rm", &format!("{host}/multi:1"), "echo", "ok"]),
        "ok\n"
    );
    let err = b.fails(&[
        "pull",
        "--platform",
        "linux/s390x",
        &format!("{host}/multi:1"),
    ]);
    assert!(
        err.contains("no image for platform linux/s390x (the image has: linux/arm64, linux/amd64)"),
        "{err}"
    );
}

#[test]
fn basic_auth_login_logout_and_secrets_never_printed() {
    let reg = Registry::start(Some(&kiln_tests::htpasswd_line("kiln", "s3cret-pw")));
    let host = reg.host();
    let a = machine();
    skopeo_push(
        &busybox_archive(&a),
        &format!("{host}/busybox:1"),
        Some("kiln:s3cret-pw"),
    );
    let image = format!("{host}/busybox:1");

    let b = machine();
    let err = b.fails(&["pull", &image]);
    assert!(err.contains(&image), "{err}");
    assert!(
        err.contains(&format!(
            "authentication required (run `kiln login {host}`)"
        )),
        "{err}"
    );

    let login = |password: &str| {
        b.kiln()
            .args(["login", "-u", "kiln", "--password-stdin", &host])
            .write_stdin(format!("{password}\n"))
            .output()
            .unwrap()
    };
    let wrong = login("nope-wrong");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong username or password"));
    assert!(!b.path("docker/config.json").exists());

    let right = login("s3cret-pw");
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let config = b.path("docker/config.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut printed = String::from_utf8_lossy(&right.stdout).into_owned()
        + &String::from_utf8_lossy(&right.stderr);

    let (code, out, err) = b.out(&["pull", &image]).parts();
    assert_eq!(code, 0, "{err}");
    printed += &(out + &err);
    let (code, out, err) = b
        .out(&["push", &image, &format!("{host}/pushed:1")])
        .parts();
    assert_eq!(code, 0, "{err}");
    printed += &(out + &err);
    assert!(
        !printed.contains("s3cret-pw"),
        "a secret was printed:\n{printed}"
    );
    assert_eq!(
        skopeo_inspect(&format!("{host}/pushed:1"), Some("kiln:s3cret-pw"))["Digest"],
        manifest_digest(&b, &image).as_str()
    );

    b.ok(&["logout", &host]);
    let c = machine();
    fs::create_dir_all(c.path("docker")).unwrap();
    fs::copy(&config, c.path("docker/config.json")).unwrap();
    let err = c.fails(&["pull", &image]);
    assert!(err.contains("authentication required"), "{err}");
}

#[test]
fn bearer_tokens_are_scoped_reused_and_come_from_helpers() {
    let upstream = Registry::start(None);
    let a = machine();
    skopeo_push(
        &busybox_archive(&a),
        &format!("{}/busybox:1", upstream.host()),
        None,
    );
    let proxy = Proxy::start(upstream.port, &["--token", "kiln:tok3n"]);
    let host = proxy.host();
    let image = format!("{host}/busybox:1");

    // Credentials in config.json, as `docker login` writes them.
    let b = machine();
    fs::create_dir_all(b.path("docker")).unwrap();
    fs::write(
        b.path("docker/config.json"),
        serde_json::json!({"auths": {host.clone(): {"auth": "a2lsbjp0b2szbg=="}}}).to_string(),
    )
    .unwrap();
    let err = machine().fails(&["pull", &image]);
    assert!(err.contains("authentication required"), "{err}");
    let before = proxy.tokens_issued();
    let (code, _, err) = b.out(&["pull", &image]).parts();
    assert_eq!(code, 0, "{err}");
    // Manifest, config and layer share one token for the repository.
    assert_eq!(proxy.tokens_issued() - before, 1);
    // A push to another repository mounts with pull scope on the source.
    let (code, _, err) = b.out(&["push", &image, &format!("{host}/copy:1")]).parts();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("mounted"), "{err}");
    assert_eq!(
        skopeo_inspect(&format!("{}/copy:1", upstream.host()), None)["Digest"],
        manifest_digest(&b, &image).as_str()
    );

    // Or from a credential helper (credsStore).
    let c = machine();
    let bin = c.path("bin");
    fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-kilntest");
    fs::write(
        &helper,
        "#!/bin/sh\nread server\necho '{\"ServerURL\":\"'$server'\",\"Username\":\"kiln\",\"Secret\":\"tok3n\"}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(c.path("docker")).unwrap();
    fs::write(c.path("docker/config.json"), r#"{"credsStore":"kilntest"}"#).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = c
        .kiln()
        .env("PATH", path)
        .args(["pull", &image])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_registries_give_one_line_errors_and_leave_nothing() {
    let reg = Registry::start(None);
    let host = reg.host();
    let a = machine();
    skopeo_push(&busybox_archive(&a), &format!("{host}/busybox:1"), None);

    let b = machine();
    let one_line = |err: &str| {
        assert_eq!(err.trim().lines().count(), 1, "not one line:\n{err}");
    };
    let err = b.fails(&["pull", &format!("{host}/nothing")]);
    assert!(
        err.contains(&format!("{host}/nothing:latest: not found")),
        "{err}"
    );
    one_line(&err);
    let err = b.fails(&["pull", &format!("{host}/busybox:nope")]);
    assert!(err.contains("busybox:nope: not found"), "{err}");
    one_line(&err);
    let err = b.fails(&[
        "pull",
        "--platform",
        "linux/arm64",
        &format!("{host}/busybox:1"),
    ]);
    assert!(
        err.contains("the image is for linux/amd64 only, not linux/arm64"),
        "{err}"
    );
    one_line(&err);
    // A build takes that image as its base all the same, as BuildKit
    // does, and says so (InvalidBaseImagePlatform).
    let builder = machine();
    let ctx = write_context(&builder, &format!("FROM {host}/busybox:1\nENV at=arm\n"));
    let (code, _, err) = builder
        .out(&[
            "build",
            "--platform",
            "linux/arm64",
            "-t",
            "arm",
            ctx.to_str().unwrap(),
        ])
        .parts();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("InvalidBaseImagePlatform: Base image {host}/busybox:1 was pulled with platform \"linux/amd64\", expected \"linux/arm64\" for current build")),
        "{err}"
    );

    // 429 and 503 are retried (Retry-After honoured): the pull succeeds.
    let flaky = Proxy::start(reg.port, &["--flaky"]);
    let c = machine();
    let (code, _, err) = c
        .out(&["pull", &format!("{}/busybox:1", flaky.host())])
        .parts();
    assert_eq!(code, 0, "{err}");

    let corrupt = Proxy::start(reg.port, &["--corrupt-blobs"]);
    let err = b.fails(&["pull", &format!("{}/busybox:1", corrupt.host())]);
    assert!(err.contains("digest mismatch"), "{err}");
    one_line(&err);
    let closing = Proxy::start(reg.port, &["--close-blobs"]);
    let err = b.fails(&["pull", &format!("{}/busybox:1", closing.host())]);
    assert!(err.contains("broke off"), "{err}");
    one_line(&err);
    let down = kiln_tests::free_port();
    let err = b.fails(&["pull", &format!("127.0.0.1:{down}/busybox:1")]);
    assert!(err.contains("connection"), "{err}");
    one_line(&err);

    // Nothing half-written: no image and no temp file; the blobs that
    // stayed are whole and verified (a retry resumes from them), which
    // `system check` proves by hashing each; prune removes them.
    assert_eq!(b.ok(&["images", "-q"]), "");
    assert_eq!(count_files(&b.path("store/tmp")), 0);
    b.ok(&["system", "check"]);
    b.ok(&["prune", "-f"]);
    assert_eq!(count_files(&b.path("store/blobs/sha256")), 0);
}
