//! Hostile GGUF files: headers that claim more than they hold (the 1.3 KB file
//! with `llama.block_count = 4e9` that wedged a daemon at 16 GB among them). Each
//! gives a typed error or a sane estimate, in bounded memory: these tests run under
//! an address-space limit, so a table sized by a claimed count makes the
//! allocation fail and the test process abort instead of passing slowly.

#![cfg(target_os = "linux")]
#![allow(clippy::expect_used)]

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use switchyard_engine::estimate::{first_estimate, Backend, Budget, ModelShape, NoShape};
use switchyard_engine::gguf::{self, parse, Stop, Value};
use switchyard_testkit::gguf::hostile;
use switchyard_testkit::{Fault, FixtureServer};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
/// Address space for a whole test process (binary, threads, their malloc arenas)
/// and what a header of up to 100 MB honestly needs; far below the 16 GiB that a
/// table sized by four billion layers asks for.
const ADDRESS_SPACE_LIMIT: u64 = 3 * GIB / 2;

fn limit_memory() {
    let (_, hard) = getrlimit(Resource::RLIMIT_AS).expect("the current limit");
    setrlimit(Resource::RLIMIT_AS, ADDRESS_SPACE_LIMIT.min(hard), hard)
        .expect("an address-space limit");
}

fn machine() -> Budget {
    Budget {
        ram_bytes: 32 * GIB,
        vram_bytes: 16 * GIB,
    }
}

fn implausible(bytes: &[u8]) -> String {
    let file = parse(bytes, Some(bytes.len() as u64)).expect("a well-formed header");
    match ModelShape::from_gguf(&file) {
        Err(NoShape::Implausible(problem)) => problem,
        other => panic!("expected the shape refused, got {other:?}"),
    }
}

#[tokio::test]
async fn four_billion_layers_are_refused_without_sizing_anything_by_them() {
    limit_memory();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wedge.gguf");
    let bytes = hostile::four_billion_layers();
    assert!(bytes.len() < 2048, "the field's file was 1.3 KB");
    std::fs::write(&path, &bytes).expect("written");

    let file = gguf::read_local(&path).await.expect("a well-formed header");
    assert_eq!(file.facts().block_count, Some(4_000_000_000));
    for backend in [Backend::Cpu, Backend::Cuda] {
        assert_eq!(first_estimate(&file, 4096, backend, machine()), None);
    }
    let problem = implausible(&bytes);
    assert!(problem.contains("4000000000 layers"), "{problem}");
}

#[test]
fn huge_dimensions_are_refused_rather_than_multiplied() {
    limit_memory();
    for (bytes, key) in [
        (hostile::huge_dimensions(), "llama."),
        (
            hostile::long_per_layer_array(),
            "llama.attention.head_count",
        ),
        (hostile::absurd_experts(), "llama.expert"),
    ] {
        let file = parse(&bytes, Some(bytes.len() as u64)).expect("well-formed");
        assert_eq!(first_estimate(&file, 4096, Backend::Cuda, machine()), None);
        let problem = implausible(&bytes);
        assert!(problem.contains(key), "{problem}");
    }
}

#[test]
fn tensor_sizes_past_64_bits_saturate_in_a_header_of_unknown_length() {
    limit_memory();
    let bytes = hostile::exabyte_tensors_header();
    // Told the file's length, the tensors are not within it.
    assert!(matches!(
        parse(&bytes, Some(bytes.len() as u64)),
        Err(Stop::Invalid(_))
    ));
    // A remote header of unknown length cannot tell: the sums saturate.
    let file = parse(&bytes, None).expect("well-formed");
    assert_eq!(file.facts().tensor_bytes, u64::MAX);
    let estimate = first_estimate(&file, 4096, Backend::Cuda, machine()).expect("a shape");
    assert!(!estimate.fits, "{estimate:?}");
    assert_eq!(estimate.weights_bytes, u64::MAX);
}

#[test]
fn every_crafted_header_gives_an_error_or_a_sane_estimate() {
    limit_memory();
    for (name, bytes) in hostile::corpus() {
        for file_len in [Some(bytes.len() as u64), None] {
            let Ok(file) = parse(&bytes, file_len) else {
                continue;
            };
            let _facts = file.facts();
            for backend in [Backend::Cpu, Backend::Cuda] {
                if let Some(estimate) = first_estimate(&file, 8192, backend, machine()) {
                    assert!(estimate.layers <= 4096, "{name}: {estimate:?}");
                    assert!(estimate.context <= 8192, "{name}: {estimate:?}");
                }
            }
        }
    }
}

/// The fuzz corpus starts from these files; kept in step with the generator
/// (`SWITCHYARD_WRITE_CORPUS=1` rewrites them).
#[test]
fn the_fuzz_corpus_holds_the_crafted_headers() {
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/gguf_estimate");
    let rewrite = std::env::var_os("SWITCHYARD_WRITE_CORPUS").is_some();
    for (name, bytes) in hostile::corpus() {
        let path = corpus.join(name);
        if rewrite {
            std::fs::create_dir_all(&corpus).expect("corpus folder");
            std::fs::write(&path, &bytes).expect("written");
        }
        let stored = std::fs::read(&path).unwrap_or_default();
        assert!(
            stored == bytes,
            "{} differs from hostile::corpus(); rerun with SWITCHYARD_WRITE_CORPUS=1",
            path.display()
        );
    }
}

#[tokio::test]
async fn a_hundred_million_one_byte_items_take_their_bytes_not_32_times_them() {
    limit_memory();
    const ITEMS: usize = 100_000_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("long-array.gguf");
    std::fs::write(&path, hostile::long_byte_array(ITEMS)).expect("written");

    let file = gguf::read_local(&path).await.expect("a valid header");
    let array = file.get("test.bytes").expect("the array");
    assert_eq!(array.array_len(), Some(ITEMS));
    assert!(
        matches!(array, Value::Packed(packed) if packed.bytes().len() == ITEMS),
        "kept as its bytes"
    );
    assert_eq!(array.array_item(ITEMS - 1), Some(Value::U8(1)));
}

#[test]
fn a_declared_array_longer_than_the_file_is_refused() {
    let bytes = hostile::declared_long_byte_array();
    let Err(Stop::Invalid(problem)) = parse(&bytes, Some(bytes.len() as u64)) else {
        panic!("expected the array refused");
    };
    assert!(problem.contains("test.bytes"), "{problem}");
}

#[tokio::test]
async fn a_206_answer_longer_than_asked_for_is_read_only_as_far_as_asked() {
    limit_memory();
    let server = FixtureServer::start().await.expect("fixture server");
    let mut bytes = hostile::long_byte_array(16);
    let header_len = bytes.len() as u64;
    bytes.resize(64 * MIB as usize, 0);
    server.add_file("big.gguf", bytes);
    server.set_fault("big.gguf", Some(Fault::OverlongRange));

    let (file, stats) = gguf::read_remote(reqwest::Client::new(), &server.url("big.gguf"))
        .await
        .expect("the header");
    assert_eq!(file.facts().block_count, Some(1));
    assert!(header_len < 64 * 1024);
    assert!(
        stats.bytes <= 64 * 1024,
        "read {} bytes of a 64 KiB range",
        stats.bytes
    );
}
