//! Complete models with random weights and a working SentencePiece-style tokenizer
//! and chat template, in the architectures whose memory differs: llama, qwen3
//! (query and key norms), gemma3 (interleaved sliding-window attention, tied output,
//! post-norms) and qwen3moe (routed experts). llama-server loads them and answers
//! chat (with random text); `llama-quantize` turns their F16 form into any quant.

use std::path::Path;

use switchyard_engine::gguf::Value;

use super::quant::{encode_f16, encode_q8_0};
use super::GgufWriter;
use crate::random::XorShift;

/// How the 2-D weight matrices are stored (norms are always F32, as llama.cpp wants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    F32,
    F16,
    Q8_0,
}

impl TensorType {
    fn ggml_id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q8_0 => 8,
        }
    }

    /// `general.file_type` (llama_ftype) for a file mostly of this type.
    fn file_type(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q8_0 => 7,
        }
    }

    fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            Self::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Self::F16 => encode_f16(values),
            Self::Q8_0 => encode_q8_0(values),
        }
    }
}

/// Which llama.cpp architecture the file declares, with what only it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Architecture {
    #[default]
    Llama,
    /// RMS norms on each head's query and key.
    Qwen3,
    /// Five of every six layers attend to a window of `sliding_window` tokens
    /// (llama.cpp's default pattern for gemma3); the output reuses the embeddings.
    Gemma3 { sliding_window: u32 },
    /// Every layer's feed-forward is `experts` routed experts of width
    /// `expert_feed_forward`, `experts_used` of them per token.
    Qwen3Moe {
        experts: u32,
        experts_used: u32,
        expert_feed_forward: u32,
    },
}

impl Architecture {
    fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen3 => "qwen3",
            Self::Gemma3 { .. } => "gemma3",
            Self::Qwen3Moe { .. } => "qwen3moe",
        }
    }

    fn has_head_norms(self) -> bool {
        !matches!(self, Self::Llama)
    }
}

/// The shape of a generated model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaSpec {
    pub name: String,
    pub architecture: Architecture,
    pub layers: u32,
    pub embedding: u32,
    pub heads: u32,
    pub kv_heads: u32,
    /// Width of one attention head; `None`: `embedding / heads`.
    pub head_dim: Option<u32>,
    pub feed_forward: u32,
    /// At least 259 (3 special tokens and 256 byte tokens).
    pub vocab: u32,
    pub context: u32,
    pub tensor_type: TensorType,
    pub seed: u64,
}

impl Default for LlamaSpec {
    /// The tiny model: 2 layers, width 64, vocab 512, f32 (~0.6 MB).
    fn default() -> Self {
        Self {
            name: "switchyard-tiny-llama".into(),
            architecture: Architecture::Llama,
            layers: 2,
            embedding: 64,
            heads: 4,
            kv_heads: 2,
            head_dim: None,
            feed_forward: 128,
            vocab: 512,
            context: 2048,
            tensor_type: TensorType::F32,
            seed: 42,
        }
    }
}

