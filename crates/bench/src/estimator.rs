//! `estimator`: Switchyard's memory estimate against what the real llama-server
//! reports (its buffer lines) and really uses (RSS after a prompt that fills a
//! micro-batch, plus the GPU memory NVML sees it take), with the seed's formula
//! (`file size × 1.2`, scaled by GPU layers) beside it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use switchyard_engine::estimate::{self, parse_llama_log, Backend, LlamaConfig, ModelShape};
use switchyard_engine::gguf;
use switchyard_engine::system::NvidiaGpus;
use switchyard_testkit::gguf::{Architecture, LlamaSpec, TensorType};
use switchyard_testkit::tools::{free_port, llama_server, quantize_model};

const MIB: f64 = 1024.0 * 1024.0;
const GOAL_PERCENT: f64 = 5.0;
/// Two contexts: one micro-batch, and eight (a prompt filling 16k tokens takes
/// minutes on two cores; the buffers past it grow as the formula says).
const CONTEXTS: [u32; 2] = [512, 4096];
/// Tokens left for the answer when a prompt fills the context.
const ANSWER_ROOM: u32 = 64;
const HEALTH_DEADLINE: Duration = Duration::from_secs(120);
const PROMPT_DEADLINE: Duration = Duration::from_secs(600);

pub struct Options {
    backend: Backend,
    server: PathBuf,
    models_dir: Option<PathBuf>,
    /// Appends every run's memory lines here.
    log_file: Option<PathBuf>,
    /// Only the models whose name contains this.
    only: Option<String>,
}

impl Options {
    /// `[--gpu] [--llama-server PATH] [--models DIR] [--log FILE] [--only NAME]`
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self {
            backend: Backend::Cpu,
            server: PathBuf::new(),
            models_dir: None,
            log_file: None,
            only: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--gpu" => options.backend = Backend::Cuda,
                "--llama-server" => options.server = args.next().context("a path")?.into(),
                "--models" => options.models_dir = Some(args.next().context("a folder")?.into()),
                "--log" => options.log_file = Some(args.next().context("a file")?.into()),
                "--only" => options.only = Some(args.next().context("a name part")?.clone()),
                other => bail!(
                    "unknown option {other} (known: --gpu, --llama-server PATH, --models DIR, --log FILE, --only NAME)"
                ),
            }
        }
        if options.server.as_os_str().is_empty() {
            options.server = llama_server();
        }
        Ok(options)
    }
}

/// A model of the bench: generated as `spec`, then quantized by the real
/// llama-quantize when `quant` names a type.
struct BenchModel {
    spec: LlamaSpec,
    quant: Option<&'static str>,
}

impl BenchModel {
    fn name(&self) -> String {
        match self.quant {
            Some(quant) => format!("{}-{}", self.spec.name, quant.to_ascii_lowercase()),
            None => self.spec.name.clone(),
        }
    }

    /// The file, made on first use (a quantized one from its F16 base).
    fn file(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(format!("{}.gguf", self.name()));
        if path.exists() {
            return Ok(path);
        }
        let Some(quant) = self.quant else {
            self.spec.write_to(&path)?;
            return Ok(path);
        };
        let base = dir.join(format!("{}-f16.gguf", self.spec.name));
        if !base.exists() {
            self.spec.write_to(&base)?;
        }
        quantize_model(&base, &path, quant)?;
        Ok(path)
    }
}

/// The quantizations people download most, from the smallest to near-lossless.
const QUANTS: [&str; 5] = ["Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_XS", "Q8_0"];

