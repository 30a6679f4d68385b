//! The image service: one queue and one worker for every way a generation is asked
//! for (the HTTP API, the window, the engine API). The worker is the only holder of
//! the runner and calls the [`GenerationGate`] around each run of jobs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

use super::capabilities::SdCapabilities;
use super::gate::{GateOutcome, GateRequest, GenerationGate, OpenGate};
use super::jobs::{FinishedImage, JobStatus, JobStore, JobSummary, JobView};
use super::model_files::DiffusionModelFiles;
use super::placement::{self, Placement};
use super::progress::Progress;
use super::request::ImageRequest;
use super::runner::{
    ActivePid, GeneratedImage, JobSpec, ProgressSink, Runner, RunnerConfig, RunnerKind,
};
use crate::DiffusionEvent;
use switchyard_base::emit::Emitter;
use switchyard_base::errors::{EngineError, Result};
use switchyard_estimate::diffusion::{DiffusionComponents, DiffusionEstimate};

/// Free VRAM right now, in bytes, of the GPU sd runs on (`None`: sd runs on the CPU).
pub type FreeVramProbe = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// Limits and choices of the image service that a person may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ImageServiceOptions {
    #[serde(default)]
    pub runner: RunnerKind,
    /// sd's `-t`; `None` lets sd use the physical cores.
    #[serde(default)]
    pub threads: Option<u32>,
    /// Jobs that may wait behind the running one; more get `QUEUE_FULL` (HTTP 429).
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: u32,
    /// How long finished results stay available.
    #[serde(default = "default_result_ttl_secs")]
    pub result_ttl_secs: u32,
    /// Memory the finished results may hold together (PNG files, their base64 and
    /// JSON); the oldest are dropped first (a poll then gets `RESULT_EXPIRED`).
    #[serde(default = "default_result_memory_mib")]
    pub result_memory_mib: u32,
    /// A job running longer is stopped with `TIMED_OUT`.
    #[serde(default = "default_job_timeout_secs")]
    pub job_timeout_secs: u32,
    /// Every finished image is also saved here, when set.
    #[serde(default)]
    #[ts(type = "string | null")]
    pub gallery_dir: Option<PathBuf>,
}

fn default_queue_capacity() -> u32 {
    16
}
fn default_result_ttl_secs() -> u32 {
    15 * 60
}
fn default_result_memory_mib() -> u32 {
    512
}
fn default_job_timeout_secs() -> u32 {
    30 * 60
}

impl Default for ImageServiceOptions {
    fn default() -> Self {
        Self {
            runner: RunnerKind::Auto,
            threads: None,
            queue_capacity: default_queue_capacity(),
            result_ttl_secs: default_result_ttl_secs(),
            result_memory_mib: default_result_memory_mib(),
            job_timeout_secs: default_job_timeout_secs(),
            gallery_dir: None,
        }
    }
}

/// Everything a service is built from.
#[derive(Clone)]
pub struct ImageServiceSetup {
    pub cli_binary: PathBuf,
    pub files: DiffusionModelFiles,
    /// The model's weights by component, for the placement and the gate's estimate.
    pub components: DiffusionComponents,
    pub options: ImageServiceOptions,
    /// Per-job output folders go here; made private to this user (0700), and
    /// refused when someone else owns it.
    pub work_dir: PathBuf,
    pub free_vram: FreeVramProbe,
    pub events: Emitter<DiffusionEvent>,
    /// How long sd gets after SIGTERM before it is killed.
    pub stop_grace: Duration,
    pub load_timeout: Duration,
    /// Where each sd's pid file goes, so the next start ends one left behind.
    pub pid_dir: Option<PathBuf>,
}

impl std::fmt::Debug for ImageServiceSetup {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ImageServiceSetup")
            .field("cli_binary", &self.cli_binary)
            .field("files", &self.files)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A cheap-to-clone handle on the running image service.
#[derive(Debug, Clone)]
pub struct ImageService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Mutex<JobStore>,
    /// A job was queued.
    wake: Notify,
    /// A job finished.
    finished: Notify,
    gate: RwLock<Arc<dyn GenerationGate>>,
    runner: tokio::sync::Mutex<Runner>,
    runner_kind: RunnerKind,
    capabilities: SdCapabilities,
    setup: ImageServiceSetup,
    shutdown: CancellationToken,
    active_pid: ActivePid,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ImageService")
            .field("runner", &self.runner_kind)
            .field("setup", &self.setup)
            .finish_non_exhaustive()
    }
}

