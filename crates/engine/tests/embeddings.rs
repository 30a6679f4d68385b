//! Embedding and reranking servers with the real llama-server: a generated llama
//! served with `--embeddings` (mean pooling, as its file names none) answers
//! `/v1/embeddings` through its endpoint and through the Switchyard endpoint with
//! vectors of the model's width, the same for the same input; a file that names a
//! pooling type is an embedding model without being told.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use switchyard_engine::llama::{InstanceState, ModelRole};
use switchyard_testkit::gguf::LlamaSpec;

mod llama_common;
use llama_common::{rig, spec, DEADLINE};

async fn embed(base: &str, model: &str, input: Value) -> Value {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{base}/v1/embeddings"))
        .json(&json!({ "model": model, "input": input }))
        .timeout(DEADLINE)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn vector(body: &Value, index: usize) -> Vec<f64> {
    body["data"][index]["embedding"]
        .as_array()
        .expect("an embedding")
        .iter()
        .map(|value| value.as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn an_embedding_server_answers_with_vectors_of_the_models_width() {
    let rig = rig().await;
    let model = rig.model("embedder.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama();
    let mut embedder = spec("embedder", &model);
    embedder.role = ModelRole::Embedding;
    llama.create(embedder).unwrap();
    let status = llama.start("embedder").await.unwrap();
    assert_eq!(status.state, InstanceState::Healthy);
    let running = status.running.as_ref().unwrap();
    assert_eq!(running.role, ModelRole::Embedding);
    let args = running.args.join(" ");
    assert!(args.contains("--embeddings --pooling mean"), "{args}");
    // Every input that fits the context is read in one micro-batch.
    assert_eq!(running.config.ubatch, running.config.context, "{args}");

    let endpoint = status.api_endpoint.clone().unwrap();
    let body = embed(
        &endpoint,
        "embedder",
        json!(["a switch yard", "a freight train"]),
    )
    .await;
    let (first, second) = (vector(&body, 0), vector(&body, 1));
    assert_eq!(first.len(), 64, "the generated model's width");
    assert_ne!(first, second, "two inputs, two vectors");
    let again = embed(&endpoint, "embedder", json!("a switch yard")).await;
    assert_eq!(vector(&again, 0), first, "the same input, the same vector");

    // Through the Switchyard endpoint, by the instance's name.
    let address = rig.engine.serve_endpoint_at(0).await.unwrap();
    let routed = embed(
        &format!("http://{address}"),
        "embedder",
        json!("a switch yard"),
    )
    .await;
    assert_eq!(vector(&routed, 0), first);
}

#[tokio::test]
async fn a_model_that_names_a_pooling_type_is_served_for_embeddings_by_itself() {
    let rig = rig().await;
    let model = rig.dir.path().join("pooled.gguf");
    LlamaSpec::default().write_pooled(&model, 1).unwrap();
    let llama = rig.engine.llama();
    llama.create(spec("pooled", &model)).unwrap();
    let status = llama.start("pooled").await.unwrap();
    let running = status.running.as_ref().unwrap();
    assert_eq!(running.role, ModelRole::Embedding);
    let args = running.args.join(" ");
    assert!(
        args.contains("--embeddings") && !args.contains("--pooling"),
        "its own pooling: {args}"
    );
    let body = embed(
        status.api_endpoint.as_deref().unwrap(),
        "pooled",
        json!("a yard"),
    )
    .await;
    assert_eq!(vector(&body, 0).len(), 64);
}
