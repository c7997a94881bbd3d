//! The attacks of issue 12, made permanent at the CLI: an attacker's probe
//! (`tests/probe/escape_probe.rs`) runs inside `kiln build` RUN steps and
//! `kiln run` containers (native and runc) with descriptors left open by
//! the caller (`exec 7</ 8</etc/shadow`, as a shell or CI agent does), and
//! the store-level findings: permissions, prune beside a running
//! container, corrupt blobs in `save`, a lost meta.db, hostile
//! Dockerfiles. Needs root.

use kiln_tests::{assert_no_escape, Kiln, PROBE_ALWAYS, PROBE_INIT, PROBE_NO_NETWORK};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn kiln() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

/// A context with the probe and the host's device list.
fn probe_context(k: &Kiln, dockerfile: &str) -> std::path::PathBuf {
    let ctx = k.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::copy(kiln_tests::escape_probe(), ctx.join("probe")).unwrap();
    fs::write(ctx.join("devlist"), kiln_tests::host_devices()).unwrap();
    fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

fn checks(extra: &[&'static [&'static str]]) -> Vec<&'static str> {
    let mut v = PROBE_ALWAYS.to_vec();
    for e in extra {
        v.extend_from_slice(e);
    }
    v
}

fn host_port() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    (l, port)
}

