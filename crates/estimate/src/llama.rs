//! The memory a llama-server process will use for a model and a configuration,
//! split into RAM and VRAM, following what llama.cpp allocates:
//!
//! - weights: each `blk.N` layer lives where llama.cpp puts it (the last
//!   `gpu_layers - 1` layers and the output layer on the GPU, the embeddings always
//!   in RAM, routed experts of the first `cpu_moe_layers` layers in RAM), plus the
//!   repacked copy of the matrices the CPU backend repacks (`repack`);
//! - KV cache: cells (context padded to 256; sliding-window layers keep only
//!   `window × slots + ubatch`) × each layer's K and V widths × the cache types;
//! - compute buffers: the peak of the graph, which is the feed-forward block
//!   (gate, up and their product over a micro-batch, plus the residual stream) or
//!   the attention block (projections plus, without flash attention, the
//!   `kv × ubatch × heads` score matrix), whichever is larger, plus the mask;
//! - the logits buffer and a fixed runtime overhead per backend.
//!
//! The compute-buffer terms were fitted to what llama-server 11434 reports
//! (`sched_reserve: … compute buffer size`) over widths, feed-forward sizes, heads,
//! contexts, micro-batches and flash attention on/off: they match to 0.02 MiB on
//! the CPU backend (`bench estimator` prints the comparison).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::repack::{CpuKernels, EdgeTensor, MatrixBytes, TensorPlace};
use super::shape::ModelShape;
use switchyard_gguf::GgmlType;

const MIB: u64 = 1024 * 1024;
/// llama.cpp pads the context (KV cells) to this.
const CELL_PADDING: u64 = 256;
const F32: u64 = 4;
/// The runtime's growth once a prompt spans several micro-batches, beyond what
/// scales with the activations.
const LONG_PROMPT_RUNTIME: u64 = 3 * MIB / 2;
/// The tokenizer's tables in RAM, per vocabulary entry (measured: +17 MiB of RSS
/// for a 128k vocabulary).
const VOCAB_ENTRY_BYTES: u64 = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum FlashAttention {
    /// llama.cpp turns it on where the device supports it: CPU, CUDA, Metal and
    /// Vulkan all do for the usual head sizes.
    #[default]
    Auto,
    On,
    Off,
}

impl FlashAttention {
    fn enabled(self) -> bool {
        !matches!(self, Self::Off)
    }
}

/// KV cache element types llama-server accepts for `-ctk`/`-ctv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum CacheType {
    F32,
    #[default]
    F16,
    Bf16,
    Q8_0,
    Q5_1,
    Q5_0,
    Q4_1,
    Q4_0,
    Iq4Nl,
}

impl CacheType {
    /// The name llama-server's `-ctk`/`-ctv` take.
    pub fn flag(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
            Self::Q8_0 => "q8_0",
            Self::Q5_1 => "q5_1",
            Self::Q5_0 => "q5_0",
            Self::Q4_1 => "q4_1",
            Self::Q4_0 => "q4_0",
            Self::Iq4Nl => "iq4_nl",
        }
    }

    /// Bytes for a row of `width` values.
    fn row_bytes(self, width: u64) -> u64 {
        let name = self.flag().to_ascii_uppercase();
        GgmlType::all()
            .iter()
            .find(|ty| ty.name == name)
            .and_then(|ty| ty.bytes_for(width))
            .unwrap_or(width.saturating_mul(2))
    }
}

/// Which llama.cpp backend runs the layers that are offloaded: decides the fixed
/// overheads (a CUDA context costs VRAM and RAM before any model is loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Backend {
    #[default]
    Cpu,
    Cuda,
    Vulkan,
    Metal,
}

impl Backend {
    /// Resident memory of a llama-server process before its buffers: binary,
    /// libraries, HTTP server, threads. Measured: 15 MiB for the CPU build here;
    /// about 350 MiB for a CUDA 13 build on an H100, 64 MiB more once cuBLAS runs
    /// (f16/f32 weights).
    fn ram_overhead(self, float_weights: bool) -> u64 {
        match self {
            Self::Cpu | Self::Metal => 15 * MIB,
            Self::Vulkan => 96 * MIB,
            Self::Cuda if float_weights => 414 * MIB,
            Self::Cuda => 350 * MIB,
        }
    }

