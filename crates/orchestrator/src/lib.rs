//! Keeps the LLM and image generation from exhausting memory together: the
//! orchestrator is the image service's [`GenerationGate`]. When the running LLM
//! servers and the next image would together pass a share (75 % by default) of the
//! bottleneck — VRAM when a GPU is used, else RAM — it saves the servers' running
//! configuration and stops them, lets the queued images run in one window, then
//! reloads them in the background once nobody holds them stopped any more (its own
//! window, and other processes' images it made room for, each until it is done):
//! after waiting until the memory is really free,
//! with retries on `INSUFFICIENT_RESOURCES`, keeping the saved state (and saying so)
//! when the reload finally fails.

mod elsewhere;
mod gate;
mod memory;
mod offload;
mod prediction;
mod reload;
mod room;
pub mod router;
mod usage;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use ts_rs::TS;

pub use elsewhere::ServersElsewhere;
pub use memory::{MemorySample, MemorySource};
pub use usage::{InstanceUsage, UsageBasis};

use switchyard_base::emit::Emitter;
use switchyard_base::errors::{ErrorCode, ErrorReport, Result};
use switchyard_base::locks::lock;
use switchyard_diffusion::gate::BoxFuture;
use switchyard_diffusion::{GateDecision, GateOutcome, GateRequest, GenerationGate};
use switchyard_estimate::AutoFields;
use switchyard_llama::{InstanceSpec, InstanceState, InstanceStatus, LlamaManager};

/// How the orchestrator decides and how hard it tries to bring the LLM back.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct OrchestratorPolicy {
    /// Offload when LLM + image would use more than this share of the bottleneck.
    pub threshold: f64,
    /// How long a reload waits for the memory to come back before it tries anyway.
    #[ts(type = "number")]
    pub memory_wait_ms: u64,
    /// Starts tried per reload, with the backoff doubling between them.
    pub reload_attempts: u32,
    #[ts(type = "number")]
    pub reload_backoff_ms: u64,
    #[ts(type = "number")]
    pub poll_ms: u64,
    /// A queue of images keeps the LLM offloaded at most this long while chat
    /// requests wait for it; then the LLM comes back between two images.
    #[ts(type = "number")]
    pub max_window_ms: u64,
    /// After such a break, how long the next image waits for the waiting chat
    /// requests to be answered before it offloads the LLM again.
    #[ts(type = "number")]
    pub chat_turn_ms: u64,
    /// Before an offload stops a server, requests it is answering get this long
    /// to finish (new ones wait meanwhile); what is left then is cut and sent
    /// again once the server is back (a stream under way ends with an error event).
    #[ts(type = "number")]
    pub drain_ms: u64,
}

impl Default for OrchestratorPolicy {
    fn default() -> Self {
        Self {
            threshold: 0.75,
            memory_wait_ms: 30_000,
            reload_attempts: 4,
            reload_backoff_ms: 1_000,
            poll_ms: 100,
            max_window_ms: 60_000,
            chat_turn_ms: 30_000,
            drain_ms: DEFAULT_DRAIN_MS,
        }
    }
}

/// Long enough for a typical answer to finish before its server is paused.
pub const DEFAULT_DRAIN_MS: u64 = 30_000;

/// A server the orchestrator stopped, and how to bring it back exactly as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct SavedInstance {
    /// The person's own specification (restored once it runs again).
    pub spec: InstanceSpec,
    /// The same with the running port and final configuration pinned.
    pub pinned: InstanceSpec,
    /// Memory it used, which the reload waits to be free again.
    #[ts(type = "number")]
    pub ram_bytes: u64,
    #[ts(type = "number")]
    pub vram_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct SavedState {
    pub instances: Vec<SavedInstance>,
    #[ts(type = "number")]
    pub offloaded_at_ms: u64,
    /// Why the last reload failed, while the state waits for the person.
    pub reload_error: Option<ErrorReport>,
}

/// What the next image would do to the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct OffloadPrediction {
    pub needs_offload: bool,
    /// LLM + image over the bottleneck's total.
    pub projected_share: f64,
    pub bottleneck_is_vram: bool,
    /// How long chat would pause: the last whole pause seen (the drain of the
    /// answers under way, offload, the images, reload), or 2 s before any.
    pub predicted_pause_secs: f64,
    /// Answers being written now, which the image waits for (up to the drain
    /// time) before the LLM stops.
    #[ts(type = "number")]
    pub answers_in_progress: u64,
    /// The longest the image would wait for them.
    pub drain_wait_secs: f64,
}

