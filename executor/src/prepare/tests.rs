//! The plan, checked without root.

use super::*;
use crate::spec::{Mount, MountSource, DEFAULT_PATH};
use std::fs;

#[test]
fn paths_are_cleaned_and_their_parents_listed() {
    assert_eq!(container_path("/a/./b/../c/").unwrap(), "/a/c");
    assert_eq!(container_path("/../../x").unwrap(), "/x");
    assert!(container_path("relative").is_err());
    assert_eq!(parents("/a/b/c"), ["/a", "/a/b"]);
    assert!(parents("/a").is_empty());
}

#[test]
fn docker_defaults_for_the_environment_and_the_path_search() {
    let env = environment(&["A=1".into()], "h", Some("/home/u"));
    assert_eq!(
        env,
        [
            "A=1".to_string(),
            format!("PATH={DEFAULT_PATH}"),
            "HOSTNAME=h".into(),
            "HOME=/home/u".into()
        ]
    );
    let env = environment(&["PATH=/opt/bin:/bin".into(), "HOME=/x".into()], "h", None);
    assert_eq!(env.len(), 3, "PATH and HOME kept, HOSTNAME added: {env:?}");
    assert_eq!(exec_candidates("sh", &env), ["/opt/bin/sh", "/bin/sh"]);
    assert_eq!(exec_candidates("./run", &env), ["./run"]);
    assert_eq!(
        exec_candidates("sh", &["PATH=/a:/b".into(), "PATH=/c".into()]),
        ["/c/sh"]
    );
}

/// The mount plan needs no root: mountpoints for dirs and files, their
/// parents, /proc /dev /sys and the /etc files, in order.
#[test]
fn the_mount_layout_is_planned_without_privilege() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    fs::write(&file, "x").unwrap();
    let dir = tmp.path().join("d");
    fs::create_dir(&dir).unwrap();
    let mounts = vec![
        Mount {
            source: MountSource::Bind(dir.clone()),
            target: "/deep/er/dir".into(),
            readonly: true,
        },
        Mount {
            source: MountSource::Tmpfs { size: 0 },
            target: "/t/../tmp".into(),
            readonly: false,
        },
    ];
    let etc = vec![(file.clone(), "/etc/hosts".to_string(), false)];
    let l = layout(&mounts, etc, tmp.path()).unwrap();
    assert_eq!(l.mkfiles, ["/etc/hosts"]);
    for d in [
        "/proc",
        "/dev",
        "/sys",
        "/deep",
        "/deep/er",
        "/deep/er/dir",
        "/tmp",
        "/etc",
    ] {
        assert!(l.mkdirs.iter().any(|m| m == d), "{d} in {:?}", l.mkdirs);
    }
    let targets: Vec<String> = l
        .mounts
        .iter()
        .map(|m| m.target.to_string_lossy().into_owned())
        .collect();
    // Mounts in the spec's order, then the binds.
    assert_eq!(targets, ["/tmp", "/etc/hosts", "/deep/er/dir"]);
    let missing = vec![Mount {
        source: MountSource::Bind(tmp.path().join("nope")),
        target: "/x".into(),
        readonly: false,
    }];
    assert!(layout(&missing, vec![], tmp.path()).is_err());
}
