//! "What can this machine run?" in plain words, from memory sizes and the
//! estimator's KV cache, compute buffers and runtime overhead for a typical model
//! on this machine's backend; each model's own estimate follows when it is picked.

use super::{CpuInfo, GpuIdentity, GpuMemory, GpuVendor, MemoryInfo, Recommendation, RunsOn};
use crate::budget::share as scale;
use switchyard_estimate::{estimate, Backend, LlamaConfig, ModelShape};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Share of the memory budget the context may take before a smaller context wins.
const CONTEXT_SHARE: f64 = 0.15;
const CONTEXT_STEPS: [u32; 5] = [32_768, 16_384, 8_192, 4_096, 2_048];
/// Bytes per parameter of the two quantizations people compare most.
const Q4_K_M_BYTES_PER_PARAM: f64 = 4.85 / 8.0;
const Q8_0_BYTES_PER_PARAM: f64 = 8.5 / 8.0;

/// Builds the recommendation for this machine. `gpus` and `gpu_memory` are paired
/// by index.
pub fn recommend(
    cpu: &CpuInfo,
    memory: &MemoryInfo,
    gpus: &[GpuIdentity],
    gpu_memory: &[GpuMemory],
) -> Recommendation {
    let largest_gpu = gpus
        .iter()
        .filter(|gpu| !gpu.unified_memory)
        .filter_map(|gpu| {
            let vram = gpu_memory
                .iter()
                .find(|m| m.index == gpu.index)?
                .total_bytes;
            (vram > 0).then_some((gpu, vram))
        })
        .max_by_key(|(_, vram)| *vram);
    let unified = gpus.iter().find(|gpu| gpu.unified_memory);

    // Keep room for the OS and other programs: a share of RAM, or the driver's
    // reserve on a GPU.
    let (runs_on, budget, where_text) = match (largest_gpu, unified) {
        (Some((gpu, vram)), _) => (
            RunsOn::Gpu,
            scale(vram, 0.9),
            format!("on the {} ({} of VRAM)", gpu.name, gib(vram)),
        ),
        (None, Some(gpu)) => (
            RunsOn::UnifiedMemory,
            scale(memory.total_bytes, 0.7),
            format!("on the {} (unified memory)", gpu.name),
        ),
        (None, None) => (
            RunsOn::Cpu,
            scale(memory.total_bytes, 0.75),
            "on the CPU".to_owned(),
        ),
    };

    let backend = match (runs_on, largest_gpu) {
        (RunsOn::Gpu, Some((gpu, _))) if gpu.vendor == GpuVendor::Nvidia => Backend::Cuda,
        (RunsOn::Gpu, _) => Backend::Vulkan,
        (RunsOn::UnifiedMemory, _) => Backend::Metal,
        (RunsOn::Cpu, _) => Backend::Cpu,
    };
    let typical = |context| {
        let config = LlamaConfig {
            context,
            gpu_layers: u32::MAX,
            ..LlamaConfig::default()
        };
        let planned = estimate(&typical_model(), &config, backend);
        let (kv, runtime) = (
            planned.ram.kv_cache + planned.vram.kv_cache,
            planned.ram.compute + planned.vram.compute,
        );
        // Where the model lives decides which overheads count against the budget.
        let overhead = match runs_on {
            RunsOn::Gpu => planned.vram.overhead,
            RunsOn::UnifiedMemory | RunsOn::Cpu => planned.ram.overhead + planned.vram.overhead,
        };
        (kv, runtime + overhead)
    };
    let suggested_context = CONTEXT_STEPS
        .into_iter()
        .find(|&context| typical(context).0 <= scale(budget, CONTEXT_SHARE))
        .unwrap_or(CONTEXT_STEPS[CONTEXT_STEPS.len() - 1]);
    // The context's share is reserved whole, so more memory never shrinks the
    // model that fits just because the suggested context grew.
    let max_model_bytes =
        scale(budget, 1.0 - CONTEXT_SHARE).saturating_sub(typical(suggested_context).1);

    let headline = if max_model_bytes == 0 {
        "This machine has too little free memory for local models.".to_owned()
    } else {
        format!(
            "Models up to {} run {where_text}: about {} parameters at Q4_K_M, or {} at Q8_0.",
            gib(max_model_bytes),
            params(max_model_bytes, Q4_K_M_BYTES_PER_PARAM),
            params(max_model_bytes, Q8_0_BYTES_PER_PARAM),
        )
    };

    let mut details = vec![format!(
        "Suggested context: {} tokens.",
        group_thousands(suggested_context)
    )];
    match runs_on {
        RunsOn::Gpu => details.push(format!(
            "Larger models still run with some layers in RAM ({} total), more slowly.",
            gib(memory.total_bytes)
        )),
        RunsOn::UnifiedMemory => details.push(
            "RAM and GPU memory are one pool: the LLM and image generation share it.".to_owned(),
        ),
        RunsOn::Cpu => {
            let simd =
                simd_tier(&cpu.features).map_or(String::new(), |tier| format!(" with {tier}"));
            details.push(format!(
                "No usable GPU was found, so models run on the CPU{simd} ({} threads): expect a few tokens per second.",
                cpu.logical_cores
            ));
        }
    }
    details.push(
        "Estimated for a typical 8B-class model; each model's own estimate follows when you pick it."
            .to_owned(),
    );

    Recommendation {
        runs_on,
        max_model_bytes,
        suggested_context,
        headline,
        details,
    }
}

