//! Image generation with stable-diffusion.cpp behind Switchyard's image API.
//!
//! - [`request`]: what a caller asks for, validated; seeds fixed before the run.
//! - [`model_files`]: a model's files and the sd flag each goes to.
//! - [`placement`]: `--clip-on-cpu`/`--vae-on-cpu`/`--vae-tiling` from free VRAM.
//! - [`args`]: sd-cli and sd-server command lines and request bodies.
//! - [`progress`]: sd's output (bars redrawn with `\r`, log lines) into progress.
//! - [`child`]: an sd process: streamed output, stderr tail, graceful stop.
//! - [`runner`], [`cli_runner`], [`server_runner`]: sd-cli per job, or a persistent
//!   sd-server.
//! - [`jobs`]: the bounded FIFO queue and finished results (TTL).
//! - [`gate`]: the hook every generation passes (the orchestrator's seam).
//! - [`service`]: [`ImageService`], the queue's single worker.
//! - [`http`], [`openapi`]: the HTTP API on loopback.

pub mod args;
pub mod capabilities;
pub mod child;
pub mod cli_runner;
pub mod control;
pub mod gate;
pub mod http;
pub mod jobs;
pub mod model_files;
pub mod openapi;
pub mod placement;
pub mod progress;
pub mod request;
pub mod runner;
pub mod server_runner;
pub mod service;

use serde::Serialize;
use ts_rs::TS;

pub use capabilities::SdCapabilities;
pub use control::{DiffusionAction, DiffusionControl};
pub use gate::{GateDecision, GateOutcome, GateRequest, GenerationGate, OpenGate};
pub use jobs::{JobError, JobImage, JobResult, JobStatus, JobSummary, JobView};
pub use model_files::DiffusionModelFiles;
pub use progress::{Progress, ProgressParser, Stage};
pub use request::{ImageRequest, PlacementOverrides, RequestLimits};
pub use runner::RunnerKind;
pub use service::{ImageService, ImageServiceOptions};

use crate::errors::{EngineError, Result};

/// The running image server, as the window shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct ImageServerInfo {
    /// Where other programs reach the API.
    pub url: String,
    pub port: u16,
    pub runner: RunnerKind,
    /// The installed model's id, or the model file's name.
    pub model: String,
    pub capabilities: SdCapabilities,
    /// What a request may ask for (sizes, steps, count), and the defaults.
    pub limits: RequestLimits,
}

/// A port on loopback that nobody listens on right now (the OS picks it).
pub(crate) fn free_loopback_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| EngineError::Internal {
            problem: format!("no free loopback port: {error}"),
        })
}
