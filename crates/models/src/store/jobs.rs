//! A download's life: queued, running, paused, resumed, cancelled, verified, and
//! settled into the catalog (or not) — at most one process per download.

use std::path::PathBuf;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::catalog::{FileRole, InstalledModel, ModelFile};
use crate::download::{self, part_path, RateMeter};
use crate::names::{model_id, sanitize_file_name};
use switchyard_base::errors::{EngineError, Result};
use switchyard_base::fs_atomic;
use switchyard_base::locks::lock;
use switchyard_gguf as gguf;

use super::*;

impl ModelStore {
    /// Checks the request and starts downloading; returns the model's id.
    pub fn start_download(&self, request: DownloadRequest) -> Result<String> {
        let request = validated(request)?;
        let id = model_id(&request.name);
        {
            let catalog = self.catalog();
            let mut jobs = lock(&self.inner.jobs);
            if catalog.get(&id).is_some() || jobs.contains_key(&id) {
                return Err(EngineError::InvalidInput {
                    field: "name",
                    problem: format!(
                        "a model named `{}` is already installed or downloading",
                        request.name
                    ),
                });
            }
            let status = DownloadStatus {
                id: id.clone(),
                name: request.name.clone(),
                state: DownloadState::Downloading,
                bytes: 0,
                total: total_expected(&request),
                speed_bps: 0,
                eta_seconds: None,
                error: None,
            };
            jobs.insert(
                id.clone(),
                Job {
                    request,
                    status,
                    cancel: CancellationToken::new(),
                    discard: false,
                },
            );
        }
        self.record_pending(&id)?;
        self.spawn(&id);
        Ok(id)
    }

    /// Stops a download and keeps what arrived.
    pub fn pause(&self, id: &str) -> Result<()> {
        self.with_job(id, |job| job.cancel.cancel())
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let resumable = self.with_job(id, |job| {
            let resumable = matches!(
                job.status.state,
                DownloadState::Paused | DownloadState::Failed
            );
            if resumable {
                job.cancel = CancellationToken::new();
                job.status.state = DownloadState::Downloading;
                job.status.error = None;
            }
            resumable
        })?;
        if resumable {
            self.spawn(id);
        }
        Ok(())
    }

    /// Stops a download and deletes its files.
    pub fn cancel(&self, id: &str) -> Result<()> {
        let running = self.with_job(id, |job| {
            job.discard = true;
            job.cancel.cancel();
            job.status.state == DownloadState::Downloading
        })?;
        if !running {
            // Paused or failed here: nothing will notice the token, so clean up here,
            // unless another process is writing it now.
            let _only_here = self.claim_download(id).inspect_err(|_| {
                let _ = self.with_job(id, |job| job.discard = false);
            })?;
            self.finish_cancel(id);
        }
        Ok(())
    }

    /// Re-reads every file of an installed model and compares its SHA-256.
    pub async fn verify(&self, id: &str) -> Result<()> {
        let model = self.installed(id)?;
        for file in &model.files {
            let path = self.model_dir(id).join(&file.file_name);
            let (size, sha256) = download::sha256_file(&path).await?;
            if sha256 != file.sha256 || size != file.size_bytes {
                return Err(EngineError::ChecksumMismatch {
                    file: file.file_name.clone(),
                    expected: file.sha256.clone(),
                    actual: sha256,
                });
            }
        }
        Ok(())
    }

    fn with_job<T>(&self, id: &str, change: impl FnOnce(&mut Job) -> T) -> Result<T> {
        let mut jobs = lock(&self.inner.jobs);
        let job = jobs.get_mut(id).ok_or_else(|| EngineError::InvalidInput {
            field: "id",
            problem: format!("no download `{id}`"),
        })?;
        Ok(change(job))
    }

    /// A file beside `downloads.json` (in the state folder, not among the models).
    pub(super) fn state_file(&self, name: &str) -> PathBuf {
        let state_dir = self.inner.pending_file.parent().unwrap_or(&self.inner.dir);
        state_dir.join(name)
    }

