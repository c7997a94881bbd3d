//! The CLI tests' harness: a kiln binary with a store, a docker config
//! and a build context of its own in a temp directory, and the calls the
//! tests make (run, build, inspect) as one-liners.

use crate::write_busybox_rootfs;
use sha2::Digest as _;
use std::path::{Path, PathBuf};

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Output {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    /// (exit code, stdout, stderr), to destructure.
    pub fn parts(self) -> (i32, String, String) {
        (self.code, self.stdout, self.stderr)
    }
}

/// A kiln binary with a store of its own. The binary's path comes from
/// the caller (`env!("CARGO_BIN_EXE_kiln")`, which Cargo sets only for the
/// cli crate's tests). Layout under [`Kiln::dir`]: `store/` (the root),
/// `docker/` (DOCKER_CONFIG: no host credentials leak in or out), `ctx/`
/// (the default build context).
pub struct Kiln {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<TestUser>,
}

/// An ordinary user the rootless tests run kiln as (made by
/// `tests/setup/rootless-users.sh`, which `.ci/run` runs).
#[derive(Debug, Clone)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl TestUser {
    /// `kiln-rootless`: has a subordinate id range in /etc/subuid and /etc/subgid.
    pub fn with_range() -> TestUser {
        TestUser::lookup("kiln-rootless")
    }

    /// `kiln-single`: has none (kiln maps only itself).
    pub fn without_range() -> TestUser {
        TestUser::lookup("kiln-single")
    }

    fn lookup(name: &str) -> TestUser {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let line = passwd
            .lines()
            .find(|l| l.split(':').next() == Some(name))
            .unwrap_or_else(|| {
                panic!("no user {name}: run `bash tests/setup/rootless-users.sh` (.ci/run does)")
            });
        let f: Vec<&str> = line.split(':').collect();
        TestUser {
            name: name.to_string(),
            uid: f[2].parse().unwrap(),
            gid: f[3].parse().unwrap(),
            home: PathBuf::from(f[5]),
        }
    }

    /// Gives `path` to this user.
    pub fn own(&self, path: &Path) {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid)).unwrap();
    }

    /// Sets `cmd` to run as this user, with its HOME and nothing of
    /// root's that changes where kiln keeps things.
    pub fn apply(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        cmd.uid(self.uid).gid(self.gid);
        cmd.env("HOME", &self.home);
        for var in ["XDG_DATA_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"] {
            cmd.env_remove(var);
        }
    }
}

/// Containers a test left (running under their monitors) are removed
/// before its directory goes: a monitor must not outlive its test.
impl Drop for Kiln {
    fn drop(&mut self) {
        if !self.root().join("containers").is_dir() {
            return;
        }
        let Ok(out) = self.cmd().args(["ps", "-aq", "--no-trunc"]).output() else {
            return;
        };
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = self.cmd().args(["rm", "-f", "-v", id]).output();
        }
    }
}

impl Kiln {
    /// An empty store and an empty context.
    pub fn new(bin: impl Into<PathBuf>) -> Kiln {
        let k = Kiln {
            dir: tempfile::tempdir().unwrap(),
            bin: bin.into(),
            user: None,
        };
        std::fs::create_dir_all(k.ctx()).unwrap();
        k
    }

    /// An empty store and context that `user` owns; kiln runs as `user`
    /// (rootless). Files the test writes are given to it.
    pub fn as_user(bin: impl Into<PathBuf>, user: TestUser) -> Kiln {
        let k = Kiln {
            dir: tempfile::tempdir().unwrap(),
            bin: bin.into(),
            user: Some(user),
        };
        std::fs::create_dir_all(k.ctx()).unwrap();
        k.give(k.dir.path());
        k.give(&k.ctx());
        k
    }

    /// The user kiln runs as, if not root.
    pub fn user(&self) -> Option<&TestUser> {
        self.user.as_ref()
    }

    /// Gives `path` (in the test's directory) and the directories between
    /// it and the test's directory to the test's user, if it has one.
    pub fn give(&self, path: &Path) {
        let Some(user) = &self.user else { return };
        let mut p = Some(path);
        while let Some(dir) = p {
            user.own(dir);
            if dir == self.dir.path() {
                break;
            }
            p = dir.parent().filter(|d| d.starts_with(self.dir.path()));
        }
    }

    /// A store holding `busybox` (from Debian's busybox-static).
    pub fn with_busybox(bin: impl Into<PathBuf>) -> Kiln {
        let k = Kiln::new(bin);
        k.import_busybox("busybox", &[]);
        k
    }

    /// Imports the busybox root filesystem as `name`, with `--change`
    /// instructions applied to its config.
    pub fn import_busybox(&self, name: &str, changes: &[&str]) {
        let rootfs = self.path("busybox-rootfs.tar");
        if !rootfs.is_file() {
            write_busybox_rootfs(&rootfs);
            self.give(&rootfs);
        }
        let mut args = vec!["import", rootfs.to_str().unwrap(), name];
        for c in changes {
            args.extend(["--change", c]);
        }
        self.ok(&args);
    }

