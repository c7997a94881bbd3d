//! `kiln build` end to end: every test builds real images from a busybox
//! base (Debian's busybox-static), then checks them with `kiln run`,
//! `kiln inspect`, the files on disk, and independent tools (skopeo,
//! umoci).

use kiln_tests::{tool, FileServer, Kiln};
use serde_json::Value;
use sha2::Digest as _;
use std::fs;
use std::path::Path;

/// A store holding `busybox`, and an empty context directory.
fn env() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

#[test]
fn multi_stage_target_copy_from_and_parallel_stages() {
    let env = env();
    // Stages a and b meet at a rendezvous in a shared cache mount: each
    // waits for the other's marker, so the build only succeeds when they
    // run at the same time. The wait is bounded only so a sequential
    // solver fails instead of hanging.
    let wait = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,target=/rv,id=rendezvous touch /rv/{me} && i=0; \
             while [ ! -e /rv/{other} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
             test -e /rv/{other} && echo {me} > /out"
        )
    };
    env.write_ctx(
        "Dockerfile",
        format!(
            "FROM busybox AS a\n{}\n\nFROM busybox AS b\n{}\n\n\
             FROM busybox AS unused\nRUN exit 1\n\n\
             FROM busybox\nCOPY --from=a /out /a\nCOPY --from=1 /out /b\n\
             RUN cat /a /b > /both\nCMD [\"cat\", \"/both\"]\n",
            wait("a", "b"),
            wait("b", "a")
        ),
    );
    env.build(&["-t", "multi"]);
    assert_eq!(env.run_rm(&["multi"]), "a\nb\n");
    // --target builds only what the stage needs.
    env.build(&["--target", "a", "-t", "only-a"]);
    assert_eq!(env.run_rm(&["only-a", "cat", "/out"]), "a\n");
    assert!(env
        .run_rm(&["only-a", "sh", "-c", "ls /a 2>&1 || true"])
        .contains("No such file"));
    // An unknown --target: the golden case fixtures/lower/target-missing.
}

#[test]
fn cache_reruns_exactly_the_invalidated_steps() {
    let env = env();
    env.write_ctx("early.txt", "early\n");
    env.write_ctx("late.txt", "late v1\n");
    env.write_ctx("unrelated.txt", "not copied\n");
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\n\
         COPY early.txt /\n\
         RUN --mount=type=cache,target=/c,id=counter echo s1 >> /c/log && echo one > /one\n\
         COPY late.txt /\n\
         RUN --mount=type=cache,target=/c,id=counter echo s2 >> /c/log && cat /one /late.txt > /two\n",
    );
    let (id1, _) = env.build(&["-t", "c"]);
    assert_eq!(env.cache_log("counter"), ["s1", "s2"]);
    // Identical: nothing runs, same image ID.
    let (id2, progress) = env.build(&["-t", "c"]);
    assert_eq!(env.cache_log("counter"), ["s1", "s2"]);
    assert_eq!(id1, id2);
    assert!(progress.contains("CACHED"), "{progress}");
    // A context file no COPY reads: still nothing runs.
    env.write_ctx("unrelated.txt", "changed\n");
    let (id3, _) = env.build(&["-t", "c"]);
    assert_eq!(env.cache_log("counter"), ["s1", "s2"]);
    assert_eq!(id1, id3);
    // The late file: only the steps from its COPY on.
    env.write_ctx("late.txt", "late v2\n");
    env.build(&["-t", "c"]);
    assert_eq!(env.cache_log("counter"), ["s1", "s2", "s2"]);
    assert_eq!(env.run_rm(&["c", "cat", "/two"]), "one\nlate v2\n");
    // --no-cache runs everything; --no-cache-filter only that stage.
    env.build(&["--no-cache", "-t", "c"]);
    assert_eq!(env.cache_log("counter"), ["s1", "s2", "s2", "s1", "s2"]);
    env.build(&["--no-cache-filter", "0", "-t", "c"]);
    assert_eq!(
        env.cache_log("counter").len(),
        7,
        "the filtered stage reran"
    );
    env.build(&["--no-cache-filter", "other", "-t", "c"]);
    assert_eq!(
        env.cache_log("counter").len(),
        7,
        "other stages' filters change nothing"
    );
}

