//! The escape suite: an attacker's probe (`tests/probe/escape_probe.rs`)
//! runs inside real containers, on kiln's own executor and on runc, and
//! tries every known way out: inherited descriptors, PID 1's /proc
//! entries, every host device node (mknod + open, in the rootfs, /dev,
//! bind, cache and tmpfs mounts), the mount/namespace/keyring/bpf/ptrace/
//! module syscalls, /proc/sys, /sys and sysrq writes, the host's loopback
//! under `--network none`. Each `ok` line the probe must print is
//! asserted, so a check that stops running fails too. Needs root.

use kiln_executor::{
    run, Exit, Mount, MountSource, Network, Runtime, Sharing, Spec, Stdio, Stream,
};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    base: PathBuf,
    probe: PathBuf,
}

/// A busybox layer and a layer holding the probe and the host's device list.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let base = dir.join("base");
    fs::create_dir_all(base.join("bin")).unwrap();
    fs::create_dir_all(base.join("tmp")).unwrap();
    fs::create_dir_all(base.join("etc")).unwrap();
    fs::copy("/bin/busybox", base.join("bin/busybox")).unwrap();
    symlink("busybox", base.join("bin/sh")).unwrap();
    fs::write(base.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(base.join("etc/group"), "root:x:0:\n").unwrap();
    let probe = dir.join("probe-layer");
    fs::create_dir_all(&probe).unwrap();
    fs::copy(kiln_tests::escape_probe(), probe.join("probe")).unwrap();
    fs::write(probe.join("devlist"), kiln_tests::host_devices()).unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        base,
        probe,
    }
}

fn spec(f: &Fixture, runtime: Runtime, args: &[String]) -> Spec {
    let mut argv = vec![
        "/probe".to_string(),
        "--devices".into(),
        "/devlist".into(),
        "--host-ns".into(),
        kiln_tests::host_namespaces(),
    ];
    argv.extend(args.iter().cloned());
    Spec {
        lowers: vec![f.base.clone(), f.probe.clone()],
        state_dir: f.dir.join(format!("state-{}", args.len())),
        argv,
        env: vec![],
        cwd: "/".into(),
        user: String::new(),
        hostname: "probe".into(),
        network: Network::None,
        mounts: vec![],
        stdio: Stdio::Piped,
        rlimits: vec![],
        limits: Default::default(),
        cgroup_root: "/sys/fs/cgroup".into(),
        runtime,
        init: false,
        deferred_sync: false,
        security: Default::default(),
        readonly_rootfs: false,
        extra_groups: Vec::new(),
        shm_size: kiln_executor::DEFAULT_SHM_SIZE,
        pid_host: false,
        ipc: kiln_executor::Ipc::Private,
        devices: Vec::new(),
        extra_hosts: Vec::new(),
        address: None,
        resolv_conf: None,
        cache_wait: None,
    }
}

fn report(s: Spec) -> String {
    let mut out = String::new();
    let exit = run(s, |stream, line| {
        if stream == Stream::Stdout {
            out.push_str(&String::from_utf8_lossy(line));
        } else {
            out.push_str(&format!("stderr: {}", String::from_utf8_lossy(line)));
        }
    })
    .unwrap();
    assert!(
        matches!(exit, Exit::Code(0) | Exit::Code(1)),
        "probe: {exit}\n{out}"
    );
    out
}

/// A TCP listener on the host's loopback: the container must not reach it.
fn host_port() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn all_checks(extra: &[&'static [&'static str]]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = kiln_tests::PROBE_ALWAYS.to_vec();
    for e in extra {
        v.extend_from_slice(e);
    }
    v
}

/// Mounts of every kind the probe can try device nodes in.
fn with_mounts(f: &Fixture, s: &mut Spec) -> String {
    let host_dir = f.dir.join("bind-src");
    fs::create_dir_all(&host_dir).unwrap();
    let cache = f.dir.join("cache");
    s.mounts = vec![
        Mount {
            source: MountSource::Bind(host_dir),
            target: "/bind".into(),
            readonly: false,
        },
        Mount {
            source: MountSource::Cache {
                dir: cache,
                sharing: Sharing::Shared,
                uid: 0,
                gid: 0,
                mode: 0o755,
                subpath: None,
            },
            target: "/cache".into(),
            readonly: false,
        },
        Mount {
            source: MountSource::Tmpfs { size: 1 << 20 },
            target: "/scratch".into(),
            readonly: false,
        },
    ];
    "/tmp,/bind,/cache,/scratch".into()
}

#[test]
fn native_container_has_no_way_out() {
    let f = fixture();
    let (_l, port) = host_port();
    let mut s = spec(&f, Runtime::Native, &[]);
    let writable = with_mounts(&f, &mut s);
    s.argv.extend([
        "--host-port".into(),
        port.to_string(),
        "--writable".into(),
        writable,
    ]);
    let out = report(s);
    kiln_tests::assert_no_escape(&out, &all_checks(&[kiln_tests::PROBE_NO_NETWORK]));
}

#[test]
fn native_init_holds_nothing_the_container_can_reach() {
    let f = fixture();
    let (_l, port) = host_port();
    let mut s = spec(
        &f,
        Runtime::Native,
        &[
            "--expect-init".into(),
            "--host-port".into(),
            port.to_string(),
        ],
    );
    s.init = true;
    let out = report(s);
    kiln_tests::assert_no_escape(
        &out,
        &all_checks(&[kiln_tests::PROBE_NO_NETWORK, kiln_tests::PROBE_INIT]),
    );
}

