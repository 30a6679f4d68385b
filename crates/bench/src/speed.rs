//! `speed`: Switchyard's predicted generation speed against what the real
//! llama-server measures (`timings.predicted_per_second`) for generated models
//! quantized with the real `llama-quantize` (Q4_K_M, Q8_0) and their F16 sources,
//! on this machine's measured RAM bandwidth.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use switchyard_engine::estimate::speed::{
    predict_generation, CPU_RUNTIME, QUANTIZED_BYTES_PER_THREAD,
};
use switchyard_engine::estimate::{estimate, Backend, Bandwidth, LlamaConfig, ModelShape};
use switchyard_engine::gguf;
use switchyard_engine::system::{HostProbe, SystemProbe};
use switchyard_testkit::gguf::{LlamaSpec, TensorType};
use switchyard_testkit::tools::{free_port, llama_quantize, llama_server};

const MB: f64 = 1e6;
const GOAL_PERCENT: f64 = 25.0;
/// The smallest model the goal counts.
const GOAL_MIN_MB: f64 = 50.0;
const HEALTH_DEADLINE: Duration = Duration::from_secs(120);
/// Threads llama-server uses: this machine's two cores.
const THREADS: &str = "2";
/// Tokens of the prompt (already in the cache when generation starts) and tokens
/// generated per measurement.
const PROMPT_TOKENS: usize = 128;
const GENERATED_TOKENS: u32 = 64;
const CONTEXT: u32 = 4096;
/// A run during which other programs took more than this many cores is timed
/// again: on a shared machine their work would slow ours.
const BUSY_CORES: f64 = 0.15;
/// Runs tried (a busy one waits [`BUSY_WAIT`] before the next): a shared machine
/// gets about ten minutes to become quiet.
const MAX_ATTEMPTS: u32 = 200;
const BUSY_WAIT: Duration = Duration::from_secs(3);
/// Undisturbed runs per figure; the fastest counts.
const TIMED_RUNS: usize = 2;

pub struct Options {
    server: PathBuf,
    quantize: PathBuf,
    models_dir: Option<PathBuf>,
    /// Reuse the timings kept beside the models (`<model>.tps` in `--models`):
    /// a change to the prediction is checked without timing the server again.
    reuse_timings: bool,
}

