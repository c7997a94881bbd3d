//! The runtime's container lifecycle, end to end (issue 18): background
//! containers under their monitor, ps, logs, exec, stop, kill, restart
//! policies, health checks, rm; commit, diff, export, cp; volumes,
//! --read-only, and setuid programs with and without no-new-privileges.
//! Needs root.

use kiln_tests::{tool, Kiln};
use serde_json::Value;
use std::fs;
use std::time::{Duration, Instant};

fn kiln() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

fn inspect(k: &Kiln, name: &str) -> Value {
    let v: Value = serde_json::from_str(&k.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

/// Polls `cond` for up to 10 s.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: u64) -> bool {
    // A zombie is not alive.
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Host mounts that mention a path (a container's overlay or binds).
fn mounts_under(path: &std::path::Path) -> usize {
    let p = path.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&p))
        .count()
}

const LOOP: &str = "trap '' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done";

#[test]
fn a_background_container_runs_logs_execs_stops_and_is_removed_without_a_trace() {
    let k = kiln();
    let id = k.ok(&["run", "-d", "--name", "loop", "busybox", "sh", "-c", LOOP]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "run -d prints the id: {id:?}");
    let ps = k.ok(&["ps"]);
    assert!(
        ps.contains(&id[..12]) && ps.contains("Up ") && ps.contains("loop"),
        "{ps}"
    );
    assert_eq!(k.ok(&["ps", "-q", "--no-trunc"]).trim(), id);
    eventually("output in the log", || {
        k.ok(&["logs", "loop"]).contains("tick 2")
    });
    let tail = k.ok(&["logs", "--tail", "1", "loop"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    // logs -f streams new lines while it runs.
    let mut follow = k
        .cmd()
        .args(["logs", "-f", "loop"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = follow.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("tick 15") {
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        assert!(n > 0, "logs -f ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // exec joins its PID namespace: it sees the loop as PID 1.
    let ps_inside = k.ok(&["exec", "loop", "ps", "-o", "pid,args"]);
    assert!(
        ps_inside
            .lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("while true")),
        "{ps_inside}"
    );
    assert_eq!(
        k.ok(&["exec", "-e", "X=y", "loop", "sh", "-c", "echo $X"]),
        "y\n"
    );
    assert_eq!(
        k.ok(&["exec", "-u", "nobody", "loop", "id", "-u"]),
        "65534\n"
    );
    let missing = k.out(&["exec", "loop", "no-such-command"]);
    assert_eq!(missing.code, 127, "{}", missing.stderr);
    let state = inspect(&k, "loop");
    assert_eq!(state["State"]["Status"], "running");
    assert_eq!(state["Name"], "/loop");
    let pid = state["State"]["Pid"].as_u64().unwrap();
    let monitor = state["State"]["MonitorPid"].as_u64().unwrap();
    assert!(alive(pid) && alive(monitor));
    // SIGTERM is ignored: stop -t 1 kills it about a second later.
    let t = Instant::now();
    k.ok(&["stop", "-t", "1", "loop"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "stopped before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    let _ = follow.wait();
    let state = inspect(&k, "loop");
    assert_eq!(state["State"]["Status"], "exited");
    assert_eq!(state["State"]["ExitCode"], 137);
    assert!(k.ok(&["ps", "-a"]).contains("Exited (137)"));
    assert!(
        !k.ok(&["ps"]).contains("loop"),
        "ps without -a lists running ones"
    );
    assert!(!alive(pid));
    eventually("the monitor leaves", || !alive(monitor));
    let dir = k.root().join("containers").join(id);
    assert!(dir.is_dir());
    k.ok(&["rm", "loop"]);
    assert!(!dir.exists(), "rm removes the container's state");
    assert!(!k.root().join("containers/names/loop").exists());
    assert_eq!(mounts_under(&k.root()), 0);
    assert!(k.ok(&["ps", "-aq"]).is_empty());
    // The name is free again.
    k.ok(&["create", "--name", "loop", "busybox", "true"]);
}

#[test]
fn rm_needs_force_for_a_running_container_and_wait_gives_the_exit_code() {
    let k = kiln();
    k.ok(&["run", "-d", "--name", "s", "busybox", "sleep", "60"]);
    let refused = k.fails(&["rm", "s"]);
    assert!(refused.contains("running"), "{refused}");
    let pid = inspect(&k, "s")["State"]["Pid"].as_u64().unwrap();
    k.ok(&["rm", "-f", "s"]);
    assert!(!alive(pid));
    assert!(k.ok(&["ps", "-aq"]).is_empty());
    k.ok(&[
        "run",
        "-d",
        "--name",
        "w",
        "busybox",
        "sh",
        "-c",
        "sleep 0.3; exit 7",
    ]);
    assert_eq!(k.ok(&["wait", "w"]), "7\n");
    // create + start -a: the container's output and exit code.
    k.ok(&[
        "create",
        "--name",
        "c",
        "busybox",
        "sh",
        "-c",
        "echo started; exit 3",
    ]);
    assert!(k.ok(&["ps", "-a"]).contains("Created"));
    let out = k.out(&["start", "-a", "c"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (3, "started\n"),
        "{}",
        out.stderr
    );
    // rename, and a cidfile.
    k.ok(&["rename", "c", "renamed"]);
    assert_eq!(inspect(&k, "renamed")["Name"], "/renamed");
    let cid = k.path("cid");
    let id = k.ok(&[
        "run",
        "-d",
        "--cidfile",
        cid.to_str().unwrap(),
        "busybox",
        "true",
    ]);
    assert_eq!(fs::read_to_string(&cid).unwrap(), id.trim());
    let again = k.fails(&[
        "run",
        "-d",
        "--cidfile",
        cid.to_str().unwrap(),
        "busybox",
        "true",
    ]);
    assert!(again.contains("--cidfile"), "{again}");
}

#[test]
fn the_monitor_outlives_the_cli_and_a_killed_monitor_leaves_a_dead_container() {
    let k = kiln();
    k.ok(&["run", "-d", "--name", "m", "busybox", "sh", "-c", LOOP]);
    // A CLI attached to it is killed: the container goes on.
    let mut attached = k
        .cmd()
        .args(["logs", "-f", "m"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    attached.kill().unwrap();
    let _ = attached.wait();
    let before = k.ok(&["logs", "m"]).lines().count();
    eventually("more output after the CLI died", || {
        k.ok(&["logs", "m"]).lines().count() > before + 3
    });
    assert!(k.ok(&["ps"]).contains("Up "));
    // Now the monitor itself is killed: the container dies with it and
    // every command says so.
    let state = inspect(&k, "m");
    let (pid, monitor) = (
        state["State"]["Pid"].as_u64().unwrap(),
        state["State"]["MonitorPid"].as_u64().unwrap(),
    );
    let _ = std::process::Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status();
    eventually("the container dies with its monitor", || !alive(pid));
    assert_eq!(inspect(&k, "m")["State"]["Status"], "dead");
    assert!(k.ok(&["ps", "-a"]).contains("Dead"));
    assert!(!k.ok(&["ps"]).contains(" m\n"));
    k.ok(&["rm", "-f", "m"]);
    assert!(k.ok(&["ps", "-aq"]).is_empty());
    assert_eq!(mounts_under(&k.root()), 0);
}

#[test]
fn on_failure_restarts_twice_then_stays_down() {
    let k = kiln();
    k.ok(&[
        "run",
        "-d",
        "--name",
        "r",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo attempt; exit 3",
    ]);
    eventually("it gives up", || {
        inspect(&k, "r")["State"]["Status"] == "exited"
    });
    let state = inspect(&k, "r");
    assert_eq!(state["RestartCount"], 2);
    assert_eq!(state["State"]["ExitCode"], 3);
    assert_eq!(state["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(k.ok(&["logs", "r"]), "attempt\nattempt\nattempt\n");
    // always: restarted after a clean exit, until stopped.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "a",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    eventually("restarted", || {
        inspect(&k, "a")["RestartCount"].as_u64().unwrap() >= 2
    });
    k.ok(&["stop", "-t", "1", "a"]);
    let count = inspect(&k, "a")["RestartCount"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let state = inspect(&k, "a");
    assert_eq!(
        state["State"]["Status"], "exited",
        "a stop ends the restarts"
    );
    assert_eq!(state["RestartCount"].as_u64().unwrap(), count);
}

#[test]
fn health_checks_turn_healthy_and_unhealthy() {
    let k = kiln();
    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nHEALTHCHECK --interval=200ms --timeout=2s --retries=2 CMD test -f /tmp/ok\n",
    );
    k.build(&["-t", "checked"]);
    k.ok(&["run", "-d", "--name", "h", "checked", "sleep", "60"]);
    let health = || {
        inspect(&k, "h")["State"]["Health"]["Status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    eventually("unhealthy", || health() == "unhealthy");
    assert!(k.ok(&["ps"]).contains("(unhealthy)"));
    k.ok(&["exec", "h", "touch", "/tmp/ok"]);
    eventually("healthy", || health() == "healthy");
    assert!(
        k.ok(&["ps", "--filter", "health=healthy", "-q"])
            .trim()
            .len()
            == 12
    );
    let log = &inspect(&k, "h")["State"]["Health"]["Log"];
    assert!(
        log.as_array()
            .is_some_and(|l| !l.is_empty() && l.len() <= 5),
        "{log}"
    );
    // --health-cmd overrides; --no-healthcheck disables.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "n",
        "--no-healthcheck",
        "checked",
        "sleep",
        "60",
    ]);
    assert!(inspect(&k, "n")["State"]["Health"].is_null());
}

#[test]
fn commit_diff_export_and_cp_see_what_the_container_wrote() {
    let k = kiln();
    k.ok(&[
        "run", "--name", "w", "busybox", "sh", "-c",
        "echo new > /new && rm /etc/group && mkdir /var/x && echo f > /var/x/f && ln -s /etc /var/x/link",
    ]);
    let diff = k.ok(&["diff", "w"]);
    for line in ["C /etc", "D /etc/group", "A /new", "A /var/x", "A /var/x/f"] {
        assert!(
            diff.lines().any(|l| l == line),
            "{line} missing from:\n{diff}"
        );
    }
    assert!(
        !diff.contains("hostname"),
        "generated files are left out: {diff}"
    );
    // export: the whole filesystem, the change included, the deletion gone.
    let tar = k.path("w.tar");
    k.ok(&["export", "-o", tar.to_str().unwrap(), "w"]);
    let listing = tool("tar", &["-tf", tar.to_str().unwrap()]);
    assert!(listing.lines().any(|l| l == "new") && listing.lines().any(|l| l == "bin/busybox"));
    assert!(!listing.lines().any(|l| l == "etc/group"), "{listing}");
    // cp out (a directory, its symlink copied as one) and in.
    let out = k.path("out");
    k.ok(&["cp", "w:/var/x", out.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(out.join("f")).unwrap(), "f\n");
    assert_eq!(
        fs::read_link(out.join("link")).unwrap(),
        std::path::Path::new("/etc")
    );
    let host = k.write("host-file", "from the host\n");
    k.ok(&["cp", host.to_str().unwrap(), "w:/var/x/"]);
    // Through the container's own symlink: it lands in the container's
    // /etc, never the host's.
    k.ok(&["cp", host.to_str().unwrap(), "w:/var/x/link/"]);
    assert!(!std::path::Path::new("/etc/host-file").exists());
    // commit: an image holding the change, checked by umoci.
    let id = k.ok(&[
        "commit",
        "-m",
        "snapshot",
        "-c",
        "CMD [\"cat\", \"/new\"]",
        "w",
        "committed:1",
    ]);
    assert!(id.starts_with("sha256:"));
    assert_eq!(k.run_rm(&["committed:1"]), "new\n");
    assert_eq!(
        k.run_rm(&["committed:1", "cat", "/var/x/host-file", "/etc/host-file"]),
        "from the host\nfrom the host\n"
    );
    let archive = k.path("committed.tar");
    k.ok(&["save", "-o", archive.to_str().unwrap(), "committed:1"]);
    let layout = k.path("layout");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("docker-archive:{}", archive.display()),
            &format!("oci:{}:c", layout.display()),
        ],
    );
    let bundle = k.path("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:c", layout.display()),
            bundle.to_str().unwrap(),
        ],
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(fs::read_to_string(rootfs.join("new")).unwrap(), "new\n");
    assert!(
        !rootfs.join("etc/group").exists(),
        "the deletion is a whiteout"
    );
    assert!(rootfs.join("bin/busybox").is_file());
    let history = k.ok(&["history", "committed:1"]);
    assert!(history.contains("snapshot"), "{history}");
}

#[test]
fn volumes_keep_data_and_read_only_refuses_writes() {
    let k = kiln();
    k.ok(&["volume", "create", "data"]);
    k.run_rm(&["-v", "data:/d", "busybox", "sh", "-c", "echo kept > /d/f"]);
    assert_eq!(
        k.run_rm(&["-v", "data:/d", "busybox", "cat", "/d/f"]),
        "kept\n"
    );
    assert_eq!(
        k.run_rm(&[
            "--mount",
            "type=volume,source=data,target=/m,readonly",
            "busybox",
            "cat",
            "/m/f"
        ]),
        "kept\n"
    );
    assert!(k.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "data"));
    // A named volume is filled from the image at its first mount.
    assert!(k
        .run_rm(&["-v", "etc-copy:/etc", "busybox", "cat", "/etc/passwd"])
        .contains("root:"));
    let vol: Value = serde_json::from_str(&k.ok(&["volume", "inspect", "etc-copy"])).unwrap();
    let mountpoint = vol[0]["Mountpoint"].as_str().unwrap().to_string();
    assert!(fs::read_to_string(format!("{mountpoint}/passwd"))
        .unwrap()
        .contains("root:"));
    // --volumes-from shares another container's volumes.
    k.ok(&[
        "create",
        "--name",
        "holder",
        "-v",
        "data:/shared",
        "busybox",
        "true",
    ]);
    assert_eq!(
        k.run_rm(&["--volumes-from", "holder", "busybox", "cat", "/shared/f"]),
        "kept\n"
    );
    // In use: refused without -f.
    assert!(k.fails(&["volume", "rm", "data"]).contains("in use"));
    k.ok(&["rm", "holder"]);
    k.ok(&["volume", "rm", "data"]);
    assert!(!k.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "data"));
    // An image VOLUME gets an anonymous volume; rm -v removes it.
    k.import_busybox("with-volume", &["VOLUME /cache"]);
    k.ok(&[
        "run",
        "--name",
        "anon",
        "with-volume",
        "sh",
        "-c",
        "echo x > /cache/y",
    ]);
    let mounts = inspect(&k, "anon")["Mounts"].clone();
    let name = mounts[0]["Name"].as_str().unwrap().to_string();
    assert_eq!(mounts[0]["Destination"], "/cache");
    assert!(k.ok(&["volume", "ls", "-q"]).contains(&name));
    k.ok(&["rm", "-v", "anon"]);
    assert!(!k.ok(&["volume", "ls", "-q"]).contains(&name));
    // --read-only: the root refuses writes; a --tmpfs stays writable.
    let ro = k.out(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_ne!(ro.code, 0);
    assert!(ro.stderr.contains("Read-only file system"), "{}", ro.stderr);
    assert_eq!(
        k.run_rm(&[
            "--read-only",
            "--tmpfs",
            "/tmp",
            "busybox",
            "sh",
            "-c",
            "touch /tmp/x && echo ok"
        ]),
        "ok\n"
    );
    // A missing bind source: --mount refuses, -v makes the directory.
    let missing = k.path("missing-dir");
    let refused = k.fails(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,source={},target=/m", missing.display()),
        "busybox",
        "true",
    ]);
    assert!(refused.contains("does not exist"), "{refused}");
    k.run_rm(&[
        "-v",
        &format!("{}:/m", missing.display()),
        "busybox",
        "true",
    ]);
    assert!(missing.is_dir());
    // `volume create` without a name: a generated name, kept by prune
    // (only anonymous volumes go).
    let generated = k.ok(&["volume", "create"]).trim().to_string();
    assert_eq!(generated.len(), 64);
    k.ok(&["volume", "prune", "-f"]);
    assert!(k.ok(&["volume", "ls", "-q"]).contains(&generated));
}

#[test]
fn a_foreground_container_keeps_its_log_and_restarts_under_its_monitor() {
    let k = kiln();
    let out = k.out(&[
        "run",
        "--name",
        "fg",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; printf tail",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "out\ntail", "err\n")
    );
    assert_eq!(k.ok(&["logs", "fg"]), "out\ntail");
    let logs = k.out(&["logs", "fg"]);
    assert_eq!(logs.stderr, "err\n", "stderr stays stderr");
    // -i still feeds stdin through.
    let mut cat = k
        .cmd()
        .args(["run", "-i", "--name", "cat", "busybox", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    cat.stdin.take().unwrap().write_all(b"fed\n").unwrap();
    let done = cat.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&done.stdout), "fed\n");
    assert_eq!(k.ok(&["logs", "cat"]), "fed\n");
    // --restart in the foreground: kiln returns with the first run's
    // code and the monitor carries on, as docker does.
    let out = k.out(&[
        "run",
        "--name",
        "rf",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo attempt; exit 3",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (3, "attempt\n"),
        "{}",
        out.stderr
    );
    eventually("it gives up", || {
        inspect(&k, "rf")["State"]["Status"] == "exited" && inspect(&k, "rf")["RestartCount"] == 2
    });
    assert_eq!(k.ok(&["logs", "rf"]), "attempt\nattempt\nattempt\n");
}

#[test]
fn rmi_refuses_an_image_a_container_uses() {
    let k = kiln();
    k.write_ctx("Dockerfile", "FROM busybox\nRUN echo solo > /solo\n");
    k.build(&["-t", "solo"]);
    k.ok(&["create", "--name", "user", "solo", "cat", "/solo"]);
    let err = k.fails(&["rmi", "solo"]);
    assert!(
        err.contains("conflict") && err.contains("must force"),
        "{err}"
    );
    // Another name for it can go: the image stays.
    k.ok(&["tag", "solo", "other"]);
    k.ok(&["rmi", "other"]);
    // -f: the names go, the image stays for the stopped container.
    assert!(k
        .ok(&["rmi", "-f", "solo"])
        .contains("Untagged: solo:latest"));
    assert_eq!(k.ok(&["start", "-a", "user"]), "solo\n");
    // A running container's image cannot be forced out.
    let image = inspect(&k, "user")["Image"].as_str().unwrap().to_string();
    k.ok(&["run", "-d", "--name", "up", &image, "sleep", "30"]);
    let err = k.fails(&["rmi", "-f", &image]);
    assert!(
        err.contains("cannot be forced") && err.contains("running container"),
        "{err}"
    );
    k.ok(&["rm", "-f", "up", "user"]);
    k.ok(&["rmi", &image]);
}

/// busybox's `su` (setuid root, and root with an empty password so it
/// asks for none) gains root as `nobody`: no_new_privs is off by default
/// in RUN steps and `kiln run`, as in docker and BuildKit.
#[test]
fn setuid_programs_work_unless_no_new_privileges_is_asked_for() {
    let k = kiln();
    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nRUN sed -i 's/^root:x:/root::/' /etc/passwd && chmod 4755 /bin/busybox\n\
         USER nobody\nRUN su -c 'id -u' root > /tmp/in-build\n",
    );
    k.build(&["-t", "suid"]);
    assert_eq!(k.run_rm(&["suid", "cat", "/tmp/in-build"]), "0\n");
    assert_eq!(k.run_rm(&["suid", "su", "-c", "id -u", "root"]), "0\n");
    assert_eq!(
        k.run_rm(&["suid", "grep", "NoNewPrivs", "/proc/self/status"]),
        "NoNewPrivs:\t0\n"
    );
    let blocked = k.out(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "suid",
        "su",
        "-c",
        "id -u",
        "root",
    ]);
    assert_ne!(blocked.code, 0);
    assert!(
        blocked.stderr.contains("must be suid"),
        "{}",
        blocked.stderr
    );
    // exec follows the container's setting.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "nnp",
        "--security-opt",
        "no-new-privileges",
        "suid",
        "sleep",
        "60",
    ]);
    assert_eq!(
        k.ok(&["exec", "nnp", "grep", "NoNewPrivs", "/proc/self/status"]),
        "NoNewPrivs:\t1\n"
    );
    // -t sets TERM (docker's xterm).
    let tty = k.out(&["run", "--rm", "-t", "busybox", "sh", "-c", "echo $TERM"]);
    assert!(tty.stdout.contains("xterm"), "{}", tty.stdout);
}
