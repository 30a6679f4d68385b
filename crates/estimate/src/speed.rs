//! How fast llama-server will generate: one token reads every active weight once
//! (all of a dense model, the used share of a mixture of experts' routed experts)
//! and the KV cache so far, so its time is those bytes ÷ the bandwidth of the
//! memory they live in, plus a runtime cost per token and per layer (building and
//! scheduling the graph, thread barriers, sampling) that no bandwidth explains.
//!
//! On a CPU with few cores the dequantizing, not the memory, can set the pace of
//! quantized weights: the rate weights are read at is the lower of the two.
//!
//! The runtime costs, the share of the probe's bandwidth llama.cpp reaches and the
//! dequantizing rate were measured with llama-server 11434 (`-t 2`, CPU build) on
//! this repository's 2-core machine over generated Q4_K_M, Q8_0 and F16 llama
//! models of 14–800 MB (`cargo run --release -p bench -- speed`): see
//! [`CPU_RUNTIME`]. A GPU's costs were not measured here (no GPU build at hand); its
//! figures are llama.cpp's published CUDA decode results, stated in [`GPU_RUNTIME`].
//!
//! A measured speed for the same model and configuration (llama-server's own
//! timings after a run, kept by [`Calibration`]) replaces the formula.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use super::calibration::MIN_MEASURED_TOKENS;
use super::calibration::{Calibration, MeasuredSpeed};
use super::llama::{Backend, CacheType, EstimateSource, LlamaEstimate};
use super::shape::ModelShape;
use switchyard_gguf::GgmlType;

/// Memory bandwidth where a model's layers can live, in bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Bandwidth {
    /// Measured by a streaming read over all cores.
    #[ts(type = "number")]
    pub ram_bytes_per_second: u64,
    /// The GPU's specification, where its driver states it.
    #[ts(type = "number | null")]
    pub gpu_bytes_per_second: Option<u64>,
    /// Threads llama.cpp computes with on the CPU (its default: the physical
    /// cores); 0 when unknown. Few cores dequantize weights slower than RAM
    /// streams them.
    pub cpu_threads: u32,
}

/// What a token costs besides reading memory, and how much of the bandwidth the
/// runtime's kernels reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuntimeCost {
    /// Per token: sampling, the HTTP slot's bookkeeping, building the graph.
    pub per_token_seconds: f64,
    /// Per layer and token: the layer's nodes scheduled and the threads'
    /// barriers between them.
    pub per_layer_seconds: f64,
    /// Share of the bandwidth figure the matrix-vector kernels reach.
    pub bandwidth_share: f64,
}

/// The CPU backend, fitted to `bench speed` on a 2-core Xeon VM (AVX-512, 480 MiB
/// L3; RAM probe 16.4 GB/s) with llama-server 11434 at `-t 2`: F16 models of
/// 330–700 MB generate at 16.3–16.7 GB/s of weights, the probe's figure, so the
/// share is 1; quantized ones (Q4_K_M, Q8_0) at 11–12 GB/s whatever their size,
/// the two cores' dequantizing rate ([`QUANTIZED_BYTES_PER_THREAD`]); what is
/// left of a 24-layer model's 10 ms token beside that, ~1.7 ms, is 0.3 ms per
/// token and 0.06 ms per layer.
pub const CPU_RUNTIME: RuntimeCost = RuntimeCost {
    per_token_seconds: 0.000_3,
    per_layer_seconds: 0.000_06,
    bandwidth_share: 1.0,
};

/// A GPU backend: not measured here. CUDA graphs make a token cost a few launches
/// (~20 µs per layer with the graph's copies) and decode kernels reach about 80 %
/// of the specified bandwidth (llama.cpp's published H100/4090 decode figures:
/// ~150 tokens/s for a 4.4 GiB 7B Q4_K_M on a 1 TB/s card).
pub const GPU_RUNTIME: RuntimeCost = RuntimeCost {
    per_token_seconds: 0.000_3,
    per_layer_seconds: 0.000_02,
    bandwidth_share: 0.8,
};

