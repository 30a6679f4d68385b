//! The app attached to a running daemon of its data folder, both real: a daemon
//! (`run_daemon` on its own engine, as `switchyard daemon` runs it) with an
//! instance file for a generated model and the real llama-server, and the app's
//! engine beside it on the same folders. The app's watcher sees the daemon come,
//! its instance change and the daemon go; starts and stops go through the daemon;
//! the app's own instance of the same name shows the daemon as its owner, is not
//! restored at launch and its start is refused.

#![allow(clippy::expect_used, clippy::unwrap_used)]
#![cfg(target_os = "linux")]

mod llama_common;

use std::path::Path;
use std::time::{Duration, Instant};

use llama_common::{engine_at, fast_policy, spec, wait_until, DEADLINE};
use switchyard_engine::clock::SystemClock;
use switchyard_engine::control::{run_daemon, AttachedDaemon, DaemonOptions, InstanceRow};
use switchyard_engine::llama::{InstanceState, OwnerKind};
use switchyard_engine::settings::Settings;
use switchyard_engine::{Engine, EngineDeps, EngineEvent, ErrorCode};
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::tools::{llama_server, use_real_llama_server};
use switchyard_testkit::FakeProbe;
use tokio::sync::{broadcast, oneshot};

/// Short, so the test does not wait out the app's 2 s between polls.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// Waits for a `DaemonChanged` whose daemon satisfies `wanted`; the last one seen.
async fn wait_for_daemon(
    events: &mut broadcast::Receiver<EngineEvent>,
    what: &str,
    wanted: impl Fn(Option<&AttachedDaemon>) -> bool,
) -> Option<AttachedDaemon> {
    let started = Instant::now();
    loop {
        let left = DEADLINE.saturating_sub(started.elapsed());
        let event = tokio::time::timeout(left, events.recv())
            .await
            .unwrap_or_else(|_| panic!("not within {DEADLINE:?}: {what}"));
        match event {
            Ok(EngineEvent::DaemonChanged { daemon }) if wanted(daemon.as_ref()) => return daemon,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => panic!("event bus closed"),
        }
    }
}

fn row<'a>(daemon: Option<&'a AttachedDaemon>, name: &str) -> Option<&'a InstanceRow> {
    daemon?.instances.iter().find(|row| row.name == name)
}

fn instance_file(config_dir: &Path, name: &str, model: &Path) {
    let dir = config_dir.join("instances");
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "model = {:?}\n[llama]\ncontext = 512\nparallel = 1\nthreads = 2\n",
        model.display().to_string()
    );
    std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
}

/// The daemon's engine: the real llama-server is its Settings' own, as
/// `switchyard daemon` finds it in `settings.json`.
async fn daemon_engine(data_dir: &Path, config_parent: &Path) -> Engine {
    let engine = Engine::new(EngineDeps {
        data_dir_override: Some(data_dir.to_path_buf()),
        config_dir: config_parent.join("config"),
        settings: Settings {
            llama_server_path: Some(llama_server()),
            ..Settings::default()
        },
        probe: std::sync::Arc::new(FakeProbe::cpu_only(16)),
        clock: std::sync::Arc::new(SystemClock),
    })
    .expect("engine");
    use_real_llama_server(&engine)
        .await
        .expect("the real llama-server passes its checks");
    engine.llama().set_policy(fast_policy());
    engine
}

