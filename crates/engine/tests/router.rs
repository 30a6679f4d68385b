//! The Switchyard endpoint with the real llama-server: one address, the request's
//! `model` picks the model; loads on request (once, however many ask), places by
//! memory (a budget that fits two of three models), evicts the least recently
//! used, never a pinned one, a busy one only after its answer; unloads idle models
//! by the manual clock and at once for `keep_alive: 0`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod llama_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use llama_common::{fast_policy, spec, DEADLINE};
use serde_json::{json, Value};
use switchyard_engine::orchestrator::router::{ModelState, RouterPolicy};
use switchyard_engine::orchestrator::{OrchestratorEvent, OrchestratorPolicy};
use switchyard_engine::settings::Settings;
use switchyard_engine::{Engine, EngineDeps, EngineEvent};
use switchyard_testkit::chat_clients::{judge_stream, ChattingClients, ClientPlan};
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::tools::use_real_llama_server;
use switchyard_testkit::FakeProbe;
use switchyard_testkit::ManualClock;
use tokio::sync::broadcast::Receiver;

const GIB: u64 = 1024 * 1024 * 1024;

struct Rig {
    engine: Engine,
    clock: Arc<ManualClock>,
    base: String,
    events: Receiver<EngineEvent>,
    _dir: tempfile::TempDir,
}

/// An engine (16 GiB, CPU) with the real llama-server, the endpoint on a free
/// port, and instances `names` of one generated model of a known size each.
async fn rig(names: &[&str]) -> Rig {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::at(1_700_000_000_000));
    let engine = Engine::new(EngineDeps {
        data_dir_override: Some(dir.path().join("data")),
        config_dir: dir.path().join("config"),
        settings: Settings::default(),
        probe: Arc::new(FakeProbe::cpu_only(16)),
        clock: clock.clone(),
    })
    .expect("engine");
    use_real_llama_server(&engine)
        .await
        .expect("the real llama-server passes its checks");
    engine.llama().set_policy(fast_policy());
    engine.router().set_policy(RouterPolicy {
        idle_check_ms: 20,
        eviction_wait_ms: 20_000,
        ..RouterPolicy::default()
    });
    let model = LlamaSpec::weights_bound();
    for name in names {
        let path = dir.path().join(format!("{name}.gguf"));
        model.write_to(&path).expect("model written");
        engine.llama().create(spec(name, &path)).expect("instance");
    }
    let address = engine
        .router()
        .serve("127.0.0.1", 0)
        .await
        .expect("the endpoint listens");
    let events = engine.subscribe();
    Rig {
        engine,
        clock,
        base: format!("http://{address}"),
        events,
        _dir: dir,
    }
}

impl Rig {
    /// Lets loaded models together hold `models` times what `loaded` holds now.
    fn budget_of(&self, loaded: &str, models: f64) {
        let held = self
            .model(loaded)
            .ram_bytes
            .expect("a loaded model's memory");
        #[allow(clippy::cast_precision_loss)]
        let threshold = models * held as f64 / (16 * GIB) as f64;
        self.engine.orchestrator().set_policy(OrchestratorPolicy {
            threshold,
            ..self.engine.orchestrator().policy()
        });
    }

    fn model(&self, id: &str) -> switchyard_engine::orchestrator::router::RoutedModel {
        self.engine
            .routed_models()
            .into_iter()
            .find(|model| model.id == id)
            .unwrap_or_else(|| panic!("no model {id}"))
    }

    fn state(&self, id: &str) -> ModelState {
        self.model(id).state
    }

