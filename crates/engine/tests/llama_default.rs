//! The tray's "Start/Stop LLM" and the "restore LLM servers at launch" setting, with
//! the real llama-server and a model installed through the store (fixture Hub).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod llama_common;

use llama_common::{install_tiny_model, rig};
use switchyard_engine::llama::{tooltip, InstanceSpec, InstanceState, LlmAction};
use switchyard_engine::settings::Settings;
use switchyard_engine::ErrorCode;
use switchyard_testkit::FixtureServer;

#[tokio::test]
async fn the_tray_toggle_creates_starts_and_stops_the_default_instance() {
    let rig = rig().await;
    let engine = &rig.engine;

    let control = engine.llm_control();
    assert_eq!(control.action, LlmAction::Unavailable);
    assert!(!control.enabled);
    let error = engine.toggle_default_llm().await.expect_err("no model");
    assert_eq!(error.code(), ErrorCode::InvalidInput);
    assert!(error.to_string().contains("Models tab"), "{error}");

    let server = FixtureServer::start().await.expect("server");
    let model_id = install_tiny_model(engine, &server).await;
    assert_eq!(
        engine.llm_control().action,
        LlmAction::CreateAndStart {
            model_id: model_id.clone()
        }
    );

    let started = engine.toggle_default_llm().await.expect("starts");
    assert_eq!(started.spec.name, "default");
    assert_eq!(started.state, InstanceState::Healthy);
    assert_eq!(started.spec.model_id.as_deref(), Some(model_id.as_str()));
    assert!(
        started.spec.model_path.ends_with("tiny-F32.gguf"),
        "the store gave the path: {}",
        started.spec.model_path.display()
    );
    let port = started.running.as_ref().expect("running").port;
    let control = engine.llm_control();
    assert_eq!(control.action, LlmAction::Stop("default".into()));
    assert_eq!(
        tooltip(&control),
        format!("Switchyard \u{2014} LLM healthy on :{port}")
    );

    let stopped = engine.toggle_default_llm().await.expect("stops");
    assert_eq!(stopped.state, InstanceState::Stopped);
    assert_eq!(
        engine.llm_control().action,
        LlmAction::Start("default".into())
    );
    assert_eq!(engine.llm_control().summary, "LLM stopped");
}

#[tokio::test]
async fn instances_name_installed_models_by_id_and_unknown_ids_are_refused() {
    let rig = rig().await;
    let engine = &rig.engine;
    let server = FixtureServer::start().await.expect("server");
    let model_id = install_tiny_model(engine, &server).await;

    let unknown = InstanceSpec {
        name: "x".into(),
        model_id: Some("no-such-model".into()),
        ..InstanceSpec::default()
    };
    let error = engine.create_instance(unknown).expect_err("unknown model");
    assert_eq!(error.code(), ErrorCode::InvalidInput);

    let spec = InstanceSpec {
        name: "chat".into(),
        model_id: Some(model_id.clone()),
        ..InstanceSpec::default()
    };
    let created = engine.create_instance(spec).expect("created");
    assert!(created.spec.model_path.ends_with("tiny-F32.gguf"));
    let mut changed = created.spec.clone();
    changed.model_path = "/elsewhere.gguf".into();
    changed.port = Some(18_081);
    let updated = engine.update_instance(changed).expect("updated");
    assert!(
        updated.spec.model_path.ends_with("tiny-F32.gguf"),
        "the id wins over a path from the window"
    );
    assert_eq!(updated.spec.port, Some(18_081));

    // The window names a model; the engine supplies every default.
    let fresh = engine
        .create_instance_for_model("second", &model_id)
        .expect("created");
    assert_eq!(
        fresh.spec.config,
        switchyard_engine::estimate::LlamaConfig {
            context: 0,
            ..switchyard_engine::estimate::LlamaConfig::default()
        },
        "context 0: fitted at start"
    );
    assert_eq!(fresh.spec.port, None, "a free port at start");
    assert!(fresh.spec.auto.gpu_layers && fresh.spec.auto.context);
    assert!(fresh.spec.model_path.ends_with("tiny-F32.gguf"));
}

#[tokio::test]
async fn servers_come_back_at_launch_only_when_the_setting_says_so() {
    let rig = rig().await;
    let server = FixtureServer::start().await.expect("server");
    install_tiny_model(&rig.engine, &server).await;
    rig.engine.toggle_default_llm().await.expect("starts");
    rig.engine.shutdown().await;

    let next = llama_common::engine_at(&rig.data_dir(), rig.dir.path()).await;
    next.update_settings(Settings {
        restore_llm_servers: false,
        ..next.settings()
    })
    .expect("settings");
    next.restore_llm_servers().await;
    assert_eq!(
        next.llama().status("default").unwrap().state,
        InstanceState::Stopped
    );
    assert!(next.llama().was_running("default"), "the mark stays");

    next.update_settings(Settings {
        restore_llm_servers: true,
        ..next.settings()
    })
    .expect("settings");
    next.restore_llm_servers().await;
    assert_eq!(
        next.llama().status("default").unwrap().state,
        InstanceState::Healthy
    );
    next.shutdown().await;
}

#[tokio::test]
async fn a_preview_fits_the_automatic_fields_and_says_when_it_cannot_start() {
    use switchyard_engine::estimate::{AutoFields, EstimateSource, LlamaConfig};
    let rig = rig().await;
    let engine = &rig.engine;
    let server = FixtureServer::start().await.expect("server");
    let model_id = install_tiny_model(engine, &server).await;

    // A context of 0 is the model's trained one (2048 for the tiny model).
    let config = LlamaConfig {
        context: 0,
        ..LlamaConfig::default()
    };
    let auto = AutoFields {
        gpu_layers: true,
        context: true,
    };
    let preview = engine
        .preview_instance(&model_id, &config, auto)
        .await
        .expect("preview");
    assert_eq!(preview.estimate.config.context, 2048);
    assert_eq!(preview.estimate.source, EstimateSource::Estimated);
    assert!(preview.problem.is_none(), "{:?}", preview.problem);
    assert!(preview.free_ram_bytes > 0);
    assert!(preview.estimate.ram.kv_cache > 0);

    // Far more context than the fake machine's memory holds, nothing automatic.
    let huge = LlamaConfig {
        context: 16_777_216,
        ..LlamaConfig::default()
    };
    let fixed = AutoFields {
        gpu_layers: false,
        context: false,
    };
    let preview = engine
        .preview_instance(&model_id, &huge, fixed)
        .await
        .expect("preview");
    let problem = preview.problem.expect("does not fit");
    assert_eq!(problem.code, ErrorCode::InsufficientResources);

    let missing = engine
        .preview_instance("no-such-model", &config, auto)
        .await
        .expect_err("unknown");
    assert_eq!(missing.code(), ErrorCode::InvalidInput);
}
