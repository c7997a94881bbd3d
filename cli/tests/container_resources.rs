//! `kiln run`'s resource, namespace and security flags (issue 18): each
//! one checked where it acts — the container's cgroup read from the host,
//! its rlimits, groups, /dev/shm and devices read from inside, its PID and
//! IPC namespaces compared with the host's, and a custom seccomp profile
//! refusing what it lists. Needs root.

use kiln_tests::Kiln;
use serde_json::Value;
use std::fs;

fn kiln() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

fn inspect(k: &Kiln, name: &str) -> Value {
    let v: Value = serde_json::from_str(&k.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

fn pid_of(k: &Kiln, name: &str) -> u64 {
    inspect(k, name)["State"]["Pid"].as_u64().unwrap()
}

/// The directory of `pid`'s cgroup that holds `controller`'s files: its
/// v1 hierarchy's, or the unified one's.
fn cgroup_dir(pid: u64, controller: &str) -> std::path::PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next(), f.next().unwrap(), f.next().unwrap());
        if controllers.split(',').any(|c| c == controller) {
            return std::path::Path::new("/sys/fs/cgroup")
                .join(controllers)
                .join(path.trim_start_matches('/'));
        }
    }
    let path = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'))
}

fn read(path: std::path::PathBuf) -> String {
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

fn throttled(pid: u64) -> u64 {
    read(cgroup_dir(pid, "cpu").join("cpu.stat"))
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn cpu_flags_become_the_containers_cgroup_and_throttle_it() {
    let k = kiln();
    let busy = "while :; do :; done";
    k.ok(&[
        "run",
        "-d",
        "--name",
        "cpu",
        "--cpus",
        "0.1",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "busybox",
        "sh",
        "-c",
        busy,
    ]);
    let pid = pid_of(&k, "cpu");
    let dir = cgroup_dir(pid, "cpu");
    assert!(
        dir.display().to_string().contains("kiln"),
        "{}",
        dir.display()
    );
    if dir.join("cpu.cfs_quota_us").exists() {
        assert_eq!(read(dir.join("cpu.cfs_quota_us")), "10000");
        assert_eq!(read(dir.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(dir.join("cpu.shares")), "512");
        assert_eq!(read(cgroup_dir(pid, "cpuset").join("cpuset.cpus")), "0");
    } else {
        assert_eq!(read(dir.join("cpu.max")), "10000 100000");
        assert_eq!(read(dir.join("cpuset.cpus")), "0");
    }
    let status = read(format!("/proc/{pid}/status").into());
    assert!(status.contains("Cpus_allowed_list:\t0\n"), "{status}");
    // A busy loop at a tenth of a CPU is throttled within a few periods.
    let start = std::time::Instant::now();
    while throttled(pid) == 0 {
        assert!(start.elapsed().as_secs() < 10, "never throttled");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let state = inspect(&k, "cpu");
    assert_eq!(state["HostConfig"]["NanoCpus"], 100_000_000);
    assert_eq!(state["HostConfig"]["CpuShares"], 512);
    assert_eq!(state["HostConfig"]["CpusetCpus"], "0");
    k.ok(&["rm", "-f", "cpu"]);
    // Checked before anything is made, naming the flag.
    for (flags, says) in [
        (vec!["--cpus", "99"], "--cpus 99"),
        (vec!["--cpus", "x"], "--cpus x"),
        (vec!["--cpuset-cpus", "0-99"], "--cpuset-cpus 0-99"),
        (vec!["--cpu-shares", "1"], "--cpu-shares 1"),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend(["busybox", "true"]);
        let err = k.fails(&args);
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn ulimits_groups_shm_size_and_devices_reach_the_process() {
    let k = kiln();
    let out = k.run_rm(&[
        "--ulimit",
        "nofile=512:1024",
        "--ulimit",
        "core=-1",
        "--group-add",
        "1234",
        "--group-add",
        "nobody",
        "--shm-size",
        "8m",
        "--device",
        "/dev/zero:/dev/kiln/zero",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -c; id -G; df -k /dev/shm | tail -1 | awk '{print $2}'; \
         head -c 3 /dev/kiln/zero | od -An -tx1",
    ]);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        lines[..4],
        ["512", "1024", "unlimited", "0 1234 65534"],
        "{out}"
    );
    assert_eq!(lines[4], "8192", "/dev/shm is 8m: {out}");
    assert_eq!(lines[5], "00 00 00", "the device reads: {out}");
    // The default /dev/shm is docker's 64m; a device not asked for is
    // not there, and a node made for it cannot be opened.
    let out = k.run_rm(&[
        "busybox", "sh", "-c",
        "df -k /dev/shm | tail -1 | awk '{print $2}'; mknod /dev/z c 1 5; head -c 1 /dev/z; echo rc=$?",
    ]);
    assert!(out.starts_with("65536\n") && out.contains("rc=1"), "{out}");
    // Exec'd processes get the added groups too.
    k.ok(&[
        "run",
        "-d",
        "--name",
        "g",
        "--group-add",
        "4321",
        "busybox",
        "sleep",
        "30",
    ]);
    assert_eq!(k.ok(&["exec", "g", "id", "-G"]).trim(), "0 4321");
    k.ok(&["rm", "-f", "g"]);
    for (flags, says) in [
        (vec!["--ulimit", "bogus=1"], "no resource \"bogus\""),
        (vec!["--ulimit", "nofile=10:5"], "soft limit"),
        (vec!["--device", "/etc/passwd"], "not a device"),
        (vec!["--device", "/dev/zero:/dev/z:r"], "r alone"),
        (
            vec!["--group-add", "nosuchgroup"],
            "unable to find group nosuchgroup",
        ),
        (vec!["--shm-size", "lots"], "--shm-size lots"),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend(["busybox", "true"]);
        let err = k.fails(&args);
        assert!(err.contains(says), "{says}: {err}");
    }
}

fn namespace(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn pid_and_ipc_namespaces_are_shared_only_when_asked() {
    let k = kiln();
    let me = std::process::id().to_string();
    // --pid host: this test's own process is visible.
    let probe = format!("test -d /proc/{me} && echo sees-host; echo $$");
    let shared = k.run_rm(&["--pid", "host", "busybox", "sh", "-c", &probe]);
    assert!(shared.starts_with("sees-host\n"), "{shared}");
    assert_ne!(shared.lines().nth(1), Some("1"));
    let own = k.run_rm(&["busybox", "sh", "-c", &probe]);
    assert_eq!(own, "1\n", "a PID namespace of its own by default");
    // --ipc host and container:NAME.
    let host_ipc = namespace("self", "ipc");
    let ipc_of = |flags: &[&str]| {
        let mut args = flags.to_vec();
        args.extend(["busybox", "readlink", "/proc/self/ns/ipc"]);
        k.run_rm(&args).trim().to_string()
    };
    assert_eq!(ipc_of(&["--ipc", "host"]), host_ipc);
    assert_ne!(ipc_of(&[]), host_ipc);
    k.ok(&["run", "-d", "--name", "ipc", "busybox", "sleep", "30"]);
    let theirs = namespace(&pid_of(&k, "ipc").to_string(), "ipc");
    assert_ne!(theirs, host_ipc);
    assert_eq!(ipc_of(&["--ipc", "container:ipc"]), theirs);
    assert_eq!(inspect(&k, "ipc")["HostConfig"]["IpcMode"], "private");
    k.ok(&["rm", "-f", "ipc"]);
    let err = k.fails(&[
        "run",
        "--rm",
        "--ipc",
        "container:nosuch",
        "busybox",
        "true",
    ]);
    assert!(err.contains("--ipc container:nosuch"), "{err}");
    let err = k.fails(&["run", "--rm", "--pid", "container:x", "busybox", "true"]);
    assert!(err.contains("--pid container:x"), "{err}");
}

#[test]
fn a_custom_seccomp_profile_replaces_dockers() {
    let k = kiln();
    let deny_mkdir = k.write(
        "no-mkdir.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    );
    let opt = format!("seccomp={}", deny_mkdir.display());
    let out = k.run_rm(&[
        "--security-opt",
        &opt,
        "busybox",
        "sh",
        "-c",
        "mkdir /d 2>&1; echo rc=$?; touch /f && echo touched",
    ]);
    assert!(
        out.contains("Permission denied") && out.contains("rc=1"),
        "{out}"
    );
    assert!(out.contains("touched"), "{out}");
    // An allow-list profile (defaultAction errno) that omits mkdir.
    let allow_list = k.write(
        "allow.json",
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":[
            "read","write","writev","openat","open","close","fstat","newfstatat","stat","lstat",
            "mmap","munmap","mprotect","brk","rt_sigaction","rt_sigprocmask","rt_sigreturn",
            "ioctl","getpid","getppid","getuid","geteuid","getgid","getegid","setgroups",
            "setresuid","setresgid","capget","capset","prctl","execve","exit","exit_group",
            "arch_prctl","set_tid_address","close_range","fcntl","uname","getcwd","chdir",
            "wait4","clone","vfork","fork","dup2","dup3","pipe","pipe2","access","readlink",
            "getdents64","lseek","sigaltstack","poll","ppoll","pselect6","select","umask",
            "sched_getaffinity","getrandom","futex","set_robust_list","rseq","statx",
            "faccessat","faccessat2","readlinkat","prlimit64","getrlimit"],
            "action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let opt = format!("seccomp={}", allow_list.display());
    let out = k.run_rm(&[
        "--security-opt",
        &opt,
        "busybox",
        "sh",
        "-c",
        "echo allowed; mkdir /d 2>&1; echo rc=$?",
    ]);
    assert!(
        out.starts_with("allowed\n") && out.contains("Operation not permitted"),
        "{out}"
    );
    // Without the profile mkdir works (the profile, not the image, refused it).
    let out = k.run_rm(&["busybox", "sh", "-c", "mkdir /d && echo made"]);
    assert_eq!(out, "made\n");
    // Debian's containers-common ships a profile in docker's format.
    let shipped = "/usr/share/containers/seccomp.json";
    if std::path::Path::new(shipped).exists() {
        let opt = format!("seccomp={shipped}");
        assert_eq!(
            k.run_rm(&["--security-opt", &opt, "busybox", "echo", "ok"]),
            "ok\n"
        );
    }
    let bad = k.write("bad.json", r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#);
    let opt = format!("seccomp={}", bad.display());
    let out = k.out(&["run", "--rm", "--security-opt", &opt, "busybox", "true"]);
    assert_eq!(out.code, 125);
    assert!(
        out.stderr.contains("bad.json") && out.stderr.contains("SCMP_ACT_NOTIFY"),
        "{}",
        out.stderr
    );
}