    /// Waits for `id` to reach `state`.
    async fn wait_for(&self, id: &str, state: ModelState) {
        let started = Instant::now();
        while self.state(id) != state {
            assert!(
                started.elapsed() < DEADLINE,
                "{id} never became {state:?}: {:?}",
                self.engine.routed_models()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The router's load and unload events seen so far.
    fn placements(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            match event {
                EngineEvent::Orchestrator(OrchestratorEvent::ModelLoaded { instance, .. }) => {
                    seen.push(format!("load {instance}"));
                }
                EngineEvent::Orchestrator(OrchestratorEvent::ModelUnloaded {
                    instance,
                    reason,
                    ..
                }) => seen.push(format!("unload {instance} ({reason})")),
                _ => {}
            }
        }
        seen
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// A short chat for `model` through the endpoint, with `extra` fields: the
/// status and the body.
async fn ask(base: &str, model: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": 4,
        "seed": 1,
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let response = client()
        .post(format!("{base}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .expect("the endpoint answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn answered(base: &str, model: &str) {
    let (status, body) = ask(base, model, json!({})).await;
    assert_eq!(status, 200, "{model}: {body}");
    assert!(
        body["choices"][0]["message"]["content"].is_string(),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_of_three_fit_the_least_recently_used_makes_room_and_a_request_for_it_meanwhile_is_answered(
) {
    let mut rig = rig(&["a", "b", "c"]).await;
    answered(&rig.base, "a").await;
    rig.budget_of("a", 2.5);
    answered(&rig.base, "b").await;
    assert_eq!(rig.state("a"), ModelState::Loaded, "two fit side by side");
    assert_eq!(rig.state("b"), ModelState::Loaded);
    assert_eq!(rig.placements(), ["load a", "load b"]);

    // C needs a's room (a is the least recently used); a request for a while C
    // loads waits, then brings a back in b's place.
    let for_c = tokio::spawn({
        let base = rig.base.clone();
        async move { ask(&base, "c", json!({})).await }
    });
    rig.wait_for("a", ModelState::Unloaded).await;
    let (status, body) = ask(&rig.base, "a", json!({})).await;
    assert_eq!(status, 200, "the request for a during c's load: {body}");
    let (status, body) = for_c.await.expect("c's request");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        rig.placements(),
        [
            "unload a (to make room for `c`)",
            "load c",
            "unload b (to make room for `a`)",
            "load a",
        ]
    );
    assert_eq!(rig.state("b"), ModelState::Unloaded);
    assert_eq!(rig.state("c"), ModelState::Loaded);
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pinned_model_is_never_evicted() {
    let mut rig = rig(&["a", "b", "c"]).await;
    rig.engine.pin_model("a", true).expect("pinned");
    answered(&rig.base, "a").await;
    rig.budget_of("a", 2.5);
    answered(&rig.base, "b").await;
    answered(&rig.base, "c").await;
    assert_eq!(
        rig.placements(),
        [
            "load a",
            "load b",
            "unload b (to make room for `c`)",
            "load c"
        ],
        "a is the least recently used, but pinned"
    );
    // Idle time does not apply to it either.
    rig.clock.advance_ms(24 * 3_600_000);
    answered(&rig.base, "c").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rig.state("a"), ModelState::Loaded);
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_streaming_answer_delays_the_eviction_of_its_model_and_arrives_whole() {
    let mut rig = rig(&["a", "b"]).await;
    answered(&rig.base, "a").await;
    rig.budget_of("a", 1.5);
    let stream = client()
        .post(format!("{}/v1/chat/completions", rig.base))
        .json(&json!({
            "model": "a",
            "messages": [{"role": "user", "content": "Tell a long story"}],
            "max_tokens": 400,
            "ignore_eos": true,
            "seed": 1,
            "stream": true,
        }))
        .send()
        .await
        .expect("the stream begins");
    assert_eq!(stream.status(), 200);
    // b needs a's room; a is answering, so b waits for the answer's end.
    let for_b = tokio::spawn({
        let base = rig.base.clone();
        async move { ask(&base, "b", json!({})).await }
    });
    let text = stream.text().await.expect("the whole stream");
    assert_eq!(
        judge_stream(&text),
        Ok(None),
        "the stream ends normally, not cut: {}",
        &text[text.len().saturating_sub(300)..]
    );
    let (status, body) = for_b.await.expect("b's request");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        rig.placements(),
        ["load a", "unload a (to make room for `b`)", "load b"]
    );
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_models_are_unloaded_by_the_clock_and_keep_alive_zero_unloads_at_once() {
    let mut rig = rig(&["a", "b", "mine"]).await;
    // Started by the person: no idle unloading.
    rig.engine
        .llama()
        .start("mine")
        .await
        .expect("started by hand");
    answered(&rig.base, "a").await;
    rig.clock.advance_ms(14 * 60_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        rig.state("a"),
        ModelState::Loaded,
        "14 minutes: still loaded"
    );
    rig.clock.advance_ms(60_000);
    rig.wait_for("a", ModelState::Unloaded).await;

    let (status, body) = ask(&rig.base, "b", json!({"keep_alive": 0})).await;
    assert_eq!(status, 200, "{body}");
    rig.wait_for("b", ModelState::Unloaded).await;
    assert_eq!(rig.state("mine"), ModelState::Loaded);
    assert_eq!(
        rig.placements(),
        ["load a", "unload a (idle)", "load b", "unload b (idle)"]
    );
    // A model's own idle time; and `keep_alive: -1` keeps it past that.
    let mut spec = rig.engine.llama().status("a").expect("a").spec;
    spec.idle_unload_secs = Some(60);
    rig.engine.llama().update(spec).expect("updated");
    let (status, _) = ask(&rig.base, "a", json!({"keep_alive": "-1"})).await;
    assert_eq!(status, 200);
    rig.clock.advance_ms(3_600_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rig.state("a"), ModelState::Loaded, "keep_alive -1 keeps it");
    let (status, _) = ask(&rig.base, "a", json!({})).await;
    assert_eq!(status, 200);
    let _ = rig.placements();
    rig.clock.advance_ms(30_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        rig.state("a"),
        ModelState::Loaded,
        "the keep_alive stays until a new one"
    );
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_model_bigger_than_the_budget_is_refused_naming_the_resource_and_nothing_is_unloaded() {
    let rig = rig(&["a", "b"]).await;
    answered(&rig.base, "a").await;
    // Room for half of one model.
    rig.budget_of("a", 0.5);
    let (status, body) = ask(&rig.base, "b", json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "INSUFFICIENT_RESOURCES", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("RAM"), "{message}");
    assert_eq!(rig.state("a"), ModelState::Loaded, "nothing was unloaded");
    assert_eq!(rig.state("b"), ModelState::Unloaded);
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_requests_for_a_cold_model_start_one_server() {
    let mut rig = rig(&["a"]).await;
    let requests: Vec<_> = (0..10)
        .map(|_| {
            let base = rig.base.clone();
            tokio::spawn(async move { ask(&base, "a", json!({})).await })
        })
        .collect();
    for request in requests {
        let (status, body) = request.await.expect("request");
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(rig.placements(), ["load a"]);
    let starts = rig.engine.llama().status("a").expect("a").restarts;
    assert_eq!(starts, 0);
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_model_is_a_404_in_openai_shape_naming_the_known_ones() {
    let rig = rig(&["a", "b"]).await;
    let (status, body) = ask(&rig.base, "gpt-4o", json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("gpt-4o") && message.contains("a, b"),
        "{message}"
    );
    // The list: every model, its state and whether it is pinned.
    let list: Value = client()
        .get(format!("{}/v1/models", rig.base))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|model| model["id"].as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(list["data"][0]["switchyard"]["state"], "unloaded");
    assert_eq!(list["data"][0]["switchyard"]["pinned"], false);
    // A foreign page is refused like at every listener.
    let foreign = client()
        .get(format!("{}/v1/models", rig.base))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .expect("answer");
    assert_eq!(foreign.status(), 403);
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_installed_model_is_served_by_its_id_through_an_instance_made_on_first_use() {
    let rig = rig(&[]).await;
    let server = switchyard_testkit::FixtureServer::start()
        .await
        .expect("fixture hub");
    let id = llama_common::install_tiny_model(&rig.engine, &server).await;
    answered(&rig.base, &id).await;
    let model = rig.model(&id);
    assert_eq!(model.state, ModelState::Loaded);
    assert_eq!(model.instance.as_deref(), Some(id.as_str()));
    // One instance, made once: a second request uses it.
    answered(&rig.base, &id).await;
    assert_eq!(rig.engine.llama().list().len(), 1);
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_machines_reach_the_endpoint_only_with_its_key_kept_in_a_private_file() {
    let rig = rig(&["a"]).await;
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let on_network = Settings {
        endpoint_on_network: true,
        endpoint_port: free_port,
        ..rig.engine.settings()
    };
    let refused = rig
        .engine
        .update_settings(on_network.clone())
        .expect_err("no key yet");
    assert!(refused.to_string().contains("key"), "{refused}");

    rig.engine
        .set_endpoint_api_key(Some(" s3cret-key ".into()))
        .expect("key set");
    let file = rig.engine.layout().state().join("endpoint-api.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file).expect("key file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    rig.engine.update_settings(on_network).expect("with a key");
    // The endpoint moves at once to every address, on the new port.
    let started = Instant::now();
    while !rig
        .engine
        .router()
        .address()
        .is_some_and(|address| address.ip().is_unspecified() && address.port() == free_port)
    {
        assert!(
            started.elapsed() < DEADLINE,
            "{:?}",
            rig.engine.router().address()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let base = format!("http://127.0.0.1:{free_port}");
    let (status, body) = ask(&base, "a", json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let answer = client()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("s3cret-key")
        .json(&json!({"model": "a", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    // The key cannot go while other machines are served.
    assert!(rig.engine.set_endpoint_api_key(None).is_err());
    rig.engine.shutdown().await;
}

/// Clients always talking to three models when two fit, streams included: models
/// keep being unloaded and loaded under them, and no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_always_talking_to_three_models_that_two_fit_see_no_failure() {
    let mut rig = rig(&["a", "b", "c"]).await;
    answered(&rig.base, "a").await;
    rig.budget_of("a", 2.5);
    let plans: Vec<ClientPlan> = ["a", "b", "c", "a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(index, model)| ClientPlan {
            stream: index % 2 == 0,
            max_tokens: 8,
            model: Some((*model).to_owned()),
        })
        .collect();
    let clients = ChattingClients::start(&rig.base, &plans);
    // Until models have been swapped under the clients several times.
    let started = Instant::now();
    let mut placements = rig.placements();
    while placements
        .iter()
        .filter(|seen| seen.starts_with("unload"))
        .count()
        < 4
    {
        assert!(started.elapsed() < DEADLINE, "{placements:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        placements.extend(rig.placements());
    }
    assert!(clients.wait_for_requests(6, DEADLINE).await);
    let tally = clients.finish().await;
    assert_eq!(tally.failures, Vec::<String>::new(), "{placements:?}");
    assert!(tally.ended_with_error_event.is_empty(), "{tally:?}");
    assert!(tally.complete >= 12, "{tally:?}");
    rig.engine.shutdown().await;
}
