//! The engine's image API: start and stop the image server, and generate, poll and
//! cancel through the same queue the HTTP API uses.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::Engine;
use crate::binaries::BinaryKind;
use crate::diffusion::gate::BoxFuture;
use crate::diffusion::http::{FixedService, ImageApiKey, ImageHttp, ImageSource};
use crate::diffusion::service::{FreeVramProbe, ImageServiceSetup};
use crate::diffusion::{
    DiffusionAction, DiffusionControl, DiffusionModelFiles, GenerationGate, ImageRequest,
    ImageServerInfo, ImageService, ImageServiceOptions, JobSummary, JobView, SdCapabilities,
};
use crate::errors::{EngineError, Result};
use crate::estimate::diffusion::DiffusionComponents;
use crate::events::EngineEvent;
use crate::services::{ServiceKind, ServiceState};

/// How long sd gets to end after SIGTERM before it is killed (sd-server needs
/// about 2 s to free a model).
const SD_STOP_GRACE: Duration = Duration::from_secs(5);
/// A persistent server that has not loaded its model by then is given up on.
const SD_LOAD_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// What `start_image_server` runs.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ImageServerConfig {
    /// An installed diffusion model.
    #[serde(default)]
    pub model_id: Option<String>,
    /// Or the files themselves (a model outside the catalog).
    #[serde(default)]
    pub files: Option<DiffusionModelFiles>,
    /// `None`: the `image_port` setting; 0: any free port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Clients must send `Authorization: Bearer <key>` when set.
    #[serde(default)]
    pub api_key: Option<String>,
    /// `None`: the validated sd (see `ensure_binary`).
    #[serde(default)]
    #[ts(type = "string | null")]
    pub sd_binary: Option<PathBuf>,
    #[serde(default)]
    pub options: ImageServiceOptions,
}

/// Hides the API key, so no span or log line can print it.
impl std::fmt::Debug for ImageServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Taken apart whole, so a new field cannot be forgotten here.
        let Self {
            model_id,
            files,
            port,
            api_key,
            sd_binary,
            options,
        } = self;
        f.debug_struct("ImageServerConfig")
            .field("model_id", model_id)
            .field("files", files)
            .field("port", port)
            .field("api_key", &crate::redact::Hidden(api_key))
            .field("sd_binary", sd_binary)
            .field("options", options)
            .finish()
    }
}

#[derive(Debug)]
struct Running {
    service: ImageService,
    /// The API of this server alone (the app's); `None` where the standing API
    /// serves it (the daemon's).
    http: Option<ImageHttp>,
    info: ImageServerInfo,
}

/// The image server of this engine, if started, and the gate set for it.
#[derive(Debug, Default)]
pub(super) struct ImageSlot {
    /// Starts and stops one at a time.
    lifecycle: tokio::sync::Mutex<()>,
    running: RwLock<Option<Arc<Running>>>,
    gate: RwLock<Option<Arc<dyn GenerationGate>>>,
    /// The daemon's image API: it listens as long as the engine runs and starts
    /// the image server for the first request.
    standing_api: tokio::sync::Mutex<Option<ImageHttp>>,
    /// The key every image API of this engine wants (`state/image-api.key`).
    api_key: ImageApiKey,
}

/// The standing API's view of the engine: the image server now, or one started
/// for a request (with the model it names, else the first installed one).
#[derive(Debug)]
struct OnDemand(std::sync::Weak<super::Inner>);

impl OnDemand {
    fn engine(&self) -> Result<Engine> {
        self.0
            .upgrade()
            .map(|inner| Engine { inner })
            .ok_or(EngineError::ShuttingDown)
    }
}

impl ImageSource for OnDemand {
    fn running(&self) -> Option<ImageService> {
        self.engine().ok()?.image_service()
    }

    fn for_new_job<'a>(&'a self, model: Option<String>) -> BoxFuture<'a, Result<ImageService>> {
        Box::pin(async move {
            let engine = self.engine()?;
            engine.image_server_for(model).await?;
            engine.image_service().ok_or(EngineError::ShuttingDown)
        })
    }
}

impl ImageSlot {
    /// With the key kept in `key_file`, if any.
    pub(super) fn new(gate: Arc<dyn GenerationGate>, key_file: &std::path::Path) -> Self {
        Self {
            gate: RwLock::new(Some(gate)),
            api_key: ImageApiKey::fixed(crate::secrets::read_key(key_file)),
            ..Self::default()
        }
    }
}

/// Where the image API's key is kept (mode 0600), for the app and the daemon alike.
pub(super) fn image_api_key_file(layout: &crate::paths::DataLayout) -> PathBuf {
    layout.state().join("image-api.key")
}

