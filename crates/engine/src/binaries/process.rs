//! Running a program under test: standard input closed, standard output and error
//! captured (the last part of them), a deadline, and a stop that reaches the whole
//! process group, so a script's children cannot keep a pipe open forever.

use std::process::ExitStatus;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// Output kept from a program: enough for the error lines near its end.
const OUTPUT_TAIL_BYTES: usize = 64 * 1024;
/// How long the output readers may take to catch up once the program has ended.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// A program started for a test; killed (with its process group) when dropped.
#[derive(Debug)]
pub struct TestProcess {
    child: Child,
    /// The process group to signal (unix); Windows ends the child alone.
    #[cfg_attr(not(unix), allow(dead_code))]
    pid: Option<u32>,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl TestProcess {
    pub fn spawn(mut command: Command) -> std::io::Result<Self> {
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn()?;
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(collect(stdout, output.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(collect(stderr, output.clone())));
        }
        Ok(Self {
            pid: child.id(),
            child,
            output,
            readers,
            status: None,
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
        crate::llama::process::end_group(self.pid, kill);
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

impl Drop for TestProcess {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            self.kill();
        }
        for reader in &self.readers {
            reader.abort();
        }
    }
}

async fn collect(stream: impl AsyncRead + Unpin, output: Arc<Mutex<String>>) {
    use tokio::io::AsyncReadExt as _;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A bounded read: a program that never ends a line cannot grow this forever.
        let limit = u64::try_from(OUTPUT_TAIL_BYTES).unwrap_or(u64::MAX);
        match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let mut output = output.lock().unwrap_or_else(PoisonError::into_inner);
                output.push_str(&text);
                if !text.ends_with('\n') {
                    output.push('\n');
                }
                if output.len() > OUTPUT_TAIL_BYTES * 2 {
                    let mut cut = output.len() - OUTPUT_TAIL_BYTES;
                    while !output.is_char_boundary(cut) {
                        cut += 1;
                    }
                    output.drain(..cut);
                }
            }
        }
    }
}

/// How a program ended, in words; a signal is named, and an illegal instruction is
/// explained, because it is the typical death of a build made for newer CPUs.
pub fn describe_exit(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return describe_signal(signal);
        }
    }
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => "ended without an exit code".into(),
    }
}

pub fn describe_signal(signal: i32) -> String {
    match signal {
        4 => "died of an illegal instruction (SIGILL): this build needs CPU features this machine lacks".into(),
        6 => "aborted (SIGABRT)".into(),
        7 => "crashed with a bus error (SIGBUS)".into(),
        8 => "crashed with an arithmetic error (SIGFPE)".into(),
        9 => "was killed (SIGKILL)".into(),
        11 => "crashed (SIGSEGV, segmentation fault)".into(),
        15 => "was terminated (SIGTERM)".into(),
        other => format!("died of signal {other}"),
    }
}

/// The last `lines` non-empty lines of `output`, for error messages.
pub fn last_lines(output: &str, lines: usize) -> String {
    let tail: Vec<&str> = output
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .collect();
    tail[tail.len().saturating_sub(lines)..].join("\n")
}
