//! What a start needs from the rest of the engine, behind a trait so the manager
//! holds no engine (and tests can hand it anything).

use switchyard_binaries::BinaryStatus;
use switchyard_estimate::Budget;

pub trait LaunchEnvironment: Send + Sync + std::fmt::Debug {
    /// The validated llama-server, if one has been set up.
    fn llama_binary(&self) -> Option<BinaryStatus>;
    /// RAM and VRAM free right now (read fresh: stale numbers caused false
    /// "insufficient memory" in the seed).
    fn free_memory(&self) -> Budget;
    /// The context the machine can afford, for a model that leaves it open.
    fn suggested_context(&self) -> u32;
}
