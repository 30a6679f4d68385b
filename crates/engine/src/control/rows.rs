//! What `switchyard ps` shows for an instance, the same whether a daemon or the
//! command itself answers.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::errors::ErrorReport;
use crate::estimate::Backend;
use crate::llama::{InstanceState, InstanceStatus, Owner};

/// One line of `switchyard ps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct InstanceRow {
    pub name: String,
    pub state: InstanceState,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    /// The backend it runs on (from its running configuration).
    pub backend: Option<Backend>,
    /// The llama-server build: `cpu`, `cuda`, `vulkan`, `metal`, `custom`.
    pub variant: Option<String>,
    /// The catalog id, else the model file's name.
    pub model: String,
    #[ts(type = "number | null")]
    pub uptime_s: Option<u64>,
    /// llama-server's own address, while it runs.
    pub endpoint: Option<String>,
    /// The stable endpoint clients use (it holds requests while the server pauses).
    pub api_endpoint: Option<String>,
    pub restarts: u32,
    /// The process that runs it, when one does (this one or another).
    pub owner: Option<Owner>,
}

impl InstanceRow {
    pub fn new(
        status: &InstanceStatus,
        variant: Option<String>,
        owner: Option<Owner>,
        now_ms: u64,
    ) -> Self {
        let running = status.running.as_ref();
        let active = status.state.is_active();
        Self {
            name: status.spec.name.clone(),
            state: status.state,
            pid: status.pid,
            port: running.map(|running| running.port).or(status.spec.port),
            backend: running
                .and_then(|running| running.estimate.as_ref())
                .map(|estimate| estimate.backend),
            variant: variant.filter(|_| active),
            model: status.spec.model_key(),
            uptime_s: status
                .started_at_ms
                .filter(|_| active)
                .map(|started| now_ms.saturating_sub(started) / 1000),
            endpoint: status.endpoint.clone(),
            api_endpoint: status.api_endpoint.clone(),
            restarts: status.restarts,
            owner,
        }
    }
}

/// The daemon about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DaemonStatus {
    pub pid: u32,
    pub version: String,
    pub data_dir: String,
    pub instances_dir: String,
    /// Instance files it could not use, and why.
    pub problems: Vec<ErrorReport>,
}