/// Bytes of quantized weights (Q4_K…Q8_0) one CPU thread dequantizes and
/// multiplies per second during generation: 6 GB/s on the Xeon of
/// [`CPU_RUNTIME`] (Q4_K_M and Q8_0 alike). On a desktop with more cores the
/// memory is the limit instead.
pub const QUANTIZED_BYTES_PER_THREAD: f64 = 6.0e9;
/// The same for f16/bf16/f32 weights, which need no dequantizing: not reached on
/// that machine (two threads read F16 as fast as the probe reads RAM), so a bound
/// above what was seen.
pub const FLOAT_BYTES_PER_THREAD: f64 = 10.0e9;

/// How fast the CPU gets through weights in RAM: the memory's bandwidth as the
/// matrix-vector kernels reach it, or what `threads` threads dequantize, whichever
/// is lower.
pub fn cpu_read_rate(ram_bytes_per_second: u64, threads: u32, float_weights: bool) -> f64 {
    let memory = ram_bytes_per_second as f64 * CPU_RUNTIME.bandwidth_share;
    let per_thread = if float_weights {
        FLOAT_BYTES_PER_THREAD
    } else {
        QUANTIZED_BYTES_PER_THREAD
    };
    if threads == 0 {
        memory
    } else {
        memory.min(per_thread * f64::from(threads))
    }
}

/// How fast a GPU gets through weights in its memory.
pub fn gpu_read_rate(gpu_bytes_per_second: u64) -> f64 {
    gpu_bytes_per_second as f64 * GPU_RUNTIME.bandwidth_share
}

/// Tokens a conversation has in its cache when speed is predicted without one
/// named: a short exchange.
pub const TYPICAL_CONTEXT_TOKENS: u32 = 512;

/// A speed prediction and what it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SpeedEstimate {
    /// Tokens per second while generating.
    pub generation_tokens_per_second: f64,
    /// `measured`: llama-server's own timing of a run of this model and
    /// configuration.
    pub source: EstimateSource,
}

/// Bytes one generated token reads, by where they live: (RAM, GPU).
fn bytes_per_token(
    shape: &ModelShape,
    estimate: &LlamaEstimate,
    context_tokens: u32,
) -> (f64, f64) {
    let layers = shape.layers as usize;
    let all_layers = shape.layers.saturating_add(1);
    // llama.cpp offloads from the top; the output layer (index `layers`) first.
    let first_gpu_layer = all_layers.saturating_sub(estimate.gpu_layers) as usize;
    let on_gpu = |il: usize| estimate.gpu_layers > 0 && il >= first_gpu_layer;
    let config = &estimate.config;
    let expert_share = if shape.is_moe() && shape.expert_used > 0 {
        f64::from(shape.expert_used.min(shape.expert_count)) / f64::from(shape.expert_count)
    } else {
        1.0
    };
    let (mut ram, mut gpu) = (0.0, 0.0);
    let mut place = |gpu_side: bool, bytes: f64| {
        if gpu_side {
            gpu += bytes;
        } else {
            ram += bytes;
        }
    };
    for il in 0..layers {
        let all = shape.layer_bytes.get(il).copied().unwrap_or(0) as f64;
        let experts = shape.expert_bytes.get(il).copied().unwrap_or(0) as f64;
        let experts_in_ram = il < config.cpu_moe_layers as usize;
        place(on_gpu(il), all - experts);
        place(on_gpu(il) && !experts_in_ram, experts * expert_share);
        // The cache so far: every cell of a full-attention layer, a sliding
        // layer's window.
        let sliding = !config.swa_full && shape.sliding_layers.get(il).copied().unwrap_or(false);
        let cells = match shape.sliding_window {
            Some(window) if sliding => window.min(u64::from(context_tokens)),
            _ => u64::from(context_tokens),
        };
        let (k_width, v_width) = shape.kv_widths(il);
        let row = row_bytes(config.cache_type_k, k_width) + row_bytes(config.cache_type_v, v_width);
        place(on_gpu(il), (cells * row) as f64);
    }
    // The output projection, or the embeddings it reuses; the input embeddings
    // are one row per token, nothing.
    let output = if shape.output_tied {
        shape.input_bytes
    } else {
        shape.output_bytes
    };
    place(on_gpu(layers), output as f64);
    (ram, gpu)
}

