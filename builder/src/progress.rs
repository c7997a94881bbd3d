//! Build progress: `plain` (BuildKit's `#N` lines, for CI logs), `tty` (a
//! compact live view redrawn in place) and `quiet`.
//!
//! Everything shown comes from untrusted input (Dockerfile text, a RUN
//! step's output, error messages naming archive entries), so it passes
//! through `kiln_parser::terminal_safe` on the way in: no escape sequence
//! from a build reaches the user's terminal.

use kiln_parser::{terminal_safe, terminal_safe_line};
use kiln_solver::VertexId;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
    Quiet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Running(Instant),
    Done(Duration),
    Cached,
    Failed(Duration),
}

struct Step {
    number: usize,
    label: String,
    state: State,
    /// The last few output lines (tty view and failure report).
    tail: VecDeque<String>,
}

struct Inner {
    steps: Vec<Step>,
    by_vertex: HashMap<VertexId, usize>,
    out: Box<dyn Write + Send>,
    /// Lines the tty view drew last time (to move back up over them).
    drawn: usize,
    last_draw: Option<Instant>,
}

/// Shared by the solver's worker threads.
pub struct Progress {
    mode: Mode,
    /// `--explain`: say why steps miss the cache in every mode.
    explain: std::sync::atomic::AtomicBool,
    started: Instant,
    inner: Mutex<Inner>,
}

/// Output lines kept per step for the failure report.
pub const TAIL_LINES: usize = 20;

