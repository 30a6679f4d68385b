//! What runs a job: `sd-cli` once per job, or a persistent `sd-server` that keeps the
//! model loaded. Only the image service's worker holds a runner, so every generation
//! passes its queue and its [`GenerationGate`](super::gate::GenerationGate).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

use super::cli_runner::CliRunner;
pub use super::run_spec::{
    png_size, ActivePid, GeneratedImage, JobSpec, ProgressSink, RunnerConfig,
};
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

/// `sd-server` next to the CLI, as release archives and source builds place it.
pub fn server_binary_beside(cli: &Path) -> Option<PathBuf> {
    let server = cli.with_file_name(format!("sd-server{}", std::env::consts::EXE_SUFFIX));
    server.is_file().then_some(server)
}
