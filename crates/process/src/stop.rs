//! Ending a child in steps: a signal to its whole process group, a grace, a second
//! signal (llama-server finishes its requests on the first SIGTERM and ends at once
//! on the second), a grace, then SIGKILL.

use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Child;

/// The steps of a stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopPolicy {
    pub graceful: Duration,
    pub after_second_term: Duration,
    /// The grace of the first SIGTERM when the child has nothing left to finish
    /// (Switchyard cut its work itself): nothing is lost by ending it at once.
    pub after_cut: Duration,
}

impl Default for StopPolicy {
    fn default() -> Self {
        Self {
            graceful: Duration::from_secs(5),
            after_second_term: Duration::from_secs(2),
            after_cut: Duration::from_millis(100),
        }
    }
}

/// SIGTERM (or SIGKILL with `kill`) to the process group led by `pid`, if any.
#[cfg(unix)]
pub fn end_group(pid: Option<u32>, kill: bool) {
    use nix::sys::signal::Signal;
    if let Some(pid) = pid {
        signal_group(
            pid,
            if kill {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            },
        );
    }
}

/// Sends `signal` to the server's process group (its own group, see above).
#[cfg(unix)]
pub fn signal_group(pid: u32, signal: nix::sys::signal::Signal) {
    use nix::unistd::Pid;
    if let Ok(pid) = i32::try_from(pid) {
        // Already gone is fine: that is what a stop wants.
        let _ = nix::sys::signal::killpg(Pid::from_raw(pid), signal);
    }
}

/// How a stop ended, for the log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// It ended after the first SIGTERM.
    Graceful,
    /// It needed the second SIGTERM (it was serving a request).
    SecondTerm,
    Killed,
}

/// SIGTERM; after `graceful` a second SIGTERM; after `after_second_term` SIGKILL.
/// Returns once the process has been reaped.
pub async fn stop_child(
    child: &mut Child,
    policy: &StopPolicy,
) -> (StopOutcome, Option<ExitStatus>) {
    #[cfg(unix)]
    {
        use nix::sys::signal::Signal;
        let Some(pid) = child.id() else {
            return (StopOutcome::Graceful, child.wait().await.ok());
        };
        signal_group(pid, Signal::SIGTERM);
        if let Ok(status) = tokio::time::timeout(policy.graceful, child.wait()).await {
            return (StopOutcome::Graceful, status.ok());
        }
        signal_group(pid, Signal::SIGTERM);
        if let Ok(status) = tokio::time::timeout(policy.after_second_term, child.wait()).await {
            return (StopOutcome::SecondTerm, status.ok());
        }
        signal_group(pid, Signal::SIGKILL);
    }
    #[cfg(not(unix))]
    {
        let _ = policy;
        let _ = child.start_kill();
    }
    (StopOutcome::Killed, child.wait().await.ok())
}

/// Short waits between checks for a process to be gone.
pub const GONE_POLL: Duration = Duration::from_millis(10);

#[cfg(all(test, unix))]
mod tests {
    use std::time::Instant;

    use tokio::io::AsyncBufReadExt as _;

    use super::*;
    use tokio::process::Command;

    use crate::{describe_exit, spawn_guarded};

    /// A stand-in for a busy llama-server: the first SIGTERM only starts its
    /// clean-up, the second ends it with exit code 1 (the real server's lines).
    const BUSY_SERVER: &str = r#"
trap 'if [ -n "$seen" ]; then echo "Received second interrupt, terminating immediately." >&2; exit 1; fi; seen=1; echo "cleaning up before exit..." >&2' TERM
echo ready
while :; do sleep 0.01; done
"#;

    #[allow(clippy::unwrap_used)]
    async fn spawn_script(script: &str) -> Child {
        let mut command = Command::new("sh");
        command
            .args(["-c", script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = spawn_guarded(command).await.unwrap();
        // Signals sent before the trap is set would end it at once.
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));
        child
    }

    fn quick() -> StopPolicy {
        StopPolicy {
            graceful: Duration::from_millis(300),
            after_second_term: Duration::from_millis(300),
            after_cut: Duration::from_millis(100),
        }
    }

    #[tokio::test]
    async fn a_server_busy_after_the_first_sigterm_ends_on_the_second() {
        let mut child = spawn_script(BUSY_SERVER).await;
        let started = Instant::now();
        let (outcome, status) = stop_child(&mut child, &quick()).await;
        assert_eq!(outcome, StopOutcome::SecondTerm);
        assert_eq!(status.and_then(|status| status.code()), Some(1));
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_server_deaf_to_sigterm_is_killed() {
        let mut child =
            spawn_script("trap '' TERM\necho ready\nwhile :; do sleep 0.01; done").await;
        let (outcome, status) = stop_child(&mut child, &quick()).await;
        assert_eq!(outcome, StopOutcome::Killed);
        assert_eq!(describe_exit(status), "was killed (SIGKILL)");
    }

    #[tokio::test]
    async fn an_idle_server_ends_on_the_first_sigterm() {
        let mut child = spawn_script("echo ready\nexec sleep 30").await;
        let (outcome, status) = stop_child(&mut child, &quick()).await;
        assert_eq!(outcome, StopOutcome::Graceful);
        assert_eq!(describe_exit(status), "was terminated (SIGTERM)");
    }
}
