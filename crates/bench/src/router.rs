//! `router`: what the Switchyard endpoint adds, against the same work done by hand
//! through the manager, in the same run, with the same model (a generated llama of
//! ~64 MiB, so its weights set its memory) and the real llama-server:
//!
//! - cold: a request for a model not loaded → its first streamed token through the
//!   endpoint, against `llama().start()` + the first token from the server's own
//!   port.
//! - warm: request latency through the endpoint against the server's own port
//!   (with its key), interleaved, 4 concurrent clients: `/tokenize` (no decoding:
//!   the endpoint's own cost, the goal's figure) and a one-token chat (the
//!   server's work dominates, shown for scale).
//! - swap: with a budget that fits one model, a request for B while A is loaded →
//!   B's first token, against `llama().stop(A)` + `llama().start(B)` + the first
//!   token by hand.
//!
//! Each figure is the median (p99 for warm) of the endpoint minus the reference;
//! the last line is the worst of the three in milliseconds.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use switchyard_engine::llama::InstanceState;
use switchyard_engine::orchestrator::{OrchestratorEvent, OrchestratorPolicy};
use switchyard_engine::{Engine, EngineEvent};
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::{FakeProbe, GIB};
use tokio::sync::broadcast;

use crate::llama::{engine_on, instance, median_p90, ms, percentile, row, runtime};

const RUNS: usize = 9;
const WARM_CLIENTS: usize = 4;
/// Per client, each through the endpoint and directly.
const WARM_TOKENIZE: usize = 250;
const WARM_CHATS: usize = 10;
const COLD_GOAL_MS: f64 = 50.0;
const WARM_GOAL_MS: f64 = 1.0;
const SWAP_GOAL_MS: f64 = 100.0;
/// The probe's RAM, for the budget's threshold.
const RAM_GIB: u64 = 16;

pub fn run() -> Result<()> {
    runtime()?.block_on(measure())
}

/// The engine, the endpoint and what talking to the servers directly needs.
struct Rig {
    engine: Engine,
    base: String,
    client: reqwest::Client,
    state_dir: std::path::PathBuf,
}

impl Rig {
    /// The key `name`'s server accepts in this run (the last line of its key file,
    /// written at each start), which the endpoint adds for its clients.
    fn key(&self, name: &str) -> Result<String> {
        let file = self.state_dir.join(format!("llama-{name}.key"));
        let keys = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
        Ok(keys.lines().last().context("an empty key file")?.to_owned())
    }

    /// `name`'s own server, `http://127.0.0.1:port`, while it runs.
    fn server(&self, name: &str) -> Result<String> {
        self.engine
            .llama()
            .status(name)?
            .endpoint
            .with_context(|| format!("{name} runs no server"))
    }

    /// Started by hand: `llama().start()` + the first token from its own port.
    async fn start_by_hand(&self, name: &str) -> Result<(Duration, Duration)> {
        let started = Instant::now();
        self.engine.llama().start(name).await?;
        let healthy = started.elapsed();
        let (server, key) = (self.server(name)?, self.key(name)?);
        first_token(&self.client, &server, Some(&key), name).await?;
        Ok((healthy, started.elapsed()))
    }

    /// Only `name` loaded (by hand), nothing else.
    async fn only(&self, name: &str) -> Result<()> {
        for status in self.engine.llama().list() {
            if status.spec.name != name && is_running(status.state) {
                self.engine.llama().stop(&status.spec.name).await?;
            }
        }
        if !is_running(self.engine.llama().status(name)?.state) {
            self.engine.llama().start(name).await?;
        }
        Ok(())
    }
}

fn is_running(state: InstanceState) -> bool {
    matches!(state, InstanceState::Healthy | InstanceState::Unhealthy)
}