impl ImageService {
    /// Checks the model files and the binary, reads its capabilities, and starts the
    /// worker. A persistent server (if chosen) starts with the first job.
    pub async fn start(setup: ImageServiceSetup) -> Result<Self> {
        setup.files.check()?;
        let mut capabilities =
            SdCapabilities::read(&setup.cli_binary, setup.pid_dir.as_deref()).await?;
        let active_pid = ActivePid::default();
        let runner = Runner::new(
            setup.options.runner,
            RunnerConfig {
                cli_binary: setup.cli_binary.clone(),
                files: setup.files.clone(),
                threads: setup.options.threads,
                stop_grace: setup.stop_grace,
                work_dir: setup.work_dir.clone(),
                load_timeout: setup.load_timeout,
                active_pid: active_pid.clone(),
                pid_dir: setup.pid_dir.clone(),
            },
        )?;
        capabilities.has_server = matches!(runner, Runner::Server(_)) || capabilities.has_server;
        // sd writes there and Switchyard reads back: nobody else may.
        switchyard_base::private_dir::ensure_private_dir(&setup.work_dir)?;
        let options = &setup.options;
        let inner = Arc::new(Inner {
            store: Mutex::new(JobStore::new(
                options.queue_capacity as usize,
                Duration::from_secs(u64::from(options.result_ttl_secs)),
                u64::from(options.result_memory_mib) << 20,
            )),
            wake: Notify::new(),
            finished: Notify::new(),
            gate: RwLock::new(Arc::new(OpenGate)),
            runner_kind: runner.kind(),
            runner: tokio::sync::Mutex::new(runner),
            capabilities,
            shutdown: CancellationToken::new(),
            active_pid,
            worker: Mutex::new(None),
            setup,
        });
        let worker = tokio::spawn(work(inner.clone()));
        *inner.worker.lock().unwrap_or_else(PoisonError::into_inner) = Some(worker);
        Ok(Self { inner })
    }

    /// The runner in use (`Auto` resolved).
    pub fn runner_kind(&self) -> RunnerKind {
        self.inner.runner_kind
    }

    pub fn capabilities(&self) -> &SdCapabilities {
        &self.inner.capabilities
    }

    /// Replaces the gate every later run of jobs passes (the orchestrator's hook).
    pub fn set_gate(&self, gate: Arc<dyn GenerationGate>) {
        *self
            .inner
            .gate
            .write()
            .unwrap_or_else(PoisonError::into_inner) = gate;
    }

    /// Queues a request; returns the job's id.
    pub fn submit(&self, request: ImageRequest) -> Result<String> {
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        let capabilities = &self.inner.capabilities;
        request.validate(&capabilities.samplers, &capabilities.schedulers)?;
        let summary = self.store().push(request, Instant::now())?;
        let id = summary.id.clone();
        self.inner
            .setup
            .events
            .emit(DiffusionEvent::JobChanged(summary));
        self.inner.wake.notify_one();
        Ok(id)
    }

    pub fn job(&self, id: &str) -> Result<JobView> {
        self.store().view(id, Instant::now())
    }

    /// The job's view as JSON: a finished job's was serialized once when it ended
    /// and is shared by every poll; another's is serialized here, outside the lock.
    pub fn job_json(&self, id: &str) -> Result<Bytes> {
        let view = {
            let mut store = self.store();
            if let Some(json) = store.json(id, Instant::now()) {
                return Ok(json);
            }
            store.view(id, Instant::now())?
        };
        serialize(&view)
    }

    /// Image `index` of a complete job, as its PNG file.
    pub fn job_png(&self, id: &str, index: usize) -> Result<Bytes> {
        self.store().png(id, index, Instant::now())
    }

    /// Bytes the finished results hold together (bounded by `result_memory_mib`).
    pub fn retained_result_bytes(&self) -> u64 {
        self.store().retained_bytes()
    }

