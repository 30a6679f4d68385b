//! The orchestrator with the real llama-server (generated model) and the real
//! sd-cli (random SDXS-512 model), on a system probe that reports a small budget;
//! the fake sd only for the crash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchyard_engine::diffusion::{
    DiffusionModelFiles, ImageRequest, ImageServiceOptions, JobStatus, RunnerKind,
};
use switchyard_engine::engine::ImageServerConfig;
use switchyard_engine::llama::{InstanceSpec, InstanceState, InstanceStatus};
use switchyard_engine::orchestrator::{
    OrchestratorEvent, OrchestratorPhase, OrchestratorPolicy, UsageBasis,
};
use switchyard_engine::settings::Settings;
use switchyard_engine::{Engine, EngineDeps, EngineEvent};
use switchyard_testkit::gguf::{shared_sdxs_512, LlamaSpec};
use switchyard_testkit::tools::use_real_llama_server;
use switchyard_testkit::tools::{fake_sd, sd_cli};
use switchyard_testkit::{FakeProbe, ManualClock, GIB};
use tokio::sync::broadcast::Receiver;

mod llama_common;
use llama_common::{chat, long_chat, slow_model_spec, wait_for_generation, wait_until};
use switchyard_testkit::chat_clients::{judge_plain, judge_stream, ChattingClients, ClientPlan};

const DEADLINE: Duration = Duration::from_secs(90);
const MIB: u64 = 1024 * 1024;

struct Setup {
    engine: Engine,
    probe: Arc<FakeProbe>,
    events: Receiver<EngineEvent>,
    _dir: tempfile::TempDir,
}

/// An engine on a machine with `ram` bytes, a running tiny LLM named "chat", and
/// the image server with `sd` and `model`.
async fn setup(ram: u64, sd: &Path, model: &Path) -> Setup {
    setup_with(ram, sd, model, &LlamaSpec::default(), |_| {}).await
}

