//! The LLM service's state follows the instances', and the engine announces it: no
//! front end works it out from `llama_state` events.

use std::sync::Arc;

use super::*;
use switchyard_base::services::{EngineStatus, ServiceState};
use switchyard_estimate::Budget;

/// Nothing to launch with: these tests move states by hand.
#[derive(Debug)]
struct NoLaunch;

impl LaunchEnvironment for NoLaunch {
    fn llama_binary(&self) -> Option<BinaryStatus> {
        None
    }
    fn free_memory(&self) -> Budget {
        Budget {
            ram_bytes: 0,
            vram_bytes: 0,
        }
    }
    fn suggested_context(&self) -> u32 {
        4096
    }
}

fn status_events(heard: &mut std::sync::mpsc::Receiver<EngineStatus>) -> Vec<EngineStatus> {
    heard.try_iter().collect()
}

#[test]
fn an_instance_changing_state_changes_the_llm_status_and_says_so() {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let (announce, mut heard) = std::sync::mpsc::channel();
    let board = StatusBoard::new(Emitter::new(move |status| {
        let _ = announce.send(status);
    }));
    let manager = LlamaManager::open(
        dir.path(),
        dir.path(),
        Emitter::silent(),
        board.clone(),
        Arc::new(switchyard_base::clock::SystemClock),
        Arc::new(NoLaunch),
    )
    .manager;
    manager
        .create(InstanceSpec::new("chat", "/models/m.gguf"))
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        status_events(&mut heard),
        [],
        "a stopped instance changes nothing"
    );

    let llm = |state| EngineStatus {
        llm: state,
        diffusion: ServiceState::Stopped,
    };
    let shared = &manager.shared;
    shared.transition("chat", InstanceState::Starting, "test", None, |_| {});
    shared.transition("chat", InstanceState::Loading, "test", None, |_| {});
    shared.transition("chat", InstanceState::Healthy, "test", None, |_| {});
    assert_eq!(
        status_events(&mut heard),
        [llm(ServiceState::Starting), llm(ServiceState::Running)],
        "loading is still starting: one event per change"
    );
    shared.transition("chat", InstanceState::Stopping, "test", None, |_| {});
    shared.transition("chat", InstanceState::Stopped, "test", None, |_| {});
    assert_eq!(
        status_events(&mut heard),
        [llm(ServiceState::Stopping), llm(ServiceState::Stopped)]
    );
    assert_eq!(board.get(), llm(ServiceState::Stopped));
}
