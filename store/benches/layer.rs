//! Layer writing: tar + gzip + both sha256 digests of a 256 MiB tree in one
//! pass, against `tar -c | gzip -1 | sha256sum` on the same tree (target:
//! within 1.5x). zstd is measured too.
//!
//! `cargo bench -p kiln-store --bench layer`

use criterion::{criterion_group, criterion_main, Criterion};
use kiln_store::layer::{write_layer, Compression, WriteOptions};
use kiln_store::Store;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// 2,048 files of 64 KiB and one 128 MiB file: 256 MiB of text-like data
/// (compresses to about half with gzip -1, like typical layer content).
fn make_tree(root: &Path) {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut chunk = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefghijklmnopqrstuvwxyz012345"[(x % 32) as usize]
            })
            .collect()
    };
    for d in 0..32 {
        let dir = root.join(format!("dir{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..64 {
            fs::write(dir.join(format!("file{f:03}")), chunk(64 << 10)).unwrap();
        }
    }
    fs::write(root.join("big.bin"), chunk(128 << 20)).unwrap();
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    make_tree(&tree);
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let mut g = c.benchmark_group("layer 256MiB");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("reference: tar -c | gzip -1 | sha256sum", |b| {
        b.iter(|| {
            let cmd = format!(
                "tar -C {} -cf - . | gzip -1 | sha256sum >/dev/null",
                tree.display()
            );
            assert!(std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .status()
                .unwrap()
                .success());
        })
    });
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        g.bench_function(format!("kiln write_layer {compression:?}"), |b| {
            b.iter(|| {
                let opts = WriteOptions {
                    compression,
                    source_date_epoch: None,
                };
                let blob = write_layer(store.blobs(), &tree, opts).unwrap();
                // Keep the store from growing across iterations.
                fs::remove_file(store.blobs().path(&blob.digest)).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