    /// Device memory the driver context and library workspaces take, which no
    /// buffer line reports. Measured with NVML on an H100 (CUDA 13, driver 580):
    /// 605 MiB, 94 MiB more with cuBLAS (f16/f32 weights).
    fn vram_overhead(self, float_weights: bool) -> u64 {
        match self {
            Self::Cpu | Self::Metal => 0,
            Self::Vulkan => 64 * MIB,
            Self::Cuda if float_weights => 700 * MIB,
            Self::Cuda => 606 * MIB,
        }
    }

    fn has_device(self) -> bool {
        !matches!(self, Self::Cpu)
    }
}

/// llama.cpp's first default for `--ctx-checkpoints`, enough to reuse the last
/// turns of a conversation.
pub const DEFAULT_CONTEXT_CHECKPOINTS: u32 = 3;

/// The settings of a llama-server that change its memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
#[ts(export)]
pub struct LlamaConfig {
    /// `-c`: total KV cells over all slots.
    pub context: u32,
    /// `-np`: parallel slots.
    pub parallel: u32,
    /// `-kvu`: one KV cache shared by the slots (llama-server's default).
    pub kv_unified: bool,
    pub cache_type_k: CacheType,
    pub cache_type_v: CacheType,
    pub flash_attention: FlashAttention,
    /// `-b` and `-ub`.
    pub batch: u32,
    pub ubatch: u32,
    /// `-ngl`: layers on the GPU; `layers + 1` puts everything there.
    pub gpu_layers: u32,
    /// `--n-cpu-moe`: routed experts of the first N layers stay in RAM.
    pub cpu_moe_layers: u32,
    /// `--swa-full`: sliding-window layers keep the whole context.
    pub swa_full: bool,
    /// `--ctx-checkpoints`: copies of a conversation's sliding-window cache that
    /// llama-server keeps in RAM to reuse a prompt (one or two per prompt, up to this
    /// many). llama.cpp's default of 32 lets a long conversation with a large
    /// sliding-window model take gigabytes no buffer line shows.
    pub context_checkpoints: u32,
    /// `--cache-ram`: MiB of RAM llama-server may fill with idle conversations'
    /// caches. llama.cpp's default is 8 GiB; Switchyard's is none, so a server holds
    /// what the estimate says, and a person who wants the cache gives it a bound the
    /// estimate counts.
    pub prompt_cache_mib: u32,
    /// A multimodal projector loaded beside the model.
    #[ts(type = "number")]
    pub mmproj_bytes: u64,
}

impl Default for LlamaConfig {
    /// llama-server's own defaults, with a 4096-token context.
    fn default() -> Self {
        Self {
            context: 4096,
            parallel: 4,
            kv_unified: true,
            cache_type_k: CacheType::F16,
            cache_type_v: CacheType::F16,
            flash_attention: FlashAttention::Auto,
            batch: 2048,
            ubatch: 512,
            gpu_layers: 0,
            cpu_moe_layers: 0,
            swa_full: false,
            context_checkpoints: DEFAULT_CONTEXT_CHECKPOINTS,
            prompt_cache_mib: 0,
            mmproj_bytes: 0,
        }
    }
}

/// Memory in one place (RAM or one GPU), by what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[ts(export)]
pub struct Breakdown {
    /// Layer weights (and embeddings, in RAM).
    #[ts(type = "number")]
    pub weights: u64,
    /// Output norm and projection.
    #[ts(type = "number")]
    pub output_layer: u64,
    #[ts(type = "number")]
    pub kv_cache: u64,
    #[ts(type = "number")]
    pub compute: u64,
    /// Runtime, driver context and the logits buffer.
    #[ts(type = "number")]
    pub overhead: u64,
}

impl Breakdown {
    pub fn total(&self) -> u64 {
        [
            self.output_layer,
            self.kv_cache,
            self.compute,
            self.overhead,
        ]
        .into_iter()
        .fold(self.weights, u64::saturating_add)
    }

    /// Part by part, this and `other` together (RAM and VRAM of one estimate).
    pub fn plus(&self, other: &Self) -> Self {
        Self {
            weights: self.weights.saturating_add(other.weights),
            output_layer: self.output_layer.saturating_add(other.output_layer),
            kv_cache: self.kv_cache.saturating_add(other.kv_cache),
            compute: self.compute.saturating_add(other.compute),
            overhead: self.overhead.saturating_add(other.overhead),
        }
    }
}

