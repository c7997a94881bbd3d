//! The shared build cache end to end: two store roots stand for two
//! machines, with the project checked out at different paths; A exports
//! its cache (a directory, a registry, inline), B builds from it. Every
//! RUN appends to a log in a cache mount, so "B ran nothing" is a count.

use kiln_tests::{Kiln, Registry};
use std::fs;
use std::path::{Path, PathBuf};

const DOCKERFILE: &str = "\
FROM busybox AS build
COPY src/ /src/
RUN --mount=type=cache,target=/c,id=runs echo build >> /c/log && cat /src/* > /out

FROM busybox AS test
COPY src/a.txt /a.txt
RUN --mount=type=cache,target=/c,id=runs echo test >> /c/log && cat /a.txt > /t

FROM busybox
COPY --from=build /out /out
RUN --mount=type=cache,target=/c,id=runs echo final >> /c/log && wc -c < /out > /size
CMD [\"cat\", \"/out\"]
";

/// One machine: a store of its own, with the project checked out at a
/// path of its own.
struct Machine {
    kiln: Kiln,
    checkout: PathBuf,
}

impl Machine {
    /// A store with the busybox base loaded from `base` (the same image
    /// on every machine, as if pulled from one registry), and the project
    /// at `checkout_path` under the machine's directory.
    fn new(base: &Path, checkout_path: &str) -> Machine {
        let kiln = Kiln::new(env!("CARGO_BIN_EXE_kiln"));
        let checkout = kiln.path(checkout_path);
        kiln.ok(&["load", "-q", "-i", base.to_str().unwrap()]);
        fs::create_dir_all(checkout.join("src")).unwrap();
        fs::write(checkout.join("Dockerfile"), DOCKERFILE).unwrap();
        fs::write(checkout.join("src/a.txt"), "alpha\n").unwrap();
        fs::write(checkout.join("src/b.txt"), "beta\n").unwrap();
        Machine { kiln, checkout }
    }
    fn ok(&self, args: &[&str]) -> String {
        self.kiln.ok(args)
    }
    /// Builds the checkout; returns (image ID, stderr).
    fn build(&self, extra: &[&str]) -> (String, String) {
        self.kiln.build_dir(&self.checkout, extra)
    }
    /// The RUN steps this machine executed, in order.
    fn runs(&self) -> Vec<String> {
        self.kiln.cache_log("runs")
    }
}

/// The shared busybox base (a docker archive).
fn base_image(dir: &Path) -> PathBuf {
    let kiln = Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"));
    let archive = dir.join("busybox.tar");
    kiln.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    archive
}

fn blob_files(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(cache.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).unwrap().len()));
    v
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn a_local_cache_makes_another_machines_build_instant() {
    let shared = tempfile::tempdir().unwrap();
    let base = base_image(shared.path());
    let cache = shared.path().join("cache");
    let cache_arg = format!("type=local,dest={},mode=max", cache.display());
    let from_arg = format!("type=local,src={}", cache.display());

    let a = Machine::new(&base, "home/alice/src/proj");
    let (id_a, err) = a.build(&["-t", "app", "--cache-to", &cache_arg]);
    assert_eq!(a.runs(), ["build", "final"]);
    assert!(err.contains("exporting cache to"), "{err}");
    // The export is an OCI layout skopeo can read.
    kiln_tests::tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!("oci:{}:latest", cache.display()),
        ],
    );

    // B: another root, another checkout path, only --cache-from.
    let b = Machine::new(&base, "ci/workspace/checkout-42");
    let (id_b, _) = b.build(&["-t", "app", "--cache-from", &from_arg]);
    assert_eq!(b.runs(), Vec::<String>::new(), "B ran a RUN step");
    assert_eq!(id_b, id_a, "the same image on both machines");
    assert_eq!(b.ok(&["run", "--rm", "app"]), "alpha\nbeta\n");
    assert_eq!(b.ok(&["run", "--rm", "app", "cat", "/size"]), "11\n");
    // mode=max: an intermediate stage A built comes from the cache too...
    let (_, _) = b.build(&["--target", "build", "--cache-from", &from_arg]);
    assert_eq!(b.runs(), Vec::<String>::new());
    // ...but a stage A never built is built, and a changed file reruns
    // exactly what reads it.
    b.build(&["--target", "test", "--cache-from", &from_arg]);
    assert_eq!(b.runs(), ["test"]);
    fs::write(b.checkout.join("src/b.txt"), "BETA\n").unwrap();
    b.build(&["-t", "app2", "--cache-from", &from_arg]);
    assert_eq!(b.runs(), ["test", "build", "final"]);

    // mode=min exports only the final image's chain: the target is
    // instant elsewhere, an intermediate stage is not.
    let min = shared.path().join("cache-min");
    a.build(&["--cache-to", &format!("type=local,dest={}", min.display())]);
    let c = Machine::new(&base, "c");
    let from_min = format!("type=local,src={}", min.display());
    let (id_c, _) = c.build(&["--cache-from", &from_min]);
    assert_eq!(id_c, id_a);
    assert_eq!(c.runs(), Vec::<String>::new());
    c.build(&["--target", "build", "--cache-from", &from_min]);
    assert_eq!(c.runs(), ["build"]);
}

#[test]
fn a_corrupt_or_missing_cache_blob_means_a_rebuild_not_a_failure() {
    let shared = tempfile::tempdir().unwrap();
    let base = base_image(shared.path());
    let cache = shared.path().join("cache");
    let a = Machine::new(&base, "a");
    a.build(&[
        "--cache-to",
        &format!("type=local,dest={},mode=max", cache.display()),
    ]);

    // Flip a byte in every exported layer (the base's too, but B has that
    // one already, so it is never read from the cache).
    let corrupt = shared.path().join("corrupt");
    copy_dir(&cache, &corrupt);
    for blob in blob_files(&corrupt) {
        let mut bytes = fs::read(&blob).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let n = bytes.len() - 1;
            bytes[n] ^= 0xff;
            fs::write(&blob, bytes).unwrap();
        }
    }
    let b = Machine::new(&base, "b");
    let (_, err) = b.build(&[
        "-t",
        "app",
        "--cache-from",
        &format!("type=local,src={}", corrupt.display()),
    ]);
    assert!(err.contains("WARNING: cache from"), "{err}");
    assert!(err.contains("digest mismatch"), "{err}");
    assert_eq!(b.runs(), ["build", "final"], "rebuilt, not failed");
    assert_eq!(b.ok(&["run", "--rm", "app"]), "alpha\nbeta\n");
    b.ok(&["system", "check"]);

    // A missing blob: the same.
    let missing = shared.path().join("missing");
    copy_dir(&cache, &missing);
    for blob in blob_files(&missing) {
        if fs::read(&blob).unwrap().starts_with(&[0x1f, 0x8b]) {
            fs::remove_file(blob).unwrap();
        }
    }
    let c = Machine::new(&base, "c");
    let (_, err) = c.build(&[
        "--cache-from",
        &format!("type=local,src={}", missing.display()),
    ]);
    assert!(err.contains("WARNING: cache from"), "{err}");
    assert_eq!(c.runs(), ["build", "final"]);

    // A cache that is not there at all: a warning, then a normal build.
    let d = Machine::new(&base, "d");
    let (_, err) = d.build(&["--cache-from", "type=local,src=/nonexistent/cache"]);
    assert!(
        err.contains("WARNING: --cache-from /nonexistent/cache"),
        "{err}"
    );
    assert_eq!(d.runs(), ["build", "final"]);
}

#[test]
fn cache_mount_contents_travel_with_mounts_true() {
    let shared = tempfile::tempdir().unwrap();
    let base = base_image(shared.path());
    let cache = shared.path().join("cache");
    let a = Machine::new(&base, "a");
    a.build(&[
        "--cache-to",
        &format!("type=local,dest={},mounts=true", cache.display()),
    ]);
    assert_eq!(a.runs(), ["build", "final"]);
    // B starts with A's cache-mount contents, then runs what is not cached.
    let b = Machine::new(&base, "b");
    fs::write(b.checkout.join("src/b.txt"), "changed\n").unwrap();
    b.build(&[
        "--cache-from",
        &format!("type=local,src={}", cache.display()),
    ]);
    assert_eq!(b.runs(), ["build", "final", "build", "final"]);
}

#[test]
fn registry_and_inline_caches() {
    let reg = Registry::start(None);
    let host = reg.host();
    let shared = tempfile::tempdir().unwrap();
    let base = base_image(shared.path());

    let a = Machine::new(&base, "a");
    let cache_ref = format!("{host}/cache:app");
    let (id_a, _) = a.build(&[
        "--cache-to",
        &format!("type=registry,ref={cache_ref},mode=max"),
    ]);
    let b = Machine::new(&base, "b");
    let (id_b, _) = b.build(&["--cache-from", &format!("type=registry,ref={cache_ref}")]);
    assert_eq!(b.runs(), Vec::<String>::new());
    assert_eq!(id_b, id_a);
    b.build(&[
        "--target",
        "build",
        "--cache-from",
        &format!("type=registry,ref={cache_ref}"),
    ]);
    assert_eq!(b.runs(), Vec::<String>::new());

    // A miss costs one manifest and one config fetch, nothing more.
    let counter = kiln_tests::Proxy::start(reg.port, &[]);
    let d = Machine::new(&base, "d");
    fs::write(d.checkout.join("src/a.txt"), "other content\n").unwrap();
    d.build(&[
        "--target",
        "test",
        "--cache-from",
        &format!("type=registry,ref={}/cache:app", counter.host()),
    ]);
    assert_eq!(d.runs(), ["test"]);
    assert_eq!(counter.gets(), (1, 1), "(manifest GETs, blob GETs)");

    // Inline: the pushed image carries its own cache records.
    let image = format!("{host}/app:inline");
    let (id_inline, _) = a.build(&["-t", &image, "--push", "--cache-to", "type=inline"]);
    let c = Machine::new(&base, "c");
    let (id_c, _) = c.build(&["--cache-from", &image, "--cache-to", "type=inline"]);
    assert_eq!(c.runs(), Vec::<String>::new());
    assert_eq!(id_c, id_inline);
}