fn row_bytes(cache: CacheType, width: u64) -> u64 {
    let name = cache.flag().to_ascii_uppercase();
    GgmlType::all()
        .iter()
        .find(|ty| ty.name == name)
        .and_then(|ty| ty.bytes_for(width))
        .unwrap_or(width.saturating_mul(2))
}

/// The runtime that runs the layers: a GPU backend's when any layer is offloaded.
fn runtime(backend: Backend, gpu_layers: u32) -> RuntimeCost {
    if backend == Backend::Cpu || gpu_layers == 0 {
        CPU_RUNTIME
    } else {
        GPU_RUNTIME
    }
}

/// How fast the GPU gets through its layers; Apple's unified memory is RAM when
/// its figure is unknown. `None` for a discrete GPU that does not say.
fn gpu_rate(backend: Backend, bandwidth: Bandwidth) -> Option<f64> {
    match (bandwidth.gpu_bytes_per_second, backend) {
        (Some(gpu), _) => Some(gpu_read_rate(gpu)),
        (None, Backend::Metal) => Some(gpu_read_rate(bandwidth.ram_bytes_per_second)),
        (None, _) => None,
    }
}

/// Predicted generation speed (tokens per second) of a model placed as
/// `estimate` places it, with `context_tokens` already in its cache. `None`
/// when a part's bandwidth is unknown.
pub fn predict_generation(
    shape: &ModelShape,
    estimate: &LlamaEstimate,
    bandwidth: Bandwidth,
    context_tokens: u32,
) -> Option<f64> {
    let (ram_bytes, gpu_bytes) = bytes_per_token(shape, estimate, context_tokens);
    let cost = runtime(estimate.backend, estimate.gpu_layers);
    let cpu = cpu_read_rate(
        bandwidth.ram_bytes_per_second,
        bandwidth.cpu_threads,
        shape.float_weights,
    );
    let ram_seconds = seconds_to_read(ram_bytes, cpu)?;
    let gpu_seconds = if gpu_bytes > 0.0 {
        seconds_to_read(gpu_bytes, gpu_rate(estimate.backend, bandwidth)?)?
    } else {
        0.0
    };
    let overhead = cost.per_token_seconds + cost.per_layer_seconds * f64::from(shape.layers);
    Some(1.0 / (ram_seconds + gpu_seconds + overhead))
}

fn seconds_to_read(bytes: f64, bytes_per_second: f64) -> Option<f64> {
    if bytes <= 0.0 {
        return Some(0.0);
    }
    (bytes_per_second > 0.0).then(|| bytes / bytes_per_second)
}

/// The prediction, or llama-server's measured speed for this model and
/// configuration where a run recorded one.
pub fn speed_estimate(
    calibration: &Calibration,
    model_id: &str,
    shape: &ModelShape,
    estimate: &LlamaEstimate,
    bandwidth: Option<Bandwidth>,
) -> Option<SpeedEstimate> {
    if let Some(measured) = calibration.speed(model_id, &estimate.config, estimate.backend) {
        return Some(SpeedEstimate {
            generation_tokens_per_second: measured.generation_tokens_per_second,
            source: EstimateSource::Measured,
        });
    }
    let predicted = predict_generation(shape, estimate, bandwidth?, TYPICAL_CONTEXT_TOKENS)?;
    Some(SpeedEstimate {
        generation_tokens_per_second: predicted,
        source: EstimateSource::Estimated,
    })
}

