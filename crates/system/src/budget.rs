//! The backend and memory budget of this machine, as the estimator sees them: the
//! largest discrete GPU's VRAM (NVIDIA through CUDA, others through Vulkan), Apple
//! Silicon's unified memory, or RAM alone.

use crate::{GpuVendor, SystemInfo};
use switchyard_estimate::Backend;
use switchyard_estimate::{Bandwidth, Budget};

/// Share of RAM a model may plan for: the OS and other programs keep the rest.
const RAM_SHARE: f64 = 0.75;
/// Share of VRAM: the display and other programs keep the rest.
const VRAM_SHARE: f64 = 0.9;

/// `bytes × factor`; precision loss is irrelevant at this granularity.
pub(crate) fn share(bytes: u64, factor: f64) -> u64 {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let scaled = (bytes as f64 * factor) as u64;
    scaled
}

/// The backend llama.cpp would use here and what a model may plan to take, from
/// total sizes ("can this machine run it?"); the check before a start uses what is
/// free at that moment instead.
pub fn machine_budget(system: &SystemInfo) -> (Backend, Budget) {
    let ram = share(system.memory.total_bytes, RAM_SHARE);
    let largest = system
        .gpus
        .iter()
        .filter(|gpu| !gpu.identity.unified_memory)
        .max_by_key(|gpu| gpu.memory.total_bytes);
    if let Some(gpu) = largest.filter(|gpu| gpu.memory.total_bytes > 0) {
        let backend = if gpu.identity.vendor == GpuVendor::Nvidia {
            Backend::Cuda
        } else {
            Backend::Vulkan
        };
        let budget = Budget {
            ram_bytes: ram,
            vram_bytes: share(gpu.memory.total_bytes, VRAM_SHARE),
        };
        return (backend, budget);
    }
    if system.gpus.iter().any(|gpu| gpu.identity.unified_memory) {
        // One pool: what Metal takes, RAM does not have.
        return (
            Backend::Metal,
            Budget {
                ram_bytes: ram / 2,
                vram_bytes: ram / 2,
            },
        );
    }
    (
        Backend::Cpu,
        Budget {
            ram_bytes: ram,
            vram_bytes: 0,
        },
    )
}

/// The memory bandwidths speed predictions use: RAM's (measured at start) and the
/// GPU's that [`machine_budget`] plans on. `None` when RAM's was not measured.
pub fn machine_bandwidth(system: &SystemInfo) -> Option<Bandwidth> {
    let gpu = system
        .gpus
        .iter()
        .filter(|gpu| !gpu.identity.unified_memory)
        .max_by_key(|gpu| gpu.memory.total_bytes)
        .filter(|gpu| gpu.memory.total_bytes > 0)
        .or_else(|| system.gpus.iter().find(|gpu| gpu.identity.unified_memory));
    Some(Bandwidth {
        ram_bytes_per_second: system.ram_bandwidth_bytes_per_second?,
        gpu_bytes_per_second: gpu.and_then(|gpu| gpu.identity.memory_bandwidth_bytes_per_second),
        cpu_threads: system
            .cpu
            .physical_cores
            .unwrap_or(system.cpu.logical_cores),
    })
}
