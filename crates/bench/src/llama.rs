//! `start-overhead` and `restart-latency`: what Switchyard adds around the real
//! llama-server.
//!
//! - start-overhead: the same model and arguments, spawned raw (health polled
//!   every millisecond, so the reference is the server's true readiness) against
//!   `llama().start()` (prepare, port check, spawn through the guard thread, health
//!   polls at the default interval), each from call to healthy.
//! - restart-latency: `kill -9` of the server to its replacement spawned (the
//!   `starting` event), with the backoff set to zero so the figure is Switchyard's
//!   own: detecting the exit, deciding, checking the port, spawning.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use switchyard_engine::clock::SystemClock;
use switchyard_engine::llama::{InstanceSpec, InstanceState, RestartPolicy, SupervisionPolicy};
use switchyard_engine::settings::Settings;
use switchyard_engine::system::{HostProbe, SystemProbe};
use switchyard_engine::{Engine, EngineDeps, EngineEvent};
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::tools::{free_port, llama_server, use_real_llama_server};
use tokio::sync::broadcast;

const START_RUNS: usize = 15;
const RESTART_RUNS: usize = 15;
const START_GOAL: Duration = Duration::from_millis(50);
const RESTART_GOAL: Duration = Duration::from_millis(200);
const DEADLINE: Duration = Duration::from_secs(60);

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn engine(data: &Path) -> Result<Engine> {
    engine_on(data, Arc::new(HostProbe::for_this_machine()?)).await
}

/// An engine in `data` on the machine `probe` describes, with the real llama-server.
pub(crate) async fn engine_on(data: &Path, probe: Arc<dyn SystemProbe>) -> Result<Engine> {
    let engine = Engine::new(EngineDeps {
        data_dir_override: Some(data.join("data")),
        config_dir: data.join("config"),
        settings: Settings::default(),
        probe,
        clock: Arc::new(SystemClock),
    })?;
    use_real_llama_server(&engine).await?;
    Ok(engine)
}

/// The tiny model at a small context: startup is dominated by process start and
/// the HTTP server, which is where any overhead of Switchyard's would show.
pub(crate) fn instance(model: &Path) -> InstanceSpec {
    let mut spec = InstanceSpec::new("bench", model);
    spec.config.context = 512;
    spec.config.parallel = 1;
    spec.auto.context = false;
    spec.threads = Some(2);
    spec
}

pub fn start_overhead() -> Result<()> {
    runtime()?.block_on(measure_start())
}

async fn measure_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let model = dir.path().join("tiny.gguf");
    LlamaSpec::default().write_to(&model)?;
    let engine = engine(dir.path()).await?;
    let llama = engine.llama().clone();
    llama.create(instance(&model))?;
    // Warm-up: `--help` is read once per binary, the page cache holds the files.
    let warm = llama.start("bench").await?;
    let args = warm.running.context("running configuration")?.args;
    llama.stop("bench").await?;

    let client = reqwest::Client::builder().no_proxy().build()?;
    let mut raw = Vec::new();
    let mut ours = Vec::new();
    for _ in 0..START_RUNS {
        raw.push(raw_start(&client, &args).await?);
        let start = Instant::now();
        llama.start("bench").await?;
        ours.push(start.elapsed());
        llama.stop("bench").await?;
    }
    engine.shutdown().await;
    let (raw_median, raw_p90) = median_p90(&mut raw);
    let (our_median, our_p90) = median_p90(&mut ours);
    let extra = our_median.saturating_sub(raw_median);
    println!(
        "start-overhead: tiny llama model, -c 512, {START_RUNS} starts each, call → /health 200"
    );
    println!("  arguments (auto-configured): {}", args.join(" "));
    println!("  {:<44} {:>10} {:>10}", "", "median", "p90");
    row(
        "raw llama-server (health polled every 1 ms)",
        raw_median,
        raw_p90,
    );
    row("Switchyard llama().start()", our_median, our_p90);
    println!(
        "start-overhead: +{:.1} ms (goal <= {} ms)",
        ms(extra),
        START_GOAL.as_millis()
    );
    Ok(())
}