async fn measure() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = engine_on(dir.path(), Arc::new(FakeProbe::cpu_only(RAM_GIB))).await?;
    // Sized so that the weights (not the runtime) set its memory, as the router's
    // tests do.
    let model = LlamaSpec {
        embedding: 512,
        heads: 8,
        kv_heads: 4,
        feed_forward: 1024,
        vocab: 16_384,
        ..LlamaSpec::default()
    };
    for name in ["a", "b"] {
        let path = dir.path().join(format!("{name}.gguf"));
        model.write_to(&path)?;
        engine.llama().create(spec(name, &path))?;
    }
    let address = engine.router().serve("127.0.0.1", 0).await?;
    let rig = Rig {
        base: format!("http://{address}"),
        client: reqwest::Client::builder().no_proxy().build()?,
        state_dir: dir.path().join("data/state"),
        engine,
    };

    // Warm-up: `--help` read once, the page cache holding both models, both paths
    // taken once; then a budget that fits one model.
    first_token(&rig.client, &rig.base, None, "a").await?;
    let held = rig
        .engine
        .routed_models()
        .into_iter()
        .find(|model| model.id == "a")
        .and_then(|model| model.ram_bytes)
        .context("a's memory")?;
    rig.engine.unload_model("a").await?;
    rig.start_by_hand("b").await?;
    rig.engine.llama().stop("b").await?;

    let cold = cold(&rig).await?;
    let warm = warm(&rig).await?;
    #[allow(clippy::cast_precision_loss)]
    let threshold = 1.5 * held as f64 / (RAM_GIB * GIB) as f64;
    rig.engine.orchestrator().set_policy(OrchestratorPolicy {
        threshold,
        ..rig.engine.orchestrator().policy()
    });
    let swap = swap(&rig).await?;
    rig.engine.shutdown().await;

    println!(
        "router: generated llama (~{} MiB held), -c 512, 4 slots; {RUNS} runs each, by hand and through the endpoint interleaved",
        held / (1024 * 1024)
    );
    println!("  {:<52} {:>10} {:>10}", "", "median", "p90");
    let cold_extra = cold.print();
    let warm_extra = warm.print();
    let swap_extra = swap.print(held);
    println!(
        "  {:<52} {cold_extra:>+7.1} ms (goal <= {COLD_GOAL_MS} ms)",
        "extra: cold request → first token (median)"
    );
    println!(
        "  {:<52} {warm_extra:>+7.2} ms (goal <= {WARM_GOAL_MS} ms)",
        "extra: warm /tokenize p99, 4 clients"
    );
    println!(
        "  {:<52} {swap_extra:>+7.1} ms (goal <= {SWAP_GOAL_MS} ms)",
        "extra: swap → first token (median)"
    );
    let (worst, which) = [
        (cold_extra, "cold"),
        (warm_extra, "warm p99"),
        (swap_extra, "swap"),
    ]
    .into_iter()
    .max_by(|a, b| a.0.total_cmp(&b.0))
    .unwrap_or((0.0, "none"));
    println!(
        "router: {worst:+.1} ms, worst of cold, warm p99 and swap: {which} (goal cold <= {COLD_GOAL_MS} ms, warm p99 <= {WARM_GOAL_MS} ms, swap <= {SWAP_GOAL_MS} ms)"
    );
    Ok(())
}

fn spec(name: &str, model: &Path) -> switchyard_engine::llama::InstanceSpec {
    let mut spec = instance(model);
    spec.name = name.to_owned();
    spec.config.parallel = u32::try_from(WARM_CLIENTS).unwrap_or(1);
    spec
}

/// The median of the per-run differences `ours - reference`, in ms (signed: the
/// endpoint may beat the reference when the machine was busier then).
fn median_extra(ours: &[Duration], reference: &[Duration]) -> f64 {
    let mut extra: Vec<f64> = ours
        .iter()
        .zip(reference)
        .map(|(ours, reference)| ms(*ours) - ms(*reference))
        .collect();
    extra.sort_by(f64::total_cmp);
    extra.get(extra.len() / 2).copied().unwrap_or_default()
}

/// Per run: `ours - reference`.
fn minus(ours: &[Duration], reference: &[Duration]) -> Vec<Duration> {
    ours.iter()
        .zip(reference)
        .map(|(ours, reference)| ours.saturating_sub(*reference))
        .collect()
}

/// Each run's extra, in the order run.
fn print_runs(ours: &[Duration], reference: &[Duration]) {
    let runs: Vec<String> = ours
        .iter()
        .zip(reference)
        .map(|(ours, reference)| format!("{:+.0}", ms(*ours) - ms(*reference)))
        .collect();
    println!("  {:<52} {} ms", "  each run's extra", runs.join(", "));
}

fn print_row(label: &str, values: &[Duration]) {
    let mut values = values.to_vec();
    let (median, p90) = median_p90(&mut values);
    row(label, median, p90);
}

struct Cold {
    hand_healthy: Vec<Duration>,
    hand_total: Vec<Duration>,
    endpoint_load: Vec<Duration>,
    endpoint_total: Vec<Duration>,
}

impl Cold {
    fn print(&self) -> f64 {
        print_row("cold, by hand: llama().start → healthy", &self.hand_healthy);
        print_row("cold, by hand: start → first token", &self.hand_total);
        print_row(
            "cold, endpoint: load (the router's ModelLoaded)",
            &self.endpoint_load,
        );
        print_row(
            "cold, endpoint: request → first token",
            &self.endpoint_total,
        );
        print_row(
            "cold, by hand: healthy → first token",
            &minus(&self.hand_total, &self.hand_healthy),
        );
        print_row(
            "cold, endpoint: loaded → first token",
            &minus(&self.endpoint_total, &self.endpoint_load),
        );
        print_runs(&self.endpoint_total, &self.hand_total);
        median_extra(&self.endpoint_total, &self.hand_total)
    }
}

