//! Instances with the real llama-server and generated models: start, health, chat,
//! stop, logs, the running configuration, restore.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod llama_common;

use std::time::Duration;

use llama_common::{port_is_free, rig, spec, states, wait_for_state, wait_gone};
use switchyard_engine::llama::{ChatRequest, InstanceState, ServerLogLevel, SupportedFlags};
use switchyard_engine::settings::Settings;
use switchyard_engine::EngineEvent;
use switchyard_testkit::gguf::{LlamaSpec, THINKING_CHAT_TEMPLATE};
use switchyard_testkit::tools::llama_server;

#[tokio::test]
async fn starts_healthy_answers_a_streaming_chat_and_stops() {
    let mut rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    llama.create(spec("tiny", &model)).expect("created");

    let status = llama.start("tiny").await.expect("starts");
    assert_eq!(status.state, InstanceState::Healthy);
    let changes = wait_for_state(&mut rig.events, "tiny", InstanceState::Healthy).await;
    let seen = states(&changes);
    assert_eq!(seen.first(), Some(&InstanceState::Starting), "{seen:?}");
    assert_eq!(seen.last(), Some(&InstanceState::Healthy), "{seen:?}");
    assert!(
        seen.iter().all(|state| matches!(
            state,
            InstanceState::Starting | InstanceState::Loading | InstanceState::Healthy
        )),
        "{seen:?}"
    );
    let pid = status.pid.expect("a pid");
    let running = status.running.expect("the running configuration");
    let port = running.port;
    assert_eq!(running.config.context, 512);
    assert_eq!(
        running.config.gpu_layers, 0,
        "the CPU build gets no GPU layers"
    );
    let command_line = running.args.join(" ");
    for expected in [
        "-c 512",
        "-np 1",
        "-t 2",
        "--host 127.0.0.1",
        "-lv 4",
        "--metrics",
        "-fa auto",
        "-ngl 0",
    ] {
        assert!(
            command_line.contains(expected),
            "{expected} missing: {command_line}"
        );
    }
    assert!(
        !running.reasoning,
        "the plain template is not a reasoning model"
    );
    assert_eq!(
        status.endpoint.as_deref(),
        Some(format!("http://127.0.0.1:{port}").as_str())
    );

    // What llama-server reported at -lv 4 reached the estimator's calibration.
    let measured = status.measured.expect("measured at load");
    assert!(measured.ram.weights > 500_000, "{measured:?}");
    assert!(
        measured.ram.kv_cache > 0 && measured.ram.compute > 0,
        "{measured:?}"
    );
    assert!(rig.data_dir().join("state/calibration.json").is_file());

    // Logs: parsed lines in the ring, the file on disk.
    let lines = llama.logs("tiny", 0, 10_000).expect("logs");
    assert!(
        lines
            .iter()
            .any(|line| line.source.as_deref() == Some("load_tensors")
                && line.level == ServerLogLevel::Info),
        "no parsed load_tensors line"
    );
    let file = std::fs::read_to_string(llama.log_dir("tiny").join("llama-server.log")).unwrap();
    assert!(
        file.contains("model buffer size"),
        "log file lacks the buffer lines"
    );

    let mut request = ChatRequest::user("Hello, switch yard!");
    request.max_tokens = Some(12);
    let outcome = llama.chat("tiny", request).await.expect("chat answers");
    // Random weights: the model may sample its end-of-text token early ("stop").
    assert!(
        matches!(outcome.finish_reason.as_deref(), Some("length" | "stop")),
        "{:?}",
        outcome.finish_reason
    );
    let timings = outcome.timings.expect("timings on the last chunk");
    assert!((1..=12).contains(&timings.predicted_n), "{timings:?}");
    assert!(timings.predicted_per_second > 0.0);
    // The pieces came as events, in order, and add up to the answer.
    let mut streamed = String::new();
    let mut done = false;
    while let Ok(event) = rig.events.try_recv() {
        match event {
            EngineEvent::LlamaChatDelta(delta) if delta.chat_id == outcome.chat_id => {
                streamed.push_str(&delta.content);
            }
            EngineEvent::LlamaChatDone { outcome: last, .. } => {
                done = last.chat_id == outcome.chat_id;
            }
            _ => {}
        }
    }
    assert_eq!(streamed, outcome.content);
    assert!(done, "a done event");

    let stopped = llama.stop("tiny").await.expect("stops");
    assert_eq!(stopped.state, InstanceState::Stopped);
    assert_eq!(stopped.pid, None);
    assert!(
        wait_gone(pid, Duration::from_secs(1)).await,
        "the process is gone"
    );
    assert!(port_is_free(port), "the port is free again");
    assert!(
        !rig.data_dir().join("state/llama-tiny.pid.json").exists(),
        "no pid file left"
    );
    let stored = std::fs::read_to_string(rig.data_dir().join("state/instances.json")).unwrap();
    assert!(stored.contains("\"was_running\": false"), "{stored}");
}