    /// An OS lock on `state/download-<id>.lock`, held while this process writes
    /// the model's parts (released by the kernel however the process ends): two
    /// processes resuming one download would write the same part file.
    fn claim_download(&self, id: &str) -> Result<std::fs::File> {
        let path = self.state_file(&format!("download-{id}.lock"));
        let file = switchyard_base::locks::lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(EngineError::DownloadBusy { id: id.to_owned() })
            }
            Err(std::fs::TryLockError::Error(source)) => Err(EngineError::writing(&path, source)),
        }
    }

    pub(super) fn part_bytes(&self, id: &str, request: &DownloadRequest) -> u64 {
        request
            .files
            .iter()
            .map(|file| {
                let final_path = self.model_dir(id).join(&file.file_name);
                std::fs::metadata(part_path(&final_path))
                    .or_else(|_| std::fs::metadata(&final_path))
                    .map_or(0, |m| m.len())
            })
            .sum()
    }

    /// Records download `id` in `downloads.json` as this process knows it now
    /// (listed while unfinished, removed once complete or cancelled), leaving every
    /// other download as the file has it: the app, the daemon and `switchyard
    /// models` each keep their own list, and saving one's whole would drop what
    /// another started meanwhile. Re-read and written under an OS lock
    /// (`state/downloads.lock`), like the catalog.
    fn record_pending(&self, id: &str) -> Result<()> {
        let unfinished = lock(&self.inner.jobs)
            .get(id)
            .filter(|job| {
                !matches!(
                    job.status.state,
                    DownloadState::Complete | DownloadState::Cancelled
                )
            })
            .map(|job| Pending {
                id: id.to_owned(),
                request: job.request.clone(),
            });
        let lock_path = self.state_file("downloads.lock");
        let file = switchyard_base::locks::lock_file(&lock_path)?;
        file.lock()
            .map_err(|source| EngineError::writing(&lock_path, source))?;
        let mut pending: Vec<Pending> = std::fs::read(&self.inner.pending_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        pending.retain(|other| other.id != id);
        pending.extend(unfinished);
        fs_atomic::write_json(&self.inner.pending_file, &pending).map_err(|source| {
            EngineError::StorageUnavailable {
                path: self.inner.pending_file.clone(),
                source,
            }
        })
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut DownloadStatus)) {
        let status = {
            let mut jobs = lock(&self.inner.jobs);
            let Some(job) = jobs.get_mut(id) else { return };
            change(&mut job.status);
            job.status.clone()
        };
        self.inner.events.emit(ModelsEvent::DownloadChanged(status));
    }

    /// Runs the download on the caller's async runtime. Called from outside one
    /// (a front end's synchronous thread), the download fails with a clear error
    /// instead of the process panicking.
    fn spawn(&self, id: &str) {
        let store = self.clone();
        let id = id.to_owned();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let outcome = store.run(&id).await;
                    store.settle(&id, outcome);
                });
            }
            Err(error) => {
                let problem = format!("downloads must be started from an async runtime ({error})");
                self.settle(&id, Err(EngineError::Internal { problem }));
            }
        }
    }

    /// Downloads every file, verifies, and installs.
    async fn run(&self, id: &str) -> Result<()> {
        let (request, cancel) =
            self.with_job(id, |job| (job.request.clone(), job.cancel.clone()))?;
        self.update(id, |status| status.state = DownloadState::Downloading);
        let folder = self.model_dir(id);
        std::fs::create_dir_all(&folder).map_err(|source| EngineError::StorageUnavailable {
            path: folder.clone(),
            source,
        })?;
        let _only_here = self.claim_download(id)?;

        let total = total_expected(&request);
        let mut done_before = 0u64;
        let mut fetched = Vec::with_capacity(request.files.len());
        for file in &request.files {
            let part = part_path(&folder.join(&file.file_name));
            let mut meter = RateMeter::new(PROGRESS_EVERY);
            let result = download::fetch_expecting(
                &self.inner.client,
                &file.url,
                &part,
                file.expected_size,
                &cancel,
                |progress| {
                    let bytes = done_before + progress.bytes;
                    let total = total.or(progress.total.map(|t| done_before + t));
                    if let Some(speed) = meter.record(Instant::now(), bytes, Some(bytes) == total) {
                        self.update(id, |status| {
                            status.bytes = bytes;
                            status.total = total;
                            status.speed_bps = speed;
                            status.eta_seconds = total
                                .zip((speed > 0).then_some(speed))
                                .map(|(t, s)| t.saturating_sub(bytes) / s);
                        });
                    }
                },
            )
            .await?;
            done_before += result.size;
            fetched.push(result);
        }

        self.update(id, |status| status.state = DownloadState::Verifying);
        for (file, result) in request.files.iter().zip(&fetched) {
            let part = part_path(&folder.join(&file.file_name));
            let size_wrong = file.expected_size.is_some_and(|size| size != result.size);
            let sha_wrong = file
                .expected_sha256
                .as_ref()
                .is_some_and(|sha| *sha != result.sha256);
            if size_wrong || sha_wrong {
                download::discard_part(&part);
                return Err(EngineError::ChecksumMismatch {
                    file: file.file_name.clone(),
                    expected: file
                        .expected_sha256
                        .clone()
                        .unwrap_or_else(|| format!("{} bytes", file.expected_size.unwrap_or(0))),
                    actual: result.sha256.clone(),
                });
            }
        }
        let facts = match request
            .files
            .iter()
            .find(|file| file.role == FileRole::Weights)
        {
            Some(weights) => Some(
                gguf::read_local(&part_path(&folder.join(&weights.file_name)))
                    .await?
                    .facts(),
            ),
            None => None,
        };
        for file in &request.files {
            let final_path = folder.join(&file.file_name);
            let part = part_path(&final_path);
            std::fs::rename(&part, &final_path).map_err(|source| {
                EngineError::StorageUnavailable {
                    path: final_path.clone(),
                    source,
                }
            })?;
            download::discard_part(&part);
        }
        let model = InstalledModel {
            id: id.to_owned(),
            name: request.name.clone(),
            kind: request.kind,
            files: request
                .files
                .iter()
                .zip(&fetched)
                .map(|(file, result)| ModelFile {
                    role: file.role,
                    file_name: file.file_name.clone(),
                    size_bytes: result.size,
                    sha256: result.sha256.clone(),
                    url: file.url.clone(),
                })
                .collect(),
            source: request.source.clone(),
            facts,
            added_at_ms: self.inner.clock.now_ms(),
        };
        self.change_catalog(|catalog| {
            catalog.models.retain(|other| other.id != model.id);
            catalog.models.push(model);
        })
    }

    /// Records how a run ended.
    fn settle(&self, id: &str, outcome: Result<()>) {
        let discard = self.with_job(id, |job| job.discard).unwrap_or(false);
        match outcome {
            Ok(()) => {
                self.update(id, |status| {
                    status.state = DownloadState::Complete;
                    status.eta_seconds = Some(0);
                });
                lock(&self.inner.jobs).remove(id);
                self.announce_models();
            }
            Err(EngineError::Cancelled) if discard => self.finish_cancel(id),
            Err(EngineError::Cancelled) => self.update(id, |status| {
                status.state = DownloadState::Paused;
                status.speed_bps = 0;
                status.eta_seconds = None;
            }),
            Err(error) => {
                tracing::warn!(%error, id, "download failed");
                // Only what cannot be resumed is thrown away.
                if matches!(
                    error,
                    EngineError::ChecksumMismatch { .. }
                        | EngineError::SizeMismatch { .. }
                        | EngineError::InvalidGguf { .. }
                ) {
                    self.remove_files(id);
                }
                self.update(id, |status| {
                    status.state = DownloadState::Failed;
                    status.speed_bps = 0;
                    status.eta_seconds = None;
                    status.error = Some(error.report());
                });
            }
        }
        if let Err(error) = self.record_pending(id) {
            tracing::warn!(%error, "could not record pending downloads");
        }
    }

    fn finish_cancel(&self, id: &str) {
        self.remove_files(id);
        self.update(id, |status| status.state = DownloadState::Cancelled);
        lock(&self.inner.jobs).remove(id);
        if let Err(error) = self.record_pending(id) {
            tracing::warn!(%error, "could not record pending downloads");
        }
    }

    fn remove_files(&self, id: &str) {
        if self.catalog().get(id).is_none() {
            let _ = std::fs::remove_dir_all(self.model_dir(id));
        }
    }
}

