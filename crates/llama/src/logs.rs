//! llama-server's output: each line parsed into level, source and message, the
//! last lines kept in memory for the UI, all of them in rotating files under
//! `logs/<instance>/`.
//!
//! At `-lv 4` a line reads `0.00.056.474 I llama_context: n_ctx = 4096` or, from
//! the server itself, `0.00.004.080 I srv          init: using 5 threads`:
//! time since start, a level letter, an optional subsystem tag, the function, text.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ServerLogLevel {
    Debug,
    Info,
    Warning,
    Error,
    /// No level on the line (an old build, a library printing directly).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct LogLine {
    /// Counts every line of the instance since Switchyard started, so the UI can
    /// ask for what it has not seen yet.
    #[ts(type = "number")]
    pub seq: u64,
    /// llama-server's own time since its start, as printed (`0.00.056.474`).
    pub time: Option<String>,
    pub level: ServerLogLevel,
    /// The subsystem tag (`srv`, `slot`, `cmn`) where there is one.
    pub tag: Option<String>,
    /// The function that logged it (`llama_context`, `load_model`).
    pub source: Option<String>,
    pub message: String,
}

/// Parses one line of output (without its newline).
pub fn parse_line(seq: u64, raw: &str) -> LogLine {
    let raw = raw.trim_end_matches(['\r', '\n']);
    let unparsed = || LogLine {
        seq,
        time: None,
        level: ServerLogLevel::Unknown,
        tag: None,
        source: None,
        message: raw.to_owned(),
    };
    let mut parts = raw.splitn(3, ' ');
    let (Some(time), Some(level), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return unparsed();
    };
    if !is_timestamp(time) {
        return unparsed();
    }
    let level = match level {
        "E" => ServerLogLevel::Error,
        "W" => ServerLogLevel::Warning,
        "I" | "N" => ServerLogLevel::Info,
        "D" | "T" => ServerLogLevel::Debug,
        _ => return unparsed(),
    };
    let rest = rest.trim_start();
    // A tag is a short word followed by spaces, before the `function:` part.
    let (tag, rest) = match rest.split_once(' ') {
        Some((word, after)) if word.len() <= 4 && !word.ends_with(':') && after.contains(": ") => {
            (Some(word.to_owned()), after.trim_start())
        }
        _ => (None, rest),
    };
    let (source, message) = match rest.split_once(": ") {
        Some((source, message)) if !source.is_empty() && !source.contains(' ') => {
            (Some(source.to_owned()), message.trim_start().to_owned())
        }
        _ => (None, rest.to_owned()),
    };
    LogLine {
        seq,
        time: Some(time.to_owned()),
        level,
        tag,
        source,
        message,
    }
}

/// `0.00.056.474`: digits in four dot-separated groups.
pub(super) fn is_timestamp(word: &str) -> bool {
    let groups: Vec<&str> = word.split('.').collect();
    groups.len() == 4
        && groups
            .iter()
            .all(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit()))
}

impl LogLine {
    /// The line as llama-server printed it (for files and for the estimator).
    pub fn text(&self) -> String {
        let mut text = String::new();
        if let Some(time) = &self.time {
            let level = match self.level {
                ServerLogLevel::Error => "E",
                ServerLogLevel::Warning => "W",
                ServerLogLevel::Debug => "D",
                ServerLogLevel::Info | ServerLogLevel::Unknown => "I",
            };
            text.push_str(time);
            text.push(' ');
            text.push_str(level);
            text.push(' ');
        }
        if let Some(tag) = &self.tag {
            text.push_str(tag);
            text.push(' ');
        }
        if let Some(source) = &self.source {
            text.push_str(source);
            text.push_str(": ");
        }
        text.push_str(&self.message);
        text
    }
}

/// The last lines of an instance, bounded.
#[derive(Debug)]
pub struct LogRing {
    lines: VecDeque<LogLine>,
    capacity: usize,
}

