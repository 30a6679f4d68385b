use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use switchyard_engine::system::{
    CpuInfo, GpuBackend, GpuIdentity, GpuMemory, GpuVendor, MemoryInfo, OsInfo, SystemProbe,
};

pub const GIB: u64 = 1024 * 1024 * 1024;

/// Hardware of a test's choosing. Free RAM and VRAM can be changed while the engine
/// runs; static facts count how often they are read (they must be cached).
#[derive(Debug)]
pub struct FakeProbe {
    pub cpu: CpuInfo,
    pub gpus: Vec<GpuIdentity>,
    /// RAM read bandwidth (bytes/s); `None` as if the probe failed.
    pub ram_bandwidth: Option<u64>,
    total_ram: u64,
    available_ram: AtomicU64,
    gpu_memory: Mutex<Vec<GpuMemory>>,
    static_reads: AtomicU32,
}

impl FakeProbe {
    /// An 8-core, 16-thread AVX2 machine with `ram_gib` of RAM and no GPU.
    pub fn cpu_only(ram_gib: u64) -> Self {
        Self {
            cpu: CpuInfo {
                brand: "Fake Ryzen 7 5800X".into(),
                vendor: "AuthenticAMD".into(),
                arch: "x86_64".into(),
                physical_cores: Some(8),
                logical_cores: 16,
                features: vec!["AVX".into(), "AVX2".into(), "FMA".into()],
            },
            gpus: Vec::new(),
            // Dual-channel DDR4-3200, as such a desktop has: ~40 GB/s.
            ram_bandwidth: Some(40_000_000_000),
            total_ram: ram_gib * GIB,
            available_ram: AtomicU64::new(ram_gib * GIB / 2),
            gpu_memory: Mutex::new(Vec::new()),
            static_reads: AtomicU32::new(0),
        }
    }

    /// Adds an NVIDIA GPU with `vram_gib` total and nothing used.
    pub fn with_nvidia(mut self, name: &str, vram_gib: u64) -> Self {
        let index = u32::try_from(self.gpus.len()).unwrap_or(u32::MAX);
        self.gpus.push(GpuIdentity {
            index,
            vendor: GpuVendor::Nvidia,
            name: name.into(),
            driver: Some("NVIDIA 560.35.03".into()),
            backends: vec![GpuBackend::Cuda, GpuBackend::Vulkan],
            unified_memory: false,
            // A mid-range card's GDDR6: ~450 GB/s.
            memory_bandwidth_bytes_per_second: Some(450_000_000_000),
        });
        self.lock_gpu_memory().push(GpuMemory {
            index,
            total_bytes: vram_gib * GIB,
            used_bytes: Some(0),
            free_bytes: Some(vram_gib * GIB),
            utilization_percent: Some(0.0),
        });
        self
    }

    /// The same machine with `bytes` of RAM, all of it free: a small budget.
    pub fn with_ram_bytes(mut self, bytes: u64) -> Self {
        self.total_ram = bytes;
        self.available_ram = AtomicU64::new(bytes);
        self
    }

    pub fn set_available_ram(&self, bytes: u64) {
        self.available_ram.store(bytes, Ordering::SeqCst);
    }

    pub fn set_vram_used(&self, index: u32, used: u64) {
        for memory in self
            .lock_gpu_memory()
            .iter_mut()
            .filter(|m| m.index == index)
        {
            memory.used_bytes = Some(used);
            memory.free_bytes = Some(memory.total_bytes.saturating_sub(used));
        }
    }

    /// How many times the static facts (CPU, OS, GPUs) were read.
    pub fn static_reads(&self) -> u32 {
        self.static_reads.load(Ordering::SeqCst)
    }

    fn lock_gpu_memory(&self) -> std::sync::MutexGuard<'_, Vec<GpuMemory>> {
        self.gpu_memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SystemProbe for FakeProbe {
    fn cpu(&self) -> CpuInfo {
        self.static_reads.fetch_add(1, Ordering::SeqCst);
        self.cpu.clone()
    }

    fn os(&self) -> OsInfo {
        self.static_reads.fetch_add(1, Ordering::SeqCst);
        OsInfo {
            name: "FakeOS 1.0".into(),
            kernel: Some("6.1.0".into()),
            hostname: Some("fake".into()),
        }
    }

    fn gpus(&self) -> Vec<GpuIdentity> {
        self.static_reads.fetch_add(1, Ordering::SeqCst);
        self.gpus.clone()
    }

    fn ram_bandwidth(&self) -> Option<u64> {
        self.static_reads.fetch_add(1, Ordering::SeqCst);
        self.ram_bandwidth
    }

    fn memory(&self) -> MemoryInfo {
        let available = self.available_ram.load(Ordering::SeqCst);
        MemoryInfo {
            total_bytes: self.total_ram,
            available_bytes: available,
            used_bytes: self.total_ram.saturating_sub(available),
        }
    }

    fn gpu_memory(&self) -> Vec<GpuMemory> {
        self.lock_gpu_memory().clone()
    }

    fn cpu_usage_percent(&self) -> Option<f32> {
        Some(12.5)
    }
}