/// A daemon on `engine`, running until the sender is dropped or sent to.
fn spawn_daemon(engine: Engine) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let options = DaemonOptions {
            port: 0,
            image_port: Some(0),
            endpoint_port: Some(0),
            version: "test".into(),
        };
        run_daemon(engine, options, async move {
            let _ = stopped.await;
        })
        .await
        .expect("the daemon runs");
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_attaches_to_the_daemon_and_drives_its_instances() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let model = dir.path().join("tiny.gguf");
    LlamaSpec::default().write_to(&model).unwrap();
    instance_file(&dir.path().join("config"), "tiny", &model);

    // The app ran its own `tiny` when it last closed: a launch would restore it.
    let earlier_app = engine_at(&data, dir.path()).await;
    earlier_app.llama().create(spec("tiny", &model)).unwrap();
    earlier_app
        .llama()
        .start("tiny")
        .await
        .expect("the app's own start");
    earlier_app.shutdown().await;

    let app = engine_at(&data, dir.path()).await;
    let mut events = app.subscribe();
    assert!(app.daemon_client().is_none(), "no daemon yet");
    assert!(app.attached_daemon().await.is_none());
    let watch = tokio::spawn({
        let app = app.clone();
        async move { app.run_daemon_watch(WATCH_INTERVAL).await }
    });

    // The daemon starts: the watcher announces it with its instance.
    let (stop_daemon, daemon_task) = spawn_daemon(daemon_engine(&data, dir.path()).await);
    let attached = wait_for_daemon(&mut events, "the daemon attached", |daemon| {
        row(daemon, "tiny").is_some()
    })
    .await
    .unwrap();
    assert_eq!(attached.status.pid, std::process::id());
    assert_eq!(attached.status.version, "test");
    assert!(attached.status.problems.is_empty(), "{attached:?}");
    assert!(app.daemon_client().is_some());

    // Start through the daemon: healthy, announced with its pid and owner.
    let started = app.daemon_up("tiny").await.expect("up through the daemon");
    assert_eq!(started.state, InstanceState::Healthy);
    let healthy = wait_for_daemon(&mut events, "tiny healthy", |daemon| {
        row(daemon, "tiny").is_some_and(|row| row.state == InstanceState::Healthy)
    })
    .await;
    let healthy = row(healthy.as_ref(), "tiny").unwrap().clone();
    assert_eq!(healthy.pid, started.pid);
    assert_eq!(
        healthy.owner.as_ref().map(|owner| owner.kind),
        Some(OwnerKind::Daemon)
    );
    assert!(healthy.api_endpoint.is_some(), "{healthy:?}");

    // The detail, its file and its log, from the daemon.
    let detail = app.daemon_instance("tiny").await.unwrap();
    assert_eq!(detail.status.state, InstanceState::Healthy);
    assert!(
        detail.file.ends_with("instances/tiny.toml"),
        "{}",
        detail.file
    );
    let lines = app.daemon_logs("tiny", 0, 50).await.unwrap();
    assert!(!lines.is_empty(), "the daemon's log of tiny");
    assert!(lines.len() <= 50);
    let unknown = app.daemon_up("nope").await.unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::NotFound, "the daemon's own code");

    // The app's launch leaves the daemon's instance alone: not started, not failed,
    // its owner shown; a start is refused naming the daemon.
    app.restore_llm_servers().await;
    let mine = app.llama().status("tiny").unwrap();
    assert_eq!(mine.state, InstanceState::Stopped);
    assert!(mine.error.is_none(), "{:?}", mine.error);
    assert_eq!(
        mine.owned_by.as_ref().map(|owner| owner.kind),
        Some(OwnerKind::Daemon)
    );
    let refused = app.llama().start("tiny").await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InstanceOwned);
    assert!(
        refused.to_string().contains("the Switchyard daemon"),
        "{refused}"
    );

    // Stop through the daemon: announced; the app's instance has no owner then.
    let stopped = app
        .daemon_down("tiny")
        .await
        .expect("down through the daemon");
    assert_eq!(stopped.state, InstanceState::Stopped);
    wait_for_daemon(&mut events, "tiny stopped", |daemon| {
        row(daemon, "tiny").is_some_and(|row| row.state == InstanceState::Stopped)
    })
    .await;
    wait_until("the app's tiny without owner", || {
        app.llama().status("tiny").unwrap().owned_by.is_none()
    })
    .await;
    let reloaded = app.daemon_reload().await.expect("reload");
    assert!(reloaded.problems.is_empty());

    // The daemon ends: detached, and calls through it say so.
    stop_daemon.send(()).unwrap();
    daemon_task.await.unwrap();
    wait_for_daemon(&mut events, "the daemon detached", |daemon| {
        daemon.is_none()
    })
    .await;
    let gone = app.daemon_up("tiny").await.unwrap_err();
    assert_eq!(gone.code(), ErrorCode::DaemonNotRunning);
    assert!(!gone.report().suggestion.is_empty());

    app.shutdown().await;
    watch.await.unwrap();
}

/// An installed model is not deleted while a server uses it: the daemon's instance
/// (asked through its control API), then the app's own; once both stopped, it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_model_in_use_here_or_in_the_daemon_is_not_deleted() {
    use switchyard_engine::models::{AddModel, AddModelFile, FileRole, ModelKind, ModelLocation};
    use switchyard_testkit::FixtureServer;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = FixtureServer::start().await.unwrap();
    server.add_file("tiny.gguf", LlamaSpec::default().to_bytes());
    let app = engine_at(&data, dir.path()).await;
    let id = app
        .add_model(AddModel {
            name: "Tiny".into(),
            kind: ModelKind::Llm,
            files: vec![AddModelFile {
                location: ModelLocation::Url {
                    url: server.url("tiny.gguf"),
                },
                role: FileRole::Weights,
                expected_sha256: None,
            }],
        })
        .await
        .unwrap();
    wait_until("the model installed", || {
        app.models().models().iter().any(|model| model.id == id)
    })
    .await;
    let model = data.join("models").join(&id).join("tiny.gguf");
    assert!(model.is_file());

    // The daemon serves it.
    instance_file(&dir.path().join("config"), "served", &model);
    let (stop_daemon, daemon_task) = spawn_daemon(daemon_engine(&data, dir.path()).await);
    wait_until("the daemon answers", || app.daemon_client().is_some()).await;
    let started = app
        .daemon_up("served")
        .await
        .expect("up through the daemon");
    assert_eq!(started.state, InstanceState::Healthy);
    let refused = app.delete_model(&id).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::ModelInUse);
    let message = refused.to_string();
    assert!(
        message.contains("`served`") && message.contains("the Switchyard daemon"),
        "{message}"
    );
    assert!(model.is_file(), "the files stay");
    app.daemon_down("served").await.expect("down");
    stop_daemon.send(()).unwrap();
    daemon_task.await.unwrap();

    // The app serves it.
    app.llama().create(spec("mine", &model)).unwrap();
    app.llama()
        .start("mine")
        .await
        .expect("the app's own start");
    let refused = app.delete_model(&id).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::ModelInUse);
    assert!(refused.to_string().contains("`mine`"), "{refused}");
    assert!(refused.suggestion().contains("Stop `mine`"));
    app.llama().stop("mine").await.expect("stopped");

    app.delete_model(&id)
        .await
        .expect("deleted once no server uses it");
    assert!(!model.exists());
    app.shutdown().await;
}
