// Container tests shared by the native and the OCI-runtime backends: each
// test binary defines `backend()` and includes this file.

/// A busybox lower layer with a passwd/group that has users and groups.
fn busybox_layer(dir: &Path) -> PathBuf {
    let root = dir.join("base");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", root.join("bin").join(applet));
        }
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n").unwrap();
    fs::write(
        root.join("etc/group"),
        "root:x:0:\napp:x:1000:\nextra:x:2000:app\nnobody:x:65534:\n",
    )
    .unwrap();
    fs::write(root.join("etc/gone"), "to be deleted\n").unwrap();
    fs::create_dir_all(root.join("opaque/sub")).unwrap();
    fs::write(root.join("opaque/sub/file"), "x").unwrap();
    root
}

struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    state: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = busybox_layer(tmp.path());
    let state = tmp.path().join("state");
    Fixture {
        base,
        state,
        _tmp: tmp,
    }
}

fn spec(f: &Fixture, script: &str) -> Spec {
    let mut spec = Spec::new(
        vec![f.base.clone()],
        f.state.clone(),
        vec!["/bin/sh".into(), "-c".into(), script.into()],
    );
    spec.hostname = "kiln-test".into();
    spec.runtime = backend();
    spec
}

fn output(s: Spec) -> (Exit, String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    let exit = run(s, |stream, line| match stream {
        Stream::Stdout => out.push_str(&String::from_utf8_lossy(line)),
        Stream::Stderr => err.push_str(&String::from_utf8_lossy(line)),
    })
    .unwrap();
    (exit, out, err)
}

