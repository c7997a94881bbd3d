//! Build-context checksums: content decides, mtimes/owners/location do not,
//! and the memo spares re-reading unchanged files.

use kiln_store::Store;
use std::fs;
use std::path::Path;

fn tree(root: &Path) {
    fs::create_dir_all(root.join("src/sub")).unwrap();
    fs::write(root.join("src/a.txt"), "alpha").unwrap();
    fs::write(root.join("src/sub/b.txt"), "beta").unwrap();
    fs::write(root.join("src/skip.log"), "noise").unwrap();
    fs::write(root.join("other.txt"), "unrelated").unwrap();
    std::os::unix::fs::symlink("a.txt", root.join("src/link")).unwrap();
}

fn no_logs(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "log")
}

#[test]
fn content_decides_and_the_memo_saves_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let ctx = tmp.path().join("ctx");
    tree(&ctx);
    let sel = vec!["src".to_string()];
    let (first, stats) = store.context_checksum(&ctx, &sel, &no_logs).unwrap();
    assert_eq!(stats.files_hashed, 2);
    // Unchanged: no file is read again.
    let (again, stats) = store.context_checksum(&ctx, &sel, &no_logs).unwrap();
    assert_eq!(again, first);
    assert_eq!((stats.files_hashed, stats.memo_hits), (0, 2));
    // mtime and owner are not content.
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    fs::File::options()
        .write(true)
        .open(ctx.join("src/a.txt"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    std::os::unix::fs::chown(ctx.join("src/sub/b.txt"), Some(4321), Some(4321)).unwrap();
    assert_eq!(
        store.context_checksum(&ctx, &sel, &no_logs).unwrap().0,
        first
    );
    // Files outside the selection, or excluded, change nothing.
    fs::write(ctx.join("other.txt"), "changed").unwrap();
    fs::write(ctx.join("src/skip.log"), "changed").unwrap();
    assert_eq!(
        store.context_checksum(&ctx, &sel, &no_logs).unwrap().0,
        first
    );
    // A content change does, even at the same size.
    fs::write(ctx.join("src/sub/b.txt"), "BETA").unwrap();
    let (changed, stats) = store.context_checksum(&ctx, &sel, &no_logs).unwrap();
    assert_ne!(changed, first);
    assert_eq!(stats.files_hashed, 1, "only the changed file is read");
    // So does a mode change.
    fs::set_permissions(
        ctx.join("src/a.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    assert_ne!(
        store.context_checksum(&ctx, &sel, &no_logs).unwrap().0,
        changed
    );
}

#[test]
fn another_checkout_path_keys_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Store::open(&tmp.path().join("store-a")).unwrap();
    let b = Store::open(&tmp.path().join("store-b")).unwrap();
    let (x, y) = (
        tmp.path().join("checkout-one"),
        tmp.path().join("somewhere/else/two"),
    );
    tree(&x);
    tree(&y);
    let sel = vec!["src".to_string(), "other.txt".to_string()];
    assert_eq!(
        a.context_checksum(&x, &sel, &no_logs).unwrap().0,
        b.context_checksum(&y, &sel, &no_logs).unwrap().0
    );
}

#[test]
fn bad_selections_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let ctx = tmp.path().join("ctx");
    tree(&ctx);
    let err = |p: &str| {
        store
            .context_checksum(&ctx, &[p.to_string()], &no_logs)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("missing.txt"),
        "\"/missing.txt\": not found in the build context"
    );
    assert_eq!(
        err("../etc/passwd"),
        "../etc/passwd: outside the build context"
    );
    assert_eq!(
        err("src/skip.log"),
        "src/skip.log: excluded by .dockerignore"
    );
}