#[tokio::test]
async fn two_instances_run_at_once_on_their_own_ports() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let other = rig.model(
        "other.gguf",
        &LlamaSpec {
            layers: 3,
            seed: 7,
            ..LlamaSpec::default()
        },
    );
    let llama = rig.engine.llama().clone();
    llama.create(spec("one", &model)).unwrap();
    llama.create(spec("two", &other)).unwrap();
    let (one, two) = tokio::join!(llama.start("one"), llama.start("two"));
    let (one, two) = (one.expect("one starts"), two.expect("two starts"));
    let port = |status: &switchyard_engine::llama::InstanceStatus| {
        status.running.as_ref().map(|running| running.port)
    };
    assert_ne!(port(&one), port(&two));
    assert_ne!(one.pid, two.pid);
    for name in ["one", "two"] {
        let mut request = ChatRequest::user("hi");
        request.max_tokens = Some(4);
        let outcome = llama.chat(name, request).await.expect("answers");
        let generated = outcome.timings.map_or(0, |t| t.predicted_n);
        assert!((1..=4).contains(&generated), "{name}: {generated}");
    }
    assert_eq!(llama.list().len(), 2);
    rig.engine.shutdown().await;
    for status in llama.list() {
        assert_eq!(status.state, InstanceState::Stopped, "{}", status.spec.name);
    }
}

/// `up` returns once the instance serves, also when another start of it was already
/// on its way (the daemon's autostart and a person's `up` at once; before, the second
/// returned at once with the instance still stopped): both see one healthy server.
#[tokio::test]
async fn two_ups_at_once_both_return_once_it_serves() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    rig.engine.llama().create(spec("tiny", &model)).unwrap();
    // `up` sets up the llama-server Settings name (as the daemon does).
    rig.engine
        .update_settings(Settings {
            llama_server_path: Some(llama_server()),
            ..rig.engine.settings()
        })
        .unwrap();
    let (first, second) = tokio::join!(rig.engine.up("tiny"), rig.engine.up("tiny"));
    let (first, second) = (first.expect("first"), second.expect("second"));
    assert_eq!(first.state, InstanceState::Healthy);
    assert_eq!(second.state, InstanceState::Healthy);
    assert_eq!(first.pid, second.pid);
    rig.engine.shutdown().await;
}

#[tokio::test]
async fn a_reasoning_model_gets_the_reasoning_flags_and_answers() {
    let rig = rig().await;
    let model = rig.dir.path().join("thinking.gguf");
    LlamaSpec::default()
        .write_with_chat_template(&model, THINKING_CHAT_TEMPLATE)
        .unwrap();
    let llama = rig.engine.llama().clone();
    llama.create(spec("thinker", &model)).unwrap();
    let status = llama
        .start("thinker")
        .await
        .expect("starts with the reasoning flags");
    let running = status.running.expect("running");
    assert!(running.reasoning);
    let command_line = running.args.join(" ");
    assert!(
        command_line.contains("--jinja --reasoning-format deepseek"),
        "{command_line}"
    );
    let mut request = ChatRequest::user("think about it");
    request.max_tokens = Some(6);
    let outcome = llama.chat("thinker", request).await.expect("answers");
    // Random weights: whatever was generated lands in the thinking or the answer.
    let generated = outcome.timings.map_or(0, |t| t.predicted_n);
    assert!((1..=6).contains(&generated), "{generated}");
    llama.stop("thinker").await.unwrap();
}

#[tokio::test]
async fn a_closed_app_restores_what_was_running() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    llama.create(spec("kept", &model)).unwrap();
    llama.create(spec("idle", &model)).unwrap();
    llama.start("kept").await.expect("starts");
    rig.engine.shutdown().await;
    assert_eq!(llama.status("kept").unwrap().state, InstanceState::Stopped);

    let next = llama_common::engine_at(&rig.data_dir(), rig.dir.path()).await;
    assert!(next.llama().was_running("kept"));
    assert!(!next.llama().was_running("idle"));
    let restored = next.llama().restore().await;
    assert_eq!(restored.len(), 1);
    let (name, outcome) = &restored[0];
    assert_eq!(name, "kept");
    assert_eq!(
        outcome.as_ref().map(|s| s.state).ok(),
        Some(InstanceState::Healthy)
    );
    next.shutdown().await;
}