/// The same with the LLM `llm` and its instance as `configure` leaves it.
async fn setup_with(
    ram: u64,
    sd: &Path,
    model: &Path,
    llm: &LlamaSpec,
    configure: impl FnOnce(&mut InstanceSpec),
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(FakeProbe::cpu_only(16).with_ram_bytes(ram));
    let engine = Engine::new(EngineDeps {
        data_dir_override: Some(dir.path().join("data")),
        config_dir: dir.path().join("config"),
        settings: Settings::default(),
        probe: probe.clone(),
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
    let llm_path = dir.path().join("llm.gguf");
    llm.write_to(&llm_path).unwrap();
    let mut spec = InstanceSpec::new("chat", &llm_path);
    spec.config.context = 512;
    spec.threads = Some(2);
    configure(&mut spec);
    engine.llama().create(spec).unwrap();
    engine.llama().start("chat").await.unwrap();
    let events = engine.subscribe();
    engine
        .start_image_server(ImageServerConfig {
            files: Some(DiffusionModelFiles::single(model)),
            sd_binary: Some(sd.to_path_buf()),
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
    Setup {
        engine,
        probe,
        events,
        _dir: dir,
    }
}

fn small(prompt: &str) -> ImageRequest {
    ImageRequest {
        width: 64,
        height: 64,
        steps: 1,
        cfg_scale: 1.0,
        seed: Some(42),
        ..ImageRequest::new(prompt)
    }
}

/// An image the fake sd never finishes (it hangs at its second step): it runs until
/// cancelled.
fn generate_hanging_image(engine: &Engine) -> String {
    engine
        .generate_image(ImageRequest {
            steps: 4,
            ..small("[hang] a cat")
        })
        .unwrap()
}

/// The orchestrator's events and image completions, in order, until `last` matches.
async fn record_until(
    events: &mut Receiver<EngineEvent>,
    mut last: impl FnMut(&EngineEvent) -> bool,
) -> Vec<EngineEvent> {
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let done = last(&event);
                    let keep = matches!(event, EngineEvent::Orchestrator(_))
                        || matches!(&event, EngineEvent::ImageJobChanged(job) if job.status != JobStatus::Pending && job.status != JobStatus::Running);
                    if keep || done {
                        seen.push(event);
                    }
                    if done {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(error) => panic!("events ended: {error}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; seen so far: {seen:#?}"));
    seen
}

fn is_reloaded(event: &EngineEvent) -> bool {
    matches!(
        event,
        EngineEvent::Orchestrator(OrchestratorEvent::Reloaded { .. })
    )
}

fn running_shape(status: &InstanceStatus) -> (Option<u16>, u32, u32) {
    let running = status.running.as_ref().expect("running");
    (
        Some(running.port),
        running.config.context,
        running.config.gpu_layers,
    )
}

#[tokio::test]
async fn an_image_offloads_the_llm_returns_first_and_the_llm_comes_back_identical() {
    let model = shared_sdxs_512();
    let mut setup = setup(GIB, &sd_cli(), &model.path()).await;
    let before = setup.engine.llama().status("chat").unwrap();
    let prediction = setup.engine.orchestrator().would_need_offload(900 * MIB, 0);
    assert!(prediction.needs_offload, "{prediction:?}");
    let counted = setup.engine.orchestrator_status().llm;
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(counted[0].name, "chat");
    assert_eq!(
        counted[0].basis,
        UsageBasis::Measured,
        "a loaded server counts what it uses"
    );
    assert!(counted[0].ram_bytes > 0, "{counted:?}");

    let id = setup.engine.generate_image(small("a switch yard")).unwrap();
    let seen = record_until(&mut setup.events, is_reloaded).await;
    let order: Vec<&str> = seen
        .iter()
        .map(|event| match event {
            EngineEvent::Orchestrator(OrchestratorEvent::Offloaded { .. }) => "offloaded",
            EngineEvent::Orchestrator(OrchestratorEvent::Reloading { .. }) => "reloading",
            EngineEvent::Orchestrator(OrchestratorEvent::Reloaded { .. }) => "reloaded",
            EngineEvent::ImageJobChanged(_) => "image",
            _ => "other",
        })
        .collect();
    assert_eq!(order, ["offloaded", "image", "reloading", "reloaded"]);
    let view = setup.engine.image_job(&id).unwrap();
    assert_eq!(view.status, JobStatus::Complete);
    let paused_ms = seen
        .iter()
        .find_map(|event| match event {
            EngineEvent::Orchestrator(OrchestratorEvent::Reloaded { paused_ms, .. }) => {
                Some(*paused_ms)
            }
            _ => None,
        })
        .unwrap();
    let next = setup.engine.orchestrator().would_need_offload(900 * MIB, 0);
    #[allow(clippy::cast_precision_loss)]
    let reported_secs = paused_ms as f64 / 1000.0;
    assert!(
        (next.predicted_pause_secs - reported_secs).abs() < 1e-9,
        "the next prediction is the pause chat just saw: {next:?} vs {paused_ms} ms"
    );

    let after = setup.engine.llama().status("chat").unwrap();
    assert_eq!(after.state, InstanceState::Healthy);
    assert_eq!(running_shape(&after), running_shape(&before));
    assert!(setup.engine.orchestrator().saved_state().is_none());
    assert!(
        setup
            .engine
            .llama()
            .status("chat")
            .unwrap()
            .spec
            .port
            .is_none(),
        "the person's own spec (auto port) is back for the next start"
    );
    setup.engine.shutdown().await;
}

#[tokio::test]
async fn with_a_large_budget_nothing_is_offloaded() {
    let model = shared_sdxs_512();
    let mut setup = setup(64 * GIB, &sd_cli(), &model.path()).await;
    let id = setup.engine.generate_image(small("a cat")).unwrap();
    let seen = record_until(&mut setup.events, |event| {
        matches!(event, EngineEvent::ImageJobChanged(job) if job.id == id && job.status == JobStatus::Complete)
    })
    .await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, EngineEvent::Orchestrator(_))),
        "{seen:#?}"
    );
    assert_eq!(
        setup.engine.llama().status("chat").unwrap().state,
        InstanceState::Healthy
    );
    setup.engine.shutdown().await;
}

/// The fake reads nothing from its model: a tiny file and a budget to match.
fn fake_model(dir: &Path) -> std::path::PathBuf {
    let model = dir.join("fake-model.gguf");
    std::fs::write(&model, b"read by nobody").unwrap();
    model
}

#[tokio::test]
async fn an_sd_crash_still_brings_the_llm_back() {
    let scratch = tempfile::tempdir().unwrap();
    let mut setup = setup(80 * MIB, &fake_sd(), &fake_model(scratch.path())).await;
    let id = setup.engine.generate_image(small("[crash] a cat")).unwrap();
    let seen = record_until(&mut setup.events, is_reloaded).await;
    assert!(seen.iter().any(|e| matches!(
        e,
        EngineEvent::Orchestrator(OrchestratorEvent::Offloaded { .. })
    )));
    assert_eq!(
        setup.engine.image_job(&id).unwrap().status,
        JobStatus::Error
    );
    assert_eq!(
        setup.engine.llama().status("chat").unwrap().state,
        InstanceState::Healthy
    );
    setup.engine.shutdown().await;
}

#[tokio::test]
async fn three_queued_images_share_one_offload() {
    let scratch = tempfile::tempdir().unwrap();
    let mut setup = setup(80 * MIB, &fake_sd(), &fake_model(scratch.path())).await;
    let ids: Vec<String> = (0..3)
        .map(|i| {
            setup
                .engine
                .generate_image(small(&format!("cat {i}")))
                .unwrap()
        })
        .collect();
    let seen = record_until(&mut setup.events, is_reloaded).await;
    let offloads = seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                EngineEvent::Orchestrator(OrchestratorEvent::Offloaded { .. })
            )
        })
        .count();
    assert_eq!(offloads, 1, "{seen:#?}");
    for id in ids {
        assert_eq!(
            setup.engine.image_job(&id).unwrap().status,
            JobStatus::Complete
        );
    }
    setup.engine.shutdown().await;
}

