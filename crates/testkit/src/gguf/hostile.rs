//! Crafted GGUF headers that claim more than they hold, the way a hostile or
//! damaged file does: each must give a clear error or a sane estimate, quickly and
//! in little memory. They are also the seeds of the fuzz corpus
//! (`fuzz/corpus/gguf_estimate/`).

use switchyard_engine::gguf::{PackedArray, Value, ValueType};

use super::writer::GgufWriter;

const F32: u32 = 0;

/// A small llama with one real layer whose metadata says what `claims` say (in
/// place of the defaults for the same keys).
fn llama_claiming(claims: Vec<(&str, Value)>) -> GgufWriter {
    let defaults = [
        ("general.architecture", Value::String("llama".into())),
        ("llama.block_count", Value::U32(1)),
        ("llama.embedding_length", Value::U32(64)),
        ("llama.attention.head_count", Value::U32(4)),
        ("llama.context_length", Value::U32(2048)),
    ];
    let mut writer = GgufWriter::new();
    for (key, value) in defaults {
        if !claims.iter().any(|(claimed, _)| *claimed == key) {
            writer.kv(key, value);
        }
    }
    for (key, value) in claims {
        writer.kv(key, value);
    }
    writer
        .tensor_f32("token_embd.weight", &[64, 4], &[0.0; 256])
        .tensor_f32("blk.0.attn_norm.weight", &[64], &[1.0; 64])
        .tensor_f32("output_norm.weight", &[64], &[1.0; 64]);
    writer
}

/// The file from the field: 1.3 KB with `llama.block_count = 4e9`, which made a
/// daemon size its per-layer tables at ~16 GiB.
pub fn four_billion_layers() -> Vec<u8> {
    llama_claiming(vec![("llama.block_count", Value::U32(4_000_000_000))]).to_bytes()
}

/// Every dimension at its type's largest: products of them overflow 64 bits.
pub fn huge_dimensions() -> Vec<u8> {
    llama_claiming(vec![
        ("llama.attention.head_count", Value::U32(u32::MAX)),
        ("llama.attention.head_count_kv", Value::U32(u32::MAX)),
        ("llama.attention.key_length", Value::U64(u64::MAX)),
        ("llama.attention.value_length", Value::U64(u64::MAX)),
        ("llama.embedding_length", Value::U64(u64::MAX)),
        ("llama.feed_forward_length", Value::U64(u64::MAX)),
        ("llama.context_length", Value::U32(u32::MAX)),
        ("llama.vocab_size", Value::U64(u64::MAX)),
    ])
    .to_bytes()
}

/// Per-layer head counts given as an array far longer than the layers, with the
/// largest value a `u32` holds.
pub fn long_per_layer_array() -> Vec<u8> {
    llama_claiming(vec![(
        "llama.attention.head_count",
        Value::array(vec![Value::U32(u32::MAX); 1000]),
    )])
    .to_bytes()
}

/// A mixture of experts whose expert and sliding-window counts are absurd.
pub fn absurd_experts() -> Vec<u8> {
    llama_claiming(vec![
        ("llama.expert_count", Value::U32(u32::MAX)),
        ("llama.expert_used_count", Value::U32(u32::MAX)),
        ("llama.expert_feed_forward_length", Value::U64(u64::MAX)),
        ("llama.attention.sliding_window", Value::U64(u64::MAX)),
    ])
    .to_bytes()
}

/// A header alone (no tensor data, so its length says nothing about the tensors)
/// whose tensors claim 2^62 bytes each, all at offset 0: their sum overflows 64
/// bits.
pub fn exabyte_tensors_header() -> Vec<u8> {
    let tensors = 8u64;
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&tensors.to_le_bytes());
    out.extend_from_slice(&4u64.to_le_bytes());
    let key = |out: &mut Vec<u8>, name: &str| {
        out.extend_from_slice(&(name.len() as u64).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    };
    key(&mut out, "general.architecture");
    out.extend_from_slice(&(ValueType::String as u32).to_le_bytes());
    key(&mut out, "llama");
    for (name, value) in [
        ("llama.block_count", 2u32),
        ("llama.embedding_length", 64),
        ("llama.attention.head_count", 4),
    ] {
        key(&mut out, name);
        out.extend_from_slice(&(ValueType::U32 as u32).to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    for index in 0..tensors {
        key(
            &mut out,
            &format!("blk.{}.ffn_up_{index}.weight", index % 2),
        );
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&(1u64 << 30).to_le_bytes());
        out.extend_from_slice(&(1u64 << 30).to_le_bytes());
        out.extend_from_slice(&F32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
    }
    out
}

/// The length of a metadata array declared far beyond what the file holds.
pub fn declared_long_byte_array() -> Vec<u8> {
    let mut bytes =
        llama_claiming(vec![("test.bytes", Value::array(vec![Value::U8(7); 16]))]).to_bytes();
    // The array's count follows its item type (U8 = 0) right after the key.
    let key = b"test.bytes";
    if let Some(at) = bytes.windows(key.len()).position(|window| window == key) {
        let count_at = at + key.len() + 4 + 4;
        bytes[count_at..count_at + 8].copy_from_slice(&100_000_000u64.to_le_bytes());
    }
    bytes
}

/// A file that really holds `items` one-byte array items (e.g. 10^8: 100 MB), for
/// the memory they take once read.
pub fn long_byte_array(items: usize) -> Vec<u8> {
    llama_claiming(vec![(
        "test.bytes",
        PackedArray::new(ValueType::U8, vec![1; items]).map_or(Value::U8(1), Value::Packed),
    )])
    .to_bytes()
}

/// Every crafted header small enough for the fuzz corpus, by file name.
pub fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("hostile-block-count-4e9.gguf", four_billion_layers()),
        ("hostile-huge-dimensions.gguf", huge_dimensions()),
        ("hostile-long-per-layer-array.gguf", long_per_layer_array()),
        ("hostile-absurd-experts.gguf", absurd_experts()),
        (
            "hostile-exabyte-tensors-header.gguf",
            exabyte_tensors_header(),
        ),
        (
            "hostile-declared-long-byte-array.gguf",
            declared_long_byte_array(),
        ),
    ]
}
