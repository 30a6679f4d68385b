//! What the estimator needs from a GGUF header: tensor bytes per layer and the
//! dimensions that size the KV cache and the compute buffers, read the way
//! llama.cpp reads them (per-layer arrays, key/value lengths, sliding-window
//! layers, experts, MLA).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::repack::{EdgeTensor, MatrixBytes, TensorPlace, EDGE_TENSORS};
use switchyard_gguf::{GgufFile, Value};

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
    /// Each layer's weight matrices by type and row divisor: what the CPU backend
    /// may repack.
    pub layer_matrices: Vec<Vec<MatrixBytes>>,
    /// The output projection's (the embeddings' when the output is tied).
    pub output_matrices: Vec<MatrixBytes>,
    /// The first and the last tensors of the file's data, each from its end inwards
    /// (at most [`EDGE_TENSORS`]): repacked ones there are not mapped as well.
    pub leading_tensors: Vec<EdgeTensor>,
    pub trailing_tensors: Vec<EdgeTensor>,
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

/// More layers than llama.cpp loads (`LLAMA_MAX_LAYERS`, 512) by far, so a future
/// raise still estimates, and few enough that per-layer tables stay small.
pub const MAX_LAYERS: u32 = 4096;
/// Widths (embedding, feed-forward, head size) beyond any model: the largest are
/// tens of thousands.
const MAX_WIDTH: u64 = 1 << 20;
/// Attention heads and experts per layer (llama.cpp allows 1024 experts).
const MAX_HEADS: u64 = 1 << 16;
/// Vocabulary entries (the largest today are ~262k).
const MAX_VOCAB: u64 = 1 << 24;

/// Why a header gives no shape to estimate from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoShape {
    /// No architecture or no layer count: an image model, a projector, ….
    #[error("it is not a language model (no architecture or layer count)")]
    NotALanguageModel,
    /// The metadata claims what no model is or what the file does not hold (a
    /// damaged or hostile file): trusted, it would size tables by it.
    #[error("{0}")]
    Implausible(String),
}

impl ModelShape {
    /// The shape a header describes. Every count that sizes a table is bounded by
    /// what the file holds: no more layers than tensors, no dimension beyond any
    /// real model.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, NoShape> {
        let architecture = file
            .architecture()
            .ok_or(NoShape::NotALanguageModel)?
            .to_owned();
        let block_count = file
            .arch_u64("block_count")
            .ok_or(NoShape::NotALanguageModel)?;
        let layers = layer_count(block_count, file.tensors.len())?;
        let arch_key = |suffix: &str| format!("{architecture}.{suffix}");
        let dimension = |suffix: &str, max: u64| -> Result<Option<u64>, NoShape> {
            match file.arch_u64(suffix) {
                Some(value) if value > max => Err(NoShape::Implausible(format!(
                    "{} is {value}; no model has more than {max}",
                    arch_key(suffix)
                ))),
                value => Ok(value),
            }
        };
        // Per-layer values (an array, or one value for every layer); a value out of
        // range counts as absent.
        let per_layer = |suffix: &str, fallback: u32| -> Result<Vec<u32>, NoShape> {
            dimension(suffix, MAX_HEADS)?;
            let value = file.get(&arch_key(suffix));
            let single = value.and_then(Value::as_u64);
            Ok((0..layers as usize)
                .map(|il| {
                    single
                        .or_else(|| value?.array_item(il)?.as_u64())
                        .and_then(|v| u32::try_from(v).ok())
                        .unwrap_or(fallback)
                })
                .collect())
        };
        let embedding = dimension("embedding_length", MAX_WIDTH)?.unwrap_or(0);
        let heads = per_layer("attention.head_count", 0)?;
        let max_heads = u64::from(heads.iter().copied().max().unwrap_or(0));
        let kv_heads = {
            let kv = per_layer("attention.head_count_kv", u32::MAX)?;
            kv.iter()
                .zip(&heads)
                .map(|(&kv, &h)| if kv == u32::MAX { h } else { kv })
                .collect::<Vec<_>>()
        };
        let head_width = embedding.checked_div(max_heads).unwrap_or(0);
        let mut key_length = dimension("attention.key_length", MAX_WIDTH)?.unwrap_or(head_width);
        let mut value_length =
            dimension("attention.value_length", MAX_WIDTH)?.unwrap_or(head_width);
        let mut kv_heads = kv_heads;
        // Multi-head latent attention (DeepSeek 2/3, Kimi): the cache holds the
        // compressed latent and the rope part, once per layer, not per head.
        if let Some(rank) = dimension("attention.kv_lora_rank", MAX_WIDTH)? {
            let rope = dimension("rope.dimension_count", MAX_WIDTH)?.unwrap_or(64);
            key_length = rank + rope;
            value_length = rank;
            kv_heads = vec![1; layers as usize];
        }

