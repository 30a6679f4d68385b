//! `kv-restore`: what keeping a conversation across an image saves its next turn.
//!
//! A generated llama big enough that reading a 4,000-token prompt takes seconds
//! on a CPU (8 layers of width 1024, F16), the real llama-server and the real
//! sd-cli (random SDXS-512), a probe reporting 1 GiB of RAM so every image
//! offloads the LLM. Each run starts three fresh conversations of the same length
//! (the first turn reads the whole prompt) and times the second turn of each,
//! non-streamed with one token to write (its time is the time to first token):
//!
//! - warm: right after the first turn, the cache as the first turn left it;
//! - restored: after an image offloaded and reloaded the LLM, which saved the
//!   conversation before the stop and restored it before the reload ended. Its
//!   figure adds the restore's own time to the turn's (the restore is a part of
//!   the pause that the next turn would not have without an image);
//! - without: the same offload with saving off, so the turn reads it all again.
//!
//! The modes take turns inside each run, so a busy moment hits all alike; the
//! table gives the median and the spread (fastest–slowest). The last line is the
//! median restored / warm ratio against its goal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use switchyard_engine::diffusion::{
    DiffusionModelFiles, ImageRequest, ImageServiceOptions, JobStatus, RunnerKind,
};
use switchyard_engine::engine::ImageServerConfig;
use switchyard_engine::llama::{SlotAction, SlotsReport};
use switchyard_engine::orchestrator::{OrchestratorEvent, OrchestratorPolicy};
use switchyard_engine::{Engine, EngineEvent};
use switchyard_testkit::gguf::{write_sdxs_512, LlamaSpec, TensorType};
use switchyard_testkit::tools::sd_cli;
use switchyard_testkit::{FakeProbe, GIB};
use tokio::sync::broadcast;

use crate::llama::{engine_on, instance, ms, runtime};

const RUNS: usize = 3;
/// Characters of the opening message; the generated vocabulary reads about five in
/// six as one token.
const OPENING_CHARS: usize = 4_800;
const RATIO_GOAL: f64 = 1.5;
const SPEEDUP_GOAL: f64 = 10.0;
const DEADLINE: Duration = Duration::from_secs(600);

pub fn run() -> Result<()> {
    runtime()?.block_on(measure())
}

/// One second turn: its time and what llama-server said of its prompt.
#[derive(Debug, Clone, Copy)]
struct Turn {
    elapsed: Duration,
    prompt_tokens: u64,
    cached_tokens: u64,
}

#[derive(Default)]
struct Figures {
    warm: Vec<Turn>,
    restored: Vec<Turn>,
    restore: Vec<Duration>,
    without: Vec<Turn>,
    saves: Vec<SlotsReport>,
    first_turn: Vec<Duration>,
}

async fn measure() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let llm = dir.path().join("reader.gguf");
    LlamaSpec::shaped(
        "switchyard-kv-bench",
        8,
        1024,
        16,
        4,
        2816,
        512,
        TensorType::F16,
    )
    .write_to(&llm)?;
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
    let mut spec = instance(&llm);
    spec.config.context = 8192;
    engine.llama().create(spec)?;
    engine.llama().start("bench").await?;
    let endpoint = engine
        .llama()
        .status("bench")?
        .api_endpoint
        .context("the instance's endpoint")?;
    let client = reqwest::Client::builder().no_proxy().build()?;

    let mut figures = Figures::default();
    for run in 0..RUNS {
        let seed = u64::try_from(run)? * 3;
        // Warm.
        let (elapsed, second) = first_turn(&client, &endpoint, seed).await?;
        figures.first_turn.push(elapsed);
        figures
            .warm
            .push(second_turn(&client, &endpoint, &second).await?);

        // Restored.
        let (_, second) = first_turn(&client, &endpoint, seed + 1).await?;
        let (save, restore) = offload(&engine, run).await?;
        let restore = restore.context("the reload restored nothing")?;
        figures
            .saves
            .push(save.context("the offload saved nothing")?);
        figures
            .restore
            .push(Duration::from_millis(restore.elapsed_ms));
        figures
            .restored
            .push(second_turn(&client, &endpoint, &second).await?);

        // Without: saving off for this offload only.
        let (_, second) = first_turn(&client, &endpoint, seed + 2).await?;
        keep_conversations(&engine, false)?;
        let (save, _) = offload(&engine, run).await?;
        keep_conversations(&engine, true)?;
        if save.is_some() {
            bail!("saving was off, yet the offload saved");
        }
        figures
            .without
            .push(second_turn(&client, &endpoint, &second).await?);
    }
    engine.shutdown().await;
    report(&figures)
}

