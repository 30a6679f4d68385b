//! The engine handle that every front end drives.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use serde::Serialize;
use ts_rs::TS;

use crate::binaries::BinaryManager;
use crate::clock::{Clock, SystemClock};
use crate::errors::{EngineError, Result};
use crate::events::{EngineEvent, EventBus};
use crate::llama::LlamaManager;
use crate::models::hub::{self, HubFile};
use crate::models::{self, AddModel, ModelLocation, ModelStore, RemoteModel};
use crate::orchestrator::Orchestrator;
use crate::paths::{self, DataLayout};
use crate::services::{EngineStatus, ServiceKind, ServiceState, StatusBoard};
use crate::settings::Settings;
use crate::system::{HostProbe, SystemInfo, SystemMonitor, SystemProbe, SystemSample};
use environment::EngineEnvironment;
use settings::{apply_binaries_mirror, apply_orchestrator_settings, apply_slot_saving};

mod attached;
mod environment;
mod first_run;
mod headless;
mod images;
mod llm;
mod model_use;
mod monitor;
mod router;
mod settings;
mod setup;
mod support;
pub use headless::HEADLESS_INSTANCES_FILE;
pub use images::ImageServerConfig;
pub use monitor::{ImageServerStatus, NextImagePrediction, OrchestratorStatus, NEXT_IMAGE_SIZE};

/// What the engine is built from. Tests pass a temporary folder, a fake probe and a
/// manual clock.
#[derive(Debug, Clone)]
pub struct EngineDeps {
    /// A data folder that beats the setting (the `SWITCHYARD_DATA_DIR` variable,
    /// or a test's temporary folder).
    pub data_dir_override: Option<PathBuf>,
    /// Where `settings.json` lives (kept apart from the data folder, which is itself
    /// a setting).
    pub config_dir: PathBuf,
    pub settings: Settings,
    pub probe: Arc<dyn SystemProbe>,
    pub clock: Arc<dyn Clock>,
}

impl EngineDeps {
    /// The real machine, with the data folder resolved from the environment
    /// override, then the settings, then the platform default.
    pub fn for_host(settings: Settings) -> Result<Self> {
        Ok(Self {
            data_dir_override: std::env::var_os(paths::DATA_DIR_ENV).map(Into::into),
            config_dir: paths::resolve_config_dir(
                std::env::var_os(paths::CONFIG_DIR_ENV).map(Into::into),
            ),
            settings,
            probe: Arc::new(HostProbe::for_this_machine()?),
            clock: Arc::new(SystemClock),
        })
    }
}

/// Version, builds and folders of the running app: the About box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct AppInfo {
    pub version: String,
    /// The engine crate's own version (the app and engine ship together, but a
    /// report must say both).
    pub engine_version: String,
    /// The pinned llama.cpp and stable-diffusion.cpp releases (`repo tag`).
    pub llama_cpp_release: Option<String>,
    pub sd_release: Option<String>,
    pub license: String,
    pub homepage: String,
    pub data_dir: String,
    pub config_dir: String,
    pub logs_dir: String,
    /// Where "Report a problem" writes its zip files.
    pub reports_dir: String,
}

/// A cheap-to-clone handle on the one engine of this process.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    layout: DataLayout,
    system: SystemMonitor,
    events: EventBus,
    settings: RwLock<Settings>,
    data_dir_override: Option<PathBuf>,
    config_dir: PathBuf,
    /// Both services' states; the llama-server manager and the image server set
    /// theirs, and it announces each change.
    status: StatusBoard,
    shutdown: CancellationToken,
    models: ModelStore,
    binaries: BinaryManager,
    llama: LlamaManager,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    startup_warnings: Vec<crate::errors::ErrorReport>,
    images: images::ImageSlot,
    orchestrator: Orchestrator,
    /// The Switchyard endpoint: one address, the request's `model` picks the model.
    router: crate::orchestrator::router::Router,
    /// The daemon of this data folder, when the app attaches to one.
    daemon: attached::Attachment,
}