    /// Cancels a job: a waiting one at once, a running one once sd is gone.
    pub fn cancel(&self, id: &str) -> Result<JobSummary> {
        let summary = self.store().cancel(id, Instant::now())?;
        if summary.status == JobStatus::Cancelled {
            self.inner
                .setup
                .events
                .emit(DiffusionEvent::JobChanged(summary.clone()));
            self.inner.finished.notify_waiters();
        }
        Ok(summary)
    }

    /// Waits until the job has finished, at most `timeout`.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<JobView> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let finished = self.inner.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let view = self.job(id)?;
            if view.status.is_finished() {
                return Ok(view);
            }
            if tokio::time::timeout_at(deadline, finished).await.is_err() {
                return Err(EngineError::TimedOut {
                    what: format!("Waiting for image job {id}"),
                    seconds: timeout.as_secs(),
                });
            }
        }
    }

    /// A job runs or waits.
    pub fn busy(&self) -> bool {
        let store = self.store();
        store.waiting() > 0 || self.inner.active_pid.get().is_some() || store.has_running()
    }

    /// Jobs waiting behind the running one.
    pub fn queued(&self) -> usize {
        self.store().waiting()
    }

    /// What an image of this size would need, where the placement would put it now
    /// (the prediction the Resource Monitor shows).
    pub fn estimate_for(&self, width: u32, height: u32, count: u32) -> DiffusionEstimate {
        placement::choose(
            &self.inner.setup.components,
            width,
            height,
            count,
            (self.inner.setup.free_vram)(),
            &crate::PlacementOverrides::default(),
        )
        .1
    }

    /// The sd process working right now.
    pub fn active_pid(&self) -> Option<u32> {
        self.inner.active_pid.get()
    }

    /// Frees the persistent server's model once the current job (if any) is done.
    pub async fn release_model(&self) {
        self.inner.runner.lock().await.release().await;
    }

    /// Cancels every job, waits for the worker, and ends every sd process.
    pub async fn stop(&self) {
        self.inner.shutdown.cancel();
        let cancelled = self.store().cancel_all(Instant::now());
        for summary in cancelled {
            self.inner
                .setup
                .events
                .emit(DiffusionEvent::JobChanged(summary));
        }
        self.inner.wake.notify_one();
        let worker = self
            .inner
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        self.inner.runner.lock().await.release().await;
        self.inner.finished.notify_waiters();
    }

    fn store(&self) -> std::sync::MutexGuard<'_, JobStore> {
        self.inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn store(&self) -> std::sync::MutexGuard<'_, JobStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn plan(&self, request: &ImageRequest) -> (Placement, DiffusionEstimate) {
        placement::choose(
            &self.setup.components,
            request.width,
            request.height,
            request.count,
            (self.setup.free_vram)(),
            &request.overrides,
        )
    }

    fn gate_request(
        &self,
        id: &str,
        request: &ImageRequest,
        estimate: DiffusionEstimate,
    ) -> GateRequest {
        GateRequest {
            job_id: id.to_owned(),
            width: request.width,
            height: request.height,
            count: request.count,
            steps: request.steps,
            estimate,
            queued_after: self.store().waiting(),
        }
    }

    fn next_job(&self) -> Option<(String, ImageRequest, i64, CancellationToken)> {
        if self.shutdown.is_cancelled() {
            return None;
        }
        self.store().start_next()
    }

    fn finish(&self, id: &str, outcome: Result<Vec<GeneratedImage>>, started: Instant) {
        let time_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Encoded once, here, before the store is locked.
        let outcome = outcome.map(|images| images.into_iter().map(FinishedImage::from).collect());
        let summary = self.store().finish(id, outcome, time_ms, Instant::now());
        if let Some(summary) = summary {
            self.setup.events.emit(DiffusionEvent::JobChanged(summary));
        }
        // The finished view never changes: serialized once, outside the lock (the
        // statement above ends the lock's guard).
        let view = self.store().view(id, Instant::now());
        if let Ok(json) = view.and_then(|view| serialize(&view)) {
            self.store().keep_json(id, json);
        }
        self.finished.notify_waiters();
    }
}

