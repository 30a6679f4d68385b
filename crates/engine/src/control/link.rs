//! The app's link to the daemon of its data folder: whether one runs (its
//! `daemon.json`, and its lock held), a client for it kept while the same daemon
//! runs, and a snapshot of what it runs for the window.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::client::ControlClient;
use super::daemon_file::{DaemonFile, DaemonLock};
use super::rows::{DaemonStatus, InstanceRow};
use crate::llama::llm_service_state;
use crate::llama::InstanceStatus;
use crate::locks::lock;
use crate::services::ServiceState;

/// The daemon the app is attached to, as the window shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AttachedDaemon {
    pub status: DaemonStatus,
    pub instances: Vec<InstanceRow>,
    /// Its LLM service as a whole, by the rule of the app's own (the header's
    /// daemon chip).
    pub llm: ServiceState,
}

impl AttachedDaemon {
    pub fn new(status: DaemonStatus, instances: Vec<InstanceRow>) -> Self {
        let llm = llm_service_state(instances.iter().map(|row| row.state));
        Self {
            status,
            instances,
            llm,
        }
    }

    /// Whether `other` shows something else: a daemon came or went, or an
    /// instance's state, health, pid, port or owner changed. Uptime alone is no
    /// change (it moves every second; the window counts it from the start time).
    pub fn differs(current: Option<&Self>, other: Option<&Self>) -> bool {
        current.map(Self::without_uptime) != other.map(Self::without_uptime)
    }

    fn without_uptime(&self) -> Self {
        let mut copy = self.clone();
        for row in &mut copy.instances {
            row.uptime_s = None;
        }
        copy
    }
}

/// One of the daemon's instances in detail, with the file that configures it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DaemonInstance {
    pub status: InstanceStatus,
    /// `<config>/instances/NAME.toml` as the daemon reads it: edit it, then reload.
    pub file: String,
}

impl DaemonInstance {
    pub fn new(status: InstanceStatus, daemon: &DaemonStatus) -> Self {
        let file =
            crate::instance_files::file_of(Path::new(&daemon.instances_dir), &status.spec.name);
        Self {
            status,
            file: file.display().to_string(),
        }
    }
}

/// Finds the daemon of one data folder; cheap when none runs (one failed open).
#[derive(Debug)]
pub struct DaemonLink {
    data_dir: PathBuf,
    /// The client of the daemon last found, kept while its pid, port and token
    /// stay the same (a client keeps its connections).
    cached: Mutex<Option<(DaemonFile, ControlClient)>>,
}

impl DaemonLink {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            cached: Mutex::new(None),
        }
    }

    /// A client for the daemon that runs on this data folder now, if one does.
    /// A `daemon.json` left by a daemon that was killed does not count: a live
    /// daemon holds the folder's daemon lock.
    pub fn client(&self) -> Option<ControlClient> {
        self.found().map(|(_, client)| client)
    }

    /// The same, unless the daemon is this very process (its own orchestrator asks
    /// no one else for room).
    pub fn other_process_client(&self) -> Option<ControlClient> {
        self.found()
            .filter(|(daemon, _)| daemon.pid != std::process::id())
            .map(|(_, client)| client)
    }

    /// The port of the Switchyard endpoint another process's daemon serves, and a
    /// client for that daemon.
    pub fn other_process_endpoint(&self) -> Option<(u16, ControlClient)> {
        self.found()
            .filter(|(daemon, _)| daemon.pid != std::process::id())
            .and_then(|(daemon, client)| Some((daemon.endpoint_port?, client)))
    }

    fn found(&self) -> Option<(DaemonFile, ControlClient)> {
        // The file first: it is written once the daemon holds its lock, so the lock
        // is probed (a shared lock for an instant, which a daemon starting in that
        // instant would take for another daemon) only when one is recorded.
        let found = match DaemonFile::read(&self.data_dir) {
            Ok(found) => found.filter(|_| DaemonLock::is_held(&self.data_dir)),
            Err(error) => {
                tracing::debug!(%error, "daemon.json unreadable");
                None
            }
        };
        let mut cached = lock(&self.cached);
        let Some(found) = found else {
            *cached = None;
            return None;
        };
        if let Some((known, client)) = cached.as_ref() {
            if *known == found {
                return Some((found, client.clone()));
            }
        }
        let client = ControlClient::new(&found);
        *cached = Some((found.clone(), client.clone()));
        Some((found, client))
    }

    /// What the daemon runs now; `None` when no daemon runs or it does not answer.
    pub async fn snapshot(&self) -> Option<AttachedDaemon> {
        let client = self.client()?;
        let (status, instances) = tokio::join!(client.daemon_status(), client.list());
        match (status, instances) {
            (Ok(status), Ok(instances)) => Some(AttachedDaemon::new(status, instances)),
            (Err(error), _) | (_, Err(error)) => {
                tracing::debug!(problem = %error.message, "the daemon did not answer");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llama::InstanceState;

    fn attached(state: InstanceState, uptime_s: Option<u64>) -> AttachedDaemon {
        AttachedDaemon::new(
            DaemonStatus {
                pid: 7,
                version: "0".into(),
                data_dir: "/d".into(),
                instances_dir: "/c/instances".into(),
                problems: Vec::new(),
            },
            vec![InstanceRow {
                name: "tiny".into(),
                state,
                pid: Some(8),
                port: Some(9000),
                backend: None,
                variant: None,
                model: "tiny.gguf".into(),
                uptime_s,
                endpoint: None,
                api_endpoint: None,
                restarts: 0,
                owner: None,
            }],
        )
    }

    #[test]
    fn a_snapshot_differs_by_state_or_presence_not_by_uptime() {
        let healthy = attached(InstanceState::Healthy, Some(1));
        let later = attached(InstanceState::Healthy, Some(9));
        let unhealthy = attached(InstanceState::Unhealthy, Some(9));
        assert!(!AttachedDaemon::differs(Some(&healthy), Some(&later)));
        assert!(AttachedDaemon::differs(Some(&healthy), Some(&unhealthy)));
        assert!(AttachedDaemon::differs(None, Some(&healthy)));
        assert!(AttachedDaemon::differs(Some(&healthy), None));
        assert!(!AttachedDaemon::differs(None, None));
    }

    #[test]
    fn the_daemon_chip_follows_its_liveliest_instance() {
        assert_eq!(
            attached(InstanceState::Healthy, None).llm,
            ServiceState::Running
        );
        assert_eq!(
            attached(InstanceState::Loading, None).llm,
            ServiceState::Starting
        );
        assert_eq!(
            attached(InstanceState::Stopped, None).llm,
            ServiceState::Stopped
        );
    }

    #[test]
    fn no_daemon_file_means_no_daemon_and_a_dead_daemons_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let link = DaemonLink::new(dir.path());
        assert!(link.client().is_none());
        DaemonFile {
            pid: 1,
            port: 9,
            image_port: None,
            endpoint_port: None,
            token: "t".into(),
            version: "0".into(),
        }
        .write(dir.path())
        .unwrap();
        assert!(link.client().is_none(), "nobody holds the daemon lock");
        let _held = DaemonLock::acquire(dir.path()).unwrap();
        assert!(link.client().is_some());
    }
}
