//! Crash and race: kiln killed at random points of builds and runs leaves
//! no container running and a store that checks clean; `kiln prune` and
//! `kiln prune -a` looping beside concurrent builds and a running
//! container never break a build, an image or the container. Needs root.

use kiln_tests::Kiln;
use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// These tests race kiln against SIGKILL and prune on timing; run side by
/// side, one's heavy I/O skews the other's odds (the prune loop's builds
/// lose their base more often than it allows). One at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn kiln() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

/// A small deterministic generator (the seed is printed, so a failure
/// can be replayed with KILN_CRASH_SEED).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("KILN_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("KILN_CRASH_SEED={seed}");
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Starts kiln with `args` and SIGKILLs it after `delay`.
fn kill_after<S: AsRef<std::ffi::OsStr>>(k: &Kiln, args: &[S], delay: Duration) {
    let mut child = k
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

/// Host processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let cmdline = fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(marker)
                .then_some(pid)
        })
        .collect()
}

fn wait_gone(marker: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = processes_with(marker);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn random_sigkills_leave_no_container_and_a_clean_store() {
    let _serial = one_at_a_time();
    let k = kiln();
    let marker = format!("kiln-crash-{}", std::process::id());
    // Steps that write real data (so commits are in flight) and sleep (so
    // containers are running) at many points.
    k.write(
        "ctx/Dockerfile",
        // S is 20 (the kill lands while the step sleeps: the container
        // must die with kiln) or short (the kill lands in later steps and
        // their commits).
        format!(
            "FROM busybox\nARG N\nARG S=0\n\
             RUN echo $N > /n && dd if=/dev/zero of=/a bs=1M count=8 2>/dev/null\n\
             RUN sleep $S # {marker}\n\
             RUN dd if=/dev/urandom of=/b bs=1M count=4 2>/dev/null && sleep $S # {marker}\n\
             COPY f /f\n\
             RUN cat /n /f > /both # {marker}\n"
        ),
    );
    k.write("ctx/f", "context file\n");
    let ctx = k.path("ctx").display().to_string();
    let mut rng = Rng::new();
    for trial in 0..30 {
        let n = format!("N={trial}");
        let sleep = if rng.below(2) == 0 { "S=20" } else { "S=0.2" };
        let args: Vec<&str> = if trial % 3 == 2 {
            vec![
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "sleep 30; : kiln-crash-run",
            ]
        } else {
            vec![
                "build",
                "-q",
                "--build-arg",
                &n,
                "--build-arg",
                sleep,
                "-t",
                "crash",
                &ctx,
            ]
        };
        let run_marker = if trial % 3 == 2 {
            "kiln-crash-run"
        } else {
            marker.as_str()
        };
        kill_after(&k, &args, Duration::from_millis(50 + rng.below(1500)));
        let left = wait_gone(run_marker);
        assert!(
            left.is_empty(),
            "trial {trial} ({args:?}): container processes {left:?} outlived kiln"
        );
        let check = k.out(&["system", "check"]);
        assert_eq!(
            check.code, 0,
            "trial {trial}: {}{}",
            check.stdout, check.stderr
        );
    }
    // Killed `--rm` runs leave no container directory behind.
    k.ok(&["run", "--rm", "busybox", "true"]);
    let containers: Vec<_> = fs::read_dir(k.root().join("containers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "names")
        .collect();
    assert!(containers.is_empty(), "{containers:?}");
    // And the next build is correct.
    k.ok(&["build", "-q", "--build-arg", "N=last", "-t", "crash", &ctx]);
    assert_eq!(
        k.ok(&["run", "--rm", "crash", "cat", "/both"]),
        "last\ncontext file\n"
    );
    k.ok(&["system", "check"]);
}

/// SIGKILL at random instants of builds that commit large steps (a big
/// RUN result, a COPY of many files, the image commit hashing their tars),
/// of saves that compress those layers, and of prunes: after each,
/// `system check` passes, and at the end a build from the same store is
/// correct and its save is valid.
#[test]
fn sigkills_during_large_commits_and_exports_leave_a_usable_store() {
    let _serial = one_at_a_time();
    let k = kiln();
    k.write(
        "ctx/Dockerfile",
        "FROM busybox\nARG N\n\
         RUN dd if=/dev/urandom of=/big bs=1M count=48 2>/dev/null && md5sum /big > /big.md5\n\
         COPY tree /tree\n\
         RUN echo $N > /n && find /tree -type f | wc -l > /count\n",
    );
    for i in 0..400 {
        k.write(&format!("ctx/tree/d{}/f{i}", i % 20), format!("file {i}\n"));
    }
    let ctx = k.path("ctx").display().to_string();
    let saved = k.path("saved.tar");
    let saved_arg = saved.display().to_string();
    let owned = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
    let build = |n: &str| owned(&["build", "-q", "--build-arg", n, "-t", "big", &ctx]);
    let ok = |args: Vec<String>| k.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // How long an uninterrupted build takes: kills land anywhere in it.
    let start = Instant::now();
    ok(build("N=first"));
    let span = start.elapsed().as_millis() as u64 + 200;
    let mut rng = Rng::new();
    for trial in 0..24 {
        let args: Vec<String> = match trial % 4 {
            // A save compresses the image's layers (each on all cores).
            1 => owned(&["save", "-o", &saved_arg, "big"]),
            3 => owned(&["prune", "-f"]),
            _ => build(&format!("N={trial}")),
        };
        kill_after(&k, &args, Duration::from_millis(rng.below(span)));
        let check = k.out(&["system", "check"]);
        assert_eq!(
            check.code, 0,
            "trial {trial} ({args:?}): {}{}",
            check.stdout, check.stderr
        );
    }
    ok(build("N=last"));
    assert_eq!(k.run_rm(&["big", "cat", "/n", "/count"]), "last\n400\n");
    assert_eq!(k.run_rm(&["big", "md5sum", "-c", "/big.md5"]), "/big: OK\n");
    k.ok(&["save", "-o", &saved_arg, "big"]);
    let info = kiln_tests::tool(
        "skopeo",
        &["inspect", &format!("docker-archive:{saved_arg}")],
    );
    assert!(info.contains("\"Layers\""), "{info}");
    k.ok(&["system", "check"]);
}

#[test]
fn prune_loops_beside_concurrent_builds_and_a_run() {
    let _serial = one_at_a_time();
    let k = kiln();
    let base = k.path("busybox.tar");
    k.ok(&["save", "-o", base.to_str().unwrap(), "busybox"]);
    // The container lists /bin for the whole race.
    let mut run = k
        .cmd()
        .args([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "while [ ! -e /stop ]; do ls /bin | wc -l; sleep 0.05; [ $((i+=1)) -gt 600 ] && break; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The race starts once the container runs (it then holds its image);
    // before that a prune may remove the image and the run fail cleanly,
    // which is not what this test is about.
    let (line_tx, line_rx) = std::sync::mpsc::channel::<String>();
    let stdout = run.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = line_tx.send(line);
        }
    });
    let first = line_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the container never started");
    for i in 0..8 {
        k.write(
            &format!("ctx{i}/Dockerfile"),
            "FROM busybox\nARG N\nRUN echo $N > /n && dd if=/dev/urandom of=/r bs=64k count=8 2>/dev/null\nCOPY f /f\nRUN cat /n /f > /both\n",
        );
        k.write(&format!("ctx{i}/f"), format!("file {i}\n"));
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let outcomes = std::thread::scope(|s| {
        let pruner = s.spawn(|| {
            let mut rounds = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let all = rounds % 2 == 1;
                let out = k.out(if all {
                    &["prune", "-a", "-f"]
                } else {
                    &["prune", "-f"]
                });
                assert_eq!(out.code, 0, "prune: {}", out.stderr);
                if all {
                    // Give the builds their base again.
                    k.ok(&["load", "-q", "-i", base.to_str().unwrap()]);
                }
                rounds += 1;
                std::thread::sleep(Duration::from_millis(30));
            }
            rounds
        });
        let builders: Vec<_> = (0..8)
            .map(|i| {
                let k = &k;
                s.spawn(move || {
                    let mut results = Vec::new();
                    for round in 0..2 {
                        let tar = k.path(&format!("out-{i}-{round}.tar"));
                        let n = format!("N={i}-{round}");
                        let mut args = vec!["build", "-q", "--build-arg", n.as_str()];
                        let dest = format!("type=tar,dest={}", tar.display());
                        let tag = format!("img{i}");
                        if round == 0 {
                            args.extend(["-o", dest.as_str()]);
                        } else {
                            args.extend(["-t", tag.as_str()]);
                        }
                        let ctx = k.path(&format!("ctx{i}")).display().to_string();
                        args.push(&ctx);
                        results.push((i, round, tar, k.out(&args)));
                    }
                    results
                })
            })
            .collect();
        let results: Vec<_> = builders
            .into_iter()
            .flat_map(|b| b.join().unwrap())
            .collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let rounds = pruner.join().unwrap();
        println!("{rounds} prune rounds beside the builds");
        results
    });
    let mut succeeded = 0;
    for (i, round, tar, out) in &outcomes {
        if out.code == 0 {
            succeeded += 1;
            if *round == 0 {
                // The exported filesystem is the right one.
                let text = String::from_utf8_lossy(&fs::read(tar).unwrap()).into_owned();
                assert!(
                    text.contains(&format!("{i}-{round}\nfile {i}\n")),
                    "build {i}/{round}: wrong /both"
                );
            }
        } else {
            // A clean failure: the base was pruned before the build took
            // it. Never a blob gone from under a running build.
            assert_eq!(out.code, 1, "build {i}/{round}: {}", out.stderr);
            assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
            assert!(
                !out.stderr.contains("is missing"),
                "build {i}/{round} lost content: {}",
                out.stderr
            );
            assert!(
                out.stderr.contains("busybox"),
                "build {i}/{round}: {}",
                out.stderr
            );
        }
    }
    assert!(succeeded >= 8, "only {succeeded} of 16 builds succeeded");
    let _ = run.kill();
    let _ = run.wait();
    let _ = reader.join();
    let counts: Vec<String> = std::iter::once(first).chain(line_rx.try_iter()).collect();
    assert!(counts.len() > 10, "{counts:?}");
    assert!(
        counts.iter().all(|c| c == &counts[0]),
        "the container lost files: {counts:?}"
    );
    k.ok(&["system", "check"]);
    k.ok(&["images"]);
}
