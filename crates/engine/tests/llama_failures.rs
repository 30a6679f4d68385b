//! What goes wrong, with the real llama-server: crashes and restarts, crash loops,
//! busy ports, damaged models, a stop while it streams.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod llama_common;

use std::time::{Duration, Instant};

use llama_common::{kill_9, rig, spec, states, wait_for_state, wait_gone};
use switchyard_engine::llama::{ChatRequest, InstanceState};
use switchyard_engine::{EngineEvent, ErrorCode};

use switchyard_testkit::gguf::LlamaSpec;

#[tokio::test]
async fn a_killed_server_is_seen_crashed_and_restarted_healthy() {
    let mut rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    llama.create(spec("phoenix", &model)).unwrap();
    let first = llama.start("phoenix").await.expect("starts");
    wait_for_state(&mut rig.events, "phoenix", InstanceState::Healthy).await;
    let first_pid = first.pid.expect("pid");

    kill_9(first_pid);
    let changes = wait_for_state(&mut rig.events, "phoenix", InstanceState::Healthy).await;
    let seen = states(&changes);
    assert_eq!(
        &seen[..3],
        [
            InstanceState::Crashed,
            InstanceState::Restarting,
            InstanceState::Starting
        ],
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&InstanceState::Healthy));
    let crashed = &changes[0];
    let error = crashed.error.as_ref().expect("the crash's error");
    assert_eq!(error.code, ErrorCode::ServerCrashed);
    assert!(error.message.contains("SIGKILL"), "{}", error.message);
    assert!(
        changes[1]
            .reason
            .starts_with("restarting in 50 ms (2 of at most 3"),
        "{}",
        changes[1].reason
    );

    let status = llama.status("phoenix").unwrap();
    assert_eq!(status.restarts, 1);
    assert_ne!(status.pid, Some(first_pid));
    let mut request = ChatRequest::user("still there?");
    request.max_tokens = Some(3);
    llama
        .chat("phoenix", request)
        .await
        .expect("the new server answers");
    llama.stop("phoenix").await.unwrap();
}

#[tokio::test]
async fn a_crash_loop_stops_at_the_start_limit_with_llama_servers_reason() {
    let mut rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    llama.create(spec("looping", &model)).unwrap();
    let status = llama.start("looping").await.expect("starts");
    // From now on every start fails: the file is no longer a model.
    std::fs::write(&model, b"this is not a GGUF file at all").unwrap();
    kill_9(status.pid.expect("pid"));

    let changes = wait_for_state(&mut rig.events, "looping", InstanceState::Failed).await;
    let seen = states(&changes);
    let starts = seen
        .iter()
        .filter(|s| **s == InstanceState::Starting)
        .count();
    // The limit is 3 starts within the window: the first and two restarts.
    assert_eq!(starts, 3, "{seen:?}");
    assert_eq!(
        seen.iter()
            .filter(|s| **s == InstanceState::Crashed)
            .count(),
        3
    );
    let failed = changes.last().unwrap();
    let error = failed.error.as_ref().expect("why it failed");
    assert_eq!(error.code, ErrorCode::ServerFailed);
    assert!(error.message.contains("3 starts"), "{}", error.message);
    assert!(
        error.message.contains("invalid magic characters"),
        "llama-server's own words: {}",
        error.message
    );
    let status = llama.status("looping").unwrap();
    assert_eq!(status.state, InstanceState::Failed);
    assert!(
        !llama.was_running("looping"),
        "a failed instance is not restored"
    );
    // Backoff doubled: 50 ms, then 100 ms.
    let delays: Vec<&str> = changes
        .iter()
        .filter(|c| c.to == InstanceState::Restarting)
        .map(|c| c.reason.as_str())
        .collect();
    assert!(delays[0].starts_with("restarting in 50 ms"), "{delays:?}");
    assert!(delays[1].starts_with("restarting in 100 ms"), "{delays:?}");
}