/// Llama 3 8B's shape without its weights: what the context and the runtime cost
/// for the models people run most.
fn typical_model() -> ModelShape {
    let layers = 32;
    ModelShape {
        architecture: "llama".to_owned(),
        layers,
        embedding: 4096,
        feed_forward: 14_336,
        vocab: 128_256,
        heads: vec![32; layers as usize],
        kv_heads: vec![8; layers as usize],
        key_length: 128,
        value_length: 128,
        layer_bytes: vec![0; layers as usize],
        expert_bytes: vec![0; layers as usize],
        layer_matrices: vec![Vec::new(); layers as usize],
        output_matrices: Vec::new(),
        leading_tensors: Vec::new(),
        trailing_tensors: Vec::new(),
        input_bytes: 0,
        output_bytes: 0,
        output_tied: false,
        other_bytes: 0,
        expert_count: 0,
        expert_used: 0,
        expert_feed_forward: 0,
        shared_expert_feed_forward: 0,
        sliding_window: None,
        sliding_layers: vec![false; layers as usize],
        trained_context: Some(8192),
        float_weights: false,
    }
}

/// The vector instruction level that decides CPU inference speed, as people know it.
fn simd_tier(features: &[String]) -> Option<&'static str> {
    let has = |prefix: &str| features.iter().any(|feature| feature.starts_with(prefix));
    [
        ("AVX-512", "AVX-512"),
        ("AVX2", "AVX2"),
        ("AVX", "AVX"),
        ("NEON", "NEON"),
    ]
    .into_iter()
    .find(|(prefix, _)| has(prefix))
    .map(|(_, tier)| tier)
}

#[allow(clippy::cast_precision_loss)]
fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIB)
}

#[allow(clippy::cast_precision_loss)]
fn params(bytes: u64, bytes_per_param: f64) -> String {
    let billions = bytes as f64 / bytes_per_param / 1e9;
    if billions >= 10.0 {
        format!("{billions:.0}B")
    } else {
        format!("{billions:.1}B")
    }
}

