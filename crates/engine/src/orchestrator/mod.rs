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
mod memory;
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

use crate::diffusion::gate::BoxFuture;
use crate::diffusion::{GateDecision, GateOutcome, GateRequest, GenerationGate};
use crate::errors::{ErrorCode, ErrorReport, Result};
use crate::estimate::AutoFields;
use crate::events::{EngineEvent, EventBus};
use crate::llama::{InstanceSpec, InstanceState, InstanceStatus, LlamaManager};
use crate::locks::lock;

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
    events: EventBus,
    policy: Mutex<OrchestratorPolicy>,
    state: Mutex<State>,
    /// `true` from the decision to reload (the last holder gone) until the reload
    /// has ended. Set and read with `state` locked, so a new holder either joins
    /// the stopped servers before that decision or waits for the reload.
    reloading: watch::Sender<bool>,
    clock: Arc<dyn crate::clock::Clock>,
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

fn is_up(state: InstanceState) -> bool {
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
        events: EventBus,
        clock: Arc<dyn crate::clock::Clock>,
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
        *crate::locks::write(&self.shared.elsewhere) = Some(elsewhere);
    }

    fn servers_elsewhere(&self) -> Option<Arc<dyn ServersElsewhere>> {
        crate::locks::read(&self.shared.elsewhere).clone()
    }

    /// Process `pid` is about to make an image needing this much memory: stops this
    /// process's servers when it would not fit beside them, by the same rule as for
    /// its own images. Whether they are stopped for it (also when they already
    /// were): then they stay stopped until it says it is done.
    pub async fn make_room(&self, pid: u32, image_ram: u64, image_vram: u64) -> Result<bool> {
        self.hold_room(RoomHolder::Process(pid), image_ram, image_vram)
            .await
    }

    /// Whether another process's image holds the servers stopped: a break in this
    /// process's window would not bring them back for the waiting chat.
    fn held_for_other_processes(&self) -> bool {
        lock(&self.shared.state)
            .holders
            .iter()
            .any(|holder| matches!(holder, RoomHolder::Process(_)))
    }

    /// Whether this process's servers are stopped for process `pid`'s image.
    pub fn holds_room_for(&self, pid: u32) -> bool {
        lock(&self.shared.state)
            .holders
            .contains(&RoomHolder::Process(pid))
    }

    /// Process `pid`'s image is done: the servers come back (in the background)
    /// once nobody else needs them stopped. Said twice (by it, and by the watch on
    /// it), the second does nothing.
    pub fn room_no_longer_needed(&self, pid: u32) {
        self.release_room(RoomHolder::Process(pid));
    }

    /// Decides for `holder`'s image: offloads when the servers and an image of this
    /// size would pass the threshold. Whether the servers are stopped now (by this
    /// call or before it); then `holder` holds them stopped until it releases them.
    /// This process's window holds even when nothing was stopped, so that servers
    /// stopped meanwhile for another process do not come back beside its image.
    async fn hold_room(&self, holder: RoomHolder, image_ram: u64, image_vram: u64) -> Result<bool> {
        let _one_decision = self.shared.deciding.lock().await;
        loop {
            // The LLM is on its way back: let it arrive (and answer the chat that
            // waited for it) rather than load the image beside it.
            let reload_over =
                !self.reload_pending() || self.wait_for_reload(self.reload_bound()).await;
            let already_stopped = {
                let mut state = lock(&self.shared.state);
                if reload_over && self.reload_pending() {
                    // The last holder left after the wait: wait for that reload too.
                    continue;
                }
                if holder == RoomHolder::OwnWindow {
                    state.holders.insert(holder);
                }
                let stopped = state.saved.is_some();
                if stopped {
                    // Offloaded for another image, or the reload failed: nothing of
                    // the LLM holds memory.
                    state.holders.insert(holder);
                }
                stopped
            };
            if already_stopped {
                return Ok(true);
            }
            break;
        }
        // Nothing is saved, and only an offload (under `deciding`, held here) saves.
        let prediction = self.would_need_offload(image_ram, image_vram);
        if !prediction.needs_offload {
            return Ok(false);
        }
        let reason = format!(
            "LLM and image together would use {:.0} % of {} (threshold {:.0} %)",
            prediction.projected_share * 100.0,
            if prediction.bottleneck_is_vram {
                "VRAM"
            } else {
                "RAM"
            },
            self.policy().threshold * 100.0
        );
        self.offload(reason, holder).await?;
        Ok(true)
    }

    /// `holder` no longer needs the servers stopped: the last one to leave starts
    /// the reload, in the background (an image is already with its caller).
    fn release_room(&self, holder: RoomHolder) {
        let reload = {
            let mut state = lock(&self.shared.state);
            state.holders.remove(&holder)
                && state.holders.is_empty()
                && state.phase == OrchestratorPhase::Offloaded
                && state
                    .saved
                    .as_ref()
                    .is_some_and(|saved| saved.reload_error.is_none())
                // Decided under `state`, once: a second caller finds it pending.
                && !self.shared.reloading.send_replace(true)
        };
        if reload {
            let me = self.clone();
            tokio::spawn(async move { me.reload().await });
        }
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

    /// Waits until no reload is pending; `false` when `timeout` passed first.
    pub async fn wait_for_reload(&self, timeout: Duration) -> bool {
        let mut reloading = self.shared.reloading.subscribe();
        tokio::time::timeout(timeout, reloading.wait_for(|busy| !busy))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }

    /// Whether an image needing `image_ram`/`image_vram` would stop the LLM now.
    pub fn would_need_offload(&self, image_ram: u64, image_vram: u64) -> OffloadPrediction {
        let usage = self.llm_usage();
        let (llm_ram, llm_vram) = usage.iter().fold((0, 0), |sum, one| {
            (sum.0 + one.ram_bytes, sum.1 + one.vram_bytes)
        });
        let sample = self.shared.memory.sample();
        let bottleneck_is_vram = sample.vram_total_bytes > 0 && (llm_vram > 0 || image_vram > 0);
        let (used, total) = if bottleneck_is_vram {
            (llm_vram + image_vram, sample.vram_total_bytes)
        } else {
            (llm_ram + image_ram, sample.ram_total_bytes)
        };
        #[allow(clippy::cast_precision_loss)]
        let projected_share = if total == 0 {
            f64::INFINITY
        } else {
            used as f64 / total as f64
        };
        let needs_offload = !usage.is_empty() && projected_share > self.policy().threshold;
        let pause = lock(&self.shared.state)
            .last_pause
            .unwrap_or(Duration::from_secs(2));
        let answers_in_progress = if needs_offload {
            self.shared.llama.requests_in_flight()
        } else {
            0
        };
        #[allow(clippy::cast_precision_loss)]
        let drain_wait_secs = if answers_in_progress > 0 {
            self.policy().drain_ms as f64 / 1000.0
        } else {
            0.0
        };
        OffloadPrediction {
            needs_offload,
            projected_share,
            bottleneck_is_vram,
            predicted_pause_secs: if needs_offload {
                pause.as_secs_f64()
            } else {
                0.0
            },
            answers_in_progress,
            drain_wait_secs,
        }
    }

    /// What each LLM server holding memory now counts in the decision.
    pub fn llm_usage(&self) -> Vec<InstanceUsage> {
        self.running_instances()
            .iter()
            .map(InstanceUsage::of)
            .collect()
    }

    /// The LLM servers that hold memory now (also while starting or restarting).
    fn running_instances(&self) -> Vec<InstanceStatus> {
        self.shared
            .llama
            .list()
            .into_iter()
            .filter(|status| is_up(status.state))
            .collect()
    }

    fn emit(&self, event: OrchestratorEvent) {
        self.shared.events.emit(EngineEvent::Orchestrator(event));
    }

    /// Saves and stops every running server, held stopped for `holder`.
    async fn offload(&self, reason: String, holder: RoomHolder) -> Result<()> {
        let running = self.running_instances();
        let mut saved = Vec::new();
        let llama = &self.shared.llama;
        let decided = Instant::now();
        // Chat waits from here: the pause a client sees begins with the drain.
        let decided_at_ms = self.shared.clock.now_ms();
        for status in &running {
            // Clients' requests wait from here until the server is healthy again.
            llama.hold_requests(&status.spec.name);
        }
        // The requests being answered finish first (all servers drain at once).
        let drain_deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.policy().drain_ms);
        let cut_requests = futures_util::future::join_all(
            running
                .iter()
                .map(|status| llama.drain_requests(&status.spec.name, drain_deadline)),
        )
        .await
        .into_iter()
        .sum();
        let drain_ms = millis(decided.elapsed());
        let started = Instant::now();
        for status in running {
            let InstanceUsage {
                ram_bytes,
                vram_bytes,
                ..
            } = InstanceUsage::of(&status);
            let mut pinned = status.spec.clone();
            if let Some(running) = &status.running {
                // Back exactly as it ran: same port, same final configuration.
                pinned.port = Some(running.port);
                pinned.config = running.config.clone();
                pinned.threads = running.threads;
                pinned.auto = AutoFields {
                    gpu_layers: false,
                    context: false,
                };
            }
            if let Err(error) = self.shared.llama.pause(&status.spec.name).await {
                self.shared.llama.release_requests(&status.spec.name);
                return Err(error);
            }
            saved.push(SavedInstance {
                spec: status.spec,
                pinned,
                ram_bytes,
                vram_bytes,
            });
        }
        let names: Vec<String> = saved.iter().map(|s| s.spec.name.clone()).collect();
        let stop_ms = millis(started.elapsed());
        {
            let mut state = lock(&self.shared.state);
            state.phase = OrchestratorPhase::Offloaded;
            state.saved = Some(SavedState {
                instances: saved,
                offloaded_at_ms: decided_at_ms,
                reload_error: None,
            });
            state.holders.insert(holder);
        }
        self.emit(OrchestratorEvent::Offloaded {
            instances: names,
            reason,
            drain_ms,
            cut_requests,
            stop_ms,
        });
        Ok(())
    }

    /// Brings the saved servers back: waits for the memory, then starts them with
    /// retries; on final failure the saved state stays, with the error.
    async fn reload(&self) {
        let Some(saved) = self.saved_state() else {
            self.shared.reloading.send_replace(false);
            return;
        };
        let policy = self.policy();
        let names: Vec<String> = saved
            .instances
            .iter()
            .map(|s| s.spec.name.clone())
            .collect();
        let (need_ram, need_vram) = saved
            .instances
            .iter()
            .fold((0, 0), |a, s| (a.0 + s.ram_bytes, a.1 + s.vram_bytes));
        let waiting_since = Instant::now();
        self.wait_for_memory(need_ram, need_vram, &policy).await;
        let memory_wait_ms = millis(waiting_since.elapsed());
        self.set_phase(OrchestratorPhase::Reloading);

        let began = Instant::now();

        let mut backoff = Duration::from_millis(policy.reload_backoff_ms);
        let mut last_error = None;
        for attempt in 1..=policy.reload_attempts.max(1) {
            self.emit(OrchestratorEvent::Reloading {
                instances: names.clone(),
                attempt,
            });
            match self.start_saved(&saved).await {
                Ok(()) => {
                    let paused_ms = self
                        .shared
                        .clock
                        .now_ms()
                        .saturating_sub(saved.offloaded_at_ms);
                    {
                        let mut state = lock(&self.shared.state);
                        state.saved = None;
                        state.phase = OrchestratorPhase::Idle;
                        state.last_pause = Some(Duration::from_millis(paused_ms));
                    }
                    self.shared.reloading.send_replace(false);
                    self.emit(OrchestratorEvent::Reloaded {
                        instances: names,
                        paused_ms,
                        memory_wait_ms,
                        start_ms: millis(began.elapsed()),
                    });
                    return;
                }
                Err(error) => {
                    let retry = error.code() == ErrorCode::InsufficientResources
                        || error.code() == ErrorCode::PortInUse;
                    last_error = Some(error.report());
                    if !retry {
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        let error = last_error.unwrap_or_else(|| ErrorReport {
            code: ErrorCode::Internal,
            message: "the reload did not run".into(),
            suggestion: String::new(),
        });
        {
            let mut state = lock(&self.shared.state);
            state.phase = OrchestratorPhase::ReloadFailed;
            if let Some(saved) = &mut state.saved {
                saved.reload_error = Some(error.clone());
            }
        }
        // Nobody brings them back now: waiting clients get the reason.
        for name in &names {
            self.shared.llama.release_requests(name);
        }
        self.shared.reloading.send_replace(false);
        self.emit(OrchestratorEvent::ReloadFailed {
            instances: names,
            error,
        });
    }

    /// Polls the fresh free memory until the servers fit again, or the deadline.
    async fn wait_for_memory(&self, ram: u64, vram: u64, policy: &OrchestratorPolicy) {
        let deadline = Instant::now() + Duration::from_millis(policy.memory_wait_ms);
        loop {
            let sample = self.shared.memory.sample();
            let ram_ok = sample.ram_free_bytes >= ram;
            let vram_ok = vram == 0 || sample.vram_free_bytes >= vram;
            if (ram_ok && vram_ok) || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(policy.poll_ms.max(1))).await;
        }
    }

    fn reload_pending(&self) -> bool {
        *self.shared.reloading.borrow()
    }

    /// The longest a reload can take: the memory wait and every attempt's backoff,
    /// plus a load per attempt.
    fn reload_bound(&self) -> Duration {
        let policy = self.policy();
        let attempts = policy.reload_attempts.max(1);
        let backoff = policy
            .reload_backoff_ms
            .saturating_mul((1u64 << attempts.min(16)).saturating_sub(1));
        let loads = u64::from(attempts).saturating_mul(
            self.shared
                .llama
                .policy()
                .health
                .load_timeout
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
        );
        Duration::from_millis(
            policy
                .memory_wait_ms
                .saturating_add(backoff)
                .saturating_add(loads),
        )
    }

    /// After a reload, waits until the requests that waited for the LLM have been
    /// answered (at most `chat_turn_ms`), so a long image queue cannot starve chat.
    async fn give_chat_its_turn(&self) {
        let policy = self.policy();
        let deadline = Instant::now() + Duration::from_millis(policy.chat_turn_ms);
        while self.shared.llama.requests_busy() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(policy.poll_ms.max(1))).await;
        }
    }

    async fn start_saved(&self, saved: &SavedState) -> Result<()> {
        let llama = &self.shared.llama;
        for instance in &saved.instances {
            let name = &instance.spec.name;
            let up = llama.status(name).is_ok_and(|status| is_up(status.state));
            if up {
                continue;
            }
            llama.update(instance.pinned.clone())?;
            let started = llama.start(name).await;
            // The person's own specification applies again at the next start.
            llama.update(instance.spec.clone())?;
            started?;
        }
        Ok(())
    }
}

