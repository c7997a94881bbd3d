//! Parser throughput: a 1,000-instruction Dockerfile (target: < 5 ms).

use criterion::{criterion_group, criterion_main, Criterion};

/// A realistic mix: FROM/ARG/ENV/LABEL, long continued RUNs, COPY with
/// flags, heredocs, JSON CMDs.
fn big_dockerfile(instructions: usize) -> String {
    let mut s = String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm\n");
    let mut n = 1;
    while n < instructions {
        let i = n;
        let text = match i % 10 {
            0 => format!("FROM ${{BASE}} AS stage{i}\n"),
            1 => format!("ENV A{i}=1 B{i}=\"two words\" C{i}=$A{i}\n"),
            2 => format!("RUN --mount=type=cache,target=/var/cache/apt \\\n    apt-get update && \\\n    # a comment inside\n    apt-get install -y pkg{i} \\\n    && rm -rf /var/lib/apt/lists/*\n"),
            3 => format!("COPY --from=stage{} --chown=1000:1000 --chmod=644 src/{i} /app/{i}/\n", i.saturating_sub(3)),
            4 => format!("LABEL org.example.n{i}=\"v{i}\" other=x\n"),
            5 => "RUN <<EOF\nset -e\necho heredoc\nEOF\n".to_string(),
            6 => format!("WORKDIR /work/{i}\n"),
            7 => format!("CMD [\"/bin/app\", \"--n\", \"{i}\"]\n"),
            8 => format!("EXPOSE {}/tcp\n", 8000 + i),
            _ => format!("HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost/{i} || exit 1\n"),
        };
        s.push_str(&text);
        n += 1;
    }
    s
}

fn bench(c: &mut Criterion) {
    let src = big_dockerfile(1000);
    let df = kiln_parser::parse(&src).expect("bench Dockerfile parses");
    assert_eq!(df.instructions.len(), 1000);
    c.bench_function("parse 1000 instructions", |b| {
        b.iter(|| kiln_parser::parse(std::hint::black_box(&src)).unwrap())
    });
    c.bench_function("parse + typed 1000 instructions", |b| {
        b.iter(|| {
            let df = kiln_parser::parse(std::hint::black_box(&src)).unwrap();
            kiln_parser::instructions::parse_instructions(&df).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