/// What the orchestrator did, for the Resource Monitor's log.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum OrchestratorEvent {
    Offloaded {
        instances: Vec<String>,
        reason: String,
        /// The requests being answered took this long to finish (new ones waited
        /// from the decision on).
        #[ts(type = "number")]
        drain_ms: u64,
        /// Requests still being answered at the drain time, cut: sent again once
        /// the servers are back (a stream under way ended with an error event).
        #[ts(type = "number")]
        cut_requests: u64,
        /// Stopping the servers after the drain took this long.
        #[ts(type = "number")]
        stop_ms: u64,
    },
    /// The offload window reached its maximum with chat requests waiting: the LLM
    /// comes back before the next image.
    WindowYielded {
        #[ts(type = "number")]
        window_ms: u64,
        #[ts(type = "number")]
        waiting_requests: u64,
    },
    Reloading {
        instances: Vec<String>,
        attempt: u32,
    },
    Reloaded {
        instances: Vec<String>,
        /// From the offload to healthy again.
        #[ts(type = "number")]
        paused_ms: u64,
        /// Of the reload: waiting for the memory to be free, then starting.
        #[ts(type = "number")]
        memory_wait_ms: u64,
        #[ts(type = "number")]
        start_ms: u64,
    },
    ReloadFailed {
        instances: Vec<String>,
        error: ErrorReport,
    },
    /// The router loaded a model a request (or the person) asked for.
    ModelLoaded {
        instance: String,
        reason: String,
        #[ts(type = "number")]
        load_ms: u64,
        #[ts(type = "number")]
        ram_bytes: u64,
        #[ts(type = "number")]
        vram_bytes: u64,
    },
    /// The router unloaded a model: to make room, idle, or by hand.
    ModelUnloaded {
        instance: String,
        reason: String,
        /// What it held.
        #[ts(type = "number")]
        ram_bytes: u64,
        #[ts(type = "number")]
        vram_bytes: u64,
    },
    /// A model could not be loaded (no room, or it failed to start).
    ModelLoadFailed {
        instance: String,
        error: ErrorReport,
    },
}

/// Where the orchestrator stands, for the Resource Monitor's status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum OrchestratorPhase {
    /// The LLM runs as the person started it (or nothing is saved).
    #[default]
    Idle,
    /// The LLM is stopped for images; it comes back when the queue has drained.
    Offloaded,
    /// The LLM is being started again.
    Reloading,
    /// The reload gave up; the saved state waits for the person.
    ReloadFailed,
}

#[derive(Debug, Default)]
struct State {
    phase: OrchestratorPhase,
    saved: Option<SavedState>,
    /// How long chat paused the last time (offload, the images, reload), for the
    /// prediction: what a person waited, as the `reloaded` event reports it.
    last_pause: Option<Duration>,
    /// The last window closed early for waiting chat requests.
    yielded: bool,
    /// Another process stopped its servers for the open window.
    room_made_elsewhere: bool,
    /// Whom the servers are kept stopped for: they come back once none is left.
    holders: BTreeSet<RoomHolder>,
}

/// Who needs the LLM servers kept stopped (or, for this process's window, kept
/// from coming back beside its image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum RoomHolder {
    /// This process's own image window, while it is open.
    OwnWindow,
    /// Another process (by pid) making an image, until it says it is done.
    Process(u32),
}

#[derive(Debug)]
struct Shared {
    llama: LlamaManager,
    memory: Arc<dyn MemorySource>,
    events: Emitter<OrchestratorEvent>,
    policy: Mutex<OrchestratorPolicy>,
    state: Mutex<State>,
    /// `true` from the decision to reload (the last holder gone) until the reload
    /// has ended. Set and read with `state` locked, so a new holder either joins
    /// the stopped servers before that decision or waits for the reload.
    reloading: watch::Sender<bool>,
    clock: Arc<dyn switchyard_base::clock::Clock>,
    elsewhere: RwLock<Option<Arc<dyn ServersElsewhere>>>,
    /// One decision (and offload) at a time: this process's image windows and other
    /// processes' requests for room may come together; two offloads would save the
    /// second's empty list over the first's. Only [`Orchestrator::hold_room`] takes
    /// it, and nothing it waits for (a reload, stopping servers) takes it again.
    deciding: tokio::sync::Mutex<()>,
}

/// The orchestrator; cheap to clone.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    shared: Arc<Shared>,
}