fn mounts_now() -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn isolation() {
    let f = fixture();
    let before = mounts_now();
    let (exit, out, err) = output(spec(&f, "echo pid=$$; hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'; ls /; mount -t tmpfs none /tmp 2>&1 || echo mount-denied; id"));
    assert_eq!(exit, Exit::Code(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1", "PID 1 is the command: {out}");
    assert_eq!(lines[1], "kiln-test");
    assert!(lines[2].starts_with("/bin/sh -c"), "{out}");
    assert!(
        out.contains("mount-denied"),
        "mount must fail without CAP_SYS_ADMIN: {out}"
    );
    assert!(
        !out.contains("work\n") && !out.contains("home\n"),
        "host root not visible: {out}"
    );
    assert!(out.contains("uid=0(root) gid=0(root)"), "{out}");
    assert_eq!(mounts_now(), before, "no mount leaks into the host");
}

#[test]
fn network_none_has_only_loopback() {
    let f = fixture();
    let mut s = spec(
        &f,
        "ls /sys/class/net; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
    );
    s.network = Network::None;
    let (exit, out, err) = output(s);
    assert_eq!(exit, Exit::Code(0), "{err}");
    assert_eq!(
        out.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(),
        ["lo", "lo"],
        "{out}"
    );
}

#[test]
fn users_and_groups() {
    let f = fixture();
    let mut s = spec(&f, "id");
    s.user = "app".into();
    assert_eq!(
        output(s).1,
        "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n"
    );
    let mut s = spec(&f, "id -u; id -g");
    s.user = "4242:2000".into();
    assert_eq!(output(s).1, "4242\n2000\n");
    let mut s = spec(&f, "id");
    s.user = "nosuchuser".into();
    let err = kiln_executor::spawn(s).err().unwrap();
    assert_eq!(
        err.to_string(),
        "unable to find user nosuchuser: no matching entries in passwd file"
    );
}

#[test]
fn exit_codes_signals_and_missing_commands() {
    let f = fixture();
    assert_eq!(output(spec(&f, "exit 42")).0, Exit::Code(42));
    // PID 1 cannot kill itself (the kernel shields a namespace's init), so
    // death by signal comes from outside: what cancellation does.
    let mut s = spec(&f, "sleep 100");
    s.stdio = Stdio::Inherit { stdin: false };
    let running = kiln_executor::spawn(s).unwrap();
    running.kill();
    assert_eq!(running.wait().unwrap(), Exit::Signal(9));
    if backend() != kiln_executor::Runtime::Native {
        // The runtime reports exec failures itself, as a non-zero exit.
        let mut s = spec(&f, "");
        s.argv = vec!["no-such-command".into()];
        assert_ne!(output(s).0, Exit::Code(0));
        return;
    }
    let mut s = spec(&f, "");
    s.argv = vec!["no-such-command".into()];
    let err = kiln_executor::spawn(s).err().unwrap();
    assert!(matches!(err, ExecError::NotFound(_)));
    assert_eq!(err.exit_code(), 127);
    assert_eq!(
        err.to_string(),
        "exec: \"no-such-command\": executable file not found in $PATH"
    );
    let mut s = spec(&f, "");
    s.argv = vec!["/etc/passwd".into()];
    let err = kiln_executor::spawn(s).err().unwrap();
    assert_eq!(err.exit_code(), 126, "{err}");
}

#[test]
fn diff_has_changes_whiteouts_and_opaque_dirs_and_no_mountpoints() {
    let f = fixture();
    let (exit, _, err) = output(spec(&f, "echo new > /created; rm /etc/gone; rm -rf /opaque; mkdir -p /opaque/fresh; mkdir -p /work/dir"));
    assert_eq!(exit, Exit::Code(0), "{err}");
    let upper = f.state.join("upper");
    assert_eq!(fs::read_to_string(upper.join("created")).unwrap(), "new\n");
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let gone = fs::symlink_metadata(upper.join("etc/gone")).unwrap();
    assert!(
        gone.file_type().is_char_device() && gone.rdev() == 0,
        "a whiteout for the deleted file"
    );
    let mut v = [0u8; 4];
    assert!(
        rustix::fs::lgetxattr(upper.join("opaque"), "trusted.overlay.opaque", &mut v).is_ok(),
        "opaque dir"
    );
    // Mountpoints the executor made are not part of the diff.
    for p in [
        "proc",
        "dev",
        "sys",
        "etc/hosts",
        "etc/resolv.conf",
        "etc/hostname",
    ] {
        assert!(!upper.join(p).exists(), "{p} leaked into the diff");
    }
    assert!(
        upper.join("work/dir").is_dir(),
        "a directory the command made stays"
    );
}

#[test]
fn every_mount_type() {
    let f = fixture();
    let host = f.state.parent().unwrap().join("hostdir");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("data"), "from host").unwrap();
    let mut s = spec(&f, "cat /in/data; echo x > /in/new 2>/dev/null && echo ro-broken || echo ro-ok; echo y > /rw/new; df -k /scratch | tail -1 | awk '{print $2}'; echo t > /scratch/t && cat /scratch/t");
    s.mounts = vec![
        Mount {
            source: MountSource::Bind(host.clone()),
            target: "/in".into(),
            readonly: true,
        },
        Mount {
            source: MountSource::Bind(host.clone()),
            target: "/rw".into(),
            readonly: false,
        },
        Mount {
            source: MountSource::Tmpfs { size: 1 << 20 },
            target: "/scratch".into(),
            readonly: false,
        },
    ];
    let (exit, out, err) = output(s);
    assert_eq!(exit, Exit::Code(0), "{err}");
    assert_eq!(out, "from hostro-ok\n1024\nt\n"); // data has no newline
    assert_eq!(fs::read_to_string(host.join("new")).unwrap(), "y\n");
    let upper = f.state.join("upper");
    for p in ["in", "rw", "scratch"] {
        assert!(
            !upper.join(p).exists(),
            "mountpoint {p} leaked into the diff"
        );
    }
}

#[test]
fn workdir_created_and_env() {
    let f = fixture();
    let mut s = spec(&f, "pwd; echo $FOO; echo $PATH; echo $HOME");
    s.cwd = "/srv/app".into();
    s.env = vec!["FOO=bar".into()];
    let (_, out, _) = output(s);
    assert_eq!(
        out,
        format!("/srv/app\nbar\n{}\n/root\n", kiln_executor::DEFAULT_PATH)
    );
}

#[test]
fn a_hundred_and_twenty_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let base = busybox_layer(tmp.path());
    let mut lowers = vec![base];
    for i in 0..120 {
        let d = tmp.path().join(format!(
            "layer-with-a-long-descriptive-name-{i:03}-{}",
            "x".repeat(40)
        ));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("f{i}")), i.to_string()).unwrap();
        lowers.push(d);
    }
    let f = Fixture {
        base: PathBuf::new(),
        state: tmp.path().join("state"),
        _tmp: tempfile::tempdir().unwrap(),
    };
    let mut s = spec(&f, "cat /f0 /f119; echo; ls / | grep -c '^f'");
    s.lowers = lowers;
    let (exit, out, err) = output(s);
    assert_eq!(exit, Exit::Code(0), "{err}");
    assert_eq!(out, "0119\n120\n");
}

