//! Conversations survive a pause: the real llama-server saves its slots before
//! Switchyard stops it (for an image with the real sd-cli, a restart, an unload)
//! and gets them back before the held requests reach the new server, so the next
//! turn finds its prefix (`timings.cache_n`) and, greedy, says the very same.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_engine::diffusion::{
    DiffusionModelFiles, ImageRequest, ImageServiceOptions, JobStatus, RunnerKind,
};
use switchyard_engine::engine::ImageServerConfig;
use switchyard_engine::llama::{InstanceSpec, SlotAction, SlotsReport};
use switchyard_engine::orchestrator::{OrchestratorEvent, OrchestratorPolicy};
use switchyard_engine::settings::Settings;
use switchyard_engine::{Engine, EngineDeps, EngineEvent};
use switchyard_testkit::gguf::{shared_sdxs_512, LlamaSpec};
use switchyard_testkit::tools::{sd_cli, use_real_llama_server};
use switchyard_testkit::{FakeProbe, ManualClock, GIB};
use tokio::sync::broadcast::{error::RecvError, Receiver};

mod llama_common;
use llama_common::fast_policy;

const DEADLINE: Duration = Duration::from_secs(90);

struct Setup {
    engine: Engine,
    events: Receiver<EngineEvent>,
    dir: tempfile::TempDir,
}

impl Setup {
    fn kv_cache(&self) -> std::path::PathBuf {
        self.dir.path().join("data").join("kv-cache")
    }

    fn endpoint(&self, name: &str) -> String {
        self.engine
            .llama()
            .status(name)
            .unwrap()
            .api_endpoint
            .expect("the instance's endpoint")
    }
}

/// An engine on a machine with 1 GiB (an image does not fit beside the LLM) and
/// a running instance "chat" of a generated model with a 4,096-token context
/// (`configure` may change it before it starts).
async fn setup(configure: impl FnOnce(&mut InstanceSpec)) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(EngineDeps {
        data_dir_override: Some(dir.path().join("data")),
        config_dir: dir.path().join("config"),
        settings: Settings::default(),
        probe: Arc::new(FakeProbe::cpu_only(16).with_ram_bytes(GIB)),
        clock: Arc::new(ManualClock::at(1_700_000_000_000)),
    })
    .unwrap();
    engine.orchestrator().set_policy(OrchestratorPolicy {
        memory_wait_ms: 2_000,
        reload_backoff_ms: 50,
        poll_ms: 10,
        ..OrchestratorPolicy::default()
    });
    use_real_llama_server(&engine).await.unwrap();
    engine.llama().set_policy(fast_policy());
    let model = dir.path().join("llm.gguf");
    LlamaSpec {
        context: 8192,
        ..LlamaSpec::default()
    }
    .write_to(&model)
    .unwrap();
    let mut spec = InstanceSpec::new("chat", &model);
    spec.config.context = 4096;
    spec.config.parallel = 1;
    spec.auto.context = false;
    spec.threads = Some(2);
    configure(&mut spec);
    engine.llama().create(spec).unwrap();
    engine.llama().start("chat").await.unwrap();
    let events = engine.subscribe();
    Setup {
        engine,
        events,
        dir,
    }
}

/// A user's message of `chars` characters (the generated model's vocabulary reads
/// about five in six as one token), different for each `seed`.
fn long_message(seed: u64, chars: usize) -> String {
    let mut text = String::with_capacity(chars);
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    while text.len() < chars {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let word = [
            "yard", "switch", "train", "signal", "track", "engine", "freight",
        ][usize::try_from(state >> 61).unwrap() % 7];
        text.push_str(word);
        text.push(' ');
    }
    text
}

/// One answer: what it said, the prompt's length and how much of it came from
/// the cache.
#[derive(Debug)]
struct Turn {
    content: String,
    prompt_tokens: u64,
    cached_tokens: u64,
}

/// A greedy turn of `messages` through `endpoint`.
async fn turn(endpoint: &str, messages: &[Value]) -> Turn {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{endpoint}/v1/chat/completions"))
        .json(&json!({
            "messages": messages,
            "max_tokens": 12,
            "temperature": 0,
            "seed": 1,
            "ignore_eos": true,
        }))
        .timeout(DEADLINE)
        .send()
        .await
        .expect("the endpoint answers");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let timings = &body["timings"];
    Turn {
        content: body["choices"][0]["message"]["content"]
            .as_str()
            .expect("an answer")
            .to_owned(),
        prompt_tokens: timings["prompt_n"].as_u64().unwrap_or(0)
            + timings["cache_n"].as_u64().unwrap_or(0),
        cached_tokens: timings["cache_n"].as_u64().unwrap_or(0),
    }
}

fn user(content: &str) -> Value {
    json!({"role": "user", "content": content})
}