impl Engine {
    /// Sets (or, with `None` or empty, removes) the key clients of the image API
    /// must send as `Authorization: Bearer <key>`. Kept in a file only this user can
    /// read, never in the settings; applies at once to a running image API.
    pub fn set_image_api_key(&self, key: Option<String>) -> Result<()> {
        let key = crate::secrets::store_key(&image_api_key_file(&self.inner.layout), key)?;
        self.inner.images.api_key.set(key);
        Ok(())
    }

    /// Whether the image API wants a key.
    pub fn image_api_key_is_set(&self) -> bool {
        self.inner.images.api_key.is_set()
    }

    /// The daemon's image API on `127.0.0.1:port` (0: any free port), for the
    /// engine's whole life: the image server starts with the first request (with
    /// the model it names, else the first installed diffusion model) and the
    /// orchestrator makes room for it like for any image. Clients send
    /// `Authorization: Bearer <key>` when one is set ([`Self::set_image_api_key`]).
    /// Returns its address.
    pub async fn serve_standing_image_api(&self, port: u16) -> Result<std::net::SocketAddr> {
        let mut standing = self.inner.images.standing_api.lock().await;
        if let Some(old) = standing.take() {
            old.stop().await;
        }
        let source = Arc::new(OnDemand(Arc::downgrade(&self.inner)));
        let key = self.inner.images.api_key.clone();
        let http = ImageHttp::serve(source, port, key, self.allowed_origins()).await?;
        let address = http.address();
        *standing = Some(http);
        Ok(address)
    }

    /// Where the standing image API listens, if it does.
    pub async fn standing_image_api(&self) -> Option<std::net::SocketAddr> {
        self.inner
            .images
            .standing_api
            .lock()
            .await
            .as_ref()
            .map(ImageHttp::address)
    }

    pub(super) async fn stop_standing_image_api(&self) {
        if let Some(http) = self.inner.images.standing_api.lock().await.take() {
            http.stop().await;
        }
    }

    /// Starts the image server (stopping one already running) and returns where it
    /// listens.
    pub async fn start_image_server(&self, config: ImageServerConfig) -> Result<ImageServerInfo> {
        if self.is_shutting_down() {
            return Err(EngineError::ShuttingDown);
        }
        let slot = &self.inner.images;
        let _one_at_a_time = slot.lifecycle.lock().await;
        self.stop_running_images().await;
        self.set_diffusion_state(ServiceState::Starting);
        match self.launch_images(config).await {
            Ok(running) => {
                let info = running.info.clone();
                *slot.running.write().unwrap_or_else(PoisonError::into_inner) =
                    Some(Arc::new(running));
                self.set_diffusion_state(ServiceState::Running);
                self.inner.events.emit(EngineEvent::ImageServerChanged {
                    server: Some(info.clone()),
                });
                Ok(info)
            }
            Err(error) => {
                self.set_diffusion_state(ServiceState::Failed);
                Err(error)
            }
        }
    }

    /// Stops the image server: jobs are cancelled and every sd process ends. The
    /// status says `stopping` meanwhile.
    pub async fn stop_image_server(&self) {
        let _one_at_a_time = self.inner.images.lifecycle.lock().await;
        if self.running_images().is_some() {
            self.set_diffusion_state(ServiceState::Stopping);
        }
        if self.stop_running_images().await {
            self.set_diffusion_state(ServiceState::Stopped);
            self.inner
                .events
                .emit(EngineEvent::ImageServerChanged { server: None });
        }
    }

    pub fn image_server(&self) -> Option<ImageServerInfo> {
        self.running_images().map(|running| running.info.clone())
    }

    /// What the tray's "Start/Stop Diffusion" entry does now, and its tooltip line.
    pub fn diffusion_control(&self) -> DiffusionControl {
        crate::diffusion::control::diffusion_control(
            self.status().diffusion,
            self.image_server().map(|server| server.port),
            &self.models().models(),
            self.binary_status(BinaryKind::Diffusion).is_some(),
        )
    }

    /// The tray's "Start/Stop Diffusion": stops the image server when it runs, else
    /// starts it with the first installed diffusion model. `None` once stopped.
    pub async fn toggle_diffusion(&self) -> Result<Option<ImageServerInfo>> {
        let control = self.diffusion_control();
        match control.action {
            DiffusionAction::Stop => {
                self.stop_image_server().await;
                Ok(None)
            }
            DiffusionAction::Start { model_id } => self
                .start_image_server(ImageServerConfig {
                    model_id: Some(model_id),
                    ..ImageServerConfig::default()
                })
                .await
                .map(Some),
            DiffusionAction::Unavailable => Err(EngineError::InvalidInput {
                field: "model",
                problem: control.label,
            }),
        }
    }