impl LogRing {
    pub fn new(capacity: usize) -> Self {
        Self {
            lines: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, line: LogLine) {
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// Lines with `seq >= from`, at most the last `limit` of them.
    pub fn since(&self, from: u64, limit: usize) -> Vec<LogLine> {
        let newer: Vec<&LogLine> = self.lines.iter().filter(|line| line.seq >= from).collect();
        let skip = newer.len().saturating_sub(limit);
        newer.into_iter().skip(skip).cloned().collect()
    }
}

/// `logs/<instance>/llama-server.log`, rotated to `.1` … `.K` at a size limit.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: Option<File>,
    written: u64,
    max_bytes: u64,
    kept: u32,
}

impl RotatingFile {
    pub fn open(folder: &Path, max_bytes: u64, kept: u32) -> Self {
        let path = folder.join("llama-server.log");
        let file = std::fs::create_dir_all(folder)
            .and_then(|()| OpenOptions::new().create(true).append(true).open(&path));
        let (file, written) = match file {
            Ok(file) => {
                let written = file.metadata().map(|meta| meta.len()).unwrap_or(0);
                (Some(file), written)
            }
            Err(error) => {
                // The server runs fine without its file; the ring still has the lines.
                tracing::warn!(path = %path.display(), %error, "cannot open the log file");
                (None, 0)
            }
        };
        Self {
            path,
            file,
            written,
            max_bytes: max_bytes.max(1024),
            kept,
        }
    }

    pub fn write_line(&mut self, line: &str) {
        let length = line.len() as u64 + 1;
        if self.written > 0 && self.written + length > self.max_bytes {
            self.rotate();
        }
        if let Some(file) = &mut self.file {
            if writeln!(file, "{line}").is_ok() {
                self.written += length;
            }
        }
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) {
        self.file = None;
        if self.kept == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::remove_file(self.numbered(self.kept));
            for n in (1..self.kept).rev() {
                let _ = std::fs::rename(self.numbered(n), self.numbered(n + 1));
            }
            let _ = std::fs::rename(&self.path, self.numbered(1));
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .ok();
        self.written = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_lines_are_split_into_their_parts() {
        let line = parse_line(7, "0.00.056.474 I llama_context: n_ctx = 4096");
        assert_eq!(line.time.as_deref(), Some("0.00.056.474"));
        assert_eq!(line.level, ServerLogLevel::Info);
        assert_eq!(line.tag, None);
        assert_eq!(line.source.as_deref(), Some("llama_context"));
        assert_eq!(line.message, "n_ctx = 4096");

        let line = parse_line(
            8,
            "0.00.004.080 I srv          init: using 5 threads for HTTP server",
        );
        assert_eq!(line.tag.as_deref(), Some("srv"));
        assert_eq!(line.source.as_deref(), Some("init"));
        assert_eq!(line.message, "using 5 threads for HTTP server");

        let line = parse_line(
            9,
            "0.00.010.049 E gguf_init_from_reader: invalid magic characters: '?X@?', expected 'GGUF'",
        );
        assert_eq!(line.level, ServerLogLevel::Error);
        assert_eq!(line.source.as_deref(), Some("gguf_init_from_reader"));
        assert_eq!(
            line.message,
            "invalid magic characters: '?X@?', expected 'GGUF'"
        );

        let line = parse_line(
            10,
            "0.00.011.055 I load_tensors:   CPU_Mapped model buffer size =     0.53 MiB",
        );
        assert!(
            line.text().contains(" model buffer size = "),
            "{}",
            line.text()
        );
    }

    #[test]
    fn other_output_is_kept_whole() {
        let line = parse_line(1, "main: server is listening");
        assert_eq!(line.level, ServerLogLevel::Unknown);
        assert_eq!(line.message, "main: server is listening");
        assert_eq!(line.text(), "main: server is listening");
    }

    #[test]
    fn the_ring_keeps_the_last_lines() {
        let mut ring = LogRing::new(3);
        for seq in 0..5 {
            ring.push(parse_line(seq, "x"));
        }
        let seqs: Vec<u64> = ring.since(0, 10).iter().map(|line| line.seq).collect();
        assert_eq!(seqs, [2, 3, 4]);
        let seqs: Vec<u64> = ring.since(3, 10).iter().map(|line| line.seq).collect();
        assert_eq!(seqs, [3, 4]);
        assert_eq!(ring.since(0, 1).len(), 1);
    }

    #[test]
    fn files_rotate_at_the_limit_and_keep_k() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = RotatingFile::open(dir.path(), 1024, 2);
        let line = "x".repeat(300);
        for _ in 0..20 {
            file.write_line(&line);
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "llama-server.log",
                "llama-server.log.1",
                "llama-server.log.2"
            ]
        );
        for name in names {
            let size = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(size <= 1024, "{size}");
        }
    }
}
