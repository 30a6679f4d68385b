//! The model store end to end: a real engine in a temporary folder downloads
//! generated models from the fixture server acting as the Hugging Face Hub.

#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use switchyard_engine::models::{
    AddModel, AddModelFile, DownloadState, DownloadStatus, FileRole, ModelKind, ModelLocation,
    ModelSource,
};
use switchyard_engine::settings::Settings;
use switchyard_engine::{Engine, EngineDeps, EngineEvent, ErrorCode};
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::{FakeProbe, Fault, FixtureServer, ManualClock};
use tokio::sync::broadcast::Receiver;

const DEADLINE: Duration = Duration::from_secs(30);
const REPO: &str = "switchyard/tiny-llama-GGUF";

fn engine_in(dir: &std::path::Path, hub_url: String) -> Engine {
    Engine::new(EngineDeps {
        data_dir_override: Some(dir.join("data")),
        config_dir: dir.join("config"),
        settings: Settings {
            hub_url,
            ..Settings::default()
        },
        probe: Arc::new(FakeProbe::cpu_only(16)),
        clock: Arc::new(ManualClock::at(1_700_000_000_000)),
    })
    .expect("engine")
}

fn hub_file(path: &str) -> AddModelFile {
    AddModelFile {
        location: ModelLocation::Hub {
            repo: REPO.into(),
            revision: "main".into(),
            path: path.into(),
        },
        role: FileRole::Weights,
        expected_sha256: None,
    }
}

fn add(name: &str, files: Vec<AddModelFile>) -> AddModel {
    AddModel {
        name: name.into(),
        kind: ModelKind::Llm,
        files,
    }
}

async fn wait_for_state(
    events: &mut Receiver<EngineEvent>,
    id: &str,
    state: DownloadState,
) -> DownloadStatus {
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(EngineEvent::DownloadChanged(status)) = events.recv().await {
                if status.id == id && status.state == state {
                    return status;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{id} never reached {state:?}"))
}

async fn hub_with(files: &[(&str, Vec<u8>)]) -> FixtureServer {
    let server = FixtureServer::start().await.expect("server");
    for (path, bytes) in files {
        server.add_hub_file(REPO, path, bytes.clone(), None);
    }
    server
}

#[tokio::test]
async fn a_hub_model_downloads_verifies_and_enters_the_catalog() {
    let model = LlamaSpec::default().to_bytes();
    let server = hub_with(&[("tiny-F32.gguf", model.clone())]).await;
    let dir = tempfile::tempdir().expect("dir");
    let engine = engine_in(dir.path(), server.hub_url());
    let mut events = engine.subscribe();

    let id = engine
        .add_model(add("Tiny llama", vec![hub_file("tiny-F32.gguf")]))
        .await
        .expect("started");
    assert_eq!(id, "tiny-llama");
    let done = wait_for_state(&mut events, &id, DownloadState::Complete).await;
    assert_eq!(done.bytes, model.len() as u64);
    assert_eq!(
        done.total,
        Some(model.len() as u64),
        "the total came from the Hub listing"
    );

    let models = engine.models().models();
    assert_eq!(models.len(), 1);
    let installed = &models[0];
    assert_eq!(
        installed.source,
        ModelSource::HuggingFace {
            repo: REPO.into(),
            revision: "main".into()
        }
    );
    assert_eq!(installed.files[0].size_bytes, model.len() as u64);
    assert_eq!(
        installed
            .facts
            .as_ref()
            .and_then(|f| f.architecture.as_deref()),
        Some("llama")
    );
    assert_eq!(installed.added_at_ms, 1_700_000_000_000);

    let folder = dir.path().join("data/models/tiny-llama");
    assert_eq!(
        std::fs::read(folder.join("tiny-F32.gguf")).expect("installed file"),
        model
    );
    let names: Vec<String> = std::fs::read_dir(&folder)
        .expect("folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tiny-F32.gguf"], "no .part or resume data left");
    let catalog: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("data/models/catalog.json")).expect("catalog"),
    )
    .expect("json");
    assert_eq!(catalog["models"][0]["id"], "tiny-llama");
    assert!(engine.models().downloads().is_empty());
    assert!(engine.models().disk_usage().models_bytes == model.len() as u64);

    engine.models().verify(&id).await.expect("verifies");
    let error = engine
        .add_model(add("Tiny llama", vec![hub_file("tiny-F32.gguf")]))
        .await
        .expect_err("twice");
    assert_eq!(error.code(), ErrorCode::InvalidInput);
}

