//! Build progress as a user sees it: the live view in a real terminal
//! (tmux, 15 rows: timers advance during a silent step, the view fits,
//! the scrollback holds one final view), plain mode's full list on a
//! cached rebuild, rawjson events, and the progress environment
//! variables.

use kiln_tests::Kiln;
use std::process::Command;
use std::time::{Duration, Instant};

fn env() -> Kiln {
    Kiln::with_busybox(env!("CARGO_BIN_EXE_kiln"))
}

#[test]
fn a_cached_rebuild_lists_every_step_in_plain_mode() {
    let k = env();
    k.write_ctx("a.txt", "a\n");
    k.write_ctx(
        "Dockerfile",
        "FROM busybox\nRUN echo one > /1\nCOPY a.txt /\nRUN echo two > /2\n",
    );
    let (_, first) = k.build(&[]);
    assert!(!first.contains("cache miss"), "{first}");
    let (_, again) = k.build(&[]);
    for label in [
        "[1/4] FROM docker.io/library/busybox:latest@sha256:",
        "[2/4] RUN echo one > /1",
        "[3/4] COPY a.txt /",
        "[4/4] RUN echo two > /2",
    ] {
        let line = again
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("{label} not listed:\n{again}"));
        let number = line.split_whitespace().next().unwrap();
        assert!(
            again.contains(&format!("{number} CACHED")),
            "{label} not CACHED:\n{again}"
        );
    }
    assert!(!again.contains(" DONE "), "{again}");
}

#[test]
fn rawjson_events_and_the_progress_variables() {
    let k = env();
    k.write_ctx("Dockerfile", "FROM busybox\nRUN echo hello-from-the-step\n");
    let build = |vars: &[(&str, &str)], args: &[&str]| {
        let mut cmd = k.cmd();
        cmd.env_remove("KILN_PROGRESS")
            .env_remove("BUILDKIT_PROGRESS")
            .envs(vars.iter().copied())
            .arg("build")
            .args(args)
            .arg(k.ctx());
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = build(&[("BUILDKIT_PROGRESS", "rawjson")], &["--no-cache"]);
    assert_eq!(code, Some(0), "{err}");
    let events: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let run = events
        .iter()
        .filter_map(|e| e.get("vertexes")?.get(0))
        .find(|v| v["name"] == "[2/2] RUN echo hello-from-the-step" && v.get("completed").is_some())
        .unwrap_or_else(|| panic!("no completed RUN vertex in {events:#?}"));
    assert!(run["started"].as_f64().unwrap() <= run["completed"].as_f64().unwrap());
    assert!(events
        .iter()
        .filter_map(|e| e.get("logs")?.get(0))
        .any(|l| l["data"] == "hello-from-the-step"));
    // KILN_PROGRESS wins over BUILDKIT_PROGRESS, the flag over both.
    let (_, err) = build(
        &[("KILN_PROGRESS", "plain"), ("BUILDKIT_PROGRESS", "rawjson")],
        &["--no-cache"],
    );
    assert!(err.contains("#2 [2/2] RUN echo"), "{err}");
    let (_, err) = build(
        &[("KILN_PROGRESS", "rawjson")],
        &["--no-cache", "--progress=plain"],
    );
    assert!(!err.contains("{\"vertexes\""), "{err}");
    // A bad value names where it came from.
    let (code, err) = build(&[("BUILDKIT_PROGRESS", "fancy")], &[]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("$BUILDKIT_PROGRESS: invalid progress mode \"fancy\""),
        "{err}"
    );
}

/// A tmux server of the test's own, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        // -u: a UTF-8 terminal, as users' are (the view's `…` is one cell).
        let out = Command::new("tmux")
            .arg("-u")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux (Debian's tmux package; .ci/run installs it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The visible screen.
    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "build"])
    }

    /// The scrollback and the screen.
    fn history(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-S", "-", "-t", "build"])
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The time a screen shows for the step labelled `label`.
fn shown_time(screen: &str, label: &str) -> Option<f64> {
    let line = screen.lines().find(|l| l.contains(label))?;
    line.split_whitespace()
        .last()?
        .strip_suffix('s')?
        .parse()
        .ok()
}

#[test]
fn the_live_view_fits_a_small_terminal_and_its_timers_advance() {
    let k = env();
    // 32 steps: 30 quick ones around one that is silent for 3 s.
    let mut dockerfile = String::from("FROM busybox\n");
    for i in 0..15 {
        dockerfile.push_str(&format!("RUN echo step-{i} > /s{i}\n"));
    }
    dockerfile.push_str("RUN sleep 3\n");
    for i in 15..30 {
        dockerfile.push_str(&format!("RUN echo step-{i} > /s{i}\n"));
    }
    k.write_ctx("Dockerfile", &dockerfile);
    let done = k.path("done");
    let tmux = Tmux {
        socket: format!("kiln-test-{}", std::process::id()),
    };
    let command = format!(
        "{} --root {} build --progress=tty -t big {}; echo exit=$? > {}; sleep 600",
        k.bin().display(),
        k.root().display(),
        k.ctx().display(),
        done.display()
    );
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "build",
        "-x",
        "100",
        "-y",
        "15",
        &command,
    ]);
    // While the silent step runs (3 s), its timer moves: a time strictly
    // between its start and its end is only shown by a redraw on a tick.
    let started = Instant::now();
    let first = loop {
        let screen = tmux.screen();
        if let Some(t) = shown_time(&screen, "[17/32] RUN sleep 3") {
            assert!(
                t < 2.5,
                "the running step's timer never advanced before it ended:\n{screen}"
            );
            if t > 0.0 && t < 1.5 {
                break (t, screen);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60) && !done.exists(),
            "the sleep step never showed running:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(1000));
    let second = tmux.screen();
    let later = shown_time(&second, "[17/32] RUN sleep 3")
        .unwrap_or_else(|| panic!("the running step left the view:\n{second}"));
    assert!(
        later >= first.0 + 0.5,
        "the timer did not advance: {} then {later}\n{}\n{second}",
        first.0,
        first.1
    );
    // Every moment's view has one header and fits the 15 rows.
    for screen in [&first.1, &second] {
        assert_eq!(screen.matches("[+] Building").count(), 1, "{screen}");
    }
    while !done.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the build hung"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(&done).unwrap().trim(), "exit=0");
    // The scrollback holds one view: the final one, every step in it.
    let history = tmux.history();
    assert_eq!(history.matches("[+] Building").count(), 1, "{history}");
    assert!(history.contains("(32/32) FINISHED"), "{history}");
    for i in 0..30 {
        assert!(
            history.contains(&format!("RUN echo step-{i} ")),
            "{history}"
        );
    }
}
