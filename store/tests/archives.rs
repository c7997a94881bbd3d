//! Archives in and out of the store: round trips, determinism, and bad
//! input that must leave nothing behind.

use kiln_store::{Digest, ImportOptions, Reference, Store, StoreError};
use serde_json::json;
use std::io::Read;

/// A small rootfs tarball.
fn rootfs_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in [
        ("etc/hostname", "kiln\n"),
        ("bin/hello", "#!/bin/sh\necho hello\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let s = Store::open(&tmp.path().join("root")).unwrap();
    (tmp, s)
}

fn imported(store: &Store, name: &str) -> kiln_store::Image {
    let mut config = serde_json::Map::new();
    config.insert("Cmd".into(), json!(["/bin/hello"]));
    let opts = ImportOptions {
        config,
        ..Default::default()
    };
    store
        .import(
            rootfs_tar().as_slice(),
            &Reference::parse(name).unwrap(),
            &opts,
        )
        .unwrap()
}

fn saved(store: &Store, name: &str) -> Vec<u8> {
    let img = store.resolve(name).unwrap();
    let mut out = Vec::new();
    store
        .save(&[(img, Some(Reference::parse(name).unwrap()))], &mut out)
        .unwrap();
    out
}

/// Nothing at all in the store: no image, no name, no blob, no temp file.
fn assert_empty(store: &Store) {
    assert!(store.images().unwrap().is_empty(), "an image was added");
    assert!(
        store.blobs().list().unwrap().is_empty(),
        "blobs were left behind: {:?}",
        store.blobs().list().unwrap()
    );
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0,
        "temp files left behind"
    );
    assert!(store.check().unwrap().problems.is_empty());
}

/// Rewrites a tar: `edit` may change or drop (None) each file.
fn rewrite(archive: &[u8], mut edit: impl FnMut(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut a = tar::Archive::new(archive);
    let mut b = tar::Builder::new(Vec::new());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let mut h = e.header().clone();
        if h.entry_type().is_dir() {
            b.append_data(&mut h, &path, &[][..]).unwrap();
            continue;
        }
        if let Some(new) = edit(&path, data) {
            h.set_size(new.len() as u64);
            b.append_data(&mut h, &path, new.as_slice()).unwrap();
        }
    }
    b.into_inner().unwrap()
}

