//! The per-container monitor (conmon's role): a detached kiln process
//! (`kiln container-monitor ID`) that starts the container, keeps its
//! pid, writes its output to the log, records its exit, restarts it as
//! its policy says (docker's backoff: 100 ms doubling to a minute, back
//! to 100 ms after ten seconds up) and runs its health check. It holds
//! the store open, so the container's image cannot be pruned under it.
//!
//! The starter learns whether the first start worked from the monitor's
//! standard output: one line, `ok` or the error, then EOF.

use crate::containers::{Container, Containers};
use crate::logs::LogWriter;
use crate::state::{Health, State, Status};
use crate::volumes::Volumes;
use crate::{io_at, Result, RuntimeError};
use kiln_executor::{Exit, Stdio};
use kiln_store::{ProcessId, Store};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Up this long, a container's next restart starts the backoff over.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// The name of kiln's hidden subcommand that runs a monitor.
pub const SUBCOMMAND: &str = "container-monitor";

/// Starts `c` under a new monitor and returns once it runs (or with why
/// it could not start). `exe` is kiln; `root` the store root.
pub fn start_detached(exe: &Path, root: &Path, c: &Container) -> Result<()> {
    let log = c.dir.join("monitor.log");
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(io_at(&log))?;
    let mut child = std::process::Command::new(exe)
        .arg("--root")
        .arg(root)
        .arg(SUBCOMMAND)
        .arg(c.id())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(io_at(exe))?;
    let mut said = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut said);
    }
    match said.lines().next() {
        Some("ok") => Ok(()),
        Some(error) => {
            let _ = child.wait();
            Err(RuntimeError::Invalid(error.to_string()))
        }
        None => {
            let status = child.wait().ok();
            let why = std::fs::read_to_string(&log).unwrap_or_default();
            Err(RuntimeError::Invalid(format!(
                "the container's monitor exited ({}) before starting it: {}",
                status.map_or("?".into(), |s| s.to_string()),
                why.lines().last().unwrap_or("no message")
            )))
        }
    }
}

/// Tells the starter how the first start went, once; then standard
/// output goes to /dev/null so the starter sees EOF.
struct Starter {
    told: bool,
}

impl Starter {
    fn tell(&mut self, what: std::result::Result<(), String>) {
        if self.told {
            return;
        }
        self.told = true;
        let line = match what {
            Ok(()) => "ok".to_string(),
            Err(e) => e.replace('\n', " "),
        };
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
            let _ = rustix::stdio::dup2_stdout(&null);
        }
    }
}

/// The monitor's life (the hidden subcommand): supervises container `id`
/// until it is down for good.
pub fn run(store: &Store, id: &str) -> Result<()> {
    // Out of the starter's session: its terminal's signals are not ours.
    let _ = rustix::process::setsid();
    let containers = Containers::new(store.root());
    let c = containers.find(id)?;
    relay_signals(&c)?;
    let mut starter = Starter { told: false };
    let result = supervise(store, &c, &mut starter);
    if let Err(e) = &result {
        starter.tell(Err(e.to_string()));
    }
    if c.config.auto_remove {
        let _ = crate::lifecycle::remove(&containers, &Volumes::new(store.root()), &c, true, true);
    }
    result
}

/// Sends PID 1 the signals `lifecycle::signal` asks for (the request in
/// a file, `RELAY_SIGNAL` to say it is there): a rootless kiln cannot
/// signal a PID 1 running as another container user, and the monitor,
/// root in the container's user namespace, can.
fn relay_signals(c: &Container) -> Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([crate::lifecycle::RELAY_SIGNAL])
        .map_err(crate::io_at(&c.dir))?;
    let c = c.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if let (Some(sig), Some(pid)) = (c.take_signal_request(), c.state().live_pid()) {
                let _ = crate::lifecycle::send(pid as i32, sig);
            }
        }
    });
    Ok(())
}

fn supervise(store: &Store, c: &Container, starter: &mut Starter) -> Result<()> {
    c.clear_stop_request();
    let state = Arc::new(Mutex::new(State {
        supervisor: ProcessId::current().to_string(),
        relays_signals: true,
        ..c.state()
    }));
    let saver = {
        let c = c.clone();
        move |st: &State| {
            let _ = c.save_state(st);
        }
    };
    let update = |f: &dyn Fn(&mut State)| {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut st);
        saver(&st);
    };
    let mut log = LogWriter::open(&c.log_path())?;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let stdio = if c.config.tty {
            Stdio::Tty
        } else {
            Stdio::Piped
        };
        let started = crate::spec::spec(store, c, stdio).and_then(|(spec, network)| {
            let running = kiln_executor::spawn(spec).map_err(RuntimeError::from)?;
            Ok((running, network))
        });
        // The network lives as long as this run of the container.
        let (mut running, _network) = match started {
            Ok(r) => r,
            Err(e) => {
                let code = e.exit_code();
                let message = e.to_string();
                update(&|st| {
                    st.status = Status::Exited;
                    st.exit_code = code;
                    st.error = message.clone();
                    st.pid.clear();
                    st.finished_at = crate::time::now();
                });
                starter.tell(Err(message));
                return Ok(());
            }
        };
        let pid = running.pid();
        let pid_id = ProcessId::of(pid as i32)
            .map(|p| p.to_string())
            .unwrap_or_default();
        update(&|st| {
            st.status = Status::Running;
            st.pid = pid_id.clone();
            st.started_at = crate::time::now();
            st.exit_code = 0;
            st.error.clear();
            if c.config.healthcheck.is_some() {
                st.health = Some(Health {
                    status: "starting".into(),
                    ..Health::default()
                });
            }
        });
        starter.tell(Ok(()));
        let checker =
            c.config.healthcheck.clone().map(|h| {
                crate::health::start(h, c.config.clone(), pid, state.clone(), saver.clone())
            });
        let up_since = Instant::now();
        let exit = match running.take_pty() {
            Some(pty) => {
                let mut r = std::fs::File::from(pty);
                let mut buf = [0u8; 8192];
                // EIO once the container's side is gone.
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.write("stdout", &buf[..n]);
                }
                running.wait()
            }
            None => running.wait_with_lines(|stream, line| {
                let name = match stream {
                    kiln_executor::Stream::Stdout => "stdout",
                    kiln_executor::Stream::Stderr => "stderr",
                };
                log.write(name, line);
            }),
        };
        drop(checker);
        let code = match exit {
            Ok(Exit::Code(n)) => n,
            Ok(e @ Exit::Signal(_)) => e.code(),
            Err(_) => 255,
        };
        let restarts = state.lock().map(|s| s.restart_count).unwrap_or(0);
        let again = c
            .config
            .restart
            .restarts(code, restarts, c.stop_requested());
        update(&|st| {
            st.status = if again {
                Status::Restarting
            } else {
                Status::Exited
            };
            st.exit_code = code;
            st.pid.clear();
            st.finished_at = crate::time::now();
        });
        if !again {
            return Ok(());
        }
        if up_since.elapsed() >= RESET_AFTER {
            backoff = FIRST_BACKOFF;
        }
        if !sleep_unless_stopped(c, backoff) {
            update(&|st| st.status = Status::Exited);
            return Ok(());
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        update(&|st| st.restart_count += 1);
    }
}

/// Sleeps, unless a stop is asked for meanwhile (then false).
fn sleep_unless_stopped(c: &Container, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if c.stop_requested() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10).min(end - Instant::now()));
    }
    !c.stop_requested()
}