#[tokio::test]
async fn a_wrong_checksum_registers_nothing() {
    let server = FixtureServer::start().await.expect("server");
    server.add_hub_file(
        REPO,
        "tiny.gguf",
        LlamaSpec::default().to_bytes(),
        Some(&"ab".repeat(32)),
    );
    let dir = tempfile::tempdir().expect("dir");
    let engine = engine_in(dir.path(), server.hub_url());
    let mut events = engine.subscribe();
    let id = engine
        .add_model(add("Tiny", vec![hub_file("tiny.gguf")]))
        .await
        .expect("started");
    let failed = wait_for_state(&mut events, &id, DownloadState::Failed).await;
    assert_eq!(
        failed.error.expect("error").code,
        ErrorCode::ChecksumMismatch
    );
    assert!(engine.models().models().is_empty());
    assert!(
        !dir.path().join("data/models/tiny").exists(),
        "the bad bytes were discarded"
    );
}

/// A server that goes on sending past the size the Hub listed is stopped at that
/// size: a download never fills the disk with bytes nobody expected.
#[tokio::test]
async fn a_server_sending_more_than_the_hub_listed_is_stopped_at_that_size() {
    let model = LlamaSpec::default().to_bytes();
    let server = hub_with(&[("tiny.gguf", model.clone())]).await;
    server.set_fault(
        &format!("{REPO}/tiny.gguf"),
        Some(Fault::Oversized {
            extra_bytes: 1 << 30,
        }),
    );
    let dir = tempfile::tempdir().expect("dir");
    let engine = engine_in(dir.path(), server.hub_url());
    let mut events = engine.subscribe();
    let id = engine
        .add_model(add("Tiny", vec![hub_file("tiny.gguf")]))
        .await
        .expect("started");
    let failed = wait_for_state(&mut events, &id, DownloadState::Failed).await;
    let error = failed.error.expect("error");
    assert_eq!(error.code, ErrorCode::ChecksumMismatch);
    assert!(
        error.message.contains(&format!("{} bytes", model.len())),
        "{}",
        error.message
    );
    let sent = server.traffic().body_bytes;
    assert!(
        sent < model.len() as u64 + (64 << 20),
        "the server got to send {} MiB past the file",
        (sent - model.len() as u64) >> 20
    );
    assert!(engine.models().models().is_empty());
    assert!(!dir.path().join("data/models/tiny").exists());
}