fn assistant(content: &str) -> Value {
    json!({"role": "assistant", "content": content})
}

/// The next report of `action` for "chat".
async fn next_report(events: &mut Receiver<EngineEvent>, action: SlotAction) -> SlotsReport {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Ok(EngineEvent::LlamaSlots(report)) if report.action == action => return report,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => panic!("events ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {action:?} report within {DEADLINE:?}"))
}

/// The conversation's first turn and the messages of its second.
async fn first_turn(endpoint: &str, seed: u64, chars: usize) -> (Turn, Vec<Value>) {
    let opening = long_message(seed, chars);
    let first = turn(endpoint, &[user(&opening)]).await;
    let second = vec![user(&opening), assistant(&first.content), user("And then?")];
    (first, second)
}

#[tokio::test]
async fn a_conversation_survives_an_image_and_its_next_turn_reads_nothing_again() {
    let model = shared_sdxs_512();
    let mut setup = setup(|_| {}).await;
    setup
        .engine
        .start_image_server(ImageServerConfig {
            files: Some(DiffusionModelFiles::single(model.path())),
            sd_binary: Some(sd_cli()),
            port: Some(0),
            options: ImageServiceOptions {
                runner: RunnerKind::Cli,
                threads: Some(2),
                ..ImageServiceOptions::default()
            },
            ..ImageServerConfig::default()
        })
        .await
        .unwrap();
    let endpoint = setup.endpoint("chat");
    let (first, second) = first_turn(&endpoint, 1, 2500).await;
    assert!(
        first.prompt_tokens >= 2000,
        "a long conversation: {first:?}"
    );
    // The same turn with the cache warm, never paused: what the turn after the
    // image must say, and about as much cache as it must find.
    let warm = turn(&endpoint, &second).await;
    assert!(warm.cached_tokens >= first.prompt_tokens, "{warm:?}");

    let id = setup
        .engine
        .generate_image(ImageRequest {
            width: 64,
            height: 64,
            steps: 1,
            cfg_scale: 1.0,
            seed: Some(42),
            ..ImageRequest::new("a switch yard")
        })
        .unwrap();
    let saved = next_report(&mut setup.events, SlotAction::Save).await;
    assert_eq!((saved.slots, saved.problems.len()), (1, 0), "{saved:?}");
    assert!(saved.tokens >= warm.prompt_tokens, "{saved:?} vs {warm:?}");
    assert!(saved.bytes > 0, "{saved:?}");
    let restored = next_report(&mut setup.events, SlotAction::Restore).await;
    assert_eq!(
        (restored.slots, restored.tokens, restored.problems.len()),
        (1, saved.tokens, 0),
        "{restored:?}"
    );
    // The image ran while the LLM was away, and the LLM is back.
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(EngineEvent::Orchestrator(OrchestratorEvent::Reloaded { .. })) =
                setup.events.recv().await
            {
                return;
            }
        }
    })
    .await
    .expect("the LLM is reloaded");
    assert_eq!(
        setup.engine.image_job(&id).unwrap().status,
        JobStatus::Complete
    );

    let after = turn(&endpoint, &second).await;
    assert!(
        after.cached_tokens >= first.prompt_tokens.max(2000),
        "the turn after the image found its conversation: {after:?} after {first:?}"
    );
    assert_eq!(after.content, warm.content, "greedy: the very same answer");
    let usage = setup.engine.orchestrator_status().saved_slots;
    assert!(
        usage.enabled && usage.files == 1 && usage.bytes > 0,
        "{usage:?}"
    );
}

