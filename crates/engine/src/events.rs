//! One typed event enum, broadcast to every subscriber: the window bridge, tests,
//! and later the CLI and HTTP event streams.

use serde::Serialize;
use switchyard_base::emit::Emitter;
use tokio::sync::broadcast;
use ts_rs::TS;

use crate::binaries::{BinariesEvent, BinaryKind, BinaryLog, Variant};
use crate::control::AttachedDaemon;
use crate::diffusion::{DiffusionEvent, ImageServerInfo, JobSummary};
use crate::llama::{
    ChatDelta, ChatOutcome, InstanceStatus, LlamaEvent, LogLine, SlotsReport, StateChange,
};
use crate::models::{DownloadStatus, InstalledModel, ModelsEvent};
use crate::orchestrator::OrchestratorEvent;
use crate::services::EngineStatus;
use crate::settings::Settings;
use crate::system::SystemSample;

/// Everything the engine announces. Serialized as `{"type": "system_sample", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum EngineEvent {
    /// Fresh RAM, VRAM and CPU readings, every monitor interval.
    SystemSample(SystemSample),
    SettingsChanged(Settings),
    StatusChanged(EngineStatus),
    /// A download moved on (progress, throttled) or changed state.
    DownloadChanged(DownloadStatus),
    /// The installed models changed (a download finished, a model was deleted).
    ModelsChanged {
        models: Vec<InstalledModel>,
    },
    /// A step of setting up llama-server or sd: download, verify, extract, tests.
    BinaryLog(BinaryLog),
    /// A binary archive's download moved on (throttled).
    BinaryDownload {
        kind: BinaryKind,
        variant: Variant,
        file: String,
        #[ts(type = "number")]
        bytes: u64,
        #[ts(type = "number | null")]
        total: Option<u64>,
    },
    /// A llama-server instance moved to another state (with the reason).
    LlamaState(StateChange),
    /// Instances were created, changed or removed: the whole list.
    LlamaInstances {
        instances: Vec<InstanceStatus>,
    },
    /// New output lines of an instance, batched (a loading server prints hundreds).
    LlamaLog {
        instance: String,
        lines: Vec<LogLine>,
    },
    /// A piece of a streaming test chat's answer.
    LlamaChatDelta(ChatDelta),
    /// A test chat finished (with llama-server's speed).
    LlamaChatDone {
        instance: String,
        outcome: ChatOutcome,
    },
    /// An instance's conversations (its slots' KV cache) were saved before a stop,
    /// or restored after a start.
    LlamaSlots(SlotsReport),
    /// An image job was queued, moved on (stage, step, percent) or finished.
    ImageJobChanged(JobSummary),
    /// The image server started (with where it listens) or stopped (`None`).
    ImageServerChanged {
        server: Option<ImageServerInfo>,
    },
    /// The orchestrator offloaded or reloaded the LLM around image generation.
    Orchestrator(OrchestratorEvent),
    /// The engine is stopping its servers; nothing new will start.
    ShuttingDown,
    /// A `switchyard daemon` on this data folder started or ended (`None`), or one
    /// of its instances changed state, health, pid or port.
    DaemonChanged {
        daemon: Option<AttachedDaemon>,
    },
}

/// How many events a slow subscriber may fall behind before it misses some. A
/// streaming chat sends one event per token, so this leaves room for a long answer
/// while a subscriber is busy.
const EVENT_BACKLOG: usize = 1024;

/// The sending side; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<EngineEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(EVENT_BACKLOG).0,
        }
    }
}

impl EventBus {
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.sender.subscribe()
    }

    /// Sends to every current subscriber; having none is fine.
    pub fn emit(&self, event: EngineEvent) {
        let _no_subscribers_is_fine = self.sender.send(event);
    }

    /// An emitter for a part's own events, broadcast here as engine events.
    pub fn emitter<E>(&self) -> Emitter<E>
    where
        EngineEvent: From<E>,
    {
        let bus = self.clone();
        Emitter::new(move |event: E| bus.emit(EngineEvent::from(event)))
    }
}

impl From<EngineStatus> for EngineEvent {
    fn from(status: EngineStatus) -> Self {
        Self::StatusChanged(status)
    }
}

impl From<LlamaEvent> for EngineEvent {
    fn from(event: LlamaEvent) -> Self {
        match event {
            LlamaEvent::State(change) => Self::LlamaState(change),
            LlamaEvent::Instances { instances } => Self::LlamaInstances { instances },
            LlamaEvent::Log { instance, lines } => Self::LlamaLog { instance, lines },
            LlamaEvent::ChatDelta(delta) => Self::LlamaChatDelta(delta),
            LlamaEvent::ChatDone { instance, outcome } => Self::LlamaChatDone { instance, outcome },
            LlamaEvent::Slots(report) => Self::LlamaSlots(report),
        }
    }
}

impl From<DiffusionEvent> for EngineEvent {
    fn from(event: DiffusionEvent) -> Self {
        match event {
            DiffusionEvent::JobChanged(summary) => Self::ImageJobChanged(summary),
        }
    }
}

impl From<OrchestratorEvent> for EngineEvent {
    fn from(event: OrchestratorEvent) -> Self {
        Self::Orchestrator(event)
    }
}

impl From<ModelsEvent> for EngineEvent {
    fn from(event: ModelsEvent) -> Self {
        match event {
            ModelsEvent::DownloadChanged(status) => Self::DownloadChanged(status),
            ModelsEvent::ModelsChanged { models } => Self::ModelsChanged { models },
        }
    }
}

impl From<BinariesEvent> for EngineEvent {
    fn from(event: BinariesEvent) -> Self {
        match event {
            BinariesEvent::Log(log) => Self::BinaryLog(log),
            BinariesEvent::Download {
                kind,
                variant,
                file,
                bytes,
                total,
            } => Self::BinaryDownload {
                kind,
                variant,
                file,
                bytes,
                total,
            },
        }
    }
}