/// The worker: waits for a job, opens the gate, runs jobs until the queue is empty
/// (or the gate asks for a break), closes the gate.
async fn work(inner: Arc<Inner>) {
    loop {
        let first = loop {
            let woken = inner.wake.notified();
            if let Some(job) = inner.next_job() {
                break job;
            }
            tokio::select! {
                () = inner.shutdown.cancelled() => return,
                () = woken => {}
            }
        };
        let gate = inner
            .gate
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (id, request, _, _) = &first;
        let (_, estimate) = inner.plan(request);
        let decision = match gate.open(&inner.gate_request(id, request, estimate)).await {
            Ok(decision) => decision,
            Err(error) => {
                inner.finish(id, Err(error), Instant::now());
                continue;
            }
        };
        let mut outcome = GateOutcome::default();
        let mut next = Some(first);
        while let Some(job) = next {
            run_job(&inner, gate.as_ref(), job, &mut outcome).await;
            let more_waiting = inner.store().waiting() > 0;
            next = if more_waiting && gate.should_yield() {
                // The rest waits in the queue for the next window.
                None
            } else {
                inner.next_job()
            };
        }
        if decision.release_after || inner.shutdown.is_cancelled() {
            inner.runner.lock().await.release().await;
        }
        outcome.sd_memory_released = decision.release_after
            || inner.shutdown.is_cancelled()
            || inner.runner_kind == RunnerKind::Cli;
        gate.close(&outcome).await;
    }
}

async fn run_job(
    inner: &Arc<Inner>,
    gate: &dyn GenerationGate,
    (id, request, seed, cancel): (String, ImageRequest, i64, CancellationToken),
    outcome: &mut GateOutcome,
) {
    let started = Instant::now();
    let (placement, estimate) = inner.plan(&request);
    let result = match gate
        .before_job(&inner.gate_request(&id, &request, estimate))
        .await
    {
        Err(error) => Err(error),
        Ok(()) if cancel.is_cancelled() => Err(EngineError::Cancelled),
        Ok(()) => {
            let sink = progress_sink(inner, &id);
            let spec = JobSpec {
                request,
                seed,
                placement,
                timeout: Duration::from_secs(u64::from(inner.setup.options.job_timeout_secs)),
            };
            let mut runner = inner.runner.lock().await;
            let generated = runner.generate(&spec, &sink, &cancel).await;
            drop(runner);
            if let (Ok(images), Some(gallery)) = (&generated, &inner.setup.options.gallery_dir) {
                save_to_gallery(gallery, &id, images);
            }
            generated
        }
    };
    match &result {
        Ok(_) => outcome.completed += 1,
        Err(EngineError::Cancelled) => outcome.cancelled += 1,
        Err(_) => outcome.failed += 1,
    }
    inner.finish(&id, result, started);
}

/// Progress goes into the job's record and out as an event.
fn progress_sink(inner: &Arc<Inner>, id: &str) -> ProgressSink {
    let weak = Arc::downgrade(inner);
    let id = id.to_owned();
    Arc::new(move |progress: Progress| {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let summary = {
            let mut store = inner.store();
            let Some(record) = store.get_mut(&id) else {
                return;
            };
            if record.status != JobStatus::Running {
                return;
            }
            record.progress = progress;
            record.summary()
        };
        inner.setup.events.emit(DiffusionEvent::JobChanged(summary));
    })
}

fn serialize(view: &JobView) -> Result<Bytes> {
    serde_json::to_vec(view)
        .map(Bytes::from)
        .map_err(|error| EngineError::Internal {
            problem: format!("an image job's view cannot be serialized: {error}"),
        })
}

/// Best effort: a full disk must not turn a finished image into an error.
fn save_to_gallery(dir: &std::path::Path, id: &str, images: &[GeneratedImage]) {
    if let Err(error) = std::fs::create_dir_all(dir) {
        tracing::warn!(%error, dir = %dir.display(), "gallery folder unusable");
        return;
    }
    for (index, image) in images.iter().enumerate() {
        let path = dir.join(format!("{id}_{index}_seed{}.png", image.seed));
        if let Err(error) = switchyard_base::fs_atomic::write(&path, &image.png) {
            tracing::warn!(%error, path = %path.display(), "image not saved to the gallery");
        }
    }
}
