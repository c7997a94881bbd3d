//! Context checksums on the copytree scenario's shape: 20,000 small files
//! in 20x10 directories plus one 256 MiB file. Cold (every file read and
//! hashed) vs warm (memo: one stat per file, nothing read).
//!
//! `cargo bench -p kiln-store --bench context`

use criterion::{criterion_group, criterion_main, Criterion};
use kiln_store::Store;
use std::fs;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    for i in 0..20 {
        for j in 0..10 {
            let d = ctx.join(format!("tree/d{i:02}/e{j:02}"));
            fs::create_dir_all(&d).unwrap();
            for k in 0..100 {
                fs::write(d.join(format!("f{k:03}")), format!("file {i} {j} {k}\n")).unwrap();
            }
        }
    }
    fs::write(ctx.join("big.bin"), vec![7u8; 256 << 20]).unwrap();
    let sel = vec!["tree".to_string(), "big.bin".to_string()];
    let none = |_: &std::path::Path| false;
    let mut g = c.benchmark_group("context 20k files + 256MiB");
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    g.bench_function("cold (no memo)", |b| {
        b.iter(|| {
            let store = Store::open(&tmp.path().join(format!("s-{}", std::process::id()))).unwrap();
            let (_, stats) = store.context_checksum(&ctx, &sel, &none).unwrap();
            assert_eq!(stats.files_hashed, 20_001);
            drop(store);
            fs::remove_dir_all(tmp.path().join(format!("s-{}", std::process::id()))).unwrap();
        })
    });
    let store = Store::open(&tmp.path().join("warm")).unwrap();
    store.context_checksum(&ctx, &sel, &none).unwrap();
    g.bench_function("warm (memo)", |b| {
        b.iter(|| {
            let (_, stats) = store.context_checksum(&ctx, &sel, &none).unwrap();
            assert_eq!(stats.files_hashed, 0);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
