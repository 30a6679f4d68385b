//! Jobs and their queue: a bounded FIFO, one job running at a time, finished jobs kept
//! for a while (TTL) so a client can poll its result, then forgotten.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

use super::progress::{Progress, Stage};
use super::request::ImageRequest;
use super::runner::GeneratedImage;
use crate::errors::{EngineError, ErrorCode, Result};

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
    /// Base64 of the PNG file.
    pub image: String,
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

#[derive(Debug)]
pub(crate) struct JobRecord {
    pub id: String,
    pub request: ImageRequest,
    pub seed: i64,
    pub status: JobStatus,
    pub progress: Progress,
    pub images: Vec<GeneratedImage>,
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
}

/// Jobs by id, and the ids waiting, oldest first.
#[derive(Debug)]
pub(crate) struct JobStore {
    jobs: HashMap<String, JobRecord>,
    queue: VecDeque<String>,
    capacity: usize,
    ttl: Duration,
    next_number: u64,
}

impl JobStore {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            jobs: HashMap::new(),
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            ttl,
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

    /// Ends a job; returns its summary for the event.
    pub fn finish(
        &mut self,
        id: &str,
        outcome: Result<Vec<GeneratedImage>>,
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
        Some(record.summary())
    }

    /// Cancels a job: a waiting one leaves the queue now; a running one is signalled
    /// and ends when its sd process is gone.
    pub fn cancel(&mut self, id: &str, now: Instant) -> Result<JobSummary> {
        let record = self.jobs.get_mut(id).ok_or_else(|| not_found(id))?;
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
        let record = self.jobs.get(id).ok_or_else(|| not_found(id))?;
        let result = (record.status == JobStatus::Complete).then(|| JobResult {
            images: record
                .images
                .iter()
                .map(|image| JobImage {
                    image: base64::engine::general_purpose::STANDARD.encode(&image.png),
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
        self.jobs.retain(|_, record| {
            record
                .finished_at
                .is_none_or(|finished| now.duration_since(finished) < ttl)
        });
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
        let mut store = JobStore::new(4, Duration::from_secs(60));
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
}
