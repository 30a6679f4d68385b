//! Spawning servers so they cannot outlive the app, and ending them in steps.
//!
//! Linux: each server gets its own process group (a terminal's Ctrl-C reaches the
//! app, which stops servers in order, not the servers directly) and the
//! parent-death signal. The kernel sends that signal when the *thread* that forked
//! the child ends, so every spawn happens on one thread that lives as long as the
//! process. Windows: every server joins one Job Object that kills on close.

use std::process::ExitStatus;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use super::policy::StopPolicy;
use crate::locks::lock;

type SpawnJob = Box<dyn FnOnce() + Send>;

/// The thread every server is forked from (see the module comment).
fn spawner() -> Option<mpsc::Sender<SpawnJob>> {
    static SPAWNER: OnceLock<Option<Mutex<mpsc::Sender<SpawnJob>>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (sender, jobs) = mpsc::channel::<SpawnJob>();
            std::thread::Builder::new()
                .name("switchyard-spawner".into())
                .spawn(move || {
                    for job in jobs {
                        job();
                    }
                })
                .ok()
                .map(|_| Mutex::new(sender))
        })
        .as_ref()
        .map(|sender| lock(sender).clone())
}

/// Spawns `command` tied to this process's life; see the module comment.
pub async fn spawn_guarded(mut command: Command) -> std::io::Result<Child> {
    command.kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    #[cfg(target_os = "linux")]
    switchyard_child_guard::die_with_parent(command.as_std_mut());

    let runtime = tokio::runtime::Handle::current();
    let (reply, answer) = oneshot::channel();
    let job: SpawnJob = Box::new(move || {
        // The child is registered with the caller's runtime (its exit is awaited there).
        let _context = runtime.enter();
        let _ = reply.send(command.spawn());
    });
    let sender = spawner().ok_or_else(|| std::io::Error::other("no spawner thread"))?;
    sender
        .send(job)
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    let child = answer
        .await
        .map_err(|_| std::io::Error::other("the spawner thread dropped the spawn"))??;
    #[cfg(windows)]
    join_kill_on_close_job(&child);
    Ok(child)
}

#[cfg(windows)]
fn join_kill_on_close_job(child: &Child) {
    use switchyard_child_guard::JobObject;
    static JOB: OnceLock<Option<JobObject>> = OnceLock::new();
    let job = JOB.get_or_init(|| JobObject::kill_on_close().ok());
    match (job, child.raw_handle()) {
        (Some(job), Some(handle)) => {
            if let Err(error) = job.assign(handle) {
                tracing::warn!(%error, "the server could not join the app's job object");
            }
        }
        _ => tracing::warn!("no job object: the server may outlive a crash of the app"),
    }
}

/// SIGTERM (or SIGKILL with `kill`) to the process group led by `pid`, if any.
#[cfg(unix)]
pub(crate) fn end_group(pid: Option<u32>, kill: bool) {
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

/// SIGTERM; after `graceful` a second SIGTERM (llama-server waits for running
/// requests on the first, ends at once on the second); after `after_second_term`
/// SIGKILL. Returns once the process has been reaped.
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

/// The exit in words: `exit code 1`, `signal 9 (SIGKILL)`.
pub fn describe_exit(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "an unknown exit".to_owned();
    };
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            let name = nix::sys::signal::Signal::try_from(signal)
                .map(|signal| signal.as_str().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned());
            return format!("signal {signal} ({name})");
        }
    }
    status.to_string()
}

/// Short waits between checks for a process to be gone.
pub const GONE_POLL: Duration = Duration::from_millis(10);

#[cfg(all(test, unix))]
mod tests {
    use std::time::Instant;

    use tokio::io::AsyncBufReadExt as _;

    use super::*;

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
        assert_eq!(describe_exit(status), "signal 9 (SIGKILL)");
    }

    #[tokio::test]
    async fn an_idle_server_ends_on_the_first_sigterm() {
        let mut child = spawn_script("echo ready\nexec sleep 30").await;
        let (outcome, status) = stop_child(&mut child, &quick()).await;
        assert_eq!(outcome, StopOutcome::Graceful);
        assert_eq!(describe_exit(status), "signal 15 (SIGTERM)");
    }
}