impl Options {
    /// `[--llama-server PATH] [--llama-quantize PATH] [--models DIR] [--reuse-timings]`
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self {
            server: PathBuf::new(),
            quantize: PathBuf::new(),
            models_dir: None,
            reuse_timings: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--llama-server" => options.server = args.next().context("a path")?.into(),
                "--llama-quantize" => options.quantize = args.next().context("a path")?.into(),
                "--models" => options.models_dir = Some(args.next().context("a folder")?.into()),
                "--reuse-timings" => options.reuse_timings = true,
                other => bail!(
                    "unknown option {other} (known: --llama-server PATH, --llama-quantize PATH, --models DIR, --reuse-timings)"
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
/// The F16 source is timed too where the flag says so (one row of float
/// weights, which need no dequantizing).
fn sources() -> Vec<(LlamaSpec, &'static [&'static str], bool)> {
    let spec = |name: &str, layers, embedding, heads, kv_heads, feed_forward, vocab| LlamaSpec {
        seed: 11,
        ..LlamaSpec::shaped(
            name,
            layers,
            embedding,
            heads,
            kv_heads,
            feed_forward,
            vocab,
            TensorType::F16,
        )
    };
    vec![
        (spec("tiny", 4, 512, 8, 8, 1536, 8_000), &["Q4_K_M"], false),
        (
            spec("deep", 24, 768, 12, 4, 2048, 16_000),
            &["Q4_K_M", "Q8_0"],
            true,
        ),
        (
            spec("mid", 12, 1536, 12, 4, 4096, 32_000),
            &["Q4_K_M", "Q8_0"],
            false,
        ),
        (
            spec("wide", 8, 2048, 16, 8, 5632, 32_000),
            &["Q4_K_M"],
            false,
        ),
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
    let probe_kept = models_dir.join("ram-bandwidth.bps");
    let reused = options
        .reuse_timings
        .then(|| {
            std::fs::read_to_string(&probe_kept)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .flatten();
    let ram = match reused {
        Some(ram) => ram,
        None => {
            let ram = idle_ram_bandwidth()?;
            std::fs::write(&probe_kept, format!("{ram}\n"))?;
            ram
        }
    };
    let bandwidth = Bandwidth {
        ram_bytes_per_second: ram,
        gpu_bytes_per_second: None,
        cpu_threads: THREADS.parse()?,
    };
    println!(
        "RAM read bandwidth (probe): {:.1} GB/s; llama-server -t {THREADS}, {PROMPT_TOKENS}-token prompt, {GENERATED_TOKENS} tokens generated",
        ram as f64 / 1e9
    );
    println!(
        "runtime cost: {:.2} ms per token + {:.3} ms per layer; weights read at {:.0} % of the bandwidth, quantized ones at most {:.1} GB/s per thread",
        CPU_RUNTIME.per_token_seconds * 1e3,
        CPU_RUNTIME.per_layer_seconds * 1e3,
        CPU_RUNTIME.bandwidth_share * 100.0,
        QUANTIZED_BYTES_PER_THREAD / 1e9,
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    for (source, quantizations, time_source) in sources() {
        let f16 = models_dir.join(format!("{}-f16.gguf", source.name));
        if !f16.exists() {
            source.write_to(&f16)?;
        }
        let mut files = Vec::new();
        if time_source {
            files.push((format!("{}-f16", source.name), f16.clone(), false));
        }
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
    // Models of a few megabytes stay in the CPU's caches: shown for the
    // runtime's own cost, not counted against the goal.
    let worst = rows
        .iter()
        .filter(|row| row.quantized && row.file_mb >= GOAL_MIN_MB)
        .max_by(|a, b| a.error_percent().abs().total_cmp(&b.error_percent().abs()))
        .context("no quantized rows")?;
    println!("worst quantized row: {}", worst.model);
    println!(
        "speed: worst error {:.1} % against llama-server's generation speed on the quantized rows of {GOAL_MIN_MB:.0} MB and more (goal ≤ {GOAL_PERCENT:.0} %)",
        worst.error_percent().abs()
    );
    Ok(())
}

/// The app's RAM probe, the best of two runs that had the machine to
/// themselves.
fn idle_ram_bandwidth() -> Result<u64> {
    let probe = HostProbe::for_this_machine()?;
    let mut best = None;
    let mut idle_runs = 0;
    for _ in 0..MAX_ATTEMPTS {
        let before = CpuShare::now(None);
        let measured = probe.ram_bandwidth();
        if before.others_since(None) < BUSY_CORES {
            best = best.max(measured);
            idle_runs += 1;
            if idle_runs == TIMED_RUNS {
                break;
            }
        } else {
            std::thread::sleep(BUSY_WAIT);
        }
    }
    best.context("the RAM bandwidth probe measured nothing (or the machine stayed busy)")
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
    let kept = path.with_extension("tps");
    let reused = options
        .reuse_timings
        .then(|| {
            std::fs::read_to_string(&kept)
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .flatten();
    let measured = match reused {
        Some(measured) => measured,
        None => {
            let measured = measure(runtime, &options.server, path)?;
            std::fs::write(&kept, format!("{measured}\n"))?;
            measured
        }
    };
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

/// llama-server's own generation speed: the best of two runs after a warm-up,
/// each with the CPU to itself.
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
        let body = serde_json::json!({
            "prompt": prompt,
            "n_predict": GENERATED_TOKENS,
            "ignore_eos": true,
            "cache_prompt": false,
        });
        let mut timed = Vec::new();
        let mut attempts = 0;
        // The first run pages the weights in; then runs that had the CPU to
        // themselves (another program's work would be measured as ours).
        while timed.len() < TIMED_RUNS && attempts < MAX_ATTEMPTS {
            attempts += 1;
            let before = CpuShare::now(Some(child.0.id()));
            let response: serde_json::Value = client
                .post(format!("{base}/completion"))
                .json(&body)
                .timeout(HEALTH_DEADLINE)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let others = before.others_since(Some(child.0.id()));
            let timings = &response["timings"];
            let generated = timings["predicted_n"].as_u64().unwrap_or(0);
            if generated < u64::from(GENERATED_TOKENS) {
                bail!("llama-server generated only {generated} tokens: {timings}");
            }
            if attempts > 1 && others < BUSY_CORES {
                timed.push(timings["predicted_per_second"].as_f64().unwrap_or(0.0));
            } else if attempts > 1 {
                tokio::time::sleep(BUSY_WAIT).await;
            }
        }
        if timed.is_empty() {
            bail!("the machine stayed busy with other programs: nothing timed");
        }
        let best = timed.iter().copied().fold(0.0f64, f64::max);
        anyhow::Ok(best)
    })
}

/// CPU time of the whole machine and of the server and this bench, from /proc
/// (Linux; elsewhere every run counts as undisturbed).
struct CpuShare {
    at: Instant,
    machine: u64,
    ours: u64,
}

impl CpuShare {
    /// `server`: a child whose CPU time is ours too.
    fn now(server: Option<u32>) -> Self {
        let server = server.and_then(process_ticks).unwrap_or(0);
        Self {
            at: Instant::now(),
            machine: machine_busy_ticks().unwrap_or(0),
            ours: server + process_ticks(std::process::id()).unwrap_or(0),
        }
    }

    /// Cores other programs kept busy since `self`, on average.
    fn others_since(&self, server: Option<u32>) -> f64 {
        let later = Self::now(server);
        let others = later
            .machine
            .saturating_sub(self.machine)
            .saturating_sub(later.ours.saturating_sub(self.ours));
        let seconds = later.at.duration_since(self.at).as_secs_f64();
        // Kernel ticks are 1/100 s (USER_HZ).
        if seconds > 0.0 {
            others as f64 / 100.0 / seconds
        } else {
            0.0
        }
    }
}

/// Busy ticks of all CPUs (user, nice, system, irq, softirq, steal).
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let field = |index: usize| fields.get(index).copied().unwrap_or(0);
    Some(field(0) + field(1) + field(2) + field(5) + field(6) + field(7))
}

/// User and system ticks of a process.
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