#[test]
fn build_steps_have_no_way_out() {
    let k = kiln();
    let (_l, port) = host_port();
    let ns = kiln_tests::host_namespaces();
    let ctx = probe_context(
        &k,
        &format!(
            "FROM busybox\nCOPY probe devlist /\n\
             RUN --mount=type=bind,target=/ctx,rw --mount=type=cache,target=/cache \
             --mount=type=tmpfs,target=/scratch \
             /probe --devices /devlist --host-ns {ns} --host-port {port} \
             --writable /tmp,/ctx,/cache,/scratch\n"
        ),
    );
    let out = k.with_leaked_fds(&[
        "build",
        "--no-cache",
        "--network",
        "none",
        "--progress",
        "plain",
        ctx.to_str().unwrap(),
    ]);
    let report = kiln_tests::probe_lines(&out.stderr);
    assert_no_escape(&report, &checks(&[PROBE_NO_NETWORK]));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn run_containers_have_no_way_out() {
    let k = kiln();
    let ctx = probe_context(&k, "FROM busybox\nCOPY probe devlist /\n");
    k.ok(&["build", "-q", "-t", "probe", ctx.to_str().unwrap()]);
    let (_l, port) = host_port();
    let ns = kiln_tests::host_namespaces();
    let host_dir = k.path("bind-src");
    fs::create_dir_all(&host_dir).unwrap();
    let volume = format!("{}:/bind", host_dir.display());
    let runc = kiln_tests::tool_path("runc").display().to_string();
    let probe = [
        "/probe",
        "--devices",
        "/devlist",
        "--host-ns",
        &ns,
        "--host-port",
        &port,
        "--writable",
        "/tmp,/bind",
    ];
    for (extra, expect) in [
        (vec![], checks(&[PROBE_NO_NETWORK])),
        (vec!["--init"], checks(&[PROBE_NO_NETWORK, PROBE_INIT])),
        (
            vec!["--oci-runtime", runc.as_str()],
            checks(&[PROBE_NO_NETWORK]),
        ),
    ] {
        let mut args = vec!["run", "--rm", "--network", "none", "-v", &volume];
        args.extend(extra.iter().copied());
        args.push("probe");
        args.extend(probe);
        if extra.contains(&"--init") {
            args.push("--expect-init");
        }
        let out = k.with_leaked_fds(&args);
        assert_no_escape(&out.stdout, &expect);
        assert_eq!(out.code, 0, "{extra:?}: {}", out.stderr);
    }
    // --init never makes PID 1 a handle on kiln's binary.
    let exe = fs::read(k.bin()).unwrap();
    let out = k.out(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "printf x | dd of=/proc/1/exe conv=notrunc 2>&1; printf PWNED | dd of=/proc/1/fd/3 conv=notrunc 2>&1; true",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(fs::read(k.bin()).unwrap(), exe, "kiln's binary changed");
    k.ok(&["system", "check"]);
}

/// BuildKit's rule: a Dockerfile never picks more network than the
/// invoker allowed. `RUN --network=host` needs `--allow network.host`,
/// and `kiln build --network none` is the default of every step.
#[test]
fn host_network_is_an_entitlement() {
    let k = kiln();
    let ctx = k.path("ctx");
    k.write(
        "ctx/Dockerfile",
        "FROM busybox\nRUN --network=host cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /ifaces\n",
    );
    let ctx = ctx.to_str().unwrap();
    for network in ["default", "none", "host"] {
        let err = k.fails(&["build", "-q", "--network", network, ctx]);
        assert!(err.contains("Dockerfile:2:1"), "{err}");
        assert!(err.contains("network.host is not allowed"), "{err}");
        assert!(err.contains("--allow network.host"), "{err}");
    }
    k.ok(&[
        "build",
        "-q",
        "-t",
        "hostnet",
        "--network",
        "none",
        "--allow",
        "network.host",
        ctx,
    ]);
    let ifaces = k.ok(&["run", "--rm", "hostnet", "cat", "/ifaces"]);
    assert!(
        ifaces.lines().any(|l| l != "lo"),
        "the host's network: {ifaces}"
    );
    k.write(
        "ctx/Dockerfile",
        "FROM busybox\nRUN --network=default cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /ifaces\n",
    );
    k.ok(&["build", "-q", "-t", "none", "--network", "none", ctx]);
    assert_eq!(k.ok(&["run", "--rm", "none", "cat", "/ifaces"]), "lo\n");
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_store_is_private_and_an_old_one_is_tightened() {
    let k = kiln();
    let root = k.root();
    for d in ["", "blobs", "snapshots", "tmp", "containers"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    assert_eq!(mode(&root.join("meta.db")), 0o600);
    k.ok(&["run", "--rm", "busybox", "true"]);
    // Another user cannot even look.
    let snapshots = root.join("snapshots");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "ls"])
        .arg(&snapshots)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "nobody listed {}",
        snapshots.display()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    // A store from before: world-readable, tightened at first use.
    for d in ["", "snapshots", "blobs"] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(root.join("meta.db"), fs::Permissions::from_mode(0o644)).unwrap();
    let check = k.ok(&["system", "check"]);
    assert!(
        check.contains("fixed:") && check.contains("had mode 0755"),
        "{check}"
    );
    for d in ["", "snapshots", "blobs"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    assert_eq!(mode(&root.join("meta.db")), 0o600);
}

/// `kiln prune -a` while a container runs: the container's root
/// filesystem (the image's snapshots) must not lose a file.
#[test]
fn prune_never_takes_what_a_container_runs_on() {
    let k = kiln();
    let child = k
        .cmd()
        .args([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "for i in $(seq 40); do ls /bin | wc -l; sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // rmi refuses (docker's conflict); prune -a drops the image anyway,
    // and the snapshots must stay while the container runs on them.
    let refused = k.fails(&["rmi", "-f", "busybox"]);
    assert!(refused.contains("running container"), "{refused}");
    for _ in 0..3 {
        k.ok(&["prune", "-a", "-f"]);
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let counts: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(counts.len(), 40);
    assert!(counts.iter().all(|c| *c == counts[0]), "{counts:?}");
    assert!(counts[0].trim().parse::<u32>().unwrap() > 50);
    // Once it is gone, prune takes everything.
    k.ok(&["prune", "-a", "-f"]);
    assert_eq!(fs::read_dir(k.root().join("snapshots")).unwrap().count(), 0);
    k.ok(&["system", "check"]);
}

/// The largest blob of the store (busybox's layer).
fn layer_blob(k: &Kiln) -> std::path::PathBuf {
    fs::read_dir(k.root().join("blobs/sha256"))
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path()
}

#[test]
fn save_refuses_corrupt_blobs() {
    let k = kiln();
    let blob = layer_blob(&k);
    let good = fs::read(&blob).unwrap();
    let name = blob.file_name().unwrap().to_string_lossy().into_owned();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x40;
    for (what, bytes) in [
        ("flipped", flipped),
        ("truncated", good[..good.len() - 100].to_vec()),
    ] {
        fs::write(&blob, &bytes).unwrap();
        let tar = k.path("out.tar");
        let err = k.fails(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
        assert!(
            err.contains(&name) && err.contains("corrupt"),
            "{what}: {err}"
        );
        assert!(!tar.exists(), "{what}: a half-written archive");
        let dir = k.path("out-dir");
        let err = k.fails(&[
            "save",
            "--format",
            "oci-dir",
            "-o",
            dir.to_str().unwrap(),
            "busybox",
        ]);
        assert!(err.contains("corrupt"), "{what}: {err}");
        assert!(!dir.exists(), "{what}: a half-written layout");
    }
    fs::write(&blob, &good).unwrap();
    k.ok(&["save", "-o", k.path("out.tar").to_str().unwrap(), "busybox"]);
}

#[test]
fn a_lost_database_is_reported_not_taken_for_an_empty_store() {
    let k = kiln();
    k.ok(&["run", "--rm", "busybox", "true"]);
    let snapshots = fs::read_dir(k.root().join("snapshots")).unwrap().count();
    assert!(snapshots > 0);
    for lose in ["delete", "empty"] {
        let db = k.root().join("meta.db");
        let saved = fs::read(&db).unwrap();
        for f in ["meta.db-wal", "meta.db-shm"] {
            let _ = fs::remove_file(k.root().join(f));
        }
        match lose {
            "delete" => fs::remove_file(&db).unwrap(),
            _ => fs::write(&db, b"").unwrap(),
        }
        for cmd in [
            &["system", "check"][..],
            &["prune", "-a", "-f"],
            &["images"],
        ] {
            let err = k.fails(cmd);
            assert!(
                err.contains("meta.db") && err.contains("every image"),
                "{cmd:?}: {err}"
            );
        }
        assert_eq!(
            fs::read_dir(k.root().join("snapshots")).unwrap().count(),
            snapshots
        );
        fs::write(&db, saved).unwrap();
        k.ok(&["system", "check"]);
    }
}

#[test]
fn hostile_dockerfiles_fail_cleanly_and_quietly() {
    let k = kiln();
    let ctx = k.path("ctx");
    let ctx_s = ctx.to_str().unwrap();
    // 30,000 nested expansions: an error at the line, not a stack overflow.
    let deep = format!(
        "FROM busybox\nENV X={}x{}\n",
        "${a:-".repeat(30_000),
        "}".repeat(30_000)
    );
    k.write("ctx/Dockerfile", deep);
    let err = k.fails(&["build", ctx_s]);
    assert!(
        err.contains("Dockerfile:2:1") && err.contains("nested deeper than 100"),
        "{}",
        &err[..err.len().min(500)]
    );
    assert!(
        err.len() < 1500,
        "the error repeats the whole line: {} bytes",
        err.len()
    );
    // An unknown platform is an error, not a host build.
    k.write(
        "ctx/Dockerfile",
        "FROM --platform=foo/bar busybox\nRUN true\n",
    );
    let err = k.fails(&["build", ctx_s]);
    assert!(
        err.contains("Dockerfile:1:1") && err.contains("unknown operating system"),
        "{err}"
    );
    // Escape sequences from the Dockerfile and from a step's output never
    // reach the terminal raw.
    k.write(
        "ctx/Dockerfile",
        "FROM busybox\nRUN printf '\\033]0;pwned\\007\\033[2J\\n' && echo \"\u{1b}[31m\" && exit 3\n",
    );
    let out = k.out(&["build", "--progress", "plain", ctx_s]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("\\x1b]0;pwned\\x07"), "{}", out.stderr);
    assert!(
        !out.stderr.contains('\u{1b}') && !out.stderr.contains('\u{7}'),
        "{}",
        out.stderr
    );
}

#[test]
fn damaged_snapshots_are_rebuilt_and_bad_layers_named() {
    let k = kiln();
    k.ok(&["run", "--rm", "busybox", "true"]);
    let snap = fs::read_dir(k.root().join("snapshots"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().len() == 64)
        .unwrap()
        .path();
    // A file where the snapshot directory was: unpacked again from its blob.
    fs::remove_dir_all(&snap).unwrap();
    fs::write(&snap, b"not a directory").unwrap();
    assert_eq!(
        k.ok(&["run", "--rm", "busybox", "cat", "/etc/passwd"])
            .lines()
            .next()
            .unwrap()
            .split(':')
            .next(),
        Some("root")
    );
    assert!(snap.is_dir());
    // A corrupt layer blob: the error names the layer, not a temp dir.
    fs::remove_dir_all(&snap).unwrap();
    let blob = layer_blob(&k);
    let mut bytes = fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 64].fill(0x55);
    fs::write(&blob, bytes).unwrap();
    let err = k.fails(&["run", "--rm", "busybox", "true"]);
    let name = blob.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&format!("layer sha256:{name}")), "{err}");
    assert!(!err.contains("unpack-"), "{err}");
}

/// A destination (or an archive entry) under a symlink the Dockerfile
/// planted is followed inside the image, never on the host: `COPY f
/// /evil/` with `/evil -> /tmp/<host path>` (dangling in the image) makes
/// that path in the image, and an ADDed tar's `evil/x` lands there too.
#[test]
fn copies_through_planted_symlinks_stay_in_the_image() {
    let k = kiln();
    let host = k.path("host-target");
    let host_s = host.display().to_string();
    assert!(!host.exists());
    // And one to a host directory that exists: only resolving inside the
    // image's root keeps the copy out of it.
    let existing = k.path("host-existing");
    fs::create_dir_all(&existing).unwrap();
    let planted = k.path("planted");
    fs::create_dir_all(&planted).unwrap();
    std::os::unix::fs::symlink(&host, planted.join("evil")).unwrap();
    std::os::unix::fs::symlink(&existing, planted.join("evil2")).unwrap();
    let tar = k.write_ctx("links.tar", []);
    let ok = std::process::Command::new("tar")
        .arg("-C")
        .arg(&planted)
        .arg("-cf")
        .arg(&tar)
        .arg("evil")
        .arg("evil2")
        .status()
        .unwrap();
    assert!(ok.success());
    let payload = k.path("payload");
    fs::create_dir_all(payload.join("evil")).unwrap();
    fs::write(payload.join("evil/from-tar"), "t").unwrap();
    let ok = std::process::Command::new("tar")
        .arg("-C")
        .arg(&payload)
        .arg("-cf")
        .arg(k.ctx().join("payload.tar"))
        .arg("evil/from-tar")
        .status()
        .unwrap();
    assert!(ok.success());
    k.write_ctx("f", "copied");
    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nADD links.tar /\nCOPY f /evil/\nCOPY f /evil2/\nADD payload.tar /\n",
    );
    k.build(&["-t", "planted"]);
    assert!(!host.exists(), "{host_s} was made on the host");
    assert!(
        !existing.join("f").exists(),
        "COPY wrote into the host's {}",
        existing.display()
    );
    let existing_s = existing.display().to_string();
    assert_eq!(
        k.run_rm(&["planted", "cat", &format!("{existing_s}/f")]),
        "copied"
    );
    let inside = k.run_rm(&[
        "planted",
        "cat",
        &format!("{host_s}/f"),
        &format!("{host_s}/from-tar"),
    ]);
    assert_eq!(inside, "copiedt");
}
