//! What the llama-server tests share: an engine with the real llama-server set up,
//! generated models, short policies, and waiting for events with deadlines.

#![allow(dead_code, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_engine::clock::SystemClock;
use switchyard_engine::llama::{
    HealthPolicy, InstanceSpec, InstanceState, LogPolicy, RestartPolicy, SlotSavePolicy,
    StateChange, StopPolicy, SupervisionPolicy,
};
use switchyard_engine::settings::Settings;
use switchyard_engine::{Engine, EngineDeps, EngineEvent};
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::tools::use_real_llama_server;
use switchyard_testkit::FakeProbe;
use tokio::sync::broadcast;

/// Generous: a loaded CI machine may be slow, a passing test never waits this long.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Short everything, so restarts and stops take milliseconds.
pub fn fast_policy() -> SupervisionPolicy {
    SupervisionPolicy {
        restart: RestartPolicy {
            enabled: true,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
            start_limit: 3,
            window: Duration::from_secs(600),
        },
        health: HealthPolicy {
            loading_interval: Duration::from_millis(10),
            healthy_interval: Duration::from_millis(100),
            probe_timeout: Duration::from_secs(2),
            unhealthy_after: 3,
            load_timeout: Duration::from_secs(60),
            restart_unhealthy_after: None,
        },
        stop: StopPolicy {
            graceful: Duration::from_millis(800),
            after_second_term: Duration::from_secs(2),
            ..StopPolicy::default()
        },
        logs: LogPolicy::default(),
        slots: SlotSavePolicy::default(),
    }
}

pub struct Rig {
    pub engine: Engine,
    pub events: broadcast::Receiver<EngineEvent>,
    pub dir: tempfile::TempDir,
}

impl Rig {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A generated model in the test's folder.
    pub fn model(&self, file: &str, spec: &LlamaSpec) -> PathBuf {
        let path = self.dir.path().join(file);
        spec.write_to(&path).expect("model written");
        path
    }
}

/// An engine in a fresh folder with the real llama-server as the user's binary.
pub async fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine_at(&dir.path().join("data"), dir.path()).await;
    let events = engine.subscribe();
    Rig {
        engine,
        events,
        dir,
    }
}

/// An engine on `data_dir` (a second launch of the app uses the same folder).
pub async fn engine_at(data_dir: &Path, config_parent: &Path) -> Engine {
    let engine = Engine::new(EngineDeps {
        data_dir_override: Some(data_dir.to_path_buf()),
        config_dir: config_parent.join("config"),
        settings: Settings::default(),
        probe: Arc::new(FakeProbe::cpu_only(16)),
        clock: Arc::new(SystemClock),
    })
    .expect("engine");
    use_real_llama_server(&engine)
        .await
        .expect("the real llama-server passes its checks");
    engine.llama().set_policy(fast_policy());
    engine
}

/// Small and fast: 512 tokens of context, one slot, two threads.
pub fn spec(name: &str, model: &Path) -> InstanceSpec {
    let mut spec = InstanceSpec::new(name, model);
    spec.config.context = 512;
    spec.config.parallel = 1;
    spec.auto.context = false;
    spec.threads = Some(2);
    spec
}

/// The state changes of `name` until it reaches `target` (inclusive).
pub async fn wait_for_state(
    events: &mut broadcast::Receiver<EngineEvent>,
    name: &str,
    target: InstanceState,
) -> Vec<StateChange> {
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let left = DEADLINE.saturating_sub(started.elapsed());
        let event = tokio::time::timeout(left, events.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("no {target:?} for {name} within {DEADLINE:?}; saw {seen:#?}")
            });
        match event {
            Ok(EngineEvent::LlamaState(change)) if change.name == name => {
                let reached = change.to == target;
                seen.push(change);
                if reached {
                    return seen;
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                panic!("the test fell {missed} events behind")
            }
            Err(broadcast::error::RecvError::Closed) => panic!("event bus closed"),
        }
    }
}

pub fn states(changes: &[StateChange]) -> Vec<InstanceState> {
    changes.iter().map(|change| change.to).collect()
}

