//! The state of the two services the tray and the header show. The LLM and image
//! issues give these states their transitions; until a service is set up it is
//! `stopped`.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ServiceKind {
    Llm,
    Diffusion,
}

impl ServiceKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Llm => "LLM",
            Self::Diffusion => "Images",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ServiceState {
    Stopped,
    Starting,
    Running,
    Failed,
}

impl ServiceState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Failed => "failed",
        }
    }
}

/// Both services at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct EngineStatus {
    pub llm: ServiceState,
    pub diffusion: ServiceState,
}

impl Default for EngineStatus {
    fn default() -> Self {
        Self {
            llm: ServiceState::Stopped,
            diffusion: ServiceState::Stopped,
        }
    }
}

impl EngineStatus {
    pub fn state(&self, kind: ServiceKind) -> ServiceState {
        match kind {
            ServiceKind::Llm => self.llm,
            ServiceKind::Diffusion => self.diffusion,
        }
    }

    /// The tray tooltip: one line per service.
    pub fn summary(&self) -> String {
        [ServiceKind::Llm, ServiceKind::Diffusion]
            .map(|kind| format!("{}: {}", kind.label(), self.state(kind).label()))
            .join("\n")
    }
}

/// The LLM service as the header and the tray see it, from the instances' states:
/// running when one serves, starting while one comes up, failed when one gave up
/// or crashed (and none serves), else stopped.
pub fn llm_service_state(
    states: impl IntoIterator<Item = crate::llama::InstanceState>,
) -> ServiceState {
    use crate::llama::InstanceState as S;
    let states: Vec<S> = states.into_iter().collect();
    if states
        .iter()
        .any(|s| matches!(s, S::Healthy | S::Unhealthy))
    {
        ServiceState::Running
    } else if states
        .iter()
        .any(|s| matches!(s, S::Starting | S::Loading | S::Restarting))
    {
        ServiceState::Starting
    } else if states.iter().any(|s| matches!(s, S::Failed | S::Crashed)) {
        ServiceState::Failed
    } else {
        ServiceState::Stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llama::InstanceState as S;

    #[test]
    fn the_llm_service_follows_its_liveliest_instance() {
        assert_eq!(llm_service_state([]), ServiceState::Stopped);
        assert_eq!(
            llm_service_state([S::Stopped, S::Healthy, S::Failed]),
            ServiceState::Running
        );
        assert_eq!(
            llm_service_state([S::Stopped, S::Loading]),
            ServiceState::Starting
        );
        assert_eq!(
            llm_service_state([S::Stopped, S::Crashed]),
            ServiceState::Failed
        );
        assert_eq!(
            llm_service_state([S::Stopped, S::Stopping]),
            ServiceState::Stopped
        );
    }

    #[test]
    fn summary_names_both_services() {
        let status = EngineStatus {
            llm: ServiceState::Running,
            diffusion: ServiceState::Stopped,
        };
        assert_eq!(status.summary(), "LLM: running\nImages: stopped");
    }
}
