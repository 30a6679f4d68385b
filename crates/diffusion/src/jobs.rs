//! Jobs and their queue: a bounded FIFO, one job running at a time, finished jobs kept
//! for a while (TTL) so a client can poll its result, then forgotten. A result is
//! encoded once, when its job ends (base64 for the JSON view, the PNG files for the
//! per-image route), and shared by every poll; the retained results are capped in
//! bytes, the oldest dropped first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

use super::progress::{Progress, Stage};
use super::request::ImageRequest;
use super::runner::GeneratedImage;
use switchyard_base::errors::{EngineError, ErrorCode, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum JobStatus {
    Pending,
    Running,
    Complete,
    Error,
    Cancelled,
}

impl JobStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Complete | Self::Error | Self::Cancelled)
    }
}

/// One image of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct JobImage {
    /// Base64 of the PNG file (encoded once, shared by every view of the job).
    #[ts(type = "string")]
    pub image: Arc<str>,
    #[ts(type = "number")]
    pub seed: i64,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct JobResult {
    pub images: Vec<JobImage>,
    /// From the start of the run to the last image (queue time excluded).
    #[ts(type = "number")]
    pub time_ms: u64,
}

/// How sd ended, for a failed job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct FailureDetails {
    pub exit: String,
    pub exit_code: Option<i32>,
    /// sd's last standard-error lines (at most 20), oldest first.
    pub stderr: Vec<String>,
    pub out_of_memory: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct JobError {
    pub code: ErrorCode,
    pub message: String,
    pub suggestion: String,
    pub details: Option<FailureDetails>,
}

impl From<&EngineError> for JobError {
    fn from(error: &EngineError) -> Self {
        let details = match error {
            EngineError::GenerationFailed {
                exit,
                exit_code,
                stderr_tail,
                out_of_memory,
            } => Some(FailureDetails {
                exit: exit.clone(),
                exit_code: *exit_code,
                stderr: stderr_tail.clone(),
                out_of_memory: *out_of_memory,
            }),
            _ => None,
        };
        Self {
            code: error.code(),
            message: error.to_string(),
            suggestion: error.suggestion(),
            details,
        }
    }
}

/// A job as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct JobView {
    pub id: String,
    pub status: JobStatus,
    pub progress: Progress,
    /// Seconds left by sd's own step timing, while sampling.
    pub eta_seconds: Option<f32>,
    /// Jobs ahead of this one while pending.
    pub queue_position: Option<u32>,
    pub result: Option<JobResult>,
    pub error: Option<JobError>,
}

/// A job's state without its images, for events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct JobSummary {
    pub id: String,
    pub status: JobStatus,
    pub progress: Progress,
    /// Seconds left by sd's own step timing, while sampling.
    pub eta_seconds: Option<f32>,
    pub error: Option<JobError>,
}

/// A finished image as it is kept: the PNG file and its base64, each made once.
#[derive(Debug, Clone)]
pub(crate) struct FinishedImage {
    pub png: Bytes,
    pub base64: Arc<str>,
    pub seed: i64,
    pub width: u32,
    pub height: u32,
}

impl From<GeneratedImage> for FinishedImage {
    fn from(image: GeneratedImage) -> Self {
        Self {
            base64: base64::engine::general_purpose::STANDARD
                .encode(&image.png)
                .into(),
            png: Bytes::from(image.png),
            seed: image.seed,
            width: image.width,
            height: image.height,
        }
    }
}

#[derive(Debug)]
pub(crate) struct JobRecord {
    pub id: String,
    pub request: ImageRequest,
    pub seed: i64,
    pub status: JobStatus,
    pub progress: Progress,
    pub images: Vec<FinishedImage>,
    /// The finished job's view as JSON, serialized once (outside the store's lock).
    pub json: Option<Bytes>,
    pub time_ms: u64,
    pub error: Option<JobError>,
    pub cancel: CancellationToken,
    pub finished_at: Option<Instant>,
}

