//! Any bytes that parse as a GGUF header into everything that reads a header for
//! memory: the facts, the model's shape, and the estimate and fitting on a CPU and
//! a GPU machine. Counts in the metadata must never size a table, overflow or
//! take time beyond what the file holds.
//! Seeds: `fuzz/corpus/gguf_estimate/hostile-*` (crafted headers, from
//! `switchyard_testkit::gguf::hostile`).
//! Run: `cargo fuzz run gguf_estimate` (nightly, or RUSTC_BOOTSTRAP=1 on stable).

#![no_main]

use switchyard_engine::estimate::{estimate, first_estimate, Backend, Budget, LlamaConfig, ModelShape};
use switchyard_engine::gguf::parse;

const GIB: u64 = 1 << 30;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // As a local file (its length known) and as a remote header (length unknown).
    for file_len in [Some(data.len() as u64), None] {
        let Ok(file) = parse(data, file_len) else {
            continue;
        };
        let _facts = file.facts();
        let machines = [
            (Backend::Cpu, Budget { ram_bytes: 16 * GIB, vram_bytes: 0 }),
            (Backend::Cuda, Budget { ram_bytes: 64 * GIB, vram_bytes: 24 * GIB }),
        ];
        for (backend, budget) in machines {
            let _preview = first_estimate(&file, 32_768, backend, budget);
        }
        if let Ok(shape) = ModelShape::from_gguf(&file) {
            let everything = LlamaConfig {
                gpu_layers: u32::MAX,
                cpu_moe_layers: u32::MAX,
                ..LlamaConfig::default()
            };
            let _estimate = estimate(&shape, &everything, Backend::Vulkan);
        }
    }
});
