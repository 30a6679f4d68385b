//! Where the orchestrator reads memory: totals decide whether to offload, fresh
//! free amounts decide when a reload may go.

/// RAM and the largest GPU's VRAM (0 without a GPU), read now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemorySample {
    pub ram_total_bytes: u64,
    pub ram_free_bytes: u64,
    pub vram_total_bytes: u64,
    pub vram_free_bytes: u64,
}

pub trait MemorySource: Send + Sync + std::fmt::Debug {
    fn sample(&self) -> MemorySample;
}
