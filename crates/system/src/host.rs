//! The real machine: sysinfo for CPU and RAM, NVML for NVIDIA, sysfs for AMD, and
//! unified memory for Apple Silicon.

use std::sync::{Mutex, OnceLock};

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

use switchyard_base::errors::{EngineError, Result};

use super::amd::{AmdCard, AmdSysfs};
use super::nvidia::NvidiaGpus;
use super::{
    apple, bandwidth, cpu_features, CpuInfo, GpuIdentity, GpuMemory, MemoryInfo, OsInfo,
    SystemProbe,
};

#[derive(Debug)]
pub struct HostProbe {
    system: Mutex<System>,
    nvidia: NvidiaGpus,
    amd: AmdSysfs,
    amd_cards: OnceLock<Vec<AmdCard>>,
    apple_gpu: OnceLock<Option<GpuIdentity>>,
}

impl HostProbe {
    /// Reads this machine, with AMD GPUs from the kernel's sysfs.
    pub fn for_this_machine() -> Result<Self> {
        Self::new(AmdSysfs::default())
    }

    pub fn new(amd: AmdSysfs) -> Result<Self> {
        let refresh = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing().with_usage())
            .with_memory(MemoryRefreshKind::nothing().with_ram());
        let system = System::new_with_specifics(refresh).map_err(|error| {
            EngineError::HardwareUnreadable {
                problem: error.to_string(),
            }
        })?;
        Ok(Self {
            system: Mutex::new(system),
            nvidia: NvidiaGpus::default(),
            amd,
            amd_cards: OnceLock::new(),
            apple_gpu: OnceLock::new(),
        })
    }

    fn with_system<T>(&self, read: impl FnOnce(&mut System) -> T) -> T {
        let mut system = switchyard_base::locks::lock(&self.system);
        read(&mut system)
    }

    fn amd_cards(&self) -> &[AmdCard] {
        self.amd_cards.get_or_init(|| self.amd.cards())
    }

    fn apple_gpu(&self) -> Option<&GpuIdentity> {
        self.apple_gpu
            .get_or_init(|| {
                let cpu = self.cpu();
                apple::apple_unified_gpu(&cpu.brand, &cpu.arch)
            })
            .as_ref()
    }
}

impl SystemProbe for HostProbe {
    fn cpu(&self) -> CpuInfo {
        self.with_system(|system| {
            system.refresh_cpu_specifics(CpuRefreshKind::nothing().with_frequency());
            let first = system.cpus().first();
            CpuInfo {
                brand: first
                    .map(|cpu| cpu.brand().trim().to_owned())
                    .unwrap_or_default(),
                vendor: first
                    .map(|cpu| cpu.vendor_id().to_owned())
                    .unwrap_or_default(),
                arch: std::env::consts::ARCH.to_owned(),
                physical_cores: System::physical_core_count()
                    .ok()
                    .and_then(|count| u32::try_from(count).ok()),
                logical_cores: u32::try_from(system.cpus().len()).unwrap_or(u32::MAX),
                features: cpu_features::detect(),
            }
        })
    }

    fn os(&self) -> OsInfo {
        OsInfo {
            name: System::long_os_version()
                .or_else(|_| System::name())
                .unwrap_or_else(|_| std::env::consts::OS.to_owned()),
            kernel: System::kernel_version().ok(),
            hostname: System::host_name().ok(),
        }
    }

    fn gpus(&self) -> Vec<GpuIdentity> {
        if let Some(apple) = self.apple_gpu() {
            return vec![apple.clone()];
        }
        let mut gpus = self.nvidia.identities(0);
        let first_amd = u32::try_from(gpus.len()).unwrap_or(0);
        gpus.extend(
            self.amd_cards()
                .iter()
                .zip(first_amd..)
                .map(|(card, index)| card.identity(index)),
        );
        gpus
    }

    fn ram_bandwidth(&self) -> Option<u64> {
        // One reader per physical core: llama.cpp's default thread count.
        let threads = self
            .cpu()
            .physical_cores
            .map(|cores| cores as usize)
            .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
            .unwrap_or(1);
        let bandwidth = bandwidth::measure_ram_bandwidth(bandwidth::RAM_PROBE_BYTES, threads);
        tracing::info!(?bandwidth, threads, "RAM read bandwidth measured");
        bandwidth
    }

    fn memory(&self) -> MemoryInfo {
        self.with_system(|system| {
            system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
            MemoryInfo {
                total_bytes: system.total_memory(),
                available_bytes: system.available_memory(),
                used_bytes: system
                    .total_memory()
                    .saturating_sub(system.available_memory()),
            }
        })
    }

    fn gpu_memory(&self) -> Vec<GpuMemory> {
        if self.apple_gpu().is_some() {
            return vec![apple::unified_memory(0, &self.memory())];
        }
        let mut memory = self.nvidia.memory(0);
        let first_amd = self.nvidia.count();
        memory.extend(
            self.amd_cards()
                .iter()
                .zip(first_amd..)
                .map(|(card, index)| card.memory(index)),
        );
        memory
    }

    fn cpu_usage_percent(&self) -> Option<f32> {
        self.with_system(|system| {
            system.refresh_cpu_usage();
            let usage = system.global_cpu_usage();
            usage.is_finite().then_some(usage)
        })
    }
}
