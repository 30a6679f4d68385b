//! What the control API's image and room calls carry, for the client and the
//! server alike.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diffusion::ImageRequest;

/// A generation as `switchyard image` asks the daemon for one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonImageRequest {
    /// An installed diffusion model; `None`: the first installed one.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(flatten)]
    pub request: ImageRequest,
}

/// The job the daemon queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedImage {
    pub id: String,
    /// The model it runs on.
    pub model: String,
}

/// A client waits at most this long per call for a job to finish (then asks again),
/// so no connection stays open for the hours a large batch may take.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// What the image about to run needs, and for whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRequest {
    pub ram_bytes: u64,
    pub vram_bytes: u64,
    /// The process making the image: should it end without saying the image is
    /// done (a crash, a kill), the daemon brings its servers back by itself.
    pub pid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomAnswer {
    /// Whether the daemon stopped LLM servers for it.
    pub made: bool,
}
