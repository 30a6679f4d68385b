//! The Switchyard endpoint: one OpenAI-compatible address where a request's `model`
//! picks the model. A model that is not loaded is started on the first request
//! that names it (once, however many ask), after the arbiter made room for it by
//! measured memory — unloading idle models, least recently used first, never a
//! pinned one, a busy one only once its answers are done. Models the router loaded
//! are unloaded after their idle time (or the request's `keep_alive`). Requests go
//! through each instance's own endpoint machinery, so a pause for an image, a
//! restart or a load holds them exactly as it holds the instance's own clients.

mod catalog;
mod http;
mod idle;
mod keep_alive;
mod placement;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

pub use catalog::{CatalogModel, ModelCatalog, ModelState, RoutedModel};
pub use keep_alive::KeepAlive;

use crate::{is_up, InstanceUsage, Orchestrator, OrchestratorEvent};
use switchyard_base::clock::Clock;
use switchyard_base::errors::{EngineError, ErrorReport, Result};
use switchyard_base::locks::{lock, read, write};
use switchyard_llama::{InstanceState, InstanceStatus, LlamaManager};

/// The endpoint's port unless configured: clear of llama-server's 8080, the image
/// API's 8081, Ollama's 11434 and LM Studio's 1234.
pub const DEFAULT_ROUTER_PORT: u16 = 8434;

/// What the router does when a model would fit whole on the GPU only after
/// unloading others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum GpuShortfall {
    /// Unload other models (least recently used first) until it fits whole on the
    /// GPU: a model split with the CPU answers several times slower, for as long
    /// as it stays loaded.
    #[default]
    Evict,
    /// Load it with the GPU layers that fit beside the loaded models; the rest
    /// runs on the CPU (RAM is still made room for).
    SplitWithCpu,
}

/// How the router places and unloads models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RouterPolicy {
    /// Seconds without requests after which a model the router loaded is
    /// unloaded, unless the model or the request says otherwise; 0: never.
    #[ts(type = "number")]
    pub idle_unload_secs: u64,
    /// How long a load waits for a model it must unload to finish its answers;
    /// then the request that needed the room gets 503 with the reason.
    #[ts(type = "number")]
    pub eviction_wait_ms: u64,
    pub gpu_shortfall: GpuShortfall,
    /// How often idle models are looked for.
    #[ts(type = "number")]
    pub idle_check_ms: u64,
}

impl Default for RouterPolicy {
    fn default() -> Self {
        Self {
            idle_unload_secs: 15 * 60,
            eviction_wait_ms: 30_000,
            gpu_shortfall: GpuShortfall::Evict,
            idle_check_ms: 5_000,
        }
    }
}

/// Why a request could not be routed: a stable code, words for people, what to
/// do, and the HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteFailure {
    pub status: u16,
    pub report: ErrorReport,
    /// Seconds to tell the client to wait, when trying again may work.
    pub retry_after: Option<u64>,
}

impl RouteFailure {
    fn of(error: &EngineError) -> Self {
        let retry_after = matches!(
            error,
            EngineError::TimedOut { .. } | EngineError::InsufficientResources { .. }
        )
        .then_some(5);
        let status = match error {
            EngineError::NotFound { .. } => 404,
            EngineError::InvalidInput { .. } => 400,
            _ => 503,
        };
        Self {
            status,
            report: error.report(),
            retry_after,
        }
    }
}

/// The router's own view of one instance.
#[derive(Debug, Default)]
struct Slot {
    /// Requests routed to it and not yet answered (held ones included).
    active: usize,
    last_used_ms: u64,
    /// Being unloaded: new requests wait for it to load again.
    evicting: bool,
    /// The router started it (idle unloading applies).
    loaded_by_router: bool,
    /// The last request's `keep_alive`, until the next request.
    keep_alive: Option<KeepAlive>,
    /// What its last load was planned to need (RAM, VRAM).
    planned: Option<(u64, u64)>,
    /// Pinned or unpinned through the router: beats the instance's setting, which
    /// the daemon reloads from its instance files.
    pinned: Option<bool>,
}

impl Slot {
    fn pinned(slot: Option<&Self>, status: &InstanceStatus) -> bool {
        slot.and_then(|slot| slot.pinned)
            .unwrap_or(status.spec.pinned)
    }
}

/// A load under way: every request for the model waits for its outcome.
type Flight = watch::Sender<Option<std::result::Result<(), RouteFailure>>>;

