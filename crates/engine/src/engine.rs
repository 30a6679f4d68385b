//! The engine handle that every front end drives.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use serde::Serialize;
use ts_rs::TS;

use crate::binaries::manifest::DEFAULT_DOWNLOAD_BASE;
use crate::binaries::{BinaryKind, BinaryManager, BinaryStatus, EnsureBinary, MachineFacts};
use crate::clock::{Clock, SystemClock};
use crate::errors::{EngineError, Result};
use crate::estimate::Budget;
use crate::events::{EngineEvent, EventBus};
use crate::llama::{
    llm_control, InstancePreview, InstanceSpec, InstanceStatus, LaunchEnvironment, LlamaManager,
    LlmAction, LlmControl, DEFAULT_INSTANCE,
};
use crate::locks::{read, write};
use crate::models::hub::{self, HubFile};
use crate::models::{self, AddModel, ModelLocation, ModelStore, RemoteModel};
use crate::orchestrator::{MemorySample, MemorySource, Orchestrator};
use crate::paths::{self, DataLayout};
use crate::services::{EngineStatus, ServiceKind, ServiceState, StatusBoard};
use crate::settings::{Settings, SettingsUpdate};
use crate::system::{HostProbe, SystemInfo, SystemMonitor, SystemProbe, SystemSample};

mod attached;
mod first_run;
mod headless;
mod images;
mod model_use;
mod monitor;
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