#[tokio::test]
async fn a_reload_that_fails_is_retried_and_a_final_failure_keeps_the_saved_state() {
    let scratch = tempfile::tempdir().unwrap();
    let mut setup = setup(80 * MIB, &fake_sd(), &fake_model(scratch.path())).await;
    // The memory is not back yet: the first start is refused (INSUFFICIENT_RESOURCES).
    setup.probe.set_available_ram(0);
    setup.engine.orchestrator().set_policy(OrchestratorPolicy {
        memory_wait_ms: 50,
        reload_backoff_ms: 200,
        poll_ms: 10,
        ..OrchestratorPolicy::default()
    });
    setup.engine.generate_image(small("a cat")).unwrap();
    // A second attempt means the first was refused.
    record_until(&mut setup.events, |event| {
        matches!(
            event,
            EngineEvent::Orchestrator(OrchestratorEvent::Reloading { attempt: 2, .. })
        )
    })
    .await;
    // Memory comes back while the orchestrator retries: a later attempt succeeds.
    setup.probe.set_available_ram(80 * MIB);
    record_until(&mut setup.events, is_reloaded).await;
    assert_eq!(
        setup.engine.llama().status("chat").unwrap().state,
        InstanceState::Healthy
    );

    // Now it never comes back: the reload gives up, says why, and keeps the state.
    setup.engine.orchestrator().set_policy(OrchestratorPolicy {
        memory_wait_ms: 20,
        reload_attempts: 2,
        reload_backoff_ms: 10,
        poll_ms: 5,
        ..OrchestratorPolicy::default()
    });
    setup.probe.set_available_ram(0);
    setup.engine.generate_image(small("another cat")).unwrap();
    let seen = record_until(&mut setup.events, |event| {
        matches!(
            event,
            EngineEvent::Orchestrator(OrchestratorEvent::ReloadFailed { .. })
        )
    })
    .await;
    let Some(EngineEvent::Orchestrator(OrchestratorEvent::ReloadFailed { error, .. })) =
        seen.last()
    else {
        panic!("{seen:#?}");
    };
    assert_eq!(
        error.code,
        switchyard_engine::ErrorCode::InsufficientResources
    );
    let saved = setup.engine.orchestrator().saved_state().expect("kept");
    assert_eq!(saved.instances[0].spec.name, "chat");
    assert!(saved.reload_error.is_some());
    assert!(setup.engine.orchestrator().wait_for_reload(DEADLINE).await);
    setup.engine.shutdown().await;
}

