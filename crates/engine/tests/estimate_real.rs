//! The estimate against the real llama-server: what it allocates for a generated
//! model must be what the estimator said, buffer by buffer; and for the files people
//! download — each architecture whose memory differs, quantized by the real
//! llama-quantize — the whole process's memory after a prompt that fills the context.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_engine::estimate::{
    apply_measured, estimate, parse_llama_log, Backend, CpuKernels, LlamaConfig, MatrixBytes,
    MeasuredMemory, ModelShape,
};
use switchyard_engine::gguf;
use switchyard_testkit::gguf::{Architecture, LlamaSpec, TensorType};
use switchyard_testkit::tools::{free_port, llama_server, quantize_model};

const DEADLINE: Duration = Duration::from_secs(120);
const MIB: f64 = 1024.0 * 1024.0;
/// Tokens left for the answer when a prompt fills the context.
const ANSWER_ROOM: u32 = 64;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one run of llama-server showed: its log, and its resident memory after a
/// prompt of `prompt_tokens` tokens.
struct Run {
    log: String,
    /// Once healthy, before the prompt: what the supervisor records for calibration.
    rss_at_load_bytes: u64,
    rss_bytes: u64,
}

/// Starts llama-server with the flags Switchyard passes that change memory, sends
/// one prompt, reads the process's RSS and stops it.
async fn run_server(model: &Path, config: &LlamaConfig, prompt_tokens: u32, dir: &Path) -> Run {
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let mut server = Server(
        Command::new(llama_server())
            .arg("-m")
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", &config.context.to_string(), "-t", "2", "-lv", "4"])
            .args(["--ctx-checkpoints", &config.context_checkpoints.to_string()])
            .args(["--cache-ram", &config.prompt_cache_mib.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "llama-server exited: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        let health = client.get(format!("{base}/health")).send().await;
        if health.is_ok_and(|response| response.status() == 200) {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "not healthy in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_at_load_bytes = rss_bytes(server.0.id());
    // (Token ids: the generated tokenizer spells words letter by letter.)
    let prompt = vec![300u32; prompt_tokens as usize];
    client
        .post(format!("{base}/completion"))
        .json(&serde_json::json!({"prompt": prompt, "n_predict": 1, "cache_prompt": false}))
        .timeout(DEADLINE)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let rss_bytes = rss_bytes(server.0.id());
    drop(server);
    Run {
        log: std::fs::read_to_string(&log_path).unwrap(),
        rss_at_load_bytes,
        rss_bytes,
    }
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .expect("VmRSS");
    kib * 1024
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
    let run = run_server(&model, &config, 16, dir.path()).await;
    let reported = parse_llama_log(&run.log);
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

/// The quantizations people download most, from the smallest to near-lossless.
const QUANTS: [&str; 5] = ["Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_XS", "Q8_0"];
const GOAL_PERCENT: f64 = 5.0;
/// The buffers llama-server prints: the formula follows llama.cpp's allocations.
const BUFFERS_GOAL_PERCENT: f64 = 1.0;

fn percent(estimated: u64, actual: u64) -> f64 {
    (estimated as f64 - actual as f64) / actual as f64 * 100.0
}

/// The sizes of the lines `marker` reports, in the order printed.
fn reported_sizes(log: &str, marker: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains(marker))
        .filter_map(|line| {
            line.split(" = ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .map(|mib: f64| (mib * MIB).round() as u64)
        .collect()
}

#[tokio::test]
async fn quantized_architectures_are_estimated_within_one_percent_of_buffers_and_five_of_rss() {
    let dir = tempfile::tempdir().unwrap();
    let architectures = [
        Architecture::Llama,
        Architecture::Qwen3,
        Architecture::Gemma3 {
            sliding_window: 256,
        },
        Architecture::Qwen3Moe {
            experts: 8,
            experts_used: 2,
            expert_feed_forward: 512,
        },
    ];
    let mut rows = Vec::new();
    let mut misses = Vec::new();
    for architecture in architectures {
        let spec = LlamaSpec::quantizable(architecture);
        let base = dir.path().join(format!("{}-f16.gguf", spec.name));
        spec.write_to(&base).unwrap();
        for quant in QUANTS {
            let model = dir.path().join(format!("{}-{quant}.gguf", spec.name));
            quantize_model(&base, &model, quant).unwrap();
            let shape = ModelShape::from_gguf(&gguf::read_local(&model).await.unwrap()).unwrap();
            for context in [512, 2048] {
                let config = LlamaConfig {
                    context,
                    ..LlamaConfig::default()
                };
                let estimated = estimate(&shape, &config, Backend::Cpu);
                let run = run_server(&model, &config, context - ANSWER_ROOM, dir.path()).await;
                let reported = parse_llama_log(&run.log);
                // Calibrated as the supervisor does it: the buffers and the RSS at load.
                let calibrated = apply_measured(
                    &estimated,
                    &MeasuredMemory {
                        rss_bytes: Some(run.rss_at_load_bytes),
                        ..reported
                    },
                );
                let buffers = |b: &switchyard_engine::estimate::Breakdown| {
                    b.weights + b.output_layer + b.kv_cache + b.compute
                };
                let logits = u64::from(config.parallel) * u64::from(shape.vocab) * 4;
                let estimated_buffers = buffers(&estimated.ram) + logits;
                let reported_buffers = reported.ram.total();
                let row = format!(
                    "{} {quant} ctx {context}: buffers {:.1} MiB estimated, {:.1} reported ({:+.1} %; compute {:.2} and {:.2}); total {:.1} MiB estimated, RSS {:.1} ({:+.1} %; calibrated {:+.1} %)",
                    spec.name,
                    estimated_buffers as f64 / MIB,
                    reported_buffers as f64 / MIB,
                    percent(estimated_buffers, reported_buffers),
                    estimated.ram.compute as f64 / MIB,
                    reported.ram.compute as f64 / MIB,
                    estimated.total_bytes() as f64 / MIB,
                    run.rss_bytes as f64 / MIB,
                    percent(estimated.total_bytes(), run.rss_bytes),
                    percent(calibrated.total_bytes(), run.rss_bytes),
                );
                if percent(estimated_buffers, reported_buffers).abs() > BUFFERS_GOAL_PERCENT
                    || percent(estimated.total_bytes(), run.rss_bytes).abs() > GOAL_PERCENT
                    || percent(calibrated.total_bytes(), run.rss_bytes).abs() > GOAL_PERCENT
                {
                    misses.push(row.clone());
                }
                rows.push(row.clone());

                // Repacked weights: counted exactly when llama-server repacks.
                let repacked: u64 = shape
                    .layer_matrices
                    .iter()
                    .chain([&shape.output_matrices])
                    .map(|matrices| MatrixBytes::repacked(matrices, CpuKernels::of_this_cpu()))
                    .sum();
                let repack_lines = reported_sizes(&run.log, "CPU_REPACK model buffer size");
                assert_eq!(
                    repacked > 0,
                    !repack_lines.is_empty(),
                    "{row}: repack estimated {repacked} B, llama-server {repack_lines:?}"
                );
                close(repacked, repack_lines.iter().sum(), "repacked weights");

                if let Architecture::Gemma3 { sliding_window } = architecture {
                    // Both caches: the full layers' and the sliding-window layers'.
                    let caches = reported_sizes(&run.log, "KV buffer size");
                    assert_eq!(caches.len(), 2, "{row}: {caches:?}");
                    let row_bytes = |il: usize| {
                        let (k, v) = shape.kv_widths(il);
                        (k + v) * 2
                    };
                    let cells = u64::from(estimated.config.context);
                    let window = (u64::from(sliding_window) * u64::from(config.parallel)
                        + u64::from(config.ubatch))
                    .min(cells)
                    .div_ceil(256)
                        * 256;
                    let (mut full, mut sliding) = (0, 0);
                    for il in 0..shape.layers as usize {
                        if shape.sliding_layers[il] {
                            sliding += window * row_bytes(il);
                        } else {
                            full += cells * row_bytes(il);
                        }
                    }
                    assert_eq!(caches, vec![full, sliding], "{row}");
                }
            }
        }
    }
    println!("{}", rows.join("\n"));
    assert!(
        misses.is_empty(),
        "buffers off by more than {BUFFERS_GOAL_PERCENT} % or RSS by more than {GOAL_PERCENT} %:\n{}",
        misses.join("\n")
    );
}
