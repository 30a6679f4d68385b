//! What the estimator needs from a GGUF header: tensor bytes per layer and the
//! dimensions that size the KV cache and the compute buffers, read the way
//! llama.cpp reads them (per-layer arrays, key/value lengths, sliding-window
//! layers, experts, MLA).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::gguf::{GgufFile, Value};

/// A model's memory-relevant shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ModelShape {
    pub architecture: String,
    pub layers: u32,
    #[ts(type = "number")]
    pub embedding: u64,
    /// Dense feed-forward width (the largest over the layers).
    #[ts(type = "number")]
    pub feed_forward: u64,
    pub vocab: u32,
    /// Attention heads per layer.
    pub heads: Vec<u32>,
    /// KV heads per layer (0 for a layer without attention).
    pub kv_heads: Vec<u32>,
    /// Per-head widths of K and V.
    #[ts(type = "number")]
    pub key_length: u64,
    #[ts(type = "number")]
    pub value_length: u64,
    /// Bytes of each `blk.N.*` layer.
    #[ts(type = "Array<number>")]
    pub layer_bytes: Vec<u64>,
    /// Bytes of the routed experts inside each layer (what `--cpu-moe` keeps in RAM).
    #[ts(type = "Array<number>")]
    pub expert_bytes: Vec<u64>,
    /// Token embeddings: llama.cpp always keeps them in RAM.
    #[ts(type = "number")]
    pub input_bytes: u64,
    /// Output norm and projection.
    #[ts(type = "number")]
    pub output_bytes: u64,
    /// No `output.weight`: llama.cpp reuses the embeddings, which costs a second copy
    /// of them on the GPU when the output layer is offloaded.
    pub output_tied: bool,
    /// Tensors outside the layers, embeddings and output (rope factors, …).
    #[ts(type = "number")]
    pub other_bytes: u64,
    pub expert_count: u32,
    pub expert_used: u32,
    #[ts(type = "number")]
    pub expert_feed_forward: u64,
    #[ts(type = "number")]
    pub shared_expert_feed_forward: u64,
    /// Tokens a sliding-window layer attends to, and which layers slide.
    #[ts(type = "number | null")]
    pub sliding_window: Option<u64>,
    pub sliding_layers: Vec<bool>,
    pub trained_context: Option<u32>,
    /// Most layer weights are f32/f16/bf16: GPU backends then run cuBLAS-style
    /// libraries with workspaces of their own.
    pub float_weights: bool,
}