#[tokio::test]
async fn a_download_pauses_resumes_and_survives_an_app_restart() {
    let model = LlamaSpec {
        embedding: 256,
        vocab: 4096,
        ..LlamaSpec::default()
    }
    .to_bytes();
    let server = hub_with(&[("m.gguf", model.clone())]).await;
    server.set_fault(
        &format!("{REPO}/m.gguf"),
        Some(Fault::Slow {
            bytes_per_second: 4_000_000,
        }),
    );
    let dir = tempfile::tempdir().expect("dir");
    let id = {
        let engine = engine_in(dir.path(), server.hub_url());
        let mut events = engine.subscribe();
        let id = engine
            .add_model(add("Resumable", vec![hub_file("m.gguf")]))
            .await
            .expect("started");
        tokio::time::timeout(DEADLINE, async {
            loop {
                if let Ok(EngineEvent::DownloadChanged(status)) = events.recv().await {
                    if status.bytes > 1_000_000 {
                        return;
                    }
                }
            }
        })
        .await
        .expect("progress");
        engine.models().pause(&id).expect("pause");
        let paused = wait_for_state(&mut events, &id, DownloadState::Paused).await;
        assert!(paused.bytes > 1_000_000 && paused.bytes < model.len() as u64);
        id
    };

    // A new engine on the same folder: the download is there, paused, with its bytes.
    server.set_fault(&format!("{REPO}/m.gguf"), None);
    server.reset_traffic();
    let engine = engine_in(dir.path(), server.hub_url());
    let pending = engine.models().downloads();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, DownloadState::Paused);
    let kept = pending[0].bytes;
    assert!(kept > 1_000_000);
    let mut events = engine.subscribe();
    engine.models().resume(&id).expect("resume");
    wait_for_state(&mut events, &id, DownloadState::Complete).await;
    // (Body bytes are not compared: the slow server may still be writing into the
    // first engine's closed connection when the traffic is reset.)
    let ranges = server.traffic().ranges;
    assert!(
        ranges.contains(&Some(format!("bytes={kept}-"))),
        "only the rest was asked for: {ranges:?}"
    );
    engine.models().verify(&id).await.expect("intact");
}

#[tokio::test]
async fn cancel_deletes_everything() {
    let server = hub_with(&[(
        "m.gguf",
        LlamaSpec {
            embedding: 256,
            vocab: 4096,
            ..LlamaSpec::default()
        }
        .to_bytes(),
    )])
    .await;
    server.set_fault(
        &format!("{REPO}/m.gguf"),
        Some(Fault::Slow {
            bytes_per_second: 1_000_000,
        }),
    );
    let dir = tempfile::tempdir().expect("dir");
    let engine = engine_in(dir.path(), server.hub_url());
    let mut events = engine.subscribe();
    let id = engine
        .add_model(add("Doomed", vec![hub_file("m.gguf")]))
        .await
        .expect("started");
    engine.models().cancel(&id).expect("cancel");
    wait_for_state(&mut events, &id, DownloadState::Cancelled).await;
    assert!(!dir.path().join("data/models/doomed").exists());
    assert!(engine.models().downloads().is_empty());
    let pending = std::fs::read_to_string(dir.path().join("data/state/downloads.json"))
        .expect("pending file");
    assert_eq!(pending.trim(), "[]");
}

#[tokio::test]
async fn tampering_is_found_by_verify_and_delete_removes_the_model() {
    let server = hub_with(&[("tiny.gguf", LlamaSpec::default().to_bytes())]).await;
    let dir = tempfile::tempdir().expect("dir");
    let engine = engine_in(dir.path(), server.hub_url());
    let mut events = engine.subscribe();
    let id = engine
        .add_model(add("Tiny", vec![hub_file("tiny.gguf")]))
        .await
        .expect("started");
    wait_for_state(&mut events, &id, DownloadState::Complete).await;

    let file = dir.path().join("data/models/tiny/tiny.gguf");
    let mut bytes = std::fs::read(&file).expect("file");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).expect("tampered");
    let error = engine
        .models()
        .verify(&id)
        .await
        .expect_err("tampering found");
    assert_eq!(error.code(), ErrorCode::ChecksumMismatch);

    engine.models().delete(&id).expect("deleted");
    assert!(engine.models().models().is_empty());
    assert!(!dir.path().join("data/models/tiny").exists());
}

