//! SSH against a real `sshd` this test starts on 127.0.0.1 (issue 20):
//! `RUN --mount=type=ssh` lets `ssh` in the step authenticate with the
//! forwarded agent's key, and the key reaches neither the image nor a
//! cache export; `ADD ssh://…` clones through the forwarded agent only —
//! never through the invoker's own agent or configuration.

use kiln_tests::{free_port, run_ok as run, wait_for_port, Kiln, Reaped};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn kiln() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

/// An sshd on 127.0.0.1 that lets root in with `key` only, and the key.
struct Sshd {
    port: u16,
    key: PathBuf,
    _server: Reaped,
}

fn sshd(dir: &Path) -> Sshd {
    std::fs::create_dir_all(dir).unwrap();
    for name in ["host", "user"] {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "kiln-test", "-f"])
            .arg(dir.join(name)));
    }
    std::fs::copy(dir.join("user.pub"), dir.join("authorized_keys")).unwrap();
    // sshd insists on its privilege-separation directory.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = free_port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\n\
             AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nPidFile none\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let mut server = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("/usr/sbin/sshd (Debian's openssh-server)");
    wait_for_port(port, &mut server, "sshd");
    Sshd {
        port,
        key: dir.join("user"),
        _server: Reaped(server),
    }
}

/// The host's `ssh` and the libraries it loads, laid out as a rootfs to
/// COPY onto busybox (no image here has an ssh client).
fn ssh_client_tree(k: &Kiln) {
    let ldd = run(Command::new("ldd").arg("/usr/bin/ssh"));
    let mut files = vec![PathBuf::from("/usr/bin/ssh")];
    for line in ldd.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    for f in files {
        let dest = k.ctx().join("client").join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
}

/// Every blob of an OCI layout, decompressed when it is gzip.
fn blob_texts(layout: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let dir = layout.join("blobs/sha256");
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let raw = std::fs::read(e.path()).unwrap();
        let mut plain = Vec::new();
        if flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut plain)
            .is_ok()
        {
            out.push(plain);
        }
        out.push(raw);
    }
    out
}

#[test]
fn an_ssh_mount_authenticates_against_sshd_and_leaves_no_key() {
    let k = kiln();
    let s = sshd(&k.path("sshd"));
    ssh_client_tree(&k);
    let opts = "-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null";
    k.write_ctx(
        "Dockerfile",
        format!(
            "FROM busybox\nCOPY client/ /\n\
             RUN --mount=type=ssh ssh -T {opts} -p {port} root@127.0.0.1 echo authenticated > /out\n",
            port = s.port
        ),
    );
    let ctx = k.ctx();
    let ctx = ctx.to_str().unwrap();
    let cache = k.path("cache");
    let image = k.ok(&[
        "build",
        "-q",
        "--ssh",
        &format!("default={}", s.key.display()),
        "--cache-to",
        &format!("type=local,dest={},mode=max", cache.display()),
        ctx,
    ]);
    let image = image.trim();
    assert_eq!(k.run_rm(&[image, "cat", "/out"]), "authenticated\n");
    // The key is in no layer, no config and no cache blob.
    let secret = std::fs::read_to_string(&s.key).unwrap();
    let secret_line = secret.lines().nth(1).unwrap().as_bytes().to_vec();
    let archive = k.path("image.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), image]);
    let layout = k.path("layout");
    std::fs::create_dir_all(&layout).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout));
    let contains = |hay: &[u8]| hay.windows(secret_line.len()).any(|w| w == secret_line);
    for (what, dir) in [("image", &layout), ("cache export", &cache)] {
        let blobs = blob_texts(dir);
        assert!(!blobs.is_empty(), "no blobs in the {what}");
        assert!(
            !blobs.iter().any(|b| contains(b)),
            "the key is in the {what}"
        );
    }
    // Without the agent the same step is refused by sshd.
    let out = k.out(&["build", "--no-cache", "--progress", "plain", ctx]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("Permission denied (publickey)"),
        "{}",
        out.stderr
    );
}

/// A served bare repository at `dir/repo.git` with one file.
fn repository(dir: &Path) -> PathBuf {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let git = |args: &[&str]| {
        run(Command::new("git")
            .arg("-C")
            .arg(&work)
            .args(["-c", "user.email=t@example.invalid", "-c", "user.name=t"])
            .args(args))
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(work.join("hello.txt"), "over ssh\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "one"]);
    run(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["clone", "-q", "--bare", "work", "repo.git"]));
    dir.join("repo.git")
}

#[test]
fn git_over_ssh_uses_the_forwarded_agent_and_never_the_invokers() {
    let k = kiln();
    let s = sshd(&k.path("sshd"));
    let repo = repository(&k.path("git"));
    let url = format!("ssh://root@127.0.0.1:{}{}#main", s.port, repo.display());
    k.write_ctx("Dockerfile", format!("FROM busybox\nADD {url} /src\n"));
    let ctx = k.ctx();
    let ctx = ctx.to_str().unwrap();
    let image = k.ok(&[
        "build",
        "-q",
        "--ssh",
        &format!("default={}", s.key.display()),
        ctx,
    ]);
    assert_eq!(
        k.run_rm(&[image.trim(), "cat", "/src/hello.txt"]),
        "over ssh\n"
    );

    // The invoker's own agent holds the key, but the build forwarded
    // none: an untrusted Dockerfile cannot borrow it.
    let agent_dir = k.path("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let sock = agent_dir.join("sock");
    let agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _agent = Reaped(agent);
    let start = std::time::Instant::now();
    while !sock.exists() {
        assert!(start.elapsed().as_secs() < 10, "ssh-agent did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run(Command::new("ssh-add")
        .arg("-q")
        .arg(&s.key)
        .env("SSH_AUTH_SOCK", &sock));
    let fresh = kiln();
    fresh.write_ctx("Dockerfile", format!("FROM busybox\nADD {url} /src\n"));
    let out = fresh
        .cmd()
        .args(["build", "--progress", "plain"])
        .arg(fresh.ctx())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "cloned with the invoker's agent");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    // With `--ssh default` that same agent is the build's to use.
    let out = fresh
        .cmd()
        .args(["build", "-q", "--ssh", "default"])
        .arg(fresh.ctx())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        fresh.run_rm(&[&image, "cat", "/src/hello.txt"]),
        "over ssh\n"
    );
}
