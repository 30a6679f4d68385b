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
pub mod run_spec;
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

/// What image generation announces; the engine wraps it into its `EngineEvent`.
#[derive(Debug, Clone, PartialEq)]
pub enum DiffusionEvent {
    /// An image job was queued, moved on (stage, step, percent) or finished.
    JobChanged(JobSummary),
}

use switchyard_base::errors::{EngineError, Result};

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

/// An address on loopback that nobody listens on right now, for sd-server (the OS
/// picks the port).
pub(crate) fn private_loopback_address() -> Result<std::net::SocketAddr> {
    // Linux and Windows route all of 127.0.0.0/8 to this machine: a random address
    // in it is one a page scanning 127.0.0.1 never tries (sd-server has no key, and
    // it reflects any Origin, with credentials). Elsewhere only 127.0.0.1 is there.
    #[cfg(any(target_os = "linux", windows))]
    for _ in 0..8 {
        let mut bytes = [0_u8; 3];
        if getrandom::fill(&mut bytes).is_err() {
            break;
        }
        let address = std::net::Ipv4Addr::new(127, bytes[0], bytes[1], bytes[2].max(2));
        if let Ok(address) =
            std::net::TcpListener::bind((address, 0)).and_then(|listener| listener.local_addr())
        {
            return Ok(address);
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|error| EngineError::Internal {
            problem: format!("no free loopback port: {error}"),
        })
}

#[cfg(all(test, target_os = "linux"))]
mod address_tests {
    #[test]
    fn sd_server_gets_a_loopback_address_a_page_does_not_try() {
        let address = super::private_loopback_address().unwrap_or_else(|error| panic!("{error}"));
        assert!(address.ip().is_loopback(), "{address}");
        assert_ne!(address.ip().to_string(), "127.0.0.1", "{address}");
        assert_ne!(address.port(), 0);
    }
}