impl GenerationGate for Orchestrator {
    fn open<'a>(&'a self, first: &'a GateRequest) -> BoxFuture<'a, Result<GateDecision>> {
        Box::pin(async move {
            if self.reload_pending() {
                // The LLM is on its way back (after a yielded window, say): let it
                // arrive before the chat that waited for it gets its turn.
                self.wait_for_reload(self.reload_bound()).await;
            }
            if std::mem::take(&mut lock(&self.shared.state).yielded) {
                self.give_chat_its_turn().await;
            }
            let (ram, vram) = (first.estimate.ram_bytes, first.estimate.vram_bytes);
            let made_room_elsewhere = self.ask_elsewhere_for_room(ram, vram).await;
            match self.hold_room(RoomHolder::OwnWindow, ram, vram).await {
                Ok(offloaded_here) => Ok(GateDecision {
                    release_after: offloaded_here || made_room_elsewhere,
                }),
                Err(error) => {
                    // No window after all, and `close` comes only after one.
                    self.close(&GateOutcome::default()).await;
                    Err(error)
                }
            }
        })
    }

    fn should_yield(&self) -> bool {
        let Some(saved) = self.saved_state() else {
            return false;
        };
        let window_ms = self
            .shared
            .clock
            .now_ms()
            .saturating_sub(saved.offloaded_at_ms);
        let waiting_requests = self.shared.llama.requests_waiting();
        let yielded = saved.reload_error.is_none()
            && waiting_requests > 0
            && window_ms >= self.policy().max_window_ms
            && !self.held_for_other_processes();
        if yielded {
            lock(&self.shared.state).yielded = true;
            self.emit(OrchestratorEvent::WindowYielded {
                window_ms,
                waiting_requests,
            });
        }
        yielded
    }

    fn close<'a>(&'a self, _outcome: &'a GateOutcome) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.release_room(RoomHolder::OwnWindow);
            let made_room = std::mem::take(&mut lock(&self.shared.state).room_made_elsewhere);
            if let Some(elsewhere) = self.servers_elsewhere().filter(|_| made_room) {
                elsewhere.room_no_longer_needed().await;
            }
        })
    }
}

impl Orchestrator {
    /// Asks the other process (if any) to stop its servers for this image; an
    /// unreachable one is said in the log and otherwise ignored (it may have just
    /// ended; its servers then ended with it).
    async fn ask_elsewhere_for_room(&self, image_ram: u64, image_vram: u64) -> bool {
        let Some(elsewhere) = self.servers_elsewhere() else {
            return false;
        };
        let made = match elsewhere.make_room(image_ram, image_vram).await {
            Ok(made) => made,
            Err(error) => {
                tracing::warn!(problem = %error.message, "could not ask the other Switchyard process to make room for an image");
                false
            }
        };
        lock(&self.shared.state).room_made_elsewhere = made;
        made
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
