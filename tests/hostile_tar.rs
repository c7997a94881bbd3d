//! Hostile tars: archives that try to write outside where they are
//! unpacked (`..`, absolute paths, symlinks and hardlinks out, a
//! directory swapped for a symlink). One corpus for every caller of the
//! store's extractor — layer apply and ADD's archive unpacking — so the
//! rule is tested where each caller uses it.

use std::path::Path;

/// (what it tries, tar bytes).
pub fn hostile_tars() -> Vec<(&'static str, Vec<u8>)> {
    use tar::EntryType::*;
    type Entries = Vec<(&'static str, tar::EntryType, &'static str)>;
    let cases: Vec<(&'static str, Entries)> = vec![
        ("dotdot path", vec![("../escaped", Regular, "")]),
        ("dotdot deep", vec![("a/../../escaped", Regular, "")]),
        ("absolute path", vec![("/escaped", Regular, "")]),
        (
            "symlink to outside dir then write through it",
            vec![
                ("evil", Symlink, "../outside"),
                ("evil/escaped", Regular, ""),
            ],
        ),
        (
            "absolute symlink then write through it",
            vec![("evil", Symlink, "/tmp"), ("evil/escaped", Regular, "")],
        ),
        (
            "dotdot symlink chain",
            vec![("a", Symlink, "../../../../.."), ("a/escaped", Regular, "")],
        ),
        (
            "hardlink to outside by dotdot",
            vec![("h", Link, "../outside/secret")],
        ),
        (
            "hardlink to absolute host path",
            vec![("h", Link, "/etc/passwd")],
        ),
        (
            "hardlink through a symlink",
            vec![("s", Symlink, "../outside"), ("h", Link, "s/secret")],
        ),
        (
            "dir replaced by symlink, then written through",
            vec![
                ("d/", Directory, ""),
                ("d", Symlink, "../outside"),
                ("d/escaped", Regular, ""),
            ],
        ),
    ];
    cases
        .into_iter()
        .map(|(name, entries)| {
            let entries: Vec<RawEntry> = entries
                .into_iter()
                .map(|(path, kind, link)| {
                    let data: &[u8] = if kind == Regular { b"pwned" } else { b"" };
                    (path, kind, link, data)
                })
                .collect();
            (name, raw_tar(&entries))
        })
        .collect()
}

/// One entry of [`raw_tar`]: name, type, link target, content.
pub type RawEntry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

/// A tar of v7 headers written as given, with its end blocks: names the
/// tar crate's builder refuses (`..`, absolute) included.
pub fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, kind, link, data) in entries {
        raw_entry(&mut tar, name, *kind, link, data);
    }
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

/// A header written as is: the tar crate's builder refuses `..` and
/// absolute names, which is exactly what these archives need.
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// Files under `dir`, sorted.
pub fn all_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(p.display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A place to unpack into: `<tmp>/outside/secret` beside `<tmp>/target`.
pub struct Arena {
    pub dir: tempfile::TempDir,
}

impl Arena {
    pub fn new() -> Arena {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret"), "host secret").unwrap();
        std::fs::create_dir_all(dir.path().join("target")).unwrap();
        Arena { dir }
    }

    pub fn target(&self) -> std::path::PathBuf {
        self.dir.path().join("target")
    }

    fn outside_files(&self) -> Vec<String> {
        let target = self.target().display().to_string();
        all_files(self.dir.path())
            .into_iter()
            .filter(|p| !p.starts_with(&target))
            .collect()
    }

    /// Runs `unpack` and asserts nothing outside the target changed, the
    /// secret is intact, nothing landed at `/escaped` or `/tmp/escaped`,
    /// and no hardlink in the target shares the secret's inode.
    pub fn assert_confined<T, E: std::fmt::Debug>(
        &self,
        case: &str,
        unpack: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        use std::os::unix::fs::MetadataExt;
        let before = self.outside_files();
        let result = unpack();
        assert_eq!(
            self.outside_files(),
            before,
            "{case}: files appeared outside"
        );
        let secret = self.dir.path().join("outside/secret");
        assert_eq!(
            std::fs::read_to_string(&secret).unwrap(),
            "host secret",
            "{case}"
        );
        assert!(
            !Path::new("/escaped").exists() && !Path::new("/tmp/escaped").exists(),
            "{case}"
        );
        let secret_ino = std::fs::metadata(&secret).unwrap().ino();
        for f in all_files(&self.target()) {
            if let Ok(m) = std::fs::symlink_metadata(&f) {
                assert!(
                    !(m.is_file() && m.ino() == secret_ino),
                    "{case}: {f} is a hardlink to the secret"
                );
            }
        }
        result
    }
}

impl Default for Arena {
    fn default() -> Arena {
        Arena::new()
    }
}