        let mut layer_bytes = vec![0u64; layers as usize];
        let mut expert_bytes = vec![0u64; layers as usize];
        let mut layer_matrices = vec![Vec::new(); layers as usize];
        let (mut output_matrices, mut input_matrices) = (Vec::new(), Vec::new());
        // A matrix's rows are its second dimension (a stack of experts is one).
        let matrix = |list: &mut Vec<MatrixBytes>, tensor: &switchyard_gguf::TensorInfo| {
            if let Some(&rows) = tensor.dims.get(1) {
                MatrixBytes::add(list, tensor.ggml_type.name, rows, tensor.bytes);
            }
        };
        let (mut input_bytes, mut output_bytes, mut other_bytes) = (0u64, 0u64, 0u64);
        let mut float_layer_bytes = 0u64;
        let mut has_output = false;
        // Tensor sizes are only checked against the file when its length is known
        // (a remote header may not say): the sums saturate rather than wrap.
        let add = |sum: &mut u64, bytes: u64| *sum = sum.saturating_add(bytes);
        for tensor in &file.tensors {
            if let Some(il) = layer_index(&tensor.name).filter(|&il| il < layers as usize) {
                add(&mut layer_bytes[il], tensor.bytes);
                if matches!(tensor.ggml_type.name, "F32" | "F16" | "BF16") {
                    add(&mut float_layer_bytes, tensor.bytes);
                }
                if tensor.name.contains("_exps.") {
                    add(&mut expert_bytes[il], tensor.bytes);
                }
                matrix(&mut layer_matrices[il], tensor);
            } else if tensor.name.starts_with("token_embd") {
                add(&mut input_bytes, tensor.bytes);
                matrix(&mut input_matrices, tensor);
            } else if tensor.name.starts_with("output") {
                has_output |= tensor.name == "output.weight";
                add(&mut output_bytes, tensor.bytes);
                matrix(&mut output_matrices, tensor);
            } else {
                add(&mut other_bytes, tensor.bytes);
            }
        }
        let mut in_file_order: Vec<&switchyard_gguf::TensorInfo> = file.tensors.iter().collect();
        in_file_order.sort_by_key(|tensor| tensor.offset);
        let edge = |tensor: &&switchyard_gguf::TensorInfo| {
            let place = match layer_index(&tensor.name).filter(|&il| il < layers as usize) {
                Some(il) => TensorPlace::Layer(u32::try_from(il).unwrap_or(u32::MAX)),
                None if tensor.name.starts_with("output") => TensorPlace::Output,
                None => TensorPlace::Fixed,
            };
            EdgeTensor::new(place, tensor.ggml_type.name, &tensor.dims, tensor.bytes)
        };
        let leading_tensors = in_file_order.iter().take(EDGE_TENSORS).map(edge).collect();
        let trailing_tensors = in_file_order
            .iter()
            .rev()
            .take(EDGE_TENSORS)
            .map(edge)
            .collect();
        let vocab = match file.get("tokenizer.ggml.tokens").and_then(Value::array_len) {
            Some(tokens) => tokens as u64,
            None => dimension("vocab_size", MAX_VOCAB)?.unwrap_or(0),
        };
        let vocab = u32::try_from(vocab.min(MAX_VOCAB)).unwrap_or(0);
        let expert_count = small(dimension("expert_count", MAX_HEADS)?);
        let all_layer_bytes = layer_bytes
            .iter()
            .fold(0u64, |sum, &bytes| sum.saturating_add(bytes));
        let float_weights = float_layer_bytes > all_layer_bytes / 2;
        let (sliding_window, sliding_layers) = sliding(file, &architecture, layers)?;
        Ok(Self {
            layers,
            embedding,
            feed_forward: dimension("feed_forward_length", MAX_WIDTH)?.unwrap_or(0),
            vocab,
            heads,
            kv_heads,
            key_length,
            value_length,
            layer_bytes,
            expert_bytes,
            layer_matrices,
            output_matrices: if has_output {
                output_matrices
            } else {
                input_matrices
            },
            leading_tensors,
            trailing_tensors,
            input_bytes,
            output_bytes,
            output_tied: !has_output,
            other_bytes,
            expert_count,
            expert_used: small(dimension("expert_used_count", MAX_HEADS)?),
            expert_feed_forward: dimension("expert_feed_forward_length", MAX_WIDTH)?.unwrap_or(0),
            shared_expert_feed_forward: dimension("expert_shared_feed_forward_length", MAX_WIDTH)?
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
        self.layer_bytes
            .iter()
            .chain([&self.input_bytes, &self.output_bytes, &self.other_bytes])
            .fold(0u64, |sum, &bytes| sum.saturating_add(bytes))
    }

    /// K and V widths of one layer's cache row (all heads).
    pub fn kv_widths(&self, layer: usize) -> (u64, u64) {
        let kv_heads = u64::from(self.kv_heads.get(layer).copied().unwrap_or(0));
        (
            kv_heads.saturating_mul(self.key_length),
            kv_heads.saturating_mul(self.value_length),
        )
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
fn sliding(
    file: &GgufFile,
    architecture: &str,
    layers: u32,
) -> Result<(Option<u64>, Vec<bool>), NoShape> {
    let none = (None, vec![false; layers as usize]);
    let Some(window) = file.arch_u64("attention.sliding_window").filter(|&w| w > 0) else {
        return Ok(none);
    };
    if window > u64::from(u32::MAX) {
        return Err(NoShape::Implausible(format!(
            "{architecture}.attention.sliding_window is {window}, more tokens than any context"
        )));
    }
    let pattern_key = format!("{architecture}.attention.sliding_window_pattern");
    let pattern = file.get(&pattern_key);
    if pattern.and_then(Value::array_len).is_some() {
        let layers_sliding = (0..layers as usize)
            .map(|il| {
                matches!(
                    pattern.and_then(|p| p.array_item(il)),
                    Some(Value::Bool(true))
                )
            })
            .collect();
        return Ok((Some(window), layers_sliding));
    }
    let Some((default_period, dense_first)) = swa_pattern(architecture) else {
        // Other architectures (Mistral's old llama files among them) carry a window
        // that llama.cpp does not apply.
        return Ok(none);
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
    Ok((Some(window), layers_sliding))
}

/// The layer count the header claims, if the file can be that model: every layer
/// has tensors, so a file with fewer tensors than layers is not what it says.
fn layer_count(block_count: u64, tensors: usize) -> Result<u32, NoShape> {
    if block_count > u64::from(MAX_LAYERS) {
        return Err(NoShape::Implausible(format!(
            "it claims {block_count} layers; no model has more than {MAX_LAYERS} (llama.cpp loads at most 512)"
        )));
    }
    if block_count > tensors as u64 {
        return Err(NoShape::Implausible(format!(
            "it claims {block_count} layers but holds only {tensors} tensors"
        )));
    }
    u32::try_from(block_count).map_err(|_| NoShape::NotALanguageModel)
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