impl Progress {
    pub fn new(mode: Mode, out: Box<dyn Write + Send>) -> Progress {
        Progress {
            mode,
            explain: std::sync::atomic::AtomicBool::new(false),
            started: Instant::now(),
            inner: Mutex::new(Inner {
                steps: Vec::new(),
                by_vertex: HashMap::new(),
                out,
                drawn: 0,
                last_draw: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn step<'a>(inner: &'a mut Inner, id: VertexId, label: &str) -> &'a mut Step {
        if !inner.by_vertex.contains_key(&id) {
            let number = inner.steps.len() + 1;
            inner.steps.push(Step {
                number,
                label: terminal_safe_line(label).into_owned(),
                state: State::Running(Instant::now()),
                tail: VecDeque::new(),
            });
            inner.by_vertex.insert(id, number - 1);
        }
        let i = inner.by_vertex[&id];
        &mut inner.steps[i]
    }

    pub fn start(&self, id: VertexId, label: &str) {
        let mut inner = self.lock();
        let step = Self::step(&mut inner, id, label);
        step.state = State::Running(Instant::now());
        let line = format!("#{} {}\n", step.number, step.label);
        self.emit(&mut inner, &line, false);
    }

    pub fn cached(&self, id: VertexId, label: &str) {
        let mut inner = self.lock();
        let step = Self::step(&mut inner, id, label);
        step.state = State::Cached;
        let line = format!("#{} {}\n#{} CACHED\n", step.number, step.label, step.number);
        self.emit(&mut inner, &line, false);
    }

    pub fn log(&self, id: VertexId, text: &[u8]) {
        let mut inner = self.lock();
        let elapsed = self.started.elapsed().as_secs_f64();
        let Some(&i) = inner.by_vertex.get(&id) else {
            return;
        };
        let step = &mut inner.steps[i];
        let text = String::from_utf8_lossy(text);
        let text = terminal_safe_line(text.trim_end_matches(['\n', '\r'])).into_owned();
        if step.tail.len() == TAIL_LINES {
            step.tail.pop_front();
        }
        step.tail.push_back(text.clone());
        let line = format!("#{} {elapsed:.3} {text}\n", step.number);
        self.emit(&mut inner, &line, true);
    }

    pub fn done(&self, id: VertexId) {
        self.end(id, None);
    }

    pub fn failed(&self, id: VertexId, message: &str) {
        self.end(id, Some(message));
    }

    /// A running step ends: DONE with its time, or ERROR with `error`.
    fn end(&self, id: VertexId, error: Option<&str>) {
        let mut inner = self.lock();
        let Some(&i) = inner.by_vertex.get(&id) else {
            return;
        };
        let step = &mut inner.steps[i];
        let took = match step.state {
            State::Running(t) => t.elapsed(),
            _ => Duration::ZERO,
        };
        let line = match error {
            None => {
                step.state = State::Done(took);
                format!("#{} DONE {:.1}s\n", step.number, took.as_secs_f64())
            }
            Some(message) => {
                step.state = State::Failed(took);
                format!("#{} ERROR: {}\n", step.number, terminal_safe(message))
            }
        };
        self.emit(&mut inner, &line, false);
    }

    /// A remark about a step (why it missed the cache): a `#N` line in
    /// plain mode; in tty mode only when `explain` is set, above the view.
    pub fn note(&self, id: VertexId, text: &str) {
        let mut inner = self.lock();
        let Some(&i) = inner.by_vertex.get(&id) else {
            return;
        };
        let text = terminal_safe_line(text);
        let line = format!("#{} {text}\n", inner.steps[i].number);
        match self.mode {
            Mode::Plain => {
                let _ = inner.out.write_all(line.as_bytes());
                let _ = inner.out.flush();
            }
            Mode::Tty | Mode::Quiet if self.explain.load(std::sync::atomic::Ordering::Relaxed) => {
                let label = inner.steps[i].label.clone();
                drop(inner);
                self.above(&format!("{label}: {text}\n"));
            }
            _ => {}
        }
    }

    /// Prints a line above the tty view (or plainly).
    fn above(&self, line: &str) {
        let mut inner = self.lock();
        if self.mode == Mode::Tty && inner.drawn > 0 {
            let clear = format!("\x1b[{}F\x1b[J", inner.drawn);
            let _ = inner.out.write_all(clear.as_bytes());
            inner.drawn = 0;
        }
        let _ = inner.out.write_all(line.as_bytes());
        let _ = inner.out.flush();
        if self.mode == Mode::Tty {
            self.draw(&mut inner);
        }
    }

    /// `--explain`: say why steps miss the cache in every mode.
    pub fn set_explain(&self, on: bool) {
        self.explain.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// A parser warning at its Dockerfile position (always shown).
    pub fn dockerfile_warning(&self, file: &str, w: &kiln_parser::Warning) {
        self.above(&format!(
            "{}:{}:{}: warning: {}\n",
            terminal_safe_line(file),
            w.pos.line,
            w.pos.col,
            terminal_safe(&w.message)
        ));
    }

    /// A build check's warning (`Rule: message (line N)`), as BuildKit
    /// prints them; shown in quiet mode too, as a parser warning is.
    pub fn check_warning(&self, file: &str, short: &str) {
        self.above(&format!(
            "{}: check: {}\n",
            terminal_safe_line(file),
            terminal_safe(short)
        ));
    }

    /// Something the user may want to know (a base image being pulled);
    /// not in quiet mode.
    pub fn info(&self, message: &str) {
        if self.mode != Mode::Quiet {
            self.above(&format!("{}\n", terminal_safe(message)));
        }
    }

    /// A warning for the user: always shown (also with `-q`), above the
    /// live view in tty mode.
    pub fn warn(&self, message: &str) {
        self.above(&format!("WARNING: {}\n", terminal_safe(message)));
    }

    /// The last output lines of a step (for the failure report).
    pub fn tail(&self, id: VertexId) -> Vec<String> {
        let inner = self.lock();
        inner
            .by_vertex
            .get(&id)
            .map(|&i| inner.steps[i].tail.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Final redraw of the tty view.
    pub fn finish(&self) {
        if self.mode == Mode::Tty {
            let mut inner = self.lock();
            inner.last_draw = None;
            self.draw(&mut inner);
        }
    }

    fn emit(&self, inner: &mut Inner, plain: &str, is_log: bool) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                let _ = inner.out.write_all(plain.as_bytes());
                let _ = inner.out.flush();
            }
            Mode::Tty => {
                // Logs redraw at most 10 times a second; state changes always.
                let due = inner
                    .last_draw
                    .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
                if !is_log || due {
                    self.draw(inner);
                }
            }
        }
    }

    fn draw(&self, inner: &mut Inner) {
        let mut text = String::new();
        if inner.drawn > 0 {
            text.push_str(&format!("\x1b[{}F\x1b[J", inner.drawn));
        }
        let mut lines = 0;
        let total = self.started.elapsed().as_secs_f64();
        text.push_str(&format!("[+] Building {total:.1}s\n"));
        lines += 1;
        let width = terminal_width();
        for s in &inner.steps {
            let (state, time) = match &s.state {
                State::Running(t) => ("", format!("{:.1}s", t.elapsed().as_secs_f64())),
                State::Done(d) => ("", format!("{:.1}s", d.as_secs_f64())),
                State::Cached => ("CACHED ", String::new()),
                State::Failed(d) => ("ERROR ", format!("{:.1}s", d.as_secs_f64())),
            };
            let mark = match s.state {
                State::Running(_) => "=>",
                _ => " =>",
            };
            let mut line = format!("{mark} {state}{}", s.label);
            truncate(&mut line, width.saturating_sub(time.len() + 2));
            let pad = width
                .saturating_sub(line.chars().count() + time.len())
                .max(1);
            text.push_str(&format!("{line}{}{time}\n", " ".repeat(pad)));
            lines += 1;
            if matches!(s.state, State::Running(_)) {
                for l in s
                    .tail
                    .iter()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    let mut l = format!(" => => # {l}");
                    truncate(&mut l, width);
                    text.push_str(&l);
                    text.push('\n');
                    lines += 1;
                }
            }
        }
        inner.drawn = lines;
        inner.last_draw = Some(Instant::now());
        let _ = inner.out.write_all(text.as_bytes());
        let _ = inner.out.flush();
    }
}

fn truncate(s: &mut String, width: usize) {
    if s.chars().count() > width {
        *s = s.chars().take(width.saturating_sub(1)).collect::<String>() + "…";
    }
}

fn terminal_width() -> usize {
    rustix::termios::tcgetwinsize(std::io::stderr())
        .ok()
        .map(|w| w.ws_col as usize)
        .filter(|&c| c > 20)
        .unwrap_or(80)
}
