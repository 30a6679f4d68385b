//! The generated models are real: the real llama-server loads them and answers chat.

#![allow(clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_testkit::gguf::{LlamaSpec, TensorType};
use switchyard_testkit::tools::{free_port, llama_server};

const DEADLINE: Duration = Duration::from_secs(60);

/// Ends the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn chat_with(spec: LlamaSpec) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = dir.path().join("model.gguf");
    spec.write_to(&model).expect("model written");
    let port = free_port();
    let mut server = Server(
        Command::new(llama_server())
            .args([
                "-m",
                model.to_str().expect("utf-8"),
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args(["-c", "512", "-np", "1", "-t", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("llama-server starts"),
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Some(status) = server.0.try_wait().expect("wait") {
            panic!(
                "llama-server exited with {status} while loading {}",
                spec.name
            );
        }
        let health = client.get(format!("{base}/health")).send().await;
        if health.is_ok_and(|response| response.status() == 200) {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "not healthy within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .post(format!("{base}/v1/chat/completions"))
        .json(&serde_json::json!({
            "messages": [{"role": "user", "content": "Hello, switch yard!"}],
            "max_tokens": 8,
        }))
        .timeout(DEADLINE)
        .send()
        .await
        .expect("chat request")
        .error_for_status()
        .expect("chat succeeds")
        .json()
        .await
        .expect("json answer")
}

#[tokio::test]
async fn the_tiny_f32_model_answers_chat() {
    let answer = chat_with(LlamaSpec::default()).await;
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .expect("a message");
    assert!(!content.is_empty());
    assert_eq!(
        answer["usage"]["completion_tokens"], 8,
        "it generated the tokens asked for"
    );
    assert!(
        answer["usage"]["prompt_tokens"]
            .as_u64()
            .expect("prompt tokens")
            > 5,
        "the chat template was applied"
    );
}

#[tokio::test]
async fn f16_and_q8_0_models_load_and_answer() {
    for tensor_type in [TensorType::F16, TensorType::Q8_0] {
        let spec = LlamaSpec {
            tensor_type,
            layers: 3,
            embedding: 128,
            heads: 4,
            kv_heads: 1,
            ..LlamaSpec::default()
        };
        let answer = chat_with(spec).await;
        assert_eq!(answer["usage"]["completion_tokens"], 8, "{tensor_type:?}");
    }
}