fn is_offloaded(event: &EngineEvent) -> bool {
    matches!(
        event,
        EngineEvent::Orchestrator(OrchestratorEvent::Offloaded { .. })
    )
}

#[tokio::test]
async fn a_chat_request_sent_during_the_offload_is_answered_after_the_reload() {
    let model = shared_sdxs_512();
    let mut setup = setup(GIB, &sd_cli(), &model.path()).await;
    let endpoint = setup
        .engine
        .llama()
        .status("chat")
        .unwrap()
        .api_endpoint
        .expect("the stable endpoint");
    setup.engine.generate_image(small("a switch yard")).unwrap();
    record_until(&mut setup.events, is_offloaded).await;
    assert_eq!(
        setup.engine.llama().status("chat").unwrap().state,
        InstanceState::Stopped,
        "sent while the LLM is offloaded"
    );
    assert!(
        setup.engine.llama().was_running("chat"),
        "paused, not stopped: an app closed now starts it at the next launch"
    );
    // A client, and the LLM tab's test chat, both during the offload.
    let llama = setup.engine.llama().clone();
    let tab_chat = tokio::spawn(async move {
        let mut request = switchyard_engine::llama::ChatRequest::user("still there?");
        request.max_tokens = Some(3);
        llama.chat("chat", request).await
    });
    let (code, _, body) = chat(&endpoint, false).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"choices\""), "{body}");
    tab_chat.await.unwrap().expect("the tab's chat waited too");
    // Answered by the reloaded server, on the same endpoint.
    assert!(setup.engine.orchestrator().saved_state().is_none());
    assert_eq!(
        setup.engine.llama().status("chat").unwrap().state,
        InstanceState::Healthy
    );
    let activity = setup.engine.llama().endpoint_activity("chat").unwrap();
    assert_eq!((activity.forwarded, activity.refused), (2, 0));
    setup.engine.shutdown().await;
}

#[tokio::test]
async fn a_long_queue_lets_the_waiting_chat_in_between_two_offloads() {
    let scratch = tempfile::tempdir().unwrap();
    let mut setup = setup(80 * MIB, &fake_sd(), &fake_model(scratch.path())).await;
    setup.engine.orchestrator().set_policy(OrchestratorPolicy {
        memory_wait_ms: 2_000,
        reload_backoff_ms: 50,
        poll_ms: 10,
        max_window_ms: 0,
        ..OrchestratorPolicy::default()
    });
    let llama = setup.engine.llama().clone();
    let endpoint = llama.status("chat").unwrap().api_endpoint.unwrap();
    // The first image runs until cancelled, so the chat request is surely held
    // while it runs; two more wait behind it.
    let first = generate_hanging_image(&setup.engine);
    let rest: Vec<String> = (0..2)
        .map(|i| {
            setup
                .engine
                .generate_image(small(&format!("cat {i}")))
                .unwrap()
        })
        .collect();
    record_until(&mut setup.events, is_offloaded).await;
    let answer = tokio::spawn(async move { chat(&endpoint, false).await });
    let waiting = llama.clone();
    wait_until("the chat request is held", move || {
        waiting.requests_waiting() == 1
    })
    .await;
    setup.engine.cancel_image_job(&first).unwrap();

    let mut reloads = 0;
    let seen = record_until(&mut setup.events, |event| {
        reloads += usize::from(is_reloaded(event));
        reloads == 2
    })
    .await;
    let order: Vec<&str> = seen
        .iter()
        .filter_map(|event| match event {
            EngineEvent::Orchestrator(OrchestratorEvent::Offloaded { .. }) => Some("offloaded"),
            EngineEvent::Orchestrator(OrchestratorEvent::WindowYielded { .. }) => Some("yielded"),
            EngineEvent::Orchestrator(OrchestratorEvent::Reloaded { .. }) => Some("reloaded"),
            EngineEvent::ImageJobChanged(_) => Some("image"),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "image",
            "yielded",
            "reloaded",
            "offloaded",
            "image",
            "image",
            "reloaded"
        ],
        "{seen:#?}"
    );
    let (code, _, body) = answer.await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        setup.engine.image_job(&first).unwrap().status,
        JobStatus::Cancelled
    );
    for id in rest {
        assert_eq!(
            setup.engine.image_job(&id).unwrap().status,
            JobStatus::Complete
        );
    }
    setup.engine.shutdown().await;
}

