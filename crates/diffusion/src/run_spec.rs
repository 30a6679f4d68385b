//! What a runner is given (the job, its configuration, where progress goes) and
//! what it gives back, shared by the CLI runner and the server runner.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::model_files::DiffusionModelFiles;
use super::placement::Placement;
use super::progress::Progress;
use super::request::ImageRequest;

/// One job as a runner sees it.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub request: ImageRequest,
    /// The first image's seed; image `i` gets `seed + i`.
    pub seed: i64,
    pub placement: Placement,
    pub timeout: Duration,
}

/// One finished image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedImage {
    pub png: Vec<u8>,
    pub seed: i64,
    pub width: u32,
    pub height: u32,
}

pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

/// What every runner needs.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// `sd-cli` (or `sd`).
    pub cli_binary: PathBuf,
    pub files: DiffusionModelFiles,
    pub threads: Option<u32>,
    /// How long sd gets to end after SIGTERM before it is killed.
    pub stop_grace: Duration,
    /// Where per-job output folders are made.
    pub work_dir: PathBuf,
    /// How long a persistent server may take to load the model.
    pub load_timeout: Duration,
    pub active_pid: ActivePid,
    /// Where each sd's pid file goes (the engine's state folder).
    pub pid_dir: Option<PathBuf>,
}

/// The pid of the sd process working right now (0: none), shared with the service
/// so status reports it while the worker owns the runner.
#[derive(Debug, Clone, Default)]
pub struct ActivePid(Arc<std::sync::atomic::AtomicU32>);

impl ActivePid {
    pub fn set(&self, pid: Option<u32>) {
        self.0
            .store(pid.unwrap_or(0), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn get(&self) -> Option<u32> {
        Some(self.0.load(std::sync::atomic::Ordering::SeqCst)).filter(|pid| *pid != 0)
    }
}

/// Width and height from a PNG's header (IHDR comes first, by the standard).
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let read = |at: usize| {
        png.get(at..at + 4)
            .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
            .map(u32::from_be_bytes)
    };
    Some((read(16)?, read(20)?))
}