#[tokio::test]
async fn a_save_that_fails_still_restarts_and_the_turn_is_read_again() {
    let mut setup = setup(|_| {}).await;
    let endpoint = setup.endpoint("chat");
    let (first, second) = first_turn(&endpoint, 2, 1500).await;
    // A directory where llama-server writes the save: it cannot (its own
    // "Unable to save slot"), whoever runs it, root included.
    let folder = std::fs::read_dir(setup.kv_cache().join("chat"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::create_dir(folder.join("slot-0.partial")).unwrap();

    setup.engine.llama().restart("chat").await.unwrap();
    let saved = next_report(&mut setup.events, SlotAction::Save).await;
    assert_eq!(saved.slots, 0, "{saved:?}");
    assert!(
        saved
            .problems
            .iter()
            .any(|problem| problem.contains("slot 0") && problem.contains("Unable to save slot")),
        "the failure is told: {saved:?}"
    );
    let after = turn(&endpoint, &second).await;
    assert!(after.cached_tokens < 100, "nothing was restored: {after:?}");
    assert!(after.prompt_tokens > first.prompt_tokens, "{after:?}");
}

#[tokio::test]
async fn a_changed_configuration_never_reads_the_old_cache_and_deletes_it() {
    let mut setup = setup(|_| {}).await;
    let endpoint = setup.endpoint("chat");
    let (_, second) = first_turn(&endpoint, 3, 1500).await;
    setup.engine.llama().restart("chat").await.unwrap();
    let saved = next_report(&mut setup.events, SlotAction::Save).await;
    assert_eq!(saved.slots, 1, "{saved:?}");
    next_report(&mut setup.events, SlotAction::Restore).await;
    let folders = |setup: &Setup| -> Vec<String> {
        std::fs::read_dir(setup.kv_cache().join("chat"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let before = folders(&setup);
    assert_eq!(before.len(), 1, "{before:?}");

    let llama = setup.engine.llama();
    llama.stop("chat").await.unwrap();
    let mut spec = llama.status("chat").unwrap().spec;
    spec.config.context = 3072;
    llama.update(spec).unwrap();
    llama.start("chat").await.unwrap();
    let after_folders = folders(&setup);
    assert_eq!(after_folders.len(), 1, "{after_folders:?}");
    assert_ne!(
        after_folders, before,
        "the old configuration's cache is gone"
    );
    let after = turn(&endpoint, &second).await;
    assert!(after.cached_tokens < 100, "nothing was restored: {after:?}");
    // Nothing was restored into the new server (a report would say so).
    while let Ok(event) = setup.events.try_recv() {
        assert!(
            !matches!(&event, EngineEvent::LlamaSlots(report) if report.action == SlotAction::Restore),
            "{event:?}"
        );
    }
}

#[tokio::test]
async fn two_conversations_in_two_slots_both_come_back() {
    let mut setup = setup(|spec| {
        spec.config.context = 8192;
        spec.config.parallel = 2;
    })
    .await;
    let endpoint = setup.endpoint("chat");
    let (first_a, second_a) = first_turn(&endpoint, 4, 1500).await;
    let (first_b, second_b) = first_turn(&endpoint, 5, 1500).await;

    setup.engine.llama().restart("chat").await.unwrap();
    let saved = next_report(&mut setup.events, SlotAction::Save).await;
    assert_eq!(saved.slots, 2, "{saved:?}");
    let restored = next_report(&mut setup.events, SlotAction::Restore).await;
    assert_eq!(
        (restored.slots, restored.tokens),
        (2, saved.tokens),
        "{restored:?}"
    );

    // llama-server gives each request the slot sharing the longest prefix: each
    // conversation finds its own, whichever comes first.
    let b = turn(&endpoint, &second_b).await;
    let a = turn(&endpoint, &second_a).await;
    assert!(
        a.cached_tokens >= first_a.prompt_tokens,
        "{a:?} after {first_a:?}"
    );
    assert!(
        b.cached_tokens >= first_b.prompt_tokens,
        "{b:?} after {first_b:?}"
    );
}

#[tokio::test]
async fn an_unloaded_model_finds_its_conversation_when_loaded_again() {
    let mut setup = setup(|_| {}).await;
    let endpoint = setup.endpoint("chat");
    let (first, second) = first_turn(&endpoint, 6, 1500).await;
    setup.engine.unload_model("chat").await.unwrap();
    let saved = next_report(&mut setup.events, SlotAction::Save).await;
    assert_eq!(saved.slots, 1, "{saved:?}");
    setup.engine.load_model("chat").await.unwrap();
    let restored = next_report(&mut setup.events, SlotAction::Restore).await;
    assert_eq!(restored.slots, 1, "{restored:?}");
    let after = turn(&endpoint, &second).await;
    assert!(
        after.cached_tokens >= first.prompt_tokens,
        "{after:?} after {first:?}"
    );

    // Turned off: the saved conversations are deleted, a restart saves nothing,
    // and nothing is restored.
    let mut settings = setup.engine.settings();
    settings.keep_conversations = false;
    setup.engine.update_settings(settings).unwrap();
    assert_eq!(setup.engine.orchestrator_status().saved_slots.files, 0);
    setup.engine.llama().restart("chat").await.unwrap();
    let after_off = turn(&endpoint, &second).await;
    assert!(after_off.cached_tokens < 100, "{after_off:?}");
    assert_eq!(setup.engine.orchestrator_status().saved_slots.files, 0);

    // On again: it applies to the server already running.
    let mut settings = setup.engine.settings();
    settings.keep_conversations = true;
    setup.engine.update_settings(settings).unwrap();
    setup.engine.llama().restart("chat").await.unwrap();
    let saved = next_report(&mut setup.events, SlotAction::Save).await;
    assert_eq!((saved.slots, saved.problems.len()), (1, 0), "{saved:?}");
}

#[test]
fn the_long_message_is_long_and_differs_by_seed() {
    assert!(long_message(1, 2000).len() >= 2000);
    assert_ne!(long_message(1, 100), long_message(2, 100));
}
