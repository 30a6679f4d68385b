//! The model store: the catalog plus the downloads that fill it. A model enters the
//! catalog only when every file is complete, its SHA-256 matches and its GGUF
//! header reads; anything less stays a download (paused, failed) with its `.part`
//! files kept for resuming, also across app restarts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

use super::catalog::{Catalog, FileRole, InstalledModel, ModelKind, ModelSource};
use switchyard_base::clock::Clock;
use switchyard_base::emit::Emitter;
use switchyard_base::errors::{EngineError, ErrorReport, Result};
use switchyard_base::locks::lock;

mod jobs;

use jobs::total_expected;

const PROGRESS_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DownloadFileRequest {
    pub url: String,
    /// Wanted local name; sanitized (folders and traversal removed).
    pub file_name: String,
    pub role: FileRole,
    pub expected_sha256: Option<String>,
    #[ts(type = "number | null")]
    pub expected_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DownloadRequest {
    pub name: String,
    pub kind: ModelKind,
    pub source: ModelSource,
    pub files: Vec<DownloadFileRequest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum DownloadState {
    Downloading,
    Paused,
    Verifying,
    Complete,
    Failed,
    Cancelled,
}

/// A download as the window shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct DownloadStatus {
    pub id: String,
    pub name: String,
    pub state: DownloadState,
    #[ts(type = "number")]
    pub bytes: u64,
    #[ts(type = "number | null")]
    pub total: Option<u64>,
    #[ts(type = "number")]
    pub speed_bps: u64,
    #[ts(type = "number | null")]
    pub eta_seconds: Option<u64>,
    pub error: Option<ErrorReport>,
}

/// Bytes on disk for models, and what the disk has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct DiskUsage {
    #[ts(type = "number")]
    pub models_bytes: u64,
    #[ts(type = "number")]
    pub partial_bytes: u64,
    #[ts(type = "number | null")]
    pub free_bytes: Option<u64>,
}

/// A pending download as saved in `state/downloads.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    id: String,
    request: DownloadRequest,
}

#[derive(Debug)]
struct Job {
    request: DownloadRequest,
    status: DownloadStatus,
    cancel: CancellationToken,
    /// Set by `cancel` (as opposed to `pause`): the parts are deleted.
    discard: bool,
}

/// What the store announces.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelsEvent {
    /// A download moved on (progress, throttled) or changed state.
    DownloadChanged(DownloadStatus),
    /// The installed models changed (a download finished, a model was deleted).
    ModelsChanged { models: Vec<InstalledModel> },
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    pending_file: PathBuf,
    client: reqwest::Client,
    events: Emitter<ModelsEvent>,
    clock: Arc<dyn Clock>,
    catalog: Mutex<Catalog>,
    /// When `catalog.json` was last read or written here: another process (the app,
    /// the daemon, `switchyard models`) changing it is seen at the next look.
    catalog_modified: Mutex<Option<SystemTime>>,
    jobs: Mutex<HashMap<String, Job>>,
}

#[derive(Debug, Clone)]
pub struct ModelStore {
    inner: Arc<Inner>,
}

impl ModelStore {
    /// Opens the store; downloads left unfinished by the last run come back paused.
    pub fn open(
        dir: PathBuf,
        state_dir: &Path,
        client: reqwest::Client,
        events: Emitter<ModelsEvent>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let catalog = Catalog::load(&dir)?;
        Ok(Self::with_catalog(
            catalog, dir, state_dir, client, events, clock,
        ))
    }

    /// A store whose catalog could not be read: empty until a model is added (which
    /// writes a fresh catalog; the damaged one was kept aside).
    pub fn open_empty(
        dir: PathBuf,
        state_dir: &Path,
        client: reqwest::Client,
        events: Emitter<ModelsEvent>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_catalog(Catalog::default(), dir, state_dir, client, events, clock)
    }

