//! The GGUF reader against files from the test kit's writer: round trips, every
//! prefix of a valid file, and hostile files.

#![allow(clippy::expect_used)]

use proptest::prelude::*;
use switchyard_engine::gguf::{self, parse, read_local, RangeSource as _, Stop, Value};
use switchyard_engine::ErrorCode;
use switchyard_testkit::gguf::{GgufWriter, LlamaSpec, TensorType};

fn invalid(bytes: &[u8]) -> String {
    match parse(bytes, Some(bytes.len() as u64)) {
        Err(Stop::Invalid(problem)) => problem,
        other => panic!("expected an invalid file, got {other:?}"),
    }
}

fn header(version: u32, tensors: u64, kvs: u64) -> Vec<u8> {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&version.to_le_bytes());
    bytes.extend_from_slice(&tensors.to_le_bytes());
    bytes.extend_from_slice(&kvs.to_le_bytes());
    bytes
}

fn push_string(bytes: &mut Vec<u8>, text: &str) {
    bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
}

#[test]
fn the_tiny_llama_reads_back_with_its_facts() {
    let spec = LlamaSpec::default();
    let bytes = spec.to_bytes();
    let file = parse(&bytes, Some(bytes.len() as u64)).expect("valid");
    let facts = file.facts();
    assert_eq!(facts.architecture.as_deref(), Some("llama"));
    assert_eq!(facts.name.as_deref(), Some("switchyard-tiny-llama"));
    assert_eq!(facts.block_count, Some(2));
    assert_eq!(facts.embedding_length, Some(64));
    assert_eq!((facts.head_count, facts.head_count_kv), (Some(4), Some(2)));
    assert_eq!(facts.vocab_size, Some(512));
    assert_eq!(facts.context_length, Some(2048));
    assert_eq!(facts.tokenizer_model.as_deref(), Some("llama"));
    assert!(facts.chat_template.unwrap().contains("<|im_start|>"));
    assert_eq!(facts.file_type.as_deref(), Some("F32"));
    // 2 × (vocab × embd) + per layer (q, o: embd²; k, v: embd × 32; 3 ffn: embd × 128; 2 norms) + norm
    let per_layer = 2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128 + 2 * 64;
    assert_eq!(facts.parameter_count, 2 * 512 * 64 + 2 * per_layer + 64);
    assert_eq!(facts.tensor_bytes, facts.parameter_count * 4);
    assert_eq!(facts.tensor_count, 2 + 2 * 9 + 1);
    assert_eq!(file.data_offset % 32, 0);
}

#[test]
fn quantized_models_report_their_mix() {
    for (ty, name, bytes_per_value) in [
        (TensorType::F16, "F16", 2.0),
        (TensorType::Q8_0, "Q8_0", 34.0 / 32.0),
    ] {
        let spec = LlamaSpec {
            tensor_type: ty,
            ..LlamaSpec::default()
        };
        let bytes = spec.to_bytes();
        let facts = parse(&bytes, Some(bytes.len() as u64))
            .expect("valid")
            .facts();
        assert_eq!(facts.quantization[0].type_name, name);
        assert_eq!(facts.quantization[1].type_name, "F32", "norms stay F32");
        assert_eq!(facts.quantization[1].tensors, 2 * 2 + 1);
        let expected = (facts.parameter_count - 5 * 64) as f64 * bytes_per_value;
        assert!((facts.quantization[0].bytes as f64 - expected).abs() < 1.0);
    }
}

#[tokio::test]
async fn a_local_file_is_read_only_as_far_as_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.gguf");
    // Wide layers: megabytes of weights behind a header of a few kilobytes.
    let spec = LlamaSpec {
        embedding: 512,
        feed_forward: 1024,
        vocab: 2048,
        ..LlamaSpec::default()
    };
    spec.write_to(&path).unwrap();
    let mut source = gguf::LocalSource::open(&path).await.unwrap();
    let file = gguf::read_header(&mut source).await.unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 10_000_000);
    assert!(
        source.stats().bytes <= 64 * 1024,
        "read {} bytes",
        source.stats().bytes
    );
    assert_eq!(file.facts().vocab_size, Some(2048));
}