#[tokio::test]
async fn metadata_is_read_before_downloading() {
    let model = LlamaSpec {
        embedding: 512,
        feed_forward: 1024,
        vocab: 2048,
        ..LlamaSpec::default()
    }
    .to_bytes();
    let server = hub_with(&[("wide.gguf", model.clone())]).await;
    let dir = tempfile::tempdir().expect("dir");
    let engine = engine_in(dir.path(), server.hub_url());
    let files = engine.hub_files(REPO, "main").await.expect("listing");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].size_bytes, model.len() as u64);
    assert_eq!(files[0].sha256.as_ref().map(String::len), Some(64));

    let location = ModelLocation::Hub {
        repo: REPO.into(),
        revision: "main".into(),
        path: "wide.gguf".into(),
    };
    let remote = engine.inspect_model(&location).await.expect("inspected");
    assert_eq!(remote.facts.embedding_length, Some(512));
    assert_eq!(remote.size_bytes, Some(model.len() as u64));
    assert!(
        remote.fetched_bytes * 20 < model.len() as u64,
        "fetched {} bytes",
        remote.fetched_bytes
    );
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_downloads() {
    let server = hub_with(&[("tiny.gguf", LlamaSpec::default().to_bytes())]).await;
    server.add_file("page.html", b"<html>not a model</html>".to_vec());
    let dir = tempfile::tempdir().expect("dir");
    let engine = engine_in(dir.path(), server.hub_url());

    let traversal = AddModelFile {
        location: ModelLocation::Hub {
            repo: "../etc".into(),
            revision: "main".into(),
            path: "x.gguf".into(),
        },
        role: FileRole::Weights,
        expected_sha256: None,
    };
    let error = engine
        .add_model(add("Bad", vec![traversal]))
        .await
        .expect_err("bad repo");
    assert_eq!(error.code(), ErrorCode::InvalidInput);
    let error = engine
        .add_model(add("Missing", vec![hub_file("nope.gguf")]))
        .await
        .expect_err("not listed");
    assert!(error.to_string().contains("nope.gguf"), "{error}");
    assert!(engine.models().downloads().is_empty());

    // A URL that serves a web page: downloaded, then refused as a model.
    let mut events = engine.subscribe();
    let page = AddModelFile {
        location: ModelLocation::Url {
            url: server.url("page.html"),
        },
        role: FileRole::Weights,
        expected_sha256: None,
    };
    let id = engine
        .add_model(add("Page", vec![page]))
        .await
        .expect("started");
    let failed = wait_for_state(&mut events, &id, DownloadState::Failed).await;
    assert_eq!(failed.error.expect("error").code, ErrorCode::InvalidGguf);
    assert!(engine.models().models().is_empty());
}

#[tokio::test]
async fn a_damaged_catalog_is_kept_aside_and_reported() {
    let dir = tempfile::tempdir().expect("dir");
    let models = dir.path().join("data/models");
    std::fs::create_dir_all(&models).expect("folder");
    std::fs::write(models.join("catalog.json"), "{\"models\": [").expect("damaged");
    let engine = engine_in(dir.path(), "http://127.0.0.1:9".into());
    assert_eq!(engine.startup_warnings().len(), 1);
    assert_eq!(engine.startup_warnings()[0].code, ErrorCode::CorruptState);
    assert_eq!(
        std::fs::read_to_string(models.join("catalog.json.damaged")).expect("kept"),
        "{\"models\": ["
    );
    assert!(engine.models().models().is_empty());
}

