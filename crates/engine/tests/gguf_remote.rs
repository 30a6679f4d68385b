//! Reading a model's header over HTTP with range requests, against the test kit's
//! fixture server.

#![allow(clippy::expect_used)]

use switchyard_engine::gguf::{parse, read_remote};
use switchyard_engine::ErrorCode;
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::{Fault, FixtureServer};

/// A model whose header is about a megabyte (a 65k-token vocabulary).
fn big_vocab_model() -> Vec<u8> {
    LlamaSpec {
        vocab: 65_536,
        embedding: 32,
        heads: 2,
        kv_heads: 1,
        feed_forward: 64,
        ..LlamaSpec::default()
    }
    .to_bytes()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn fetches_little_more_than_the_header() {
    let server = FixtureServer::start().await.expect("server");
    let bytes = big_vocab_model();
    let local = parse(&bytes, Some(bytes.len() as u64)).expect("valid");
    server.add_file("big.gguf", bytes.clone());

    let (remote, stats) = read_remote(client(), &server.url("big.gguf"))
        .await
        .expect("read");
    assert_eq!(remote, local, "the same header as reading the whole file");
    assert!(
        local.header_len > 500_000,
        "header is {} bytes",
        local.header_len
    );
    assert!(
        stats.bytes as f64 <= 1.5 * local.header_len as f64,
        "fetched {} bytes for a {}-byte header",
        stats.bytes,
        local.header_len
    );
    let traffic = server.traffic();
    assert_eq!(traffic.requests, stats.requests);
    assert_eq!(traffic.body_bytes, stats.bytes);
    assert!(
        traffic.ranges.iter().all(Option::is_some),
        "every request is a range request"
    );
    assert!(
        (bytes.len() as u64) > 8 * stats.bytes,
        "the weights were not downloaded"
    );
}

#[tokio::test]
async fn follows_cdn_redirects() {
    let server = FixtureServer::start().await.expect("server");
    server.add_file("tiny.gguf", LlamaSpec::default().to_bytes());
    let (file, stats) = read_remote(client(), &server.redirect_url("tiny.gguf"))
        .await
        .expect("read");
    assert_eq!(file.facts().architecture.as_deref(), Some("llama"));
    assert_eq!(
        stats.requests, 1,
        "one range request (the redirect is followed inside it)"
    );
}

#[tokio::test]
async fn a_server_without_ranges_is_read_as_a_stream() {
    let server = FixtureServer::start().await.expect("server");
    let bytes = big_vocab_model();
    server.add_file("big.gguf", bytes.clone());
    server.set_fault("big.gguf", Some(Fault::IgnoreRange));
    let (file, stats) = read_remote(client(), &server.url("big.gguf"))
        .await
        .expect("read");
    assert_eq!(file.facts().vocab_size, Some(65_536));
    assert_eq!(stats.requests, 1);
    assert!(
        stats.bytes < bytes.len() as u64,
        "stopped reading once the header was complete"
    );
}

#[tokio::test]
async fn server_errors_and_cut_connections_are_network_errors() {
    let server = FixtureServer::start().await.expect("server");
    server.add_file("model.gguf", big_vocab_model());

    server.set_fault(
        "model.gguf",
        Some(Fault::Status {
            code: 500,
            times: 1,
        }),
    );
    let error = read_remote(client(), &server.url("model.gguf"))
        .await
        .expect_err("500");
    assert_eq!(error.code(), ErrorCode::NetworkError);
    assert!(error.to_string().contains("500"), "{error}");

    server.set_fault("model.gguf", Some(Fault::CutAt(1_000)));
    let error = read_remote(client(), &server.url("model.gguf"))
        .await
        .expect_err("cut");
    assert_eq!(error.code(), ErrorCode::NetworkError);

    let error = read_remote(client(), &server.url("missing.gguf"))
        .await
        .expect_err("404");
    assert!(error.to_string().contains("404"), "{error}");
}

#[tokio::test]
async fn a_remote_file_that_is_not_gguf_is_invalid() {
    let server = FixtureServer::start().await.expect("server");
    server.add_file(
        "page.html",
        b"<!doctype html><title>Sign in</title>".to_vec(),
    );
    let error = read_remote(client(), &server.url("page.html"))
        .await
        .expect_err("html");
    assert_eq!(error.code(), ErrorCode::InvalidGguf);
    assert!(error.to_string().contains("not a GGUF file"), "{error}");
}
