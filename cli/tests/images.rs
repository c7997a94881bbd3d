//! The image commands end to end, checked with independent tools from
//! Debian: skopeo, umoci and podman (run with runc: this host's hybrid
//! cgroups make crun refuse). CI installs them; a missing tool fails the
//! test rather than skipping it.

use kiln_tests::{tool as run, tool_path, Kiln};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn env() -> Kiln {
    Kiln::new(env!("CARGO_BIN_EXE_kiln"))
}

/// A busybox root filesystem (Debian's busybox-static) and its tarball.
fn busybox(env: &Kiln) -> (PathBuf, PathBuf) {
    let root = env.path("rootfs");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(tool_path("busybox"), root.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "cat", "ls", "id", "true"] {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").unwrap();
    fs::write(root.join("etc/motd"), "built by kiln\n").unwrap();
    let tarball = env.path("rootfs.tar");
    run(
        "tar",
        &[
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ],
    );
    (root, tarball)
}

/// Path → (kind, mode, size, content digest or link target) for a tree.
fn listing(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else {
                format!("file {}", kiln_store::Digest::of(&fs::read(&p).unwrap()))
            };
            out.insert(
                rel,
                format!("{what} {:o} uid={}", m.mode() & 0o7777, m.uid()),
            );
        }
    }
    out
}