/// Whether the process `pid` is gone (or a zombie nobody reaped yet).
pub fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// Waits until `pid` is gone; false at the deadline.
pub async fn wait_gone(pid: u32, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if is_gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    is_gone(pid)
}

pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

pub fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -9 {pid}");
}

/// A short chat sent to `base` (an endpoint or a server): the status and the body.
pub async fn chat(base: &str, stream: bool) -> (u16, Option<String>, String) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("{base}/v1/chat/completions"))
        .json(&serde_json::json!({
            "messages": [{"role": "user", "content": "Say hi"}],
            "max_tokens": 4,
            "seed": 1,
            "stream": stream,
        }))
        .send()
        .await
        .expect("the endpoint answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    (status, retry_after, response.text().await.expect("a body"))
}

/// The stable error code in an endpoint's refusal.
pub fn refusal_code(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).expect("a JSON refusal");
    value["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Polls `condition` until it holds; panics at the deadline with `what`.
pub async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < DEADLINE,
            "not within {DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A generated model slow enough here (milliseconds per token) that a long answer
/// is surely still being written when a test acts on its server; 4,096 tokens of
/// context.
pub fn slow_model_spec() -> LlamaSpec {
    LlamaSpec {
        layers: 4,
        embedding: 512,
        heads: 8,
        kv_heads: 4,
        feed_forward: 1024,
        context: 4096,
        ..LlamaSpec::default()
    }
}

/// A chat completion of `max_tokens` sent to `base`, plain or streamed: the status
/// and the whole body as the client read it (a cut body reads as an error).
pub async fn long_chat(base: &str, stream: bool, max_tokens: u32) -> (u16, Result<String, String>) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("{base}/v1/chat/completions"))
        .json(&serde_json::json!({
            "messages": [{"role": "user", "content": "Tell me a long story."}],
            "max_tokens": max_tokens,
            "seed": 7,
            // Random weights sample their end-of-text token after a few hundred.
            "ignore_eos": true,
            "stream": stream,
        }))
        .send()
        .await
        .expect("the endpoint answers");
    let status = response.status().as_u16();
    (
        status,
        response.text().await.map_err(|error| error.to_string()),
    )
}

/// Waits until `slots` of the server behind `endpoint` are each generating with at
/// least `tokens` tokens written (its `/slots`, through the endpoint: the server's
/// own port wants Switchyard's key).
pub async fn wait_for_generation(endpoint: &str, slots: usize, tokens: u64) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let started = Instant::now();
    loop {
        let busy = match client.get(format!("{endpoint}/slots")).send().await {
            Ok(answer) => answer
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|slots| slots.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter(|slot| {
                    slot["is_processing"].as_bool() == Some(true)
                        && slot["next_token"][0]["n_decoded"].as_u64().unwrap_or(0) >= tokens
                })
                .count(),
            Err(_) => 0,
        };
        if busy >= slots {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{slots} slots never generated {tokens} tokens"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const REPO: &str = "switchyard/tiny-llama-GGUF";

/// Installs the generated tiny model from a fixture Hub; returns its id.
pub async fn install_tiny_model(
    engine: &Engine,
    server: &switchyard_testkit::FixtureServer,
) -> String {
    server.add_hub_file(REPO, "tiny-F32.gguf", LlamaSpec::default().to_bytes(), None);
    engine
        .update_settings(Settings {
            hub_url: server.hub_url(),
            ..engine.settings()
        })
        .expect("settings");
    let mut events = engine.subscribe();
    let id = engine
        .add_model(switchyard_engine::models::AddModel {
            name: "Tiny llama".into(),
            kind: switchyard_engine::models::ModelKind::Llm,
            files: vec![switchyard_engine::models::AddModelFile {
                location: switchyard_engine::models::ModelLocation::Hub {
                    repo: REPO.into(),
                    revision: "main".into(),
                    path: "tiny-F32.gguf".into(),
                },
                role: switchyard_engine::models::FileRole::Weights,
                expected_sha256: None,
            }],
        })
        .await
        .expect("download started");
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(EngineEvent::DownloadChanged(status)) = events.recv().await {
                if status.id == id
                    && status.state == switchyard_engine::models::DownloadState::Complete
                {
                    return;
                }
            }
        }
    })
    .await
    .expect("the model downloads");
    id
}