impl ModelShape {
    /// `None` when the header lacks what an estimate needs (no architecture or no
    /// layer count), e.g. an image model.
    pub fn from_gguf(file: &GgufFile) -> Option<Self> {
        let architecture = file.architecture()?.to_owned();
        let layers = u32::try_from(file.arch_u64("block_count")?).ok()?;
        let arch_key = |suffix: &str| format!("{architecture}.{suffix}");
        let per_layer = |suffix: &str, fallback: u32| -> Vec<u32> {
            match file.get(&arch_key(suffix)) {
                Some(Value::Array(values)) => (0..layers as usize)
                    .map(|il| {
                        values
                            .get(il)
                            .and_then(Value::as_u64)
                            .and_then(|v| u32::try_from(v).ok())
                            .unwrap_or(fallback)
                    })
                    .collect(),
                Some(value) => {
                    let v = value
                        .as_u64()
                        .and_then(|v| u32::try_from(v).ok())
                        .unwrap_or(fallback);
                    vec![v; layers as usize]
                }
                None => vec![fallback; layers as usize],
            }
        };
        let embedding = file.arch_u64("embedding_length").unwrap_or(0);
        let heads = per_layer("attention.head_count", 0);
        let max_heads = u64::from(heads.iter().copied().max().unwrap_or(0));
        let kv_heads = {
            let kv = per_layer("attention.head_count_kv", u32::MAX);
            kv.iter()
                .zip(&heads)
                .map(|(&kv, &h)| if kv == u32::MAX { h } else { kv })
                .collect::<Vec<_>>()
        };
        let head_width = embedding.checked_div(max_heads).unwrap_or(0);
        let mut key_length = file.arch_u64("attention.key_length").unwrap_or(head_width);
        let mut value_length = file
            .arch_u64("attention.value_length")
            .unwrap_or(head_width);
        let mut kv_heads = kv_heads;
        // Multi-head latent attention (DeepSeek 2/3, Kimi): the cache holds the
        // compressed latent and the rope part, once per layer, not per head.
        if let Some(rank) = file.arch_u64("attention.kv_lora_rank") {
            let rope = file.arch_u64("rope.dimension_count").unwrap_or(64);
            key_length = rank + rope;
            value_length = rank;
            kv_heads = vec![1; layers as usize];
        }

        let mut layer_bytes = vec![0u64; layers as usize];
        let mut expert_bytes = vec![0u64; layers as usize];
        let (mut input_bytes, mut output_bytes, mut other_bytes) = (0u64, 0u64, 0u64);
        let mut float_layer_bytes = 0u64;
        let mut has_output = false;
        for tensor in &file.tensors {
            if let Some(il) = layer_index(&tensor.name).filter(|&il| il < layers as usize) {
                layer_bytes[il] += tensor.bytes;
                if matches!(tensor.ggml_type.name, "F32" | "F16" | "BF16") {
                    float_layer_bytes += tensor.bytes;
                }
                if tensor.name.contains("_exps.") {
                    expert_bytes[il] += tensor.bytes;
                }
            } else if tensor.name.starts_with("token_embd") {
                input_bytes += tensor.bytes;
            } else if tensor.name.starts_with("output") {
                has_output |= tensor.name == "output.weight";
                output_bytes += tensor.bytes;
            } else {
                other_bytes += tensor.bytes;
            }
        }
        let vocab = file
            .get("tokenizer.ggml.tokens")
            .and_then(Value::as_array)
            .map(<[Value]>::len)
            .or_else(|| file.arch_u64("vocab_size").map(|v| v as usize))
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0);
        let expert_count = small(file.arch_u64("expert_count"));
        let float_weights = float_layer_bytes * 2 > layer_bytes.iter().sum::<u64>();
        let (sliding_window, sliding_layers) = sliding(file, &architecture, layers);
        Some(Self {
            layers,
            embedding,
            feed_forward: file.arch_u64("feed_forward_length").unwrap_or(0),
            vocab,
            heads,
            kv_heads,
            key_length,
            value_length,
            layer_bytes,
            expert_bytes,
            input_bytes,
            output_bytes,
            output_tied: !has_output,
            other_bytes,
            expert_count,
            expert_used: small(file.arch_u64("expert_used_count")),
            expert_feed_forward: file.arch_u64("expert_feed_forward_length").unwrap_or(0),
            shared_expert_feed_forward: file
                .arch_u64("expert_shared_feed_forward_length")
                .unwrap_or(0),
            sliding_window,
            sliding_layers,
            trained_context: file
                .arch_u64("context_length")
                .and_then(|v| u32::try_from(v).ok()),
            float_weights,
            architecture,
        })
    }

    pub fn weights_bytes(&self) -> u64 {
        self.layer_bytes.iter().sum::<u64>()
            + self.input_bytes
            + self.output_bytes
            + self.other_bytes
    }

    /// K and V widths of one layer's cache row (all heads).
    pub fn kv_widths(&self, layer: usize) -> (u64, u64) {
        let kv_heads = u64::from(self.kv_heads.get(layer).copied().unwrap_or(0));
        (kv_heads * self.key_length, kv_heads * self.value_length)
    }

    pub fn max_heads(&self) -> u64 {
        u64::from(self.heads.iter().copied().max().unwrap_or(0))
    }

    pub fn is_moe(&self) -> bool {
        self.expert_count > 1
    }
}

fn small(value: Option<u64>) -> u32 {
    value.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

/// `blk.12.attn_q.weight` → 12.
fn layer_index(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// The sliding-window size and the layers that use it: from the file's own
/// per-layer pattern when it has one, else llama.cpp's pattern for the architecture
/// (`load_swa_pattern(ml, n, dense_first)` in its model sources: every n-th layer
/// attends to the whole context).
fn sliding(file: &GgufFile, architecture: &str, layers: u32) -> (Option<u64>, Vec<bool>) {
    let none = (None, vec![false; layers as usize]);
    let Some(window) = file.arch_u64("attention.sliding_window").filter(|&w| w > 0) else {
        return none;
    };
    let pattern_key = format!("{architecture}.attention.sliding_window_pattern");
    if let Some(Value::Array(pattern)) = file.get(&pattern_key) {
        let layers_sliding = (0..layers as usize)
            .map(|il| matches!(pattern.get(il), Some(Value::Bool(true))))
            .collect();
        return (Some(window), layers_sliding);
    }
    let Some((default_period, dense_first)) = swa_pattern(architecture) else {
        // Other architectures (Mistral's old llama files among them) carry a window
        // that llama.cpp does not apply.
        return none;
    };
    let period = file
        .get_u64(&pattern_key)
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(default_period);
    let layers_sliding = (0..layers)
        .map(|il| match (period, dense_first) {
            (0, _) => true,
            (p, true) => il % p != 0,
            (p, false) => il % p < p - 1,
        })
        .collect();
    (Some(window), layers_sliding)
}

/// llama.cpp's default pattern per architecture: (period, dense layer first).
fn swa_pattern(architecture: &str) -> Option<(u32, bool)> {
    Some(match architecture {
        "gemma2" | "gpt-oss" => (2, false),
        "cohere2" | "llama4" | "exaone4" | "exaone-moe" | "olmo2" | "afmoe" => (4, false),
        "cohere2moe" | "smallthinker" => (4, true),
        "gemma3n" => (5, false),
        "gemma3" | "gemma-embedding" => (6, false),
        "plamo3" => (8, false),
        _ => return None,
    })
}
