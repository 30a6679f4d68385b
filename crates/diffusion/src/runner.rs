//! What runs a job: `sd-cli` once per job, or a persistent `sd-server` that keeps the
//! model loaded. Only the image service's worker holds a runner, so every generation
//! passes its queue and its [`GenerationGate`](super::gate::GenerationGate).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

use super::cli_runner::CliRunner;
use super::model_files::DiffusionModelFiles;
use super::placement::Placement;
use super::progress::Progress;
use super::request::ImageRequest;
use super::server_runner::ServerRunner;
use switchyard_base::errors::{EngineError, Result};

/// Which way images are made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum RunnerKind {
    /// The persistent server when the binary has one beside it, else the CLI. The
    /// server wins from the second image on (the model stays loaded: bench
    /// `image-latency`).
    #[default]
    Auto,
    /// `sd-cli` per job: nothing stays in memory between jobs.
    Cli,
    /// `sd-server`, started on the first job and kept.
    Server,
}

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

#[derive(Debug)]
// One runner per service, made once and never moved in bulk: its size is no cost.
#[allow(clippy::large_enum_variant)]
pub enum Runner {
    Cli(CliRunner),
    Server(ServerRunner),
}

impl Runner {
    pub fn new(kind: RunnerKind, config: RunnerConfig) -> Result<Self> {
        let server = server_binary_beside(&config.cli_binary);
        match (kind, server) {
            (RunnerKind::Cli, _) | (RunnerKind::Auto, None) => {
                Ok(Self::Cli(CliRunner::new(config)))
            }
            (RunnerKind::Server | RunnerKind::Auto, Some(server)) => {
                Ok(Self::Server(ServerRunner::new(config, server)))
            }
            (RunnerKind::Server, None) => Err(EngineError::BinaryUnavailable {
                kind: "sd-server".into(),
                problem: format!(
                    "there is no sd-server beside {}",
                    config.cli_binary.display()
                ),
            }),
        }
    }

    pub fn kind(&self) -> RunnerKind {
        match self {
            Self::Cli(_) => RunnerKind::Cli,
            Self::Server(_) => RunnerKind::Server,
        }
    }

    pub async fn generate(
        &mut self,
        job: &JobSpec,
        sink: &ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<Vec<GeneratedImage>> {
        match self {
            Self::Cli(runner) => runner.generate(job, sink, cancel).await,
            Self::Server(runner) => runner.generate(job, sink, cancel).await,
        }
    }

    /// Frees what stays loaded between jobs (the persistent server's model).
    pub async fn release(&mut self) {
        if let Self::Server(runner) = self {
            runner.stop().await;
        }
    }
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

/// `sd-server` next to the CLI, as release archives and source builds place it.
pub fn server_binary_beside(cli: &Path) -> Option<PathBuf> {
    let server = cli.with_file_name(format!("sd-server{}", std::env::consts::EXE_SUFFIX));
    server.is_file().then_some(server)
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