fn keep_conversations(engine: &Engine, keep: bool) -> Result<()> {
    let mut settings = engine.settings();
    settings.keep_conversations = keep;
    engine.update_settings(settings)?;
    Ok(())
}

/// The opening message of conversation `seed`.
fn opening(seed: u64) -> String {
    let words = [
        "yard", "switch", "train", "signal", "track", "engine", "freight",
    ];
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut text = String::with_capacity(OPENING_CHARS);
    while text.len() < OPENING_CHARS {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        text.push_str(words[usize::try_from(state >> 61).unwrap_or(0) % words.len()]);
        text.push(' ');
    }
    text
}

/// The first turn of conversation `seed` (it reads the whole opening): its time
/// and the messages of the second.
async fn first_turn(
    client: &reqwest::Client,
    endpoint: &str,
    seed: u64,
) -> Result<(Duration, Vec<Value>)> {
    let opening = opening(seed);
    let messages = vec![json!({"role": "user", "content": opening})];
    let started = Instant::now();
    let (answer, _) = chat(client, endpoint, &messages, 8).await?;
    let elapsed = started.elapsed();
    let second = vec![
        json!({"role": "user", "content": opening}),
        json!({"role": "assistant", "content": answer}),
        json!({"role": "user", "content": "And then?"}),
    ];
    Ok((elapsed, second))
}

async fn second_turn(client: &reqwest::Client, endpoint: &str, messages: &[Value]) -> Result<Turn> {
    let started = Instant::now();
    let (_, timings) = chat(client, endpoint, messages, 1).await?;
    Ok(Turn {
        elapsed: started.elapsed(),
        prompt_tokens: timings["prompt_n"].as_u64().unwrap_or(0)
            + timings["cache_n"].as_u64().unwrap_or(0),
        cached_tokens: timings["cache_n"].as_u64().unwrap_or(0),
    })
}

/// A greedy chat: the answer and llama-server's timings.
async fn chat(
    client: &reqwest::Client,
    endpoint: &str,
    messages: &[Value],
    max_tokens: u32,
) -> Result<(String, Value)> {
    let response = client
        .post(format!("{endpoint}/v1/chat/completions"))
        .json(&json!({
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
            "seed": 1,
            "ignore_eos": true,
        }))
        .timeout(DEADLINE)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "chat answered {}: {}",
            response.status(),
            response.text().await?
        );
    }
    let body: Value = response.json().await?;
    let answer = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((answer, body["timings"].clone()))
}

/// An image that offloads the LLM, until the LLM is back: the save and restore
/// reports it caused.
async fn offload(
    engine: &Engine,
    run: usize,
) -> Result<(Option<SlotsReport>, Option<SlotsReport>)> {
    let mut events = engine.subscribe();
    let id = engine.generate_image(ImageRequest {
        width: 64,
        height: 64,
        steps: 1,
        cfg_scale: 1.0,
        seed: Some(i64::try_from(run)?),
        ..ImageRequest::new("a switch yard at dusk")
    })?;
    let (mut save, mut restore) = (None, None);
    tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Ok(EngineEvent::LlamaSlots(report)) => match report.action {
                    SlotAction::Save => save = Some(report),
                    SlotAction::Restore => restore = Some(report),
                },
                Ok(EngineEvent::Orchestrator(OrchestratorEvent::Reloaded { .. })) => return Ok(()),
                Ok(EngineEvent::Orchestrator(OrchestratorEvent::ReloadFailed {
                    error, ..
                })) => {
                    bail!("the reload failed: {}", error.message)
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => bail!("events ended"),
            }
        }
    })
    .await
    .context("no reload in time")??;
    let job = engine.image_job(&id)?;
    if job.status != JobStatus::Complete {
        bail!("the image ended {:?}", job.status);
    }
    Ok((save, restore))
}