    /// The samplers and schedulers the running sd offers.
    pub fn image_capabilities(&self) -> Result<SdCapabilities> {
        Ok(self.images_or_error()?.service.capabilities().clone())
    }

    /// The running image service, for the orchestrator (gate, `release_model`).
    pub fn image_service(&self) -> Option<ImageService> {
        self.running_images().map(|running| running.service.clone())
    }

    /// The gate every generation passes, now and after later starts.
    pub fn set_generation_gate(&self, gate: Arc<dyn GenerationGate>) {
        *self
            .inner
            .images
            .gate
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(gate.clone());
        if let Some(running) = self.running_images() {
            running.service.set_gate(gate);
        }
    }

    /// Queues a generation (the same queue as the HTTP API); returns the job id.
    pub fn generate_image(&self, request: ImageRequest) -> Result<String> {
        self.images_or_error()?.service.submit(request)
    }

    pub fn image_job(&self, id: &str) -> Result<JobView> {
        self.images_or_error()?.service.job(id)
    }

    pub fn cancel_image_job(&self, id: &str) -> Result<JobSummary> {
        self.images_or_error()?.service.cancel(id)
    }

    /// Keeps an image the window shows: writes the PNG (base64, as a job's result
    /// gives it) into the gallery folder under a name made here, never one from the
    /// caller, and returns where it is.
    pub fn save_image(&self, image_base64: &str, seed: i64) -> Result<PathBuf> {
        let png = decode_png(image_base64)?;
        let dir = self.inner.layout.gallery();
        std::fs::create_dir_all(&dir).map_err(|source| EngineError::StorageUnavailable {
            path: dir.clone(),
            source,
        })?;
        let stamp = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        let path = (0..1000)
            .map(|attempt| {
                let suffix = if attempt == 0 {
                    String::new()
                } else {
                    format!("-{attempt}")
                };
                dir.join(format!("image_{stamp}_seed{seed}{suffix}.png"))
            })
            .find(|path| !path.exists())
            .ok_or_else(|| EngineError::Internal {
                problem: format!("no free file name in {}", dir.display()),
            })?;
        crate::fs_atomic::write(&path, &png).map_err(|source| {
            if source.kind() == std::io::ErrorKind::StorageFull {
                EngineError::DiskFull { path: path.clone() }
            } else {
                EngineError::StorageUnavailable {
                    path: dir.clone(),
                    source,
                }
            }
        })?;
        Ok(path)
    }

    /// Waits until a job has finished, at most `timeout`.
    pub async fn wait_image_job(&self, id: &str, timeout: Duration) -> Result<JobView> {
        let service = self.images_or_error()?.service.clone();
        service.wait(id, timeout).await
    }

    fn running_images(&self) -> Option<Arc<Running>> {
        self.inner
            .images
            .running
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn images_or_error(&self) -> Result<Arc<Running>> {
        self.running_images()
            .ok_or_else(|| EngineError::InvalidInput {
                field: "image_server",
                problem: "the image server is not running; start it first".into(),
            })
    }

    /// Returns whether one was running.
    async fn stop_running_images(&self) -> bool {
        let running = self
            .inner
            .images
            .running
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(running) = running else {
            return false;
        };
        running.service.stop().await;
        match Arc::try_unwrap(running) {
            Ok(Running {
                http: Some(http), ..
            }) => http.stop().await,
            Ok(_) => {}
            // A request in flight holds it; the listener ends with the engine.
            Err(_) => tracing::debug!("image API handle still shared at stop"),
        }
        true
    }

    fn set_diffusion_state(&self, state: ServiceState) {
        self.inner.status.set(ServiceKind::Diffusion, state);
    }

    async fn launch_images(&self, config: ImageServerConfig) -> Result<Running> {
        let (files, model_name) = self.diffusion_files(&config)?;
        let cli_binary = match config.sd_binary.clone() {
            Some(path) => path,
            None => self
                .binary_status(BinaryKind::Diffusion)
                .map(|status| PathBuf::from(status.path))
                .ok_or_else(|| EngineError::BinaryUnavailable {
                    kind: "sd".into(),
                    problem: "no sd has been set up yet".into(),
                })?,
        };
        let components = read_components(&files).await;
        let service = ImageService::start(ImageServiceSetup {
            cli_binary,
            files,
            components,
            options: config.options.clone(),
            work_dir: self.inner.layout.image_work(),
            free_vram: self.free_vram_probe(),
            events: self.inner.events.emitter(),
            stop_grace: SD_STOP_GRACE,
            load_timeout: SD_LOAD_TIMEOUT,
            pid_dir: Some(self.inner.layout.state()),
        })
        .await?;
        if let Some(gate) = self
            .inner
            .images
            .gate
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            service.set_gate(gate);
        }
        let (http, port) = match self.standing_image_api().await {
            Some(standing) => (None, standing.port()),
            None => {
                let port = config.port.unwrap_or_else(|| self.settings().image_port);
                let source = Arc::new(FixedService(service.clone()));
                // A key given for this server alone, else the engine's own.
                let key = match &config.api_key {
                    Some(key) => ImageApiKey::fixed(Some(key.clone())),
                    None => self.inner.images.api_key.clone(),
                };
                match ImageHttp::serve(source, port, key, self.allowed_origins()).await {
                    Ok(http) => {
                        let port = http.address().port();
                        (Some(http), port)
                    }
                    Err(error) => {
                        service.stop().await;
                        return Err(error);
                    }
                }
            }
        };
        let info = ImageServerInfo {
            url: format!("http://127.0.0.1:{port}"),
            port,
            runner: service.runner_kind(),
            model: model_name,
            capabilities: service.capabilities().clone(),
            limits: crate::diffusion::RequestLimits::default(),
        };
        Ok(Running {
            service,
            http,
            info,
        })
    }

