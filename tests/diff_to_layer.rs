//! The executor's upper dir through the store's layer writer: what a RUN
//! step will commit. Deletions become `.wh.` entries, a replaced directory
//! an opaque marker, and nothing the executor mounted appears.

use kiln_executor::{run, Exit, Network, Spec};
use kiln_store::layer::{write_layer, Compression, WriteOptions};
use kiln_store::{Reference, Store};

#[test]
fn container_diff_becomes_a_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let script = kiln_tests::repo_root().join("examples/busybox-rootfs.sh");
    let tar = std::process::Command::new("bash")
        .arg(script)
        .output()
        .unwrap();
    assert!(tar.status.success());
    let image = store
        .import(
            tar.stdout.as_slice(),
            &Reference::parse("bb").unwrap(),
            &Default::default(),
        )
        .unwrap();
    let lowers = store.snapshots_for(&image).unwrap();
    let state = tmp.path().join("c");
    let mut spec = Spec::new(
        lowers,
        state.clone(),
        vec![
            "/bin/sh".into(),
            "-c".into(),
            "rm /etc/group; rm -rf /root; mkdir /root; echo hi > /root/new; echo x > /added".into(),
        ],
    );
    spec.hostname = "t".into();
    spec.network = Network::None;
    assert_eq!(run(spec, |_, _| {}).unwrap(), Exit::Code(0));
    let layer = write_layer(
        store.blobs(),
        &state.join("upper"),
        WriteOptions {
            compression: Compression::Gzip,
            source_date_epoch: Some(0),
        },
    )
    .unwrap();
    let reader =
        kiln_store::layer::decompress(store.blobs().open_blob(&layer.digest).unwrap()).unwrap();
    let mut names: Vec<String> = tar::Archive::new(reader)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "added",
            "etc/",
            "etc/.wh.group",
            "root/",
            "root/.wh..wh..opq",
            "root/new"
        ]
    );
}
