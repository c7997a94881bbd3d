//! ADD's archive unpacking is the store's extractor: the hostile-tar
//! corpus that store/tests/layers.rs runs against layer apply, run here
//! through `fileop::copy` with unpacking on, as `ADD evil.tar /dest/`
//! does. Needs no root: both trees are plain directories.

use kiln_builder::fileop::{self, Attrs, CopySpec, Filter};
use kiln_executor::view;
use std::path::Path;

fn unpack(context: &Path, target: &Path, archive: &str) -> fileop::OpResult<()> {
    let src = view::host_dir(context).unwrap();
    let dst = view::host_dir(target).unwrap();
    let paths = [archive.to_string()];
    let spec = CopySpec {
        paths: &paths,
        dest: "/dest/",
        attrs: Attrs {
            chown: None,
            chmod: None,
            keep_owner: false,
        },
        parents: false,
        unpack: true,
    };
    let filter = Filter {
        ignore: None,
        exclude: None,
        base: String::new(),
    };
    fileop::copy(src.root(), dst.root(), &spec, &filter)
}

#[test]
fn hostile_archives_never_unpack_outside_the_destination() {
    for (name, tar) in kiln_tests::hostile_tars() {
        let arena = kiln_tests::Arena::new();
        let context = arena.dir.path().join("context");
        std::fs::create_dir_all(&context).unwrap();
        std::fs::write(context.join("evil.tar"), &tar).unwrap();
        // Refused, or confined: never outside, never a panic. And really
        // unpacked: these are v7 headers, which docker's unpacker (and
        // kiln's) takes as an archive, not a file to copy.
        let result = arena.assert_confined(name, || unpack(&context, &arena.target(), "evil.tar"));
        assert!(
            result.is_err() || !arena.target().join("dest/evil.tar").exists(),
            "{name}: copied as a file, not unpacked"
        );
    }
}

/// A well-formed archive still unpacks (the corpus does not pass by
/// refusing everything).
#[test]
fn a_plain_archive_unpacks_into_the_destination() {
    let arena = kiln_tests::Arena::new();
    let context = arena.dir.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o640);
    h.set_cksum();
    b.append_data(&mut h, "inner/file", &b"inside"[..]).unwrap();
    std::fs::write(context.join("ok.tar"), b.into_inner().unwrap()).unwrap();
    unpack(&context, &arena.target(), "ok.tar").unwrap();
    assert_eq!(
        std::fs::read_to_string(arena.target().join("dest/inner/file")).unwrap(),
        "inside"
    );
}