#[test]
fn import_save_load_round_trip_keeps_digests() {
    let (_t1, a) = store();
    let img = imported(&a, "example.com/team/app:1");
    let archive = saved(&a, "example.com/team/app:1");
    let (_t2, b) = store();
    let report = b.load(archive.as_slice(), "test.tar").unwrap();
    assert_eq!(report.images.len(), 1);
    let loaded = b.resolve("example.com/team/app:1").unwrap();
    assert_eq!(loaded.manifest_digest, img.manifest_digest);
    assert_eq!(loaded.config_digest, img.config_digest);
    assert_eq!(loaded.config["config"]["Cmd"], json!(["/bin/hello"]));
    // Unpacked, the files are there.
    let dirs = b.snapshots_for(&loaded).unwrap();
    assert_eq!(
        std::fs::read_to_string(dirs[0].join("bin/hello")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
    assert!(b.check().unwrap().problems.is_empty());
}

#[test]
fn saving_twice_gives_identical_bytes() {
    let (_t, s) = store();
    imported(&s, "app");
    assert_eq!(saved(&s, "app"), saved(&s, "app"));
    // And importing the same tarball into another store gives the same layer.
    let (_t2, s2) = store();
    let a = s.resolve("app").unwrap();
    let b = imported(&s2, "app");
    assert_eq!(a.layers().unwrap(), b.layers().unwrap());
}

#[test]
fn resolve_by_name_id_prefix_and_digest() {
    let (_t, s) = store();
    let img = imported(&s, "app:v1");
    s.tag("app:v1", "other/name").unwrap();
    assert_eq!(
        s.resolve("docker.io/library/app:v1").unwrap().config_digest,
        img.config_digest
    );
    assert_eq!(
        s.resolve(&img.config_digest.hex()[..12])
            .unwrap()
            .config_digest,
        img.config_digest
    );
    assert_eq!(
        s.resolve(&img.config_digest.to_string())
            .unwrap()
            .config_digest,
        img.config_digest
    );
    assert_eq!(
        s.resolve(&img.manifest_digest.to_string())
            .unwrap()
            .config_digest,
        img.config_digest
    );
    assert_eq!(s.resolve("other/name:latest").unwrap().names.len(), 2);
    assert!(matches!(s.resolve("nope"), Err(StoreError::ImageNotFound(n)) if n == "nope:latest"));
    // rmi by name removes the name only; the last name takes the image.
    s.remove("other/name", false).unwrap();
    assert!(s.resolve("app:v1").is_ok());
    s.remove("app:v1", false).unwrap();
    assert!(s.images().unwrap().is_empty());
    let pruned = s.prune(false).unwrap();
    assert_eq!(pruned.blobs_removed, 3);
    assert!(s.blobs().list().unwrap().is_empty());
}

#[test]
fn not_a_tar() {
    let (_t, s) = store();
    let err = s
        .load(&b"this is not an archive at all, just text"[..], "junk.tar")
        .unwrap_err();
    assert!(err.to_string().starts_with("junk.tar: "), "{err}");
    assert_empty(&s);
}

#[test]
fn truncated_archive() {
    let (_t, a) = store();
    imported(&a, "app");
    let mut archive = saved(&a, "app");
    archive.truncate(archive.len() / 2);
    let (_t2, s) = store();
    let err = s.load(archive.as_slice(), "half.tar").unwrap_err();
    assert!(err.to_string().contains("half.tar"), "{err}");
    assert_empty(&s);
}

#[test]
fn corrupt_blob_is_named() {
    let (_t, a) = store();
    let img = imported(&a, "app");
    let layer = img.layers().unwrap()[0].digest.clone();
    let archive = rewrite(&saved(&a, "app"), |path, mut data| {
        if path.ends_with(&layer.hex()) {
            let n = data.len();
            data[n / 2] ^= 0xff;
        }
        Some(data)
    });
    let (_t2, s) = store();
    let err = s.load(archive.as_slice(), "bad.tar").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{msg}");
    assert!(
        msg.contains("bad.tar") && msg.contains(&layer.hex()),
        "{msg}"
    );
    assert_empty(&s);
}

#[test]
fn manifest_naming_a_missing_blob() {
    let (_t, a) = store();
    let img = imported(&a, "app");
    let layer = img.layers().unwrap()[0].digest.clone();
    let archive = rewrite(&saved(&a, "app"), |path, data| {
        (!path.ends_with(&layer.hex())).then_some(data)
    });
    let (_t2, s) = store();
    let err = s
        .load(archive.as_slice(), "missing.tar")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&layer.to_string()) && err.contains("not in the archive"),
        "{err}"
    );
    assert_empty(&s);
}

#[test]
fn unknown_layer_media_type() {
    let (_t, a) = store();
    let img = imported(&a, "app");
    // Re-point index.json at a manifest whose layer type nobody knows.
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&a.blobs().read(&img.manifest_digest).unwrap()).unwrap();
    manifest["layers"][0]["mediaType"] = json!("application/x-mystery");
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = Digest::of(&bytes);
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest.to_string(), "size": bytes.len()}]});
    let mut archive = rewrite(&saved(&a, "app"), |path, data| match path {
        "index.json" => Some(serde_json::to_vec(&index).unwrap()),
        "manifest.json" | "repositories" => None,
        _ => Some(data),
    });
    // Append the new manifest blob.
    archive.truncate(archive.len() - 1024);
    let mut b = tar::Builder::new(archive);
    let mut h = tar::Header::new_ustar();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    b.append_data(
        &mut h,
        format!("blobs/sha256/{}", digest.hex()),
        bytes.as_slice(),
    )
    .unwrap();
    let archive = b.into_inner().unwrap();
    let (_t2, s) = store();
    let err = s.load(archive.as_slice(), "mystery.tar").unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedMediaType { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("application/x-mystery"), "{err}");
    assert_empty(&s);
}

#[test]
fn docker_archive_layer_that_is_not_its_diff_id() {
    let (_t, a) = store();
    imported(&a, "app");
    // Keep manifest.json only (a pure docker archive), and change a byte of
    // the uncompressed layer content inside its gzip stream.
    let img = a.resolve("app").unwrap();
    let layer = img.layers().unwrap()[0].digest.clone();
    let archive = rewrite(&saved(&a, "app"), |path, data| {
        if path == "index.json" || path == "oci-layout" {
            return None;
        }
        if path.ends_with(&layer.hex()) {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(data.as_slice())
                .read_to_end(&mut plain)
                .unwrap();
            let i = plain.windows(4).position(|w| w == b"kiln").unwrap();
            plain[i] = b'K';
            return Some(plain);
        }
        Some(data)
    });
    let (_t2, s) = store();
    let err = s.load(archive.as_slice(), "docker.tar").unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    assert_empty(&s);
}