#[tokio::test]
async fn a_busy_port_is_reported_before_anything_is_spawned() {
    let mut rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let llama = rig.engine.llama().clone();
    let mut busy = spec("busy", &model);
    busy.port = Some(port);
    llama.create(busy).unwrap();

    let error = llama.start("busy").await.expect_err("the port is taken");
    assert_eq!(error.code(), ErrorCode::PortInUse);
    assert!(error.to_string().contains(&port.to_string()), "{error}");
    let status = llama.status("busy").unwrap();
    assert_eq!(status.state, InstanceState::Stopped);
    assert_eq!(status.pid, None);
    assert!(
        llama.logs("busy", 0, 100).unwrap().is_empty(),
        "nothing ran"
    );
    assert!(!rig.data_dir().join("state/llama-busy.pid.json").exists());
    while let Ok(event) = rig.events.try_recv() {
        assert!(
            !matches!(
                event,
                EngineEvent::LlamaState(_) | EngineEvent::LlamaLog { .. }
            ),
            "nothing was spawned: {event:?}"
        );
    }
    drop(taken);
    llama
        .start("busy")
        .await
        .expect("starts once the port is free");
    llama.stop("busy").await.unwrap();
}

#[tokio::test]
async fn a_damaged_model_fails_with_llama_servers_own_message() {
    let rig = rig().await;
    let llama = rig.engine.llama().clone();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "random",
            vec![0x9c, 0x58, 0x40, 0xaa, 1, 2, 3, 4, 5, 6, 7, 8],
            "invalid magic characters",
        ),
        ("empty", Vec::new(), "failed to read magic"),
        (
            "cut",
            LlamaSpec::default().to_bytes()[..40_000].to_vec(),
            "not within the file bounds",
        ),
    ];
    for (name, bytes, expected) in cases {
        let model = rig.dir.path().join(format!("{name}.gguf"));
        std::fs::write(&model, bytes).unwrap();
        llama.create(spec(name, &model)).unwrap();
        let error = llama.start(name).await.expect_err("cannot load");
        assert_eq!(
            error.code(),
            ErrorCode::ServerStartFailed,
            "{name}: {error}"
        );
        assert!(error.to_string().contains(expected), "{name}: {error}");
        let status = llama.status(name).unwrap();
        assert_eq!(status.state, InstanceState::Failed);
        assert_eq!(status.restarts, 0, "a start that fails is not retried");
    }
}

