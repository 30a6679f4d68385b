//! Where an instance is in its life, as the UI shows it and events announce it.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use switchyard_base::errors::ErrorReport;
use switchyard_estimate::{LlamaConfig, LlamaEstimate, MeasuredMemory, SpeedEstimate};

use super::ownership::Owner;
use super::spec::InstanceSpec;

/// starting → loading → healthy ⇄ unhealthy; the child's exit → crashed →
/// restarting → starting …, or failed at the start limit; stopping → stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum InstanceState {
    #[default]
    Stopped,
    /// Spawned; `/health` does not answer yet.
    Starting,
    /// `/health` answers 503 while the model loads.
    Loading,
    Healthy,
    /// Consecutive health checks failed; the process still runs.
    Unhealthy,
    /// The process exited without being asked to.
    Crashed,
    /// Waiting out the backoff before the next start.
    Restarting,
    /// It could not start, or crashed too often: it waits for the person.
    Failed,
    Stopping,
}

impl InstanceState {
    /// A process exists (or is about to) for this state.
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Stopped | Self::Failed)
    }
}

/// The configuration a server was really started with, after auto-configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RunningConfig {
    pub config: LlamaConfig,
    pub threads: Option<u32>,
    pub host: String,
    pub port: u16,
    pub reasoning: bool,
    /// What it serves, as decided at its start (never `auto`).
    pub role: crate::ModelRole,
    /// The command line (the API key replaced by `***`).
    pub args: Vec<String>,
    pub binary: String,
    /// The estimate for this configuration, and what fitting changed.
    pub estimate: Option<LlamaEstimate>,
    pub notes: Vec<String>,
}

/// Everything the LLM tab shows about one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct InstanceStatus {
    pub spec: InstanceSpec,
    pub state: InstanceState,
    /// Why it is in this state, in words.
    pub reason: String,
    pub pid: Option<u32>,
    /// `http://host:port`, while a server runs.
    pub endpoint: Option<String>,
    /// The stable endpoint clients use (`http://host:port`), once it listens: it
    /// stays while the server stops for an image, restarts or reloads.
    pub api_endpoint: Option<String>,
    pub running: Option<RunningConfig>,
    /// Buffers llama-server reported at its last load, and its resident memory.
    pub measured: Option<MeasuredMemory>,
    #[ts(type = "number | null")]
    pub started_at_ms: Option<u64>,
    /// Restarts after crashes since the person last started it.
    pub restarts: u32,
    /// The error behind a crashed or failed state.
    pub error: Option<ErrorReport>,
    /// Another Switchyard process (the daemon, a `switchyard up --foreground`)
    /// that holds this instance's lock now, so this one cannot start it.
    #[serde(default)]
    pub owned_by: Option<Owner>,
}

impl InstanceStatus {
    pub fn stopped(spec: InstanceSpec) -> Self {
        Self {
            spec,
            state: InstanceState::Stopped,
            reason: String::new(),
            pid: None,
            endpoint: None,
            api_endpoint: None,
            running: None,
            measured: None,
            started_at_ms: None,
            restarts: 0,
            error: None,
            owned_by: None,
        }
    }
}

/// An instance moved from one state to another.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct StateChange {
    pub name: String,
    pub from: InstanceState,
    pub to: InstanceState,
    pub reason: String,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    pub error: Option<ErrorReport>,
    #[ts(type = "number")]
    pub at_ms: u64,
}

/// What a configuration would become if started now: the fields left to Switchyard
/// fitted to free memory, the estimate (measured where llama-server reported this
/// model and configuration before), and why it would not start, if it would not.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct InstancePreview {
    /// `estimate.config` is the final configuration (context, GPU layers).
    pub estimate: LlamaEstimate,
    /// What fitting changed, in words.
    pub notes: Vec<String>,
    /// `INSUFFICIENT_RESOURCES` (or another reason) when it would not start now.
    pub problem: Option<ErrorReport>,
    /// Free memory now, which the fitting used.
    #[ts(type = "number")]
    pub free_ram_bytes: u64,
    #[ts(type = "number")]
    pub free_vram_bytes: u64,
    /// Generation speed this way: llama-server's timing of an earlier run of the
    /// same model and configuration, else the prediction; `None` when neither is
    /// known.
    pub speed: Option<SpeedEstimate>,
}