/// Generated float and Q8_0 shapes, chosen to vary what the estimate depends on
/// (depth, width, attention heads and their grouping — MHA, GQA, MQA —,
/// feed-forward width, vocabulary, weight type), then each architecture whose
/// memory differs quantized the way published files are.
fn models(only: Option<&str>) -> Vec<BenchModel> {
    let spec =
        |name: &str, layers, embedding, heads, kv_heads, feed_forward, vocab, tensor_type| {
            LlamaSpec {
                seed: 7,
                ..LlamaSpec::shaped(
                    name,
                    layers,
                    embedding,
                    heads,
                    kv_heads,
                    feed_forward,
                    vocab,
                    tensor_type,
                )
            }
        };
    let plain = [
        spec("mha-f32", 4, 512, 8, 8, 1408, 32_000, TensorType::F32),
        spec("gqa4-f16", 8, 1024, 16, 4, 2816, 32_000, TensorType::F16),
        spec(
            "deep-narrow-f16",
            24,
            384,
            6,
            2,
            1024,
            8_000,
            TensorType::F16,
        ),
        spec("wide-q8", 4, 2048, 16, 2, 5632, 16_000, TensorType::Q8_0),
        spec(
            "vocab128k-q8",
            6,
            768,
            12,
            4,
            2048,
            128_000,
            TensorType::Q8_0,
        ),
        spec("mqa-q8", 12, 1024, 8, 1, 4096, 32_000, TensorType::Q8_0),
    ];
    let mut models: Vec<BenchModel> = plain
        .into_iter()
        .map(|spec| BenchModel { spec, quant: None })
        .collect();
    for spec in quantized_architectures() {
        for quant in QUANTS {
            models.push(BenchModel {
                spec: spec.clone(),
                quant: Some(quant),
            });
        }
    }
    models.retain(|model| only.is_none_or(|only| model.name().contains(only)));
    models
}

/// F16 models of each architecture, with widths K-quants take (multiples of 256).
pub fn quantized_architectures() -> Vec<LlamaSpec> {
    let base = LlamaSpec {
        context: 32_768,
        tensor_type: TensorType::F16,
        seed: 11,
        vocab: 32_000,
        ..LlamaSpec::default()
    };
    vec![
        LlamaSpec {
            name: "llama".into(),
            layers: 8,
            embedding: 1024,
            heads: 16,
            kv_heads: 4,
            feed_forward: 2816,
            ..base.clone()
        },
        LlamaSpec {
            name: "qwen3".into(),
            architecture: Architecture::Qwen3,
            layers: 8,
            embedding: 1024,
            heads: 16,
            kv_heads: 8,
            head_dim: Some(128),
            feed_forward: 3072,
            ..base.clone()
        },
        LlamaSpec {
            name: "gemma3".into(),
            architecture: Architecture::Gemma3 {
                sliding_window: 512,
            },
            layers: 12,
            embedding: 1024,
            heads: 4,
            kv_heads: 1,
            head_dim: Some(256),
            feed_forward: 4096,
            vocab: 64_000,
            ..base.clone()
        },
        LlamaSpec {
            name: "qwen3moe".into(),
            architecture: Architecture::Qwen3Moe {
                experts: 16,
                experts_used: 4,
                expert_feed_forward: 512,
            },
            layers: 6,
            embedding: 1024,
            heads: 16,
            kv_heads: 4,
            feed_forward: 2048,
            ..base
        },
    ]
}

struct Row {
    model: String,
    context: u32,
    gpu_layers: u32,
    estimate_vram_mib: f64,
    used_vram_mib: f64,
    file_mib: f64,
    estimate_mib: f64,
    /// The estimate's share that llama-server reports (no runtime overhead).
    estimate_buffers_mib: f64,
    reported_mib: f64,
    used_mib: f64,
    seed_mib: f64,
}

fn percent(estimate: f64, actual: f64) -> f64 {
    (estimate - actual) / actual * 100.0
}

