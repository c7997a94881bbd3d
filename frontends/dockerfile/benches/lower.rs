//! Lowering cost of huge metadata stages: 10,000 and 20,000 ENV lines and
//! 100,000 LABELs from scratch. Each must stay linear in the number of
//! instructions (issue 12 found 10,000 ENVs taking 26 s: every ENV copied
//! the whole environment twice and every expansion cloned the scope).

use criterion::{criterion_group, criterion_main, Criterion};
use kiln_frontend_dockerfile::lower::{self, ImageError, ImageSource, Options, ResolvedImage};

struct NoImages;

impl ImageSource for NoImages {
    fn resolve(
        &self,
        reference: &str,
        _platform: &kiln_frontend_dockerfile::plan::Platform,
    ) -> Result<ResolvedImage, ImageError> {
        Err(ImageError(format!(
            "{reference}: no images in this benchmark"
        )))
    }
}

fn dockerfile(lines: usize, kind: &str) -> String {
    let mut s = String::from("FROM scratch\n");
    for i in 0..lines {
        s.push_str(&match kind {
            "env" => format!("ENV V{i}=value{i} W{i}=$V{i}\n"),
            _ => format!("LABEL l{i}=v{i}\n"),
        });
    }
    s
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("lower");
    group.sample_size(10);
    for (lines, kind) in [(10_000, "env"), (20_000, "env"), (100_000, "label")] {
        let df = kiln_parser::parse(&dockerfile(lines, kind)).unwrap();
        let options = Options::default();
        group.bench_function(format!("{lines} {kind}"), |b| {
            b.iter(|| lower::lower(std::hint::black_box(&df), &options, &NoImages).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