async fn cold(rig: &Rig) -> Result<Cold> {
    let mut cold = Cold {
        hand_healthy: Vec::new(),
        hand_total: Vec::new(),
        endpoint_load: Vec::new(),
        endpoint_total: Vec::new(),
    };
    for _ in 0..RUNS {
        let (healthy, total) = rig.start_by_hand("a").await?;
        cold.hand_healthy.push(healthy);
        cold.hand_total.push(total);
        rig.engine.llama().stop("a").await?;

        let mut events = rig.engine.subscribe();
        let started = Instant::now();
        first_token(&rig.client, &rig.base, None, "a").await?;
        cold.endpoint_total.push(started.elapsed());
        let (_, load) = placements(&mut events, "a");
        cold.endpoint_load
            .push(load.context("the router reported no load of a")?);
        rig.engine.unload_model("a").await?;
    }
    Ok(cold)
}

struct Warm {
    tokenize_direct: Vec<Duration>,
    tokenize_endpoint: Vec<Duration>,
    chat_direct: Vec<Duration>,
    chat_endpoint: Vec<Duration>,
}

impl Warm {
    fn print(&self) -> f64 {
        println!("  {:<52} {:>10} {:>10}", "", "p50", "p99");
        let mut worst = 0.0;
        for (label, direct, endpoint, counts) in [
            (
                "warm /tokenize",
                &self.tokenize_direct,
                &self.tokenize_endpoint,
                true,
            ),
            (
                "warm chat, 1 token",
                &self.chat_direct,
                &self.chat_endpoint,
                false,
            ),
        ] {
            let (mut direct, mut endpoint) = (direct.clone(), endpoint.clone());
            let direct = (percentile(&mut direct, 0.5), percentile(&mut direct, 0.99));
            let endpoint = (
                percentile(&mut endpoint, 0.5),
                percentile(&mut endpoint, 0.99),
            );
            row(&format!("{label}: server's own port"), direct.0, direct.1);
            row(&format!("{label}: endpoint"), endpoint.0, endpoint.1);
            println!(
                "  {:<52} {:>+7.2} ms {:>+7.2} ms",
                format!("{label}: added"),
                ms(endpoint.0) - ms(direct.0),
                ms(endpoint.1) - ms(direct.1)
            );
            if counts {
                worst = ms(endpoint.1) - ms(direct.1);
            }
        }
        println!("  {:<52} {:>10} {:>10}", "", "median", "p90");
        worst
    }
}

async fn warm(rig: &Rig) -> Result<Warm> {
    first_token(&rig.client, &rig.base, None, "a").await?;
    let server = rig.server("a")?;
    let key = rig.key("a")?;
    // Connections pooled, both paths taken.
    for _ in 0..10 {
        tokenize(&rig.client, &server, Some(&key)).await?;
        tokenize(&rig.client, &rig.base, None).await?;
    }
    let mut workers = Vec::new();
    for _ in 0..WARM_CLIENTS {
        let (client, base, server, key) = (
            rig.client.clone(),
            rig.base.clone(),
            server.clone(),
            key.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut times: [Vec<Duration>; 4] = Default::default();
            for _ in 0..WARM_TOKENIZE {
                times[0].push(tokenize(&client, &server, Some(&key)).await?);
                times[1].push(tokenize(&client, &base, None).await?);
            }
            for _ in 0..WARM_CHATS {
                times[2].push(chat(&client, &server, Some(&key)).await?);
                times[3].push(chat(&client, &base, None).await?);
            }
            anyhow::Ok(times)
        }));
    }
    let mut all: [Vec<Duration>; 4] = Default::default();
    for worker in workers {
        for (all, times) in all.iter_mut().zip(worker.await??) {
            all.extend(times);
        }
    }
    let [tokenize_direct, tokenize_endpoint, chat_direct, chat_endpoint] = all;
    Ok(Warm {
        tokenize_direct,
        tokenize_endpoint,
        chat_direct,
        chat_endpoint,
    })
}

struct Swap {
    hand_stop: Vec<Duration>,
    hand_total: Vec<Duration>,
    endpoint_load: Vec<Duration>,
    endpoint_total: Vec<Duration>,
    placements: Vec<String>,
}

impl Swap {
    fn print(&self, held: u64) -> f64 {
        print_row("swap, by hand: llama().stop(A)", &self.hand_stop);
        print_row(
            "swap, by hand: stop A + start B → first token",
            &self.hand_total,
        );
        print_row(
            "swap, endpoint: unload A + load B (ModelLoaded)",
            &self.endpoint_load,
        );
        print_row(
            "swap, endpoint: request for B → first token",
            &self.endpoint_total,
        );
        print_row(
            "swap, endpoint: loaded → first token",
            &minus(&self.endpoint_total, &self.endpoint_load),
        );
        print_runs(&self.endpoint_total, &self.hand_total);
        println!(
            "  swap budget: 1.5 × {} MiB; the router's last swap: {}",
            held / (1024 * 1024),
            self.placements.join(", ")
        );
        median_extra(&self.endpoint_total, &self.hand_total)
    }
}