/// Room made for other processes' images (the app beside the daemon): the servers
/// stay stopped until the last of them is done; a second "done" from the same
/// process changes nothing.
#[tokio::test]
async fn servers_stopped_for_other_processes_come_back_after_the_last_is_done() {
    let scratch = tempfile::tempdir().unwrap();
    let mut setup = setup(80 * MIB, &fake_sd(), &fake_model(scratch.path())).await;
    let orchestrator = setup.engine.orchestrator().clone();
    let (first, second) = (4_000_001, 4_000_002);

    // Both at once: one offloads, the other finds the servers stopped and holds
    // them too, without a second offload (which would save an empty list).
    let (for_first, for_second) = tokio::join!(
        orchestrator.make_room(first, 64 * MIB, 0),
        orchestrator.make_room(second, 64 * MIB, 0)
    );
    assert!(for_first.unwrap() && for_second.unwrap());
    let offloads = record_until(&mut setup.events, |e| {
        matches!(
            e,
            EngineEvent::Orchestrator(OrchestratorEvent::Offloaded { .. })
        )
    })
    .await;
    assert_eq!(offloads.len(), 1, "{offloads:#?}");
    assert!(orchestrator.holds_room_for(first) && orchestrator.holds_room_for(second));

    orchestrator.room_no_longer_needed(first);
    orchestrator.room_no_longer_needed(first);
    assert_eq!(orchestrator.phase(), OrchestratorPhase::Offloaded);
    assert_eq!(
        setup.engine.llama().status("chat").unwrap().state,
        InstanceState::Stopped
    );

    orchestrator.room_no_longer_needed(second);
    record_until(&mut setup.events, is_reloaded).await;
    assert!(!orchestrator.holds_room_for(second));
    assert_eq!(
        setup.engine.llama().status("chat").unwrap().state,
        InstanceState::Healthy
    );
    setup.engine.shutdown().await;
}

/// This process's own images while another process holds the servers stopped: they
/// join that room (no second offload); a waiting chat request does not break the
/// window (the servers could not come back for it); the servers stay stopped until
/// the other process is done too.
#[tokio::test]
async fn own_images_join_the_room_another_process_holds() {
    let scratch = tempfile::tempdir().unwrap();
    let mut setup = setup(80 * MIB, &fake_sd(), &fake_model(scratch.path())).await;
    let orchestrator = setup.engine.orchestrator().clone();
    orchestrator.set_policy(OrchestratorPolicy {
        max_window_ms: 0,
        ..orchestrator.policy()
    });
    let other = 4_000_003;
    assert!(orchestrator.make_room(other, 64 * MIB, 0).await.unwrap());
    let llama = setup.engine.llama().clone();
    let endpoint = llama.status("chat").unwrap().api_endpoint.unwrap();
    let answer = tokio::spawn(async move { chat(&endpoint, false).await });
    let waiting = llama.clone();
    wait_until("the chat request is held", move || {
        waiting.requests_waiting() == 1
    })
    .await;

    // One window of two images (the first runs until cancelled, so the second
    // surely waits behind it), then a third in a window of its own: it opens only
    // once the first window has closed, so a reload wrongly started by that close
    // would come before it.
    let first = generate_hanging_image(&setup.engine);
    let second = setup.engine.generate_image(small("a dog")).unwrap();
    let engine = setup.engine.clone();
    let running = first.clone();
    wait_until("the first image runs", move || {
        engine.image_job(&running).unwrap().status == JobStatus::Running
    })
    .await;
    setup.engine.cancel_image_job(&first).unwrap();
    let mut seen = Vec::new();
    for id in [
        second,
        setup.engine.generate_image(small("a bird")).unwrap(),
    ] {
        seen.extend(
            record_until(&mut setup.events, |event| {
                matches!(event, EngineEvent::ImageJobChanged(job) if job.id == id && job.status == JobStatus::Complete)
            })
            .await,
        );
    }
    assert_eq!(
        seen.iter().filter(|e| is_offloaded(e)).count(),
        1,
        "{seen:#?}"
    );
    let broke_or_reloaded = |event: &EngineEvent| {
        is_reloaded(event)
            || matches!(
                event,
                EngineEvent::Orchestrator(OrchestratorEvent::WindowYielded { .. })
            )
    };
    assert!(!seen.iter().any(broke_or_reloaded), "{seen:#?}");
    assert_eq!(llama.status("chat").unwrap().state, InstanceState::Stopped);
    assert_eq!(llama.requests_waiting(), 1);

    orchestrator.room_no_longer_needed(other);
    record_until(&mut setup.events, is_reloaded).await;
    let (code, _, body) = answer.await.unwrap();
    assert_eq!(code, 200, "{body}");
    setup.engine.shutdown().await;
}

