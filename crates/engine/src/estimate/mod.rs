//! How much memory a model needs: llama-server under a configuration (RAM and
//! VRAM, with a breakdown), the GPU layers and context that fit a budget, the
//! resource check before a start, calibration from what llama-server reported,
//! and image generation's working memory.

pub mod calibration;
pub mod diffusion;
pub mod fit;
pub mod llama;
pub mod shape;

use serde::Serialize;
use ts_rs::TS;

pub use calibration::{apply as apply_measured, parse_llama_log, Calibration, MeasuredMemory};
pub use fit::{check_fits, fit, max_gpu_layers, AutoFields, Budget, FitPlan};
pub use llama::{
    estimate, seed_formula, Backend, Breakdown, CacheType, EstimateSource, FlashAttention,
    LlamaConfig, LlamaEstimate,
};
pub use shape::ModelShape;

use crate::gguf::GgufFile;

/// The summary the Models tab shows before a download: the model on the CPU at a
/// context, with llama-server's defaults otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
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
}

/// The first estimate for a model header at `context` tokens (capped at what it was
/// trained for). `None` for a file that is not a language model.
pub fn first_estimate(file: &GgufFile, context: u32) -> Option<MemoryEstimate> {
    let shape = ModelShape::from_gguf(file)?;
    let context = shape
        .trained_context
        .map_or(context, |trained| trained.min(context));
    let config = LlamaConfig {
        context,
        ..LlamaConfig::default()
    };
    let estimate = estimate(&shape, &config, Backend::Cpu);
    let all = estimate.ram;
    Some(MemoryEstimate {
        context,
        weights_bytes: all.weights + all.output_layer,
        kv_cache_bytes: all.kv_cache,
        compute_bytes: all.compute,
        total_bytes: estimate.total_bytes(),
    })
}
