//! What a person wants to know about a model, derived from its header.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{GgufFile, Value};

/// How much of the model is stored in one tensor type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct QuantShare {
    pub type_name: String,
    pub tensors: u32,
    #[ts(type = "number")]
    pub bytes: u64,
}

/// A shard of a model split over several files (`-00001-of-00003.gguf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SplitInfo {
    /// 0-based, as llama.cpp's `split.no`.
    pub index: u32,
    pub count: u32,
    #[ts(type = "number | null")]
    pub total_tensors: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ModelFacts {
    pub version: u32,
    pub architecture: Option<String>,
    pub name: Option<String>,
    /// e.g. "8B", from `general.size_label`.
    pub size_label: Option<String>,
    /// The quantization the converter named, e.g. "Q4_K_M".
    pub file_type: Option<String>,
    /// Parameters in this file's tensors.
    #[ts(type = "number")]
    pub parameter_count: u64,
    #[ts(type = "number")]
    pub tensor_bytes: u64,
    pub tensor_count: u32,
    /// Largest share first.
    pub quantization: Vec<QuantShare>,
    pub block_count: Option<u32>,
    pub context_length: Option<u32>,
    pub embedding_length: Option<u32>,
    pub feed_forward_length: Option<u32>,
    pub head_count: Option<u32>,
    pub head_count_kv: Option<u32>,
    pub expert_count: Option<u32>,
    pub expert_used_count: Option<u32>,
    pub vocab_size: Option<u32>,
    pub tokenizer_model: Option<String>,
    pub chat_template: Option<String>,
    pub split: Option<SplitInfo>,
    #[ts(type = "number")]
    pub header_bytes: u64,
}

impl ModelFacts {
    pub fn from_file(file: &GgufFile) -> Self {
        let mut by_type: BTreeMap<&str, (u32, u64)> = BTreeMap::new();
        for tensor in &file.tensors {
            let entry = by_type.entry(tensor.ggml_type.name).or_default();
            entry.0 = entry.0.saturating_add(1);
            entry.1 = entry.1.saturating_add(tensor.bytes);
        }
        let mut quantization: Vec<QuantShare> = by_type
            .into_iter()
            .map(|(name, (tensors, bytes))| QuantShare {
                type_name: name.to_owned(),
                tensors,
                bytes,
            })
            .collect();
        quantization.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then_with(|| a.type_name.cmp(&b.type_name))
        });

        let small = |value: Option<u64>| value.and_then(|v| u32::try_from(v).ok());
        let text = |key: &str| file.get_str(key).map(str::to_owned);
        let split = small(file.get_u64("split.count"))
            .filter(|&count| count > 1)
            .map(|count| SplitInfo {
                index: small(file.get_u64("split.no")).unwrap_or(0),
                count,
                total_tensors: file.get_u64("split.tensors.count"),
            });
        Self {
            version: file.version,
            architecture: text("general.architecture"),
            name: text("general.name"),
            size_label: text("general.size_label"),
            file_type: small(file.get_u64("general.file_type"))
                .and_then(file_type_name)
                .map(str::to_owned),
            // A remote header of unknown length has unchecked tensor sizes: the
            // sums saturate rather than overflow.
            parameter_count: file
                .tensors
                .iter()
                .fold(0u64, |sum, t| sum.saturating_add(t.elements)),
            tensor_bytes: file
                .tensors
                .iter()
                .fold(0u64, |sum, t| sum.saturating_add(t.bytes)),
            tensor_count: u32::try_from(file.tensors.len()).unwrap_or(u32::MAX),
            quantization,
            block_count: small(file.arch_u64("block_count")),
            context_length: small(file.arch_u64("context_length")),
            embedding_length: small(file.arch_u64("embedding_length")),
            feed_forward_length: small(file.arch_u64("feed_forward_length")),
            head_count: small(file.arch_u64("attention.head_count")),
            head_count_kv: small(file.arch_u64("attention.head_count_kv"))
                .or(small(file.arch_u64("attention.head_count"))),
            expert_count: small(file.arch_u64("expert_count")),
            expert_used_count: small(file.arch_u64("expert_used_count")),
            vocab_size: file
                .get("tokenizer.ggml.tokens")
                .and_then(Value::array_len)
                .and_then(|tokens| u32::try_from(tokens).ok())
                .or(small(file.arch_u64("vocab_size"))),
            tokenizer_model: text("tokenizer.ggml.model"),
            chat_template: text("tokenizer.chat_template"),
            split,
            header_bytes: file.header_len,
        }
    }
}

/// llama.cpp's `llama_ftype` names (`general.file_type`).
pub fn file_type_name(id: u32) -> Option<&'static str> {
    Some(match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        40 => "Q1_0",
        _ => return None,
    })
}
