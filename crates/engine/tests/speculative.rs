//! Speculative decoding with the real llama-server: a draft identical to the model
//! is accepted nearly always (the proof that the draft is used), its memory is
//! counted, and a draft of another vocabulary is refused before anything starts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use switchyard_engine::llama::{DraftSpec, InstanceState};
use switchyard_engine::ErrorCode;
use switchyard_testkit::gguf::LlamaSpec;

mod llama_common;
use llama_common::{rig, spec, DEADLINE};

async fn greedy_chat(endpoint: &str) -> Value {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{endpoint}/v1/chat/completions"))
        .json(&json!({
            "messages": [{"role": "user", "content": "Count the trains in the yard."}],
            "max_tokens": 48,
            "temperature": 0,
            "seed": 1,
            "ignore_eos": true,
        }))
        .timeout(DEADLINE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_draft_identical_to_the_model_is_accepted_nearly_always_and_counted() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama();
    let mut plain = spec("plain", &model);
    plain.threads = Some(1);
    llama.create(plain).unwrap();
    let mut drafted = spec("drafted", &model);
    drafted.threads = Some(1);
    drafted.draft = Some(DraftSpec {
        model_path: model.clone(),
        max_tokens: Some(8),
        ..DraftSpec::default()
    });
    llama.create(drafted).unwrap();

    let plain = llama.start("plain").await.unwrap();
    let drafted = llama.start("drafted").await.unwrap();
    assert_eq!(drafted.state, InstanceState::Healthy);
    let args = drafted.running.as_ref().unwrap().args.join(" ");
    assert!(args.contains(&format!("-md {}", model.display())), "{args}");
    assert!(args.contains("--spec-draft-n-max 8"), "{args}");

    // The estimate counts both models: the same weights twice.
    let weights = |status: &switchyard_engine::llama::InstanceStatus| {
        status
            .running
            .as_ref()
            .unwrap()
            .estimate
            .as_ref()
            .unwrap()
            .ram
            .weights
    };
    assert_eq!(weights(&drafted), 2 * weights(&plain), "{drafted:?}");

    let body = greedy_chat(drafted.api_endpoint.as_deref().unwrap()).await;
    let timings = &body["timings"];
    let drafted_tokens = timings["draft_n"].as_u64().unwrap_or(0);
    let accepted = timings["draft_n_accepted"].as_u64().unwrap_or(0);
    assert!(drafted_tokens > 0, "the draft drafted: {timings}");
    println!("an identical draft: {accepted}/{drafted_tokens} drafted tokens accepted");
    assert!(
        accepted * 10 >= drafted_tokens * 9,
        "an identical draft is accepted ≥ 90 %: {accepted}/{drafted_tokens}"
    );
    // The same answer as without a draft: speculation never changes what is said.
    let alone = greedy_chat(plain.api_endpoint.as_deref().unwrap()).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        alone["choices"][0]["message"]["content"]
    );
}

#[tokio::test]
async fn a_draft_of_another_vocabulary_is_refused_before_anything_starts() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let other = rig.model(
        "other.gguf",
        &LlamaSpec {
            vocab: 2048,
            ..LlamaSpec::default()
        },
    );
    let llama = rig.engine.llama();
    let mut drafted = spec("drafted", &model);
    drafted.draft = Some(DraftSpec {
        model_path: other,
        ..DraftSpec::default()
    });
    llama.create(drafted).unwrap();
    let error = llama.start("drafted").await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidInput, "{error}");
    let message = error.to_string();
    assert!(message.contains("512 and 2048"), "{message}");
    let status = llama.status("drafted").unwrap();
    assert_eq!(status.pid, None, "nothing was spawned");
}
