//! Build progress: `plain` (BuildKit's `#N` lines, for CI logs), `tty` (a
//! live view redrawn in place), `rawjson` (one JSON event per update, for
//! tools) and `quiet`.
//!
//! The tty view is redrawn on a steady tick ([`Progress::start_ticker`],
//! every 100 ms) so running steps' timers advance while they are silent,
//! and never grows taller than the terminal: cursor movement cannot reach
//! above the screen's top, so a taller view would leave a copy of itself
//! in the scrollback on every redraw. When the steps do not fit, running
//! ones win, then the most recently finished; the full list is printed
//! once, at the end. Colours (finished steps blue, errors red) follow
//! BuildKit's and are off with `NO_COLOR`. A hand-written renderer rather
//! than indicatif's bars: the view is BuildKit's (steps with log tails
//! beneath, a height budget shared between them), not a set of bars.
//!
//! Everything shown comes from untrusted input (Dockerfile text, a RUN
//! step's output, error messages naming archive entries), so it passes
//! through `kiln_parser::terminal_safe` on the way in: no escape sequence
//! from a build reaches the user's terminal.

use kiln_parser::{terminal_safe, terminal_safe_line};
use kiln_solver::VertexId;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
    /// One JSON object per line and update (`--progress rawjson`).
    RawJson,
    Quiet,
}

impl Mode {
    /// `--progress VALUE` (else `$KILN_PROGRESS`, else
    /// `$BUILDKIT_PROGRESS`, as buildx reads it): None for `auto`.
    pub fn parse(value: &str) -> Result<Option<Mode>, String> {
        match value {
            "auto" | "" => Ok(None),
            "plain" => Ok(Some(Mode::Plain)),
            "tty" => Ok(Some(Mode::Tty)),
            "rawjson" => Ok(Some(Mode::RawJson)),
            "quiet" => Ok(Some(Mode::Quiet)),
            other => Err(format!(
                "invalid progress mode {other:?}: expected auto, tty, plain, rawjson or quiet"
            )),
        }
    }
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
    /// The build ended: the final view is out, the ticker stops.
    finished: bool,
}

/// Shared by the solver's worker threads.
pub struct Progress {
    mode: Mode,
    /// `--explain`: say why steps miss the cache in every mode.
    explain: std::sync::atomic::AtomicBool,
    colour: bool,
    started: Instant,
    inner: Mutex<Inner>,
}

/// Output lines kept per step for the failure report.
pub const TAIL_LINES: usize = 20;
/// Log lines a running step shows under it in the tty view.
const VIEW_TAIL: usize = 3;
/// How often the tty view is redrawn.
const TICK: Duration = Duration::from_millis(100);

const BLUE: &str = "\x1b[34m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

impl Progress {
    pub fn new(mode: Mode, out: Box<dyn Write + Send>) -> Progress {
        Progress {
            mode,
            explain: std::sync::atomic::AtomicBool::new(false),
            colour: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            started: Instant::now(),
            inner: Mutex::new(Inner {
                steps: Vec::new(),
                by_vertex: HashMap::new(),
                out,
                drawn: 0,
                last_draw: None,
                finished: false,
            }),
        }
    }

