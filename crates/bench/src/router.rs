//! `router`: what the Switchyard endpoint adds, against the same work done by hand
//! through the manager, in the same run, with the same model (a generated llama of
//! ~100 MiB, so its weights set its memory) and the real llama-server:
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
//! Cold and swap are split by the instance's state changes into call → spawned,
//! spawned → healthy (the server loading: the same work on both paths, and on a
//! busy machine most of the noise) and healthy → first token. Their figure is the
//! median over runs of the endpoint's time minus the reference's, each without its
//! server's loading; the plain difference is printed beside it. Warm's is the
//! difference of the p99s. The last line is the worst of the three.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use switchyard_engine::estimate::Budget;
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

    /// By hand: `llama().start()`, then the first token from the server's own port.
    async fn start_by_hand(&self, name: &str) -> Result<()> {
        self.engine.llama().start(name).await?;
        let (server, key) = (self.server(name)?, self.key(name)?);
        first_token(&self.client, &server, Some(&key), name).await?;
        Ok(())
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

    /// Runs `action`, which starts `name`'s server, and splits its time by the
    /// server's state changes; returns the engine's events meanwhile.
    async fn trial(
        &self,
        name: &str,
        into: &mut Phases,
        action: impl Future<Output = Result<()>>,
    ) -> Result<Vec<EngineEvent>> {
        let mut events = self.engine.subscribe();
        let called_ms = now_ms();
        let started = Instant::now();
        action.await?;
        let total = started.elapsed();
        let seen = drain(&mut events);
        let (spawned_ms, healthy_ms) = spawn_and_health(&seen, name)
            .with_context(|| format!("no spawn → healthy of {name} among the events"))?;
        into.before_spawn
            .push(Duration::from_millis(spawned_ms.saturating_sub(called_ms)));
        into.server
            .push(Duration::from_millis(healthy_ms.saturating_sub(spawned_ms)));
        into.total.push(total);
        Ok(seen)
    }
}

fn is_running(state: InstanceState) -> bool {
    matches!(state, InstanceState::Healthy | InstanceState::Unhealthy)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The events received so far (those a slow reader missed are skipped).
fn drain(events: &mut broadcast::Receiver<EngineEvent>) -> Vec<EngineEvent> {
    let mut seen = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => seen.push(event),
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return seen,
        }
    }
}

/// When `name`'s server was last spawned and then became healthy (ms, the
/// engine's clock).
fn spawn_and_health(events: &[EngineEvent], name: &str) -> Option<(u64, u64)> {
    let mut spawned = None;
    let mut healthy = None;
    for event in events {
        if let EngineEvent::LlamaState(change) = event {
            if change.name != name {
                continue;
            }
            match change.to {
                InstanceState::Starting => (spawned, healthy) = (Some(change.at_ms), None),
                InstanceState::Healthy if spawned.is_some() => healthy = Some(change.at_ms),
                _ => {}
            }
        }
    }
    Some((spawned?, healthy?))
}

/// The router's loads and unloads among `events`, in words.
fn placements(events: &[EngineEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            EngineEvent::Orchestrator(OrchestratorEvent::ModelLoaded {
                instance, load_ms, ..
            }) => Some(format!("load {instance} in {load_ms} ms")),
            EngineEvent::Orchestrator(OrchestratorEvent::ModelUnloaded {
                instance,
                reason,
                ..
            }) => Some(format!("unload {instance} ({reason})")),
            _ => None,
        })
        .collect()
}

async fn measure() -> Result<()> {
    let load_before = load_average();
    let dir = tempfile::tempdir()?;
    let engine = engine_on(dir.path(), Arc::new(FakeProbe::cpu_only(RAM_GIB))).await?;
    let model = LlamaSpec::weights_bound();
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
        "router: generated llama (~{} MiB held), -c 512, {WARM_CLIENTS} slots; {RUNS} runs each, by hand and through the endpoint interleaved",
        held / (1024 * 1024)
    );
    println!(
        "  the machine's load average (1 min) before and after: {load_before} and {}; other work on the cores shows in every figure",
        load_average()
    );
    println!("  {:<52} {:>10} {:>10}", "", "median", "p90");
    let (cold_extra, cold_plain) = cold.print();
    let warm_extra = warm.print();
    let (swap_extra, swap_plain) = swap.print(held);
    println!(
        "  {:<52} {cold_extra:>+7.1} ms (plain difference {cold_plain:+.1} ms; goal <= {COLD_GOAL_MS} ms)",
        "extra: cold request → first token (median)"
    );
    println!(
        "  {:<52} {warm_extra:>+7.2} ms (goal <= {WARM_GOAL_MS} ms)",
        "extra: warm /tokenize p99, 4 clients"
    );
    println!(
        "  {:<52} {swap_extra:>+7.1} ms (plain difference {swap_plain:+.1} ms; goal <= {SWAP_GOAL_MS} ms)",
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

/// The 1-minute load average (Linux), or `?`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn spec(name: &str, model: &Path) -> switchyard_engine::llama::InstanceSpec {
    let mut spec = instance(model);
    spec.name = name.to_owned();
    spec.config.parallel = u32::try_from(WARM_CLIENTS).unwrap_or(1);
    spec
}

