//! Complete llama-architecture models with random weights and a working
//! SentencePiece-style tokenizer and chat template: llama-server loads them and
//! answers chat (with random text).

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

/// The shape of a generated llama model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaSpec {
    pub name: String,
    pub layers: u32,
    pub embedding: u32,
    pub heads: u32,
    pub kv_heads: u32,
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
            layers: 2,
            embedding: 64,
            heads: 4,
            kv_heads: 2,
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
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        self.writer().write_to(path)
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
        let head_dim = self.embedding / self.heads.max(1);
        gguf.string("general.architecture", "llama")
            .string("general.name", &self.name)
            .u32("general.file_type", self.tensor_type.file_type())
            .u32("llama.context_length", self.context)
            .u32("llama.embedding_length", self.embedding)
            .u32("llama.block_count", self.layers)
            .u32("llama.feed_forward_length", self.feed_forward)
            .u32("llama.attention.head_count", self.heads)
            .u32("llama.attention.head_count_kv", self.kv_heads)
            .u32("llama.rope.dimension_count", head_dim)
            .kv("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5))
            .kv("llama.rope.freq_base", Value::F32(10_000.0))
            .u32("llama.vocab_size", self.vocab);
        self.tokenizer(&mut gguf, chat_template);

        let mut random = XorShift::new(self.seed);
        let (embd, vocab, ff) = (
            u64::from(self.embedding),
            u64::from(self.vocab),
            u64::from(self.feed_forward),
        );
        let kv_width = u64::from(head_dim * self.kv_heads);
        let ty = self.tensor_type;
        let mut matrix = |gguf: &mut GgufWriter, name: &str, cols: u64, rows: u64| {
            // Small values (±0.05) keep activations finite through the layers.
            let values: Vec<f32> = (0..cols * rows).map(|_| random.symmetric(0.05)).collect();
            gguf.tensor(name, &[cols, rows], ty.ggml_id(), ty.encode(&values));
        };
        let ones = |len: u64| vec![1.0f32; usize::try_from(len).unwrap_or(0)];

        matrix(&mut gguf, "token_embd.weight", embd, vocab);
        for layer in 0..self.layers {
            let name = |part: &str| format!("blk.{layer}.{part}.weight");
            gguf.tensor_f32(&name("attn_norm"), &[embd], &ones(embd));
            matrix(&mut gguf, &name("attn_q"), embd, embd);
            matrix(&mut gguf, &name("attn_k"), embd, kv_width);
            matrix(&mut gguf, &name("attn_v"), embd, kv_width);
            matrix(&mut gguf, &name("attn_output"), embd, embd);
            gguf.tensor_f32(&name("ffn_norm"), &[embd], &ones(embd));
            matrix(&mut gguf, &name("ffn_gate"), embd, ff);
            matrix(&mut gguf, &name("ffn_down"), ff, embd);
            matrix(&mut gguf, &name("ffn_up"), embd, ff);
        }
        gguf.tensor_f32("output_norm.weight", &[embd], &ones(embd));
        matrix(&mut gguf, "output.weight", embd, vocab);
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