/// The largest installed model the binary real test may load by itself.
const REAL_TEST_MODEL_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;

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
        )
        .await
    }

    /// The llama.cpp backend a server would run on: the validated llama-server's
    /// variant, else what this machine's GPUs suggest.
    pub fn llama_backend(&self) -> crate::estimate::Backend {
        use crate::binaries::Variant;
        use crate::estimate::Backend;
        match self
            .binary_status(BinaryKind::LlamaServer)
            .and_then(|status| status.variant)
        {
            Some(Variant::Cuda) => Backend::Cuda,
            Some(Variant::Vulkan) => Backend::Vulkan,
            Some(Variant::Metal) => Backend::Metal,
            Some(_) => Backend::Cpu,
            None => crate::system::machine_budget(&self.system_info()).0,
        }
    }

    /// The memory an installed model needs under `config`, measured where
    /// llama-server already reported it for this model and configuration.
    pub async fn estimate_model(
        &self,
        model_id: &str,
        config: &crate::estimate::LlamaConfig,
    ) -> Result<crate::estimate::LlamaEstimate> {
        let shape = self.model_shape(model_id).await?;
        let planned = crate::estimate::estimate(&shape, config, self.llama_backend());
        Ok(self.llama().calibration().refine(model_id, &planned))
    }

    /// What an instance of an installed model with `config` would run with if
    /// started now: the `auto` fields (and a context of 0) fitted to free memory as
    /// a start would fit them, the estimate of the result, and the reason it would
    /// not start (`INSUFFICIENT_RESOURCES`), if so. The LLM tab shows this live.
    pub async fn preview_instance(
        &self,
        model_id: &str,
        config: &crate::estimate::LlamaConfig,
        auto: crate::estimate::AutoFields,
    ) -> Result<InstancePreview> {
        use crate::estimate::{check_fits, estimate};
        use crate::llama::{plan_memory, Memory};
        let shape = self.model_shape(model_id).await?;
        let backend = self.llama_backend();
        let engine = self.clone();
        let memory = tokio::task::spawn_blocking(move || Memory {
            free: engine.free_budget(),
            suggested_context: engine.system_info().recommendation.suggested_context,
        })
        .await
        .map_err(|error| EngineError::Internal {
            problem: format!("reading free memory: {error}"),
        })?;
        let calibration = self.llama().calibration();
        let mut final_config = config.clone();
        let mut notes = Vec::new();
        let fitted = plan_memory(&shape, &mut final_config, auto, backend, memory, &mut notes);
        let (estimate, problem) = match fitted {
            Ok(planned) => {
                let refined = calibration.refine(model_id, &planned);
                let budget = crate::estimate::Budget {
                    ram_bytes: memory.free.ram_bytes,
                    vram_bytes: if backend == crate::estimate::Backend::Cpu {
                        0
                    } else {
                        memory.free.vram_bytes
                    },
                };
                let problem = check_fits(&shape, &refined, budget)
                    .err()
                    .map(|error| error.report());
                (refined, problem)
            }
            // Nothing fits: show what was asked for, and why it cannot start.
            Err(error) => {
                let asked = estimate(&shape, &final_config, backend);
                (calibration.refine(model_id, &asked), Some(error.report()))
            }
        };
        Ok(InstancePreview {
            estimate,
            notes,
            problem,
            free_ram_bytes: memory.free.ram_bytes,
            free_vram_bytes: memory.free.vram_bytes,
        })
    }

    /// An installed model by id; `field` names the input in the error.
    fn installed_model(
        &self,
        model_id: &str,
        field: &'static str,
    ) -> Result<models::InstalledModel> {
        self.models()
            .models()
            .into_iter()
            .find(|model| model.id == model_id)
            .ok_or_else(|| EngineError::InvalidInput {
                field,
                problem: format!("no installed model `{model_id}`"),
            })
    }

    /// The shape of an installed language model, from its weights' header.
    async fn model_shape(&self, model_id: &str) -> Result<crate::estimate::ModelShape> {
        let model = self.installed_model(model_id, "model")?;
        let first = model
            .files
            .iter()
            .find(|file| file.role == models::FileRole::Weights)
            .or_else(|| model.files.first())
            .ok_or_else(|| EngineError::InvalidInput {
                field: "model",
                problem: format!("`{model_id}` has no files"),
            })?;
        let path = self.models().model_dir(model_id).join(&first.file_name);
        let header = crate::gguf::read_local(&path).await?;
        crate::estimate::ModelShape::from_gguf(&header).map_err(|no_shape| match no_shape {
            crate::estimate::NoShape::NotALanguageModel => EngineError::InvalidInput {
                field: "model",
                problem: format!("`{model_id}` is not a language model"),
            },
            crate::estimate::NoShape::Implausible(problem) => EngineError::InvalidGguf {
                source_name: path.display().to_string(),
                problem,
            },
        })
    }

    /// Free RAM now, and the free VRAM of the GPU with the most (one GPU runs the
    /// model; llama.cpp splits across several only when asked).
    fn free_budget(&self) -> Budget {
        let sample = self.inner.system.sample();
        let vram_bytes = sample
            .gpus
            .iter()
            .filter_map(|gpu| gpu.free_bytes)
            .max()
            .unwrap_or(0);
        Budget {
            ram_bytes: sample.memory.available_bytes,
            vram_bytes,
        }
    }

    /// Creates an llama-server instance. A spec naming an installed model
    /// (`model_id`) gets that model's weights (and projector) paths from the store,
    /// so the window never builds file paths itself.
    pub fn create_instance(&self, spec: InstanceSpec) -> Result<InstanceStatus> {
        let spec = self.with_model_paths(spec)?;
        self.llama().create(spec)
    }

    /// Creates an instance of an installed model with the engine's defaults (auto
    /// port, context and GPU layers fitted at start), so no front end keeps its own
    /// copy of them.
    pub fn create_instance_for_model(&self, name: &str, model_id: &str) -> Result<InstanceStatus> {
        let mut spec = InstanceSpec {
            model_id: Some(model_id.to_owned()),
            ..InstanceSpec::new(name, "")
        };
        // 0: chosen at start from what the model was trained for and what this
        // machine suggests.
        spec.config.context = 0;
        self.create_instance(spec)
    }

    /// Changes an instance's configuration (see [`Self::create_instance`]).
    pub fn update_instance(&self, spec: InstanceSpec) -> Result<InstanceStatus> {
        let spec = self.with_model_paths(spec)?;
        self.llama().update(spec)
    }

    fn with_model_paths(&self, mut spec: InstanceSpec) -> Result<InstanceSpec> {
        let Some(model_id) = spec.model_id.clone() else {
            return Ok(spec);
        };
        let model = self.installed_model(&model_id, "model_id")?;
        if model.kind != models::ModelKind::Llm {
            return Err(EngineError::InvalidInput {
                field: "model_id",
                problem: format!("`{model_id}` is an image model, not a language model"),
            });
        }
        let dir = self.models().model_dir(&model.id);
        let file_of = |role: models::FileRole| {
            model
                .files
                .iter()
                .find(|file| file.role == role)
                .map(|file| dir.join(&file.file_name))
        };
        spec.model_path =
            file_of(models::FileRole::Weights).ok_or_else(|| EngineError::InvalidInput {
                field: "model_id",
                problem: format!("`{model_id}` has no weights file"),
            })?;
        spec.mmproj_path = file_of(models::FileRole::Mmproj);
        Ok(spec)
    }

    /// The first installed language model (by id), which the tray offers when no
    /// instance exists yet.
    fn first_llm_model(&self) -> Option<String> {
        self.models()
            .models()
            .into_iter()
            .filter(|model| model.kind == models::ModelKind::Llm)
            .map(|model| model.id)
            .min()
    }

    /// What the tray's "Start/Stop LLM" entry does now, and its tooltip line.
    pub fn llm_control(&self) -> LlmControl {
        llm_control(&self.llama().list(), self.first_llm_model().as_deref())
    }

    /// The tray's "Start/Stop LLM": stops the default instance when it runs, else
    /// starts it, first creating `default` from the first installed LLM model when
    /// there is no instance at all.
    pub async fn toggle_default_llm(&self) -> Result<InstanceStatus> {
        match self.llm_control().action {
            LlmAction::Stop(name) => self.llama().stop(&name).await,
            LlmAction::Start(name) => self.llama().start(&name).await,
            LlmAction::CreateAndStart { model_id } => {
                let spec = InstanceSpec {
                    name: DEFAULT_INSTANCE.to_owned(),
                    model_id: Some(model_id),
                    ..InstanceSpec::default()
                };
                self.create_instance(spec)?;
                self.llama().start(DEFAULT_INSTANCE).await
            }
            LlmAction::Unavailable => Err(EngineError::InvalidInput {
                field: "model",
                problem: "no language model is installed; add one in the Models tab".into(),
            }),
        }
    }

    /// Starts again the servers that ran when the app last closed, if Settings
    /// ask for it (`restore_llm_servers`). Failures are logged and announced as
    /// state changes; they do not stop the app.
    pub async fn restore_llm_servers(&self) {
        if !self.settings().restore_llm_servers {
            return;
        }
        for (name, outcome) in self.llama().restore().await {
            match outcome {
                Ok(_) => tracing::info!(instance = %name, "llama-server restored"),
                // The daemon (or a foreground command) runs it now: the window
                // shows that owner; nothing failed.
                Err(error @ EngineError::InstanceOwned { .. }) => {
                    tracing::info!(instance = %name, %error, "llama-server left to its owner");
                }
                Err(error) => tracing::warn!(instance = %name, %error, "llama-server not restored"),
            }
        }
    }

    /// Keeps what llama-server reported for a model and configuration, so later
    /// estimates for them are measured ones.
    pub fn record_memory(
        &self,
        model_id: &str,
        estimate: &crate::estimate::LlamaEstimate,
        measured: crate::estimate::MeasuredMemory,
    ) {
        self.llama()
            .record_measurement(model_id, &estimate.config, estimate.backend, measured);
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

    /// A working `kind` binary: the cached one when unchanged, else the first variant
    /// (CUDA, Vulkan, Metal, CPU) that installs and passes its tests, or the user's own
    /// `custom_path` (by default the one Settings name for `kind`). Without
    /// `test_model`, the smallest installed model of the right kind runs the real test;
    /// with none installed, only the basic test runs.
    pub async fn ensure_binary(
        &self,
        kind: BinaryKind,
        mut options: EnsureBinary,
    ) -> Result<BinaryStatus> {
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        if options.custom_path.is_none() {
            options.custom_path = self.custom_binary_path(kind);
        }
        if options.test_model.is_none() {
            options.test_model = self.smallest_model_for(kind);
        }
        let facts = MachineFacts::from_system(&self.system_info());
        let status = self
            .inner
            .binaries
            .ensure(kind, &options, &facts, &self.inner.shutdown)
            .await?;
        if kind == BinaryKind::LlamaServer {
            self.inner.llama.use_binary(status.clone());
        }
        Ok(status)
    }

    /// The `kind` binary in use, as last validated (no test runs): the user's own
    /// when Settings name one (`None` until it has passed its tests), else the
    /// downloaded one.
    pub fn binary_status(&self, kind: BinaryKind) -> Option<BinaryStatus> {
        match self.custom_binary_path(kind) {
            Some(path) => self.inner.binaries.custom_status(kind, &path),
            None => self.inner.binaries.status(kind),
        }
    }

    fn custom_binary_path(&self, kind: BinaryKind) -> Option<PathBuf> {
        read(&self.inner.settings)
            .custom_binary_path(kind)
            .map(Path::to_path_buf)
    }

    /// The smallest installed model a real test of `kind` can run: an LLM for
    /// llama-server, a one-file diffusion model for sd (several components need
    /// flags the test does not guess). None above [`REAL_TEST_MODEL_MAX_BYTES`]: the
    /// test proves the build works, and a model too big for the GPU would fail it for
    /// the wrong reason.
    fn smallest_model_for(&self, kind: BinaryKind) -> Option<PathBuf> {
        let wanted = match kind {
            BinaryKind::LlamaServer => models::ModelKind::Llm,
            BinaryKind::Diffusion => models::ModelKind::Diffusion,
        };
        let store = &self.inner.models;
        store
            .models()
            .into_iter()
            .filter(|model| model.kind == wanted)
            .filter(|model| kind == BinaryKind::LlamaServer || model.files.len() == 1)
            .filter(|model| model.size_bytes() <= REAL_TEST_MODEL_MAX_BYTES)
            .min_by_key(models::InstalledModel::size_bytes)
            .and_then(|model| {
                let weights = model
                    .files
                    .iter()
                    .find(|file| file.role == models::FileRole::Weights)?;
                Some(store.model_dir(&model.id).join(&weights.file_name))
            })
    }

    pub fn system_info(&self) -> SystemInfo {
        self.inner.system.info()
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

    pub fn settings(&self) -> Settings {
        read(&self.inner.settings).clone()
    }

    /// Validates, writes `settings.json` in the config folder (see
    /// [`crate::settings_file`]), then applies: a change that cannot be kept is not
    /// applied either.
    pub fn save_settings(&self, settings: Settings) -> Result<SettingsUpdate> {
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        settings.validate()?;
        crate::settings_file::save(&self.inner.config_dir, &settings)?;
        self.update_settings(settings)
    }

    /// Validates and applies new settings without writing them (tests, and front
    /// ends that keep their own).
    pub fn update_settings(&self, settings: Settings) -> Result<SettingsUpdate> {
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        settings.validate()?;
        // The data folder in use stays until the next start.
        let next_data_dir = paths::resolve_data_dir(
            self.inner.data_dir_override.clone(),
            settings.data_dir.as_deref(),
        );
        let restart_required = next_data_dir != self.inner.layout.root();
        apply_binaries_mirror(&self.inner.binaries, &settings);
        apply_orchestrator_settings(&self.inner.orchestrator, &settings);
        self.allowed_origins().set(&settings.allowed_origins);
        *write(&self.inner.settings) = settings.clone();
        self.inner
            .events
            .emit(EngineEvent::SettingsChanged(settings.clone()));
        Ok(SettingsUpdate {
            settings,
            restart_required,
        })
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

/// The `offload_threshold` setting (percent) becomes the orchestrator's share, and
/// `drain_seconds` its drain time.
fn apply_orchestrator_settings(orchestrator: &Orchestrator, settings: &Settings) {
    orchestrator.set_policy(crate::orchestrator::OrchestratorPolicy {
        threshold: f64::from(settings.offload_threshold) / 100.0,
        drain_ms: u64::from(settings.drain_seconds) * 1000,
        ..orchestrator.policy()
    });
}

/// Settings own the download base: a mirror when one is set, else GitHub (so clearing
/// the mirror goes back to GitHub at once, without a restart).
fn apply_binaries_mirror(binaries: &BinaryManager, settings: &Settings) {
    binaries.set_download_base(
        settings
            .binaries_mirror
            .as_deref()
            .unwrap_or(DEFAULT_DOWNLOAD_BASE),
    );
}

/// What the llama-server manager needs from the engine at each start.
#[derive(Debug)]
struct EngineEnvironment {
    engine: Weak<Inner>,
}

impl LaunchEnvironment for EngineEnvironment {
    fn llama_binary(&self) -> Option<BinaryStatus> {
        let engine = self.engine.upgrade()?;
        // The person's own build when Settings name one and it passed its tests
        // (also after a restart, before anyone pressed "Set up" again), else the
        // downloaded one.
        let custom = read(&engine.settings)
            .custom_binary_path(BinaryKind::LlamaServer)
            .map(Path::to_path_buf);
        match custom {
            Some(path) => engine
                .binaries
                .custom_status(BinaryKind::LlamaServer, &path),
            None => engine.binaries.status(BinaryKind::LlamaServer),
        }
    }

    fn free_memory(&self) -> Budget {
        match self.engine.upgrade() {
            Some(inner) => Engine { inner }.free_budget(),
            None => Budget {
                ram_bytes: 0,
                vram_bytes: 0,
            },
        }
    }

    fn suggested_context(&self) -> u32 {
        self.engine.upgrade().map_or(4096, |engine| {
            engine.system.info().recommendation.suggested_context
        })
    }
}

impl MemorySource for EngineEnvironment {
    fn sample(&self) -> MemorySample {
        let Some(engine) = self.engine.upgrade() else {
            return MemorySample::default();
        };
        let sample = engine.system.sample();
        // The GPU with the most memory is the one a model would use.
        let gpu = sample.gpus.iter().max_by_key(|gpu| gpu.total_bytes);
        MemorySample {
            ram_total_bytes: sample.memory.total_bytes,
            ram_free_bytes: sample.memory.available_bytes,
            vram_total_bytes: gpu.map_or(0, |gpu| gpu.total_bytes),
            vram_free_bytes: gpu.and_then(|gpu| gpu.free_bytes).unwrap_or(0),
        }
    }
}