/// A path to a first token, per run: the call → the server spawned, its loading
/// (spawned → healthy), and the whole.
#[derive(Default)]
struct Phases {
    before_spawn: Vec<Duration>,
    server: Vec<Duration>,
    total: Vec<Duration>,
}

impl Phases {
    /// Per run: the whole without the server's loading.
    fn without_server(&self) -> Vec<Duration> {
        minus(&self.total, &self.server)
    }

    fn print(&self, label: &str) {
        print_row(&format!("{label}: call → spawned"), &self.before_spawn);
        print_row(&format!("{label}: spawned → healthy"), &self.server);
        print_row(
            &format!("{label}: healthy → first token"),
            &minus(&self.without_server(), &self.before_spawn),
        );
        print_row(&format!("{label}: call → first token"), &self.total);
    }

    /// The median of the per-run extras of `self` over `reference`, in ms: without
    /// the servers' loading, and plain.
    fn extra_over(&self, reference: &Self) -> (f64, f64) {
        (
            median_extra(&self.without_server(), &reference.without_server()),
            median_extra(&self.total, &reference.total),
        )
    }
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

/// Each run's extra without the servers' loading, in the order run.
fn print_runs(ours: &Phases, reference: &Phases) {
    let runs: Vec<String> = ours
        .without_server()
        .iter()
        .zip(reference.without_server())
        .map(|(ours, reference)| format!("{:+.0}", ms(*ours) - ms(reference)))
        .collect();
    println!(
        "  {:<52} {} ms",
        "  each run's extra (servers' loading left out)",
        runs.join(", ")
    );
    let loading = |phases: &Phases| {
        phases
            .server
            .iter()
            .map(|took| format!("{:.0}", ms(*took)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "  {:<52} {} ms",
        "  each run's server loading, by hand",
        loading(reference)
    );
    println!(
        "  {:<52} {} ms",
        "  each run's server loading, endpoint",
        loading(ours)
    );
}

fn print_row(label: &str, values: &[Duration]) {
    let mut values = values.to_vec();
    let (median, p90) = median_p90(&mut values);
    row(label, median, p90);
}

struct Cold {
    hand: Phases,
    endpoint: Phases,
    /// The router's plan before a load (`planned_need`); the start plans again.
    plan: Vec<Duration>,
}

impl Cold {
    fn print(&self) -> (f64, f64) {
        self.hand.print("cold, by hand");
        self.endpoint.print("cold, endpoint");
        print_row(
            "cold, endpoint: of it, the router's plan (planned_need)",
            &self.plan,
        );
        print_runs(&self.endpoint, &self.hand);
        self.endpoint.extra_over(&self.hand)
    }
}

async fn cold(rig: &Rig) -> Result<Cold> {
    let mut cold = Cold {
        hand: Phases::default(),
        endpoint: Phases::default(),
        plan: Vec::new(),
    };
    for _ in 0..RUNS {
        rig.trial("a", &mut cold.hand, rig.start_by_hand("a"))
            .await?;
        rig.engine.llama().stop("a").await?;

        let seen = rig
            .trial("a", &mut cold.endpoint, async {
                first_token(&rig.client, &rig.base, None, "a").await?;
                Ok(())
            })
            .await?;
        let placements = placements(&seen);
        if !placements.iter().any(|seen| seen.starts_with("load a")) {
            bail!("the router did not load a: {placements:?}");
        }
        rig.engine.unload_model("a").await?;

        let budget = Budget {
            ram_bytes: RAM_GIB * GIB,
            vram_bytes: 0,
        };
        let started = Instant::now();
        rig.engine.llama().planned_need("a", budget).await?;
        cold.plan.push(started.elapsed());
    }
    Ok(cold)
}

struct Warm {
    tokenize_direct: Vec<Duration>,
    tokenize_endpoint: Vec<Duration>,
    /// Through the instance's own endpoint (the hop the router's requests take
    /// too), to tell the router's part from the proxying.
    tokenize_instance: Vec<Duration>,
    chat_direct: Vec<Duration>,
    chat_endpoint: Vec<Duration>,
}

fn p50_p99(times: &[Duration]) -> (Duration, Duration) {
    let mut times = times.to_vec();
    (percentile(&mut times, 0.5), percentile(&mut times, 0.99))
}

fn added_row(label: &str, ours: (Duration, Duration), reference: (Duration, Duration)) {
    println!(
        "  {label:<52} {:>+7.2} ms {:>+7.2} ms",
        ms(ours.0) - ms(reference.0),
        ms(ours.1) - ms(reference.1)
    );
}

impl Warm {
    fn print(&self) -> f64 {
        println!("  {:<52} {:>10} {:>10}", "", "p50", "p99");
        let direct = p50_p99(&self.tokenize_direct);
        let endpoint = p50_p99(&self.tokenize_endpoint);
        let instance = p50_p99(&self.tokenize_instance);
        row("warm /tokenize: server's own port", direct.0, direct.1);
        row(
            "warm /tokenize: the instance's endpoint",
            instance.0,
            instance.1,
        );
        row(
            "warm /tokenize: the Switchyard endpoint",
            endpoint.0,
            endpoint.1,
        );
        added_row(
            "warm /tokenize: added (endpoint - server)",
            endpoint,
            direct,
        );
        added_row(
            "warm /tokenize: of it, routing (endpoint - instance's)",
            endpoint,
            instance,
        );
        let chat_direct = p50_p99(&self.chat_direct);
        let chat_endpoint = p50_p99(&self.chat_endpoint);
        row(
            "warm chat, 1 token: server's own port",
            chat_direct.0,
            chat_direct.1,
        );
        row(
            "warm chat, 1 token: endpoint",
            chat_endpoint.0,
            chat_endpoint.1,
        );
        added_row("warm chat, 1 token: added", chat_endpoint, chat_direct);
        println!("  {:<52} {:>10} {:>10}", "", "median", "p90");
        ms(endpoint.1) - ms(direct.1)
    }
}

async fn warm(rig: &Rig) -> Result<Warm> {
    first_token(&rig.client, &rig.base, None, "a").await?;
    let server = rig.server("a")?;
    let key = rig.key("a")?;
    let instance = rig
        .engine
        .llama()
        .status("a")?
        .api_endpoint
        .context("a's own endpoint")?;
    // Connections pooled, every path taken.
    for _ in 0..10 {
        tokenize(&rig.client, &server, Some(&key)).await?;
        tokenize(&rig.client, &rig.base, None).await?;
        tokenize(&rig.client, &instance, None).await?;
    }
    let mut workers = Vec::new();
    for _ in 0..WARM_CLIENTS {
        let (client, base, server, key, instance) = (
            rig.client.clone(),
            rig.base.clone(),
            server.clone(),
            key.clone(),
            instance.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut times: [Vec<Duration>; 5] = Default::default();
            for _ in 0..WARM_TOKENIZE {
                times[0].push(tokenize(&client, &server, Some(&key)).await?);
                times[1].push(tokenize(&client, &base, None).await?);
                times[2].push(tokenize(&client, &instance, None).await?);
            }
            for _ in 0..WARM_CHATS {
                times[3].push(chat(&client, &server, Some(&key)).await?);
                times[4].push(chat(&client, &base, None).await?);
            }
            anyhow::Ok(times)
        }));
    }
    let mut all: [Vec<Duration>; 5] = Default::default();
    for worker in workers {
        for (all, times) in all.iter_mut().zip(worker.await??) {
            all.extend(times);
        }
    }
    let [tokenize_direct, tokenize_endpoint, tokenize_instance, chat_direct, chat_endpoint] = all;
    Ok(Warm {
        tokenize_direct,
        tokenize_endpoint,
        tokenize_instance,
        chat_direct,
        chat_endpoint,
    })
}

struct Swap {
    hand: Phases,
    endpoint: Phases,
    hand_stop: Vec<Duration>,
    placements: Vec<String>,
}

impl Swap {
    fn print(&self, held: u64) -> (f64, f64) {
        print_row("swap, by hand: llama().stop(A)", &self.hand_stop);
        self.hand.print("swap, by hand (stop A, start B)");
        self.endpoint.print("swap, endpoint (request for B)");
        print_runs(&self.endpoint, &self.hand);
        println!(
            "  swap budget: 1.5 × {} MiB; the router's last swap: {}",
            held / (1024 * 1024),
            self.placements.join(", ")
        );
        self.endpoint.extra_over(&self.hand)
    }
}

async fn swap(rig: &Rig) -> Result<Swap> {
    let mut swap = Swap {
        hand: Phases::default(),
        endpoint: Phases::default(),
        hand_stop: Vec::new(),
        placements: Vec::new(),
    };
    for _ in 0..RUNS {
        rig.only("a").await?;
        let mut stop = Duration::ZERO;
        rig.trial("b", &mut swap.hand, async {
            let started = Instant::now();
            rig.engine.llama().stop("a").await?;
            stop = started.elapsed();
            rig.start_by_hand("b").await
        })
        .await?;
        swap.hand_stop.push(stop);

        rig.only("a").await?;
        let seen = rig
            .trial("b", &mut swap.endpoint, async {
                first_token(&rig.client, &rig.base, None, "b").await?;
                Ok(())
            })
            .await?;
        let placements = placements(&seen);
        if !placements.iter().any(|seen| seen.starts_with("unload a")) {
            bail!("the budget fits both: the router did not swap ({placements:?})");
        }
        swap.placements = placements;
    }
    Ok(swap)
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
