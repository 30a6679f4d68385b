//! The state of the two services the tray and the header show. The LLM and image
//! issues give these states their transitions; until a service is set up it is
//! `stopped`. [`StatusBoard`] holds them for the parts that change them. The LLM
//! service's state from its instances is the llama crate's `llm_service_state`.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::emit::Emitter;
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

/// Both services' states, shared by the parts that change them (the llama-server
/// manager, the image server). A change is announced here, as `StatusChanged`
/// with the whole status, once, and only when something changed: every front end
/// hears it from the engine, none has to work it out.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    status: Arc<RwLock<EngineStatus>>,
    announce: Emitter<EngineStatus>,
}

impl StatusBoard {
    pub fn new(announce: Emitter<EngineStatus>) -> Self {
        Self {
            status: Arc::new(RwLock::new(EngineStatus::default())),
            announce,
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
        self.announce.emit(*status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_announces_each_change_once() {
        let (send, heard) = std::sync::mpsc::channel();
        let board = StatusBoard::new(Emitter::new(move |status| {
            let _ = send.send(status);
        }));
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
            assert_eq!(heard.try_recv().ok(), Some(status));
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