#[test]
fn resuming_outside_an_async_runtime_fails_cleanly() {
    let dir = tempfile::tempdir().expect("dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = runtime.block_on(hub_with(&[("m.gguf", LlamaSpec::default().to_bytes())]));
    server.set_fault(
        &format!("{REPO}/m.gguf"),
        Some(Fault::Slow {
            bytes_per_second: 100_000,
        }),
    );
    let engine = engine_in(dir.path(), server.hub_url());
    let id = runtime
        .block_on(engine.add_model(add("Tiny", vec![hub_file("m.gguf")])))
        .expect("started");
    engine.models().pause(&id).expect("paused");
    runtime.block_on(async {
        let mut events = engine.subscribe();
        if engine.models().downloads()[0].state != DownloadState::Paused {
            wait_for_state(&mut events, &id, DownloadState::Paused).await;
        }
    });
    // A plain thread, as a GUI's main thread: no panic, a failed download instead.
    engine.models().resume(&id).expect("accepted");
    let status = engine
        .models()
        .downloads()
        .into_iter()
        .find(|d| d.id == id)
        .expect("listed");
    assert_eq!(status.state, DownloadState::Failed);
    assert_eq!(status.error.expect("error").code, ErrorCode::Internal);
}

#[tokio::test]
async fn an_installed_model_is_estimated_then_calibrated_across_restarts() {
    use switchyard_engine::estimate::{
        parse_llama_log, Backend, EstimateSource, LlamaConfig, MeasuredMemory,
    };
    let server = hub_with(&[("tiny-F32.gguf", LlamaSpec::default().to_bytes())]).await;
    let dir = tempfile::tempdir().expect("dir");
    let engine = engine_in(dir.path(), server.hub_url());
    let mut events = engine.subscribe();
    let id = engine
        .add_model(add("Tiny llama", vec![hub_file("tiny-F32.gguf")]))
        .await
        .expect("started");
    wait_for_state(&mut events, &id, DownloadState::Complete).await;

    let config = LlamaConfig::default();
    let estimated = engine.estimate_model(&id, &config).await.expect("estimate");
    assert_eq!(
        estimated.backend,
        Backend::Cpu,
        "no GPU, no llama-server yet"
    );
    assert_eq!(estimated.source, EstimateSource::Estimated);
    assert!(estimated.ram.kv_cache > 0 && estimated.vram_bytes() == 0);

    let measured: MeasuredMemory = parse_llama_log(
        "load_tensors:   CPU_Mapped model buffer size =     0.57 MiB\n\
         llama_kv_cache:        CPU KV buffer size =     1.00 MiB\n\
         sched_reserve:        CPU compute buffer size =     2.00 MiB\n",
    );
    engine.record_memory(&id, &estimated, measured);
    drop(engine);

    let engine = engine_in(dir.path(), server.hub_url());
    let again = engine.estimate_model(&id, &config).await.expect("estimate");
    assert_eq!(again.source, EstimateSource::Measured);
    assert_eq!(again.ram.kv_cache, measured.ram.kv_cache);
    assert_eq!(again.ram.compute, measured.ram.compute);

    let missing = engine
        .estimate_model("no-such-model", &config)
        .await
        .expect_err("unknown");
    assert_eq!(missing.code(), ErrorCode::InvalidInput);
}

/// Two processes on one data folder (the app and `switchyard models`): what one
/// installs survives the other's install and delete, and one download is written by
/// one process at a time.
#[tokio::test]
async fn two_engines_on_one_folder_keep_each_others_models_and_never_share_a_download() {
    let small = LlamaSpec::default().to_bytes();
    let large = LlamaSpec {
        embedding: 256,
        vocab: 4096,
        ..LlamaSpec::default()
    }
    .to_bytes();
    let server = hub_with(&[
        ("a.gguf", small.clone()),
        ("b.gguf", small),
        ("c.gguf", large),
    ])
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let app = engine_in(dir.path(), server.hub_url());
    let cli = engine_in(dir.path(), server.hub_url());
    let (mut app_events, mut cli_events) = (app.subscribe(), cli.subscribe());

    let a = app
        .add_model(add("A", vec![hub_file("a.gguf")]))
        .await
        .expect("a");
    wait_for_state(&mut app_events, &a, DownloadState::Complete).await;
    let b = cli
        .add_model(add("B", vec![hub_file("b.gguf")]))
        .await
        .expect("b");
    wait_for_state(&mut cli_events, &b, DownloadState::Complete).await;
    let ids = |engine: &Engine| -> Vec<String> {
        engine.models().models().into_iter().map(|m| m.id).collect()
    };
    assert_eq!(ids(&cli), ["a", "b"], "the cli's install kept the app's");
    // The app's window follows events: the app's watch announces the change.
    app.models().announce_changes_elsewhere();
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(EngineEvent::ModelsChanged { models }) = app_events.recv().await {
                if models.iter().any(|model| model.id == "b") {
                    return;
                }
            }
        }
    })
    .await
    .expect("models_changed with the cli's model");
    assert_eq!(ids(&app), ["a", "b"]);

    app.models().delete(&a).expect("delete a");
    assert_eq!(ids(&app), ["b"], "the app's delete kept the cli's install");
    assert_eq!(ids(&engine_in(dir.path(), server.hub_url())), ["b"]);

    // A download the app is writing: the other process can neither discard it nor
    // resume it (its record stays resumable); once the app has paused, it resumes.
    server.set_fault(
        &format!("{REPO}/c.gguf"),
        Some(Fault::Slow {
            bytes_per_second: 2_000_000,
        }),
    );
    let c = app
        .add_model(add("C", vec![hub_file("c.gguf")]))
        .await
        .expect("c");
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(EngineEvent::DownloadChanged(status)) = app_events.recv().await {
                if status.id == c && status.bytes > 0 {
                    return;
                }
            }
        }
    })
    .await
    .expect("the app's download runs");
    let late = engine_in(dir.path(), server.hub_url());
    let refused = late
        .models()
        .cancel(&c)
        .expect_err("not discarded under the app");
    assert_eq!(refused.code(), ErrorCode::DownloadBusy);
    let mut late_events = late.subscribe();
    late.models().resume(&c).expect("resume asked");
    let refused = wait_for_state(&mut late_events, &c, DownloadState::Failed).await;
    assert_eq!(refused.error.map(|e| e.code), Some(ErrorCode::DownloadBusy));

    app.models().pause(&c).expect("pause");
    wait_for_state(&mut app_events, &c, DownloadState::Paused).await;
    server.set_fault(&format!("{REPO}/c.gguf"), None);
    late.models().resume(&c).expect("resume");
    wait_for_state(&mut late_events, &c, DownloadState::Complete).await;
    late.models().verify(&c).await.expect("intact");
}

