//! Helpers shared by kiln's test binaries: where the repository, its
//! fixtures and the shared conformance corpus are.

use std::path::PathBuf;

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