#[tokio::test]
async fn a_stop_during_a_streaming_chat_ends_within_the_deadline() {
    let rig = rig().await;
    // A long context, so the answer can stream for seconds.
    let model = rig.model(
        "long.gguf",
        &LlamaSpec {
            context: 32768,
            ..LlamaSpec::default()
        },
    );
    let llama = rig.engine.llama().clone();
    let mut long = spec("chatty", &model);
    long.config.context = 32768;
    llama.create(long).unwrap();
    let status = llama.start("chatty").await.expect("starts");
    let pid = status.pid.expect("pid");

    // A streaming request through the endpoint (the server's own port wants
    // Switchyard's key): `ignore_eos` keeps the random model talking (it would
    // sample its end-of-text token within a few hundred tokens otherwise).
    let port = status.running.as_ref().expect("running").port;
    let endpoint = status.api_endpoint.clone().expect("the endpoint");
    let mut response = reqwest::Client::new()
        .post(format!("{endpoint}/v1/chat/completions"))
        .json(&serde_json::json!({
            "messages": [{"role": "user", "content": "tell me everything"}],
            "max_tokens": 30000,
            "ignore_eos": true,
            "stream": true,
        }))
        .send()
        .await
        .expect("the chat starts");
    // Wait for tokens, not only the first chunk: llama-server sends the role
    // chunk before it processes the prompt, and a SIGTERM then still ends it at
    // once.
    let mut streamed = 0;
    while streamed < 4000 {
        let chunk = tokio::time::timeout(llama_common::DEADLINE, response.chunk())
            .await
            .expect("tokens in time")
            .expect("readable")
            .expect("the answer goes on");
        streamed += chunk.len();
    }
    let chatting = tokio::spawn(async move {
        let mut text = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            text.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    let policy = llama.policy().stop;
    let started = Instant::now();
    let stopped = llama.stop("chatty").await.expect("stops");
    let took = started.elapsed();
    assert_eq!(stopped.state, InstanceState::Stopped);
    assert!(
        took < policy.graceful + policy.after_second_term + Duration::from_millis(500),
        "took {took:?}"
    );
    // llama-server either cancels the request and exits on the first SIGTERM or
    // hangs until the second, depending on where the request is; both end here
    // (the second-SIGTERM and SIGKILL steps are tested deterministically in
    // `process::stop`).
    assert!(stopped.reason.starts_with("stopped"), "{}", stopped.reason);
    assert!(llama_common::port_is_free(port), "the port is free");
    assert!(wait_gone(pid, Duration::from_secs(1)).await);
    let streamed = tokio::time::timeout(Duration::from_secs(10), chatting)
        .await
        .expect("the chat's stream ends with the server")
        .expect("no panic");
    // Ended as a stream should: an error event saying why, then [DONE].
    assert!(
        streamed.ends_with("data: [DONE]\n\n") && streamed.contains("\"LLM_STOPPED\""),
        "…{}",
        streamed
            .get(streamed.len().saturating_sub(400)..)
            .unwrap_or(&streamed)
    );
}

#[tokio::test]
async fn a_frozen_server_turns_unhealthy_and_back() {
    let mut rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    let mut policy = llama_common::fast_policy();
    policy.health.healthy_interval = Duration::from_millis(50);
    policy.health.probe_timeout = Duration::from_millis(200);
    llama.set_policy(policy);
    llama.create(spec("frozen", &model)).unwrap();
    let pid = llama
        .start("frozen")
        .await
        .expect("starts")
        .pid
        .expect("pid");
    wait_for_state(&mut rig.events, "frozen", InstanceState::Healthy).await;

    // SIGSTOP: the process lives but answers nothing, as a hung server would.
    signal(pid, "-STOP");
    let changes = wait_for_state(&mut rig.events, "frozen", InstanceState::Unhealthy).await;
    assert_eq!(states(&changes), [InstanceState::Unhealthy]);
    assert!(
        changes[0].reason.contains("3 health checks"),
        "{}",
        changes[0].reason
    );
    signal(pid, "-CONT");
    let changes = wait_for_state(&mut rig.events, "frozen", InstanceState::Healthy).await;
    assert_eq!(changes[0].reason, "answers again");
    assert_eq!(
        llama.status("frozen").unwrap().pid,
        Some(pid),
        "the same process"
    );
    llama.stop("frozen").await.unwrap();
}

fn signal(pid: u32, which: &str) {
    let status = std::process::Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn a_server_hung_for_too_long_is_replaced() {
    let mut rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    let mut policy = llama_common::fast_policy();
    policy.health.healthy_interval = Duration::from_millis(50);
    policy.health.probe_timeout = Duration::from_millis(200);
    policy.health.restart_unhealthy_after = Some(Duration::from_millis(300));
    policy.stop.graceful = Duration::from_millis(100);
    policy.stop.after_second_term = Duration::from_millis(100);
    llama.set_policy(policy);
    llama.create(spec("hung", &model)).unwrap();
    let pid = llama.start("hung").await.expect("starts").pid.expect("pid");
    wait_for_state(&mut rig.events, "hung", InstanceState::Healthy).await;

    signal(pid, "-STOP");
    let changes = wait_for_state(&mut rig.events, "hung", InstanceState::Healthy).await;
    let seen = states(&changes);
    assert_eq!(
        &seen[..4],
        [
            InstanceState::Unhealthy,
            InstanceState::Crashed,
            InstanceState::Restarting,
            InstanceState::Starting
        ],
        "{seen:?}"
    );
    let error = changes[1].error.as_ref().expect("why");
    assert_eq!(error.code, ErrorCode::ServerCrashed);
    assert!(
        error.message.contains("did not answer /health"),
        "{}",
        error.message
    );
    assert!(
        wait_gone(pid, Duration::from_secs(1)).await,
        "the hung process was ended"
    );
    assert_ne!(llama.status("hung").unwrap().pid, Some(pid));
    llama.stop("hung").await.unwrap();
}