#[tokio::test]
async fn missing_and_non_gguf_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = read_local(&dir.path().join("nope.gguf")).await.unwrap_err();
    assert_eq!(missing.code(), ErrorCode::FileUnreadable);

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello, this is not a model").unwrap();
    let error = read_local(&text).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidGguf);
    assert!(error.to_string().contains("not a GGUF file"), "{error}");

    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, "").unwrap();
    let error = read_local(&empty).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidGguf);

    // Cut inside the tensor data, as an interrupted copy would leave it.
    let bytes = LlamaSpec::default().to_bytes();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let error = read_local(&cut).await.unwrap_err();
    assert!(error.to_string().contains("not within the file"), "{error}");
}

#[test]
fn hostile_headers_are_refused_with_the_reason() {
    assert!(invalid(&header(1, 0, 0)).contains("version 1 is obsolete"));
    assert!(invalid(&header(3u32.swap_bytes(), 0, 0)).contains("big-endian"));
    assert!(invalid(&header(99, 0, 0)).contains("version 99"));
    assert!(invalid(&header(3, u64::MAX, 0)).contains("tensor count"));
    assert!(invalid(&header(3, 0, 1 << 40)).contains("metadata count"));

    // A key whose string length is larger than the file.
    let mut giant_key = header(3, 0, 1);
    giant_key.extend_from_slice(&(1u64 << 62).to_le_bytes());
    giant_key.extend_from_slice(&[0; 64]);
    assert!(invalid(&giant_key).contains("limit"));

    // A string value that claims more bytes than exist.
    let mut lying_string = header(3, 0, 1);
    push_string(&mut lying_string, "general.name");
    lying_string.extend_from_slice(&8u32.to_le_bytes());
    lying_string.extend_from_slice(&1_000_000u64.to_le_bytes());
    assert!(invalid(&lying_string).contains("file ends"));

    // An array claiming 2^60 u64 elements.
    let mut lying_array = header(3, 0, 1);
    push_string(&mut lying_array, "x");
    lying_array.extend_from_slice(&9u32.to_le_bytes());
    lying_array.extend_from_slice(&10u32.to_le_bytes());
    lying_array.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(invalid(&lying_array).contains("length of `x`"));

    // Arrays nested 100 deep.
    let mut deep = header(3, 0, 1);
    push_string(&mut deep, "deep");
    deep.extend_from_slice(&9u32.to_le_bytes());
    for _ in 0..100 {
        deep.extend_from_slice(&9u32.to_le_bytes());
        deep.extend_from_slice(&1u64.to_le_bytes());
    }
    deep.extend_from_slice(&[0; 64]);
    assert!(invalid(&deep).contains("deeper than"));

    let mut unknown_type = header(3, 0, 1);
    push_string(&mut unknown_type, "k");
    unknown_type.extend_from_slice(&77u32.to_le_bytes());
    unknown_type.extend_from_slice(&[0; 16]);
    assert!(invalid(&unknown_type).contains("unknown value type 77"));

    let mut bad_bool = header(3, 0, 1);
    push_string(&mut bad_bool, "flag");
    bad_bool.extend_from_slice(&7u32.to_le_bytes());
    bad_bool.push(2);
    assert!(invalid(&bad_bool).contains("not a boolean"));
}

#[test]
fn hostile_tensor_infos_are_refused() {
    let with = |build: &dyn Fn(&mut GgufWriter)| {
        let mut writer = GgufWriter::new();
        build(&mut writer);
        invalid(&writer.to_bytes())
    };
    assert!(with(&|w| {
        w.tensor("t", &[1, 1, 1, 1, 1], 0, vec![0; 4]);
    })
    .contains("5 dimensions"));
    assert!(with(&|w| {
        w.tensor("t", &[4], 200, vec![0; 4]);
    })
    .contains("unknown type 200"));
    assert!(with(&|w| {
        w.tensor("t", &[u64::MAX, 4], 0, vec![0; 4]);
    })
    .contains("more elements"));
    assert!(with(&|w| {
        w.tensor("t", &[33], 8, vec![0; 36]);
    })
    .contains("block of 32"));
    assert!(with(&|w| {
        w.tensor_f32("t", &[1], &[0.0])
            .tensor_f32("t", &[1], &[0.0]);
    })
    .contains("appears twice"));
    assert!(with(&|w| {
        w.u32("a", 1).u32("a", 2);
    })
    .contains("`a` appears twice"));
    assert!(with(&|w| {
        w.u32("general.alignment", 3);
    })
    .contains("power of two"));
    // Claims 1024 f32 values but the file holds 4 bytes of data.
    assert!(with(&|w| {
        w.tensor("t", &[1024], 0, vec![0; 4]);
    })
    .contains("not within the file"));
}

