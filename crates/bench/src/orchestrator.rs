//! `offload` and `proxy`: what the orchestrator and the stable endpoint add.
//!
//! - offload: an image that needs the LLM's memory, from the request to the LLM
//!   healthy again, split into stop / wait for memory / generate / reload, against
//!   the same parts done by hand in the same run: `llama().stop` + `llama().start`
//!   of the same server and the same image with no LLM running. The machine is a
//!   probe reporting 1 GiB of RAM, so every image offloads the tiny LLM.
//!   Then the same cycle with three clients chatting through the endpoint all along
//!   (requests failed, the longest request's extra wait, the drain and the stop of
//!   a busy server), in a line `offload-clients: <failed requests> (goal 0)`.
//! - proxy: request latency through the instance's endpoint against llama-server
//!   directly, interleaved so drift hits both alike: `/health` from 4 concurrent
//!   clients (the proxy's own cost under load) and a one-token chat completion.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use switchyard_engine::diffusion::{
    DiffusionModelFiles, ImageRequest, ImageServiceOptions, JobStatus, RunnerKind,
};
use switchyard_engine::engine::ImageServerConfig;
use switchyard_engine::orchestrator::{OrchestratorEvent, OrchestratorPolicy};
use switchyard_engine::{Engine, EngineEvent};
use switchyard_testkit::chat_clients::{ChatTally, ChattingClients, ClientPlan};
use switchyard_testkit::gguf::{write_sdxs_512, LlamaSpec};
use switchyard_testkit::tools::sd_cli;
use switchyard_testkit::{FakeProbe, GIB};
use tokio::sync::broadcast;

use crate::llama::{engine_on, instance, median_p90, ms, percentile, row, runtime};

const OFFLOAD_RUNS: usize = 5;
const OFFLOAD_GOAL: Duration = Duration::from_millis(500);
const HEALTH_REQUESTS: usize = 2_000;
const HEALTH_CLIENTS: usize = 4;
const CHAT_REQUESTS: usize = 100;
const PROXY_GOAL: Duration = Duration::from_millis(5);
const DEADLINE: Duration = Duration::from_secs(120);

pub fn offload() -> Result<()> {
    runtime()?.block_on(measure_offload())
}

fn small_image(seed: i64) -> ImageRequest {
    ImageRequest {
        width: 64,
        height: 64,
        steps: 1,
        cfg_scale: 1.0,
        seed: Some(seed),
        ..ImageRequest::new("a switch yard at dusk")
    }
}

/// One offloaded image's phases, from the orchestrator's own events.
#[derive(Debug, Default, Clone, Copy)]
struct Phases {
    /// Requests in flight finished (or cut at the drain time), before the stop.
    drain: Duration,
    /// Requests cut at the drain time (sent again or ended with an error event).
    cut: u64,
    stop: Duration,
    generate: Duration,
    memory_wait: Duration,
    reload: Duration,
    total: Duration,
}