#[test]
fn source_date_epoch_builds_are_reproducible_and_valid_oci() {
    let env = env();
    env.write_ctx("f.txt", "content\n");
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\nCOPY f.txt /f.txt\nRUN touch /now && echo made > /made\nCMD [\"cat\", \"/made\"]\n",
    );
    let build = |out: &str| {
        let o = env
            .kiln()
            .env("SOURCE_DATE_EPOCH", "0")
            .args(["build", "-q", "--no-cache", "-t", "repro", "-o"])
            .arg(format!("type=oci,dest={}", env.path(out).display()))
            .arg(env.ctx())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let a = build("a.tar");
    let b = build("b.tar");
    assert_eq!(a, b, "same inputs + SOURCE_DATE_EPOCH=0 → same image ID");
    assert_eq!(
        fs::read(env.path("a.tar")).unwrap(),
        fs::read(env.path("b.tar")).unwrap()
    );
    let cfg = env.inspect("repro");
    assert_eq!(cfg["Created"], "1970-01-01T00:00:00Z");
    // Independent checks: skopeo reads the archive, umoci unpacks it.
    let tar = env.path("a.tar");
    let info: Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", tar.display())],
    ))
    .unwrap();
    assert_eq!(info["Layers"].as_array().unwrap().len(), 3);
    let layout = env.path("layout");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("docker-archive:{}", tar.display()),
            &format!("oci:{}:x", layout.display()),
        ],
    );
    let bundle = env.path("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/made")).unwrap(),
        "made\n"
    );
    assert_eq!(
        fs::read_to_string(bundle.join("rootfs/f.txt")).unwrap(),
        "content\n"
    );
}

#[test]
fn metadata_instructions_shape_the_config() {
    let env = env();
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\n\
         MAINTAINER someone@example.com\n\
         LABEL a=1 \"b c\"=\"2 3\"\n\
         ENV P=/p Q=\"x y\"\n\
         EXPOSE 80 53/udp\n\
         VOLUME /data\n\
         WORKDIR /srv\n\
         WORKDIR app\n\
         USER nobody\n\
         STOPSIGNAL SIGINT\n\
         HEALTHCHECK --interval=5s --retries=2 CMD true\n\
         SHELL [\"/bin/sh\", \"-ec\"]\n\
         ONBUILD RUN echo triggered > /tmp/trig\n\
         ENTRYPOINT [\"/bin/echo\"]\n\
         CMD echo $P\n",
    );
    env.build(&["-t", "meta", "--label", "extra=yes"]);
    // The config these instructions make is the golden case
    // fixtures/lower/metadata-shapes-the-config; here, what needs a run.
    // WORKDIR made the directory; the image runs as configured.
    assert_eq!(env.run_rm(&["meta"]), "/bin/sh -ec echo $P\n");
    assert_eq!(env.run_rm(&["--entrypoint", "pwd", "meta"]), "/srv/app\n");
    // History: one entry per instruction, layers only where files changed.
    let history = env.ok(&["history", "meta"]);
    assert!(history.contains("LABEL a=1"), "{history}");

    // ONBUILD fires in a build that starts from the image.
    env.write_ctx("Dockerfile", "FROM meta\nUSER root\nRUN cat /tmp/trig\n");
    let (_, progress) = env.build(&["-t", "child"]);
    assert!(
        progress.contains("RUN echo triggered > /tmp/trig"),
        "{progress}"
    );
    assert_eq!(
        env.run_rm(&["--entrypoint", "cat", "child", "/tmp/trig"]),
        "triggered\n"
    );
    let child = env.inspect("child");
    assert!(
        child["Config"]["OnBuild"].is_null(),
        "triggers are consumed"
    );
}

#[test]
fn args_env_and_proxy_scoping() {
    let env = env();
    env.write_ctx(
        "Dockerfile",
        "ARG BASE=busybox\n\
         ARG GLOBAL=g\n\
         FROM $BASE\n\
         ARG GLOBAL\n\
         ARG LOCAL=default\n\
         ARG TARGETARCH\n\
         ARG OVERRIDDEN=arg\n\
         ENV OVERRIDDEN=env\n\
         RUN echo \"$GLOBAL $LOCAL $TARGETARCH $OVERRIDDEN ${HTTP_PROXY:-none}\" > /args\n",
    );
    env.build(&[
        "-t",
        "args",
        "--build-arg",
        "LOCAL=given",
        "--build-arg",
        "HTTP_PROXY=http://proxy.invalid:3128",
    ]);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    assert_eq!(
        env.run_rm(&["args", "cat", "/args"]),
        format!("g given {arch} env http://proxy.invalid:3128\n")
    );
    // Proxy values reach RUN but not the image or its history (the golden
    // case fixtures/lower/proxy-args-reach-run-not-image), nor the cache
    // key: another proxy still hits the cache.
    let (_, progress) = env.build(&[
        "-t",
        "args",
        "--build-arg",
        "LOCAL=given",
        "--build-arg",
        "HTTP_PROXY=http://other.invalid",
    ]);
    assert!(progress.contains("CACHED"), "{progress}");
    assert!(!progress.contains("DONE"), "{progress}");
}