#[test]
fn copy_mount_is_writable_and_throwaway() {
    let f = fixture();
    let src = f.state.parent().unwrap().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("orig"), "original").unwrap();
    let mut s = spec(&f, "echo changed > /m/orig; echo new > /m/new; cat /m/orig");
    s.mounts = vec![Mount {
        source: MountSource::Copy(src.clone()),
        target: "/m".into(),
        readonly: false,
    }];
    let (exit, out, err) = output(s);
    assert_eq!(exit, Exit::Code(0), "{err}");
    assert_eq!(out, "changed\n");
    assert_eq!(
        fs::read_to_string(src.join("orig")).unwrap(),
        "original",
        "the source never changes"
    );
    assert!(!src.join("new").exists());
    assert!(
        !f.state.join("upper/m").exists(),
        "nor does the copy reach the diff"
    );
}

#[test]
fn secret_mount_is_private_and_never_in_the_diff() {
    let f = fixture();
    let mut s = spec(&f, "cat /run/secrets/token; stat -c '%a %u' /run/secrets/token; echo x > /run/secrets/token 2>/dev/null || echo read-only");
    s.user = "app".into();
    s.mounts = vec![Mount {
        source: MountSource::Secret {
            data: b"s3cr3t".to_vec(),
            uid: None,
            gid: None,
            mode: 0o400,
        },
        target: "/run/secrets/token".into(),
        readonly: true,
    }];
    let (exit, out, err) = output(s);
    assert_eq!(exit, Exit::Code(0), "{err}");
    assert_eq!(out, "s3cr3t400 1000\nread-only\n");
    assert!(
        !f.state.join("upper/run").exists(),
        "the secret's mountpoint must not reach the diff"
    );
}

#[test]
fn cache_mounts_persist_and_respect_sharing() {
    use kiln_executor::Sharing;
    let f = fixture();
    let cache = f.state.parent().unwrap().join("caches/apt");
    let cache_mount = |sharing| Mount {
        source: MountSource::Cache {
            dir: cache.clone(),
            sharing,
            uid: 1000,
            gid: 1000,
            mode: 0o750,
            subpath: None,
            },
        target: "/var/cache/x".into(),
        readonly: false,
    };
    let mut s = spec(
        &f,
        "stat -c '%a %u %g' /var/cache/x; echo one >> /var/cache/x/log",
    );
    s.mounts = vec![cache_mount(Sharing::Shared)];
    assert_eq!(
        output(s).1,
        "750 1000 1000\n",
        "created with uid/gid/mode on first use"
    );
    let f2 = Fixture {
        base: f.base.clone(),
        state: f.state.parent().unwrap().join("state2"),
        _tmp: tempfile::tempdir().unwrap(),
    };
    let mut s = spec(&f2, "cat /var/cache/x/log");
    s.mounts = vec![cache_mount(Sharing::Locked)];
    assert_eq!(output(s).1, "one\n", "the cache outlives the container");
    assert!(
        !f2.state.join("upper/var/cache/x").exists(),
        "nor is it in the diff"
    );

    // While one container holds a private cache, another gets a copy.
    let holder_state = f.state.parent().unwrap().join("holder");
    let mut holder = spec(
        &Fixture {
            base: f.base.clone(),
            state: holder_state,
            _tmp: tempfile::tempdir().unwrap(),
        },
        "sleep 1",
    );
    holder.mounts = vec![cache_mount(Sharing::Private)];
    holder.stdio = Stdio::Inherit { stdin: false };
    let running = kiln_executor::spawn(holder).unwrap();
    let f3 = Fixture {
        base: f.base.clone(),
        state: f.state.parent().unwrap().join("state3"),
        _tmp: tempfile::tempdir().unwrap(),
    };
    let mut s = spec(
        &f3,
        "echo from-copy >> /var/cache/x/log; cat /var/cache/x/log",
    );
    s.mounts = vec![cache_mount(Sharing::Private)];
    assert_eq!(output(s).1, "one\nfrom-copy\n");
    assert_eq!(running.wait().unwrap(), Exit::Code(0));
    assert_eq!(
        fs::read_to_string(cache.join("log")).unwrap(),
        "one\n",
        "the copy's writes were thrown away"
    );
}