/// Generation speed of a dense model known only by its weights' size and layer
/// count (a curated list, "models up to N GiB"), all of it read at `read_rate`
/// bytes per second ([`cpu_read_rate`] or [`gpu_read_rate`]), at a short
/// conversation.
pub fn predict_from_size(
    weights_bytes: u64,
    layers: u32,
    read_rate: f64,
    on_gpu: bool,
) -> Option<f64> {
    let cost = if on_gpu { GPU_RUNTIME } else { CPU_RUNTIME };
    let read = seconds_to_read(weights_bytes as f64, read_rate)?;
    let overhead = cost.per_token_seconds + cost.per_layer_seconds * f64::from(layers);
    Some(1.0 / (read + overhead))
}

/// The largest weights (bytes) a dense model of `layers` layers can have and still
/// generate `tokens_per_second` when read at `read_rate`: the inverse of
/// [`predict_from_size`]. 0 when the runtime's own cost is already too slow.
pub fn max_bytes_at_speed(
    tokens_per_second: f64,
    layers: u32,
    read_rate: f64,
    on_gpu: bool,
) -> u64 {
    let cost = if on_gpu { GPU_RUNTIME } else { CPU_RUNTIME };
    if tokens_per_second <= 0.0 {
        return u64::MAX;
    }
    let overhead = cost.per_token_seconds + cost.per_layer_seconds * f64::from(layers);
    let left = 1.0 / tokens_per_second - overhead;
    if left <= 0.0 {
        return 0;
    }
    (left * read_rate) as u64
}

/// "about 3 tokens/s", "about 25 tokens/s": what people read.
pub fn describe_speed(tokens_per_second: f64) -> String {
    if tokens_per_second < 1.0 {
        "under 1 token/s".to_owned()
    } else if tokens_per_second < 1.5 {
        "about 1 token/s".to_owned()
    } else if tokens_per_second < 10.0 {
        format!("about {tokens_per_second:.0} tokens/s")
    } else {
        // Two significant digits: the prediction is not finer than that.
        let magnitude = 10f64.powf(tokens_per_second.log10().floor() - 1.0);
        let rounded = (tokens_per_second / magnitude).round() * magnitude;
        format!("about {rounded:.0} tokens/s")
    }
}

