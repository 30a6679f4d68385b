//! A first memory estimate from a model's header: weights plus the KV cache at a
//! context, plus runtime overhead. The estimator issue replaces this with per-layer
//! weights, compute buffers and calibration against what llama-server reports.

use serde::Serialize;
use ts_rs::TS;

use crate::gguf::ModelFacts;

/// Compute buffers and runtime of a llama-server process, roughly.
const OVERHEAD_BYTES: u64 = 256 * 1024 * 1024;
/// f16 K and V.
const KV_BYTES_PER_VALUE: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct MemoryEstimate {
    pub context: u32,
    #[ts(type = "number")]
    pub weights_bytes: u64,
    #[ts(type = "number")]
    pub kv_cache_bytes: u64,
    #[ts(type = "number")]
    pub total_bytes: u64,
}

/// Memory for running the model at `context` tokens (capped at what it was trained
/// for).
pub fn first_estimate(facts: &ModelFacts, context: u32) -> MemoryEstimate {
    let context = facts
        .context_length
        .map_or(context, |trained| trained.min(context));
    let layers = u64::from(facts.block_count.unwrap_or(0));
    let head_dim = match (facts.embedding_length, facts.head_count) {
        (Some(width), Some(heads)) if heads > 0 => u64::from(width / heads),
        _ => 0,
    };
    let kv_heads = u64::from(facts.head_count_kv.or(facts.head_count).unwrap_or(0));
    let kv_cache_bytes = 2 * layers * u64::from(context) * kv_heads * head_dim * KV_BYTES_PER_VALUE;
    MemoryEstimate {
        context,
        weights_bytes: facts.tensor_bytes,
        kv_cache_bytes,
        total_bytes: facts.tensor_bytes + kv_cache_bytes + OVERHEAD_BYTES,
    }
}