/// A descriptor the caller left open (not close-on-exec), as a CI agent or
/// a shell's `exec 7</` does, must not reach the container: this one is
/// the host's root directory.
#[test]
fn inherited_descriptors_never_reach_the_container() {
    let f = fixture();
    let root = fs::File::open("/").unwrap();
    // Clear close-on-exec, as an inherited descriptor would have it.
    rustix::io::fcntl_setfd(&root, rustix::io::FdFlags::empty()).unwrap();
    for init in [false, true] {
        let mut s = spec(&f, Runtime::Native, &["--host-net".into()]);
        s.network = Network::Host;
        s.init = init;
        if init {
            s.argv.push("--expect-init".into());
        }
        s.state_dir = f.dir.join(format!("state-fd-{init}"));
        let out = report(s);
        kiln_tests::assert_no_escape(&out, &["fd-leak", "fd-host-root"]);
    }
    drop(root);
}

#[test]
fn runc_container_has_no_way_out() {
    let f = fixture();
    let (_l, port) = host_port();
    let runc = Runtime::Oci(kiln_tests::tool_path("runc"));
    let mut s = spec(&f, runc, &[]);
    // Tree mounts need the native runtime; binds, caches and tmpfs work.
    let writable = with_mounts(&f, &mut s);
    s.argv.extend([
        "--host-port".into(),
        port.to_string(),
        "--writable".into(),
        writable,
    ]);
    let root = fs::File::open("/").unwrap();
    rustix::io::fcntl_setfd(&root, rustix::io::FdFlags::empty()).unwrap();
    let out = report(s);
    drop(root);
    kiln_tests::assert_no_escape(&out, &all_checks(&[kiln_tests::PROBE_NO_NETWORK]));
}

/// SIGKILL of the process that started a container (kiln dying) takes
/// the container with it, on both backends: nothing keeps running.
#[test]
fn containers_die_with_their_parent() {
    let f = fixture();
    for (n, runtime) in [Runtime::Native, Runtime::Oci(kiln_tests::tool_path("runc"))]
        .into_iter()
        .enumerate()
    {
        let marker = format!("kiln-orphan-check-{}-{n}", std::process::id());
        // A child process plays kiln: it starts the container, then is killed.
        let state = f.dir.join(format!("state-orphan-{n}"));
        match start_parent(&f, runtime, &state, &marker) {
            Some(pid) => {
                std::thread::sleep(std::time::Duration::from_millis(500));
                assert!(
                    processes_named(&marker) > 0,
                    "the container should be running before the kill"
                );
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
                let mut left = usize::MAX;
                for _ in 0..50 {
                    left = processes_named(&marker);
                    if left == 0 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                if left > 0 {
                    kill_named(&marker);
                }
                assert_eq!(left, 0, "container processes outlived their parent ({n})");
            }
            None => panic!("could not start the parent process"),
        }
    }
}

/// Starts `sleep` in a container from a separate process (this test
/// binary re-run with an env var, so no fork of a threaded process is
/// needed) and returns that process's pid.
fn start_parent(
    f: &Fixture,
    runtime: Runtime,
    state: &Path,
    marker: &str,
) -> Option<rustix::process::Pid> {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "orphan_parent",
            "--nocapture",
            "--include-ignored",
        ])
        .env("KILN_ORPHAN_BASE", &f.base)
        .env("KILN_ORPHAN_STATE", state)
        .env("KILN_ORPHAN_MARKER", marker)
        .env(
            "KILN_ORPHAN_RUNTIME",
            match &runtime {
                Runtime::Native => String::new(),
                Runtime::Oci(p) => p.display().to_string(),
            },
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    rustix::process::Pid::from_raw(child.id() as i32)
}

/// Not a test on its own: the parent process of
/// `containers_die_with_their_parent` (runs only with its env vars).
#[test]
#[ignore]
fn orphan_parent() {
    let Some(base) = std::env::var_os("KILN_ORPHAN_BASE") else {
        return;
    };
    let marker = std::env::var("KILN_ORPHAN_MARKER").unwrap();
    let runtime = match std::env::var("KILN_ORPHAN_RUNTIME").unwrap().as_str() {
        "" => Runtime::Native,
        p => Runtime::Oci(PathBuf::from(p)),
    };
    let s = Spec {
        lowers: vec![PathBuf::from(base)],
        state_dir: PathBuf::from(std::env::var_os("KILN_ORPHAN_STATE").unwrap()),
        // The marker is in the command line, so the test can find it.
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            "sleep 1000; :".into(),
            marker,
        ],
        env: vec![],
        cwd: "/".into(),
        user: String::new(),
        hostname: "orphan".into(),
        network: Network::Host,
        mounts: vec![],
        stdio: Stdio::Inherit { stdin: false },
        rlimits: vec![],
        limits: Default::default(),
        cgroup_root: "/sys/fs/cgroup".into(),
        runtime,
        init: false,
        deferred_sync: false,
        security: Default::default(),
        readonly_rootfs: false,
        extra_groups: Vec::new(),
        shm_size: kiln_executor::DEFAULT_SHM_SIZE,
        pid_host: false,
        ipc: kiln_executor::Ipc::Private,
        devices: Vec::new(),
        extra_hosts: Vec::new(),
        address: None,
        resolv_conf: None,
        cache_wait: None,
    };
    let _ = kiln_executor::spawn(s).unwrap().wait();
}

/// Pids of host processes whose command line contains `marker`.
fn pids_named(marker: &str) -> Vec<i32> {
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

fn processes_named(marker: &str) -> usize {
    pids_named(marker).len()
}

/// SIGKILL (PID 1 of a namespace ignores the rest from outside).
fn kill_named(marker: &str) {
    for pid in pids_named(marker) {
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
}