    fn diffusion_files(&self, config: &ImageServerConfig) -> Result<(DiffusionModelFiles, String)> {
        if let Some(files) = &config.files {
            let name = files
                .model
                .as_ref()
                .or(files.diffusion_model.as_ref())
                .and_then(|path| path.file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Ok((files.clone(), name));
        }
        let Some(id) = &config.model_id else {
            return Err(EngineError::InvalidInput {
                field: "model",
                problem: "choose a diffusion model".into(),
            });
        };
        let model = self
            .models()
            .models()
            .into_iter()
            .find(|model| &model.id == id)
            .ok_or_else(|| EngineError::NotFound {
                what: "Model",
                id: id.clone(),
            })?;
        let files = DiffusionModelFiles::from_installed(&model, &self.models().model_dir(id))?;
        Ok((files, id.clone()))
    }

    /// Free VRAM of the GPU sd would run on, read fresh for every job (seed issue 8:
    /// stale readings caused false "insufficient memory"). `None` when sd runs on the
    /// CPU.
    fn free_vram_probe(&self) -> FreeVramProbe {
        let engine = Arc::downgrade(&self.inner);
        let gpu_build = self
            .binary_status(BinaryKind::Diffusion)
            .and_then(|status| status.variant)
            .map(crate::binaries::Variant::is_gpu);
        Arc::new(move || {
            let inner = engine.upgrade()?;
            // A build of unknown variant (the user's own) may use a GPU if there is one.
            if gpu_build == Some(false) {
                return None;
            }
            let engine = Engine { inner };
            engine
                .system_sample()
                .gpus
                .iter()
                .filter_map(|gpu| gpu.free_bytes)
                .max()
        })
    }
}

/// Larger than any PNG sd writes (2048×2048 RGB, uncompressed, is 12 MiB).
const MAX_SAVED_PNG_BYTES: usize = 64 << 20;
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The bytes of a base64 PNG; anything else is refused.
fn decode_png(image_base64: &str) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let invalid = |problem: &str| EngineError::InvalidInput {
        field: "image",
        problem: problem.to_owned(),
    };
    if image_base64.len() / 4 * 3 > MAX_SAVED_PNG_BYTES {
        return Err(invalid("is larger than any image sd makes"));
    }
    let png = base64::engine::general_purpose::STANDARD
        .decode(image_base64.trim())
        .map_err(|_| invalid("is not base64"))?;
    if !png.starts_with(PNG_SIGNATURE) {
        return Err(invalid("is not a PNG image"));
    }
    Ok(png)
}

/// The weights by component from each GGUF file's header; files that are not GGUF
/// (safetensors components) count as unknown.
async fn read_components(files: &DiffusionModelFiles) -> DiffusionComponents {
    let mut total = DiffusionComponents::default();
    for (_, path) in files.flags() {
        match crate::gguf::read_local(path).await {
            Ok(header) => total.add(&DiffusionComponents::from_gguf(&header)),
            Err(error) => tracing::debug!(%error, path = %path.display(), "no GGUF header"),
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_base64_pngs_are_saved() {
        use base64::Engine as _;
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let png = [PNG_SIGNATURE, b"rest"].concat();
        assert_eq!(decode_png(&encode(&png)).unwrap(), png);
        assert!(decode_png(&encode(b"GIF89a....")).is_err());
        assert!(decode_png("not base64!").is_err());
        assert!(decode_png("").is_err());
    }

    #[test]
    fn debug_output_never_shows_the_api_key() {
        let config = ImageServerConfig {
            api_key: Some("image-key-51d2".into()),
            ..ImageServerConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("image-key-51d2"), "{shown}");
        assert!(shown.contains("Some(<redacted>)"), "{shown}");
    }
}