pub(crate) fn is_up(state: InstanceState) -> bool {
    matches!(
        state,
        InstanceState::Starting
            | InstanceState::Loading
            | InstanceState::Healthy
            | InstanceState::Unhealthy
            | InstanceState::Restarting
    )
}

impl Orchestrator {
    pub fn new(
        llama: LlamaManager,
        memory: Arc<dyn MemorySource>,
        events: Emitter<OrchestratorEvent>,
        clock: Arc<dyn switchyard_base::clock::Clock>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                llama,
                memory,
                events,
                policy: Mutex::new(OrchestratorPolicy::default()),
                state: Mutex::new(State::default()),
                reloading: watch::channel(false).0,
                clock,
                elsewhere: RwLock::new(None),
                deciding: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The LLM servers of another process (the daemon) this one asks to make room.
    pub fn set_servers_elsewhere(&self, elsewhere: Arc<dyn ServersElsewhere>) {
        *switchyard_base::locks::write(&self.shared.elsewhere) = Some(elsewhere);
    }

    fn servers_elsewhere(&self) -> Option<Arc<dyn ServersElsewhere>> {
        switchyard_base::locks::read(&self.shared.elsewhere).clone()
    }

    pub fn policy(&self) -> OrchestratorPolicy {
        *lock(&self.shared.policy)
    }

    pub fn set_policy(&self, policy: OrchestratorPolicy) {
        *lock(&self.shared.policy) = policy;
    }

    /// The servers stopped for images and not yet back.
    pub fn saved_state(&self) -> Option<SavedState> {
        lock(&self.shared.state).saved.clone()
    }

    /// Forgets the saved servers (the person restarts or removes them by hand).
    pub fn clear_saved_state(&self) {
        let saved = {
            let mut state = lock(&self.shared.state);
            state.phase = OrchestratorPhase::Idle;
            state.saved.take()
        };
        for instance in saved.iter().flat_map(|saved| &saved.instances) {
            self.shared.llama.release_requests(&instance.spec.name);
        }
    }

    pub fn phase(&self) -> OrchestratorPhase {
        lock(&self.shared.state).phase
    }

    /// The one-click "Restart LLM" after a failed reload: starts the saved servers
    /// again as they ran, then forgets the saved state. On failure the state stays,
    /// with the new error.
    pub async fn restart_saved(&self) -> Result<Vec<InstanceStatus>> {
        let Some(saved) = self.saved_state() else {
            return Ok(Vec::new());
        };
        let names: Vec<String> = saved
            .instances
            .iter()
            .map(|s| s.spec.name.clone())
            .collect();
        self.set_phase(OrchestratorPhase::Reloading);
        self.emit(OrchestratorEvent::Reloading {
            instances: names.clone(),
            attempt: 1,
        });
        let began = Instant::now();
        match self.start_saved(&saved).await {
            Ok(()) => {
                self.clear_saved_state();
                self.emit(OrchestratorEvent::Reloaded {
                    instances: names.clone(),
                    paused_ms: self
                        .shared
                        .clock
                        .now_ms()
                        .saturating_sub(saved.offloaded_at_ms),
                    memory_wait_ms: 0,
                    start_ms: millis(began.elapsed()),
                });
                Ok(names
                    .iter()
                    .filter_map(|name| self.shared.llama.status(name).ok())
                    .collect())
            }
            Err(error) => {
                {
                    let mut state = lock(&self.shared.state);
                    state.phase = OrchestratorPhase::ReloadFailed;
                    if let Some(saved) = &mut state.saved {
                        saved.reload_error = Some(error.report());
                    }
                }
                self.emit(OrchestratorEvent::ReloadFailed {
                    instances: names,
                    error: error.report(),
                });
                Err(error)
            }
        }
    }

    fn set_phase(&self, phase: OrchestratorPhase) {
        lock(&self.shared.state).phase = phase;
    }

    /// Waits, at most `timeout`, until no image holds the servers stopped and no
    /// reload is pending: the router loads nothing beside an image.
    pub(crate) async fn wait_for_images(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let held = !lock(&self.shared.state).holders.is_empty() || self.reload_pending();
            if !held || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(self.policy().poll_ms.max(10))).await;
        }
    }

    /// Waits until no reload is pending; `false` when `timeout` passed first.
    pub async fn wait_for_reload(&self, timeout: Duration) -> bool {
        let mut reloading = self.shared.reloading.subscribe();
        tokio::time::timeout(timeout, reloading.wait_for(|busy| !busy))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }

    pub(crate) fn emit(&self, event: OrchestratorEvent) {
        self.shared.events.emit(event);
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
