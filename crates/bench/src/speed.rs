//! `speed`: Switchyard's predicted generation speed against what the real
//! llama-server measures (`timings.predicted_per_second`) for generated models
//! quantized with the real `llama-quantize` (Q4_K_M, Q8_0) and their F16 sources,
//! on this machine's measured RAM bandwidth.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use switchyard_engine::estimate::speed::{predict_generation, CPU_RUNTIME};
use switchyard_engine::estimate::{estimate, Backend, Bandwidth, LlamaConfig, ModelShape};
use switchyard_engine::gguf;
use switchyard_engine::system::{HostProbe, SystemProbe};
use switchyard_testkit::gguf::{LlamaSpec, TensorType};
use switchyard_testkit::tools::{free_port, llama_quantize, llama_server};

const MB: f64 = 1e6;
const GOAL_PERCENT: f64 = 25.0;
const HEALTH_DEADLINE: Duration = Duration::from_secs(120);
/// Threads llama-server uses: this machine's two cores.
const THREADS: &str = "2";
/// Tokens of the prompt (already in the cache when generation starts) and tokens
/// generated per measurement.
const PROMPT_TOKENS: usize = 128;
const GENERATED_TOKENS: u32 = 64;
const CONTEXT: u32 = 4096;

pub struct Options {
    server: PathBuf,
    quantize: PathBuf,
    models_dir: Option<PathBuf>,
}

impl Options {
    /// `[--llama-server PATH] [--llama-quantize PATH] [--models DIR]`
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self {
            server: PathBuf::new(),
            quantize: PathBuf::new(),
            models_dir: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--llama-server" => options.server = args.next().context("a path")?.into(),
                "--llama-quantize" => options.quantize = args.next().context("a path")?.into(),
                "--models" => options.models_dir = Some(args.next().context("a folder")?.into()),
                other => bail!(
                    "unknown option {other} (known: --llama-server PATH, --llama-quantize PATH, --models DIR)"
                ),
            }
        }
        if options.server.as_os_str().is_empty() {
            options.server = llama_server();
        }
        if options.quantize.as_os_str().is_empty() {
            options.quantize = llama_quantize();
        }
        Ok(options)
    }
}

/// F16 sources, each quantized to the types named. Widths are multiples of 256
/// (K-quant rows); sizes from ~15 MB (the runtime's own cost dominates) to
/// ~600 MB (the bandwidth does).
fn sources() -> Vec<(LlamaSpec, &'static [&'static str])> {
    let spec = |name: &str, layers, embedding, heads, kv_heads, feed_forward, vocab| LlamaSpec {
        name: name.to_owned(),
        layers,
        embedding,
        heads,
        kv_heads,
        feed_forward,
        vocab,
        context: 32_768,
        tensor_type: TensorType::F16,
        seed: 11,
    };
    vec![
        (spec("tiny", 4, 512, 8, 8, 1536, 8_000), &["Q4_K_M"]),
        (
            spec("deep", 24, 768, 12, 4, 2048, 16_000),
            &["Q4_K_M", "Q8_0"],
        ),
        (
            spec("mid", 12, 1536, 12, 4, 4096, 32_000),
            &["Q4_K_M", "Q8_0"],
        ),
        (spec("wide", 8, 2048, 16, 8, 5632, 32_000), &["Q4_K_M"]),
    ]
}

struct Row {
    model: String,
    layers: u32,
    file_mb: f64,
    read_mb: f64,
    predicted: f64,
    measured: f64,
    quantized: bool,
}

impl Row {
    fn error_percent(&self) -> f64 {
        (self.predicted - self.measured) / self.measured * 100.0
    }
}

pub fn run(options: &Options) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let models_dir = options
        .models_dir
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&models_dir)?;
    let probe = HostProbe::for_this_machine()?;
    let ram = probe
        .ram_bandwidth()
        .context("the RAM bandwidth probe measured nothing")?;
    let bandwidth = Bandwidth {
        ram_bytes_per_second: ram,
        gpu_bytes_per_second: None,
    };
    println!(
        "RAM read bandwidth (probe): {:.1} GB/s; llama-server -t {THREADS}, {PROMPT_TOKENS}-token prompt, {GENERATED_TOKENS} tokens generated",
        ram as f64 / 1e9
    );
    println!(
        "runtime cost: {:.2} ms per token + {:.3} ms per layer, {:.0} % of the bandwidth reached",
        CPU_RUNTIME.per_token_seconds * 1e3,
        CPU_RUNTIME.per_layer_seconds * 1e3,
        CPU_RUNTIME.bandwidth_share * 100.0
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    for (source, quantizations) in sources() {
        let f16 = models_dir.join(format!("{}-f16.gguf", source.name));
        if !f16.exists() {
            source.write_to(&f16)?;
        }
        let mut files = vec![(format!("{}-f16", source.name), f16.clone(), false)];
        for quantization in quantizations {
            let name = format!("{}-{}", source.name, quantization.to_ascii_lowercase());
            let path = models_dir.join(format!("{name}.gguf"));
            if !path.exists() {
                quantize(&options.quantize, &f16, &path, quantization)?;
            }
            files.push((name, path, true));
        }
        for (name, path, quantized) in files {
            let row = measure_row(&runtime, options, &name, &path, bandwidth, quantized)?;
            print_row(&row, rows.is_empty());
            rows.push(row);
        }
    }
    let worst = rows
        .iter()
        .filter(|row| row.quantized)
        .max_by(|a, b| a.error_percent().abs().total_cmp(&b.error_percent().abs()))
        .context("no quantized rows")?;
    println!("worst quantized row: {}", worst.model);
    println!(
        "speed: worst error {:.1} % against llama-server's generation speed on the quantized rows (goal ≤ {GOAL_PERCENT:.0} %)",
        worst.error_percent().abs()
    );
    Ok(())
}

