//! Build cache GC: `kiln builder prune --keep-storage` keeps the most
//! recently used records (their rebuilds still hit) and removes the rest;
//! `system df`'s build cache RECLAIMABLE is what a full prune frees on
//! disk (du of the store before and after); cache mounts are weighed too
//! and one a running step uses is never removed.

use kiln_tests::Kiln;
use std::fs;

fn env() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

/// Bytes under `dir` as du counts them (apparent sizes).
fn du(dir: &std::path::Path) -> u64 {
    let out = std::process::Command::new("du")
        .args(["-sb"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Builds project `n` (a 20 MB RUN layer) with no image kept: only the
/// cache holds its layer. The plain progress.
fn build(k: &Kiln, n: usize) -> String {
    let ctx = k.path(&format!("project-{n}"));
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nRUN head -c 20000000 /dev/urandom > /blob-{n}\n"),
    )
    .unwrap();
    let tar = k.path("out.tar");
    let (_, progress) = k.build_dir(&ctx, &["-o", &format!("type=tar,dest={}", tar.display())]);
    let _ = fs::remove_file(tar);
    progress
}

fn cached(progress: &str) -> bool {
    let Some(line) = progress.lines().find(|l| l.contains("RUN head -c")) else {
        return false;
    };
    let number = line.split_whitespace().next().unwrap();
    progress.contains(&format!("{number} CACHED"))
}

#[test]
fn keep_storage_keeps_the_latest_builds_and_df_tells_what_a_prune_frees() {
    let k = env();
    for n in 0..3 {
        build(&k, n);
        // Last-use times are in seconds: one build per second.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    // 60 MB of cache, a 50 MB limit: the oldest build's record goes.
    let out = k.ok(&["builder", "prune", "--keep-storage", "50MB", "-f"]);
    assert!(out.contains("Deleted build cache records: 1"), "{out}");
    assert!(
        cached(&build(&k, 2)),
        "the latest build's record was pruned"
    );
    assert!(
        cached(&build(&k, 1)),
        "the second build's record was pruned"
    );
    assert!(!cached(&build(&k, 0)), "the oldest build's record was kept");

    // df's RECLAIMABLE for the build cache is what a full prune frees.
    let df = k.ok(&["system", "df"]);
    let row = df
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap_or_else(|| panic!("{df}"));
    let reclaimable = row.split_whitespace().nth(5).unwrap().to_string();
    let before = du(&k.root());
    let out = k.ok(&["builder", "prune", "-a", "-f"]);
    let freed = before - du(&k.root());
    let parse = |s: &str| -> f64 {
        let (n, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap());
        let n: f64 = n.parse().unwrap();
        n * match unit {
            "B" => 1.0,
            "kB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            other => panic!("unit {other}"),
        }
    };
    let claimed = parse(&reclaimable);
    assert!(
        (claimed - freed as f64).abs() <= 0.05 * freed as f64 + 2e6,
        "df said {reclaimable} reclaimable, prune freed {freed} bytes (du)\n{df}\n{out}"
    );
    assert!(freed > 50_000_000, "{freed}");
    assert!(!cached(&build(&k, 2)));
    k.ok(&["system", "check"]);
}

#[test]
fn cache_mounts_are_pruned_unless_a_step_uses_them() {
    let k = env();
    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,id=old,target=/c head -c 3000000 /dev/urandom > /c/data\n",
    );
    k.build(&[]);
    let dir = k.cache_mount_dir("old");
    assert!(dir.join("data").is_file());
    // A step holding another cache mount while the prune runs.
    let busy = k.path("busy");
    fs::create_dir_all(&busy).unwrap();
    fs::write(
        busy.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=cache,id=busy,target=/c touch /c/started && sleep 3\n",
    )
    .unwrap();
    let mut holder = k
        .cmd()
        .args(["build", "-q"])
        .arg(&busy)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let busy_dir = k.cache_mount_dir("busy");
    let start = std::time::Instant::now();
    while !busy_dir.join("started").exists() {
        assert!(start.elapsed().as_secs() < 60, "the step never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let df = k.ok(&["system", "df"]);
    assert!(
        df.lines().any(|l| l.starts_with("Cache Mounts")
            && l.split_whitespace().nth(2) == Some("2")
            && l.split_whitespace().nth(3) == Some("1")),
        "{df}"
    );
    let out = k.ok(&["builder", "prune", "--filter", "type=exec.cachemount", "-f"]);
    assert!(out.contains("Deleted cache mounts: 1"), "{out}");
    assert!(!dir.exists());
    assert!(
        busy_dir.join("started").exists(),
        "a cache mount in use was removed"
    );
    assert!(holder.wait().unwrap().success());
    // Unused now: it goes; a step that runs again makes a fresh one.
    let out = k.ok(&["builder", "prune", "--filter", "type=exec.cachemount", "-f"]);
    assert!(out.contains("Deleted cache mounts: 1"), "{out}");
    assert!(!busy_dir.exists());
    k.build(&["--no-cache"]);
    assert!(dir.join("data").is_file());
}

#[test]
fn a_build_keeps_the_cache_under_its_limit() {
    let k = env();
    build(&k, 0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ctx = k.path("project-1");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN head -c 20000000 /dev/urandom > /blob-1\n",
    )
    .unwrap();
    let tar = k.path("out.tar");
    let out = k
        .cmd()
        .env("KILN_GC_KEEP_STORAGE", "30MB")
        .args(["build", "--progress=plain", "-o"])
        .arg(format!("type=tar,dest={}", tar.display()))
        .arg(&ctx)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("build cache over its limit: removed 1 record(s)"),
        "{err}"
    );
    assert!(cached(&build(&k, 1)), "this build's own record went");
    assert!(!cached(&build(&k, 0)), "the older record stayed");
}