impl JobRecord {
    /// Only while sd is working: a finished or waiting job has no time left to tell.
    fn eta_seconds(&self) -> Option<f32> {
        (self.status == JobStatus::Running)
            .then(|| self.progress.eta_seconds())
            .flatten()
    }

    pub fn summary(&self) -> JobSummary {
        JobSummary {
            id: self.id.clone(),
            status: self.status,
            progress: self.progress,
            eta_seconds: self.eta_seconds(),
            error: self.error.clone(),
        }
    }

    /// Memory the kept result takes: the PNG files, their base64 and the JSON.
    fn retained_bytes(&self) -> u64 {
        let images: usize = self
            .images
            .iter()
            .map(|image| image.png.len() + image.base64.len())
            .sum();
        (images + self.json.as_ref().map_or(0, Bytes::len)) as u64
    }
}

/// Why a finished job's result is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forgotten {
    /// Its time to be fetched passed.
    Expired,
    /// Newer results needed the memory.
    OverCap,
}

/// Ids of forgotten jobs remembered, so a late poll learns why it got nothing.
const FORGOTTEN_REMEMBERED: usize = 1024;

/// Jobs by id, and the ids waiting, oldest first.
#[derive(Debug)]
pub(crate) struct JobStore {
    jobs: HashMap<String, JobRecord>,
    queue: VecDeque<String>,
    capacity: usize,
    ttl: Duration,
    /// Finished results may hold at most this many bytes together.
    max_retained_bytes: u64,
    forgotten: VecDeque<(String, Forgotten)>,
    next_number: u64,
}

impl JobStore {
    pub fn new(capacity: usize, ttl: Duration, max_retained_bytes: u64) -> Self {
        Self {
            jobs: HashMap::new(),
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            ttl,
            max_retained_bytes,
            forgotten: VecDeque::new(),
            next_number: 1,
        }
    }

    /// Queues a validated request; refuses when `capacity` jobs already wait.
    pub fn push(&mut self, request: ImageRequest, now: Instant) -> Result<JobSummary> {
        self.forget_expired(now);
        if self.queue.len() >= self.capacity {
            return Err(EngineError::QueueFull {
                capacity: self.capacity,
            });
        }
        // A counter keeps ids unique and ordered; the random part keeps them
        // unguessable across restarts.
        let id = format!(
            "img_{:06}_{:08x}",
            self.next_number,
            super::request::random_u64() & 0xffff_ffff
        );
        self.next_number += 1;
        let seed = request.resolve_seed();
        let record = JobRecord {
            id: id.clone(),
            progress: Progress::queued(request.count, request.steps),
            request,
            seed,
            status: JobStatus::Pending,
            images: Vec::new(),
            json: None,
            time_ms: 0,
            error: None,
            cancel: CancellationToken::new(),
            finished_at: None,
        };
        let summary = record.summary();
        self.jobs.insert(id.clone(), record);
        self.queue.push_back(id);
        Ok(summary)
    }

