//! Helpers shared by kiln's test binaries: where the repository, its
//! fixtures and the shared conformance corpus are, the tools tests check
//! with; the CLI harness ([`Kiln`]), the servers tests talk to
//! ([`Registry`], [`Proxy`], [`FileServer`]) and the escape probe.

mod hostile_tar;
mod kiln;
mod probe;
mod servers;

pub use hostile_tar::{all_files, hostile_tars, raw_tar, Arena, RawEntry};
pub use kiln::{Kiln, Output, TestUser};
pub use probe::*;
pub use servers::{
    free_port, htpasswd_line, private_ca, run_ok, wait_for_port, FileServer, Proxy, Reaped,
    Registry, RegistryTls,
};

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

/// Compares one expected file of a golden case with `actual` (`None`:
/// the file must not exist), or writes it when blessing; a difference is
/// pushed onto `failures` for the test to report all at once.
pub fn check_golden(dir: &Path, file: &str, actual: Option<&str>, failures: &mut Vec<String>) {
    let path = dir.join(file);
    let expected = std::fs::read_to_string(&path).ok();
    if expected.as_deref() == actual {
        return;
    }
    if bless() {
        match actual {
            Some(a) => std::fs::write(&path, a).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
        return;
    }
    failures.push(format!(
        "{}:\n--- expected\n{}\n--- actual\n{}",
        path.display(),
        expected.as_deref().unwrap_or("<no file>"),
        actual.unwrap_or("<no file>")
    ));
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

/// A file `tests/setup/*.sh` made in the test cache (`KILN_TEST_CACHE`,
/// default /var/cache/kiln-tests); panics naming the script if missing.
fn setup_file(name: &str, script: &str) -> PathBuf {
    let p = PathBuf::from(
        std::env::var_os("KILN_TEST_CACHE").unwrap_or_else(|| "/var/cache/kiln-tests".into()),
    )
    .join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `bash tests/setup/{script}` (.ci/run does)",
        p.display()
    );
    p
}

/// The debian:bookworm root filesystem tarball `tests/setup/debian-rootfs.sh`
/// makes (`KILN_TEST_DEBIAN_TAR` names another).
pub fn debian_rootfs() -> PathBuf {
    match std::env::var_os("KILN_TEST_DEBIAN_TAR") {
        Some(p) => PathBuf::from(p),
        None => setup_file("debian-bookworm.tar", "debian-rootfs.sh"),
    }
}

/// Debian's arm64 busybox-static binary `tests/setup/arm64-busybox.sh` fetches.
pub fn arm64_busybox() -> PathBuf {
    setup_file("busybox-arm64", "arm64-busybox.sh")
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