    fn with_catalog(
        catalog: Catalog,
        dir: PathBuf,
        state_dir: &Path,
        client: reqwest::Client,
        events: Emitter<ModelsEvent>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let pending_file = state_dir.join("downloads.json");
        let catalog_modified = modified_at(&Catalog::path(&dir));
        let pending: Vec<Pending> = std::fs::read(&pending_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let store = Self {
            inner: Arc::new(Inner {
                dir,
                pending_file,
                client,
                events,
                clock,
                catalog: Mutex::new(catalog),
                catalog_modified: Mutex::new(catalog_modified),
                jobs: Mutex::new(HashMap::new()),
            }),
        };
        for Pending { id, request } in pending {
            let bytes = store.part_bytes(&id, &request);
            let status = DownloadStatus {
                id: id.clone(),
                name: request.name.clone(),
                state: DownloadState::Paused,
                bytes,
                total: total_expected(&request),
                speed_bps: 0,
                eta_seconds: None,
                error: None,
            };
            lock(&store.inner.jobs).insert(
                id,
                Job {
                    request,
                    status,
                    cancel: CancellationToken::new(),
                    discard: false,
                },
            );
        }
        store
    }

    pub fn models(&self) -> Vec<InstalledModel> {
        self.catalog().models.clone()
    }

    pub fn downloads(&self) -> Vec<DownloadStatus> {
        let mut list: Vec<DownloadStatus> = lock(&self.inner.jobs)
            .values()
            .map(|job| job.status.clone())
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    pub fn model_dir(&self, id: &str) -> PathBuf {
        self.inner.dir.join(id)
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        self.installed(id)?;
        self.change_catalog(|catalog| catalog.models.retain(|model| model.id != id))?;
        // The catalog no longer names it; removing the files can fail harmlessly.
        if let Err(error) = std::fs::remove_dir_all(self.model_dir(id)) {
            tracing::warn!(%error, id, "model files could not all be removed");
        }
        self.announce_models();
        Ok(())
    }

    pub fn disk_usage(&self) -> DiskUsage {
        let models_bytes = self.models().iter().map(InstalledModel::size_bytes).sum();
        let partial_bytes = lock(&self.inner.jobs)
            .iter()
            .map(|(id, job)| self.part_bytes(id, &job.request))
            .sum();
        DiskUsage {
            models_bytes,
            partial_bytes,
            free_bytes: free_space(&self.inner.dir),
        }
    }

    fn installed(&self, id: &str) -> Result<InstalledModel> {
        self.catalog()
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound {
                what: "model",
                id: id.to_owned(),
            })
    }

    fn announce_models(&self) {
        self.inner.events.emit(ModelsEvent::ModelsChanged {
            models: self.models(),
        });
    }

    /// Changes the catalog on disk as it is now, under an OS lock: the app, the
    /// daemon and `switchyard models` each keep a copy, and saving one's copy whole
    /// would drop what another installed meanwhile. This copy is the result.
    fn change_catalog(&self, change: impl FnOnce(&mut Catalog)) -> Result<()> {
        let lock_path = self.state_file("models-catalog.lock");
        let file = switchyard_base::locks::lock_file(&lock_path)?;
        file.lock()
            .map_err(|source| EngineError::writing(&lock_path, source))?;
        let mut catalog = lock(&self.inner.catalog);
        // A damaged file was kept aside by `load`; this copy replaces it.
        let mut next = Catalog::load(&self.inner.dir).unwrap_or_else(|_| catalog.clone());
        change(&mut next);
        next.save(&self.inner.dir)?;
        *catalog = next;
        *lock(&self.inner.catalog_modified) = self.catalog_file_modified();
        Ok(())
    }

    /// Announces `models_changed` when another process (the daemon, `switchyard
    /// models`) has changed the catalog since this one last looked: the window
    /// follows events and would not ask again. The app calls this on its watch.
    pub fn announce_changes_elsewhere(&self) {
        let modified = self.catalog_file_modified();
        // A file gone is no change to read (the copy here stays, as in `catalog`).
        if modified.is_some() && modified != *lock(&self.inner.catalog_modified) {
            // `models()` reads the file again.
            self.announce_models();
        }
    }

    /// This process's copy of the catalog, read again first when another process
    /// has changed the file since.
    fn catalog(&self) -> std::sync::MutexGuard<'_, Catalog> {
        let modified = self.catalog_file_modified();
        let mut catalog = lock(&self.inner.catalog);
        let mut seen = lock(&self.inner.catalog_modified);
        if modified.is_some() && modified != *seen {
            // A damaged file is kept aside by `load` and this copy stays.
            match Catalog::load(&self.inner.dir) {
                Ok(fresh) => *catalog = fresh,
                Err(error) => {
                    tracing::warn!(%error, "the model catalog changed and could not be read")
                }
            }
            *seen = modified;
        }
        catalog
    }

    fn catalog_file_modified(&self) -> Option<SystemTime> {
        modified_at(&Catalog::path(&self.inner.dir))
    }
}

fn modified_at(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .ok()
}

/// Free bytes on the disk that holds `path`.
fn free_space(path: &Path) -> Option<u64> {
    let path = std::fs::canonicalize(path).ok()?;
    let disks = sysinfo::Disks::new_with_refreshed_list().ok()?;
    disks
        .iter()
        .filter(|disk| path.starts_with(disk.mount_point()))
        .max_by_key(|disk| disk.mount_point().as_os_str().len())
        .map(sysinfo::Disk::available_space)
}