    /// The store (`--root`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// A path in the test's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (and its parents) in the test's directory.
    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        self.give(&p);
        p
    }

    /// The default build context.
    pub fn ctx(&self) -> PathBuf {
        self.path("ctx")
    }

    /// Writes a file in the default build context.
    pub fn write_ctx(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        self.write(&format!("ctx/{rel}"), data)
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// `kiln --root ROOT` with DOCKER_CONFIG private to the test and none
    /// of the caller's settings that change what kiln does.
    pub fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.bin);
        if let Some(user) = &self.user {
            user.apply(&mut c);
        }
        c.arg("--root").arg(self.root());
        c.env("DOCKER_CONFIG", self.path("docker"));
        // The test's own config.toml and certs.d (`config/kiln/`), never
        // the caller's.
        c.env("XDG_CONFIG_HOME", self.path("config"));
        for var in [
            "SOURCE_DATE_EPOCH",
            "KILN_PUSH_CHUNK_SIZE",
            "KILN_ROOT",
            "KILN_INSECURE_REGISTRIES",
        ] {
            c.env_remove(var);
        }
        c
    }

    /// [`Kiln::cmd`] as an `assert_cmd` command (for `write_stdin`).
    pub fn kiln(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.cmd())
    }

    /// Runs kiln with `args`; whatever happens.
    pub fn out(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap().into()
    }

    /// Runs `kiln --root ROOT ARGS` from a root bash that first opened
    /// descriptors 7 (the host's root) and 8 (/etc/shadow) without
    /// close-on-exec, as a shell or CI agent may leave them; as the
    /// test's user (through setpriv, which keeps them) if it has one.
    pub fn with_leaked_fds(&self, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg("-c");
        match &self.user {
            None => {
                cmd.arg("exec 7</ 8</etc/shadow; exec \"$@\"");
            }
            Some(user) => {
                cmd.arg(
                    "exec 7</ 8</etc/shadow; \
                     exec setpriv --reuid=\"$U\" --regid=\"$G\" --clear-groups \"$@\"",
                )
                .env("U", user.uid.to_string())
                .env("G", user.gid.to_string())
                .env("HOME", &user.home);
            }
        }
        cmd.arg("bash")
            .arg(&self.bin)
            .arg("--root")
            .arg(self.root())
            .args(args);
        cmd.output().unwrap().into()
    }

    /// Runs kiln with `args`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.out(args);
        assert_eq!(out.code, 0, "kiln {args:?} failed:\n{}", out.stderr);
        out.stdout
    }

    /// Runs kiln with `args`, which must exit with `code`; returns stdout.
    pub fn ok_code(&self, args: &[&str], code: i32) -> String {
        let out = self.out(args);
        assert_eq!(out.code, code, "kiln {args:?}:\n{}", out.stderr);
        out.stdout
    }

    /// Runs kiln with `args`, which must fail cleanly (exit 1..=125, no
    /// panic); returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.out(args);
        assert!(
            (1..=125).contains(&out.code),
            "kiln {args:?} should fail cleanly, got {}:\n{}",
            out.code,
            out.stderr
        );
        assert!(
            !out.stderr.contains("panicked"),
            "kiln panicked:\n{}",
            out.stderr
        );
        out.stderr
    }

    /// `kiln run --rm ARGS`, which must succeed; returns stdout.
    pub fn run_rm(&self, args: &[&str]) -> String {
        let mut full = vec!["run", "--rm"];
        full.extend_from_slice(args);
        self.ok(&full)
    }

    /// Builds the default context with `extra` flags, which must succeed;
    /// returns (image ID, progress).
    pub fn build(&self, extra: &[&str]) -> (String, String) {
        self.build_dir(&self.ctx(), extra)
    }

    /// `kiln build -q ARGS CONTEXT` with `SOURCE_DATE_EPOCH`, which must
    /// succeed; returns the image ID.
    pub fn build_at_epoch(&self, epoch: &str, args: &[&str]) -> String {
        let out = self
            .cmd()
            .env("SOURCE_DATE_EPOCH", epoch)
            .args(["build", "-q"])
            .args(args)
            .arg(self.ctx())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Builds `context` with `extra` flags, which must succeed.
    pub fn build_dir(&self, context: &Path, extra: &[&str]) -> (String, String) {
        let (code, id, err) = self.try_build_dir(context, extra);
        assert_eq!(code, 0, "build {extra:?} failed:\n{err}");
        (id.trim().to_string(), err)
    }

    /// Builds the default context with plain progress; returns (exit
    /// code, image ID or "", stderr).
    pub fn try_build(&self, extra: &[&str]) -> (i32, String, String) {
        self.try_build_dir(&self.ctx(), extra)
    }

    pub fn try_build_dir(&self, context: &Path, extra: &[&str]) -> (i32, String, String) {
        let iid = self.path("iid");
        let out = self
            .cmd()
            .args(["build", "--progress", "plain", "--iidfile"])
            .arg(&iid)
            .args(extra)
            .arg(context)
            .output()
            .unwrap();
        let id = std::fs::read_to_string(&iid).unwrap_or_default();
        let _ = std::fs::remove_file(&iid);
        (
            out.status.code().unwrap_or(-1),
            id,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `kiln inspect IMAGE`: the image's config document.
    pub fn inspect(&self, image: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", image])).unwrap();
        v[0].clone()
    }

    /// The store directory behind `RUN --mount=type=cache,id=ID`.
    pub fn cache_mount_dir(&self, id: &str) -> PathBuf {
        self.root()
            .join("cache-mounts")
            .join(hex::encode(sha2::Sha256::digest(id.as_bytes())))
    }

    /// The lines of the `log` file in cache mount `id` (tests append a
    /// line per RUN that really ran).
    pub fn cache_log(&self, id: &str) -> Vec<String> {
        std::fs::read_to_string(self.cache_mount_dir(id).join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}
