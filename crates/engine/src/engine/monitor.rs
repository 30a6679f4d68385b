//! What the Resource Monitor shows that only the engine knows: the orchestrator's
//! status with its prediction for the next image, and the image server's state.

use serde::Serialize;
use ts_rs::TS;

use super::Engine;
use crate::diffusion::ImageServerInfo;
use crate::errors::Result;
use crate::estimate::diffusion::DiffusionEstimate;
use crate::llama::{EndpointActivity, InstanceStatus, SavedSlotsUsage};
use crate::orchestrator::{
    InstanceUsage, OffloadPrediction, OrchestratorPhase, OrchestratorPolicy, SavedState,
};

/// The image the prediction is for: the default request, one 512×512 image.
pub const NEXT_IMAGE_SIZE: u32 = 512;

/// What the next default image would need and do to the LLM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct NextImagePrediction {
    pub width: u32,
    pub height: u32,
    pub count: u32,
    /// sd's needs where the placement would put it now.
    pub estimate: DiffusionEstimate,
    pub prediction: OffloadPrediction,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct OrchestratorStatus {
    pub phase: OrchestratorPhase,
    pub policy: OrchestratorPolicy,
    pub saved: Option<SavedState>,
    /// What each running LLM server counts in the decision.
    pub llm: Vec<InstanceUsage>,
    /// `None` while no image server runs (there is no model to estimate).
    pub next_image: Option<NextImagePrediction>,
    /// Each instance's stable endpoint: requests held for it, answered, refused.
    pub endpoints: Vec<EndpointStatus>,
    /// Conversations saved across pauses, on disk.
    pub saved_slots: SavedSlotsUsage,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct EndpointStatus {
    pub name: String,
    /// `http://host:port` clients use.
    pub url: String,
    pub activity: EndpointActivity,
}

/// The image server as the monitor shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct ImageServerStatus {
    pub info: ImageServerInfo,
    /// A job runs or waits.
    pub busy: bool,
    /// Jobs waiting behind the running one.
    pub queued: u32,
    /// The sd process working now.
    pub active_pid: Option<u32>,
}

impl Engine {
    /// The prediction for one default image (512×512) with the running image
    /// server's model and the current placement; `None` without an image server.
    pub fn next_image_prediction(&self) -> Option<NextImagePrediction> {
        let service = self.image_service()?;
        let estimate = service.estimate_for(NEXT_IMAGE_SIZE, NEXT_IMAGE_SIZE, 1);
        Some(NextImagePrediction {
            width: NEXT_IMAGE_SIZE,
            height: NEXT_IMAGE_SIZE,
            count: 1,
            estimate,
            prediction: self
                .orchestrator()
                .would_need_offload(estimate.ram_bytes, estimate.vram_bytes),
        })
    }

    pub fn orchestrator_status(&self) -> OrchestratorStatus {
        let orchestrator = self.orchestrator();
        OrchestratorStatus {
            phase: orchestrator.phase(),
            policy: orchestrator.policy(),
            saved: orchestrator.saved_state(),
            llm: orchestrator.llm_usage(),
            next_image: self.next_image_prediction(),
            endpoints: self.endpoint_statuses(),
            saved_slots: self.llama().saved_slots_usage(),
        }
    }

    fn endpoint_statuses(&self) -> Vec<EndpointStatus> {
        let llama = self.llama();
        llama
            .list()
            .into_iter()
            .filter_map(|status| {
                let url = status.api_endpoint?;
                let activity = llama.endpoint_activity(&status.spec.name)?;
                Some(EndpointStatus {
                    name: status.spec.name,
                    url,
                    activity,
                })
            })
            .collect()
    }

    pub fn image_server_status(&self) -> Option<ImageServerStatus> {
        let info = self.image_server()?;
        let service = self.image_service()?;
        Some(ImageServerStatus {
            info,
            busy: service.busy(),
            queued: u32::try_from(service.queued()).unwrap_or(u32::MAX),
            active_pid: service.active_pid(),
        })
    }

    /// "Restart LLM" after a failed reload: the saved servers start again as they
    /// ran, and the saved state is cleared.
    pub async fn restart_saved_llm(&self) -> Result<Vec<InstanceStatus>> {
        self.orchestrator().restart_saved().await
    }
}