/// Where a number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum EstimateSource {
    #[default]
    Estimated,
    /// Buffers as llama-server reported them for this model and configuration.
    Measured,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct LlamaEstimate {
    pub backend: Backend,
    /// The configuration as llama.cpp will apply it (context padded, batches capped).
    pub config: LlamaConfig,
    /// Layers (of `layers + 1`, the output layer counting as one) on the GPU.
    pub gpu_layers: u32,
    pub ram: Breakdown,
    pub vram: Breakdown,
    /// The part of `ram.overhead` that is the process's own runtime once loaded
    /// (binary, libraries, threads, tokenizer): what calibration replaces with the
    /// measured figure.
    #[ts(type = "number")]
    pub runtime_bytes: u64,
    pub source: EstimateSource,
}

impl LlamaEstimate {
    pub fn ram_bytes(&self) -> u64 {
        self.ram.total()
    }

    pub fn vram_bytes(&self) -> u64 {
        self.vram.total()
    }

    pub fn total_bytes(&self) -> u64 {
        self.ram_bytes().saturating_add(self.vram_bytes())
    }
}

fn pad(value: u64, to: u64) -> u64 {
    value.div_ceil(to).saturating_mul(to)
}

/// KV cells llama.cpp allocates: (total, per attention stream).
fn cells(config: &LlamaConfig) -> (u64, u64) {
    let context = pad(u64::from(config.context.max(1)), CELL_PADDING);
    let slots = u64::from(config.parallel.max(1));
    if config.kv_unified {
        (context, context)
    } else {
        let per_slot = pad(context / slots, CELL_PADDING);
        (per_slot.saturating_mul(slots), per_slot)
    }
}

/// The micro-batch llama.cpp runs: capped by the batch, which a causal model caps
/// at the context as asked (llama.cpp pads the context only afterwards).
fn micro_batch(config: &LlamaConfig) -> u64 {
    let batch = u64::from(config.batch.max(1)).min(u64::from(config.context.max(1)));
    u64::from(config.ubatch.max(1)).min(batch)
}

/// Estimates llama-server's memory for `shape` under `config` on `backend`, on
/// this machine's CPU (see [`estimate_on`]).
pub fn estimate(shape: &ModelShape, config: &LlamaConfig, backend: Backend) -> LlamaEstimate {
    estimate_on(shape, config, backend, CpuKernels::of_this_cpu())
}

