//! Lazy layers: a build step's result is a snapshot, and layer blobs are
//! made only when something needs bytes (save, push, `-o type=oci`,
//! `--cache-to`), once, and the same on every machine. Needs root.

use kiln_tests::{tool, Kiln};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;

fn kiln() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

/// The store's blobs that are not JSON (manifests, configs, indexes):
/// layer blobs, by file name.
fn layer_blobs(k: &Kiln) -> BTreeSet<String> {
    let dir = k.root().join("blobs/sha256");
    fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let mut first = [0u8; 1];
            fs::File::open(e.path())
                .and_then(|mut f| f.read_exact(&mut first))
                .is_ok_and(|()| first[0] != b'{')
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn is_gzip(k: &Kiln, blob: &str) -> bool {
    let bytes = fs::read(k.root().join("blobs/sha256").join(blob)).unwrap();
    bytes.starts_with(&[0x1f, 0x8b])
}

const MULTI_STAGE: &str = "FROM busybox AS tools\n\
    RUN seq 1 600000 > /big && md5sum /big > /big.md5\n\
    FROM busybox\n\
    COPY --from=tools /big /big.md5 /\n\
    RUN echo hi > /hi\n";

#[test]
fn built_steps_make_no_blob_until_an_export_needs_one() {
    let k = kiln();
    k.write_ctx("Dockerfile", MULTI_STAGE);
    let base = layer_blobs(&k);
    let (id, _) = k.build(&["-t", "lazy"]);
    assert_eq!(
        layer_blobs(&k),
        base,
        "a build that only makes an image in the store writes no layer blob"
    );
    // The image runs from its snapshots.
    assert_eq!(k.run_rm(&["lazy", "cat", "/hi"]), "hi\n");
    assert_eq!(
        k.run_rm(&["lazy", "md5sum", "-c", "/big.md5"]),
        "/big: OK\n"
    );
    k.ok(&["system", "check"]);

    // A save makes the exported layers' blobs: the final stage's two, not
    // the tools stage's, gzip'd.
    let a = k.path("a.tar");
    k.ok(&["save", "-o", a.to_str().unwrap(), "lazy"]);
    let made: Vec<String> = layer_blobs(&k).difference(&base).cloned().collect();
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(made.iter().all(|b| is_gzip(&k, b)));
    assert_eq!(k.inspect("lazy")["Id"], id, "the image ID stays");
    // The second save compresses nothing and writes the same bytes.
    let b = k.path("b.tar");
    k.ok(&["save", "-o", b.to_str().unwrap(), "lazy"]);
    assert_eq!(layer_blobs(&k).difference(&base).count(), 2);
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    // skopeo reads the archive: busybox + the two built layers.
    let info: Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", a.display())],
    ))
    .unwrap();
    assert_eq!(info["Layers"].as_array().unwrap().len(), 3);
    // A prune keeps what the named image needs, blobs made for it included.
    k.ok(&["prune", "-f"]);
    k.ok(&["system", "check"]);
    assert_eq!(layer_blobs(&k).difference(&base).count(), 2);
    assert_eq!(k.run_rm(&["lazy", "cat", "/hi"]), "hi\n");
    // A rebuild is answered from the cache, same image.
    let (again, progress) = k.build(&["-t", "lazy"]);
    assert_eq!(again, id, "{progress}");
    assert!(progress.contains("CACHED"), "{progress}");
}

/// A layer made for a cache export is the same blob an image save makes
/// later: compressed once.
#[test]
fn cache_exports_repeat_byte_for_byte_and_share_blobs_with_saves() {
    let k = kiln();
    k.write_ctx("Dockerfile", MULTI_STAGE);
    let base = layer_blobs(&k);
    let export = |dir: &str| {
        let dest = k.path(dir);
        k.build(&[
            "-t",
            "lazy",
            "--cache-to",
            &format!("type=local,dest={},mode=max", dest.display()),
        ]);
        dest
    };
    let one = export("cache1");
    // mode=max: every step's layer, the tools stage's too.
    let made = layer_blobs(&k).difference(&base).count();
    assert_eq!(made, 3);
    let two = export("cache2");
    assert_eq!(layer_blobs(&k).difference(&base).count(), made);
    // Every file's path (relative) and bytes, sorted by path.
    let files = |dir: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        kiln_tests::all_files(dir)
            .iter()
            .map(std::path::Path::new)
            .filter(|p| p.is_file())
            .map(|p| {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                (rel, fs::read(p).unwrap())
            })
            .collect()
    };
    assert_eq!(files(&one), files(&two));
    k.ok(&["save", "-o", k.path("a.tar").to_str().unwrap(), "lazy"]);
    assert_eq!(
        layer_blobs(&k).difference(&base).count(),
        made,
        "the save reuses the blobs the cache export made"
    );
}

/// `SOURCE_DATE_EPOCH` builds give the same image ID and the same archive
/// bytes in two stores (the tars are hashed and compressed on demand, so
/// this holds the lazy path to the eager one's promise).
#[test]
fn source_date_epoch_builds_match_across_two_stores() {
    let build = |k: &Kiln| {
        k.write_ctx("Dockerfile", MULTI_STAGE);
        let dest = k.path("out.tar");
        let output = format!("type=oci,dest={}", dest.display());
        let id = k.build_at_epoch("1700000000", &["-t", "repro", "-o", &output]);
        (id, fs::read(dest).unwrap())
    };
    // The same base in both: B loads what A saved.
    let a = kiln();
    let base = a.path("busybox.tar");
    a.ok(&["save", "-o", base.to_str().unwrap(), "busybox"]);
    let b = Kiln::new(env!("CARGO_BIN_EXE_kiln"));
    b.ok(&["load", "-i", base.to_str().unwrap()]);
    let (id_a, tar_a) = build(&a);
    let (id_b, tar_b) = build(&b);
    assert_eq!(id_a, id_b);
    assert!(tar_a == tar_b, "the archives differ");
}

/// Two layers of one image with the same tar (same diff ID) come from two
/// snapshots, or one is unpacked again: overlayfs refuses a directory
/// twice among its lowers (ELOOP).
#[test]
fn an_image_with_two_equal_layers_runs() {
    let k = kiln();
    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nRUN echo a > /a\nRUN echo b > /a\nRUN echo a > /a\n",
    );
    k.build_at_epoch("0", &["-t", "twice"]);
    let diff_ids = k.inspect("twice")["RootFS"]["Layers"].clone();
    let diff_ids = diff_ids.as_array().unwrap();
    assert_eq!(diff_ids[1], diff_ids[3], "{diff_ids:?}");
    assert_eq!(k.run_rm(&["twice", "cat", "/a"]), "a\n");
    // And as the base of another build.
    k.write_ctx("Dockerfile", "FROM twice\nRUN cat /a > /copy\n");
    k.build(&["-t", "on-twice"]);
    assert_eq!(k.run_rm(&["on-twice", "cat", "/copy"]), "a\n");
}