fn quantize(tool: &Path, from: &Path, to: &Path, kind: &str) -> Result<()> {
    let output = Command::new(tool)
        .arg(from)
        .arg(to)
        .arg(kind)
        .arg(THREADS)
        .stdin(Stdio::null())
        .output()
        .context("llama-quantize starts")?;
    if !output.status.success() {
        bail!(
            "llama-quantize {kind} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn measure_row(
    runtime: &tokio::runtime::Runtime,
    options: &Options,
    name: &str,
    path: &Path,
    bandwidth: Bandwidth,
    quantized: bool,
) -> Result<Row> {
    let file = runtime.block_on(gguf::read_local(path))?;
    let shape = ModelShape::from_gguf(&file).map_err(|error| anyhow::anyhow!("{error}"))?;
    let config = LlamaConfig {
        context: CONTEXT,
        ..LlamaConfig::default()
    };
    let planned = estimate(&shape, &config, Backend::Cpu);
    // The cache holds the prompt and, on average, half the answer.
    let in_cache = PROMPT_TOKENS as u32 + GENERATED_TOKENS / 2;
    let predicted =
        predict_generation(&shape, &planned, bandwidth, in_cache).context("a prediction")?;
    let read = if shape.output_tied {
        shape.input_bytes
    } else {
        shape.output_bytes
    } + shape.layer_bytes.iter().sum::<u64>();
    let measured = measure(runtime, &options.server, path)?;
    Ok(Row {
        model: name.to_owned(),
        layers: shape.layers,
        file_mb: std::fs::metadata(path)?.len() as f64 / MB,
        read_mb: read as f64 / MB,
        predicted,
        measured,
        quantized,
    })
}

fn print_row(row: &Row, header: bool) {
    if header {
        println!(
            "{:<16} {:>6} {:>9} {:>9} | {:>10} {:>10} {:>7} | {:>9} {:>9}",
            "model",
            "layers",
            "file MB",
            "read MB",
            "predicted",
            "measured",
            "error",
            "pred ms",
            "meas ms"
        );
    }
    println!(
        "{:<16} {:>6} {:>9.1} {:>9.1} | {:>10.1} {:>10.1} {:>6.1}% | {:>9.2} {:>9.2}",
        row.model,
        row.layers,
        row.file_mb,
        row.read_mb,
        row.predicted,
        row.measured,
        row.error_percent(),
        1e3 / row.predicted,
        1e3 / row.measured,
    );
}

/// Ends the server however the measurement ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// llama-server's own generation speed: the best of three runs after a warm-up
/// (the first run pages the weights in).
fn measure(runtime: &tokio::runtime::Runtime, server: &Path, model: &Path) -> Result<f64> {
    let port = free_port();
    let mut child = Server(
        Command::new(server)
            .arg("-m")
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-c", &CONTEXT.to_string(), "-t", THREADS])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("llama-server starts")?,
    );
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Some(status) = child.0.try_wait()? {
                bail!("llama-server exited with {status}");
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
        // (Token ids: the generated tokenizer spells words letter by letter.)
        let prompt = vec![300u32; PROMPT_TOKENS];
        let mut best = 0.0f64;
        for run in 0..4 {
            let response: serde_json::Value = client
                .post(format!("{base}/completion"))
                .json(&serde_json::json!({
                    "prompt": prompt,
                    "n_predict": GENERATED_TOKENS,
                    "ignore_eos": true,
                    "cache_prompt": false,
                }))
                .timeout(HEALTH_DEADLINE)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let timings = &response["timings"];
            let generated = timings["predicted_n"].as_u64().unwrap_or(0);
            if generated < u64::from(GENERATED_TOKENS) {
                bail!("llama-server generated only {generated} tokens: {timings}");
            }
            if run > 0 {
                best = best.max(timings["predicted_per_second"].as_f64().unwrap_or(0.0));
            }
        }
        anyhow::Ok(best)
    })
}
