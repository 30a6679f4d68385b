//! The app attached to a running `switchyard daemon` of its data folder: the
//! daemon's instances for the window (a watcher announces changes), and starts,
//! stops, logs and reloads through the daemon's control API.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::Engine;
use crate::control::{AttachedDaemon, ControlClient, DaemonInstance, DaemonLink, DaemonStatus};
use crate::errors::{EngineError, ErrorReport, Result};
use crate::events::EngineEvent;
use crate::llama::{InstanceStatus, LogLine};

/// The link and what the window was last told about the daemon.
#[derive(Debug)]
pub(super) struct Attachment {
    link: Arc<DaemonLink>,
    /// Held across a whole poll, so polls end in the order they started and an
    /// older snapshot never replaces a newer one.
    last: tokio::sync::Mutex<Option<AttachedDaemon>>,
}

impl Attachment {
    pub(super) fn new(data_dir: &Path) -> Self {
        Self {
            link: Arc::new(DaemonLink::new(data_dir)),
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The link, shared with the orchestrator (which asks the daemon for room).
    pub(super) fn link(&self) -> Arc<DaemonLink> {
        Arc::clone(&self.link)
    }
}

impl Engine {
    /// A client for the daemon that runs on this data folder now, if one does.
    pub fn daemon_client(&self) -> Option<ControlClient> {
        self.inner.daemon.link.client()
    }

    /// What the daemon runs now (`None` without one), announced when it changed.
    pub async fn attached_daemon(&self) -> Option<AttachedDaemon> {
        self.poll_daemon().await
    }

    /// Watches for a daemon every `interval` until shutdown, announcing
    /// [`EngineEvent::DaemonChanged`] when it comes, goes or its instances change,
    /// keeping the owner of this app's instances current, and announcing models
    /// other processes installed or deleted. The app runs this;
    /// the daemon and the command line do not.
    pub async fn run_daemon_watch(&self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.inner.shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    self.poll_daemon().await;
                }
            }
        }
    }

    async fn poll_daemon(&self) -> Option<AttachedDaemon> {
        let mut last = self.inner.daemon.last.lock().await;
        let current = self.inner.daemon.link.snapshot().await;
        // The daemon (or a foreground command) may have taken or let go of an
        // instance this app also lists.
        self.llama().refresh_owners();
        // …or installed or deleted a model.
        self.models().announce_changes_elsewhere();
        if AttachedDaemon::differs(last.as_ref(), current.as_ref()) {
            last.clone_from(&current);
            self.inner.events.emit(EngineEvent::DaemonChanged {
                daemon: current.clone(),
            });
        }
        current
    }

    fn attached_client(&self) -> Result<ControlClient> {
        self.daemon_client()
            .ok_or_else(|| EngineError::DaemonNotRunning {
                data_dir: self.layout().root().to_path_buf(),
            })
    }

    /// Runs `call` on the daemon, then announces what changed at once (not at the
    /// watcher's next tick).
    async fn through_daemon<T, Call>(&self, call: impl FnOnce(ControlClient) -> Call) -> Result<T>
    where
        Call: Future<Output = Result<T, ErrorReport>>,
    {
        let outcome = call(self.attached_client()?).await;
        self.poll_daemon().await;
        outcome.map_err(EngineError::from)
    }

    /// One of the daemon's instances in detail, with the file that configures it.
    pub async fn daemon_instance(&self, name: &str) -> Result<DaemonInstance> {
        let client = self.attached_client()?;
        let (status, daemon) = tokio::join!(client.describe(name), client.daemon_status());
        Ok(DaemonInstance::new(status?, &daemon?))
    }

    /// Starts a daemon instance; returns once it is healthy.
    pub async fn daemon_up(&self, name: &str) -> Result<InstanceStatus> {
        self.through_daemon(|client| async move { client.up(name).await })
            .await
    }

    pub async fn daemon_down(&self, name: &str) -> Result<InstanceStatus> {
        self.through_daemon(|client| async move { client.down(name).await })
            .await
    }

    pub async fn daemon_restart(&self, name: &str) -> Result<InstanceStatus> {
        self.through_daemon(|client| async move { client.restart(name).await })
            .await
    }

    /// The daemon reads its instance files again (after a person edited one).
    pub async fn daemon_reload(&self) -> Result<DaemonStatus> {
        self.through_daemon(|client| async move { client.reload().await })
            .await
    }

    /// A daemon instance's log lines with `seq >= since`, at most the last `limit`.
    pub async fn daemon_logs(&self, name: &str, since: u64, limit: usize) -> Result<Vec<LogLine>> {
        Ok(self.attached_client()?.logs(name, since, limit).await?)
    }
}