impl Engine {
    /// Creates the data folder layout and the engine. Fails if the data folder is
    /// unusable (the person must pick another before anything else can work).
    pub fn new(deps: EngineDeps) -> Result<Self> {
        deps.settings.validate()?;
        let data_dir = paths::resolve_data_dir(
            deps.data_dir_override.clone(),
            deps.settings.data_dir.as_deref(),
        );
        let layout = DataLayout::create(data_dir)?;
        let events = EventBus::default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(20))
            .build()
            .map_err(|error| EngineError::Network {
                url: String::new(),
                problem: error.to_string(),
            })?;
        let mut startup_warnings = Vec::new();
        let models = match ModelStore::open(
            layout.models(),
            &layout.state(),
            http.clone(),
            events.emitter(),
            deps.clock.clone(),
        ) {
            Ok(models) => models,
            // A damaged catalog (kept aside by `open`) must not stop the app: start
            // empty and say so.
            Err(error @ EngineError::CorruptState { .. }) => {
                startup_warnings.push(error.report());
                ModelStore::open_empty(
                    layout.models(),
                    &layout.state(),
                    http.clone(),
                    events.emitter(),
                    deps.clock.clone(),
                )
            }
            Err(error) => return Err(error),
        };
        let binaries = BinaryManager::new(layout.binaries(), http.clone(), events.emitter());
        binaries.set_pid_dir(layout.state());
        apply_binaries_mirror(&binaries, &deps.settings);
        let daemon = attached::Attachment::new(layout.root());
        let status = StatusBoard::new(events.emitter());
        let inner = Arc::new_cyclic(|engine| {
            // The manager asks the engine for the binary and free memory at each
            // start; a weak link, so the engine still drops when its last handle goes.
            let environment = Arc::new(EngineEnvironment {
                engine: engine.clone(),
            });
            let opened = LlamaManager::open(
                &layout.state(),
                &layout.logs(),
                events.emitter(),
                status.clone(),
                deps.clock.clone(),
                environment.clone(),
            );
            startup_warnings.extend(opened.warning);
            opened.manager.set_slot_folder(layout.kv_cache());
            apply_slot_saving(&opened.manager, &deps.settings);
            opened
                .manager
                .allowed_origins()
                .set(&deps.settings.allowed_origins);
            let orchestrator = Orchestrator::new(
                opened.manager.clone(),
                environment,
                events.emitter(),
                deps.clock.clone(),
            );
            apply_orchestrator_settings(&orchestrator, &deps.settings);
            // The daemon's servers, when one runs on this data folder: an image made
            // here asks it to make room (the daemon itself finds no other).
            orchestrator
                .set_servers_elsewhere(Arc::new(crate::control::DaemonServers::new(daemon.link())));
            let router =
                crate::orchestrator::router::Router::new(orchestrator.clone(), deps.clock.clone());
            router.set_catalog(Arc::new(router::EngineCatalog {
                engine: engine.clone(),
            }));
            router::apply_router_settings(&router, &deps.settings);
            router.set_api_key(crate::secrets::read_key(&router::endpoint_api_key_file(
                &layout,
            )));
            Inner {
                system: SystemMonitor::new(deps.probe, deps.clock.clone()),
                events,
                models,
                binaries,
                llama: opened.manager,
                http,
                clock: deps.clock.clone(),
                startup_warnings,
                // Every image passes the orchestrator: there is no unsafe path.
                images: images::ImageSlot::new(
                    Arc::new(orchestrator.clone()),
                    &images::image_api_key_file(&layout),
                ),
                orchestrator,
                router,
                daemon,
                settings: RwLock::new(deps.settings),
                data_dir_override: deps.data_dir_override,
                config_dir: deps.config_dir,
                layout,
                status,
                shutdown: CancellationToken::new(),
            }
        });
        Ok(Self { inner })
    }

    /// The llama-server instances.
    pub fn llama(&self) -> &LlamaManager {
        &self.inner.llama
    }

    /// LLM offload and reload around image generation.
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.inner.orchestrator
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.events.subscribe()
    }

    pub fn layout(&self) -> &DataLayout {
        &self.inner.layout
    }

    pub fn config_dir(&self) -> &std::path::Path {
        &self.inner.config_dir
    }

    /// Problems met while starting that the person should hear about.
    pub fn startup_warnings(&self) -> &[crate::errors::ErrorReport] {
        &self.inner.startup_warnings
    }

    pub fn models(&self) -> &ModelStore {
        &self.inner.models
    }

    /// A model file's metadata from its header, fetched with range requests.
    pub async fn inspect_model(&self, location: &ModelLocation) -> Result<RemoteModel> {
        let system = self.system_info();
        models::add::inspect(
            &self.inner.http,
            &self.settings().hub_url,
            location,
            system.recommendation.suggested_context,
            crate::system::machine_budget(&system),
            crate::system::machine_bandwidth(&system),
        )
        .await
    }

    /// The files of a Hugging Face repository, for the file picker.
    pub async fn hub_files(&self, repo: &str, revision: &str) -> Result<Vec<HubFile>> {
        hub::list_files(&self.inner.http, &self.settings().hub_url, repo, revision).await
    }

    /// Starts downloading a model; returns its id.
    pub async fn add_model(&self, add: AddModel) -> Result<String> {
        let request =
            models::add::download_request(&self.inner.http, &self.settings().hub_url, add).await?;
        self.inner.models.start_download(request)
    }

    /// The llama-server and sd setup: pin, mirror, test limits.
    pub fn binaries(&self) -> &BinaryManager {
        &self.inner.binaries
    }

    pub fn system_info(&self) -> SystemInfo {
        let usable = self.settings().usable_tokens_per_second;
        self.inner.system.info(f64::from(usable))
    }

    pub fn system_sample(&self) -> SystemSample {
        self.inner.system.sample()
    }

    /// Both services; the LLM's from its instances (see `llm_service_state`). Each
    /// change comes as `StatusChanged` too.
    pub fn status(&self) -> EngineStatus {
        self.inner.status.get()
    }

    /// The browser origins every listener of this engine lets in (the
    /// `allowed_origins` setting, applied at once when it changes).
    pub fn allowed_origins(&self) -> crate::net::guard::AllowedOrigins {
        self.inner.llama.allowed_origins()
    }

    /// Emits a [`SystemSample`] every `interval` until shutdown. The shell runs this
    /// on its async runtime; the engine owns no threads of its own.
    pub async fn run_monitor(&self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.inner.shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    let engine = self.clone();
                    // /proc and NVML reads block briefly; keep them off the async workers.
                    match tokio::task::spawn_blocking(move || engine.system_sample()).await {
                        Ok(sample) => self.inner.events.emit(EngineEvent::SystemSample(sample)),
                        Err(error) => tracing::warn!(%error, "system sample failed"),
                    }
                }
            }
        }
    }

    /// Stops everything the engine runs. Safe to call more than once.
    pub async fn shutdown(&self) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        self.inner.events.emit(EngineEvent::ShuttingDown);
        self.inner.shutdown.cancel();
        self.inner.router.close().await;
        self.inner.llama.shutdown().await;
        self.stop_image_server().await;
        self.stop_standing_image_api().await;
        // The instances said stopped as they ended; an image server that failed to
        // start is not failing any more either.
        self.inner
            .status
            .set(ServiceKind::Diffusion, ServiceState::Stopped);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }
}
