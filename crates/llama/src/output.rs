//! Reading a server's standard output and error: every line into the instance's
//! ring and log file, batched onto the event bus, the start-up lines kept for the
//! estimator's calibration, each request's generation timing for the speed
//! calibration, and the error lines for messages to the person. Text of
//! requests and answers that a line quotes is taken out first (see `request_text`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};

use super::logs::{parse_line, LogLine, LogRing, RotatingFile, ServerLogLevel};
use super::request_text::RequestTextFilter;
use crate::LlamaEvent;
use switchyard_base::emit::Emitter;
use switchyard_base::locks::lock;
use switchyard_estimate::speed::parse_eval_line;
use switchyard_estimate::MeasuredSpeed;

/// Lines are sent to the window at most this often (or when a batch is full).
const FLUSH_EVERY: Duration = Duration::from_millis(50);
const BATCH_LINES: usize = 200;
/// A line longer than this is cut (a prompt echoed at high verbosity).
const MAX_LINE_BYTES: usize = 16 * 1024;
/// Start-up output kept for calibration (a large model's loader lists hundreds of
/// tensors; the buffer lines come after them).
const STARTUP_BYTES: usize = 4 * 1024 * 1024;
const ERROR_LINES: usize = 8;
const TAIL_LINES: usize = 12;

/// One instance's log, shared by all of its runs.
#[derive(Debug)]
pub struct InstanceLog {
    pub ring: Mutex<LogRing>,
    next_seq: AtomicU64,
}

impl InstanceLog {
    pub fn new(capacity: usize) -> Self {
        Self {
            ring: Mutex::new(LogRing::new(capacity)),
            next_seq: AtomicU64::new(0),
        }
    }
}

/// What one run printed that matters after it ends.
#[derive(Debug, Default)]
struct Capture {
    startup: String,
    startup_done: bool,
    errors: VecDeque<String>,
    tail: VecDeque<String>,
}

/// Told each generation speed the server logs (`eval time = …`).
struct SpeedHook(Box<dyn Fn(MeasuredSpeed) + Send + Sync>);

impl std::fmt::Debug for SpeedHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpeedHook")
    }
}

/// The destination of one run's output.
#[derive(Debug)]
pub struct OutputSink {
    instance: String,
    log: Arc<InstanceLog>,
    file: Mutex<RotatingFile>,
    events: Emitter<LlamaEvent>,
    capture: Mutex<Capture>,
    request_text: Mutex<RequestTextFilter>,
    on_speed: OnceLock<SpeedHook>,
}

impl OutputSink {
    pub fn new(
        instance: &str,
        log: Arc<InstanceLog>,
        file: RotatingFile,
        events: Emitter<LlamaEvent>,
    ) -> Self {
        Self {
            instance: instance.to_owned(),
            log,
            file: Mutex::new(file),
            events,
            capture: Mutex::new(Capture::default()),
            request_text: Mutex::new(RequestTextFilter::default()),
            on_speed: OnceLock::new(),
        }
    }

    /// Hands each request's generation timing to `hook` (the first hook set stays).
    pub fn on_generation_speed(&self, hook: impl Fn(MeasuredSpeed) + Send + Sync + 'static) {
        let _ = self.on_speed.set(SpeedHook(Box::new(hook)));
    }

    /// A line from Switchyard itself, in the same log (start, stop, crash).
    pub fn note(&self, text: &str) {
        let line = LogLine {
            seq: self.log.next_seq.fetch_add(1, Ordering::Relaxed),
            time: None,
            level: ServerLogLevel::Info,
            tag: Some("switchyard".into()),
            source: None,
            message: text.to_owned(),
        };
        lock(&self.file).write_line(&format!("[switchyard] {text}"));
        lock(&self.log.ring).push(line.clone());
        self.events.emit(LlamaEvent::Log {
            instance: self.instance.clone(),
            lines: vec![line],
        });
    }

    /// A line of the server's output, without the request or answer text it may
    /// quote (`None` when it is all such text), into every place lines go.
    fn take_output(&self, raw: &str) -> Option<LogLine> {
        let kept = lock(&self.request_text).filter(raw)?.into_owned();
        Some(self.take_line(&kept))
    }

    fn take_line(&self, raw: &str) -> LogLine {
        let line = parse_line(self.log.next_seq.fetch_add(1, Ordering::Relaxed), raw);
        lock(&self.file).write_line(raw);
        lock(&self.log.ring).push(line.clone());
        let mut capture = lock(&self.capture);
        if !capture.startup_done && capture.startup.len() + raw.len() < STARTUP_BYTES {
            capture.startup.push_str(raw);
            capture.startup.push('\n');
        }
        if line.level == ServerLogLevel::Error {
            if capture.errors.len() == ERROR_LINES {
                capture.errors.pop_front();
            }
            capture.errors.push_back(line.message.clone());
        }
        if capture.tail.len() == TAIL_LINES {
            capture.tail.pop_front();
        }
        capture.tail.push_back(raw.to_owned());
        drop(capture);
        if let (Some(hook), Some(speed)) = (self.on_speed.get(), parse_eval_line(raw)) {
            (hook.0)(speed);
        }
        line
    }

    fn flush(&self, batch: &mut Vec<LogLine>) {
        if !batch.is_empty() {
            self.events.emit(LlamaEvent::Log {
                instance: self.instance.clone(),
                lines: std::mem::take(batch),
            });
        }
    }

    /// The start-up output so far; later lines are no longer kept.
    pub fn finish_startup(&self) -> String {
        let mut capture = lock(&self.capture);
        capture.startup_done = true;
        std::mem::take(&mut capture.startup)
    }

    /// The server's own words on why it ended: its error lines (each once, in
    /// order), else its last lines.
    pub fn last_words(&self) -> String {
        let capture = lock(&self.capture);
        let mut seen: Vec<&str> = Vec::new();
        for error in &capture.errors {
            if !seen.contains(&error.as_str()) {
                seen.push(error);
            }
        }
        if seen.is_empty() {
            let tail: Vec<&str> = capture.tail.iter().map(String::as_str).collect();
            if tail.is_empty() {
                return "it printed nothing".to_owned();
            }
            return tail.join("\n");
        }
        seen.join("\n")
    }
}

/// Reads `stream` to its end into `sink`.
pub async fn pump(stream: impl AsyncRead + Unpin, sink: Arc<OutputSink>) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    let mut batch = Vec::new();
    let mut oldest: Option<tokio::time::Instant> = None;
    loop {
        let wait = oldest.map_or(Duration::from_secs(3600), |since| {
            FLUSH_EVERY.saturating_sub(since.elapsed())
        });
        // `read_until` keeps what it read in `buffer` if the timeout wins, so no
        // output is lost between rounds.
        match tokio::time::timeout(wait, reader.read_until(b'\n', &mut buffer)).await {
            Err(_elapsed) => {
                sink.flush(&mut batch);
                oldest = None;
            }
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(_)) => {
                buffer.truncate(MAX_LINE_BYTES);
                let raw = String::from_utf8_lossy(&buffer);
                let raw = raw.trim_end_matches(['\r', '\n']);
                batch.extend(sink.take_output(raw));
                buffer.clear();
                oldest.get_or_insert_with(tokio::time::Instant::now);
                if batch.len() >= BATCH_LINES {
                    sink.flush(&mut batch);
                    oldest = None;
                }
            }
        }
    }
    if !buffer.is_empty() {
        let raw = String::from_utf8_lossy(&buffer).into_owned();
        batch.extend(sink.take_output(&raw));
    }
    sink.flush(&mut batch);
}
