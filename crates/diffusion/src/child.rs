//! An `sd` process: its own process group (a stop reaches everything it started),
//! standard input closed, output streamed line by line (split on `\r` and `\n`, so
//! progress bars arrive as they redraw), the last standard-error lines kept for the
//! error, and a stop that asks first (SIGTERM) and kills after a grace period.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::progress::LineSplitter;
use switchyard_base::errors::EngineError;
use switchyard_process::failure::mentions_out_of_memory;
use switchyard_process::{describe_exit, spawn_guarded, ChildKind, PidFile};

/// Standard-error lines an error carries.
pub const STDERR_TAIL_LINES: usize = 20;
/// Lines buffered for the reader before sd would wait on its pipe.
const LINE_BACKLOG: usize = 1024;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A running sd; killed with its group when dropped.
#[derive(Debug)]
pub struct SdChild {
    child: Child,
    pid: Option<u32>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// Its pid file, removed once it has ended.
    pid_file: PidFile,
}

/// Every line of both streams, in arrival order per stream.
pub type OutputLines = mpsc::Receiver<(Stream, String)>;

impl SdChild {
    /// Starts `program` tied to this process's life like llama-server (its own
    /// group, the parent-death signal, the Job Object on Windows) with a pid file
    /// in `pid_dir`, so the next start ends one that a crash on another platform
    /// left behind.
    pub async fn spawn(
        program: &Path,
        args: &[OsString],
        pid_dir: Option<&Path>,
    ) -> Result<(Self, OutputLines), EngineError> {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child =
            spawn_guarded(command)
                .await
                .map_err(|error| EngineError::BinaryUnavailable {
                    kind: "sd".into(),
                    problem: format!("{} cannot be started: {error}", program.display()),
                })?;
        let pid_file = match (pid_dir, child.id()) {
            (Some(dir), Some(pid)) => PidFile::record(dir, ChildKind::Sd, None, pid, program, 0),
            _ => PidFile::none(),
        };
        let (sender, lines) = mpsc::channel(LINE_BACKLOG);
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward(stdout, Stream::Stdout, sender.clone(), None));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward(
                stderr,
                Stream::Stderr,
                sender,
                Some(stderr_tail.clone()),
            ));
        }
        let child = Self {
            pid: child.id(),
            child,
            stderr_tail,
            pid_file,
        };
        Ok((child, lines))
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await;
        self.forget_pid_file();
        status
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten();
        if status.is_some() {
            self.forget_pid_file();
        }
        status
    }

    fn forget_pid_file(&mut self) {
        self.pid_file = PidFile::none();
    }

    /// Its last standard-error lines, oldest first.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Asks it to end, then kills its whole group after `grace`; returns once it is
    /// gone (reaped).
    pub async fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.try_wait() {
            return Some(status);
        }
        self.signal(false);
        if let Ok(Ok(status)) = tokio::time::timeout(grace, self.wait()).await {
            // sd may have left helpers in its group; they go with it.
            self.signal(true);
            return Some(status);
        }
        self.signal(true);
        let _ = self.child.start_kill();
        self.wait().await.ok()
    }

    #[cfg(unix)]
    fn signal(&self, kill: bool) {
        switchyard_process::end_group(self.pid, kill);
    }

    #[cfg(not(unix))]
    fn signal(&mut self, _kill: bool) {
        let _ = self.child.start_kill();
    }

    /// The error for an exit that was not a success, with what stderr said.
    pub fn failure(&self, status: ExitStatus, output_tail: &[String]) -> EngineError {
        let stderr_tail = self.stderr_tail();
        let out_of_memory = stderr_tail
            .iter()
            .chain(output_tail)
            .any(|line| mentions_out_of_memory(line));
        EngineError::GenerationFailed {
            exit: describe_exit(status),
            exit_code: status.code(),
            stderr_tail,
            out_of_memory,
        }
    }
}

async fn forward(
    mut stream: impl AsyncRead + Unpin,
    which: Stream,
    sender: mpsc::Sender<(Stream, String)>,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
) {
    let mut splitter = LineSplitter::default();
    let mut buffer = vec![0_u8; 8192];
    // Bytes of a UTF-8 character cut by the read boundary.
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        carry.extend_from_slice(&buffer[..read]);
        let valid = match std::str::from_utf8(&carry) {
            Ok(text) => text.len(),
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            Err(_) => carry.len(),
        };
        let text = String::from_utf8_lossy(&carry[..valid]).into_owned();
        carry.drain(..valid);
        for line in splitter.push(&text) {
            deliver(line, which, &sender, tail.as_ref()).await;
        }
    }
    if let Some(line) = splitter.finish() {
        deliver(line, which, &sender, tail.as_ref()).await;
    }
}

async fn deliver(
    line: String,
    which: Stream,
    sender: &mpsc::Sender<(Stream, String)>,
    tail: Option<&Arc<Mutex<VecDeque<String>>>>,
) {
    if let Some(tail) = tail {
        let trimmed = line.trim_end();
        if !trimmed.is_empty() {
            let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(trimmed.to_owned());
        }
    }
    // A reader that stopped listening (job over) must not stop the draining: sd
    // would block on a full pipe.
    let _ = sender.send((which, line)).await;
}
