//! The first run end to end: the proposal for a (fake) machine, a curated model
//! downloaded from the fixture Hub standing in for Hugging Face, and the problem
//! report written by a real engine in a temporary folder.

#![allow(clippy::expect_used)]

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use switchyard_engine::first_run::curated_models;
use switchyard_engine::models::DownloadState;
use switchyard_engine::settings::Settings;
use switchyard_engine::{Engine, EngineDeps, EngineEvent, ErrorCode};
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::{FakeProbe, FixtureServer, ManualClock};

const DEADLINE: Duration = Duration::from_secs(30);

fn engine_in(dir: &std::path::Path, ram_gib: u64, hub_url: String) -> Engine {
    engine_with(dir, ram_gib, hub_url, Settings::default())
}

fn engine_with(dir: &std::path::Path, ram_gib: u64, hub_url: String, settings: Settings) -> Engine {
    Engine::new(EngineDeps {
        data_dir_override: Some(dir.join("data")),
        config_dir: dir.join("config"),
        settings: Settings {
            hub_url,
            ..settings
        },
        probe: Arc::new(FakeProbe::cpu_only(ram_gib)),
        clock: Arc::new(ManualClock::at(1_700_000_000_000)),
    })
    .expect("engine")
}

#[test]
fn the_proposal_is_the_largest_curated_model_within_the_machines_budget_and_speed() {
    for ram_gib in [1, 2, 4, 8, 16, 64] {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = engine_in(dir.path(), ram_gib, "https://huggingface.co".into());
        let proposal = engine.first_run_proposal();
        let budget = engine.system_info().recommendation.max_model_bytes;
        assert_eq!(proposal.max_model_bytes, budget);
        assert_eq!(proposal.usable_tokens_per_second, 10.0);
        let fitting: Vec<_> = proposal.choices.iter().filter(|c| c.fits).collect();
        let largest_usable = fitting
            .iter()
            .filter(|choice| choice.usable)
            .max_by_key(|choice| choice.model.size_bytes)
            .map(|choice| choice.model.id.clone());
        assert_eq!(proposal.recommended, largest_usable, "{ram_gib} GiB");
        assert!(fitting.iter().all(|c| c.model.size_bytes <= budget));
        assert!(proposal.choices.iter().all(|c| !c.installed));
        assert!(proposal.choices.iter().all(|c| c
            .tokens_per_second
            .is_some_and(|speed| c.usable == (speed >= 10.0))));
    }
    // 16 GiB read at the fake's 40 GB/s: the 7B fits but generates ~7 tokens/s,
    // so the 3B is proposed, with an image model.
    let dir = tempfile::tempdir().expect("temp dir");
    let proposal = engine_in(dir.path(), 16, "https://huggingface.co".into()).first_run_proposal();
    assert_eq!(proposal.recommended.as_deref(), Some("qwen2.5-3b-instruct"));
    assert_eq!(proposal.speed_warning, None);
    assert!(proposal.image_model.is_some());
    // Someone content with 5 tokens/s gets the largest.
    let dir = tempfile::tempdir().expect("temp dir");
    let patient = Settings {
        usable_tokens_per_second: 5,
        ..Settings::default()
    };
    let engine = engine_with(dir.path(), 16, "https://huggingface.co".into(), patient);
    let proposal = engine.first_run_proposal();
    assert_eq!(proposal.recommended.as_deref(), Some("qwen2.5-7b-instruct"));
    assert_eq!(
        engine.system_info().recommendation.usable_tokens_per_second,
        5.0
    );
}

#[tokio::test]
async fn a_curated_model_downloads_from_the_hub_setting_once() {
    let server = FixtureServer::start().await.expect("server");
    let smallest = curated_models()
        .into_iter()
        .next()
        .expect("a curated model");
    // The fixture Hub serves the generated tiny model under the curated name.
    server.add_hub_file(
        &smallest.repo,
        &smallest.file,
        LlamaSpec::default().to_bytes(),
        None,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine_in(dir.path(), 16, server.hub_url());
    let mut events = engine.subscribe();

    let id = engine
        .install_curated_model(&smallest.id)
        .await
        .expect("download starts");
    assert_eq!(id, smallest.id);
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(EngineEvent::DownloadChanged(status)) = events.recv().await {
                if status.id == id && status.state == DownloadState::Complete {
                    return;
                }
            }
        }
    })
    .await
    .expect("the curated model downloads");

    let choice = engine
        .first_run_proposal()
        .choices
        .into_iter()
        .find(|choice| choice.model.id == id)
        .expect("listed");
    assert!(choice.installed);
    // Again (the wizard run a second time): the installed model, no new download.
    assert_eq!(engine.install_curated_model(&id).await.expect("same"), id);
    assert!(engine.models().downloads().is_empty());
    assert_eq!(engine.models().models().len(), 1);

    // The wizard's instance: created once as `default`, found again after that.
    let instance = engine.instance_for_model(&id).expect("an instance");
    assert_eq!(instance.spec.name, "default");
    assert_eq!(instance.spec.model_id.as_deref(), Some(id.as_str()));
    let again = engine.instance_for_model(&id).expect("the same instance");
    assert_eq!(again.spec.name, "default");
    assert_eq!(engine.llama().list().len(), 1);

    let error = engine
        .install_curated_model("no-such-model")
        .await
        .expect_err("unknown id");
    assert_eq!(error.code(), ErrorCode::NotFound);
}

#[test]
fn a_problem_report_is_a_zip_in_the_reports_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine_in(dir.path(), 8, "https://user:s3cret@hub.example/".into());
    let logs = engine.layout().logs().join("default");
    std::fs::create_dir_all(&logs).expect("log folder");
    std::fs::write(logs.join("llama-server.log"), "main: server is listening\n").expect("log");

    let path = engine.write_problem_report("9.9.9").expect("report");

    assert_eq!(path.parent(), Some(engine.reports_dir().as_path()));
    let info = engine.app_info("9.9.9");
    assert_eq!(info.reports_dir, engine.reports_dir().display().to_string());
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(&path).expect("zip")).expect("a zip");
    let mut read = |name: &str| {
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap_or_else(|_| panic!("{name} missing"))
            .read_to_string(&mut text)
            .expect("text");
        text
    };
    let versions: serde_json::Value = serde_json::from_str(&read("versions.json")).expect("json");
    assert_eq!(versions["app"], "9.9.9");
    assert_eq!(versions["engine"], env!("CARGO_PKG_VERSION"));
    assert!(versions["llama_cpp_release"]
        .as_str()
        .is_some_and(|release| release.starts_with("ggml-org/llama.cpp ")));
    let system: serde_json::Value = serde_json::from_str(&read("system.json")).expect("json");
    assert_eq!(system["cpu"]["brand"], "Fake Ryzen 7 5800X");
    let settings = read("settings.json");
    assert!(!settings.contains("s3cret"), "{settings}");
    assert!(settings.contains("https://hub.example/"));
    assert_eq!(
        read("logs/default/llama-server.log"),
        "main: server is listening\n"
    );
    assert_eq!(read("instances.json").trim(), "[]");
}