fn arbitrary_value(depth: u32) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        any::<u8>().prop_map(Value::U8),
        any::<i8>().prop_map(Value::I8),
        any::<u16>().prop_map(Value::U16),
        any::<i16>().prop_map(Value::I16),
        any::<u32>().prop_map(Value::U32),
        any::<i32>().prop_map(Value::I32),
        any::<i64>().prop_map(Value::I64),
        any::<u64>().prop_map(Value::U64),
        (-1e6f32..1e6).prop_map(Value::F32),
        (-1e9f64..1e9).prop_map(Value::F64),
        any::<bool>().prop_map(Value::Bool),
        ".{0,40}".prop_map(Value::String),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf.clone(),
        // Arrays are homogeneous in GGUF: one leaf repeated.
        1 => (leaf, 1usize..20).prop_map(|(item, n)| Value::Array(vec![item; n])),
        1 => (arbitrary_value(depth - 1), 1usize..4).prop_map(|(item, n)| Value::Array(vec![item; n])),
    ]
    .boxed()
}

fn arbitrary_file() -> impl Strategy<Value = Vec<u8>> {
    let metadata = proptest::collection::vec(("[a-z.]{1,24}", arbitrary_value(2)), 0..12);
    let tensors = proptest::collection::vec((1u64..64, 1u64..4), 0..6);
    (metadata, tensors).prop_map(|(metadata, tensors)| {
        let mut writer = GgufWriter::new();
        let mut seen = std::collections::HashSet::new();
        for (key, value) in metadata {
            if seen.insert(key.clone()) && key != "general.alignment" {
                writer.kv(&key, value);
            }
        }
        for (index, (cols, rows)) in tensors.into_iter().enumerate() {
            let values = vec![0.5f32; usize::try_from(cols * rows).expect("small")];
            writer.tensor_f32(&format!("tensor.{index}"), &[cols, rows], &values);
        }
        writer.to_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn written_files_read_back_exactly(bytes in arbitrary_file()) {
        let file = parse(&bytes, Some(bytes.len() as u64)).expect("valid");
        let again = parse(&bytes, None).expect("valid without a known length");
        prop_assert_eq!(&file.metadata, &again.metadata);
        prop_assert!(file.data_offset <= bytes.len() as u64);
    }

    #[test]
    fn every_prefix_asks_for_more_or_is_complete(bytes in arbitrary_file(), cut in 0.0f64..1.0) {
        let full = parse(&bytes, Some(bytes.len() as u64)).expect("valid");
        let len = (full.header_len as f64 * cut) as usize;
        match parse(&bytes[..len], None) {
            Err(Stop::Incomplete { needed_len }) => prop_assert!(needed_len > len as u64),
            Ok(file) => prop_assert_eq!(file.header_len as usize, len),
            Err(Stop::Invalid(problem)) => prop_assert!(false, "prefix {} judged invalid: {}", len, problem),
        }
        // Told that the file ends there, the same prefix is a truncated file.
        if (len as u64) < full.header_len {
            let truncated = parse(&bytes[..len], Some(len as u64));
            prop_assert!(matches!(truncated, Err(Stop::Invalid(_))), "{:?}", truncated);
        }
    }

    #[test]
    fn corrupted_bytes_never_panic(bytes in arbitrary_file(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = bytes;
        for (index, byte) in flips {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        let _outcome = parse(&bytes, Some(bytes.len() as u64));
        let _outcome = parse(&bytes, None);
    }
}
