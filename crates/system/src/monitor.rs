//! Caches what does not change (CPU, OS, which GPUs, memory bandwidth) and reads what does (free RAM
//! and VRAM, CPU use) fresh on every call.

use std::sync::{Arc, OnceLock};

use super::{
    recommend, CpuInfo, GpuIdentity, GpuInfo, GpuMemory, OsInfo, SystemInfo, SystemProbe,
    SystemSample,
};
use switchyard_base::clock::Clock;

#[derive(Debug)]
struct StaticFacts {
    cpu: CpuInfo,
    os: OsInfo,
    gpus: Vec<GpuIdentity>,
    ram_bandwidth: Option<u64>,
}

#[derive(Debug)]
pub struct SystemMonitor {
    probe: Arc<dyn SystemProbe>,
    clock: Arc<dyn Clock>,
    facts: OnceLock<StaticFacts>,
}

impl SystemMonitor {
    pub fn new(probe: Arc<dyn SystemProbe>, clock: Arc<dyn Clock>) -> Self {
        Self {
            probe,
            clock,
            facts: OnceLock::new(),
        }
    }

    fn facts(&self) -> &StaticFacts {
        self.facts.get_or_init(|| StaticFacts {
            cpu: self.probe.cpu(),
            os: self.probe.os(),
            gpus: self.probe.gpus(),
            ram_bandwidth: self.probe.ram_bandwidth(),
        })
    }

    /// The full picture: cached identity, fresh memory, and the recommendation for
    /// models that generate at least `usable_tokens_per_second`.
    pub fn info(&self, usable_tokens_per_second: f64) -> SystemInfo {
        let facts = self.facts();
        let memory = self.probe.memory();
        let gpu_memory = self.probe.gpu_memory();
        let recommendation = recommend(
            &facts.cpu,
            &memory,
            (&facts.gpus, &gpu_memory),
            facts.ram_bandwidth,
            usable_tokens_per_second,
        );
        SystemInfo {
            cpu: facts.cpu.clone(),
            os: facts.os.clone(),
            memory,
            ram_bandwidth_bytes_per_second: facts.ram_bandwidth,
            gpus: facts
                .gpus
                .iter()
                .map(|identity| GpuInfo {
                    identity: identity.clone(),
                    memory: memory_for(identity.index, &gpu_memory),
                })
                .collect(),
            recommendation,
            sampled_at_ms: self.clock.now_ms(),
        }
    }

    /// Only what changes, for the live charts and bars.
    pub fn sample(&self) -> SystemSample {
        SystemSample {
            sampled_at_ms: self.clock.now_ms(),
            cpu_usage_percent: self.probe.cpu_usage_percent(),
            memory: self.probe.memory(),
            gpus: self.probe.gpu_memory(),
        }
    }
}

fn memory_for(index: u32, readings: &[GpuMemory]) -> GpuMemory {
    readings
        .iter()
        .find(|memory| memory.index == index)
        .copied()
        .unwrap_or_else(|| GpuMemory::unknown(index))
}
