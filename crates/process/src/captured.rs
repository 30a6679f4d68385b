//! A program run to its end for what it prints (a binary's test, `--help`,
//! `--list-devices`): spawned guarded like every child, standard input closed,
//! standard output and error captured (the last part of them), a deadline, and a
//! stop that reaches the whole process group, so a script's children cannot keep a
//! pipe open forever.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::pidfile::{ChildKind, PidFile};

/// Output kept from a program under test: enough for the error lines near its end.
const OUTPUT_TAIL_BYTES: usize = 64 * 1024;
/// Output kept from a program read for what it prints (`--help` is ~60 KB today).
const WHOLE_OUTPUT_BYTES: usize = 1024 * 1024;
/// How long the output readers may take to catch up once the program has ended.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// A program run for its output; killed (with its process group) when dropped.
#[derive(Debug)]
pub struct CapturedProcess {
    child: Child,
    /// The process group to signal (unix); Windows ends the child alone.
    #[cfg_attr(not(unix), allow(dead_code))]
    pid: Option<u32>,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
    /// Removed with the process (it is killed when this is dropped).
    _pid_file: PidFile,
}

impl CapturedProcess {
    /// Starts `command`, recorded in `pid_dir` (a probe's pid file) while it runs;
    /// the last 64 KiB of its output are kept.
    pub async fn spawn(command: Command, pid_dir: Option<&Path>) -> std::io::Result<Self> {
        Self::spawn_keeping(command, pid_dir, OUTPUT_TAIL_BYTES).await
    }

    async fn spawn_keeping(
        mut command: Command,
        pid_dir: Option<&Path>,
        keep: usize,
    ) -> std::io::Result<Self> {
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let program = PathBuf::from(command.as_std().get_program());
        let mut child = super::spawn_guarded(command).await?;
        let pid_file = match (pid_dir, child.id()) {
            (Some(dir), Some(pid)) => {
                PidFile::record(dir, ChildKind::Probe, None, pid, &program, 0)
            }
            _ => PidFile::none(),
        };
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(collect(stdout, output.clone(), keep)));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(collect(stderr, output.clone(), keep)));
        }
        Ok(Self {
            pid: child.id(),
            child,
            output,
            readers,
            status: None,
            _pid_file: pid_file,
        })
    }

    /// The exit status, if it has ended.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits for the end at most `timeout`; `None` when it is still running.
    pub async fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = tokio::time::timeout(timeout, self.child.wait())
                .await
                .ok()
                .and_then(Result::ok);
        }
        self.status
    }

    /// Asks it to end (SIGTERM), then kills the group after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.try_exit().is_some() {
            return self.status;
        }
        self.signal_group(false);
        if self.wait_for(grace).await.is_none() {
            self.kill();
            self.status = self.child.wait().await.ok();
        }
        self.status
    }

    /// Kills it and everything it started.
    pub fn kill(&mut self) {
        self.signal_group(true);
        let _ = self.child.start_kill();
    }

    #[cfg(unix)]
    fn signal_group(&self, kill: bool) {
        super::end_group(self.pid, kill);
    }

    #[cfg(not(unix))]
    fn signal_group(&mut self, _kill: bool) {
        let _ = self.child.start_kill();
    }

    /// Everything captured so far, once the readers caught up (after the end).
    pub async fn output(&mut self) -> String {
        let readers = &mut self.readers;
        let drain = async {
            for reader in readers.iter_mut() {
                let _ = reader.await;
            }
        };
        if tokio::time::timeout(DRAIN_GRACE, drain).await.is_err() {
            // A grandchild still holds the pipe; what arrived is enough.
            tracing::debug!("output readers did not finish; using what arrived");
        }
        for reader in self.readers.drain(..) {
            reader.abort();
        }
        self.output_so_far()
    }

    pub fn output_so_far(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for CapturedProcess {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            self.kill();
        }
        for reader in &self.readers {
            reader.abort();
        }
    }
}

async fn collect(stream: impl AsyncRead + Unpin, output: Arc<Mutex<String>>, keep: usize) {
    use tokio::io::AsyncReadExt as _;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A bounded read: a program that never ends a line cannot grow this forever.
        let limit = u64::try_from(keep).unwrap_or(u64::MAX);
        match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let mut output = output.lock().unwrap_or_else(PoisonError::into_inner);
                output.push_str(&text);
                if !text.ends_with('\n') {
                    output.push('\n');
                }
                if output.len() > keep * 2 {
                    let mut cut = output.len() - keep;
                    while !output.is_char_boundary(cut) {
                        cut += 1;
                    }
                    output.drain(..cut);
                }
            }
        }
    }
}

/// Runs `command` to its end, at most `timeout`: what it printed (standard output,
/// then error), or `None` when it could not start or did not end in time (it is
/// killed then).
pub async fn output_within(
    command: Command,
    timeout: Duration,
    pid_dir: Option<&Path>,
) -> Option<String> {
    let mut process = CapturedProcess::spawn_keeping(command, pid_dir, WHOLE_OUTPUT_BYTES)
        .await
        .ok()?;
    if process.wait_for(timeout).await.is_none() {
        process.kill();
        return None;
    }
    Some(process.output().await)
}
