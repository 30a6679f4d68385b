//! What the instances announce; the engine wraps each into its `EngineEvent`.

use crate::{ChatDelta, ChatOutcome, InstanceStatus, LogLine, SlotsReport, StateChange};

#[derive(Debug, Clone, PartialEq)]
pub enum LlamaEvent {
    /// An instance moved to another state (with the reason).
    State(StateChange),
    /// Instances were created, changed or removed: the whole list.
    Instances { instances: Vec<InstanceStatus> },
    /// New output lines of an instance, batched.
    Log {
        instance: String,
        lines: Vec<LogLine>,
    },
    /// A piece of a streaming test chat's answer.
    ChatDelta(ChatDelta),
    /// A test chat finished (with llama-server's speed).
    ChatDone {
        instance: String,
        outcome: ChatOutcome,
    },
    /// An instance's conversations were saved before a stop, or restored after.
    Slots(SlotsReport),
}