fn group_thousands(value: u32) -> String {
    let digits = value.to_string();
    let mut grouped = String::new();
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GpuBackend, GpuVendor};

    const GB: u64 = 1024 * 1024 * 1024;

    fn cpu() -> CpuInfo {
        CpuInfo {
            brand: "Test CPU".into(),
            vendor: "GenuineIntel".into(),
            arch: "x86_64".into(),
            physical_cores: Some(8),
            logical_cores: 16,
            features: vec!["AVX".into(), "AVX2".into(), "FMA".into()],
        }
    }

    fn ram(total_gib: u64) -> MemoryInfo {
        MemoryInfo {
            total_bytes: total_gib * GB,
            available_bytes: total_gib * GB / 2,
            used_bytes: total_gib * GB / 2,
        }
    }

    fn gpu(index: u32, unified: bool) -> GpuIdentity {
        GpuIdentity {
            index,
            vendor: if unified {
                GpuVendor::Apple
            } else {
                GpuVendor::Nvidia
            },
            name: format!("GPU {index}"),
            driver: None,
            backends: vec![GpuBackend::Vulkan],
            unified_memory: unified,
        }
    }

    fn vram(index: u32, total_gib: u64) -> GpuMemory {
        GpuMemory {
            index,
            total_bytes: total_gib * GB,
            used_bytes: None,
            free_bytes: None,
            utilization_percent: None,
        }
    }

    #[test]
    fn cpu_only_machine_runs_on_cpu_and_names_the_simd_level() {
        let advice = recommend(&cpu(), &ram(24), &[], &[]);
        assert_eq!(advice.runs_on, RunsOn::Cpu);
        assert!(advice.max_model_bytes > 10 * GB && advice.max_model_bytes < 18 * GB);
        assert!(
            advice.headline.contains("on the CPU"),
            "{}",
            advice.headline
        );
        assert!(advice
            .details
            .iter()
            .any(|line| line.contains("with AVX2 (16 threads)")));
    }

    #[test]
    fn the_largest_gpu_decides() {
        let gpus = [gpu(0, false), gpu(1, false)];
        let advice = recommend(&cpu(), &ram(64), &gpus, &[vram(0, 8), vram(1, 24)]);
        assert_eq!(advice.runs_on, RunsOn::Gpu);
        assert!(
            advice.headline.contains("GPU 1 (24.0 GiB of VRAM)"),
            "{}",
            advice.headline
        );
        assert!(advice.max_model_bytes < 24 * GB);
    }

    #[test]
    fn apple_silicon_uses_unified_memory() {
        let advice = recommend(&cpu(), &ram(32), &[gpu(0, true)], &[vram(0, 32)]);
        assert_eq!(advice.runs_on, RunsOn::UnifiedMemory);
        assert!(advice.details.iter().any(|line| line.contains("one pool")));
    }

    #[test]
    fn more_memory_never_means_a_smaller_model_or_context() {
        let mut previous = recommend(&cpu(), &ram(1), &[], &[]);
        for total in 2..=256 {
            let next = recommend(&cpu(), &ram(total), &[], &[]);
            assert!(
                next.max_model_bytes >= previous.max_model_bytes,
                "at {total} GiB"
            );
            assert!(
                next.suggested_context >= previous.suggested_context,
                "at {total} GiB"
            );
            previous = next;
        }
        assert_eq!(previous.suggested_context, 32_768);
    }

    #[test]
    fn tiny_machines_are_told_plainly() {
        let advice = recommend(&cpu(), &ram(0), &[], &[]);
        assert_eq!(advice.max_model_bytes, 0);
        assert!(advice.headline.contains("too little"));
        assert_eq!(advice.suggested_context, 2_048);
    }

    #[test]
    fn the_simd_tier_is_the_highest_level_present() {
        let features = |list: &[&str]| list.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            simd_tier(&features(&["AVX", "AVX2", "AVX-512F", "AVX-512BF16"])),
            Some("AVX-512")
        );
        assert_eq!(
            simd_tier(&features(&["SSE4.2", "AVX", "AVX2", "FMA"])),
            Some("AVX2")
        );
        assert_eq!(simd_tier(&features(&["NEON", "DOTPROD"])), Some("NEON"));
        assert_eq!(simd_tier(&features(&["SSE4.2"])), None);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(16_384), "16,384");
        assert_eq!(group_thousands(2_048), "2,048");
        assert_eq!(group_thousands(512), "512");
    }
}
