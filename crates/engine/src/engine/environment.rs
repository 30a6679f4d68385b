//! What the llama-server manager and the orchestrator ask the engine for at each
//! start: the binary, free memory, a context size, a memory sample.

use std::path::Path;
use std::sync::Weak;

use super::{Engine, Inner};
use crate::binaries::{BinaryKind, BinaryStatus};
use crate::estimate::Budget;
use crate::llama::LaunchEnvironment;
use crate::locks::read;
use crate::orchestrator::{MemorySample, MemorySource};

/// What the llama-server manager needs from the engine at each start.
#[derive(Debug)]
pub(super) struct EngineEnvironment {
    pub(super) engine: Weak<Inner>,
}

impl LaunchEnvironment for EngineEnvironment {
    fn llama_binary(&self) -> Option<BinaryStatus> {
        let engine = self.engine.upgrade()?;
        // The person's own build when Settings name one and it passed its tests
        // (also after a restart, before anyone pressed "Set up" again), else the
        // downloaded one.
        let custom = read(&engine.settings)
            .custom_binary_path(BinaryKind::LlamaServer)
            .map(Path::to_path_buf);
        match custom {
            Some(path) => engine
                .binaries
                .custom_status(BinaryKind::LlamaServer, &path),
            None => engine.binaries.status(BinaryKind::LlamaServer),
        }
    }

    fn free_memory(&self) -> Budget {
        match self.engine.upgrade() {
            Some(inner) => Engine { inner }.free_budget(),
            None => Budget {
                ram_bytes: 0,
                vram_bytes: 0,
            },
        }
    }

    fn suggested_context(&self) -> u32 {
        self.engine.upgrade().map_or(4096, |inner| {
            Engine { inner }
                .system_info()
                .recommendation
                .suggested_context
        })
    }
}

impl MemorySource for EngineEnvironment {
    fn sample(&self) -> MemorySample {
        let Some(engine) = self.engine.upgrade() else {
            return MemorySample::default();
        };
        let sample = engine.system.sample();
        // The GPU with the most memory is the one a model would use.
        let gpu = sample.gpus.iter().max_by_key(|gpu| gpu.total_bytes);
        MemorySample {
            ram_total_bytes: sample.memory.total_bytes,
            ram_free_bytes: sample.memory.available_bytes,
            vram_total_bytes: gpu.map_or(0, |gpu| gpu.total_bytes),
            vram_free_bytes: gpu.and_then(|gpu| gpu.free_bytes).unwrap_or(0),
        }
    }
}