/// Estimates llama-server's memory for `shape` under `config` on `backend`, with a
/// CPU that runs `kernels` (which decide the repacked weights of the layers in RAM).
/// Products and sums saturate: a header's dimensions are bounded, but not so
/// tightly that every configuration's product fits 64 bits.
pub fn estimate_on(
    shape: &ModelShape,
    config: &LlamaConfig,
    backend: Backend,
    kernels: CpuKernels,
) -> LlamaEstimate {
    let layers = shape.layers as usize;
    let all_layers = shape.layers.saturating_add(1);
    let gpu_layers = if backend.has_device() {
        config.gpu_layers.min(all_layers)
    } else {
        0
    };
    // llama.cpp: layer il is offloaded when il >= n_layer + 1 - ngl; the output
    // layer (index n_layer) goes first.
    let first_gpu_layer = all_layers.saturating_sub(gpu_layers) as usize;
    let on_gpu = |il: usize| il >= first_gpu_layer;
    let add = |sum: &mut u64, bytes: u64| *sum = sum.saturating_add(bytes);

    let mut ram = Breakdown::default();
    let mut vram = Breakdown::default();

    // Weights.
    add(
        &mut ram.weights,
        shape.input_bytes.saturating_add(shape.other_bytes),
    );
    let cpu_moe = config.cpu_moe_layers as usize;
    for il in 0..layers {
        let bytes = shape.layer_bytes.get(il).copied().unwrap_or(0);
        let experts = if il < cpu_moe {
            shape.expert_bytes.get(il).copied().unwrap_or(0)
        } else {
            0
        };
        if on_gpu(il) {
            add(&mut vram.weights, bytes.saturating_sub(experts));
            add(&mut ram.weights, experts);
        } else {
            add(&mut ram.weights, bytes);
            let matrices = shape.layer_matrices.get(il).map_or(&[][..], Vec::as_slice);
            add(&mut ram.weights, MatrixBytes::repacked(matrices, kernels));
        }
    }
    if on_gpu(layers) {
        add(&mut vram.output_layer, shape.output_bytes);
        if shape.output_tied {
            add(&mut vram.output_layer, shape.input_bytes);
        }
    } else {
        add(&mut ram.output_layer, shape.output_bytes);
        add(
            &mut ram.output_layer,
            MatrixBytes::repacked(&shape.output_matrices, kernels),
        );
    }
    // Repacked tensors at either end of the file's data are outside the mapping.
    let in_ram = |place: TensorPlace| match place {
        TensorPlace::Layer(il) => !on_gpu(il as usize),
        TensorPlace::Output => !on_gpu(layers),
        TensorPlace::Fixed => true,
    };
    let unmapped =
        EdgeTensor::unmapped_run(&shape.leading_tensors, kernels, in_ram).saturating_add(
            EdgeTensor::unmapped_run(&shape.trailing_tensors, kernels, in_ram),
        );
    ram.weights = ram.weights.saturating_sub(unmapped);
    if gpu_layers > 0 {
        add(&mut vram.weights, config.mmproj_bytes);
    } else {
        add(&mut ram.weights, config.mmproj_bytes);
    }

    // KV cache, on the device of its layer.
    let (total_cells, stream_cells) = cells(config);
    let ubatch = micro_batch(config);
    let slots = u64::from(config.parallel.max(1));
    let window_cells = shape.sliding_window.map(|window| {
        let wanted = window
            .saturating_mul(if config.kv_unified { slots } else { 1 })
            .saturating_add(ubatch);
        pad(wanted.min(total_cells), CELL_PADDING)
    });
    let mut widest_kv = 0u64;
    let mut full_layers = 0usize;
    // One conversation's sliding-window cache: what a context checkpoint copies.
    let mut window_row_bytes = 0u64;
    for il in 0..layers {
        let (k_width, v_width) = shape.kv_widths(il);
        widest_kv = widest_kv.max(k_width.saturating_add(v_width));
        let sliding = !config.swa_full && shape.sliding_layers.get(il).copied().unwrap_or(false);
        let row = config
            .cache_type_k
            .row_bytes(k_width)
            .saturating_add(config.cache_type_v.row_bytes(v_width));
        let layer_cells = match (sliding, window_cells) {
            (true, Some(window)) => {
                add(&mut window_row_bytes, row);
                window
            }
            _ => {
                full_layers += 1;
                total_cells
            }
        };
        let bytes = layer_cells.saturating_mul(row);
        if on_gpu(il) {
            add(&mut vram.kv_cache, bytes);
        } else {
            add(&mut ram.kv_cache, bytes);
        }
    }

    // Compute buffers: the graph's peak, on every device that runs layers.
    let attended = if full_layers > 0 {
        stream_cells
    } else {
        window_cells.unwrap_or(stream_cells)
    };
    let flash = config.flash_attention.enabled();
    let mask_cell = if flash { 2 } else { F32 };
    let mut mask = product(&[ubatch, attended, mask_cell]);
    // A model with both kinds of layers (gemma3's iSWA) has a mask per cache.
    let sliding_layers = shape.sliding_layers.iter().filter(|&&s| s).count();
    if shape.sliding_window.is_some() && sliding_layers > 0 && sliding_layers < layers {
        let sliding_cells = if config.swa_full {
            stream_cells
        } else {
            window_cells.unwrap_or(0)
        };
        add(&mut mask, product(&[ubatch, sliding_cells, mask_cell]));
    }
    if gpu_layers > 0 {
        // With a GPU, the graph's heavy work runs there, also for the layers left in
        // RAM (their weights are copied over per batch); the host keeps the inputs,
        // the mask and the residual stream (measured: mask + 4 × ubatch × width).
        add(
            &mut vram.compute,
            compute_bytes(shape, config, ubatch, attended, mask, widest_kv, 4),
        );
        add(
            &mut ram.compute,
            mask.saturating_add(product(&[4, ubatch, shape.embedding, F32])),
        );
    } else {
        add(
            &mut ram.compute,
            compute_bytes(shape, config, ubatch, attended, mask, widest_kv, 5),
        );
    }

    // Logits for every slot, the tokenizer and the runtime.
    let vocab = u64::from(shape.vocab);
    let float_weights = shape.float_weights;
    add(&mut ram.overhead, product(&[slots, vocab, F32]));
    let runtime_bytes = vocab
        .saturating_mul(VOCAB_ENTRY_BYTES)
        .saturating_add(backend.ram_overhead(float_weights));
    add(&mut ram.overhead, runtime_bytes);
    // Reading a prompt longer than a micro-batch leaves the runtime holding more
    // (work buffers and the allocator's arenas, sized by the micro-batch's
    // activations). Measured with prompts that fill the context, 11434 on the CPU:
    // +3.2 to +3.5 MiB at width 512, +3.4 to +5.5 MiB at width 1024.
    if u64::from(config.context) > ubatch {
        add(&mut ram.overhead, LONG_PROMPT_RUNTIME);
        add(&mut ram.overhead, product(&[ubatch, shape.embedding, 6]));
    }
    // The checkpoints of one conversation (more at once add as many again) and the
    // prompt cache at its bound: both in RAM, whatever runs the layers.
    let window = shape.sliding_window.unwrap_or(0).min(total_cells);
    add(
        &mut ram.overhead,
        product(&[
            u64::from(config.context_checkpoints),
            window,
            window_row_bytes,
        ]),
    );
    add(
        &mut ram.overhead,
        u64::from(config.prompt_cache_mib).saturating_mul(MIB),
    );
    if backend.has_device() {
        add(&mut vram.overhead, backend.vram_overhead(float_weights));
    }

    let mut applied = config.clone();
    applied.context = u32::try_from(total_cells).unwrap_or(u32::MAX);
    applied.ubatch = u32::try_from(ubatch).unwrap_or(u32::MAX);
    applied.gpu_layers = gpu_layers;
    LlamaEstimate {
        backend,
        config: applied,
        gpu_layers,
        ram,
        vram,
        runtime_bytes,
        source: EstimateSource::Estimated,
    }
}