const CHAT_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A chat template of a reasoning model (Qwen3's idea, small): the assistant turn
/// opens with `<think>` unless thinking is switched off.
pub const THINKING_CHAT_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\n\n</think>\n\n' }}{% else %}{{ '<think>\n' }}{% endif %}{% endif %}";

/// SentencePiece token types.
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const BYTE: i32 = 6;

impl LlamaSpec {
    /// A model whose weights (~64 MiB of F32), not llama-server's runtime, set the
    /// memory it holds (~100 MiB): the router's tests and bench place it by memory.
    pub fn weights_bound() -> Self {
        Self {
            embedding: 512,
            heads: 8,
            kv_heads: 4,
            feed_forward: 1024,
            vocab: 16_384,
            ..Self::default()
        }
    }

    /// A llama of this shape with a 32 K trained context (the benches' generated
    /// models, which vary the shape the estimate depends on).
    #[allow(clippy::too_many_arguments)]
    pub fn shaped(
        name: &str,
        layers: u32,
        embedding: u32,
        heads: u32,
        kv_heads: u32,
        feed_forward: u32,
        vocab: u32,
        tensor_type: TensorType,
    ) -> Self {
        Self {
            name: name.to_owned(),
            layers,
            embedding,
            heads,
            kv_heads,
            feed_forward,
            vocab,
            context: 32_768,
            tensor_type,
            ..Self::default()
        }
    }

    /// A small F16 model of `architecture` whose widths K-quants take (multiples of
    /// 256), for `llama-quantize`: 4 layers of width 512 (6 for gemma3, so one
    /// layer in six attends to everything, as llama.cpp's gemma3 pattern has it).
    pub fn quantizable(architecture: Architecture) -> Self {
        let base = Self {
            name: format!("switchyard-{}", architecture.name()),
            architecture,
            layers: 4,
            embedding: 512,
            heads: 8,
            kv_heads: 2,
            head_dim: Some(64),
            feed_forward: 1536,
            vocab: 8000,
            context: 32_768,
            tensor_type: TensorType::F16,
            seed: 5,
        };
        match architecture {
            Architecture::Gemma3 { .. } => Self {
                layers: 6,
                heads: 4,
                kv_heads: 1,
                head_dim: Some(256),
                ..base
            },
            _ => base,
        }
    }

    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        self.writer().write_to(path)
    }

    /// The same model naming a pooling type (`<arch>.pooling_type`: 1 mean, 2 cls,
    /// 3 last, 4 rank), as embedding models' files do.
    pub fn write_pooled(&self, path: &Path, pooling_type: u32) -> std::io::Result<()> {
        let mut gguf = self.writer();
        gguf.u32(
            &format!("{}.pooling_type", self.architecture.name()),
            pooling_type,
        );
        gguf.write_to(path)
    }

    /// The same model with another chat template (e.g. [`THINKING_CHAT_TEMPLATE`]).
    pub fn write_with_chat_template(&self, path: &Path, template: &str) -> std::io::Result<()> {
        self.writer_with(template).write_to(path)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.writer().to_bytes()
    }

    fn writer(&self) -> GgufWriter {
        self.writer_with(CHAT_TEMPLATE)
    }

    fn writer_with(&self, chat_template: &str) -> GgufWriter {
        let mut gguf = GgufWriter::new();
        let arch = self.architecture.name();
        let head_dim = self.head_dim.unwrap_or(self.embedding / self.heads.max(1));
        let key = |suffix: &str| format!("{arch}.{suffix}");
        gguf.string("general.architecture", arch)
            .string("general.name", &self.name)
            .u32("general.file_type", self.tensor_type.file_type())
            .u32(&key("context_length"), self.context)
            .u32(&key("embedding_length"), self.embedding)
            .u32(&key("block_count"), self.layers)
            .u32(&key("feed_forward_length"), self.feed_forward)
            .u32(&key("attention.head_count"), self.heads)
            .u32(&key("attention.head_count_kv"), self.kv_heads)
            .u32(&key("rope.dimension_count"), head_dim)
            .kv(&key("attention.layer_norm_rms_epsilon"), Value::F32(1e-5))
            .kv(&key("rope.freq_base"), Value::F32(10_000.0))
            .u32(&key("vocab_size"), self.vocab);
        // Only a head width other than `embedding / heads` is written (llama.cpp
        // derives it otherwise), so the tiny model's file stays byte for byte as it was.
        if self.head_dim.is_some() {
            gguf.u32(&key("attention.key_length"), head_dim)
                .u32(&key("attention.value_length"), head_dim);
        }
        match self.architecture {
            Architecture::Gemma3 { sliding_window } => {
                gguf.u32(&key("attention.sliding_window"), sliding_window);
            }
            Architecture::Qwen3Moe {
                experts,
                experts_used,
                expert_feed_forward,
            } => {
                gguf.u32(&key("expert_count"), experts)
                    .u32(&key("expert_used_count"), experts_used)
                    .u32(&key("expert_feed_forward_length"), expert_feed_forward);
            }
            Architecture::Llama | Architecture::Qwen3 => {}
        }
        self.tokenizer(&mut gguf, chat_template);

        let mut random = XorShift::new(self.seed);
        let (embd, vocab, ff) = (
            u64::from(self.embedding),
            u64::from(self.vocab),
            u64::from(self.feed_forward),
        );
        let (head, attention_width) = (
            u64::from(head_dim),
            u64::from(head_dim) * u64::from(self.heads),
        );
        let kv_width = u64::from(head_dim * self.kv_heads);
        let ty = self.tensor_type;
        let mut tensor = |gguf: &mut GgufWriter, name: &str, dims: &[u64]| {
            // Small values (±0.05) keep activations finite through the layers.
            let count: u64 = dims.iter().product();
            let values: Vec<f32> = (0..count).map(|_| random.symmetric(0.05)).collect();
            gguf.tensor(name, dims, ty.ggml_id(), ty.encode(&values));
        };
        let ones = |len: u64| vec![1.0f32; usize::try_from(len).unwrap_or(0)];
        let norm = |gguf: &mut GgufWriter, name: &str, len: u64| {
            gguf.tensor_f32(name, &[len], &ones(len));
        };

        tensor(&mut gguf, "token_embd.weight", &[embd, vocab]);
        for layer in 0..self.layers {
            let name = |part: &str| format!("blk.{layer}.{part}.weight");
            norm(&mut gguf, &name("attn_norm"), embd);
            tensor(&mut gguf, &name("attn_q"), &[embd, attention_width]);
            tensor(&mut gguf, &name("attn_k"), &[embd, kv_width]);
            tensor(&mut gguf, &name("attn_v"), &[embd, kv_width]);
            tensor(&mut gguf, &name("attn_output"), &[attention_width, embd]);
            if self.architecture.has_head_norms() {
                norm(&mut gguf, &name("attn_q_norm"), head);
                norm(&mut gguf, &name("attn_k_norm"), head);
            }
            norm(&mut gguf, &name("ffn_norm"), embd);
            match self.architecture {
                Architecture::Qwen3Moe {
                    experts,
                    expert_feed_forward,
                    ..
                } => {
                    let (experts, width) = (u64::from(experts), u64::from(expert_feed_forward));
                    tensor(&mut gguf, &name("ffn_gate_inp"), &[embd, experts]);
                    tensor(&mut gguf, &name("ffn_gate_exps"), &[embd, width, experts]);
                    tensor(&mut gguf, &name("ffn_down_exps"), &[width, embd, experts]);
                    tensor(&mut gguf, &name("ffn_up_exps"), &[embd, width, experts]);
                }
                _ => {
                    tensor(&mut gguf, &name("ffn_gate"), &[embd, ff]);
                    tensor(&mut gguf, &name("ffn_down"), &[ff, embd]);
                    tensor(&mut gguf, &name("ffn_up"), &[embd, ff]);
                }
            }
            if let Architecture::Gemma3 { .. } = self.architecture {
                norm(&mut gguf, &name("post_attention_norm"), embd);
                norm(&mut gguf, &name("post_ffw_norm"), embd);
            }
        }
        norm(&mut gguf, "output_norm.weight", embd);
        // gemma3 ties its output to the embeddings, as the published models do.
        if !matches!(self.architecture, Architecture::Gemma3 { .. }) {
            tensor(&mut gguf, "output.weight", &[embd, vocab]);
        }
        gguf
    }

    /// `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then words and letters with
    /// SentencePiece's word-start mark, so any text tokenizes.
    fn tokenizer(&self, gguf: &mut GgufWriter, chat_template: &str) {
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        let mut types = vec![UNKNOWN, CONTROL, CONTROL];
        for byte in 0..=255u8 {
            tokens.push(format!("<0x{byte:02X}>"));
            types.push(BYTE);
        }
        let words = [
            "▁",
            "▁the",
            "▁a",
            "▁to",
            "▁and",
            "▁of",
            "▁is",
            "▁in",
            "▁you",
            "▁it",
            "▁hello",
            "▁world",
            "▁switch",
            "▁yard",
            "▁model",
            "▁local",
            "▁chat",
            "▁image",
            "im",
            "_start",
            "_end",
            "|",
            "<",
            ">",
        ];
        let letters = ('a'..='z').chain('A'..='Z').chain('0'..='9');
        let candidates = words
            .iter()
            .map(|w| (*w).to_owned())
            .chain(letters.clone().map(|c| c.to_string()))
            .chain(letters.map(|c| format!("▁{c}")));
        for word in candidates {
            if tokens.len() >= self.vocab as usize {
                break;
            }
            if !tokens.contains(&word) {
                tokens.push(word);
                types.push(NORMAL);
            }
        }
        let mut filler = 0;
        while tokens.len() < self.vocab as usize {
            tokens.push(format!("▁w{filler}"));
            types.push(NORMAL);
            filler += 1;
        }
        // Longer pieces score higher so the tokenizer prefers them when merging.
        let scores = tokens
            .iter()
            .zip(&types)
            .map(|(token, ty)| {
                Value::F32(if *ty == NORMAL {
                    -1.0 / token.chars().count() as f32
                } else {
                    0.0
                })
            })
            .collect();
        gguf.string("tokenizer.ggml.model", "llama")
            .kv(
                "tokenizer.ggml.tokens",
                Value::Array(tokens.into_iter().map(Value::String).collect()),
            )
            .kv("tokenizer.ggml.scores", Value::Array(scores))
            .kv(
                "tokenizer.ggml.token_type",
                Value::Array(types.into_iter().map(Value::I32).collect()),
            )
            .u32("tokenizer.ggml.unknown_token_id", 0)
            .u32("tokenizer.ggml.bos_token_id", 1)
            .u32("tokenizer.ggml.eos_token_id", 2)
            .kv("tokenizer.ggml.add_bos_token", Value::Bool(true))
            .string("tokenizer.chat_template", chat_template);
    }
}
