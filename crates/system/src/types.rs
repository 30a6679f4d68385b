//! The hardware facts the engine reports. Byte counts are `u64` in Rust and
//! `number` in TypeScript (exact up to 8 PiB).

use serde::Serialize;
use ts_rs::TS;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct CpuInfo {
    /// Marketing name, e.g. "AMD Ryzen 9 7950X 16-Core Processor".
    pub brand: String,
    pub vendor: String,
    /// Instruction set architecture, e.g. "x86_64", "aarch64".
    pub arch: String,
    /// Physical cores, when the OS tells.
    pub physical_cores: Option<u32>,
    /// Hardware threads (logical processors).
    pub logical_cores: u32,
    /// SIMD features that decide which llama.cpp CPU build runs fastest.
    pub features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct OsInfo {
    /// e.g. "Debian GNU/Linux 12 (bookworm)".
    pub name: String,
    pub kernel: Option<String>,
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct MemoryInfo {
    #[ts(type = "number")]
    pub total_bytes: u64,
    /// What new processes can get without swapping (MemAvailable on Linux).
    #[ts(type = "number")]
    pub available_bytes: u64,
    #[ts(type = "number")]
    pub used_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum GpuVendor {
    Nvidia,
    Amd,
    Apple,
}

/// The llama.cpp / stable-diffusion.cpp backends that can drive a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum GpuBackend {
    Cuda,
    Rocm,
    Vulkan,
    Metal,
}

/// What a GPU is; does not change while the app runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct GpuIdentity {
    pub index: u32,
    pub vendor: GpuVendor,
    pub name: String,
    /// Driver name and version, when known (e.g. "NVIDIA 560.35.03").
    pub driver: Option<String>,
    pub backends: Vec<GpuBackend>,
    /// The GPU shares system RAM (Apple Silicon): RAM and VRAM are one budget.
    pub unified_memory: bool,
    /// Memory bandwidth as the driver states it (bytes per second), where it does:
    /// what bounds generation speed for the layers on this GPU.
    #[ts(type = "number | null")]
    pub memory_bandwidth_bytes_per_second: Option<u64>,
}

/// A GPU's memory right now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct GpuMemory {
    pub index: u32,
    #[ts(type = "number")]
    pub total_bytes: u64,
    #[ts(type = "number | null")]
    pub used_bytes: Option<u64>,
    #[ts(type = "number | null")]
    pub free_bytes: Option<u64>,
    pub utilization_percent: Option<f32>,
}

impl GpuMemory {
    /// A GPU whose memory could not be read.
    pub fn unknown(index: u32) -> Self {
        Self {
            index,
            total_bytes: 0,
            used_bytes: None,
            free_bytes: None,
            utilization_percent: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct GpuInfo {
    #[serde(flatten)]
    pub identity: GpuIdentity,
    pub memory: GpuMemory,
}

/// Where models would run, as the recommendation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum RunsOn {
    Gpu,
    UnifiedMemory,
    Cpu,
}

/// What this machine can run, in plain words. A first version from memory size
/// alone; the estimator refines it per model.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Recommendation {
    pub runs_on: RunsOn,
    /// The largest model file that fits with room for its context.
    #[ts(type = "number")]
    pub max_model_bytes: u64,
    pub suggested_context: u32,
    /// Predicted generation speed of a model of `max_model_bytes` here; `None`
    /// when the memory bandwidth is unknown.
    pub max_model_tokens_per_second: Option<f64>,
    /// The speed the person calls usable (the `usable_tokens_per_second` setting).
    pub usable_tokens_per_second: f64,
    /// The largest model file that fits and still generates at the usable speed
    /// (at most `max_model_bytes`); `None` when the bandwidth is unknown.
    #[ts(type = "number | null")]
    pub usable_model_bytes: Option<u64>,
    /// How fast a quantized model's weights are read where models run (bytes per
    /// second): the GPU's or RAM's bandwidth as llama.cpp reaches it, or on few
    /// cores what they dequantize. Speed predictions for models known by their
    /// size alone divide by it.
    pub read_rate_bytes_per_second: Option<f64>,
    /// One sentence: the largest model that fits.
    pub headline: String,
    /// Further plain sentences (where it runs, context, caveats).
    pub details: Vec<String>,
}

/// Everything the System tab shows.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct SystemInfo {
    pub cpu: CpuInfo,
    pub os: OsInfo,
    pub memory: MemoryInfo,
    /// RAM read bandwidth measured once at start (bytes per second): what bounds
    /// generation speed for the layers in RAM.
    #[ts(type = "number | null")]
    pub ram_bandwidth_bytes_per_second: Option<u64>,
    pub gpus: Vec<GpuInfo>,
    pub recommendation: Recommendation,
    #[ts(type = "number")]
    pub sampled_at_ms: u64,
}

/// The changing part of [`SystemInfo`], sent every couple of seconds.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct SystemSample {
    #[ts(type = "number")]
    pub sampled_at_ms: u64,
    pub cpu_usage_percent: Option<f32>,
    pub memory: MemoryInfo,
    pub gpus: Vec<GpuMemory>,
}