fn offloads(seen: &[EngineEvent]) -> Vec<(u64, u64)> {
    seen.iter()
        .filter_map(|event| match event {
            EngineEvent::Orchestrator(OrchestratorEvent::Offloaded {
                drain_ms,
                cut_requests,
                ..
            }) => Some((*drain_ms, *cut_requests)),
            _ => None,
        })
        .collect()
}

/// The promise as clients live it: programs that are always talking (plain and
/// streamed, several at once) while images offload and reload the LLM again and
/// again. Each answer under way when an image comes finishes first (the drain);
/// requests sent meanwhile wait; none fails, none is cut.
#[tokio::test]
async fn clients_always_talking_through_offloads_and_reloads_see_no_failure() {
    let model = shared_sdxs_512();
    let mut setup = setup_with(
        GIB,
        &sd_cli(),
        &model.path(),
        &LlamaSpec::default(),
        |spec| {
            spec.config.parallel = 2;
        },
    )
    .await;
    let endpoint = setup
        .engine
        .llama()
        .status("chat")
        .unwrap()
        .api_endpoint
        .unwrap();
    let plan = |stream| ClientPlan {
        stream,
        max_tokens: 48,
        model: None,
    };
    let clients = ChattingClients::start(
        &endpoint,
        &[plan(false), plan(true), plan(false), plan(true)],
    );
    assert!(
        clients.wait_for_requests(8, DEADLINE).await,
        "{:?}",
        clients.tally()
    );
    let mut seen = Vec::new();
    for round in 0..3 {
        for image in 0..2 {
            setup
                .engine
                .generate_image(small(&format!("round {round}, image {image}")))
                .unwrap();
        }
        seen.extend(record_until(&mut setup.events, is_reloaded).await);
        // Answered again by the reloaded server before the next round.
        assert!(
            clients.wait_for_requests(4, DEADLINE).await,
            "{:?}",
            clients.tally()
        );
    }
    let tally = clients.finish().await;
    assert!(tally.failures.is_empty(), "{:#?}", tally.failures);
    assert!(
        tally.ended_with_error_event.is_empty(),
        "every answer under way finished within the drain time: {tally:?}"
    );
    let offloads = offloads(&seen);
    assert_eq!(offloads.len(), 3, "{seen:#?}");
    assert!(offloads.iter().all(|(_, cut)| *cut == 0), "{offloads:?}");
    assert!(tally.complete >= 8 + 3 * 4, "{tally:?}");
    setup.engine.shutdown().await;
}

