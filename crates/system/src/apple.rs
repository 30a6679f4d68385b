//! Apple Silicon: the GPU shares system RAM, so its "VRAM" is the RAM budget.

use super::{GpuBackend, GpuIdentity, GpuMemory, GpuVendor, MemoryInfo};

/// The GPU of an Apple Silicon Mac, described from the CPU name and RAM: there is no
/// separate VRAM to query. `None` for any other CPU.
pub fn apple_unified_gpu(cpu_brand: &str, arch: &str) -> Option<GpuIdentity> {
    if arch != "aarch64" || !cpu_brand.starts_with("Apple") {
        return None;
    }
    Some(GpuIdentity {
        index: 0,
        vendor: GpuVendor::Apple,
        name: format!("{cpu_brand} GPU"),
        driver: Some("Metal".into()),
        backends: vec![GpuBackend::Metal],
        unified_memory: true,
        memory_bandwidth_bytes_per_second: None,
    })
}

/// Unified memory as GPU memory: what RAM has free is what the GPU can get.
pub fn unified_memory(index: u32, ram: &MemoryInfo) -> GpuMemory {
    GpuMemory {
        index,
        total_bytes: ram.total_bytes,
        used_bytes: Some(ram.used_bytes),
        free_bytes: Some(ram.available_bytes),
        utilization_percent: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_apple_silicon_gets_a_unified_gpu() {
        let gpu = apple_unified_gpu("Apple M2 Pro", "aarch64").unwrap();
        assert_eq!(gpu.name, "Apple M2 Pro GPU");
        assert!(gpu.unified_memory);
        assert_eq!(gpu.backends, [GpuBackend::Metal]);
        assert!(apple_unified_gpu("Intel(R) Core(TM) i9", "x86_64").is_none());
        assert!(apple_unified_gpu("Neoverse-N1", "aarch64").is_none());
    }

    #[test]
    fn unified_memory_mirrors_ram() {
        let ram = MemoryInfo {
            total_bytes: 32,
            available_bytes: 20,
            used_bytes: 12,
        };
        let memory = unified_memory(0, &ram);
        assert_eq!(
            (memory.total_bytes, memory.free_bytes, memory.used_bytes),
            (32, Some(20), Some(12))
        );
    }
}
