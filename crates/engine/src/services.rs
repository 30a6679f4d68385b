//! The state of the two services the tray and the header show. The LLM and image
//! issues give these states their transitions; until a service is set up it is
//! `stopped`. [`StatusBoard`] holds them for the parts that change them.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::events::{EngineEvent, EventBus};
use crate::locks::{read, write};

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
    /// Asked to stop; its processes are ending.
    Stopping,
    Failed,
}

impl ServiceState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
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
/// running when one serves, starting while one comes up, stopping while one ends,
/// failed when one gave up or crashed (and none serves), else stopped.
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
    } else if states.contains(&S::Stopping) {
        ServiceState::Stopping
    } else if states.iter().any(|s| matches!(s, S::Failed | S::Crashed)) {
        ServiceState::Failed
    } else {
        ServiceState::Stopped
    }
}

/// Both services' states, shared by the parts that change them (the llama-server
/// manager, the image server). A change is announced here, as `StatusChanged`
/// with the whole status, once, and only when something changed: every front end
/// hears it from the engine, none has to work it out.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    status: Arc<RwLock<EngineStatus>>,
    events: EventBus,
}

impl StatusBoard {
    pub fn new(events: EventBus) -> Self {
        Self {
            status: Arc::new(RwLock::new(EngineStatus::default())),
            events,
        }
    }

    pub fn get(&self) -> EngineStatus {
        *read(&self.status)
    }

    /// Sets one service's state; announces the status when it changed.
    pub fn set(&self, kind: ServiceKind, state: ServiceState) {
        let mut status = write(&self.status);
        if status.state(kind) == state {
            return;
        }
        match kind {
            ServiceKind::Llm => status.llm = state,
            ServiceKind::Diffusion => status.diffusion = state,
        }
        // Sent under the lock, so two changes are heard in the order they were made.
        self.events.emit(EngineEvent::StatusChanged(*status));
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
            llm_service_state([S::Failed, S::Stopping]),
            ServiceState::Stopping
        );
        assert_eq!(
            llm_service_state([S::Stopping, S::Restarting]),
            ServiceState::Starting
        );
    }

    #[test]
    fn the_board_announces_each_change_once() {
        let events = EventBus::default();
        let mut heard = events.subscribe();
        let board = StatusBoard::new(events);
        board.set(ServiceKind::Diffusion, ServiceState::Starting);
        board.set(ServiceKind::Diffusion, ServiceState::Starting);
        board.set(ServiceKind::Llm, ServiceState::Running);
        let expected = [
            EngineStatus {
                llm: ServiceState::Stopped,
                diffusion: ServiceState::Starting,
            },
            EngineStatus {
                llm: ServiceState::Running,
                diffusion: ServiceState::Starting,
            },
        ];
        for status in expected {
            assert_eq!(
                heard.try_recv().ok(),
                Some(EngineEvent::StatusChanged(status))
            );
        }
        assert!(
            heard.try_recv().is_err(),
            "an unchanged state is not announced"
        );
        assert_eq!(board.get(), expected[1]);
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