/// The product of `factors`, saturating.
fn product(factors: &[u64]) -> u64 {
    factors
        .iter()
        .fold(1u64, |product, &factor| product.saturating_mul(factor))
}

/// The compute buffer of one device: the larger of the feed-forward and attention
/// peaks over a micro-batch, with the attention mask live in both.
fn compute_bytes(
    shape: &ModelShape,
    config: &LlamaConfig,
    ubatch: u64,
    attended_cells: u64,
    mask: u64,
    widest_kv: u64,
    residual_tensors: u64,
) -> u64 {
    let flash = config.flash_attention.enabled();
    let embd = shape.embedding;
    let ffn_width = if shape.is_moe() {
        u64::from(shape.expert_used)
            .saturating_mul(shape.expert_feed_forward.max(1))
            .saturating_add(shape.shared_expert_feed_forward)
    } else {
        shape.feed_forward
    };
    // gate, up and their product, plus the residual stream and norms (one of
    // those lives on the host when a GPU runs the graph).
    let widths = ffn_width
        .saturating_mul(3)
        .saturating_add(residual_tensors.saturating_mul(embd));
    let mut feed_forward = product(&[ubatch, F32, widths]).saturating_add(mask);
    if shape.is_moe() {
        // Router logits and weights.
        feed_forward =
            feed_forward.saturating_add(product(&[2, ubatch, F32, u64::from(shape.expert_count)]));
    }
    let scores = if flash {
        0
    } else {
        product(&[ubatch, attended_cells, shape.max_heads(), F32])
    };
    // Q, K, V, the attention output and the residual stream.
    let attention_widths = (residual_tensors + 1)
        .saturating_mul(embd)
        .saturating_add(widest_kv);
    let attention = product(&[ubatch, F32, attention_widths])
        .saturating_add(mask)
        .saturating_add(scores);
    feed_forward.max(attention)
}

/// The seed's formula (genai-electron): file size × 1.2 in RAM, or scaled by the
/// share of layers on the GPU. Kept to show how far off it is.
pub fn seed_formula(file_bytes: u64, layers: u32, gpu_layers: u32) -> (u64, u64) {
    let total = file_bytes as f64 * 1.2;
    if gpu_layers == 0 || layers == 0 {
        return (total as u64, 0);
    }
    let share = f64::from(gpu_layers.min(layers)) / f64::from(layers);
    ((total * (1.0 - share)) as u64, (total * share) as u64)
}