/// Spawn → `/health` 200 with the same arguments, polled every millisecond.
async fn raw_start(client: &reqwest::Client, args: &[String]) -> Result<Duration> {
    let port = free_port();
    let mut args = args.to_vec();
    if let Some(index) = args.iter().position(|arg| arg == "--port") {
        if let Some(value) = args.get_mut(index + 1) {
            *value = port.to_string();
        }
    }
    let start = Instant::now();
    let mut child = tokio::process::Command::new(llama_server())
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}/health");
    let took = loop {
        if let Ok(response) = client.get(&url).send().await {
            if response.status() == 200 {
                break start.elapsed();
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!("llama-server exited with {status}");
        }
        if start.elapsed() > DEADLINE {
            bail!("llama-server not healthy within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    child.kill().await?;
    Ok(took)
}

pub fn restart_latency() -> Result<()> {
    runtime()?.block_on(measure_restart())
}

async fn measure_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let model = dir.path().join("tiny.gguf");
    LlamaSpec::default().write_to(&model)?;
    let engine = engine(dir.path()).await?;
    let llama = engine.llama().clone();
    llama.set_policy(SupervisionPolicy {
        restart: RestartPolicy {
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            start_limit: u32::MAX,
            ..RestartPolicy::default()
        },
        ..SupervisionPolicy::default()
    });
    llama.create(instance(&model))?;
    let mut events = engine.subscribe();
    let mut pid = llama.start("bench").await?.pid.context("pid")?;
    let mut detected = Vec::new();
    let mut spawned = Vec::new();
    let mut healthy = Vec::new();
    for _ in 0..RESTART_RUNS {
        let killed = Instant::now();
        kill_9(pid)?;
        detected.push(
            wait_for(&mut events, InstanceState::Crashed, killed)
                .await?
                .0,
        );
        let (at, new_pid) = wait_for(&mut events, InstanceState::Starting, killed).await?;
        spawned.push(at);
        healthy.push(
            wait_for(&mut events, InstanceState::Healthy, killed)
                .await?
                .0,
        );
        pid = new_pid.context("the replacement's pid")?;
    }
    engine.shutdown().await;
    let (detect_median, detect_p90) = median_p90(&mut detected);
    let (spawn_median, spawn_p90) = median_p90(&mut spawned);
    let (healthy_median, healthy_p90) = median_p90(&mut healthy);
    println!(
        "restart-latency: tiny llama model, kill -9 of the server, {RESTART_RUNS} times, backoff 0"
    );
    println!("  {:<44} {:>10} {:>10}", "", "median", "p90");
    row("kill -9 → crashed (exit seen)", detect_median, detect_p90);
    row("kill -9 → replacement spawned", spawn_median, spawn_p90);
    row("kill -9 → replacement healthy", healthy_median, healthy_p90);
    println!(
        "restart-latency: {:.1} ms (goal <= {} ms plus the backoff)",
        ms(spawn_median),
        RESTART_GOAL.as_millis()
    );
    Ok(())
}

#[cfg(unix)]
fn kill_9(pid: u32) -> Result<()> {
    use nix::sys::signal::{kill, Signal};
    kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid)?),
        Signal::SIGKILL,
    )?;
    Ok(())
}

#[cfg(not(unix))]
fn kill_9(_pid: u32) -> Result<()> {
    bail!("restart-latency kills the server with SIGKILL: unix only")
}

/// Time from `since` until `bench` reaches `state`, with the pid then.
async fn wait_for(
    events: &mut broadcast::Receiver<EngineEvent>,
    state: InstanceState,
    since: Instant,
) -> Result<(Duration, Option<u32>)> {
    loop {
        let left = DEADLINE.saturating_sub(since.elapsed());
        match tokio::time::timeout(left, events.recv()).await {
            Err(_) => bail!("no {state:?} within {DEADLINE:?}"),
            Ok(Ok(EngineEvent::LlamaState(change))) if change.to == state => {
                return Ok((since.elapsed(), change.pid));
            }
            Ok(Ok(EngineEvent::LlamaState(change))) if change.to == InstanceState::Failed => {
                bail!("the instance failed: {}", change.reason);
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => bail!("events: {error}"),
        }
    }
}

pub(crate) fn median_p90(times: &mut [Duration]) -> (Duration, Duration) {
    (percentile(times, 0.5), percentile(times, 0.9))
}

/// The value below which `fraction` of `times` lie (sorts them).
pub(crate) fn percentile(times: &mut [Duration], fraction: f64) -> Duration {
    times.sort();
    let index = ((times.len() as f64 - 1.0) * fraction).round() as usize;
    times.get(index).copied().unwrap_or_default()
}

pub(crate) fn row(what: &str, median: Duration, p90: Duration) {
    println!("  {what:<44} {:>7.1} ms {:>7.1} ms", ms(median), ms(p90));
}

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