async fn measure_offload() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let llm = dir.path().join("tiny.gguf");
    LlamaSpec::default().write_to(&llm)?;
    let sdxs = dir.path().join("sdxs.gguf");
    write_sdxs_512(&sdxs, 7)?;
    let probe = Arc::new(FakeProbe::cpu_only(16).with_ram_bytes(GIB));
    let engine = engine_on(dir.path(), probe).await?;
    engine.orchestrator().set_policy(OrchestratorPolicy {
        poll_ms: 5,
        ..OrchestratorPolicy::default()
    });
    engine
        .start_image_server(ImageServerConfig {
            files: Some(DiffusionModelFiles::single(&sdxs)),
            sd_binary: Some(sd_cli()),
            port: Some(0),
            options: ImageServiceOptions {
                runner: RunnerKind::Cli,
                threads: Some(2),
                ..ImageServiceOptions::default()
            },
            ..ImageServerConfig::default()
        })
        .await?;
    let llama = engine.llama().clone();
    llama.create(instance(&llm))?;

    // Warm-up: `--help` read once, the page cache holding both models.
    llama.start("bench").await?;
    let (mut raw_stop, mut raw_start, mut raw_generate) = (Vec::new(), Vec::new(), Vec::new());
    let mut phases = Vec::new();
    // Each run does the parts by hand, then the offload, so a busy moment of the
    // machine hits both alike.
    for run in 0..OFFLOAD_RUNS {
        let seed = i64::try_from(run)?;
        let started = Instant::now();
        llama.stop("bench").await?;
        raw_stop.push(started.elapsed());
        let started = Instant::now();
        let id = engine.generate_image(small_image(seed))?;
        wait_image(&engine, &id).await?;
        raw_generate.push(started.elapsed());
        let started = Instant::now();
        llama.start("bench").await?;
        raw_start.push(started.elapsed());

        // Only this offload's events.
        let mut events = engine.subscribe();
        let started = Instant::now();
        engine.generate_image(small_image(seed))?;
        phases.push(follow_offload(&mut events, started).await?);
    }
    let clients = offload_with_clients(&engine, &llm).await?;
    engine.shutdown().await;

    // Per run: what the offload took beyond its own image and the same run's stop
    // and start by hand (the image's time is sd's, whatever the machine's load).
    // Signed: a reload can beat the start by hand when the machine was busier then.
    let mut overhead: Vec<f64> = phases
        .iter()
        .zip(raw_stop.iter().zip(&raw_start))
        .map(|(phase, (stop, start))| ms(phase.total) - ms(phase.generate + *stop + *start))
        .collect();
    overhead.sort_by(f64::total_cmp);
    let overhead_median = overhead
        .get(overhead.len() / 2)
        .copied()
        .unwrap_or_default();
    let overhead_worst = overhead.last().copied().unwrap_or_default();
    println!(
        "offload: tiny llama model + random SDXS-512 on sd-cli (64², 1 step), 1 GiB budget, {OFFLOAD_RUNS} runs"
    );
    println!("  {:<44} {:>10} {:>10}", "", "median", "p90");
    for (label, mut values) in [
        ("by hand: llama().stop", raw_stop),
        ("by hand: llama().start → healthy", raw_start),
        ("by hand: the image alone (no LLM running)", raw_generate),
        (
            "offload: stop (saved, requests held)",
            phases.iter().map(|p| p.stop).collect(),
        ),
        (
            "offload: generate (gate open → image done)",
            phases.iter().map(|p| p.generate).collect(),
        ),
        (
            "offload: wait for memory",
            phases.iter().map(|p| p.memory_wait).collect(),
        ),
        (
            "offload: reload → healthy",
            phases.iter().map(|p| p.reload).collect(),
        ),
        (
            "offload: request → LLM healthy again",
            phases.iter().map(|p| p.total).collect(),
        ),
    ] {
        let (median, p90) = median_p90(&mut values);
        row(label, median, p90);
    }
    println!(
        "  {:<44} {overhead_median:>7.1} ms {overhead_worst:>7.1} ms (median, worst)",
        "overhead: total - image - stop - start"
    );
    clients.print();
    println!(
        "offload-clients: {} failed requests (goal 0)",
        clients.tally.failures.len() + clients.busy_tally.failures.len()
    );
    println!(
        "offload: {overhead_median:+.1} ms beyond stop + start of the server (goal <= {} ms)",
        OFFLOAD_GOAL.as_millis()
    );
    Ok(())
}

/// Tokens per client's answer: a client that is always talking is always in flight,
/// so every offload meets answers being written. Three slots of 512 tokens of
/// context hold about 170 each, the prompt included.
const CLIENT_MAX_TOKENS: u32 = 100;
const CLIENT_PLANS: [ClientPlan; 3] = [
    ClientPlan {
        stream: false,
        max_tokens: CLIENT_MAX_TOKENS,
        model: None,
    },
    ClientPlan {
        stream: false,
        max_tokens: CLIENT_MAX_TOKENS,
        model: None,
    },
    ClientPlan {
        stream: true,
        max_tokens: CLIENT_MAX_TOKENS,
        model: None,
    },
];