#[tokio::test]
async fn the_real_help_is_read_for_the_flags_this_build_knows() {
    let flags = SupportedFlags::probe(&switchyard_testkit::tools::llama_server()).await;
    for flag in [
        "-m",
        "-c",
        "-np",
        "-kvu",
        "-no-kvu",
        "-ctk",
        "-ctv",
        "-fa",
        "-b",
        "-ub",
        "-ngl",
        "--n-cpu-moe",
        "-t",
        "--host",
        "--port",
        "--api-key",
        "--api-key-file",
        "-lv",
        "--metrics",
        "--slots",
        "--jinja",
        "--reasoning-format",
        "--swa-full",
        "--mmproj",
    ] {
        assert!(flags.knows(flag), "{flag}");
    }
    assert!(flags.flash_attention_takes_value());
    assert!(!flags.knows("--no-such-flag"));
}

#[tokio::test]
async fn an_api_key_stays_off_the_command_line_and_guards_the_server() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    let mut guarded = spec("guarded", &model);
    guarded.api_key = Some("sesame-1234".into());
    llama.create(guarded).unwrap();
    let status = llama.start("guarded").await.expect("starts");
    let running = status.running.expect("running");
    let command_line = running.args.join(" ");
    assert!(command_line.contains("--api-key-file"), "{command_line}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", status.pid.unwrap())).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("sesame-1234"),
        "the key is not in the process list"
    );
    let key_file = rig.data_dir().join("state/llama-guarded.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let anonymous = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/v1/chat/completions",
            running.port
        ))
        .json(
            &serde_json::json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let mut request = ChatRequest::user("hi");
    request.max_tokens = Some(2);
    llama
        .chat("guarded", request)
        .await
        .expect("the engine has the key");

    llama.remove("guarded").await.unwrap();
    assert!(!key_file.exists(), "the key file goes with the instance");
    assert!(llama.list().is_empty());
}

#[tokio::test]
async fn nothing_starts_once_the_engine_shuts_down() {
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    llama.create(spec("late", &model)).unwrap();
    rig.engine.shutdown().await;
    let error = llama.start("late").await.expect_err("refused");
    assert_eq!(error.code(), switchyard_engine::ErrorCode::ShuttingDown);
}

#[tokio::test]
async fn a_generation_s_measured_speed_is_kept_for_its_model_and_configuration() {
    use switchyard_engine::estimate::{Backend, Calibration};
    let rig = rig().await;
    let model = rig.model("tiny.gguf", &LlamaSpec::default());
    let llama = rig.engine.llama().clone();
    llama.create(spec("tiny", &model)).expect("created");
    let status = llama.start("tiny").await.expect("starts");
    let config = status.running.expect("running").config;
    let endpoint = status.api_endpoint.expect("the stable endpoint");
    let key = "tiny.gguf";
    assert_eq!(llama.calibration().speed(key, &config, Backend::Cpu), None);

    let generate = |tokens: u32| {
        let url = format!("{endpoint}/completion");
        async move {
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client")
                .post(url)
                .json(&serde_json::json!({
                    "prompt": "Hello",
                    "n_predict": tokens,
                    "ignore_eos": true,
                }))
                .send()
                .await
                .expect("answered")
                .error_for_status()
                .expect("a completion")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    // Too few tokens to time: not kept.
    generate(4).await;
    // Enough: llama-server logs the timing right after answering.
    let answer = generate(32).await;
    assert_eq!(answer["timings"]["predicted_n"], 32);
    let mut kept = None;
    for _ in 0..100 {
        kept = llama
            .calibration()
            .speed(key, &config, Backend::Cpu)
            .copied();
        if kept.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kept = kept.expect("the speed was recorded");
    assert_eq!(kept.generated_tokens, 32);
    assert!(kept.generation_tokens_per_second > 0.0);
    // On disk, for the next start of the app.
    let stored = Calibration::load(&rig.data_dir().join("state")).expect("the file");
    let stored = stored
        .speed(key, &config, Backend::Cpu)
        .expect("the speed on disk");
    assert_eq!(stored.generated_tokens, kept.generated_tokens);
    // JSON keeps a float to its last digit or so, not bit for bit.
    let relative = (stored.generation_tokens_per_second - kept.generation_tokens_per_second).abs()
        / kept.generation_tokens_per_second;
    assert!(relative < 1e-9, "{stored:?} vs {kept:?}");
    llama.stop("tiny").await.expect("stops");
}