#[test]
fn cgroup_memory_and_pids_limits() {
    let f = fixture();
    // pids: at most 6 tasks, so most of 20 background sleeps cannot start.
    let mut s = spec(
        &f,
        "for i in $(seq 1 20); do sleep 1 & done; wait; echo done",
    );
    s.limits = kiln_executor::Limits {
        pids: Some(6),
        ..Default::default()
    };
    let (_, _, err) = output(s);
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "{err}"
    );
    // memory: 32 MiB; `dd` with a 100 MB buffer is OOM-killed.
    let f = fixture();
    let mut s = spec(
        &f,
        "dd if=/dev/zero of=/dev/null bs=100M count=2 2>/dev/null; echo status=$?",
    );
    s.limits = kiln_executor::Limits {
        memory: Some(32 << 20),
        ..Default::default()
    };
    let (exit, out, err) = output(s);
    assert_eq!(exit, Exit::Code(0), "{err}");
    assert_eq!(out, "status=137\n", "killed by the OOM killer (SIGKILL)");
    // Without the limit the same command completes.
    let f = fixture();
    let (_, out, _) = output(spec(
        &f,
        "dd if=/dev/zero of=/dev/null bs=100M count=2 2>/dev/null; echo status=$?",
    ));
    assert_eq!(out, "status=0\n");
}

#[test]
fn rlimits_are_applied() {
    let f = fixture();
    let mut s = spec(&f, "ulimit -n; ulimit -Hn");
    s.rlimits = vec![(rustix::process::Resource::Nofile, Some(123), Some(456))];
    assert_eq!(output(s).1, "123\n456\n");
}

#[test]
fn workdir_under_a_file_is_a_clear_error() {
    let f = fixture();
    let mut s = spec(&f, "true");
    s.cwd = "/etc/passwd/sub".into();
    if backend() == kiln_executor::Runtime::Native {
        let err = kiln_executor::spawn(s).err().unwrap();
        assert!(err.to_string().contains("working directory"), "{err}");
        assert_eq!(err.exit_code(), 125);
    } else {
        assert_ne!(output(s).0, Exit::Code(0));
    }
}

#[test]
fn init_reaps_orphaned_zombies() {
    // An orphan re-parented to PID 1 stays a zombie when PID 1 is a
    // command that never waits (`sleep`); with init it is reaped.
    // The orphan outlives the exec that makes PID 1 a `sleep` (which never
    // waits); an observer polls its state until it is decisively a zombie
    // or gone.
    let script = "sh -c 'sleep 0.5 & echo $! > /tmp/orphan'; \
        (for i in $(seq 100); do s=$(cut -d' ' -f3 /proc/$(cat /tmp/orphan)/stat 2>/dev/null); \
        [ \"$s\" = Z ] && { echo zombie; exit; }; [ -z \"$s\" ] && { echo reaped; exit; }; sleep 0.05; done; echo undecided) & \
        exec sleep 2";
    let f = fixture();
    let (_, out, _) = output(spec(&f, script));
    assert_eq!(out.trim(), "zombie", "without init the orphan stays a zombie");
    if backend() != kiln_executor::Runtime::Native {
        return; // --init is the native executor's
    }
    let f = fixture();
    let mut s = spec(&f, script);
    s.init = true;
    let (exit, out, err) = output(s);
    assert_eq!(out.trim(), "reaped", "init reaped it: {err}");
    assert_eq!(exit, Exit::Code(0));
    // The command's status is the container's, and signals reach it.
    let f = fixture();
    let mut s = spec(&f, "exit 9");
    s.init = true;
    assert_eq!(output(s).0, Exit::Code(9));
    // Signal only once the trap is installed (it writes a marker to a
    // host directory bound in).
    let f = fixture();
    let marks = f.state.parent().unwrap().join("marks");
    fs::create_dir_all(&marks).unwrap();
    let mut s = spec(&f, "trap 'exit 5' TERM; touch /marks/ready; sleep 5 & wait");
    s.init = true;
    s.stdio = Stdio::Inherit { stdin: false };
    s.mounts = vec![Mount { source: MountSource::Bind(marks.clone()), target: "/marks".into(), readonly: false }];
    let running = kiln_executor::spawn(s).unwrap();
    while !marks.join("ready").exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    running.handle().signal(15);
    assert_eq!(running.wait().unwrap(), Exit::Code(5), "SIGTERM forwarded to the command");
}