pub(super) fn total_expected(request: &DownloadRequest) -> Option<u64> {
    request.files.iter().map(|file| file.expected_size).sum()
}

fn validated(mut request: DownloadRequest) -> Result<DownloadRequest> {
    if request.name.trim().is_empty() {
        return Err(EngineError::InvalidInput {
            field: "name",
            problem: "a model needs a name".into(),
        });
    }
    if request.files.is_empty() {
        return Err(EngineError::InvalidInput {
            field: "files",
            problem: "choose at least one file".into(),
        });
    }
    let mut names = std::collections::HashSet::new();
    for file in &mut request.files {
        if !(file.url.starts_with("https://") || file.url.starts_with("http://")) {
            return Err(EngineError::InvalidInput {
                field: "url",
                problem: format!("`{}` is not an http(s) address", file.url),
            });
        }
        file.file_name =
            sanitize_file_name(&file.file_name).ok_or_else(|| EngineError::InvalidInput {
                field: "file_name",
                problem: format!("`{}` cannot be a file name", file.file_name),
            })?;
        if !names.insert(file.file_name.clone()) {
            return Err(EngineError::InvalidInput {
                field: "files",
                problem: format!("`{}` is listed twice", file.file_name),
            });
        }
        if let Some(sha) = &mut file.expected_sha256 {
            *sha = sha.trim().to_ascii_lowercase();
            if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(EngineError::InvalidInput {
                    field: "expected_sha256",
                    problem: format!("`{sha}` is not a SHA-256 (64 hex digits)"),
                });
            }
        }
    }
    Ok(request)
}
