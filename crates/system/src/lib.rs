//! Hardware: what this machine has (cached) and how much of it is free (read fresh
//! for every call: stale free-memory numbers caused false "insufficient RAM" in the
//! seed).

mod amd;
mod apple;
mod bandwidth;
mod budget;
mod cpu_features;
mod host;
mod monitor;
mod nvidia;
mod recommend;
mod types;

pub use amd::AmdSysfs;
pub use apple::apple_unified_gpu;
pub use bandwidth::{gpu_bandwidth, measure_ram_bandwidth, RAM_PROBE_BYTES};
pub use budget::{machine_bandwidth, machine_budget};
pub use host::HostProbe;
pub use monitor::SystemMonitor;
pub use nvidia::NvidiaGpus;
pub use recommend::recommend;
pub use types::*;

/// The source of hardware facts. [`HostProbe`] reads the real machine; tests pass
/// their own.
pub trait SystemProbe: Send + Sync + std::fmt::Debug {
    /// CPU identity and features. Called once; the result is cached.
    fn cpu(&self) -> CpuInfo;
    /// Operating system identity. Called once; the result is cached.
    fn os(&self) -> OsInfo;
    /// The GPUs present, without their (changing) memory use. Called once.
    fn gpus(&self) -> Vec<GpuIdentity>;
    /// RAM read bandwidth in bytes per second (a short measurement). Called once.
    fn ram_bandwidth(&self) -> Option<u64>;
    /// RAM right now.
    fn memory(&self) -> MemoryInfo;
    /// Each GPU's memory right now, by the index given in [`SystemProbe::gpus`].
    fn gpu_memory(&self) -> Vec<GpuMemory>;
    /// CPU use across all cores since the previous call, if it can be known yet.
    fn cpu_usage_percent(&self) -> Option<f32>;
}