/// The offload cycle again with three clients (one streaming) chatting through
/// the endpoint all along.
struct WithClients {
    tally: ChatTally,
    /// The longest request while nothing was offloaded.
    quiet_longest: Duration,
    /// Per offload: requests in flight drained, and the stop of the server after it.
    drains: Vec<Duration>,
    stops: Vec<Duration>,
    cut: u64,
    /// The same with no drain time: every offload cuts answers under way.
    busy_tally: ChatTally,
    busy_stops: Vec<Duration>,
    busy_cut: u64,
}

impl WithClients {
    fn print(&self) {
        println!(
            "offload with 3 clients chatting through the endpoint (2 plain, 1 streamed, {CLIENT_MAX_TOKENS} tokens each), {OFFLOAD_RUNS} images, default drain time:"
        );
        let tally = &self.tally;
        println!(
            "  requests: {} complete, {} failed, {} streams ended with an error event {:?}, {} cut and sent again",
            tally.complete,
            tally.failures.len(),
            tally.ended_with_error_event.values().sum::<u64>(),
            tally.ended_with_error_event,
            self.cut
        );
        for failure in tally.failures.iter().take(5) {
            println!("    failed: {failure}");
        }
        let busy = &self.busy_tally;
        println!(
            "  with no drain time: {} complete, {} failed, {} streams ended with an error event {:?}, {} cut",
            busy.complete,
            busy.failures.len(),
            busy.ended_with_error_event.values().sum::<u64>(),
            busy.ended_with_error_event,
            self.busy_cut
        );
        for failure in busy.failures.iter().take(5) {
            println!("    failed: {failure}");
        }
        let (mut drains, mut stops) = (self.drains.clone(), self.stops.clone());
        let (drain_median, drain_p90) = median_p90(&mut drains);
        let (stop_median, stop_p90) = median_p90(&mut stops);
        let (busy_median, busy_p90) = median_p90(&mut self.busy_stops.clone());
        println!("  {:<44} {:>10} {:>10}", "", "median", "p90");
        row(
            "drain: requests in flight finished",
            drain_median,
            drain_p90,
        );
        row("stop after the drain", stop_median, stop_p90);
        row(
            "stop of the busy server (no drain, cut)",
            busy_median,
            busy_p90,
        );
        row(
            "longest request: quiet vs through offloads",
            self.quiet_longest,
            tally.longest,
        );
        println!(
            "  {:<44} {:>7.1} ms",
            "longest request's extra wait",
            ms(tally.longest.saturating_sub(self.quiet_longest))
        );
    }
}

async fn offload_with_clients(engine: &Engine, llm: &std::path::Path) -> Result<WithClients> {
    let llama = engine.llama();
    llama.stop("bench").await?;
    let mut spec = instance(llm);
    spec.config.parallel = 3;
    llama.update(spec)?;
    let status = llama.start("bench").await?;
    let endpoint = status.api_endpoint.context("the endpoint's address")?;
    let clients = ChattingClients::start(&endpoint, &CLIENT_PLANS);
    if !clients.wait_for_requests(9, DEADLINE).await {
        bail!("the clients got no answers: {:?}", clients.finish().await);
    }
    let quiet_longest = clients.tally().longest;
    let (mut drains, mut stops, mut cut) = (Vec::new(), Vec::new(), 0);
    for run in 0..OFFLOAD_RUNS {
        let phases = offload_between_answers(engine, &clients, run).await?;
        drains.push(phases.drain);
        stops.push(phases.stop);
        cut += phases.cut;
    }
    let tally = clients.finish().await;
    // Then with no drain time: the answers under way are cut, and the stop is that
    // of a server still busy with them.
    let policy = engine.orchestrator().policy();
    engine.orchestrator().set_policy(OrchestratorPolicy {
        drain_ms: 0,
        ..policy
    });
    let clients = ChattingClients::start(&endpoint, &CLIENT_PLANS);
    let (mut busy_stops, mut busy_cut) = (Vec::new(), 0);
    for run in 0..OFFLOAD_RUNS {
        let phases = offload_between_answers(engine, &clients, run).await?;
        busy_stops.push(phases.stop);
        busy_cut += phases.cut;
    }
    let busy_tally = clients.finish().await;
    engine.orchestrator().set_policy(policy);
    Ok(WithClients {
        tally,
        quiet_longest,
        drains,
        stops,
        cut,
        busy_tally,
        busy_stops,
        busy_cut,
    })
}

