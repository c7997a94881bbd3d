//! `kiln run` end to end, on a busybox image made from Debian's
//! busybox-static: each flag, the image's defaults, a real pty, signal
//! forwarding, exit codes, and nothing left behind.

use kiln_tests::Kiln;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A store with `bb` (plain busybox) and `app` (with Entrypoint, Cmd,
/// Env, WorkingDir, User set).
fn env() -> Kiln {
    let k = Kiln::new(env!("CARGO_BIN_EXE_kiln"));
    k.import_busybox("bb", &[]);
    k.import_busybox(
        "app",
        &[
            "ENTRYPOINT [\"/bin/echo\", \"entry\"]",
            "CMD [\"default-cmd\"]",
            "ENV FROM_IMAGE=yes",
            "WORKDIR /srv/app",
            "USER nobody",
        ],
    );
    k
}

/// `kiln run ARGS`: (exit code, stdout, stderr).
fn run(k: &Kiln, args: &[&str]) -> (i32, String, String) {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    k.out(&full).parts()
}

fn mounts() -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn image_defaults_and_overrides() {
    let env = env();
    assert_eq!(run(&env, &["--rm", "app"]).1, "entry default-cmd\n");
    // Everything after the image is the container's, even what kiln has
    // flags for (`-p` publishes, `-c` sets CPU shares).
    assert_eq!(
        run(&env, &["--rm", "app", "-p", "80", "-c"]).1,
        "entry -p 80 -c\n"
    );
    assert_eq!(
        run(&env, &["--rm", "app", "given", "args"]).1,
        "entry given args\n"
    );
    assert_eq!(
        run(
            &env,
            &[
                "--rm",
                "--entrypoint",
                "/bin/sh",
                "app",
                "-c",
                "echo $FROM_IMAGE $(pwd) $(id -un)"
            ]
        )
        .1,
        "yes /srv/app nobody\n"
    );
    assert_eq!(
        run(
            &env,
            &[
                "--rm",
                "--entrypoint",
                "/bin/pwd",
                "-w",
                "/tmp",
                "-u",
                "root",
                "app"
            ]
        )
        .1,
        "/tmp\n"
    );
}

#[test]
fn every_flag() {
    let env = env();
    let envfile = env.dir.path().join("vars.env");
    fs::write(&envfile, "# comment\nFROM_FILE=1\n\nOVERRIDDEN=file\n").unwrap();
    let host = env.dir.path().join("host");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("in"), "host data\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut fs::metadata(&host).unwrap().permissions(),
        0o777,
    );
    fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let (code, out, err) = run(&env, &[
        "--rm", "-e", "A=1", "--env-file", envfile.to_str().unwrap(), "-e", "OVERRIDDEN=flag",
        "-w", "/work/here", "-u", "nobody", "--hostname", "kiln-host",
        "-v", &format!("{}:/ro:ro", host.display()), "-v", &format!("{}:/rw", host.display()),
        "bb", "sh", "-c",
        "echo $A $FROM_FILE $OVERRIDDEN; pwd; id -u; hostname; cat /ro/in; touch /ro/x 2>/dev/null || echo ro; echo w > /rw/out",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "1 1 flag\n/work/here\n65534\nkiln-host\nhost data\nro\n"
    );
    assert_eq!(fs::read_to_string(host.join("out")).unwrap(), "w\n");
    // --init: PID 1 is the reaper, the command is its child.
    assert_eq!(
        run(&env, &["--rm", "--init", "bb", "sh", "-c", "echo $$"]).1,
        "2\n"
    );
    assert_eq!(run(&env, &["--rm", "bb", "sh", "-c", "echo $$"]).1, "1\n");
    let (_, out, _) = run(
        &env,
        &["--rm", "--network", "none", "bb", "ls", "/sys/class/net"],
    );
    assert_eq!(out, "lo\n");
    // -i passes stdin; without it the command sees an empty stdin.
    let out = env
        .kiln()
        .args(["run", "--rm", "-i", "bb", "cat"])
        .write_stdin("piped in\n")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped in\n");
    let out = env
        .kiln()
        .args(["run", "--rm", "bb", "cat"])
        .write_stdin("ignored\n")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn oci_runtime_backend() {
    let env = env();
    let (code, out, err) = run(
        &env,
        &[
            "--rm",
            "--oci-runtime",
            "/usr/sbin/runc",
            "--hostname",
            "via-runc",
            "-e",
            "X=1",
            "-w",
            "/w",
            "-u",
            "nobody",
            "bb",
            "sh",
            "-c",
            "echo $$ $(hostname) $X $(pwd) $(id -u); exit 3",
        ],
    );
    assert_eq!(code, 3, "{err}");
    assert_eq!(out, "1 via-runc 1 /w 65534\n");
    let (code, _, err) = run(
        &env,
        &["--rm", "--oci-runtime", "/nonexistent/runc", "bb", "true"],
    );
    assert_eq!(code, 125);
    assert!(err.contains("no such runtime binary"), "{err}");
}

#[test]
fn memory_and_pids_limits() {
    let env = env();
    let (_, out, _) = run(
        &env,
        &[
            "--rm",
            "-m",
            "32m",
            "bb",
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null; echo $?",
        ],
    );
    assert_eq!(out, "137\n", "over the memory limit: OOM-killed");
    let (_, _, err) = run(
        &env,
        &[
            "--rm",
            "--pids-limit",
            "4",
            "bb",
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait",
        ],
    );
    assert!(err.contains("can't fork"), "{err}");
    let (code, _, err) = run(&env, &["--rm", "-m", "lots", "bb", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("--memory lots"), "{err}");
}

#[test]
fn exit_codes_and_errors() {
    let env = env();
    assert_eq!(run(&env, &["--rm", "bb", "sh", "-c", "exit 42"]).0, 42);
    let (code, _, err) = run(&env, &["--rm", "bb", "no-such-command"]);
    assert_eq!(code, 127);
    assert_eq!(
        err,
        "error: exec: \"no-such-command\": executable file not found in $PATH\n"
    );
    assert_eq!(run(&env, &["--rm", "bb", "/etc/passwd"]).0, 126);
    let (code, _, err) = run(&env, &["--rm", "-u", "ghost", "bb", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("unable to find user ghost"), "{err}");
    // --mount refuses a missing bind source (-v makes it, as docker).
    let (code, _, err) = run(
        &env,
        &[
            "--rm",
            "--mount",
            "type=bind,source=/nonexistent,target=/x",
            "bb",
            "true",
        ],
    );
    assert_eq!(code, 125);
    assert!(
        err.contains("bind source path does not exist: /nonexistent"),
        "{err}"
    );
    let (code, _, err) = run(&env, &["--rm", "nope"]);
    assert_eq!(code, 125);
    // Not in the store: pulled, which fails here (no docker.io).
    assert!(err.contains("error: nope:latest: "), "{err}");
    assert!(err.contains("not in the local store either"), "{err}");
}

#[test]
fn tty_gives_a_real_terminal() {
    let env = env();
    let kiln = env.bin();
    let cmd = format!(
        "'{}' --root '{}' run --rm -t bb sh -c 'tty; [ -t 0 ] && echo stdin-is-a-tty; stty size'",
        kiln.display(),
        env.root().display()
    );
    // `script` runs kiln under a pty of its own, as a terminal user would.
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("stdin-is-a-tty"), "{text}");
}

fn processes_with(marker: &str) -> usize {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|e| {
            fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn signals_are_forwarded_and_nothing_is_left_behind() {
    let env = env();
    let before = mounts();
    let marker = format!("kiln-signal-test-{}", std::process::id());
    let mut child = env
        .cmd()
        .args(["run", "--rm", "--name", "sig", "bb", "sh", "-c"])
        .arg(format!("trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done # {marker}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    // A second container cannot take the same name meanwhile.
    let (code, _, err) = run(&env, &["--rm", "--name", "sig", "bb", "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("already in use"), "{err}");
    rustix_kill(child.id(), 15);
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(
        status.code(),
        Some(7),
        "the container's exit code is kiln's"
    );
    assert_eq!(processes_with(&marker), 0, "no container process survives");
    assert_eq!(mounts(), before, "no mount leaks");
    let containers = env.root().join("containers");
    let left: Vec<_> = fs::read_dir(&containers)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "names")
        .collect();
    assert!(left.is_empty(), "--rm leaves nothing: {left:?}");
    assert_eq!(fs::read_dir(containers.join("names")).unwrap().count(), 0);
    // Without --rm the container's files stay (its diff is there).
    run(&env, &["bb", "sh", "-c", "echo kept > /kept"]);
    let kept: Vec<PathBuf> = fs::read_dir(&containers)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.ends_with("names"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        fs::read_to_string(kept[0].join("upper/kept")).unwrap(),
        "kept\n"
    );
    let _ = Path::new("");
}

fn rustix_kill(pid: u32, sig: i32) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn kiln_failures_exit_125_and_other_commands_1_as_docker() {
    let env = env();
    // A flag kiln run does not know, before and after a global flag.
    let (code, _, err) = run(&env, &["--no-such-flag", "bb", "true"]);
    assert_eq!(code, 125, "{err}");
    let out = env
        .cmd()
        .args(["--insecure-registry", "x:1", "run", "--no-such-flag", "bb"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    // An image with neither Entrypoint nor Cmd, and no command given.
    env.import_busybox("bare", &["CMD []"]);
    let (code, _, err) = run(&env, &["--rm", "bare"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("no command specified"), "{err}");
    // Other commands keep docker's 1.
    assert_eq!(env.out(&["inspect", "nope"]).code, 1);
    assert_eq!(env.out(&["--no-such-flag"]).code, 2, "clap's usage error");
}
