//! Spawning children so they cannot outlive the app.
//!
//! Linux: each child gets its own process group (a terminal's Ctrl-C reaches the
//! app, which stops its children in order, not the children directly) and the
//! parent-death signal. The kernel sends that signal when the *thread* that forked
//! the child ends, so every spawn happens on one thread that lives as long as the
//! process. Windows: every child joins one Job Object that kills on close.

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use switchyard_base::locks::lock;

type SpawnJob = Box<dyn FnOnce() + Send>;

/// The thread every child is forked from (see the module comment).
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