/// One image while the clients talk, then (before the next) answers from the
/// reloaded server.
async fn offload_between_answers(
    engine: &Engine,
    clients: &ChattingClients,
    run: usize,
) -> Result<Phases> {
    let mut events = engine.subscribe();
    let started = Instant::now();
    engine.generate_image(small_image(i64::try_from(run)?))?;
    let phases = follow_offload(&mut events, started).await?;
    if !clients.wait_for_requests(3, DEADLINE).await {
        bail!("no answers after the reload: {:?}", clients.tally());
    }
    Ok(phases)
}

async fn wait_image(engine: &Engine, id: &str) -> Result<()> {
    let view = engine.wait_image_job(id, DEADLINE).await?;
    if view.status != JobStatus::Complete {
        bail!("the image ended {:?}: {:?}", view.status, view.error);
    }
    Ok(())
}

/// The phases of the offload the image submitted at `started` causes.
async fn follow_offload(
    events: &mut broadcast::Receiver<EngineEvent>,
    started: Instant,
) -> Result<Phases> {
    let mut phases = Phases::default();
    let mut offloaded_at = None;
    let mut image_at = None;
    loop {
        let left = DEADLINE.saturating_sub(started.elapsed());
        let event = tokio::time::timeout(left, events.recv())
            .await
            .context("no reload within the deadline")?;
        match event {
            Ok(EngineEvent::Orchestrator(OrchestratorEvent::Offloaded {
                drain_ms,
                cut_requests,
                stop_ms,
                ..
            })) => {
                phases.drain = Duration::from_millis(drain_ms);
                phases.cut = cut_requests;
                phases.stop = Duration::from_millis(stop_ms);
                offloaded_at = Some(started.elapsed());
            }
            Ok(EngineEvent::ImageJobChanged(job)) if job.status == JobStatus::Complete => {
                image_at = Some(started.elapsed());
            }
            Ok(EngineEvent::ImageJobChanged(job)) if job.status.is_finished() => {
                bail!("the image ended {:?}: {:?}", job.status, job.error);
            }
            Ok(EngineEvent::Orchestrator(OrchestratorEvent::Reloaded {
                memory_wait_ms,
                start_ms,
                ..
            })) => {
                let (Some(offloaded), Some(image)) = (offloaded_at, image_at) else {
                    bail!("reloaded before an offload and an image");
                };
                phases.generate = image.saturating_sub(offloaded);
                phases.memory_wait = Duration::from_millis(memory_wait_ms);
                phases.reload = Duration::from_millis(start_ms);
                phases.total = started.elapsed();
                return Ok(phases);
            }
            Ok(EngineEvent::Orchestrator(OrchestratorEvent::ReloadFailed { error, .. })) => {
                bail!("the reload failed: {}", error.message);
            }
            Ok(_) => {}
            Err(error) => bail!("events: {error}"),
        }
    }
}

pub fn proxy() -> Result<()> {
    runtime()?.block_on(measure_proxy())
}

