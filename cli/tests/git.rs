//! `ADD <git-url>` (issue 20) against repositories this test serves on
//! 127.0.0.1: `git daemon` (git://) and a dumb HTTP server (Python's
//! http.server over a bare repository after `git update-server-info`).
//! Branches, tags, commits, subdirectories, `--keep-git-dir`, submodules,
//! `--checksum`, and the cache: a hit when the ref has not moved, a
//! rerun when it has.

use kiln_tests::{free_port, wait_for_port, Kiln, Reaped};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn kiln() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "user.name=t",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `base/repo.git` (main: a.txt, sub/b.txt, tag v1; a submodule `lib`
/// from `base/lib.git`) and its work tree, served by git daemon and a
/// dumb HTTP server.
struct Repos {
    work: PathBuf,
    bare: PathBuf,
    git_url: String,
    http_url: String,
    _servers: Vec<Reaped>,
}

fn repos(k: &Kiln) -> Repos {
    let base = k.path("git");
    std::fs::create_dir_all(&base).unwrap();
    let lib = base.join("libwork");
    std::fs::create_dir_all(&lib).unwrap();
    git(&lib, &["init", "-q", "-b", "main"]);
    std::fs::write(lib.join("lib.txt"), "from the submodule\n").unwrap();
    git(&lib, &["add", "."]);
    git(&lib, &["commit", "-qm", "lib"]);
    git(&base, &["clone", "-q", "--bare", "libwork", "lib.git"]);
    let work = base.join("work");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("a.txt"), "one\n").unwrap();
    std::fs::write(work.join("sub/b.txt"), "inner\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "one"]);
    git(&work, &["tag", "-a", "v1", "-m", "v1"]);
    let bare = base.join("repo.git");
    git(&base, &["clone", "-q", "--bare", "work", "repo.git"]);
    git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    let port = free_port();
    let mut daemon = Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(&base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http_port = free_port();
    let mut http = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &http_port.to_string(),
        ])
        .current_dir(&base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut daemon, "git daemon");
    wait_for_port(http_port, &mut http, "python3 -m http.server");
    git(&bare, &["update-server-info"]);
    Repos {
        work,
        bare,
        git_url: format!("git://127.0.0.1:{port}/repo.git"),
        http_url: format!("http://127.0.0.1:{http_port}/repo.git"),
        _servers: vec![Reaped(daemon), Reaped(http)],
    }
}

/// Commits in the work tree and pushes to the served repository.
fn push_change(r: &Repos, file: &str, text: &str) -> String {
    std::fs::write(r.work.join(file), text).unwrap();
    git(&r.work, &["add", "."]);
    git(&r.work, &["commit", "-qm", "change"]);
    git(&r.work, &["push", "-q", "origin", "main"]);
    git(&r.bare, &["update-server-info"]);
    git(&r.work, &["rev-parse", "HEAD"])
}