/// `downloads.json` is shared: two processes that each start a download (both
/// opened before either did) leave both listed, so both come back after a restart.
#[tokio::test]
async fn downloads_started_by_two_processes_are_both_remembered() {
    let server = hub_with(&[
        ("a.gguf", LlamaSpec::default().to_bytes()),
        ("b.gguf", LlamaSpec::default().to_bytes()),
    ])
    .await;
    for path in ["a.gguf", "b.gguf"] {
        server.set_fault(
            &format!("{REPO}/{path}"),
            Some(Fault::Slow {
                bytes_per_second: 1000,
            }),
        );
    }
    let dir = tempfile::tempdir().expect("dir");
    let app = engine_in(dir.path(), server.hub_url());
    let cli = engine_in(dir.path(), server.hub_url());
    let a = app
        .add_model(add("A", vec![hub_file("a.gguf")]))
        .await
        .expect("a");
    let b = cli
        .add_model(add("B", vec![hub_file("b.gguf")]))
        .await
        .expect("b");
    let mut ids: Vec<String> = engine_in(dir.path(), server.hub_url())
        .models()
        .downloads()
        .into_iter()
        .map(|download| download.id)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [a.clone(), b.clone()],
        "each kept the other's download"
    );

    // Cancelled in one process: gone from the file, the other's still there.
    cli.models().cancel(&b).expect("cancel b");
    let pending_file = dir.path().join("data/state/downloads.json");
    let recorded = || -> Vec<String> {
        let pending: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&pending_file).expect("downloads.json"))
                .expect("json");
        pending
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|entry| entry["id"].as_str().map(str::to_owned))
            .collect()
    };
    tokio::time::timeout(DEADLINE, async {
        while recorded() != [a.clone()] {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("b cancelled, a kept; the file says {:?}", recorded()));
}