/// What the drain time could not save is not lost: with a drain time far shorter
/// than the answers, a plain request and a stream that had sent nothing yet are sent
/// again to the reloaded server and answered whole; a stream already under way
/// ends with an `LLM_PAUSED_FOR_IMAGE` error event and `[DONE]`.
#[tokio::test]
async fn answers_left_at_the_drain_time_are_sent_again_or_end_with_an_error_event() {
    let model = shared_sdxs_512();
    let mut setup = setup_with(GIB, &sd_cli(), &model.path(), &slow_model_spec(), |spec| {
        spec.config.context = 4096;
        // Two answers being written, and a stream waiting in the server's queue.
        spec.config.parallel = 2;
    })
    .await;
    setup.engine.orchestrator().set_policy(OrchestratorPolicy {
        drain_ms: 100,
        ..setup.engine.orchestrator().policy()
    });
    let endpoint = setup
        .engine
        .llama()
        .status("chat")
        .unwrap()
        .api_endpoint
        .unwrap();
    let send = |stream| {
        let endpoint = endpoint.clone();
        tokio::spawn(async move { long_chat(&endpoint, stream, 1000).await })
    };
    let (plain, under_way) = (send(false), send(true));
    wait_for_generation(&endpoint, 2, 5).await;
    let queued = send(true);
    let llama = setup.engine.llama().clone();
    wait_until("the third request is in the server's queue", move || {
        llama.endpoint_activity("chat").unwrap().in_flight == 3
    })
    .await;

    setup.engine.generate_image(small("a switch yard")).unwrap();
    let seen = record_until(&mut setup.events, is_reloaded).await;
    assert_eq!(
        offloads(&seen).first().map(|(_, cut)| *cut),
        Some(3),
        "{seen:#?}"
    );

    let (code, body) = under_way.await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        judge_stream(&body.unwrap()),
        Ok(Some("LLM_PAUSED_FOR_IMAGE".into()))
    );
    let (code, body) = plain.await.unwrap();
    let body = body.unwrap();
    assert_eq!((code, judge_plain(&body)), (200, Ok(())), "{body}");
    let (code, body) = queued.await.unwrap();
    assert_eq!((code, judge_stream(&body.unwrap())), (200, Ok(None)));
    setup.engine.shutdown().await;
}

/// One arbiter: an image pauses a model the Switchyard endpoint serves like any
/// other (the endpoint holds its requests meanwhile and does not start it beside
/// the image), and never pauses a pinned one.
#[tokio::test]
async fn the_endpoints_requests_wait_through_an_image_and_a_pinned_model_is_never_paused() {
    let model = shared_sdxs_512();
    let mut setup = setup(GIB, &sd_cli(), &model.path()).await;
    let address = setup
        .engine
        .router()
        .serve("127.0.0.1", 0)
        .await
        .expect("the endpoint listens");
    let ask = || async move {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("http://{address}/v1/chat/completions"))
            .json(&serde_json::json!({
                "model": "chat",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 3,
            }))
            .send()
            .await
            .expect("the endpoint answers")
            .status()
            .as_u16()
    };
    assert_eq!(ask().await, 200);
    setup.engine.generate_image(small("a switch yard")).unwrap();
    record_until(&mut setup.events, is_offloaded).await;
    assert_eq!(ask().await, 200, "held through the image, then answered");
    let seen = record_until(&mut setup.events, is_reloaded).await;
    assert!(
        !seen.iter().any(|event| matches!(
            event,
            EngineEvent::Orchestrator(OrchestratorEvent::ModelLoaded { .. })
        )),
        "the orchestrator brought it back, the endpoint did not load it beside the image: {seen:#?}"
    );
    setup.engine.shutdown().await;

    // Pinned: the image goes ahead beside it.
    let mut setup = setup_with(
        GIB,
        &sd_cli(),
        &model.path(),
        &LlamaSpec::default(),
        |spec| {
            spec.pinned = true;
        },
    )
    .await;
    let pid = setup.engine.llama().status("chat").unwrap().pid;
    let id = setup.engine.generate_image(small("a pinned yard")).unwrap();
    let seen = record_until(&mut setup.events, |event| {
        matches!(event, EngineEvent::ImageJobChanged(job) if job.id == id && job.status == JobStatus::Complete)
    })
    .await;
    let paused: Vec<&Vec<String>> = seen
        .iter()
        .filter_map(|event| match event {
            EngineEvent::Orchestrator(OrchestratorEvent::Offloaded { instances, .. }) => {
                Some(instances)
            }
            _ => None,
        })
        .collect();
    assert!(
        paused.iter().all(|instances| instances.is_empty()),
        "{paused:?}"
    );
    let status = setup.engine.llama().status("chat").unwrap();
    assert_eq!((status.state, status.pid), (InstanceState::Healthy, pid));
    setup.engine.shutdown().await;
}
