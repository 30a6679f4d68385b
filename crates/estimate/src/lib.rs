//! How much memory a model needs: llama-server under a configuration (RAM and
//! VRAM, with a breakdown), the GPU layers and context that fit a budget, the
//! resource check before a start, calibration from what llama-server reported,
//! and image generation's working memory.

pub mod calibration;
pub mod diffusion;
pub mod fit;
pub mod llama;
pub mod repack;
pub mod shape;
pub mod speed;

use serde::Serialize;
use ts_rs::TS;

pub use calibration::{
    apply as apply_measured, parse_llama_log, Calibration, MeasuredMemory, MeasuredSpeed,
};
pub use fit::{check_fits, fit, max_gpu_layers, AutoFields, Budget, FitPlan};
pub use llama::{
    estimate, estimate_on, seed_formula, Backend, Breakdown, CacheType, EstimateSource,
    FlashAttention, LlamaConfig, LlamaEstimate,
};
pub use repack::{CpuKernels, EdgeTensor, MatrixBytes, TensorPlace};
pub use shape::{ModelShape, NoShape};
pub use speed::{Bandwidth, SpeedEstimate};

use switchyard_gguf::GgufFile;

/// The answer to "can I run this?" that the Models tab shows before a download:
/// the model at a context on this machine, placed the way fitting would place it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct MemoryEstimate {
    pub context: u32,
    #[ts(type = "number")]
    pub weights_bytes: u64,
    #[ts(type = "number")]
    pub kv_cache_bytes: u64,
    #[ts(type = "number")]
    pub compute_bytes: u64,
    #[ts(type = "number")]
    pub total_bytes: u64,
    #[ts(type = "number")]
    pub ram_bytes: u64,
    #[ts(type = "number")]
    pub vram_bytes: u64,
    pub backend: Backend,
    /// Layers on the GPU, of `layers + 1` (the output layer counts as one).
    pub gpu_layers: u32,
    pub layers: u32,
    /// It fits this machine's memory at this context.
    pub fits: bool,
    /// Predicted generation speed placed this way (tokens/s, at a short
    /// conversation); `None` when the machine's memory bandwidth is unknown.
    pub generation_tokens_per_second: Option<f64>,
    /// How it would run, in words ("All layers on the GPU."), or why it does not fit.
    pub notes: Vec<String>,
}

/// The estimate for a model header at `context` tokens (capped at what it was
/// trained for) on a machine with `backend` and `budget`, without a speed. `None`
/// for a file that is not a language model, or whose header claims what it cannot
/// be.
pub fn first_estimate(
    file: &GgufFile,
    context: u32,
    backend: Backend,
    budget: Budget,
) -> Option<MemoryEstimate> {
    first_estimate_at_speed(file, context, (backend, budget), None)
}

/// [`first_estimate`] with the generation speed predicted from the machine's
/// memory `bandwidth`.
pub fn first_estimate_at_speed(
    file: &GgufFile,
    context: u32,
    (backend, budget): (Backend, Budget),
    bandwidth: Option<Bandwidth>,
) -> Option<MemoryEstimate> {
    let shape = ModelShape::from_gguf(file).ok()?;
    let context = shape
        .trained_context
        .map_or(context, |trained| trained.min(context));
    let wanted = LlamaConfig {
        context,
        ..LlamaConfig::default()
    };
    let auto = AutoFields {
        gpu_layers: true,
        context: false,
    };
    let (planned, fits, notes) = match fit(&shape, &wanted, backend, budget, auto, context) {
        Ok(plan) => (plan.estimate, true, plan.notes),
        Err(error) => {
            let everything = LlamaConfig {
                gpu_layers: u32::MAX,
                ..wanted
            };
            (
                estimate(&shape, &everything, backend),
                false,
                vec![error.to_string(), error.suggestion()],
            )
        }
    };
    let both = |part: fn(&Breakdown) -> u64| part(&planned.ram).saturating_add(part(&planned.vram));
    Some(MemoryEstimate {
        context,
        weights_bytes: both(|b| b.weights.saturating_add(b.output_layer)),
        kv_cache_bytes: both(|b| b.kv_cache),
        compute_bytes: both(|b| b.compute),
        total_bytes: planned.total_bytes(),
        ram_bytes: planned.ram_bytes(),
        vram_bytes: planned.vram_bytes(),
        backend,
        gpu_layers: planned.gpu_layers,
        layers: shape.layers,
        fits,
        generation_tokens_per_second: bandwidth.and_then(|bandwidth| {
            speed::predict_generation(&shape, &planned, bandwidth, speed::TYPICAL_CONTEXT_TOKENS)
        }),
        notes,
    })
}
