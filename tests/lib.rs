//! Helpers shared by kiln's test binaries: where the repository, its
//! fixtures and the shared conformance corpus are.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `fixtures/<sub>` in the repository.
pub fn fixtures(sub: &str) -> PathBuf {
    repo_root().join("fixtures").join(sub)
}

/// The shared material beside the repository (`../shared`), or
/// `$KILN_SHARED`. Panics with a clear message when absent: a test that
/// needs the corpus must not pass silently without it.
pub fn shared() -> PathBuf {
    let dir = std::env::var_os("KILN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("..").join("shared"));
    assert!(
        dir.join("conformance").is_dir(),
        "the shared corpus is missing at {} (set KILN_SHARED to its path)",
        dir.display()
    );
    dir
}

/// Sorted subdirectories of `dir`.
pub fn case_dirs(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Set `KILN_BLESS=1` to rewrite golden files from the current output.
pub fn bless() -> bool {
    std::env::var_os("KILN_BLESS").is_some_and(|v| v == "1")
}

/// Where a required tool lives (Debian: busybox-static, skopeo, umoci,
/// podman, runc). Panics when it is missing: the test needs it.
pub fn tool_path(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: .ci/run installs it (apt-get install busybox-static skopeo umoci podman runc)");
}

/// Runs a tool that must succeed; returns its stdout.
pub fn tool(name: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(tool_path(name))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes the busybox root filesystem tarball `examples/busybox-rootfs.sh`
/// makes (from Debian's busybox-static) to `dest`.
pub fn write_busybox_rootfs(dest: &Path) {
    let out = std::process::Command::new("bash")
        .arg(repo_root().join("examples/busybox-rootfs.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "examples/busybox-rootfs.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dest, out.stdout).unwrap();
}

/// A free TCP port on 127.0.0.1 (free when asked; servers retry on a race).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut std::process::Child, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("{what} did not listen on 127.0.0.1:{port}");
}

/// A real registry (Debian's `docker-registry`, distribution v2) on
/// 127.0.0.1 with its own storage; stopped on drop.
pub struct Registry {
    pub port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// No auth when `htpasswd` is None; else basic auth against that
    /// `user:bcrypt-hash` file content.
    pub fn start(htpasswd: Option<&str>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some(h) = htpasswd {
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, h).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = std::process::Command::new(tool_path("docker-registry"))
            .arg("serve")
            .arg(&config_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, "docker-registry");
        Registry {
            port,
            child,
            _dir: dir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bcrypt `user:hash` line from apache2-utils' htpasswd.
pub fn htpasswd_line(user: &str, password: &str) -> String {
    tool("htpasswd", &["-Bbn", user, password])
}

/// `tests/registry-proxy.py` in front of `upstream`: a token server
/// (`--token USER:PASS`), or a faulty registry (`--corrupt-blobs`,
/// `--close-blobs`). Stopped on drop.
pub struct Proxy {
    pub port: u16,
    child: std::process::Child,
}

impl Proxy {
    pub fn start(upstream: u16, args: &[&str]) -> Proxy {
        let port = free_port();
        let mut child = std::process::Command::new("python3")
            .arg(repo_root().join("tests/registry-proxy.py"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--upstream")
            .arg(format!("127.0.0.1:{upstream}"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, "registry-proxy.py");
        Proxy { port, child }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split("\r\n\r\n")
            .nth(1)
            .unwrap_or("")
            .trim()
            .to_string()
    }

    /// How many tokens the proxy's token server handed out.
    pub fn tokens_issued(&self) -> u64 {
        self.get("/stats").parse().unwrap()
    }

    /// (manifest GETs, blob GETs) forwarded so far.
    pub fn gets(&self) -> (u64, u64) {
        let body = self.get("/requests");
        let (m, b) = body.split_once(' ').unwrap();
        (m.parse().unwrap(), b.parse().unwrap())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A kiln binary with a store of its own in a temp directory: the CLI
/// tests' harness. The binary's path comes from the caller
/// (`env!("CARGO_BIN_EXE_kiln")`, which Cargo sets only for the cli
/// crate's tests).
pub struct Kiln {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Kiln {
    /// An empty store.
    pub fn new(bin: impl Into<PathBuf>) -> Kiln {
        Kiln {
            dir: tempfile::tempdir().unwrap(),
            bin: bin.into(),
        }
    }

    /// A store holding `busybox` (from Debian's busybox-static).
    pub fn with_busybox(bin: impl Into<PathBuf>) -> Kiln {
        let k = Kiln::new(bin);
        let rootfs = k.path("busybox-rootfs.tar");
        write_busybox_rootfs(&rootfs);
        k.ok(&["import", rootfs.to_str().unwrap(), "busybox"]);
        k
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// A path in the test's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (and its parents) in the test's directory.
    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        p
    }

    /// `kiln --root ROOT`, without the caller's SOURCE_DATE_EPOCH.
    pub fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.bin);
        c.arg("--root").arg(self.root());
        c.env_remove("SOURCE_DATE_EPOCH");
        c
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Runs kiln with `args`; whatever happens.
    pub fn out(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs kiln with `args`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.out(args);
        assert_eq!(out.code, 0, "kiln {args:?} failed:\n{}", out.stderr);
        out.stdout
    }

    /// Runs kiln with `args`, which must fail cleanly (exit 1..=125, no
    /// panic); returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.out(args);
        assert!(
            (1..=125).contains(&out.code),
            "kiln {args:?} should fail cleanly, got {}:\n{}",
            out.code,
            out.stderr
        );
        assert!(
            !out.stderr.contains("panicked"),
            "kiln panicked:\n{}",
            out.stderr
        );
        out.stderr
    }
}

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