async fn swap(rig: &Rig) -> Result<Swap> {
    let mut swap = Swap {
        hand_stop: Vec::new(),
        hand_total: Vec::new(),
        endpoint_load: Vec::new(),
        endpoint_total: Vec::new(),
        placements: Vec::new(),
    };
    for _ in 0..RUNS {
        rig.only("a").await?;
        let started = Instant::now();
        rig.engine.llama().stop("a").await?;
        swap.hand_stop.push(started.elapsed());
        rig.start_by_hand("b").await?;
        swap.hand_total.push(started.elapsed());

        rig.only("a").await?;
        let mut events = rig.engine.subscribe();
        let started = Instant::now();
        first_token(&rig.client, &rig.base, None, "b").await?;
        swap.endpoint_total.push(started.elapsed());
        let (placements, load) = placements(&mut events, "b");
        if !placements.iter().any(|seen| seen.starts_with("unload a")) {
            bail!("the budget fits both: the router did not swap ({placements:?})");
        }
        swap.endpoint_load
            .push(load.context("the router reported no load of b")?);
        swap.placements = placements;
    }
    Ok(swap)
}

/// The router's loads and unloads seen, in words, and the load time of `instance`
/// it reported.
fn placements(
    events: &mut broadcast::Receiver<EngineEvent>,
    instance: &str,
) -> (Vec<String>, Option<Duration>) {
    let mut seen = Vec::new();
    let mut load = None;
    while let Ok(event) = events.try_recv() {
        match event {
            EngineEvent::Orchestrator(OrchestratorEvent::ModelLoaded {
                instance: which,
                load_ms,
                ..
            }) => {
                if which == instance {
                    load = Some(Duration::from_millis(load_ms));
                }
                seen.push(format!("load {which} in {load_ms} ms"));
            }
            EngineEvent::Orchestrator(OrchestratorEvent::ModelUnloaded {
                instance,
                reason,
                ..
            }) => seen.push(format!("unload {instance} ({reason})")),
            _ => {}
        }
    }
    (seen, load)
}

fn with_key(request: reqwest::RequestBuilder, key: Option<&str>) -> reqwest::RequestBuilder {
    match key {
        Some(key) => request.bearer_auth(key),
        None => request,
    }
}

/// A streamed chat for `model` at `base`: the time to the first chunk that
/// carries generated text (the stream is then read to its end).
async fn first_token(
    client: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    model: &str,
) -> Result<Duration> {
    let started = Instant::now();
    let request = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({
            "model": model,
            "messages": [{"role": "user", "content": "Say hi"}],
            "max_tokens": 2,
            "ignore_eos": true,
            "seed": 1,
            "stream": true,
        }));
    let mut response = with_key(request, key).send().await?;
    if response.status() != 200 {
        bail!(
            "{model} at {base}: {} {}",
            response.status(),
            response.text().await?
        );
    }
    let mut text = String::new();
    let mut first = None;
    while let Some(chunk) = response.chunk().await? {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if first.is_none() && carries_text(&text) {
            first = Some(started.elapsed());
        }
    }
    first.with_context(|| format!("{model} at {base}: no token in {text}"))
}

/// Whether a server-sent event in `text` carries generated text (an empty string
/// too: a token that ends mid-character).
fn carries_text(text: &str) -> bool {
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .any(|event| event["choices"][0]["delta"]["content"].is_string())
}

async fn tokenize(client: &reqwest::Client, base: &str, key: Option<&str>) -> Result<Duration> {
    let started = Instant::now();
    let request = client
        .post(format!("{base}/tokenize"))
        .json(&json!({"model": "a", "content": "Say hi to the switch yard"}));
    let response = with_key(request, key).send().await?;
    if response.status() != 200 {
        bail!("/tokenize at {base}: {}", response.status());
    }
    response.bytes().await?;
    Ok(started.elapsed())
}

async fn chat(client: &reqwest::Client, base: &str, key: Option<&str>) -> Result<Duration> {
    let started = Instant::now();
    let request = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({
            "model": "a",
            "messages": [{"role": "user", "content": "Say hi"}],
            "max_tokens": 1,
            "seed": 1,
        }));
    let response = with_key(request, key).send().await?;
    if response.status() != 200 {
        bail!("the chat at {base}: {}", response.status());
    }
    response.bytes().await?;
    Ok(started.elapsed())
}