pub fn run(options: &Options) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let models_dir = options
        .models_dir
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&models_dir)?;
    let nvidia = NvidiaGpus::default();
    let gpu = matches!(options.backend, Backend::Cuda);
    if gpu && nvidia.count() == 0 {
        bail!("--gpu needs an NVIDIA GPU that NVML can read");
    }
    println!(
        "estimator: {} with {}, contexts {CONTEXTS:?}, a prompt that fills the context, llama-server defaults otherwise (4 slots, unified KV, flash attention auto)",
        if gpu { "all layers on the GPU" } else { "CPU" },
        options.server.display()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for model in models(options.only.as_deref()) {
        let name = model.name();
        let path = model.file(&models_dir)?;
        let file = runtime.block_on(gguf::read_local(&path))?;
        let shape = ModelShape::from_gguf(&file).context("a llama model")?;
        let file_bytes = std::fs::metadata(&path)?.len();
        let all_layers = if gpu { shape.layers + 1 } else { 0 };
        let mut runs: Vec<(u32, u32)> = CONTEXTS.iter().map(|&c| (c, all_layers)).collect();
        if gpu {
            // Half the layers on the GPU: the split between RAM and VRAM.
            runs.push((4096, shape.layers / 2));
        }
        for (context, gpu_layers) in runs {
            let config = LlamaConfig {
                context,
                gpu_layers,
                ..LlamaConfig::default()
            };
            let estimated = estimate::estimate(&shape, &config, options.backend);
            let measured = measure(
                &runtime,
                &options.server,
                &path,
                &config,
                gpu,
                &nvidia,
                scratch.path(),
            )?;
            if let Some(log_file) = &options.log_file {
                keep_memory_lines(log_file, &name, &config, &measured.log)?;
            }
            let (seed_ram, seed_vram) =
                estimate::seed_formula(file_bytes, shape.layers, config.gpu_layers);
            let row = Row {
                model: name.clone(),
                context,
                gpu_layers,
                estimate_vram_mib: estimated.vram_bytes() as f64 / MIB,
                used_vram_mib: measured.vram_bytes as f64 / MIB,
                file_mib: file_bytes as f64 / MIB,
                estimate_mib: estimated.total_bytes() as f64 / MIB,
                estimate_buffers_mib: buffers(&estimated, &shape) as f64 / MIB,
                reported_mib: measured.reported_bytes as f64 / MIB,
                used_mib: measured.used_bytes as f64 / MIB,
                seed_mib: (seed_ram + seed_vram) as f64 / MIB,
            };
            print_row(&row, rows.is_empty(), gpu);
            rows.push(row);
        }
    }
    let worst = rows
        .iter()
        .max_by(|a, b| {
            percent(a.estimate_mib, a.used_mib)
                .abs()
                .total_cmp(&percent(b.estimate_mib, b.used_mib).abs())
        })
        .context("no rows")?;
    let seed_worst = rows
        .iter()
        .map(|row| percent(row.seed_mib, row.used_mib).abs())
        .fold(0.0, f64::max);
    println!(
        "worst row: {} at {} tokens (seed formula's worst: {seed_worst:.1} %)",
        worst.model, worst.context
    );
    println!(
        "estimator: worst error {:.1} % against used memory (goal ≤ {GOAL_PERCENT} %)",
        percent(worst.estimate_mib, worst.used_mib).abs()
    );
    Ok(())
}

/// What llama-server's buffer lines cover: everything but the runtime.
fn buffers(estimated: &estimate::LlamaEstimate, shape: &ModelShape) -> u64 {
    let parts = |b: &estimate::Breakdown| b.weights + b.output_layer + b.kv_cache + b.compute;
    let logits = u64::from(estimated.config.parallel) * u64::from(shape.vocab) * 4;
    parts(&estimated.ram) + parts(&estimated.vram) + logits
}

fn print_row(row: &Row, header: bool, gpu: bool) {
    if header {
        println!(
            "{:<47} | {:^29} | error of the estimate | runtime (MiB)",
            "", "llama-server"
        );
        println!(
            "{:<16} {:>6} {:>3} {:>8} | {:>9} {:>9} {:>9} | {:>7} {:>7} | {:>7} {:>7} | {:>9} {:>7}{}",
            "model",
            "ctx",
            "ngl",
            "file MiB",
            "estimate",
            "reported",
            "used",
            "buffers",
            "total",
            "rt est",
            "rt used",
            "seed",
            "seed err",
            if gpu { " | est VRAM  NVML VRAM" } else { "" }
        );
    }
    let vram = if gpu {
        format!(
            " | {:>8.1} {:>10.1}",
            row.estimate_vram_mib, row.used_vram_mib
        )
    } else {
        String::new()
    };
    println!(
        "{:<16} {:>6} {:>3} {:>8.1} | {:>9.1} {:>9.1} {:>9.1} | {:>6.1}% {:>6.1}% | {:>7.1} {:>7.1} | {:>9.1} {:>6.1}%{vram}",
        row.model,
        row.context,
        row.gpu_layers,
        row.file_mib,
        row.estimate_mib,
        row.reported_mib,
        row.used_mib,
        percent(row.estimate_buffers_mib, row.reported_mib),
        percent(row.estimate_mib, row.used_mib),
        row.estimate_mib - row.estimate_buffers_mib,
        row.used_mib - row.reported_mib,
        row.seed_mib,
        percent(row.seed_mib, row.used_mib),
    );
    let _ = std::io::stdout().flush();
}