#[test]
fn import_inspect_history_tag_rmi() {
    let env = env();
    let (_, tarball) = busybox(&env);
    let id = env.ok(&[
        "import",
        tarball.to_str().unwrap(),
        "example.com/kiln/bb:1",
        "--change",
        "CMD [\"sh\"]",
        "--change",
        "ENV A=1 B=\"two words\"",
        "--change",
        "WORKDIR /srv",
        "--change",
        "EXPOSE 8080",
        "--change",
        "LABEL org.example=yes",
        "--change",
        "ONBUILD RUN echo hi",
        "--message",
        "from busybox-static",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    // Unpacked at import, as load leaves images: the first build or run
    // from it starts without unpacking.
    let snapshots = std::fs::read_dir(env.root().join("snapshots")).unwrap();
    assert_eq!(snapshots.count(), 1);
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "example.com/kiln/bb:1"])).unwrap();
    let i = &inspect[0];
    assert_eq!(i["Id"], id.trim());
    assert_eq!(i["RepoTags"], serde_json::json!(["example.com/kiln/bb:1"]));
    assert_eq!(i["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(
        i["Config"]["Env"],
        serde_json::json!(["A=1", "B=two words"])
    );
    assert_eq!(i["Config"]["WorkingDir"], "/srv");
    assert_eq!(
        i["Config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );
    assert_eq!(
        i["Config"]["Labels"],
        serde_json::json!({"org.example": "yes"})
    );
    assert_eq!(i["Config"]["OnBuild"], serde_json::json!(["RUN echo hi"]));
    assert_eq!(i["Os"], "linux");
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert!(env
        .ok(&["history", "example.com/kiln/bb:1"])
        .contains("from busybox-static"));

    env.ok(&["tag", "example.com/kiln/bb:1", "bb:latest"]);
    let table = env.ok(&["images"]);
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert!(
        table.contains("example.com/kiln/bb") && table.contains("\nbb "),
        "{table}"
    );
    let json_lines = env.ok(&["images", "--format", "json"]);
    assert_eq!(json_lines.lines().count(), 2);
    let short = &id.trim()["sha256:".len().."sha256:".len() + 12];
    assert_eq!(env.ok(&["images", "-q"]).trim(), short);
    assert_eq!(env.ok(&["inspect", short]), env.ok(&["inspect", "bb"]));

    // Removing one name keeps the image; removing by ID needs --force while named twice.
    assert_eq!(env.ok(&["rmi", "bb"]), "Untagged: bb:latest\n");
    env.ok(&["tag", short, "bb:again"]);
    let out = env.kiln().args(["rmi", short]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    env.ok(&["rmi", "--force", short]);
    assert_eq!(env.ok(&["images", "-q"]), "");
    // prune asks first: anything but yes (or no answer) removes nothing.
    for answer in ["", "n\n", "whatever\n"] {
        let out = env
            .kiln()
            .arg("prune")
            .write_stdin(answer)
            .output()
            .unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Are you sure you want to continue? [y/N]")
                && err.contains("Nothing removed."),
            "{err}"
        );
    }
    let yes = env.kiln().arg("prune").write_stdin("y\n").output().unwrap();
    assert!(String::from_utf8_lossy(&yes.stdout).contains("Deleted blobs: 3"));
    assert!(env.ok(&["prune", "-f"]).contains("Deleted blobs: 0"));
    env.ok(&["system", "check"]);
}

#[test]
fn clear_errors_for_unknown_images_and_bad_references() {
    let env = env();
    let out = env.kiln().args(["inspect", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: no such image: nope:latest\n"
    );
    let out = env
        .kiln()
        .args(["tag", "nope", "Bad/Name"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = env
        .kiln()
        .args(["import", "/nonexistent.tar", "Bad"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: invalid reference \"Bad\": repository name must be lowercase\n"
    );
    let out = env
        .kiln()
        .args(["load", "-i", "/nonexistent.tar"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent.tar"));
}

#[test]
fn save_is_byte_identical_and_accepted_by_skopeo_and_umoci() {
    let env = env();
    let (root, tarball) = busybox(&env);
    env.ok(&[
        "import",
        tarball.to_str().unwrap(),
        "bb:1",
        "--change",
        "CMD [\"sh\"]",
    ]);
    let (a, b) = (env.path("a.tar"), env.path("b.tar"));
    env.ok(&["save", "-o", a.to_str().unwrap(), "bb:1"]);
    env.ok(&["save", "-o", b.to_str().unwrap(), "bb:1"]);
    assert_eq!(
        fs::read(&a).unwrap(),
        fs::read(&b).unwrap(),
        "saving twice must give the same bytes"
    );
    // `kiln save | kiln load` through pipes (stdout and stdin).
    let piped = env.kiln().args(["save", "bb:1"]).output().unwrap();
    assert_eq!(
        piped.stdout,
        fs::read(&a).unwrap(),
        "save to stdout writes the same archive"
    );
    let other = self::env();
    let out = other
        .kiln()
        .args(["load"])
        .write_stdin(piped.stdout)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: bb:1\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let docker: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", a.display())],
    ))
    .unwrap();
    assert_eq!(docker["Architecture"], "amd64");
    assert_eq!(docker["Layers"].as_array().unwrap().len(), 1);
    let oci: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("oci-archive:{}:1", a.display())],
    ))
    .unwrap();
    assert_eq!(oci["Layers"].as_array().unwrap().len(), 1);
    let layout = env.path("layout");
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci-archive:{}:1", a.display()),
            &format!("oci:{}:1", layout.display()),
        ],
    );
    let bundle = env.path("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:1", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        listing(&bundle.join("rootfs")),
        listing(&root),
        "umoci unpacks exactly the imported tree"
    );
}

fn podman_name() -> String {
    format!(
        "localhost/kiln-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

#[test]
fn podman_loads_and_runs_kiln_save() {
    let env = env();
    let (_, tarball) = busybox(&env);
    let name = podman_name();
    env.ok(&[
        "import",
        tarball.to_str().unwrap(),
        &format!("{name}:v1"),
        "--change",
        "CMD [\"cat\", \"/etc/motd\"]",
    ]);
    let archive = env.path("out.tar");
    env.ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        &format!("{name}:v1"),
    ]);
    run("podman", &["load", "-q", "-i", archive.to_str().unwrap()]);
    let out = std::process::Command::new(tool_path("podman"))
        .args([
            "--runtime",
            tool_path("runc").to_str().unwrap(),
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            &format!("{name}:v1"),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = std::process::Command::new(tool_path("podman"))
        .args(["rmi", "-f", &format!("{name}:v1")])
        .output();
    assert!(
        out.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "built by kiln\n");
}

#[test]
fn podman_saved_archives_load_with_every_file() {
    let env = env();
    let (root, tarball) = busybox(&env);
    let name = podman_name();
    run(
        "podman",
        &[
            "import",
            "-q",
            tarball.to_str().unwrap(),
            &format!("{name}:v1"),
        ],
    );
    for format in ["docker-archive", "oci-archive"] {
        let archive = env.path(&format!("{format}.tar"));
        run(
            "podman",
            &[
                "save",
                "-q",
                "--format",
                format,
                "-o",
                archive.to_str().unwrap(),
                &format!("{name}:v1"),
            ],
        );
        let store = self::env();
        let kiln = |args: &[&str]| {
            let out = store.cmd().args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{format}: kiln {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        let loaded = kiln(&["load", "-i", archive.to_str().unwrap()]);
        assert!(loaded.contains("kiln-test-"), "{format}: {loaded}");
        let snapshot = kiln(&["debug", "snapshots", &format!("{name}:v1")]);
        assert_eq!(
            listing(Path::new(snapshot.trim())),
            listing(&root),
            "{format}: files differ"
        );
        kiln(&["system", "check"]);
    }
    let _ = std::process::Command::new(tool_path("podman"))
        .args(["rmi", "-f", &format!("{name}:v1")])
        .output();
}

#[test]
fn killed_loads_leave_a_usable_store() {
    let env = env();
    let (root, _) = busybox(&env);
    // A large image: 96 MiB of incompressible data.
    let mut data = vec![0u8; 96 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    fs::write(root.join("big.bin"), &data).unwrap();
    drop(data);
    let tarball = env.path("big-rootfs.tar");
    run(
        "tar",
        &[
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tarball.to_str().unwrap(),
            ".",
        ],
    );
    env.ok(&["import", tarball.to_str().unwrap(), "big"]);
    let archive = env.path("big.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), "big"]);

    let other = self::env();
    let target = other.root();
    let kiln = || other.cmd();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for round in 0..8 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = std::time::Duration::from_millis(5 + (seed >> 33) % 600);
        let mut child = kiln()
            .args(["load", "-q", "-i", archive.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL: no chance to clean up
        let _ = child.wait();
        let check = kiln().args(["system", "check"]).output().unwrap();
        assert!(
            check.status.success(),
            "round {round} (killed after {delay:?}): {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
    let out = kiln()
        .args(["load", "-i", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = kiln().args(["system", "check"]).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    // No temp files survive a successful command after the kills.
    assert_eq!(fs::read_dir(target.join("tmp")).unwrap().count(), 0);
}

#[test]
fn oci_layout_directory_round_trip() {
    let env = env();
    let (root, tarball) = busybox(&env);
    env.ok(&["import", tarball.to_str().unwrap(), "bb:dir"]);
    let layout = env.path("layout");
    env.ok(&[
        "save",
        "--format",
        "oci-dir",
        "-o",
        layout.to_str().unwrap(),
        "bb:dir",
    ]);
    // A second save must not overwrite it.
    let out = env
        .kiln()
        .args([
            "save",
            "--format",
            "oci-dir",
            "-o",
            layout.to_str().unwrap(),
            "bb:dir",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let inspected: serde_json::Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("oci:{}:dir", layout.display())],
    ))
    .unwrap();
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 1);
    let bundle = env.path("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:dir", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(listing(&bundle.join("rootfs")), listing(&root));
    // And back into a fresh store.
    let other = self::env();
    let out = other
        .kiln()
        .args(["load", "-i", layout.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: bb:dir\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn device_nodes_are_skipped_without_cap_mknod() {
    // Root without CAP_MKNOD (as in a rootless or restricted setup): an
    // imported tarball with a device node loads, minus the node.
    let env = env();
    let (root, _) = busybox(&env);
    let tarball = env.path("dev.tar");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Char);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_mode(0o666);
    h.set_size(0);
    b.append_data(&mut h, "dev/null", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(3);
    b.append_data(&mut h, "etc/ok", &b"yes"[..]).unwrap();
    fs::write(&tarball, b.into_inner().unwrap()).unwrap();
    let _ = root;
    let out = std::process::Command::new(tool_path("setpriv"))
        .args(["--bounding-set=-mknod", "--inh-caps=-mknod"])
        .arg(env.bin())
        .arg("--root")
        .arg(env.root())
        .args(["import", tarball.to_str().unwrap(), "devs"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snap = env.ok(&["debug", "snapshots", "devs"]);
    let snap = Path::new(snap.trim());
    assert_eq!(fs::read_to_string(snap.join("etc/ok")).unwrap(), "yes");
    assert!(
        !snap.join("dev/null").exists(),
        "no device node may be created without CAP_MKNOD"
    );
}

#[test]
fn df_and_prune_all() {
    let env = env();
    let (_, tarball) = busybox(&env);
    env.ok(&["import", tarball.to_str().unwrap(), "a"]);
    env.ok(&["debug", "snapshots", "a"]);
    let df = env.ok(&["system", "df"]);
    let images_row = |df: &str| -> Vec<String> {
        df.lines()
            .find(|l| l.starts_with("Images "))
            .unwrap_or_else(|| panic!("{df}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // One image, no container uses it: all of it reclaimable.
    let row = images_row(&df);
    assert_eq!(row[1], "1", "{df}");
    assert_eq!(row[3], row[4], "{df}");
    assert!(
        env.ok(&["system", "df", "-v"]).contains("snapshots 1 "),
        "{df}"
    );
    let pruned = env.ok(&["prune", "-a", "-f"]);
    assert!(
        pruned.contains("Deleted images: 1") && pruned.contains("Deleted snapshots: 1"),
        "{pruned}"
    );
    assert_eq!(images_row(&env.ok(&["system", "df"]))[1], "0");
    assert_eq!(
        fs::read_dir(env.path("store/snapshots")).unwrap().count(),
        0
    );
    assert_eq!(
        fs::read_dir(env.path("store/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

/// docker's `--format` templates, `images REPO`, `--filter`, `--digests`,
/// `history --no-trunc`: each output as docker prints it for the same
/// template (docker 20.10's formatter: tabwriter columns, minimum width
/// 10, padding 3).
#[test]
fn go_template_formats_and_filters_print_what_docker_prints() {
    let env = env();
    env.import_busybox("example.com/kiln/bb:1", &["LABEL tier=base", "ENV A=1"]);
    env.ok(&["tag", "example.com/kiln/bb:1", "bb:latest"]);
    env.import_busybox("other", &[]);
    let id = env.inspect("bb")["Id"].as_str().unwrap().to_string();
    let short = &id["sha256:".len().."sha256:".len() + 12];
    let images = |args: &[&str]| env.ok(&[&["images"][..], args].concat());
    for (args, want) in [
        (
            vec!["--format", "{{.Repository}}:{{.Tag}}", "bb"],
            "bb:latest\n".to_string(),
        ),
        (
            vec!["--format", "{{.ID}}", "example.com/kiln/bb:1"],
            format!("{short}\n"),
        ),
        (
            vec!["--format", "table {{.Repository}}\\t{{.Tag}}", "bb"],
            "REPOSITORY   TAG\nbb           latest\n".to_string(),
        ),
        (
            vec![
                "--format",
                "{{.Repository}}",
                "--filter",
                "reference=*/kiln/*",
            ],
            "example.com/kiln/bb\n".to_string(),
        ),
        (
            vec![
                "--format",
                "{{.Repository}}",
                "--filter",
                "label=tier=base",
                "--filter",
                "reference=bb",
            ],
            "bb\n".to_string(),
        ),
        (
            vec!["--format", "{{.Repository}}", "--filter", "dangling=true"],
            String::new(),
        ),
        (
            vec!["nothing-like-this"],
            "REPOSITORY   TAG   IMAGE ID   CREATED   SIZE   PLATFORM\n".to_string(),
        ),
    ] {
        assert_eq!(images(&args), want, "images {args:?}");
    }
    let digests = images(&["--digests", "bb"]);
    let digest = env.inspect("bb")["RepoDigests"].clone();
    assert!(
        digests.starts_with("REPOSITORY   TAG      DIGEST"),
        "{digests}"
    );
    assert!(digests.contains("sha256:"), "{digests} {digest}");
    // inspect -f: one line per object.
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.Id}}", "bb", "other"])
            .lines()
            .next(),
        Some(id.as_str())
    );
    assert_eq!(
        env.ok(&[
            "inspect",
            "--format",
            "{{json .Config.Labels}} {{index .Config.Env 0}}",
            "bb"
        ]),
        "{\"tier\":\"base\"} A=1\n"
    );
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.Os}}/{{.Architecture}}", "bb"]),
        "linux/amd64\n"
    );
    // A template error names the flag.
    let err = env.fails(&["inspect", "-f", "{{.Id", "bb"]);
    assert!(err.contains("--format \"{{.Id\": template:"), "{err}");
    // history: newest first, the image's ID on top, --no-trunc whole.
    let h = env.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.CreatedBy}}",
        "bb",
    ]);
    let first = h.lines().next().unwrap();
    assert!(first.starts_with(&id), "{h}");
    assert!(env.ok(&["history", "-q", "bb"]).trim() == short);
    let table = env.ok(&["history", "bb"]);
    assert!(table.starts_with("IMAGE "), "{table}");
}
