//! "What can this machine run?" in plain words, from memory sizes and the
//! estimator's KV cache, compute buffers and runtime overhead for a typical model
//! on this machine's backend; each model's own estimate follows when it is picked.

use super::{CpuInfo, GpuIdentity, GpuMemory, GpuVendor, MemoryInfo, Recommendation, RunsOn};
use crate::budget::share as scale;
use switchyard_estimate::speed::{
    cpu_read_rate, describe_speed, gpu_read_rate, max_bytes_at_speed, predict_from_size,
};
use switchyard_estimate::{estimate, Backend, LlamaConfig, ModelShape};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Share of the memory budget the context may take before a smaller context wins.
const CONTEXT_SHARE: f64 = 0.15;
const CONTEXT_STEPS: [u32; 5] = [32_768, 16_384, 8_192, 4_096, 2_048];
/// Bytes per parameter of the two quantizations people compare most.
const Q4_K_M_BYTES_PER_PARAM: f64 = 4.85 / 8.0;
const Q8_0_BYTES_PER_PARAM: f64 = 8.5 / 8.0;

/// Builds the recommendation for this machine. `gpus` and their memory are paired
/// by index; `ram_bandwidth` is the measured RAM read bandwidth (bytes/s), and
/// models slower than `usable_tokens_per_second` are called slow.
pub fn recommend(
    cpu: &CpuInfo,
    memory: &MemoryInfo,
    (gpus, gpu_memory): (&[GpuIdentity], &[GpuMemory]),
    ram_bandwidth: Option<u64>,
    usable_tokens_per_second: f64,
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

    // Generation reads every weight per token: the memory the model lives in sets
    // its speed.
    let threads = cpu.physical_cores.unwrap_or(cpu.logical_cores);
    let read_rate = match runs_on {
        RunsOn::Gpu => largest_gpu
            .and_then(|(gpu, _)| gpu.memory_bandwidth_bytes_per_second)
            .map(gpu_read_rate),
        RunsOn::UnifiedMemory => unified
            .and_then(|gpu| gpu.memory_bandwidth_bytes_per_second)
            .or(ram_bandwidth)
            .map(gpu_read_rate),
        RunsOn::Cpu => ram_bandwidth.map(|ram| cpu_read_rate(ram, threads, false)),
    };
    let on_gpu = runs_on == RunsOn::Gpu;
    let layers = typical_model().layers;
    let max_model_tokens_per_second = read_rate
        .filter(|_| max_model_bytes > 0)
        .and_then(|rate| predict_from_size(max_model_bytes, layers, rate, on_gpu));
    let usable_model_bytes = read_rate.map(|rate| {
        max_bytes_at_speed(usable_tokens_per_second, layers, rate, on_gpu).min(max_model_bytes)
    });

    let mut details = vec![format!(
        "Suggested context: {} tokens.",
        group_thousands(suggested_context)
    )];
    if let (Some(speed), Some(usable_bytes)) = (max_model_tokens_per_second, usable_model_bytes) {
        details.push(speed_sentence(
            speed,
            usable_bytes,
            usable_tokens_per_second,
            max_model_bytes,
        ));
    }
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
                "No usable GPU was found, so models run on the CPU{simd} ({} threads), at the speed of the RAM.",
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
        max_model_tokens_per_second,
        usable_tokens_per_second,
        usable_model_bytes,
        read_rate_bytes_per_second: read_rate,
        headline,
        details,
    }
}

/// How fast the largest model would generate, and which size still reaches the
/// usable speed.
fn speed_sentence(speed: f64, usable_bytes: u64, usable: f64, max_model_bytes: u64) -> String {
    if usable_bytes >= max_model_bytes {
        return format!(
            "A model that large generates {} here.",
            describe_speed(speed)
        );
    }
    // The setting as the person typed it, not rounded like a prediction.
    let at_least = format!("{usable:.0} tokens/s");
    if usable_bytes == 0 {
        return format!(
            "A model that large generates {} here, and none reaches {at_least}: expect slow answers.",
            describe_speed(speed)
        );
    }
    format!(
        "A model that large generates only {} here; for {at_least} or more, pick one up to {} (about {} parameters at Q4_K_M).",
        describe_speed(speed),
        gib(usable_bytes),
        params(usable_bytes, Q4_K_M_BYTES_PER_PARAM),
    )
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
            memory_bandwidth_bytes_per_second: Some(1_000_000_000_000),
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
        let advice = recommend(&cpu(), &ram(24), (&[], &[]), None, 10.0);
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
        let advice = recommend(
            &cpu(),
            &ram(64),
            (&gpus, &[vram(0, 8), vram(1, 24)]),
            None,
            10.0,
        );
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
        let advice = recommend(
            &cpu(),
            &ram(32),
            (&[gpu(0, true)], &[vram(0, 32)]),
            None,
            10.0,
        );
        assert_eq!(advice.runs_on, RunsOn::UnifiedMemory);
        assert!(advice.details.iter().any(|line| line.contains("one pool")));
    }

    #[test]
    fn more_memory_never_means_a_smaller_model_or_context() {
        let mut previous = recommend(&cpu(), &ram(1), (&[], &[]), None, 10.0);
        for total in 2..=256 {
            let next = recommend(&cpu(), &ram(total), (&[], &[]), None, 10.0);
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
        let advice = recommend(&cpu(), &ram(0), (&[], &[]), None, 10.0);
        assert_eq!(advice.max_model_bytes, 0);
        assert!(advice.headline.contains("too little"));
        assert_eq!(advice.suggested_context, 2_048);
    }

    #[test]
    fn slow_memory_narrows_the_usable_models_and_says_so() {
        // 64 GiB of RAM read at 20 GB/s: ~40 GiB fits, at ~0.4 tokens/s.
        let advice = recommend(&cpu(), &ram(64), (&[], &[]), Some(20_000_000_000), 10.0);
        let speed = advice.max_model_tokens_per_second.expect("a prediction");
        assert!(speed < 1.0, "{speed}");
        let usable = advice.usable_model_bytes.expect("a usable size");
        assert!(usable > GB && usable < 2 * GB, "{usable}");
        assert!(
            advice
                .details
                .iter()
                .any(|line| line.contains("for 10 tokens/s or more, pick one up to 1.")),
            "{:?}",
            advice.details
        );
        // A faster threshold asks for smaller models.
        let stricter = recommend(&cpu(), &ram(64), (&[], &[]), Some(20_000_000_000), 20.0);
        assert!(stricter.usable_model_bytes < advice.usable_model_bytes);
    }

    #[test]
    fn a_fast_gpu_runs_its_largest_model_at_a_usable_speed() {
        let advice = recommend(
            &cpu(),
            &ram(64),
            (&[gpu(0, false)], &[vram(0, 24)]),
            None,
            10.0,
        );
        assert_eq!(
            advice.read_rate_bytes_per_second,
            Some(gpu_read_rate(1_000_000_000_000))
        );
        assert_eq!(advice.usable_model_bytes, Some(advice.max_model_bytes));
        let speed = advice.max_model_tokens_per_second.expect("a prediction");
        assert!(speed > 10.0, "{speed}");
        assert!(advice
            .details
            .iter()
            .any(|line| line.starts_with("A model that large generates about")));
    }

    #[test]
    fn without_a_bandwidth_no_speed_is_claimed() {
        let advice = recommend(&cpu(), &ram(24), (&[], &[]), None, 10.0);
        assert_eq!(advice.max_model_tokens_per_second, None);
        assert_eq!(advice.usable_model_bytes, None);
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