/// Median and spread of a list of durations, in ms.
fn spread(times: &[Duration]) -> (f64, f64, f64) {
    let mut values: Vec<f64> = times.iter().map(|time| ms(*time)).collect();
    values.sort_by(f64::total_cmp);
    let median = values.get(values.len() / 2).copied().unwrap_or_default();
    (
        median,
        values.first().copied().unwrap_or_default(),
        values.last().copied().unwrap_or_default(),
    )
}

fn turn_row(what: &str, turns: &[Turn], extra: &[Duration]) {
    let times: Vec<Duration> = turns
        .iter()
        .enumerate()
        .map(|(i, turn)| turn.elapsed + extra.get(i).copied().unwrap_or_default())
        .collect();
    let (median, fastest, slowest) = spread(&times);
    let cached: Vec<String> = turns
        .iter()
        .map(|turn| format!("{}/{}", turn.cached_tokens, turn.prompt_tokens))
        .collect();
    println!(
        "  {what:<40} {median:>9.1} ms  ({fastest:.1}–{slowest:.1})  cached/prompt tokens {}",
        cached.join(", ")
    );
}

fn report(figures: &Figures) -> Result<()> {
    println!("kv-restore: {RUNS} runs, next turn's time to first token (median, fastest–slowest)");
    let (first, _, _) = spread(&figures.first_turn);
    println!("  first turn (reads the whole opening)     {first:>9.1} ms");
    turn_row("warm (no pause)", &figures.warm, &[]);
    turn_row(
        "after an offload, restored (+ restore)",
        &figures.restored,
        &figures.restore,
    );
    turn_row("after an offload, without restore", &figures.without, &[]);
    let (restore, restore_fast, restore_slow) = spread(&figures.restore);
    let saves: Vec<Duration> = figures
        .saves
        .iter()
        .map(|save| Duration::from_millis(save.elapsed_ms))
        .collect();
    let (save, save_fast, save_slow) = spread(&saves);
    let save_bytes = figures.saves.first().map_or(0, |save| save.bytes);
    let save_tokens = figures.saves.first().map_or(0, |save| save.tokens);
    println!(
        "  save before the stop: {save:.1} ms ({save_fast:.1}–{save_slow:.1}), restore before healthy: {restore:.1} ms ({restore_fast:.1}–{restore_slow:.1}); {save_tokens} tokens, {:.1} MiB",
        save_bytes as f64 / f64::from(1u32 << 20)
    );
    let restored: Vec<Duration> = figures
        .restored
        .iter()
        .zip(&figures.restore)
        .map(|(turn, restore)| turn.elapsed + *restore)
        .collect();
    let warm: Vec<Duration> = figures.warm.iter().map(|turn| turn.elapsed).collect();
    let without: Vec<Duration> = figures.without.iter().map(|turn| turn.elapsed).collect();
    let (warm, _, _) = spread(&warm);
    let (restored, _, _) = spread(&restored);
    let (without, _, _) = spread(&without);
    let speedup = without / restored.max(f64::MIN_POSITIVE);
    println!(
        "  without restore / restored: {speedup:.1}× (goal ≥ {SPEEDUP_GOAL:.0}×) {}",
        if speedup >= SPEEDUP_GOAL {
            "ok"
        } else {
            "MISSED"
        }
    );
    let ratio = restored / warm.max(f64::MIN_POSITIVE);
    println!(
        "kv-restore: {ratio:.2} (goal ≤ {RATIO_GOAL}) {}",
        if ratio <= RATIO_GOAL { "ok" } else { "MISSED" }
    );
    Ok(())
}
