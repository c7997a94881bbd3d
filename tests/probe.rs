//! The escape probe: a static binary run inside containers that tries
//! every way out and reports each check; what it must find on the host
//! side; how to read its report out of build progress.

use crate::repo_root;
use std::path::PathBuf;

/// The escape probe (`tests/probe/escape_probe.rs`), compiled once per
/// source version with rustc as a static binary (it runs in busybox
/// rootfses, which have no libc), under `target/kiln-test-tools/`.
pub fn escape_probe() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_escape_probe).clone()
}

fn build_escape_probe() -> PathBuf {
    let source = repo_root().join("tests/probe/escape_probe.rs");
    let text = std::fs::read(&source).expect("the probe source");
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in &text {
        hash = (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3);
    }
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("kiln-test-tools");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(format!("escape-probe-{hash:016x}"));
    if binary.is_file() {
        return binary;
    }
    // Beside cargo when tests run under it; else from PATH.
    let rustc = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .and_then(|c| c.parent().map(|d| d.join("rustc")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("rustc"));
    // Built in a private directory, then renamed: test binaries may race
    // to build it.
    let work = tempfile::tempdir_in(&dir).unwrap();
    let tmp = work.path().join("escape-probe");
    let out = std::process::Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-o",
        ])
        .arg(&tmp)
        .arg(&source)
        .output()
        .expect("rustc runs");
    assert!(
        out.status.success(),
        "compiling the escape probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &binary).unwrap();
    binary
}

/// The host's device nodes as `c|b MAJOR MINOR PATH` lines (what the
/// escape probe tries to recreate and open inside a container).
pub fn host_devices() -> String {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = String::new();
    let mut stack = vec![PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            let ft = m.file_type();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_char_device() || ft.is_block_device() {
                let rdev = m.rdev();
                let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
                let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
                let kind = if ft.is_block_device() { 'b' } else { 'c' };
                out.push_str(&format!("{kind} {major} {minor} {}\n", e.path().display()));
            }
        }
    }
    out
}

/// The inode of each of this process's namespaces, as the probe's
/// `--host-ns` argument (`mnt=...,pid=...`).
pub fn host_namespaces() -> String {
    use std::os::unix::fs::MetadataExt;
    ["mnt", "pid", "net", "ipc", "uts"]
        .iter()
        .map(|ns| {
            let ino = std::fs::metadata(format!("/proc/self/ns/{ns}"))
                .map(|m| m.ino())
                .unwrap_or(0);
            format!("{ns}={ino}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Asserts the probe's report has no escape and covers every check it
/// must (so a check that silently stopped running fails the test too).
pub fn assert_no_escape(report: &str, must_check: &[&str]) {
    let escapes: Vec<&str> = report.lines().filter(|l| l.starts_with("ESCAPE")).collect();
    assert!(
        escapes.is_empty(),
        "escapes:\n{}\nfull report:\n{report}",
        escapes.join("\n")
    );
    for check in must_check {
        assert!(
            report.lines().any(|l| l == format!("ok {check}")),
            "check {check} did not pass:\n{report}"
        );
    }
    assert!(
        report.contains("probe done: 0 escapes"),
        "the probe did not finish:\n{report}"
    );
}

/// The checks every probe run must pass, whatever the setup.
pub const PROBE_ALWAYS: &[&str] = &[
    "fd-leak",
    "fd-host-root",
    "pid-namespace",
    "device-mknod-open",
    "device-list",
    "device-null",
    "mount",
    "umount",
    "mount-cgroup",
    "fsopen",
    "open_tree",
    "pivot_root",
    "unshare-user",
    "unshare-mount",
    "unshare-net",
    "clone-newuser",
    "setns",
    "add_key",
    "keyctl",
    "bpf",
    "ptrace",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "iopl",
    "swapon",
    "reboot",
    "perf_event_open",
    "process_vm_readv",
    "userfaultfd",
    "open_by_handle_at",
    "proc-sys-write",
    "proc-sys-modprobe",
    "proc-sysrq-trigger",
    "sys-write",
    "sys-kernel-profiling",
    "proc-kcore",
    "proc-keys",
    "capabilities",
    "seccomp",
    "namespace-mnt",
    "namespace-pid",
    "namespace-ipc",
    "namespace-uts",
];

/// With `--network none`: the network checks too.
pub const PROBE_NO_NETWORK: &[&str] = &[
    "network-interfaces",
    "network-host-loopback",
    "network-raw",
    "namespace-net",
];

/// With kiln's init as PID 1.
pub const PROBE_INIT: &[&str] = &[
    "proc1-comm",
    "proc1-fd",
    "proc1-fd-open",
    "proc1-mem",
    "proc1-exe",
    "proc1-exe-write",
    "proc1-root",
    "proc1-environ",
];

/// The probe's report lines (`ok ...`, `skip ...`, `ESCAPE ...`, `probe
/// done ...`) out of `kiln build --progress plain` output, where each
/// comes as `#N 0.123 <line>`.
pub fn probe_lines(progress: &str) -> String {
    let mut out = String::new();
    for line in progress.lines() {
        for marker in ["ok ", "skip ", "ESCAPE ", "probe done"] {
            if let Some(at) = line.find(&format!(" {marker}")) {
                if line.starts_with('#') {
                    out.push_str(&line[at + 1..]);
                    out.push('\n');
                }
                break;
            }
        }
    }
    out
}
