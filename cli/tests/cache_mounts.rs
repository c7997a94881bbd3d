//! Cache mounts' locking (`sharing=locked`): a step mounting one cache
//! at several targets shares the lock with itself (mqttwarn's Dockerfile,
//! which hung), and a build waiting on another build's lock says so,
//! naming the cache and its holder, and can be interrupted.

use kiln_tests::{Kiln, Reaped};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn env() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

/// Waits for `child` at most `limit`; kills it and fails the test when it
/// takes longer (a hang must fail, not stall the suite).
fn wait_at_most(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Builds the default context with `args`, which must succeed within two
/// minutes (a step waiting on itself fails the test, not the suite).
fn build_within_two_minutes(env: &Kiln, args: &[&str]) {
    let mut child = env
        .cmd()
        .args(["build", "--progress=plain"])
        .args(args)
        .arg(env.ctx())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_at_most(&mut child, Duration::from_secs(120), "the build");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
}

#[test]
fn one_step_mounts_a_locked_cache_at_two_targets() {
    let env = env();
    // mqttwarn's form: one id at two targets, both locked; both targets
    // are the same directory.
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=cache,id=apt,sharing=locked,target=/var/cache/apt \\\n\
         \x20   --mount=type=cache,id=apt,sharing=locked,target=/var/lib/apt \\\n\
         \x20   echo seen > /var/cache/apt/marker && cat /var/lib/apt/marker > /both\n\
         RUN --mount=type=cache,id=p,sharing=private,target=/a \\\n\
         \x20   --mount=type=cache,id=p,sharing=locked,target=/b \\\n\
         \x20   echo p > /a/m && cat /b/m > /private-both\n",
    );
    build_within_two_minutes(&env, &["-t", "twice"]);
    assert_eq!(
        env.run_rm(&["twice", "cat", "/both", "/private-both"]),
        "seen\np\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.cache_mount_dir("apt").join("marker")).unwrap(),
        "seen\n"
    );
}

/// The other shapes of one step holding a source twice (issue 22): the
/// same secret at two targets, one context directory bound twice (once
/// read-write) beside a cache of the same name. Each must build, not wait
/// on itself.
#[test]
fn one_step_mounts_a_secret_twice_and_a_source_as_bind_and_cache() {
    let env = env();
    env.write("secret.txt", "s3cret\n");
    env.write_ctx("d/f", "hi\n");
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=secret,id=s,target=/a --mount=type=secret,id=s,target=/b \\\n\
         \x20   cat /a /b > /secrets-seen-twice\n\
         RUN --mount=type=bind,source=d,target=/b1 --mount=type=bind,source=d,target=/b2,rw \\\n\
         \x20   --mount=type=cache,id=d,target=/b3,sharing=locked --mount=type=cache,id=d,target=/b4 \\\n\
         \x20   sh -c 'echo x > /b2/f; cat /b1/f; echo c > /b3/m; cat /b4/m' > /binds\n",
    );
    let secret = format!("id=s,src={}", env.path("secret.txt").display());
    build_within_two_minutes(&env, &["-t", "twice", "--secret", &secret]);
    // The read-write bind's write stays in the step; the read-only one
    // still shows the context's file.
    assert_eq!(
        env.run_rm(&["twice", "cat", "/secrets-seen-twice", "/binds"]),
        "s3cret\ns3cret\nhi\nc\n"
    );
}

#[test]
fn a_wait_on_another_builds_lock_shows_and_can_be_interrupted() {
    let env = env();
    let holder_ctx = env.path("holder");
    std::fs::create_dir_all(&holder_ctx).unwrap();
    // The holder keeps the lock until the test releases it (a file in the
    // cache itself, so nothing outside the container is involved).
    std::fs::write(
        holder_ctx.join("Dockerfile"),
        "FROM busybox\n\
         RUN --mount=type=cache,id=shared-apt,sharing=locked,target=/c \\\n\
         \x20   touch /c/held && while [ ! -e /c/release ]; do sleep 0.05; done; rm /c/held /c/release\n",
    )
    .unwrap();
    env.write_ctx(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=cache,id=shared-apt,sharing=locked,target=/c echo waited > /out\n",
    );
    let cache = env.cache_mount_dir("shared-apt");
    let mut holder = Reaped(
        env.cmd()
            .args(["build", "-q", "--progress=plain", "-t", "holder"])
            .arg(&holder_ctx)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while !cache.join("held").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the holder never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A second build waits, and its progress says for what and on whom.
    let mut waiter = Reaped(
        env.cmd()
            .args(["build", "--progress=plain", "-t", "waiter"])
            .arg(env.ctx())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    let stderr = waiter.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("waiting for cache mount") {
                let _ = line_tx.send(line);
                return;
            }
        }
    });
    let wait_line = line_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the waiting build never said it waits");
    assert!(
        wait_line.contains("waiting for cache mount shared-apt, held by kiln pid")
            && wait_line.contains(&holder.0.id().to_string())
            && wait_line.contains("while [ ! -e /c/release ]"),
        "{wait_line}"
    );
    // Ctrl-C ends the waiting build at once; the holder is untouched.
    let kill = std::process::Command::new("kill")
        .args(["-INT", &waiter.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_at_most(
        &mut waiter.0,
        Duration::from_secs(10),
        "the interrupted build",
    );
    assert!(!status.success());
    assert!(cache.join("held").exists());
    assert_ne!(env.out(&["inspect", "waiter"]).code, 0);

    // Released, the holder finishes, and a new build takes the lock.
    std::fs::write(cache.join("release"), "").unwrap();
    let status = wait_at_most(&mut holder.0, Duration::from_secs(60), "the holder");
    assert!(status.success());
    env.build(&["-t", "waiter"]);
    assert_eq!(env.run_rm(&["waiter", "cat", "/out"]), "waited\n");
    env.ok(&["system", "check"]);
}
