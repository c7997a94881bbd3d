//! Container latency: create + start + wait + teardown of `/bin/true` on a
//! 3-layer overlay (target: median under 10 ms; crun measures ~7 ms here).
//!
//! `cargo bench -p kiln-executor --bench start` (as root)

use criterion::{criterion_group, criterion_main, Criterion};
use kiln_executor::{spawn, Exit, Spec, Stdio};
use std::fs;
use std::os::unix::fs::symlink;

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("l0");
    fs::create_dir_all(base.join("bin")).unwrap();
    fs::create_dir_all(base.join("etc")).unwrap();
    fs::copy("/bin/busybox", base.join("bin/busybox")).unwrap();
    symlink("busybox", base.join("bin/true")).unwrap();
    fs::write(base.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let mut lowers = vec![base];
    for i in 1..3 {
        let l = tmp.path().join(format!("l{i}"));
        fs::create_dir_all(l.join("data")).unwrap();
        fs::write(l.join("data").join(format!("f{i}")), "x").unwrap();
        lowers.push(l);
    }
    let mut n = 0u64;
    c.bench_function("container /bin/true on 3 layers", |b| {
        b.iter(|| {
            n += 1;
            let state = tmp.path().join(format!("state-{n}"));
            let mut spec = Spec::new(lowers.clone(), state.clone(), vec!["/bin/true".into()]);
            spec.hostname = "bench".into();
            spec.stdio = Stdio::Inherit { stdin: false };
            let exit = spawn(spec).unwrap().wait().unwrap();
            assert_eq!(exit, Exit::Code(0));
            fs::remove_dir_all(&state).unwrap();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
