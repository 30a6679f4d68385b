//! The estimate against the real llama-server: what it allocates for a generated
//! model must be what the estimator said, buffer by buffer.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_engine::estimate::{estimate, parse_llama_log, Backend, LlamaConfig, ModelShape};
use switchyard_engine::gguf;
use switchyard_testkit::gguf::{LlamaSpec, TensorType};
use switchyard_testkit::tools::{free_port, llama_server};

const DEADLINE: Duration = Duration::from_secs(60);

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn close(estimated: u64, reported: u64, what: &str) {
    // llama-server prints MiB with two decimals.
    let tolerance = (reported / 100).max(16 * 1024);
    assert!(
        estimated.abs_diff(reported) <= tolerance,
        "{what}: estimated {estimated}, llama-server {reported}"
    );
}

#[tokio::test]
async fn every_buffer_matches_what_llama_server_allocates() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.gguf");
    LlamaSpec {
        layers: 6,
        embedding: 384,
        heads: 6,
        kv_heads: 2,
        feed_forward: 1024,
        vocab: 4000,
        tensor_type: TensorType::Q8_0,
        ..LlamaSpec::default()
    }
    .write_to(&model)
    .unwrap();
    let shape = ModelShape::from_gguf(&gguf::read_local(&model).await.unwrap()).unwrap();
    let config = LlamaConfig {
        context: 3000,
        ..LlamaConfig::default()
    };
    let estimated = estimate(&shape, &config, Backend::Cpu);

    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let mut server = Server(
        Command::new(llama_server())
            .arg("-m")
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", "3000", "-t", "2", "-lv", "4"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "llama-server exited"
        );
        let health = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await;
        if health.is_ok_and(|response| response.status() == 200) {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "not healthy in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(server);
    let reported = parse_llama_log(&std::fs::read_to_string(&log_path).unwrap());
    let ram = estimated.ram;
    close(
        ram.weights + ram.output_layer,
        reported.ram.weights,
        "weights",
    );
    close(ram.kv_cache, reported.ram.kv_cache, "KV cache");
    close(ram.compute, reported.ram.compute, "compute buffer");
    assert_eq!(estimated.config.context, 3072, "padded like llama.cpp");
}