    /// The oldest waiting job, now running.
    pub fn start_next(&mut self) -> Option<(String, ImageRequest, i64, CancellationToken)> {
        while let Some(id) = self.queue.pop_front() {
            if let Some(record) = self.jobs.get_mut(&id) {
                if record.status == JobStatus::Pending {
                    record.status = JobStatus::Running;
                    return Some((
                        id,
                        record.request.clone(),
                        record.seed,
                        record.cancel.clone(),
                    ));
                }
            }
        }
        None
    }

    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    pub fn has_running(&self) -> bool {
        self.jobs
            .values()
            .any(|record| record.status == JobStatus::Running)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut JobRecord> {
        self.jobs.get_mut(id)
    }

    /// Ends a job; returns its summary for the event. The images come encoded
    /// (made before the store is locked).
    pub fn finish(
        &mut self,
        id: &str,
        outcome: Result<Vec<FinishedImage>>,
        time_ms: u64,
        now: Instant,
    ) -> Option<JobSummary> {
        let record = self.jobs.get_mut(id)?;
        match outcome {
            Ok(images) => {
                record.status = JobStatus::Complete;
                record.images = images;
                record.progress.stage = Stage::Done;
                record.progress.percent = 100.0;
            }
            Err(EngineError::Cancelled) => {
                record.status = JobStatus::Cancelled;
                record.progress.stage = Stage::Done;
            }
            Err(error) => {
                record.status = JobStatus::Error;
                record.error = Some(JobError::from(&error));
                record.progress.stage = Stage::Done;
            }
        }
        record.time_ms = time_ms;
        record.finished_at = Some(now);
        let summary = record.summary();
        self.drop_oldest_over_cap(id);
        Some(summary)
    }

    /// Keeps a finished job's view serialized (made outside the lock) for every
    /// later poll.
    pub fn keep_json(&mut self, id: &str, json: Bytes) {
        if let Some(record) = self.jobs.get_mut(id) {
            if record.status.is_finished() {
                record.json = Some(json);
                self.drop_oldest_over_cap(id);
            }
        }
    }

    /// A finished job's serialized view, when it has been made.
    pub fn json(&mut self, id: &str, now: Instant) -> Option<Bytes> {
        self.forget_expired(now);
        self.jobs.get(id)?.json.clone()
    }

    /// Image `index` of a complete job, as its PNG file.
    pub fn png(&mut self, id: &str, index: usize, now: Instant) -> Result<Bytes> {
        self.forget_expired(now);
        let record = self.jobs.get(id).ok_or_else(|| self.not_found(id))?;
        record
            .images
            .get(index)
            .map(|image| image.png.clone())
            .ok_or_else(|| EngineError::NotFound {
                what: "Image",
                id: format!("{id}/images/{index}"),
            })
    }

    /// Bytes the finished results hold together.
    pub fn retained_bytes(&self) -> u64 {
        self.jobs.values().map(JobRecord::retained_bytes).sum()
    }

    /// Drops the oldest finished results (never `keep`, the newest) while they hold
    /// more than the cap.
    fn drop_oldest_over_cap(&mut self, keep: &str) {
        while self.retained_bytes() > self.max_retained_bytes {
            let oldest = self
                .jobs
                .values()
                .filter(|record| record.id != keep && record.retained_bytes() > 0)
                .filter_map(|record| Some((record.finished_at?, record.id.clone())))
                .min();
            let Some((_, id)) = oldest else {
                return;
            };
            self.jobs.remove(&id);
            self.remember_forgotten(id, Forgotten::OverCap);
        }
    }

    fn remember_forgotten(&mut self, id: String, why: Forgotten) {
        if self.forgotten.len() >= FORGOTTEN_REMEMBERED {
            self.forgotten.pop_front();
        }
        self.forgotten.push_back((id, why));
    }

    /// `RESULT_EXPIRED` for a job whose result was dropped, else `NOT_FOUND`.
    fn not_found(&self, id: &str) -> EngineError {
        let why = self
            .forgotten
            .iter()
            .find(|(forgotten, _)| forgotten == id)
            .map(|(_, why)| *why);
        match why {
            Some(Forgotten::Expired) => EngineError::ResultExpired {
                id: id.to_owned(),
                reason: format!("finished results are kept {} s", self.ttl.as_secs()),
            },
            Some(Forgotten::OverCap) => EngineError::ResultExpired {
                id: id.to_owned(),
                reason: format!(
                    "the oldest results are dropped once they hold more than {} MiB",
                    self.max_retained_bytes >> 20
                ),
            },
            None => not_found(id),
        }
    }

    /// Cancels a job: a waiting one leaves the queue now; a running one is signalled
    /// and ends when its sd process is gone.
    pub fn cancel(&mut self, id: &str, now: Instant) -> Result<JobSummary> {
        let Some(record) = self.jobs.get_mut(id) else {
            return Err(self.not_found(id));
        };
        match record.status {
            JobStatus::Pending => {
                record.status = JobStatus::Cancelled;
                record.progress.stage = Stage::Done;
                record.finished_at = Some(now);
                self.queue.retain(|queued| queued != id);
            }
            JobStatus::Running => record.cancel.cancel(),
            JobStatus::Complete | JobStatus::Error | JobStatus::Cancelled => {}
        }
        Ok(record.summary())
    }

    /// Cancels everything (the service stops).
    pub fn cancel_all(&mut self, now: Instant) -> Vec<JobSummary> {
        let ids: Vec<String> = self.jobs.keys().cloned().collect();
        ids.iter()
            .filter_map(|id| self.cancel(id, now).ok())
            .collect()
    }

    pub fn view(&mut self, id: &str, now: Instant) -> Result<JobView> {
        self.forget_expired(now);
        let queue_position = self
            .queue
            .iter()
            .position(|queued| queued == id)
            .and_then(|position| u32::try_from(position).ok());
        let record = self.jobs.get(id).ok_or_else(|| self.not_found(id))?;
        // Cheap under the lock: the images are shared, not copied or encoded.
        let result = (record.status == JobStatus::Complete).then(|| JobResult {
            images: record
                .images
                .iter()
                .map(|image| JobImage {
                    image: image.base64.clone(),
                    seed: image.seed,
                    width: image.width,
                    height: image.height,
                })
                .collect(),
            time_ms: record.time_ms,
        });
        Ok(JobView {
            id: record.id.clone(),
            status: record.status,
            progress: record.progress,
            eta_seconds: record.eta_seconds(),
            queue_position,
            result,
            error: record.error.clone(),
        })
    }

    fn forget_expired(&mut self, now: Instant) {
        let ttl = self.ttl;
        let expired: Vec<String> = self
            .jobs
            .values()
            .filter(|record| {
                record
                    .finished_at
                    .is_some_and(|finished| now.duration_since(finished) >= ttl)
            })
            .map(|record| record.id.clone())
            .collect();
        for id in expired {
            self.jobs.remove(&id);
            self.remember_forgotten(id, Forgotten::Expired);
        }
    }
}

fn not_found(id: &str) -> EngineError {
    EngineError::NotFound {
        what: "Image job",
        id: id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sampling_job_has_an_eta() {
        let now = Instant::now();
        let mut store = JobStore::new(4, Duration::from_secs(60), u64::MAX);
        let request = ImageRequest {
            steps: 10,
            count: 2,
            ..ImageRequest::new("a cat")
        };
        let id = store.push(request, now).unwrap().id;
        assert_eq!(store.view(&id, now).unwrap().eta_seconds, None, "pending");

        store.start_next().unwrap();
        let record = store.get_mut(&id).unwrap();
        record.progress.stage = Stage::Sampling;
        record.progress.step = 4;
        assert_eq!(record.summary().eta_seconds, None, "no step timing yet");
        record.progress.seconds_per_step = Some(0.5);
        // 6 steps of image 1 and 10 of image 2 at 0.5 s.
        assert_eq!(record.summary().eta_seconds, Some(8.0));
        assert_eq!(store.view(&id, now).unwrap().eta_seconds, Some(8.0));

        store.finish(&id, Ok(Vec::new()), 10, now).unwrap();
        assert_eq!(store.view(&id, now).unwrap().eta_seconds, None, "finished");
    }

    const MIB: usize = 1024 * 1024;

    /// `count` images of `size` bytes each, as sd would hand them back (bytes that
    /// differ, so nothing can be shared by accident).
    fn images(count: usize, size: usize) -> Vec<FinishedImage> {
        (0..count)
            .map(|index| {
                FinishedImage::from(GeneratedImage {
                    png: (0..size).map(|byte| (byte * 31 + index) as u8).collect(),
                    seed: index as i64,
                    width: 512,
                    height: 512,
                })
            })
            .collect()
    }

    fn finished_job(store: &mut JobStore, count: usize, size: usize, now: Instant) -> String {
        let id = store.push(ImageRequest::new("a cat"), now).unwrap().id;
        store.start_next().unwrap();
        store.finish(&id, Ok(images(count, size)), 10, now).unwrap();
        id
    }

    /// Resident memory of this process, from /proc/self/statm (pages × 4 KiB on the
    /// machines the tests run on).
    #[cfg(target_os = "linux")]
    fn resident_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    #[test]
    fn a_finished_result_is_encoded_once_and_shared_by_every_poll() {
        let now = Instant::now();
        let mut store = JobStore::new(4, Duration::from_secs(60), u64::MAX);
        let id = finished_job(&mut store, 16, MIB, now);
        let first = store.view(&id, now).unwrap().result.unwrap();
        let second = store.view(&id, now).unwrap().result.unwrap();
        assert_eq!(first.images.len(), 16);
        for (a, b) in first.images.iter().zip(&second.images) {
            assert!(Arc::ptr_eq(&a.image, &b.image), "one encoding, shared");
        }
        // The serialized view is kept once made, and shared too.
        store.keep_json(&id, Bytes::from(serde_json::to_vec(&first).unwrap()));
        let (a, b) = (store.json(&id, now).unwrap(), store.json(&id, now).unwrap());
        assert_eq!(a.as_ptr(), b.as_ptr());
    }

    /// 64 polls of a finished 16-image job answered at once (slow clients): each
    /// holds its view while it is written out. Shared, they cost no more memory than
    /// one; encoded per poll they would take 64 × 21 MiB.
    #[cfg(target_os = "linux")]
    #[test]
    fn polls_of_a_finished_16_image_job_do_not_grow_memory_per_poll() {
        let now = Instant::now();
        let mut store = JobStore::new(4, Duration::from_secs(60), u64::MAX);
        let id = finished_job(&mut store, 16, MIB, now);
        let before = resident_bytes();
        let views: Vec<JobView> = (0..64).map(|_| store.view(&id, now).unwrap()).collect();
        let grown = resident_bytes().saturating_sub(before);
        assert_eq!(views.len(), 64);
        assert!(
            grown < 16 * MIB,
            "64 polls grew resident memory by {} MiB",
            grown / MIB
        );
    }

    #[test]
    fn results_over_the_memory_cap_drop_the_oldest_with_a_clear_code() {
        let now = Instant::now();
        // Each 4-image job of 1 MiB PNGs retains ~9.3 MiB (PNGs and base64).
        let mut store = JobStore::new(8, Duration::from_secs(60), 20 * MIB as u64);
        let oldest = finished_job(&mut store, 4, MIB, now);
        let middle = finished_job(&mut store, 4, MIB, now + Duration::from_secs(1));
        assert!(store.view(&oldest, now).is_ok(), "two fit the cap");
        let newest = finished_job(&mut store, 4, MIB, now + Duration::from_secs(2));
        assert!(store.retained_bytes() <= 20 * MIB as u64);

        let error = store.view(&oldest, now).unwrap_err();
        assert_eq!(error.code(), ErrorCode::ResultExpired);
        assert!(error.to_string().contains("20 MiB"), "{error}");
        assert_eq!(
            store.png(&oldest, 0, now).unwrap_err().code(),
            ErrorCode::ResultExpired
        );
        assert!(store.view(&middle, now).is_ok());
        assert_eq!(store.png(&newest, 3, now).unwrap().len(), MIB);
        assert_eq!(
            store.png(&newest, 4, now).unwrap_err().code(),
            ErrorCode::NotFound
        );
        // A result alone over the cap is still kept: it is the newest.
        let huge = finished_job(&mut store, 16, 2 * MIB, now + Duration::from_secs(3));
        assert!(store.view(&huge, now).is_ok());
        assert_eq!(
            store.view(&newest, now).unwrap_err().code(),
            ErrorCode::ResultExpired
        );
        // Never made: not found, not expired.
        assert_eq!(
            store.view("img_nope", now).unwrap_err().code(),
            ErrorCode::NotFound
        );
    }

    #[test]
    fn an_expired_result_says_so() {
        let now = Instant::now();
        let mut store = JobStore::new(4, Duration::from_secs(60), u64::MAX);
        let id = finished_job(&mut store, 1, 1024, now);
        let later = now + Duration::from_secs(61);
        let error = store.view(&id, later).unwrap_err();
        assert_eq!(error.code(), ErrorCode::ResultExpired);
        assert!(error.to_string().contains("kept 60 s"), "{error}");
    }
}
