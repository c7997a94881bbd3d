//! Arbitrary bytes as a layer (tar, gzip or zstd): the safe layer applier
//! must never panic and never create anything outside its target
//! directory, whatever the entries say (`..`, absolute paths, symlinks
//! and hardlinks pointing out, whiteouts, devices, huge headers).
//!
//!     cargo +nightly fuzz run apply_layer -- -max_total_time=60
//!
//! Each input is applied into a fresh directory inside an otherwise empty
//! scratch directory on /dev/shm; anything else appearing in the scratch
//! directory is an escape and aborts the run.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("kiln-fuzz-apply-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let scratch = scratch();
    let target = scratch.join("t");
    let _ = kiln_store::layer::apply_layer(data, &target);
    let entries: Vec<String> = std::fs::read_dir(scratch)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        entries.iter().all(|e| e == "t"),
        "the layer wrote outside its target: {entries:?}"
    );
    std::fs::remove_dir_all(&target).ok();
});