#[test]
fn copy_and_add_semantics() {
    let env = env();
    env.write_ctx("src/a.txt", "a\n");
    env.write_ctx("src/b.md", "b\n");
    env.write_ctx("src/sub/c.txt", "c\n");
    env.write_ctx("ignored.log", "no\n");
    env.write_ctx("keep/x.log", "kept\n");
    env.write_ctx(".dockerignore", "*.log\n**/*.log\n!keep/x.log\n");
    // A tar for ADD to unpack.
    let tarball = env.ctx().join("bundle.tar");
    {
        let f = fs::File::create(&tarball).unwrap();
        let mut b = tar::Builder::new(f);
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o640);
        h.set_cksum();
        b.append_data(&mut h, "inner/file", &b"inside"[..]).unwrap();
        b.finish().unwrap();
    }
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\n\
         RUN mkdir -p /real && ln -s /real /linked\n\
         COPY src/*.txt /wild/\n\
         COPY src /contents\n\
         COPY src/a.txt /renamed.txt\n\
         COPY src/a.txt /linked/\n\
         COPY --chown=nobody:nobody --chmod=0600 src/b.md /owned\n\
         COPY --parents src/sub/c.txt /par/\n\
         COPY --exclude=*.md src /excl/\n\
         COPY . /ctx/\n\
         COPY <<EOF /heredoc.txt\nhello $HOSTNAME\nEOF\n\
         ADD bundle.tar /unpacked/\n\
         COPY --link src/a.txt /linked-copy/\n\
         WORKDIR /w\n\
         COPY src/a.txt rel.txt\n",
    );
    env.build(&["-t", "cp"]);
    let sh = |cmd: &str| env.run_rm(&["cp", "sh", "-c", cmd]);
    assert_eq!(sh("ls /wild"), "a.txt\n");
    assert_eq!(
        sh("cd /contents && find . | sort"),
        ".\n./a.txt\n./b.md\n./sub\n./sub/c.txt\n"
    );
    assert_eq!(sh("cat /renamed.txt"), "a\n");
    assert_eq!(
        sh("cat /real/a.txt"),
        "a\n",
        "dest symlinks resolve inside the image"
    );
    assert_eq!(sh("stat -c '%U:%G %a' /owned"), "nobody:nobody 600\n");
    assert_eq!(sh("cat /par/src/sub/c.txt"), "c\n");
    assert_eq!(sh("ls /excl"), "a.txt\nsub\n");
    assert_eq!(sh("ls /ctx | grep -c log || true"), "0\n");
    assert_eq!(sh("cat /ctx/keep/x.log"), "kept\n", "! re-includes");
    assert_eq!(
        sh("stat -c '%u:%g' /ctx/src/a.txt"),
        "0:0\n",
        "context files belong to root"
    );
    assert_eq!(sh("cat /heredoc.txt"), "hello \n");
    assert_eq!(
        sh("cat /unpacked/inner/file; stat -c %a /unpacked/inner/file"),
        "inside640\n"
    );
    assert_eq!(sh("cat /linked-copy/a.txt"), "a\n");
    assert_eq!(sh("cat /w/rel.txt"), "a\n");

    // Several sources need a directory destination.
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\nCOPY src/a.txt src/b.md /nodir\n",
    );
    let (code, _, err) = env.try_build(&[]);
    assert_ne!(code, 0);
    assert!(err.contains("Dockerfile:2:1"), "{err}");
    assert!(err.contains("must be a directory"), "{err}");
    // A missing source names the file and the line.
    env.write_ctx("Dockerfile", "FROM busybox\n\nCOPY missing.txt /\n");
    let (code, _, err) = env.try_build(&[]);
    assert_ne!(code, 0);
    assert!(err.contains("Dockerfile:3:1"), "{err}");
    assert!(err.contains("missing.txt"), "{err}");
}

#[test]
fn run_forms_mounts_and_network() {
    let env = env();
    env.write_ctx("data/in.txt", "from context\n");
    fs::write(env.path("secret"), "s3cret").unwrap();
    env.write_ctx(
        "Dockerfile",
        "FROM busybox AS tools\n\
         RUN echo tool > /tool\n\
         FROM busybox\n\
         RUN [\"/bin/sh\", \"-c\", \"echo exec-form > /exec\"]\n\
         RUN <<EOF\n\
         echo heredoc-script > /heredoc\n\
         EOF\n\
         RUN <<EOF\n\
         #!/bin/sh\n\
         echo shebang > /shebang\n\
         EOF\n\
         RUN --mount=type=bind,source=data,target=/mnt cat /mnt/in.txt > /bound\n\
         RUN --mount=type=bind,from=tools,source=/tool,target=/t cp /t /from-stage\n\
         RUN --mount=type=bind,source=data,target=/mnt,rw echo scribble > /mnt/new && test -e /mnt/new\n\
         RUN --mount=type=secret,id=tok,required cat /run/secrets/tok > /leak-check && wc -c < /run/secrets/tok > /secret-len\n\
         RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/y && grep -q tmpfs /proc/mounts\n\
         RUN --network=none ls /sys/class/net > /net\n",
    );
    env.build(&[
        "-t",
        "runs",
        "--secret",
        &format!("id=tok,src={}", env.path("secret").display()),
    ]);
    let sh = |cmd: &str| env.run_rm(&["runs", "sh", "-c", cmd]);
    assert_eq!(
        sh("cat /exec /heredoc /shebang"),
        "exec-form\nheredoc-script\nshebang\n"
    );
    assert_eq!(sh("cat /bound /from-stage"), "from context\ntool\n");
    assert!(
        !env.ctx().join("data/new").exists(),
        "rw bind writes are thrown away"
    );
    assert_eq!(sh("cat /secret-len"), "6\n");
    assert_eq!(
        sh("test -e /run/secrets/tok && echo leaked || echo gone"),
        "gone\n"
    );
    assert_eq!(sh("ls /scratch 2>/dev/null | wc -l"), "0\n");
    assert_eq!(sh("cat /net"), "lo\n", "--network=none: only loopback");
    // A required secret that is missing fails the step (when it runs: a
    // cached step needs no secret, as in BuildKit).
    let (code, _, err) = env.try_build(&["--no-cache"]);
    assert_ne!(code, 0);
    assert!(err.contains("secret tok: not found"), "{err}");
}

#[test]
fn failing_step_reports_command_exit_code_output_and_line() {
    let env = env();
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\nRUN echo fine\nRUN echo about to fail && echo oops >&2 && exit 3\nRUN echo never\n",
    );
    let (code, _, err) = env.try_build(&["-t", "broken"]);
    assert_ne!(code, 0);
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(err.contains("oops"), "{err}");
    assert!(err.contains("Dockerfile:3:1"), "{err}");
    assert!(err.contains(" 3 | RUN echo about to fail"), "{err}");
    assert!(
        !err.contains("#4 "),
        "the step after the failure never starts: {err}"
    );
    let images = env.ok(&["images"]);
    assert!(!images.contains("broken"), "no half-built image: {images}");
    // Unknown base image: the reference and the line.
    env.write_ctx("Dockerfile", "FROM nosuch/image:1\n");
    let (code, _, err) = env.try_build(&[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("Dockerfile:1:1") && err.contains("nosuch/image:1"),
        "{err}"
    );
}

#[test]
fn outputs_local_tar_and_quiet() {
    let env = env();
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\nRUN echo out > /made && ln -s made /link\n",
    );
    let local = env.path("local");
    env.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=local,dest={}", local.display()),
        env.ctx().to_str().unwrap(),
    ]);
    assert_eq!(fs::read_to_string(local.join("made")).unwrap(), "out\n");
    assert_eq!(
        fs::read_link(local.join("link")).unwrap(),
        Path::new("made")
    );
    assert!(local.join("bin/busybox").is_file());
    let tarfile = env.path("fs.tar");
    env.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=tar,dest={}", tarfile.display()),
        env.ctx().to_str().unwrap(),
    ]);
    let listing = tool("tar", &["-tf", tarfile.to_str().unwrap()]);
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "made"),
        "{listing}"
    );
    // dest=-: the tar, or an OCI archive (with -q, nothing else), on
    // stdout; a directory cannot go there.
    for (kind, file) in [("tar", "stdout.tar"), ("oci", "stdout-oci.tar")] {
        let out = env
            .kiln()
            .args(["build", "-q", "-o", &format!("type={kind},dest=-")])
            .arg(env.ctx())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::write(env.path(file), &out.stdout).unwrap();
    }
    let listing = tool("tar", &["-tf", env.path("stdout.tar").to_str().unwrap()]);
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "made"),
        "{listing}"
    );
    let oci = format!("oci-archive:{}", env.path("stdout-oci.tar").display());
    assert!(tool("skopeo", &["inspect", &oci]).contains("\"Layers\""));
    let err = env.fails(&[
        "build",
        "-o",
        "type=local,dest=-",
        env.ctx().to_str().unwrap(),
    ]);
    assert!(
        err.contains("dest=- (stdout) is for type=tar, oci or docker"),
        "{err}"
    );
    // The tty view redraws in place and ends with every step's state.
    let out = env
        .kiln()
        .args(["build", "--no-cache", "--progress", "tty"])
        .arg(env.ctx())
        .output()
        .unwrap();
    assert!(out.status.success());
    let tty = String::from_utf8_lossy(&out.stderr);
    assert!(
        tty.contains("[+] Building") && tty.contains("\x1b["),
        "{tty}"
    );
    assert!(tty.contains("RUN echo out > /made"), "{tty}");
    let id = env.ok(&["build", "-q", "-t", "quiet", env.ctx().to_str().unwrap()]);
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    assert_eq!(env.inspect("quiet")["Id"], id.trim());
}

#[test]
fn concurrent_builds_share_one_store() {
    let env = env();
    env.write_ctx("shared.txt", "shared\n");
    let ctx_b = env.path("ctx-b");
    fs::create_dir_all(&ctx_b).unwrap();
    fs::write(ctx_b.join("shared.txt"), "shared\n").unwrap();
    let common = "FROM busybox\nCOPY shared.txt /\nRUN echo common > /common\n";
    env.write_ctx("Dockerfile", format!("{common}RUN echo one > /one\n"));
    fs::write(
        ctx_b.join("Dockerfile"),
        format!("{common}RUN echo two > /two\n"),
    )
    .unwrap();
    let spawn = |ctx: &Path, tag: &str| {
        env.cmd()
            .args(["build", "-q", "-t", tag])
            .arg(ctx)
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn(&env.ctx(), "one"));
        let b = s.spawn(|| spawn(&ctx_b, "two"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(
        env.run_rm(&["one", "cat", "/common", "/one"]),
        "common\none\n"
    );
    assert_eq!(
        env.run_rm(&["two", "cat", "/common", "/two"]),
        "common\ntwo\n"
    );
    env.ok(&["system", "check"]);
}

#[test]
fn copy_exclude_never_hides_a_change_from_the_cache() {
    let env = env();
    env.write_ctx("src/a.txt", "v1\n");
    // `src/*` is relative to the copied `src`, so it excludes nothing
    // here: a.txt is copied, and editing it must invalidate the COPY.
    env.write_ctx("Dockerfile", "FROM busybox\nCOPY --exclude=src/* src /d/\n");
    env.build(&["-t", "ex"]);
    assert_eq!(env.run_rm(&["ex", "cat", "/d/a.txt"]), "v1\n");
    env.write_ctx("src/a.txt", "v2\n");
    env.build(&["-t", "ex"]);
    assert_eq!(env.run_rm(&["ex", "cat", "/d/a.txt"]), "v2\n");
}

#[test]
fn add_from_urls_with_checksums_and_cache() {
    let env = env();
    let www = env.path("www");
    fs::create_dir_all(&www).unwrap();
    let set = |name: &str, body: &[u8]| {
        let p = www.join(name);
        fs::write(&p, body).unwrap();
        // 2001-02-03T04:05:06Z: the server's Last-Modified.
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(981173106);
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    };
    set("hello.txt", b"hello from the web\n");
    // A real gzip tarball: a remote archive must stay an archive.
    let tgz = env.path("a.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(env.ctx())
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    set("a.tar.gz", &fs::read(&tgz).unwrap());
    let server = FileServer::start(&www);
    let sum = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(b"hello from the web\n"))
    );
    let dockerfile = |checksum: &str| {
        format!(
            "FROM busybox\n\
             ADD {hello} /dl/\n\
             ADD --checksum={checksum} {hello} /pinned.txt\n\
             ADD {tgz} /archive/\n\
             RUN --mount=type=cache,target=/c,id=add-url echo ran >> /c/log\n",
            hello = server.url("hello.txt"),
            tgz = server.url("a.tar.gz"),
        )
    };
    env.write_ctx("Dockerfile", dockerfile(&sum));
    env.build(&["-t", "web"]);
    assert_eq!(
        env.run_rm(&["web", "cat", "/dl/hello.txt"]),
        "hello from the web\n"
    );
    assert_eq!(
        env.run_rm(&["web", "cat", "/pinned.txt"]),
        "hello from the web\n"
    );
    // Downloads are 0600 and carry Last-Modified as their mtime, as in docker.
    assert_eq!(
        env.run_rm(&["web", "stat", "-c", "%a %Y", "/dl/hello.txt"]),
        "600 981173106\n"
    );
    assert_eq!(
        env.run_rm(&["web", "ls", "/archive"]),
        "a.tar.gz\n",
        "remote archives are not unpacked"
    );
    assert_eq!(env.cache_log("add-url").len(), 1);

    // Same content: everything cached. New content: the steps after rerun.
    env.build(&["-t", "web"]);
    assert_eq!(env.cache_log("add-url").len(), 1);
    set("hello.txt", b"changed\n");
    let (code, _, err) = env.try_build(&[]);
    assert_ne!(code, 0, "the pinned checksum no longer matches");
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains("Dockerfile:3"), "{err}");
    let new_sum = format!("sha256:{}", hex::encode(sha2::Sha256::digest(b"changed\n")));
    env.write_ctx("Dockerfile", dockerfile(&new_sum));
    env.build(&["-t", "web2"]);
    assert_eq!(env.cache_log("add-url").len(), 2);
    assert_eq!(env.run_rm(&["web2", "cat", "/pinned.txt"]), "changed\n");

    // A pinned download is its checksum: cached, it needs no server.
    env.write_ctx(
        "Dockerfile",
        format!(
            "FROM busybox\nADD --checksum={new_sum} {} /pinned.txt\n",
            server.url("hello.txt")
        ),
    );
    env.build(&[]);
    drop(server);
    let (_, progress) = env.build(&[]);
    assert!(progress.contains("CACHED"), "{progress}");

    // Errors name the URL and the line.
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\nADD http://127.0.0.1:1/nothing /x\n",
    );
    let (code, _, err) = env.try_build(&[]);
    assert_ne!(code, 0);
    assert!(err.contains("http://127.0.0.1:1/nothing"), "{err}");
    assert!(err.contains("Dockerfile:2"), "{err}");
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\nADD --checksum=md5:abc http://127.0.0.1:1/x /x\n",
    );
    let (code, _, err) = env.try_build(&[]);
    assert_ne!(code, 0);
    assert!(err.contains("sha256:<64 hex digits>"), "{err}");
}

#[test]
fn explain_says_why_each_step_missed() {
    let env = env();
    env.write_ctx("src/a.txt", "a\n");
    env.write_ctx("src/b.txt", "b\n");
    env.write_ctx("other.txt", "o\n");
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\nARG V=1\nCOPY src/ /src/\nRUN echo $V > /v\nCOPY other.txt /\nRUN cat /v /other.txt\n",
    );
    // A first build has nothing to explain: no noise about it.
    let (_, out) = env.build(&[]);
    assert!(!out.contains("cache miss"), "{out}");
    let miss = |out: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.split_once(" cache miss: ").map(|(_, r)| r.to_string()))
            .collect()
    };
    // A context file: its COPY names it, later steps name the step.
    env.write_ctx("src/b.txt", "B\n");
    let (_, out) = env.build(&[]);
    assert_eq!(
        miss(&out),
        [
            "context files changed: src/b.txt",
            // BuildKit's step names: one stage has no stage name; ENV
            // values are shown.
            "an earlier step changed: [2/5] COPY src/ /src/",
            "an earlier step changed: [3/5] RUN echo 1 > /v",
            "an earlier step changed: [4/5] COPY other.txt /",
        ]
    );
    // A build arg.
    let (_, out) = env.build(&["--build-arg", "V=2"]);
    assert_eq!(miss(&out)[0], "build arg / ENV changed: V=\"1\" → \"2\"");
    // An instruction, and --no-cache.
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\nARG V=1\nCOPY src/ /src/\nRUN echo $V > /v\nCOPY other.txt /\nRUN cat /other.txt /v\n",
    );
    let (_, out) = env.build(&["--build-arg", "V=2"]);
    assert_eq!(
        miss(&out),
        ["the instruction changed (was: RUN cat /v /other.txt)"]
    );
    let (_, out) = env.build(&["--no-cache", "--build-arg", "V=2"]);
    assert!(miss(&out).iter().all(|r| r == "--no-cache"), "{out}");
    // Fully cached: nothing to explain.
    let (_, out) = env.build(&["--build-arg", "V=2"]);
    assert!(miss(&out).is_empty(), "{out}");
    // A project never built before, with --explain: says so.
    let fresh = env.path("fresh");
    fs::create_dir_all(&fresh).unwrap();
    fs::write(fresh.join("Dockerfile"), "FROM busybox\nRUN echo fresh\n").unwrap();
    let (_, out) = env.build_dir(&fresh, &["--explain"]);
    assert_eq!(
        miss(&out),
        ["no earlier build of this step to compare with"]
    );
}

#[test]
fn copy_link_is_reused_when_the_base_changes() {
    let env = env();
    env.write_ctx("data.txt", "linked data\n");
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\nARG BASE=1\nRUN echo $BASE > /base\n\
         COPY --link --chmod=640 data.txt /data/\n\
         RUN cat /base /data/data.txt > /both\n",
    );
    let (id1, _) = env.build(&["-t", "l1"]);
    let (id2, out) = env.build(&["-t", "l2", "--build-arg", "BASE=2"]);
    assert_ne!(id1, id2);
    // The base changed, so its RUN reran; the linked copy did not.
    let copy_line = out
        .lines()
        .find(|l| l.contains("COPY --link"))
        .unwrap_or_else(|| panic!("no COPY line in:\n{out}"));
    let n = copy_line.split_whitespace().next().unwrap();
    assert!(out.contains(&format!("{n} CACHED")), "{out}");
    assert_eq!(env.run_rm(&["l2", "cat", "/both"]), "2\nlinked data\n");
    assert_eq!(
        env.run_rm(&["l2", "stat", "-c", "%a", "/data/data.txt"]),
        "640\n"
    );
    // The same layer blob sits on both bases.
    let layers = |img: &str| -> Vec<String> {
        env.inspect(img)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let (a, b) = (layers("l1"), layers("l2"));
    assert_eq!(a.len(), 4);
    assert_ne!(a[1], b[1], "the RUN layers differ");
    assert_eq!(a[2], b[2], "the --link layer is the same");
}

/// `--check` runs only BuildKit's lint rules: exit 1 and each warning with
/// its source lines (or buildx's JSON); a build shows the warnings and,
/// with `# check=error=true`, stops before any step runs.
#[test]
fn build_checks_warn_fail_when_asked_and_run_alone() {
    let k = env();
    k.write_ctx(
        "Dockerfile",
        "FROM busybox AS Base\nRUN touch /ran\nCMD echo hi\n",
    );
    let ctx = k.ctx();
    let ctx = ctx.to_str().unwrap();
    let out = k.out(&["build", "--check", ctx]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("Check complete, 2 warnings have been found!"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(
        "WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/"
    ));
    assert!(
        out.stdout.contains("   3 | >>> CMD echo hi"),
        "{}",
        out.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&k.ok_code(&["build", "--check", "--format", "json", ctx], 1))
            .unwrap();
    let rules: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["ruleName"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["StageNameCasing", "JSONArgsRecommended"]);
    assert_eq!(
        json["warnings"][1]["location"]["ranges"][0]["start"]["line"],
        3
    );
    // Nothing ran: no image, no container.
    assert!(!k.ok(&["images"]).contains("Base"));
    // A build shows them and goes on.
    let (_, progress) = k.build(&[]);
    assert!(
        progress.contains("check: JSONArgsRecommended: JSON arguments recommended for CMD"),
        "{progress}"
    );
    // ...and again at the end, with each one's place and source line.
    let summary = &progress[progress.find("2 warnings found:").expect(&progress)..];
    assert!(
        summary.contains("Dockerfile:3 JSONArgsRecommended: JSON arguments recommended")
            && summary.contains("      3 | CMD echo hi\n"),
        "{summary}"
    );
    // error=true: the build stops, naming the rules, before RUN runs.
    k.write_ctx(
        "Dockerfile",
        "# check=error=true\nFROM busybox AS Base\nRUN touch /ran\n",
    );
    let err = k.fails(&["build", "--progress", "plain", ctx]);
    assert!(
        err.contains("lint violation found for rules: StageNameCasing"),
        "{err}"
    );
    assert!(!err.contains("touch /ran"), "a step ran: {err}");
    // The build arg overrides the directive; skip=all quiets everything.
    k.ok(&[
        "build",
        "-q",
        "--build-arg",
        "BUILDKIT_DOCKERFILE_CHECK=skip=all",
        ctx,
    ]);
    k.write_ctx("Dockerfile", "FROM busybox\nCMD [\"true\"]\n");
    assert_eq!(
        k.ok(&["build", "--check", ctx]),
        "Check complete, no warnings found.\n"
    );
}

/// `--ssh ID=KEYFILE`: kiln runs an agent holding the key, and `RUN
/// --mount=type=ssh` reaches it through SSH_AUTH_SOCK (asked for its
/// identities in the agent protocol, by perl from the Debian image); the
/// socket and the key never reach the image.
#[test]
fn ssh_mounts_forward_an_agent_to_the_step_alone() {
    let tar = std::env::var("KILN_TEST_DEBIAN_TAR")
        .unwrap_or_else(|_| "/var/cache/kiln-tests/debian-bookworm.tar".into());
    let k = env();
    k.ok(&["import", &tar, "debian:bookworm"]);
    let key = k.path("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kiln-test-key", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let ask = r#"use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => $ENV{SSH_AUTH_SOCK}) or die "connect: $!"; print $s pack("NC", 1, 11); read($s, my $len, 4); read($s, my $msg, unpack("N", $len)); my ($type, $n) = unpack("CN", $msg); print "type=$type keys=$n\n";"#;
    k.write_ctx(
        "Dockerfile",
        format!("FROM debian:bookworm\nRUN --mount=type=ssh perl -e '{ask}' > /agent.txt\nRUN --mount=type=ssh,id=other,target=/run/other.sock ls /run/other.sock > /other.txt 2>&1 || true\n\
                 RUN --mount=type=ssh stat -c '%u %g %a' $SSH_AUTH_SOCK > /default-owner.txt\n\
                 RUN --mount=type=ssh,uid=1000,gid=1001,mode=0660 stat -c '%u %g %a' $SSH_AUTH_SOCK > /owner.txt\n\
                 USER 1000\nRUN --mount=type=ssh,uid=1000 perl -e '{ask}' > /tmp/agent-as-user.txt\n"),
    );
    let ctx = k.ctx();
    let image = k.ok(&[
        "build",
        "-q",
        "--ssh",
        &format!("default={}", key.display()),
        ctx.to_str().unwrap(),
    ]);
    let image = image.trim();
    assert_eq!(k.run_rm(&[image, "cat", "/agent.txt"]), "type=12 keys=1\n");
    // The step's socket is its own, owned and moded as the mount says
    // (root and 0600 by default): a non-root step user can be given it.
    assert_eq!(
        k.run_rm(&[image, "cat", "/default-owner.txt", "/owner.txt"]),
        "0 0 600\n1000 1001 660\n"
    );
    assert_eq!(
        k.run_rm(&[image, "cat", "/tmp/agent-as-user.txt"]),
        "type=12 keys=1\n"
    );
    // Not required and not given: the step runs without it.
    assert!(k
        .run_rm(&[image, "cat", "/other.txt"])
        .contains("No such file"));
    assert_eq!(
        k.run_rm(&[
            image,
            "sh",
            "-c",
            "ls /run/buildkit 2>&1 | wc -l; echo $SSH_AUTH_SOCK"
        ]),
        "1\n\n"
    );
    let dir = k.path("exported");
    k.ok(&[
        "build",
        "-q",
        "--ssh",
        &format!("default={}", key.display()),
        "-o",
        &format!("type=local,dest={}", dir.display()),
        ctx.to_str().unwrap(),
    ]);
    let private = std::fs::read_to_string(&key).unwrap();
    let secret_line = private.lines().nth(1).unwrap();
    let found = std::process::Command::new("grep")
        .args(["-rlF", secret_line])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        found.stdout.is_empty(),
        "the key is in the image: {}",
        String::from_utf8_lossy(&found.stdout)
    );
    // Required and missing: a clear error.
    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=ssh,required true\n",
    );
    let err = k.fails(&["build", ctx.to_str().unwrap()]);
    assert!(err.contains("no SSH key \"default\" forwarded"), "{err}");
}
