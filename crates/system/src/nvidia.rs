//! NVIDIA GPUs through NVML. The library is loaded on first use; a machine without
//! the NVIDIA driver is the normal case and yields no GPUs, not an error.

use std::sync::OnceLock;

use nvml_wrapper::enum_wrappers::device::Clock;
use nvml_wrapper::{Device, Nvml};

use super::{GpuBackend, GpuIdentity, GpuMemory, GpuVendor};

#[derive(Default)]
pub struct NvidiaGpus {
    nvml: OnceLock<Option<Nvml>>,
}

impl std::fmt::Debug for NvidiaGpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvidiaGpus")
            .field("loaded", &self.nvml.get().map(Option::is_some))
            .finish()
    }
}

impl NvidiaGpus {
    fn nvml(&self) -> Option<&Nvml> {
        self.nvml
            .get_or_init(|| match Nvml::init() {
                Ok(nvml) => Some(nvml),
                Err(error) => {
                    tracing::debug!(%error, "NVML not available: no NVIDIA GPUs");
                    None
                }
            })
            .as_ref()
    }

    pub fn count(&self) -> u32 {
        self.nvml()
            .and_then(|nvml| nvml.device_count().ok())
            .unwrap_or(0)
    }

    /// NVIDIA GPUs in NVML order; `first_index` numbers them among all GPUs.
    pub fn identities(&self, first_index: u32) -> Vec<GpuIdentity> {
        let Some(nvml) = self.nvml() else {
            return Vec::new();
        };
        let driver = nvml
            .sys_driver_version()
            .ok()
            .map(|version| format!("NVIDIA {version}"));
        (0..self.count())
            .map(|nvml_index| {
                let device = nvml.device_by_index(nvml_index).ok();
                GpuIdentity {
                    index: first_index + nvml_index,
                    vendor: GpuVendor::Nvidia,
                    name: device
                        .as_ref()
                        .and_then(|device| device.name().ok())
                        .unwrap_or_else(|| format!("NVIDIA GPU {nvml_index}")),
                    driver: driver.clone(),
                    backends: vec![GpuBackend::Cuda, GpuBackend::Vulkan],
                    unified_memory: false,
                    memory_bandwidth_bytes_per_second: device.as_ref().and_then(bandwidth),
                }
            })
            .collect()
    }

    /// Memory of each NVIDIA GPU, read now.
    pub fn memory(&self, first_index: u32) -> Vec<GpuMemory> {
        let Some(nvml) = self.nvml() else {
            return Vec::new();
        };
        (0..self.count())
            .map(|nvml_index| {
                let index = first_index + nvml_index;
                let Ok(device) = nvml.device_by_index(nvml_index) else {
                    return GpuMemory::unknown(index);
                };
                let memory = device.memory_info().ok();
                GpuMemory {
                    index,
                    total_bytes: memory.as_ref().map_or(0, |m| m.total),
                    used_bytes: memory.as_ref().map(|m| m.used),
                    free_bytes: memory.as_ref().map(|m| m.free),
                    utilization_percent: device
                        .utilization_rates()
                        .ok()
                        .and_then(|rates| u16::try_from(rates.gpu).ok().map(f32::from)),
                }
            })
            .collect()
    }
}

/// The GPU's memory bandwidth by its specification (bus width and highest memory
/// clock); `None` where NVML does not say (some virtual GPUs).
fn bandwidth(device: &Device<'_>) -> Option<u64> {
    let bus_width = device.memory_bus_width().ok()?;
    let clock = device.max_clock_info(Clock::Memory).ok()?;
    super::bandwidth::gpu_bandwidth(bus_width, clock)
}