fn build(k: &Kiln, dockerfile: &str) -> (String, String) {
    k.write_ctx("Dockerfile", dockerfile);
    let ctx = k.ctx();
    let out = k.out(&["build", "--progress", "plain", "-q", ctx.to_str().unwrap()]);
    let out2 = k.out(&["build", "--progress", "plain", ctx.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    (out.stdout.trim().to_string(), out2.stderr)
}

#[test]
fn add_takes_branches_tags_commits_and_subdirectories() {
    let k = kiln();
    let r = repos(&k);
    let first = git(&r.work, &["rev-parse", "HEAD"]);
    let df = format!(
        "FROM busybox\nADD {g}#main /branch\nADD {g}#v1:sub /tag-sub\nADD {g}#{first} /commit\nADD {h}?ref=main&subdir=sub /http-sub\nADD --keep-git-dir {g} /kept\n",
        g = r.git_url,
        h = r.http_url
    );
    let (image, _) = build(&k, &df);
    let look = "cat /branch/a.txt /tag-sub/b.txt /commit/a.txt /http-sub/b.txt; \
                test -e /branch/.git || echo no-git-dir; cat /kept/.git/HEAD >/dev/null && echo kept";
    assert_eq!(
        k.run_rm(&[&image, "sh", "-c", look]),
        "one\ninner\none\ninner\nno-git-dir\nkept\n"
    );
    // --checksum: the ref must be that commit.
    k.write_ctx(
        "Dockerfile",
        format!(
            "FROM busybox\nADD --checksum=0123456789abcdef {}#main /x\n",
            r.git_url
        ),
    );
    let err = k.fails(&["build", k.ctx().to_str().unwrap()]);
    assert!(
        err.contains("expected checksum to match 0123456789abcdef") && err.contains(&first),
        "{err}"
    );
    k.write_ctx(
        "Dockerfile",
        format!(
            "FROM busybox\nADD --checksum={} {}#main /x\n",
            &first[..12],
            r.git_url
        ),
    );
    k.ok(&["build", "-q", k.ctx().to_str().unwrap()]);
    k.write_ctx(
        "Dockerfile",
        format!("FROM busybox\nADD {}#nosuchbranch /x\n", r.git_url),
    );
    let err = k.fails(&["build", k.ctx().to_str().unwrap()]);
    assert!(
        err.contains("no branch or tag named \"nosuchbranch\""),
        "{err}"
    );
}

#[test]
fn an_unmoved_ref_is_a_cache_hit_and_a_moved_one_reruns() {
    let k = kiln();
    let r = repos(&k);
    let df = format!(
        "FROM busybox\nADD {}#main /src\nRUN cat /src/a.txt > /seen\n",
        r.git_url
    );
    let (first, progress) = build(&k, &df);
    assert!(progress.contains("CACHED"), "{progress}");
    assert_eq!(k.run_rm(&[&first, "cat", "/seen"]), "one\n");
    push_change(&r, "a.txt", "two\n");
    let (second, _) = build(&k, &df);
    assert_ne!(first, second);
    assert_eq!(k.run_rm(&[&second, "cat", "/seen"]), "two\n");
}

#[test]
fn submodules_come_along_unless_turned_off() {
    let k = kiln();
    let r = repos(&k);
    let lib_url = format!("{}/../lib.git", r.git_url.trim_end_matches("/repo.git"));
    let lib_url = lib_url.replace("/../", "/");
    git(&r.work, &["submodule", "add", "-q", &lib_url, "lib"]);
    git(&r.work, &["commit", "-qm", "submodule"]);
    git(&r.work, &["push", "-q", "origin", "main"]);
    let df = format!(
        "FROM busybox\nADD {g}#main /with\nADD {g}?ref=main&submodules=false /without\n",
        g = r.git_url
    );
    let (image, _) = build(&k, &df);
    let out = k.run_rm(&[
        &image,
        "sh",
        "-c",
        "cat /with/lib/lib.txt; ls /without/lib | wc -l",
    ]);
    assert_eq!(out, "from the submodule\n0\n");
}

fn context_tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn contexts_from_git_a_tarball_url_and_stdin() {
    let k = kiln();
    let r = repos(&k);
    std::fs::write(
        r.work.join("sub/Dockerfile"),
        "FROM busybox\nCOPY b.txt /b\n",
    )
    .unwrap();
    std::fs::write(
        r.work.join("sub/Other.Dockerfile"),
        "FROM busybox\nCOPY b.txt /other\n",
    )
    .unwrap();
    push_change(&r, "a.txt", "one\n");
    // A git URL with a ref and a directory; -f relative to it.
    let image = k.ok(&["build", "-q", &format!("{}#main:sub", r.git_url)]);
    assert_eq!(k.run_rm(&[image.trim(), "cat", "/b"]), "inner\n");
    let image = k.ok(&[
        "build",
        "-q",
        "-f",
        "Other.Dockerfile",
        &format!("{}#main:sub", r.git_url),
    ]);
    assert_eq!(k.run_rm(&[image.trim(), "cat", "/other"]), "inner\n");
    // A tarball served on loopback.
    let tar = context_tar(&[
        ("Dockerfile", "FROM busybox\nCOPY f /f\n"),
        ("f", "from the tarball\n"),
    ]);
    std::fs::write(r.bare.parent().unwrap().join("ctx.tar"), &tar).unwrap();
    let url = r.http_url.replace("/repo.git", "/ctx.tar");
    let image = k.ok(&["build", "-q", &url]);
    assert_eq!(k.run_rm(&[image.trim(), "cat", "/f"]), "from the tarball\n");
    // A tar on stdin.
    use std::io::Write;
    let mut child = k
        .cmd()
        .args(["build", "-q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(k.run_rm(&[&image, "cat", "/f"]), "from the tarball\n");
    let err = k.fails(&["build", "-f", "-", "-"]);
    assert!(err.contains("cannot both read standard input"), "{err}");
}

/// `--build-context` (buildx's named contexts) of each kind, as
/// BuildKit's dockerfile_namedcontext_test.go asserts them: an image for
/// a base image's name (the stage's RUN runs on it), a local directory
/// for a stage's name (the stage is replaced; the directory's own
/// .dockerignore applies), a git repository and an https file for names
/// `COPY --from` uses.
#[test]
fn named_contexts_of_each_kind() {
    let k = kiln();
    let r = repos(&k);
    // An image to stand in for busybox: busybox with a marker file.
    k.write_ctx("Dockerfile", "FROM busybox\nRUN echo marked > /marker\n");
    let ctx = k.ctx();
    k.ok(&["build", "-q", "-t", "marked", ctx.to_str().unwrap()]);

    let dir = k.path("named");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("out"), "from the directory\n").unwrap();
    std::fs::write(dir.join("out2"), "ignored\n").unwrap();
    std::fs::write(dir.join(".dockerignore"), "out2\n").unwrap();
    std::fs::write(r.bare.parent().unwrap().join("file.txt"), "downloaded\n").unwrap();
    let file_url = r.http_url.replace("/repo.git", "/file.txt");

    k.write_ctx(
        "Dockerfile",
        "FROM docker.io/library/busybox:latest AS base\nRUN cat /marker > /seen\n\
         FROM busybox AS files\nRUN false\n\
         FROM busybox\nCOPY --from=base /seen /seen\nCOPY --from=files /o* /files/\n\
         COPY --from=repo /sub/b.txt /repo-b\nCOPY --from=dl /context /dl\n\
         RUN --mount=from=repo,target=/r cp /r/a.txt /repo-a\n",
    );
    // The same four contexts for both builds.
    let build = || {
        k.ok(&[
            "build",
            "-q",
            "--build-context",
            "busybox=docker-image://marked",
            "--build-context",
            &format!("files={}", dir.display()),
            "--build-context",
            &format!("repo={}#v1", r.git_url),
            "--build-context",
            &format!("dl={file_url}"),
            ctx.to_str().unwrap(),
        ])
    };
    let image = build();
    let image = image.trim();
    assert_eq!(k.run_rm(&[image, "cat", "/seen"]), "marked\n");
    // The final stage's FROM busybox is the named image too.
    assert_eq!(k.run_rm(&[image, "cat", "/marker"]), "marked\n");
    assert_eq!(k.run_rm(&[image, "ls", "/files"]), "out\n");
    assert_eq!(k.run_rm(&[image, "cat", "/repo-b"]), "inner\n");
    assert_eq!(k.run_rm(&[image, "cat", "/repo-a"]), "one\n");
    assert_eq!(k.run_rm(&[image, "cat", "/dl"]), "downloaded\n");

    // A changed file in the named directory reruns what reads it.
    std::fs::write(dir.join("out"), "changed\n").unwrap();
    let image = build();
    assert_eq!(k.run_rm(&[image.trim(), "cat", "/files/out"]), "changed\n");

    // Bad values name the flag.
    let err = k.fails(&["build", "--build-context", "x", ctx.to_str().unwrap()]);
    assert!(
        err.contains("--build-context x: expected NAME=VALUE"),
        "{err}"
    );
    let err = k.fails(&[
        "build",
        "--build-context",
        "x=oci-layout://a",
        ctx.to_str().unwrap(),
    ]);
    assert!(
        err.contains("unsupported context source oci-layout://"),
        "{err}"
    );
    let err = k.fails(&[
        "build",
        "--build-context",
        &format!("files={}", k.path("missing").display()),
        ctx.to_str().unwrap(),
    ]);
    assert!(err.contains("missing"), "{err}");
}
