//! The Switchyard endpoint through the OpenAI Python client (`pip install openai`,
//! in the test venv `SWITCHYARD_PYTHON`), with the real llama-server: the client
//! lists the models, asks a chat completion, streams one to its normal end, and
//! asks embeddings of a second instance started with `--embeddings` (llama-server
//! then serves embeddings only, so chat and embeddings are two instances). The
//! script is tests/openai/openai_client.py; it prints what it saw as JSON.

#![allow(clippy::expect_used)]

mod llama_common;

use std::path::PathBuf;

use llama_common::{rig, spec};
use serde_json::Value;
use switchyard_engine::orchestrator::router::ModelState;
use switchyard_testkit::gguf::LlamaSpec;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/openai/openai_client.py")
}

/// Runs the script against `base_url` (off the test's runtime: it blocks).
async fn openai_client(base_url: String, chat: &str, embeddings: &str) -> Value {
    let (chat, embeddings) = (chat.to_owned(), embeddings.to_owned());
    let output = tokio::task::spawn_blocking(move || {
        // A venv with `openai` (scripts/install.sh test), or any python3 that has it.
        let python = std::env::var_os("SWITCHYARD_PYTHON").unwrap_or_else(|| "python3".into());
        std::process::Command::new(python)
            .arg(script())
            .args([&base_url, &chat, &embeddings])
            .output()
            .expect("python runs")
    })
    .await
    .expect("the script's thread");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(3),
        "SWITCHYARD_PYTHON lacks the OpenAI client: {stderr}"
    );
    assert!(
        output.status.success(),
        "the OpenAI client failed against the endpoint: {stderr}"
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "the script printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openai_python_client_lists_chats_streams_and_embeds_through_the_endpoint() {
    let rig = rig().await;
    let model = LlamaSpec::default();
    let path = rig.model("tiny.gguf", &model);
    rig.engine
        .llama()
        .create(spec("chat", &path))
        .expect("chat instance");
    let mut embedder = spec("embed", &path);
    embedder.extra_args = ["--embeddings", "--pooling", "mean"]
        .map(String::from)
        .to_vec();
    rig.engine
        .llama()
        .create(embedder)
        .expect("embeddings instance");
    let address = rig
        .engine
        .router()
        .serve("127.0.0.1", 0)
        .await
        .expect("the endpoint listens");

    let seen = openai_client(format!("http://{address}/v1"), "chat", "embed").await;

    assert_eq!(
        seen["models"],
        serde_json::json!(["chat", "embed"]),
        "{seen}"
    );
    let chat = &seen["chat"];
    assert!(chat["content"].is_string(), "a chat answer: {seen}");
    // The answer names the model as the client did, not the file's local path.
    assert_eq!(chat["model"], "chat", "{seen}");
    assert!(
        matches!(chat["finish_reason"].as_str(), Some("length" | "stop")),
        "{seen}"
    );
    assert!(
        chat["completion_tokens"].as_u64().unwrap_or(0) >= 1,
        "{seen}"
    );
    let stream = &seen["stream"];
    assert!(
        stream["chunks"].as_u64().unwrap_or(0) >= 2,
        "a stream of chunks: {seen}"
    );
    let reasons = stream["finish_reasons"].as_array().expect("finish reasons");
    assert!(
        matches!(
            reasons.as_slice(),
            [reason] if matches!(reason.as_str(), Some("length" | "stop"))
        ),
        "the stream ends normally, once: {seen}"
    );
    let embeddings = &seen["embeddings"];
    assert_eq!(embeddings["count"], 2, "{seen}");
    assert_eq!(embeddings["indexes"], serde_json::json!([0, 1]), "{seen}");
    assert_eq!(
        embeddings["dimensions"],
        serde_json::json!([model.embedding, model.embedding]),
        "one vector of the model's width per text: {seen}"
    );
    assert_eq!(embeddings["finite"], true, "{seen}");
    assert_eq!(embeddings["differ"], true, "two texts, two vectors: {seen}");

    // Both were loaded by their first request.
    let states: Vec<(String, ModelState)> = rig
        .engine
        .routed_models()
        .into_iter()
        .map(|model| (model.id, model.state))
        .collect();
    assert_eq!(
        states,
        [
            ("chat".to_owned(), ModelState::Loaded),
            ("embed".to_owned(), ModelState::Loaded)
        ]
    );
    rig.engine.shutdown().await;
}