struct Measured {
    /// The buffers llama-server reported.
    reported_bytes: u64,
    /// RSS plus the GPU memory the process took.
    used_bytes: u64,
    vram_bytes: u64,
    log: String,
}

fn keep_memory_lines(file: &Path, model: &str, config: &LlamaConfig, log: &str) -> Result<()> {
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    writeln!(
        out,
        "=== {model} ctx {} ngl {}",
        config.context, config.gpu_layers
    )?;
    for line in log.lines().filter(|line| {
        line.contains("buffer size")
            || line.contains("memory_breakdown")
            || line.contains("CUDA")
            || line.contains("flash_attn")
            || line.contains("offload")
    }) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Ends the server however the measurement ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn measure(
    runtime: &tokio::runtime::Runtime,
    server: &Path,
    model: &Path,
    config: &LlamaConfig,
    gpu: bool,
    nvidia: &NvidiaGpus,
    scratch: &Path,
) -> Result<Measured> {
    let gpu_used = || -> u64 {
        nvidia
            .memory(0)
            .iter()
            .filter_map(|memory| memory.used_bytes)
            .sum()
    };
    let vram_before = if gpu { gpu_used() } else { 0 };
    let port = free_port();
    let log_path = scratch.join("llama-server.log");
    let log = std::fs::File::create(&log_path)?;
    let mut command = Command::new(server);
    command
        .arg("-m")
        .arg(model)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["-c", &config.context.to_string(), "-lv", "4"])
        .args(["-ngl", &config.gpu_layers.to_string()])
        // Switchyard's bounds on the caches that grow with use (the estimate counts them).
        .args(["--ctx-checkpoints", &config.context_checkpoints.to_string()])
        .args(["--cache-ram", &config.prompt_cache_mib.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if !gpu {
        command.args(["-t", "2"]);
    }
    let mut child = Server(command.spawn().context("llama-server starts")?);
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Some(status) = child.0.try_wait()? {
                bail!(
                    "llama-server exited with {status}: see {}",
                    log_path.display()
                );
            }
            let health = client.get(format!("{base}/health")).send().await;
            if health.is_ok_and(|response| response.status() == 200) {
                break;
            }
            if started.elapsed() > HEALTH_DEADLINE {
                bail!("not healthy within {HEALTH_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A prompt that fills the context touches every buffer as a long
        // conversation does: the whole KV cache, and the compute buffer's attention
        // over all of it (a short prompt leaves the mask's pages untouched).
        // (Token ids: the generated tokenizer spells words letter by letter.)
        let prompt = vec![300u32; config.context.saturating_sub(ANSWER_ROOM).max(1) as usize];
        client
            .post(format!("{base}/completion"))
            .json(&serde_json::json!({"prompt": prompt, "n_predict": 1, "cache_prompt": false}))
            .timeout(PROMPT_DEADLINE)
            .send()
            .await?
            .error_for_status()?;
        anyhow::Ok(())
    })?;
    let rss = rss_bytes(child.0.id())?;
    let vram = if gpu {
        gpu_used().saturating_sub(vram_before)
    } else {
        0
    };
    drop(child);
    let log = std::fs::read_to_string(&log_path)?;
    let reported = parse_llama_log(&log);
    Ok(Measured {
        reported_bytes: reported.ram.total() + reported.vram.total(),
        used_bytes: rss + vram,
        vram_bytes: vram,
        log,
    })
}

fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .context("VmRSS")?;
    Ok(kib * 1024)
}