/// Reads llama-server's timing of a finished request's generation from its log:
///
/// ```text
/// slot print_timing: id  0 | task 5 |        eval time =     812.40 ms /    64 tokens (   12.69 ms per token,    78.78 tokens per second)
/// ```
///
/// (not the `prompt eval time` line above it, which times reading the prompt).
pub fn parse_eval_line(line: &str) -> Option<MeasuredSpeed> {
    const MARKER: &str = " eval time = ";
    let at = line.find(MARKER)?;
    if line[..at].ends_with("prompt") {
        return None;
    }
    let mut words = line[at + MARKER.len()..].split_whitespace();
    let milliseconds: f64 = words.next()?.parse().ok()?;
    let (unit, slash) = (words.next()?, words.next()?);
    let tokens: u32 = words.next()?.parse().ok()?;
    if unit != "ms" || slash != "/" || !milliseconds.is_finite() || milliseconds <= 0.0 {
        return None;
    }
    Some(MeasuredSpeed {
        generation_tokens_per_second: f64::from(tokens) * 1000.0 / milliseconds,
        generated_tokens: tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llama::{estimate, LlamaConfig};

    const MB: u64 = 1_000_000;
    const GB_S: u64 = 1_000_000_000;

    /// A dense model of `layers` layers of `layer_mb` each, a 50 MB output layer and
    /// 50 MB of embeddings; one KV head of 128 wide per layer.
    fn dense(layers: u32, layer_mb: u64) -> ModelShape {
        let n = layers as usize;
        ModelShape {
            architecture: "llama".into(),
            layers,
            embedding: 1024,
            feed_forward: 4096,
            vocab: 32_000,
            heads: vec![8; n],
            kv_heads: vec![1; n],
            key_length: 128,
            value_length: 128,
            layer_bytes: vec![layer_mb * MB; n],
            expert_bytes: vec![0; n],
            layer_matrices: vec![Vec::new(); n],
            output_matrices: Vec::new(),
            leading_tensors: Vec::new(),
            trailing_tensors: Vec::new(),
            input_bytes: 50 * MB,
            output_bytes: 50 * MB,
            output_tied: false,
            other_bytes: 0,
            expert_count: 0,
            expert_used: 0,
            expert_feed_forward: 0,
            shared_expert_feed_forward: 0,
            sliding_window: None,
            sliding_layers: vec![false; n],
            trained_context: Some(32_768),
            float_weights: false,
        }
    }

    fn on(backend: Backend, gpu_layers: u32) -> (LlamaConfig, Backend) {
        let config = LlamaConfig {
            gpu_layers,
            ..LlamaConfig::default()
        };
        (config, backend)
    }

    fn predict(
        shape: &ModelShape,
        (config, backend): (LlamaConfig, Backend),
        bandwidth: Bandwidth,
    ) -> f64 {
        let planned = estimate(shape, &config, backend);
        predict_generation(shape, &planned, bandwidth, 0).expect("a prediction")
    }

    /// RAM alone, with cores enough that they never limit it.
    fn ram_only(gb_per_second: u64) -> Bandwidth {
        Bandwidth {
            ram_bytes_per_second: gb_per_second * GB_S,
            gpu_bytes_per_second: None,
            cpu_threads: 0,
        }
    }

    fn seconds(bytes: u64, bandwidth: u64, cost: RuntimeCost, layers: u32) -> f64 {
        bytes as f64 / (bandwidth as f64 * cost.bandwidth_share)
            + cost.per_token_seconds
            + cost.per_layer_seconds * f64::from(layers)
    }

    #[test]
    fn a_dense_model_reads_its_layers_and_output_but_not_its_embeddings() {
        let shape = dense(10, 100);
        let speed = predict(&shape, on(Backend::Cpu, 0), ram_only(20));
        // 10 × 100 MB of layers and the 50 MB output layer.
        let expected = 1.0 / seconds(1050 * MB, 20 * GB_S, CPU_RUNTIME, 10);
        assert!((speed - expected).abs() < 1e-9, "{speed} vs {expected}");
        // Tied output: the embeddings are read as the output projection.
        let tied = ModelShape {
            output_tied: true,
            output_bytes: 0,
            input_bytes: 80 * MB,
            ..shape
        };
        let speed = predict(&tied, on(Backend::Cpu, 0), ram_only(20));
        let expected = 1.0 / seconds(1080 * MB, 20 * GB_S, CPU_RUNTIME, 10);
        assert!((speed - expected).abs() < 1e-9, "{speed} vs {expected}");
    }

    #[test]
    fn a_mixture_of_experts_reads_only_the_experts_it_uses() {
        // Each 100 MB layer holds 80 MB of experts, 2 of 8 used: 20 + 20 MB read.
        let moe = ModelShape {
            expert_bytes: vec![80 * MB; 10],
            expert_count: 8,
            expert_used: 2,
            ..dense(10, 100)
        };
        let speed = predict(&moe, on(Backend::Cpu, 0), ram_only(20));
        let expected = 1.0 / seconds((10 * 40 + 50) * MB, 20 * GB_S, CPU_RUNTIME, 10);
        assert!((speed - expected).abs() < 1e-9, "{speed} vs {expected}");
        assert!(speed > 2.0 * predict(&dense(10, 100), on(Backend::Cpu, 0), ram_only(20)));
    }

    #[test]
    fn gpu_layers_are_read_at_the_gpu_bandwidth() {
        let shape = dense(10, 100);
        let machine = Bandwidth {
            ram_bytes_per_second: 20 * GB_S,
            gpu_bytes_per_second: Some(1000 * GB_S),
            cpu_threads: 0,
        };
        let cpu = predict(&shape, on(Backend::Cpu, 0), machine);
        let all = predict(&shape, on(Backend::Cuda, 11), machine);
        let expected = 1.0 / seconds(1050 * MB, 1000 * GB_S, GPU_RUNTIME, 10);
        assert!((all - expected).abs() < 1e-6, "{all} vs {expected}");
        // Half the layers (and the output layer) on the GPU: the RAM half
        // dominates.
        let half = predict(&shape, on(Backend::Cuda, 6), machine);
        let ram_half = (500 * MB) as f64 / (20.0 * GB_S as f64 * CPU_RUNTIME.bandwidth_share);
        let gpu_half = (550 * MB) as f64 / (1000.0 * GB_S as f64 * GPU_RUNTIME.bandwidth_share);
        let overhead = GPU_RUNTIME.per_token_seconds + GPU_RUNTIME.per_layer_seconds * 10.0;
        let expected = 1.0 / (ram_half + gpu_half + overhead);
        assert!((half - expected).abs() < 1e-6, "{half} vs {expected}");
        assert!(cpu < half && half < all, "{cpu} < {half} < {all}");
        // A discrete GPU whose bandwidth is unknown: no figure, rather than a guess.
        let planned = estimate(&shape, &on(Backend::Cuda, 11).0, Backend::Cuda);
        assert_eq!(predict_generation(&shape, &planned, ram_only(20), 0), None);
    }

    #[test]
    fn few_cores_dequantize_slower_than_fast_ram_streams() {
        let shape = dense(10, 100);
        let two_cores = Bandwidth {
            cpu_threads: 2,
            ..ram_only(100)
        };
        // Quantized weights: two threads set the pace, not the 100 GB/s.
        let speed = predict(&shape, on(Backend::Cpu, 0), two_cores);
        let rate = 2.0 * QUANTIZED_BYTES_PER_THREAD;
        let overhead = CPU_RUNTIME.per_token_seconds + CPU_RUNTIME.per_layer_seconds * 10.0;
        let expected = 1.0 / ((1050 * MB) as f64 / rate + overhead);
        assert!((speed - expected).abs() < 1e-9, "{speed} vs {expected}");
        // Slow RAM: the memory is the limit again, whatever the cores.
        let slow_ram = Bandwidth {
            cpu_threads: 2,
            ..ram_only(2)
        };
        let speed = predict(&shape, on(Backend::Cpu, 0), slow_ram);
        let expected = 1.0 / seconds(1050 * MB, 2 * GB_S, CPU_RUNTIME, 10);
        assert!((speed - expected).abs() < 1e-9, "{speed} vs {expected}");
        // Float weights need no dequantizing: the cores go further.
        let floats = ModelShape {
            float_weights: true,
            ..shape.clone()
        };
        assert!(cpu_read_rate(100 * GB_S, 2, true) > cpu_read_rate(100 * GB_S, 2, false));
        assert!(
            predict(&floats, on(Backend::Cpu, 0), two_cores)
                > predict(&shape, on(Backend::Cpu, 0), two_cores)
        );
    }

    #[test]
    fn the_kv_cache_read_slows_long_conversations() {
        let shape = dense(10, 100);
        let planned = estimate(&shape, &LlamaConfig::default(), Backend::Cpu);
        let short = predict_generation(&shape, &planned, ram_only(20), 0).expect("a figure");
        let long = predict_generation(&shape, &planned, ram_only(20), 4096).expect("a figure");
        // 4096 cells × (128 + 128) f16 values × 10 layers = 21 MB more per token.
        let expected =
            1.0 / (1.0 / short + 4096.0 * 512.0 * 10.0 / (20e9 * CPU_RUNTIME.bandwidth_share));
        assert!((long - expected).abs() < 1e-6, "{long} vs {expected}");
    }

    #[test]
    fn a_measured_speed_replaces_the_formula_for_its_model_and_configuration_only() {
        let shape = dense(10, 100);
        let planned = estimate(&shape, &LlamaConfig::default(), Backend::Cpu);
        let mut calibration = Calibration::default();
        let measured = MeasuredSpeed {
            generation_tokens_per_second: 7.5,
            generated_tokens: 64,
        };
        calibration.record_speed("model-a", &planned.config, Backend::Cpu, measured);
        let bandwidth = Some(ram_only(20));
        let a = speed_estimate(&calibration, "model-a", &shape, &planned, bandwidth).expect("a");
        assert_eq!(a.generation_tokens_per_second, 7.5);
        assert_eq!(a.source, EstimateSource::Measured);
        let b = speed_estimate(&calibration, "model-b", &shape, &planned, bandwidth).expect("b");
        assert_eq!(b.source, EstimateSource::Estimated);
        assert_ne!(b.generation_tokens_per_second, 7.5);
        let other_context = estimate(
            &shape,
            &LlamaConfig {
                context: 8192,
                ..LlamaConfig::default()
            },
            Backend::Cpu,
        );
        let other = speed_estimate(&calibration, "model-a", &shape, &other_context, bandwidth);
        assert_eq!(
            other.map(|speed| speed.source),
            Some(EstimateSource::Estimated)
        );
        // Without a bandwidth, only what was measured is known.
        assert!(speed_estimate(&calibration, "model-b", &shape, &planned, None).is_none());
        assert!(speed_estimate(&calibration, "model-a", &shape, &planned, None).is_some());
    }

    #[test]
    fn a_run_of_a_few_tokens_is_not_a_measurement() {
        let config = LlamaConfig::default();
        let mut calibration = Calibration::default();
        let short = MeasuredSpeed {
            generation_tokens_per_second: 99.0,
            generated_tokens: MIN_MEASURED_TOKENS - 1,
        };
        calibration.record_speed("model", &config, Backend::Cpu, short);
        assert_eq!(calibration.speed("model", &config, Backend::Cpu), None);
    }

    #[test]
    fn a_calibration_file_from_before_speeds_still_loads() {
        let old: Calibration = serde_json::from_str(r#"{"entries":{}}"#).expect("it loads");
        assert_eq!(old, Calibration::default());
    }

    #[test]
    fn size_predictions_and_their_inverse_agree() {
        let rate = cpu_read_rate(20 * GB_S, 8, false);
        let speed = predict_from_size(4 * 1024 * MB, 28, rate, false).expect("a figure");
        let bytes = max_bytes_at_speed(speed, 28, rate, false);
        assert!((bytes as f64 / (4.0 * 1024.0 * MB as f64) - 1.0).abs() < 1e-6);
        // The runtime alone is slower than asked: no size reaches it.
        assert_eq!(max_bytes_at_speed(100_000.0, 28, rate, false), 0);
    }

    #[test]
    fn the_log_s_generation_timing_is_read_and_the_prompt_s_is_not() {
        let eval = "0.05.123.456 I slot print_timing: id  0 | task 5 |        eval time =     812.40 ms /    64 tokens (   12.69 ms per token,    78.78 tokens per second)";
        let speed = parse_eval_line(eval).expect("a timing");
        assert_eq!(speed.generated_tokens, 64);
        assert!((speed.generation_tokens_per_second - 78.78).abs() < 0.01);
        let prompt = "slot print_timing: id  0 | task 5 | prompt eval time =      44.86 ms /    51 tokens (    0.88 ms per token,  1136.90 tokens per second)";
        assert_eq!(parse_eval_line(prompt), None);
        assert_eq!(parse_eval_line("eval time = soon"), None);
        assert_eq!(
            parse_eval_line(" eval time =       0.00 ms /     0 tokens"),
            None
        );
    }

    #[test]
    fn speeds_are_described_in_round_numbers() {
        assert_eq!(describe_speed(0.4), "under 1 token/s");
        assert_eq!(describe_speed(1.4), "about 1 token/s");
        assert_eq!(describe_speed(3.2), "about 3 tokens/s");
        assert_eq!(describe_speed(27.4), "about 27 tokens/s");
        assert_eq!(describe_speed(143.0), "about 140 tokens/s");
    }
}
