//! A container's output, as docker's json-file driver writes it: one JSON
//! object per line, `{"log":"text\n","stream":"stdout","time":"..."}`.

use crate::{io_at, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Line {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends lines to a container's log.
pub struct LogWriter {
    file: fs::File,
}

impl LogWriter {
    pub fn open(path: &Path) -> Result<LogWriter> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_at(path))?;
        Ok(LogWriter { file })
    }

    pub fn write(&mut self, stream: &str, bytes: &[u8]) {
        let line = Line {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: stream.to_string(),
            time: crate::time::now(),
        };
        if let Ok(mut text) = serde_json::to_vec(&line) {
            text.push(b'\n');
            // One write per line: a reader never sees half of one.
            let _ = self.file.write_all(&text);
        }
    }
}

/// One stream's output as it arrives in chunks, logged a line at a time
/// (the unfinished tail when dropped).
pub struct StreamLog {
    writer: LogWriter,
    stream: &'static str,
    partial: Vec<u8>,
}

impl StreamLog {
    pub fn new(writer: LogWriter, stream: &'static str) -> StreamLog {
        StreamLog {
            writer,
            stream,
            partial: Vec::new(),
        }
    }

    pub fn write(&mut self, chunk: &[u8]) {
        self.partial.extend_from_slice(chunk);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.writer.write(self.stream, &line);
        }
    }
}

impl Drop for StreamLog {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            self.writer.write(self.stream, &self.partial);
        }
    }
}

/// The log's lines, all or the last `tail`.
pub fn read(path: &Path, tail: Option<usize>) -> Vec<Line> {
    let Ok(f) = fs::File::open(path) else {
        return Vec::new();
    };
    let lines: Vec<Line> = BufReader::new(f)
        .lines()
        .map_while(std::result::Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    match tail {
        Some(n) if n < lines.len() => lines[lines.len() - n..].to_vec(),
        _ => lines,
    }
}

/// Calls `on_line` for each line written from byte `offset` on, until
/// `done()` says the writer is gone and nothing more came.
pub fn follow(
    path: &Path,
    mut offset: u64,
    done: impl Fn() -> bool,
    mut on_line: impl FnMut(&Line) -> bool,
) -> Result<()> {
    let mut pending = String::new();
    loop {
        let finished = done();
        if let Ok(mut f) = fs::File::open(path) {
            f.seek(std::io::SeekFrom::Start(offset))
                .map_err(io_at(path))?;
            let mut r = BufReader::new(f);
            loop {
                let n = r.read_line(&mut pending).map_err(io_at(path))?;
                if n == 0 || !pending.ends_with('\n') {
                    break;
                }
                offset += pending.len() as u64;
                if let Ok(line) = serde_json::from_str::<Line>(&pending) {
                    if !on_line(&line) {
                        return Ok(());
                    }
                }
                pending.clear();
            }
            // A partial line is read again from its start next time.
            pending.clear();
        }
        if finished {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The log's current length (where a follow of new lines starts).
pub fn len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}
