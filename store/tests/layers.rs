//! Layer tars: write → apply round trips, determinism, and hostile input.

use kiln_store::layer::{apply_layer, write_layer, Compression, WriteOptions};
use kiln_store::{Blobs, Store, StoreError};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Everything about a tree that a layer must carry, path → description.
fn listing(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let mut xattrs = Vec::new();
            let mut names = vec![0u8; 4096];
            if let Ok(n) = rustix::fs::llistxattr(&p, &mut names) {
                for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
                    let name = String::from_utf8_lossy(name).into_owned();
                    let mut v = vec![0u8; 256];
                    let len = rustix::fs::lgetxattr(&p, name.as_str(), &mut v).unwrap();
                    xattrs.push(format!("{name}={}", String::from_utf8_lossy(&v[..len])));
                }
            }
            xattrs.sort();
            let kind = if ft.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if ft.is_symlink() {
                format!("symlink->{}", fs::read_link(&p).unwrap().display())
            } else if ft.is_file() {
                let data = fs::read(&p).unwrap();
                let link = if m.nlink() > 1 {
                    let first = inodes
                        .entry((m.dev(), m.ino()))
                        .or_insert_with(|| rel.clone());
                    format!(" linkgroup={first}")
                } else {
                    String::new()
                };
                format!(
                    "file size={} sum={}{link}",
                    data.len(),
                    kiln_store::Digest::of(&data)
                )
            } else if ft.is_char_device() {
                format!(
                    "char {}:{}",
                    rustix::fs::major(m.rdev()),
                    rustix::fs::minor(m.rdev())
                )
            } else if ft.is_fifo() {
                "fifo".to_string()
            } else {
                "other".to_string()
            };
            let mtime = if ft.is_dir() {
                String::new()
            } else {
                format!(" mtime={}", m.mtime())
            };
            out.insert(
                rel,
                format!(
                    "{kind} mode={:o} uid={} gid={}{mtime} xattrs={xattrs:?}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ),
            );
        }
    }
    out
}

fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("etc/conf.d")).unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("etc/hostname"), "kiln\n").unwrap();
    fs::write(root.join("usr/bin/tool"), vec![7u8; 100_000]).unwrap();
    fs::set_permissions(
        root.join("usr/bin/tool"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool-alias")).unwrap();
    symlink("/usr/bin/tool", root.join("usr/bin/abs-link")).unwrap();
    symlink("../etc/hostname", root.join("usr/rel-link")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    rustix::fs::lsetxattr(
        root.join("etc/hostname"),
        "user.kiln",
        b"yes",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let long = "d".repeat(120);
    fs::create_dir_all(root.join(&long).join(&long)).unwrap();
    fs::write(
        root.join(&long).join(&long).join("f".repeat(100)),
        "long path",
    )
    .unwrap();
    if is_root() {
        // An overlay whiteout, an opaque directory and a real device node.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("etc/removed"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .unwrap();
        // An old time, so the round trip must carry it (not "now").
        let old = rustix::fs::Timespec {
            tv_sec: 1_000_000,
            tv_nsec: 0,
        };
        let times = rustix::fs::Timestamps {
            last_access: old,
            last_modification: old,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            root.join("etc/removed"),
            &times,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
        rustix::fs::lsetxattr(
            root.join("etc/conf.d"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("null"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        rustix::fs::chownat(
            rustix::fs::CWD,
            root.join("etc/hostname"),
            Some(rustix::fs::Uid::from_raw(1234)),
            Some(rustix::fs::Gid::from_raw(5678)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }
}

fn tar_paths(blobs: &Blobs, digest: &kiln_store::Digest) -> Vec<String> {
    let reader = kiln_store::layer::decompress(blobs.open_blob(digest).unwrap()).unwrap();
    let mut a = tar::Archive::new(reader);
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn write_then_apply_round_trips_every_entry_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let blob = write_layer(
            store.blobs(),
            &src,
            WriteOptions {
                compression,
                source_date_epoch: None,
            },
        )
        .unwrap();
        assert_eq!(blob.media_type, compression.media_type());
        let paths = tar_paths(store.blobs(), &blob.digest);
        let mut sorted = paths.clone();
        sorted.sort();
        if is_root() {
            assert!(paths.contains(&"etc/.wh.removed".to_string()), "{paths:?}");
            assert!(
                paths.contains(&"etc/conf.d/.wh..wh..opq".to_string()),
                "{paths:?}"
            );
        }
        let dst = tmp.path().join(format!("dst-{compression:?}"));
        let applied = apply_layer(store.blobs().open_blob(&blob.digest).unwrap(), &dst).unwrap();
        assert_eq!(
            applied.diff_id, blob.diff_id,
            "diff ID is the hash of the uncompressed tar"
        );
        assert_eq!(listing(&src), listing(&dst));
    }
}

#[test]
fn same_tree_same_digest_and_epoch_clamps_mtimes() {
    let tmp = tempfile::tempdir().unwrap();
    let blobs_store = Store::open(&tmp.path().join("store")).unwrap();
    let blobs = blobs_store.blobs();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    sample_tree(&a);
    sample_tree(&b);
    let opts = WriteOptions {
        compression: Compression::Gzip,
        source_date_epoch: Some(0),
    };
    let la = write_layer(blobs, &a, opts).unwrap();
    let lb = write_layer(blobs, &b, opts).unwrap();
    assert_eq!(
        la, lb,
        "two identical trees, written at different times, give one digest"
    );
    // Without the clamp, a different mtime is a different layer.
    let t = rustix::fs::Timespec {
        tv_sec: 1_000_000,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        b.join("etc/hostname"),
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    let free = WriteOptions {
        compression: Compression::Gzip,
        source_date_epoch: None,
    };
    assert_ne!(
        write_layer(blobs, &a, free).unwrap().diff_id,
        write_layer(blobs, &b, free).unwrap().diff_id
    );
    assert_eq!(
        write_layer(blobs, &a, opts).unwrap(),
        write_layer(blobs, &b, opts).unwrap()
    );
}

/// The shared corpus (kiln_tests::hostile_tars) against layer apply;
/// builder/tests/add_unpack.rs runs it against ADD's unpacking.
#[test]
fn hostile_tars_never_write_outside_the_snapshot() {
    for (name, tar) in kiln_tests::hostile_tars() {
        let arena = kiln_tests::Arena::new();
        let target = arena.target().join("snap");
        let result = arena.assert_confined(name, || apply_layer(tar.as_slice(), &target));
        match result {
            Err(StoreError::UnsafeEntry { .. }) | Err(StoreError::Io { .. }) => {}
            // Allowed only where every entry was confined inside the target.
            Ok(_) => {}
            Err(e) => panic!("{name}: unexpected error kind {e}"),
        }
    }
}

#[test]
fn dotdot_is_refused_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = kiln_tests::raw_tar(&[("../x", tar::EntryType::Regular, "", b"x")]);
    let err = apply_layer(tar.as_slice(), &tmp.path().join("t")).unwrap_err();
    assert_eq!(err.to_string(), "layer entry \"../x\": path contains '..'");
}

#[test]
fn absolute_paths_land_inside() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = kiln_tests::raw_tar(&[("/etc/inside", tar::EntryType::Regular, "", b"ok")]);
    apply_layer(tar.as_slice(), &tmp.path().join("t")).unwrap();
    assert_eq!(
        fs::read_to_string(tmp.path().join("t/etc/inside")).unwrap(),
        "ok"
    );
}

#[test]
fn truncated_layer_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let blob = write_layer(
        store.blobs(),
        &src,
        WriteOptions {
            compression: Compression::Gzip,
            source_date_epoch: None,
        },
    )
    .unwrap();
    let mut data = Vec::new();
    store
        .blobs()
        .open_blob(&blob.digest)
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    data.truncate(data.len() / 2);
    assert!(apply_layer(data.as_slice(), &tmp.path().join("t")).is_err());
}

/// overlayfs reads `trusted.overlay.*` (redirect, metacopy, opaque) off
/// its layers: a layer that carries them could steer the overlay a
/// container runs on, so they never reach a snapshot. Other xattrs do.
#[test]
fn overlay_xattrs_from_a_layer_are_not_applied() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_pax_extensions([
            ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
            ("SCHILY.xattr.trusted.overlay.opaque", &b"y"[..]),
            ("SCHILY.xattr.user.overlay.metacopy", &b""[..]),
            ("SCHILY.xattr.user.kept", &b"yes"[..]),
        ])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_path("d").unwrap();
    h.set_mode(0o755);
    h.set_size(0);
    h.set_cksum();
    builder.append(&h, std::io::empty()).unwrap();
    let tar = builder.into_inner().unwrap();
    let target = tmp.path().join("t");
    apply_layer(tar.as_slice(), &target).unwrap();
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(target.join("d"), &mut names).unwrap();
    let names: Vec<String> = names[..n]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    assert!(names.contains(&"user.kept".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n.contains("overlay")),
        "overlay xattrs applied: {names:?}"
    );
}