    /// In tty mode, redraws the view every tick (100 ms) until
    /// [`Progress::finish`] (or the last owner drops it).
    pub fn start_ticker(progress: &Arc<Progress>) {
        if progress.mode != Mode::Tty {
            return;
        }
        let weak: Weak<Progress> = Arc::downgrade(progress);
        std::thread::spawn(move || loop {
            std::thread::sleep(TICK);
            let Some(p) = weak.upgrade() else { return };
            let mut inner = p.lock();
            if inner.finished {
                return;
            }
            if !inner.steps.is_empty() {
                p.draw(&mut inner);
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
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
        let json = self.event_json(step, None);
        self.emit(&mut inner, &line, &json, false);
    }

    /// A step answered from the cache (once per step, however many
    /// times the solver finds it).
    pub fn cached(&self, id: VertexId, label: &str) {
        let mut inner = self.lock();
        if let Some(&i) = inner.by_vertex.get(&id) {
            if matches!(inner.steps[i].state, State::Cached | State::Done(_)) {
                return;
            }
        }
        let step = Self::step(&mut inner, id, label);
        step.state = State::Cached;
        let line = format!("#{} {}\n#{} CACHED\n", step.number, step.label, step.number);
        let json = self.event_json(step, None);
        self.emit(&mut inner, &line, &json, false);
    }

    pub fn log(&self, id: VertexId, text: &[u8]) {
        let mut inner = self.lock();
        let elapsed = self.elapsed();
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
        let json = serde_json::json!({
            "logs": [{ "vertex": step.number, "time": elapsed, "data": text }]
        });
        self.emit(&mut inner, &line, &json, true);
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
        let error = error.map(terminal_safe);
        let line = match &error {
            None => {
                step.state = State::Done(took);
                format!("#{} DONE {:.1}s\n", step.number, took.as_secs_f64())
            }
            Some(message) => {
                step.state = State::Failed(took);
                format!("#{} ERROR: {message}\n", step.number)
            }
        };
        let json = self.event_json(step, error.as_deref());
        self.emit(&mut inner, &line, &json, false);
    }

    /// A step's state as a rawjson event (BuildKit's `vertexes` entry:
    /// times in seconds since the build started).
    fn event_json(&self, step: &Step, error: Option<&str>) -> serde_json::Value {
        let now = self.elapsed();
        let mut v = serde_json::json!({
            "vertex": step.number,
            "name": step.label,
            "cached": step.state == State::Cached,
        });
        match step.state {
            State::Running(t) => v["started"] = (now - t.elapsed().as_secs_f64()).into(),
            State::Done(d) | State::Failed(d) => {
                v["started"] = (now - d.as_secs_f64()).into();
                v["completed"] = now.into();
            }
            State::Cached => v["completed"] = now.into(),
        }
        if let Some(e) = error {
            v["error"] = e.into();
        }
        serde_json::json!({ "vertexes": [v] })
    }

    /// A remark about a step (why it missed the cache): a `#N` line in
    /// plain mode; in tty mode only when `explain` is set, above the view.
    pub fn note(&self, id: VertexId, text: &str) {
        let mut inner = self.lock();
        let Some(&i) = inner.by_vertex.get(&id) else {
            return;
        };
        let text = terminal_safe_line(text);
        let number = inner.steps[i].number;
        let line = format!("#{number} {text}\n");
        match self.mode {
            Mode::Plain => {
                let _ = inner.out.write_all(line.as_bytes());
                let _ = inner.out.flush();
            }
            Mode::RawJson => {
                let json = serde_json::json!({ "notes": [{ "vertex": number, "text": text }] });
                let _ = writeln!(inner.out, "{json}");
                let _ = inner.out.flush();
            }
            Mode::Tty | Mode::Quiet if self.explains() => {
                let label = inner.steps[i].label.clone();
                drop(inner);
                self.above(&format!("{label}: {text}\n"));
            }
            _ => {}
        }
    }

    /// Whether `--explain` was given.
    pub fn explains(&self) -> bool {
        self.explain.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Prints a line above the tty view (or plainly; a `message` event in
    /// rawjson mode).
    fn above(&self, line: &str) {
        let mut inner = self.lock();
        if self.mode == Mode::RawJson {
            let json = serde_json::json!({ "message": line.trim_end() });
            let _ = writeln!(inner.out, "{json}");
            let _ = inner.out.flush();
            return;
        }
        if self.mode != Mode::Tty {
            let _ = inner.out.write_all(line.as_bytes());
            let _ = inner.out.flush();
            return;
        }
        // Over the view's first lines, then the view again beneath.
        let text = format!("{}{}", self.up(&inner), line.replace('\n', "\x1b[K\n"));
        inner.drawn = 0;
        let _ = inner.out.write_all(text.as_bytes());
        if inner.finished {
            let _ = inner.out.write_all(b"\x1b[J");
            let _ = inner.out.flush();
        } else {
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

    /// The build ended: in tty mode the live view gives way to the whole
    /// list of steps, written once.
    pub fn finish(&self) {
        let mut inner = self.lock();
        if inner.finished {
            return;
        }
        inner.finished = true;
        if self.mode == Mode::Tty {
            let mut text = self.up(&inner);
            let all: Vec<usize> = (0..inner.steps.len()).collect();
            text.push_str(&self.render(&inner, &all, false, terminal_size().0));
            text.push_str("\x1b[J");
            inner.drawn = 0;
            let _ = inner.out.write_all(text.as_bytes());
            let _ = inner.out.flush();
        }
    }

    fn emit(&self, inner: &mut Inner, plain: &str, json: &serde_json::Value, is_log: bool) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                let _ = inner.out.write_all(plain.as_bytes());
                let _ = inner.out.flush();
            }
            Mode::RawJson => {
                let _ = writeln!(inner.out, "{json}");
                let _ = inner.out.flush();
            }
            Mode::Tty => {
                // Logs redraw at most once a tick; state changes always.
                let due = inner.last_draw.is_none_or(|t| t.elapsed() >= TICK);
                if !inner.finished && (!is_log || due) {
                    self.draw(inner);
                }
            }
        }
    }

    /// The escape sequence that moves back to the last view's first line.
    /// Lines are then overwritten (each ends by erasing the rest of its
    /// row) and only what is left below is erased: clearing the screen
    /// from its top would make some terminals (tmux) keep the old view in
    /// the scrollback.
    fn up(&self, inner: &Inner) -> String {
        if inner.drawn > 0 {
            format!("\r\x1b[{}A", inner.drawn)
        } else {
            String::new()
        }
    }

    /// Redraws the live view within the terminal's height.
    fn draw(&self, inner: &mut Inner) {
        let (width, height) = terminal_size();
        // One row spare: the cursor rests on the line after the view.
        let budget = height.saturating_sub(1).max(2);
        let shown = fit(&inner.steps, budget - 1);
        let mut text = self.up(inner);
        let view = self.render(inner, &shown, true, width);
        inner.drawn = view.lines().count();
        text.push_str(&view);
        text.push_str("\x1b[J");
        inner.last_draw = Some(Instant::now());
        let _ = inner.out.write_all(text.as_bytes());
        let _ = inner.out.flush();
    }

    /// The header and the steps `shown` (indexes, in order), with the
    /// running ones' last log lines when `tails`; lines cut to `width`.
    fn render(&self, inner: &Inner, shown: &[usize], tails: bool, width: usize) -> String {
        // Never the last column: some terminals wrap a line that fills it.
        let width = width - 1;
        let finished = inner
            .steps
            .iter()
            .filter(|s| !matches!(s.state, State::Running(_)))
            .count();
        let mut text = format!(
            "[+] Building {:.1}s ({finished}/{}){}\x1b[K\n",
            self.elapsed(),
            inner.steps.len(),
            if inner.finished { " FINISHED" } else { "" }
        );
        for &i in shown {
            let s = &inner.steps[i];
            let (state, time, colour) = match &s.state {
                State::Running(t) => ("", format!("{:.1}s", t.elapsed().as_secs_f64()), ""),
                State::Done(d) => ("", format!("{:.1}s", d.as_secs_f64()), BLUE),
                State::Cached => ("CACHED ", "0.0s".to_string(), BLUE),
                State::Failed(d) => ("ERROR ", format!("{:.1}s", d.as_secs_f64()), RED),
            };
            let mut line = format!(" => {state}{}", s.label);
            truncate(&mut line, width.saturating_sub(time.len() + 2));
            let pad = width
                .saturating_sub(line.chars().count() + time.len())
                .max(1);
            let line = format!("{line}{}{time}", " ".repeat(pad));
            if self.colour && !colour.is_empty() {
                text.push_str(&format!("{colour}{line}{RESET}\x1b[K\n"));
            } else {
                text.push_str(&line);
                text.push_str("\x1b[K\n");
            }
            if tails && matches!(s.state, State::Running(_)) {
                let skip = s.tail.len().saturating_sub(VIEW_TAIL);
                for l in s.tail.iter().skip(skip) {
                    let mut l = format!(" => => # {l}");
                    truncate(&mut l, width);
                    text.push_str(&l);
                    text.push_str("\x1b[K\n");
                }
            }
        }
        text
    }
}

/// Which steps fit in `rows` (each step one row, a running one also its
/// log tail): running steps first, then the most recently finished; in
/// step order.
fn fit(steps: &[Step], rows: usize) -> Vec<usize> {
    let rows_of = |s: &Step| match s.state {
        State::Running(_) => 1 + s.tail.len().min(VIEW_TAIL),
        _ => 1,
    };
    let mut chosen = Vec::new();
    let mut used = 0;
    let running = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.state, State::Running(_)));
    let finished = steps
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, s)| !matches!(s.state, State::Running(_)));
    for (i, s) in running.chain(finished) {
        // A running step whose tail does not fit still gets its own row
        // when one is left (its tail is then cut by the budget below).
        let need = rows_of(s);
        if used + need <= rows {
            used += need;
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    chosen
}

fn truncate(s: &mut String, width: usize) {
    if s.chars().count() > width {
        *s = s.chars().take(width.saturating_sub(1)).collect::<String>() + "…";
    }
}

/// The terminal's columns and rows (80×24 when stderr is not one).
fn terminal_size() -> (usize, usize) {
    let size = rustix::termios::tcgetwinsize(std::io::stderr()).ok();
    let cols = size
        .map(|w| w.ws_col as usize)
        .filter(|&c| c > 20)
        .unwrap_or(80);
    let rows = size
        .map(|w| w.ws_row as usize)
        .filter(|&r| r > 2)
        .unwrap_or(24);
    (cols, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(number: usize, state: State, tail: usize) -> Step {
        Step {
            number,
            label: format!("step {number}"),
            state,
            tail: (0..tail).map(|i| format!("line {i}")).collect(),
        }
    }

    #[test]
    fn the_view_keeps_running_steps_then_the_latest_finished() {
        let now = Instant::now();
        let steps: Vec<Step> = (1..=10)
            .map(|n| match n {
                4 | 9 => step(n, State::Running(now), 5),
                _ => step(n, State::Done(Duration::from_secs(1)), 0),
            })
            .collect();
        // 2 running steps × (1 + 3 tail lines) = 8 rows, 2 rows left for
        // the two latest finished ones (10 and 8).
        assert_eq!(fit(&steps, 10), vec![3, 7, 8, 9]);
        // Everything fits: everything is shown.
        assert_eq!(fit(&steps, 100), (0..10).collect::<Vec<_>>());
    }
}