#[derive(Debug)]
struct Shared {
    orchestrator: Orchestrator,
    llama: LlamaManager,
    clock: Arc<dyn Clock>,
    catalog: RwLock<Option<Arc<dyn ModelCatalog>>>,
    policy: Mutex<RouterPolicy>,
    slots: Mutex<BTreeMap<String, Slot>>,
    /// Woken when a request ends (an eviction waits for none to be left) and
    /// when a `keep_alive` of 0 asks for an unload.
    slot_changed: Notify,
    flights: Mutex<BTreeMap<String, Arc<Flight>>>,
    serving: Mutex<Option<Serving>>,
    closed: CancellationToken,
    /// The key clients must send (`Authorization: Bearer <key>`), when one is
    /// set: always, when the endpoint serves other machines.
    api_key: RwLock<Option<String>>,
    /// The idle-unload task runs (started with the first request or `serve`, on
    /// the caller's runtime).
    idle_task: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct Serving {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

/// The router; cheap to clone.
#[derive(Debug, Clone)]
pub struct Router {
    shared: Arc<Shared>,
}

/// A request routed to an instance: counted until dropped (its answer sent).
#[derive(Debug)]
pub struct Routed {
    router: Router,
    pub instance: String,
}

impl Drop for Routed {
    fn drop(&mut self) {
        let now = self.router.shared.clock.now_ms();
        if let Some(slot) = lock(&self.router.shared.slots).get_mut(&self.instance) {
            slot.active = slot.active.saturating_sub(1);
            slot.last_used_ms = now;
        }
        self.router.shared.slot_changed.notify_waiters();
    }
}

impl Router {
    /// A router placing models with `orchestrator`'s memory, threshold and event
    /// log. From its first request it unloads idle models (until [`Self::close`]).
    pub fn new(orchestrator: Orchestrator, clock: Arc<dyn Clock>) -> Self {
        let llama = orchestrator.shared.llama.clone();
        Self {
            shared: Arc::new(Shared {
                orchestrator,
                llama,
                clock,
                catalog: RwLock::new(None),
                policy: Mutex::new(RouterPolicy::default()),
                slots: Mutex::new(BTreeMap::new()),
                slot_changed: Notify::new(),
                flights: Mutex::new(BTreeMap::new()),
                serving: Mutex::new(None),
                closed: CancellationToken::new(),
                idle_task: std::sync::atomic::AtomicBool::new(false),
                api_key: RwLock::new(None),
            }),
        }
    }

    /// Starts looking for idle models, once.
    fn ensure_idle_task(&self) {
        if !self
            .shared
            .idle_task
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            tokio::spawn(idle::unload_idle_models(self.clone()));
        }
    }

    pub fn set_catalog(&self, catalog: Arc<dyn ModelCatalog>) {
        *write(&self.shared.catalog) = Some(catalog);
    }

    /// Sets (or, with `None`, removes) the key every client must send; applies
    /// at once.
    pub fn set_api_key(&self, key: Option<String>) {
        *write(&self.shared.api_key) = key.filter(|key| !key.is_empty());
    }

    pub fn api_key_is_set(&self) -> bool {
        read(&self.shared.api_key).is_some()
    }

    /// Whether `presented` is the key (always, when none is set).
    fn admits(&self, presented: Option<&str>) -> bool {
        let key = read(&self.shared.api_key);
        let Some(key) = key.as_deref() else {
            return true;
        };
        presented.is_some_and(|presented| {
            switchyard_base::secrets::same_secret(presented.as_bytes(), key.as_bytes())
        })
    }

    pub fn policy(&self) -> RouterPolicy {
        *lock(&self.shared.policy)
    }

    pub fn set_policy(&self, policy: RouterPolicy) {
        *lock(&self.shared.policy) = policy;
        self.shared.slot_changed.notify_waiters();
    }

    fn catalog_models(&self) -> Vec<CatalogModel> {
        read(&self.shared.catalog)
            .as_ref()
            .map(|catalog| catalog.language_models())
            .unwrap_or_default()
    }

    /// Every model the endpoint answers for: each installed language model, then
    /// each instance of a file outside the store.
    pub fn models(&self) -> Vec<RoutedModel> {
        let instances = self.shared.llama.list();
        let slots = lock(&self.shared.slots);
        let mut models = Vec::new();
        for model in self.catalog_models() {
            let of_model: Vec<&InstanceStatus> = instances
                .iter()
                .filter(|status| status.spec.model_id.as_deref() == Some(model.id.as_str()))
                .collect();
            let serving = pick_instance(&model.id, &of_model);
            models.push(
                self.describe(
                    model.id.clone(),
                    model.name.clone(),
                    model.size_bytes,
                    serving,
                    of_model
                        .iter()
                        .map(|status| status.spec.name.clone())
                        .collect(),
                    &slots,
                ),
            );
        }
        let installed: Vec<String> = models.iter().map(|model| model.id.clone()).collect();
        for status in &instances {
            let of_store = status
                .spec
                .model_id
                .as_ref()
                .is_some_and(|id| installed.contains(id));
            if !of_store {
                let size = std::fs::metadata(&status.spec.model_path).map_or(0, |meta| meta.len());
                models.push(self.describe(
                    status.spec.name.clone(),
                    status.spec.model_key(),
                    size,
                    Some(status),
                    Vec::new(),
                    &slots,
                ));
            }
        }
        models
    }

    #[allow(clippy::too_many_arguments)]
    fn describe(
        &self,
        id: String,
        name: String,
        size_bytes: u64,
        serving: Option<&InstanceStatus>,
        aliases: Vec<String>,
        slots: &BTreeMap<String, Slot>,
    ) -> RoutedModel {
        let slot = serving.and_then(|status| slots.get(&status.spec.name));
        let state = serving.map_or(ModelState::Unloaded, |status| {
            state_of(status, slot.is_some_and(|slot| slot.evicting))
        });
        let (ram_bytes, vram_bytes) = match serving {
            Some(status) if is_up(status.state) => {
                let usage = InstanceUsage::of(status);
                (Some(usage.ram_bytes), Some(usage.vram_bytes))
            }
            _ => slot
                .and_then(|slot| slot.planned)
                .map_or((None, None), |(ram, vram)| (Some(ram), Some(vram))),
        };
        let unload_at_ms = match (serving, slot) {
            (Some(status), Some(slot)) if state == ModelState::Loaded && slot.active == 0 => self
                .idle_limit_ms(status, slot)
                .map(|limit| slot.last_used_ms.saturating_add(limit)),
            _ => None,
        };
        RoutedModel {
            id,
            name,
            instance: serving.map(|status| status.spec.name.clone()),
            aliases,
            state,
            pinned: serving.is_some_and(|status| Slot::pinned(slot, status)),
            idle_unload_secs: serving.and_then(|status| status.spec.idle_unload_secs),
            ram_bytes,
            vram_bytes,
            size_bytes,
            requests: slot.map_or(0, |slot| slot.active as u64),
            last_used_ms: slot.map(|slot| slot.last_used_ms).filter(|ms| *ms > 0),
            unload_at_ms,
        }
    }

    /// The instance that answers for `model` (an id, or an instance's name),
    /// made from the installed model on its first use. `NOT_FOUND` names the
    /// models there are.
    pub fn resolve(&self, model: &str) -> Result<String> {
        let instances = self.shared.llama.list();
        let catalog = self.catalog_models();
        if let Some(installed) = catalog.iter().find(|installed| installed.id == model) {
            let of_model: Vec<&InstanceStatus> = instances
                .iter()
                .filter(|status| status.spec.model_id.as_deref() == Some(model))
                .collect();
            if let Some(status) = pick_instance(model, &of_model) {
                return Ok(status.spec.name.clone());
            }
            return self.create_instance_for(&installed.id, &instances);
        }
        if instances.iter().any(|status| status.spec.name == model) {
            return Ok(model.to_owned());
        }
        let known = self.models().into_iter().map(|model| model.id).collect();
        Err(unknown_model(model, known))
    }

    fn create_instance_for(&self, model_id: &str, instances: &[InstanceStatus]) -> Result<String> {
        let catalog = read(&self.shared.catalog)
            .clone()
            .ok_or_else(|| EngineError::Internal {
                problem: "the router has no model catalog".into(),
            })?;
        let base = catalog::instance_name_for(model_id);
        let taken = |name: &str| instances.iter().any(|status| status.spec.name == name);
        let name = std::iter::once(base.clone())
            .chain((2..).map(|n| format!("{base}-{n}")))
            .find(|name| !taken(name))
            .unwrap_or(base);
        match catalog.create_instance(&name, model_id) {
            Ok(status) => Ok(status.spec.name),
            // Made meanwhile by a concurrent first request.
            Err(_) if self.shared.llama.status(&name).is_ok() => Ok(name),
            Err(error) => Err(error),
        }
    }

    /// Routes one request to `instance`: loads it first when it is not loaded
    /// (waiting for the load already under way, if any), and counts it until the
    /// returned guard is dropped.
    pub async fn acquire(
        &self,
        instance: &str,
        keep_alive: Option<KeepAlive>,
    ) -> std::result::Result<Routed, RouteFailure> {
        self.ensure_idle_task();
        loop {
            let status = self
                .shared
                .llama
                .status(instance)
                .map_err(|error| RouteFailure::of(&error))?;
            let paused = self.is_paused_for_image(instance);
            {
                let mut slots = lock(&self.shared.slots);
                let slot = slots.entry(instance.to_owned()).or_default();
                if !slot.evicting && (is_up(status.state) || paused) {
                    slot.active += 1;
                    slot.last_used_ms = self.shared.clock.now_ms();
                    if keep_alive.is_some() {
                        slot.keep_alive = keep_alive;
                    }
                    return Ok(Routed {
                        router: self.clone(),
                        instance: instance.to_owned(),
                    });
                }
            }
            self.load_once(instance).await?;
        }
    }

    /// Loads `instance` by hand (the Models tab, `switchyard models load`); like a
    /// request, it may unload others to make room.
    pub async fn load(&self, model: &str) -> Result<RoutedModel> {
        let instance = self.resolve(model)?;
        drop(
            self.acquire(&instance, None)
                .await
                .map_err(|failure| EngineError::from(failure.report))?,
        );
        self.model_of(&instance)
    }

    /// Unloads `model` by hand, once its answers under way are done.
    pub async fn unload(&self, model: &str) -> Result<RoutedModel> {
        let instance = self.resolve(model)?;
        let _one_decision = self.shared.orchestrator.shared.deciding.lock().await;
        self.evict(&instance, "unloaded by hand".into()).await?;
        self.model_of(&instance)
    }

    /// Pins or unpins `model`: a pinned model is never unloaded by the router (nor
    /// paused for an image).
    pub fn set_pinned(&self, model: &str, pinned: bool) -> Result<RoutedModel> {
        let instance = self.resolve(model)?;
        let mut spec = self.shared.llama.status(&instance)?.spec;
        spec.pinned = pinned;
        self.shared.llama.update(spec)?;
        lock(&self.shared.slots)
            .entry(instance.clone())
            .or_default()
            .pinned = Some(pinned);
        self.model_of(&instance)
    }

    fn model_of(&self, instance: &str) -> Result<RoutedModel> {
        self.models()
            .into_iter()
            .find(|model| model.instance.as_deref() == Some(instance) || model.id == instance)
            .ok_or_else(|| EngineError::NotFound {
                what: "model",
                id: instance.to_owned(),
            })
    }

    /// Whether the orchestrator paused `instance` for an image: it comes back on
    /// its own, and its endpoint holds requests meanwhile.
    fn is_paused_for_image(&self, instance: &str) -> bool {
        self.shared.orchestrator.saved_state().is_some_and(|saved| {
            saved
                .instances
                .iter()
                .any(|saved| saved.spec.name == instance)
        })
    }

    /// Joins the load of `instance` under way, or starts one.
    async fn load_once(&self, instance: &str) -> std::result::Result<(), RouteFailure> {
        let (flight, lead) = {
            let mut flights = lock(&self.shared.flights);
            match flights.get(instance) {
                Some(flight) => (flight.clone(), false),
                None => {
                    let flight = Arc::new(watch::channel(None).0);
                    flights.insert(instance.to_owned(), flight.clone());
                    (flight, true)
                }
            }
        };
        let mut outcome = flight.subscribe();
        if lead {
            // Its own task: the load goes on when the request that began it leaves.
            let router = self.clone();
            let name = instance.to_owned();
            tokio::spawn(async move {
                let loaded = router.place_and_start(&name).await;
                lock(&router.shared.flights).remove(&name);
                flight.send_replace(Some(loaded));
            });
        }
        let waited = outcome.wait_for(Option::is_some).await;
        match waited.as_deref() {
            Ok(Some(result)) => result.clone(),
            _ => Err(RouteFailure::of(&EngineError::ShuttingDown)),
        }
    }

    /// One load: under the arbiter's lock (images decide under it too), after any
    /// image window, with room made by measured memory.
    async fn place_and_start(&self, instance: &str) -> std::result::Result<(), RouteFailure> {
        let began = std::time::Instant::now();
        let _one_decision = self.shared.orchestrator.shared.deciding.lock().await;
        self.shared
            .orchestrator
            .wait_for_images(Duration::from_millis(self.policy().eviction_wait_ms))
            .await;
        let status = self
            .shared
            .llama
            .status(instance)
            .map_err(|error| RouteFailure::of(&error))?;
        if is_up(status.state) {
            return Ok(());
        }
        let failed = |error: EngineError| {
            let failure = RouteFailure::of(&error);
            self.shared
                .orchestrator
                .emit(OrchestratorEvent::ModelLoadFailed {
                    instance: instance.to_owned(),
                    error: failure.report.clone(),
                });
            failure
        };
        let catalog = read(&self.shared.catalog).clone();
        if let Some(catalog) = catalog {
            catalog.ensure_runtime().await.map_err(failed)?;
        }
        let (need_ram, need_vram, evicted) = self.make_room(instance).await.map_err(failed)?;
        {
            let mut slots = lock(&self.shared.slots);
            let slot = slots.entry(instance.to_owned()).or_default();
            slot.loaded_by_router = true;
            slot.keep_alive = None;
            slot.planned = Some((need_ram, need_vram));
        }
        let started = self.shared.llama.start(instance).await.map_err(failed)?;
        if let Some(slot) = lock(&self.shared.slots).get_mut(instance) {
            // Most recently used from now: the next load does not take it back.
            slot.last_used_ms = self.shared.clock.now_ms();
        }
        let usage = InstanceUsage::of(&started);
        self.shared
            .orchestrator
            .emit(OrchestratorEvent::ModelLoaded {
                instance: instance.to_owned(),
                reason: if evicted.is_empty() {
                    "requested".to_owned()
                } else {
                    format!("requested; unloaded {} to make room", evicted.join(", "))
                },
                load_ms: crate::millis(began.elapsed()),
                ram_bytes: usage.ram_bytes,
                vram_bytes: usage.vram_bytes,
            });
        Ok(())
    }

    /// Serves the endpoint on `host:port` (0: a free port); moves it when it
    /// listens elsewhere already. `PORT_IN_USE` when taken.
    pub async fn serve(&self, host: &str, port: u16) -> Result<SocketAddr> {
        self.ensure_idle_task();
        http::serve(self, host, port).await
    }

    /// Where the endpoint listens, while it does.
    pub fn address(&self) -> Option<SocketAddr> {
        lock(&self.shared.serving)
            .as_ref()
            .map(|serving| serving.address)
    }

    /// Stops listening and unloading idle models (the app or daemon is closing).
    pub async fn close(&self) {
        self.shared.closed.cancel();
        let serving = lock(&self.shared.serving).take();
        if let Some(serving) = serving {
            serving.stop.cancel();
            let mut task = serving.task;
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// How long `status` may stay idle before it is unloaded, if at all.
    fn idle_limit_ms(&self, status: &InstanceStatus, slot: &Slot) -> Option<u64> {
        if Slot::pinned(Some(slot), status) {
            return None;
        }
        match slot.keep_alive {
            Some(KeepAlive::Forever) => return None,
            Some(KeepAlive::For(ms)) => return Some(ms),
            None => {}
        }
        if !slot.loaded_by_router && status.spec.idle_unload_secs.is_none() {
            // Started by the person: it stays until they stop it.
            return None;
        }
        let secs = status
            .spec
            .idle_unload_secs
            .unwrap_or_else(|| self.policy().idle_unload_secs);
        (secs > 0).then(|| secs.saturating_mul(1000))
    }
}

/// `NOT_FOUND` for `model`, naming the `known` ones.
fn unknown_model(model: &str, known: Vec<String>) -> EngineError {
    EngineError::NotFound {
        what: "model",
        id: format!(
            "{model} (known: {})",
            if known.is_empty() {
                "none: add one in Switchyard's Models tab".to_owned()
            } else {
                known.join(", ")
            }
        ),
    }
}

/// The instance that serves a model: the one named like it, else one that runs,
/// else the first by name.
fn pick_instance<'a>(
    model_id: &str,
    of_model: &[&'a InstanceStatus],
) -> Option<&'a InstanceStatus> {
    of_model
        .iter()
        .find(|status| status.spec.name == catalog::instance_name_for(model_id))
        .or_else(|| of_model.iter().find(|status| is_up(status.state)))
        .or_else(|| of_model.first())
        .copied()
}

fn state_of(status: &InstanceStatus, evicting: bool) -> ModelState {
    match status.state {
        _ if evicting => ModelState::Unloading,
        InstanceState::Healthy | InstanceState::Unhealthy => ModelState::Loaded,
        InstanceState::Starting | InstanceState::Loading | InstanceState::Restarting => {
            ModelState::Loading
        }
        InstanceState::Stopping => ModelState::Unloading,
        _ => ModelState::Unloaded,
    }
}