async fn measure_proxy() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let llm = dir.path().join("tiny.gguf");
    LlamaSpec::default().write_to(&llm)?;
    let engine = engine_on(dir.path(), Arc::new(FakeProbe::cpu_only(16))).await?;
    let llama = engine.llama().clone();
    let mut spec = instance(&llm);
    spec.config.parallel = HEALTH_CLIENTS as u32;
    llama.create(spec)?;
    let status = llama.start("bench").await?;
    let direct = status.endpoint.context("the server's address")?;
    let proxied = status.api_endpoint.context("the endpoint's address")?;
    // The server's own port wants Switchyard's key for this run (the last line of
    // its key file), which the endpoint adds for its clients.
    let key_file = dir.path().join("data/state/llama-bench.key");
    let key = std::fs::read_to_string(&key_file)?;
    let key = key.lines().last().context("an empty key file")?;
    let mut with_key = reqwest::header::HeaderMap::new();
    with_key.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse()?,
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .default_headers(with_key)
        .build()?;

    // Warm-up: connections pooled, the model's first answer out of the way.
    for base in [&direct, &proxied] {
        for _ in 0..20 {
            health(&client, base).await?;
        }
        chat(&client, base).await?;
    }
    let (health_direct, health_proxied) = {
        let mut workers = Vec::new();
        for _ in 0..HEALTH_CLIENTS {
            let (client, direct, proxied) = (client.clone(), direct.clone(), proxied.clone());
            workers.push(tokio::spawn(async move {
                let mut times = (Vec::new(), Vec::new());
                for _ in 0..HEALTH_REQUESTS / HEALTH_CLIENTS {
                    times.0.push(health(&client, &direct).await?);
                    times.1.push(health(&client, &proxied).await?);
                }
                anyhow::Ok(times)
            }));
        }
        let mut all = (Vec::new(), Vec::new());
        for worker in workers {
            let (direct, proxied) = worker.await??;
            all.0.extend(direct);
            all.1.extend(proxied);
        }
        all
    };
    let mut chat_direct = Vec::new();
    let mut chat_proxied = Vec::new();
    for _ in 0..CHAT_REQUESTS {
        chat_direct.push(chat(&client, &direct).await?);
        chat_proxied.push(chat(&client, &proxied).await?);
    }
    let activity = llama.endpoint_activity("bench").unwrap_or_default();
    engine.shutdown().await;

    println!(
        "proxy: tiny llama model; /health x{HEALTH_REQUESTS} from {HEALTH_CLIENTS} clients, one-token chat x{CHAT_REQUESTS}, direct and proxied interleaved"
    );
    println!("  {:<44} {:>10} {:>10}", "", "p50", "p99");
    let mut worst_added = Duration::ZERO;
    for (label, mut direct, mut proxied) in [
        ("/health", health_direct, health_proxied),
        ("chat, 1 token", chat_direct, chat_proxied),
    ] {
        let (direct_p50, direct_p99) = p50_p99(&mut direct);
        let (proxied_p50, proxied_p99) = p50_p99(&mut proxied);
        row(&format!("{label}: direct"), direct_p50, direct_p99);
        row(
            &format!("{label}: through the endpoint"),
            proxied_p50,
            proxied_p99,
        );
        let added_p50 = proxied_p50.saturating_sub(direct_p50);
        let added_p99 = proxied_p99.saturating_sub(direct_p99);
        row(&format!("{label}: added"), added_p50, added_p99);
        worst_added = worst_added.max(added_p99);
    }
    println!(
        "  endpoint counters: {} forwarded, {} refused",
        activity.forwarded, activity.refused
    );
    println!(
        "proxy: +{:.2} ms at p99 (goal <= {} ms)",
        ms(worst_added),
        PROXY_GOAL.as_millis()
    );
    Ok(())
}

fn p50_p99(times: &mut [Duration]) -> (Duration, Duration) {
    (percentile(times, 0.5), percentile(times, 0.99))
}

async fn health(client: &reqwest::Client, base: &str) -> Result<Duration> {
    let started = Instant::now();
    let response = client.get(format!("{base}/health")).send().await?;
    if response.status() != 200 {
        bail!("/health answered {}", response.status());
    }
    response.bytes().await?;
    Ok(started.elapsed())
}

async fn chat(client: &reqwest::Client, base: &str) -> Result<Duration> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&serde_json::json!({
            "messages": [{"role": "user", "content": "Say hi"}],
            "max_tokens": 1,
            "seed": 1,
        }))
        .send()
        .await?;
    if response.status() != 200 {
        bail!("the chat answered {}", response.status());
    }
    response.bytes().await?;
    Ok(started.elapsed())
}
