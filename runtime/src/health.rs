//! Health checks, run by the monitor: the probe command is exec'd in the
//! container every interval (every start interval during the start
//! period); `retries` failures in a row make it unhealthy, one success
//! healthy. Failures during the start period do not count.

use crate::config::{ContainerConfig, HealthConfig};
use crate::state::{Health, Probe, State};
use kiln_executor::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// docker keeps this much of a probe's output.
const MAX_OUTPUT: usize = 4096;
const KEPT_PROBES: usize = 5;

/// A running health-check thread; stopped and joined on drop.
pub struct Checker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts probing the container whose PID 1 is `pid`; `save` persists
/// the state after each probe.
pub fn start(
    check: HealthConfig,
    config: ContainerConfig,
    pid: u32,
    state: Arc<Mutex<State>>,
    save: impl Fn(&State) + Send + 'static,
) -> Checker {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let started = Instant::now();
        loop {
            let in_start_period = started.elapsed() < Duration::from_millis(check.start_period_ms);
            let every = if in_start_period {
                check.start_interval_ms.min(check.interval_ms)
            } else {
                check.interval_ms
            };
            if !sleep_unless(&flag, Duration::from_millis(every)) {
                return;
            }
            let probe = run_probe(&check, &config, pid);
            if flag.load(Ordering::SeqCst) {
                return;
            }
            let in_start_period = started.elapsed() < Duration::from_millis(check.start_period_ms);
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            let health = st.health.get_or_insert_with(|| Health {
                status: "starting".into(),
                ..Health::default()
            });
            record(health, probe, check.retries, in_start_period);
            save(&st);
        }
    });
    Checker {
        stop,
        thread: Some(thread),
    }
}

/// Updates health with one probe's result.
fn record(health: &mut Health, probe: Probe, retries: u32, in_start_period: bool) {
    if probe.exit_code == 0 {
        health.status = "healthy".into();
        health.failing_streak = 0;
    } else if !in_start_period || health.status != "starting" {
        health.failing_streak += 1;
        if health.failing_streak >= retries {
            health.status = "unhealthy".into();
        }
    }
    health.log.push(probe);
    if health.log.len() > KEPT_PROBES {
        health.log.remove(0);
    }
}

/// Sleeps `d` in short slices; false when asked to stop.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
    }
    !stop.load(Ordering::SeqCst)
}

/// One probe: exec'd in the container, killed at the timeout.
fn run_probe(check: &HealthConfig, config: &ContainerConfig, pid: u32) -> Probe {
    let start = crate::time::now();
    let started = crate::spec::exec_spec(config, pid, check.argv(), Stdio::Piped)
        .and_then(|spec| kiln_executor::exec(spec).map_err(Into::into));
    let (exit_code, output) = match started {
        Err(e) => (e.exit_code(), e.to_string()),
        Ok(running) => {
            let handle = running.handle();
            let done = Arc::new(AtomicBool::new(false));
            let timed_out = Arc::new(AtomicBool::new(false));
            let (d, t) = (done.clone(), timed_out.clone());
            let timeout = Duration::from_millis(check.timeout_ms);
            let timer = std::thread::spawn(move || {
                if sleep_unless(&d, timeout) {
                    t.store(true, Ordering::SeqCst);
                    handle.kill();
                }
            });
            let mut output = Vec::new();
            let exit = running.wait_with_lines(|_, line| {
                if output.len() < MAX_OUTPUT {
                    output.extend_from_slice(line);
                }
            });
            done.store(true, Ordering::SeqCst);
            let _ = timer.join();
            output.truncate(MAX_OUTPUT);
            let mut text = String::from_utf8_lossy(&output).into_owned();
            if timed_out.load(Ordering::SeqCst) {
                text = format!("Health check exceeded timeout ({}ms)", check.timeout_ms);
                (-1, text)
            } else {
                (exit.map(|e| e.code()).unwrap_or(-1), text)
            }
        }
    };
    Probe {
        start,
        end: crate::time::now(),
        exit_code,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i32) -> Probe {
        Probe {
            exit_code: code,
            ..Probe::default()
        }
    }

    #[test]
    fn retries_failures_in_a_row_make_it_unhealthy_and_one_success_healthy() {
        let mut h = Health {
            status: "starting".into(),
            ..Health::default()
        };
        record(&mut h, probe(1), 2, true);
        assert_eq!(
            (h.status.as_str(), h.failing_streak),
            ("starting", 0),
            "start period"
        );
        record(&mut h, probe(1), 2, false);
        assert_eq!(h.status, "starting");
        record(&mut h, probe(1), 2, false);
        assert_eq!(h.status, "unhealthy");
        record(&mut h, probe(0), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
        for _ in 0..9 {
            record(&mut h, probe(0), 2, false);
        }
        assert_eq!(h.log.len(), KEPT_PROBES);
    }
}
