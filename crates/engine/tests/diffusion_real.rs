//! Real image generation: the real sd-cli and sd-server built from the
//! stable-diffusion-cpp-python 0.4.7 sources (`scripts/build-tool.sh sd-server`) with
//! the random-weight SDXS-512 model of the test kit (883 MB, written once for the
//! tests running together and deleted after them). Everything goes through the
//! engine and its HTTP API, as a client would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use switchyard_engine::diffusion::{
    DiffusionModelFiles, ImageServiceOptions, JobStatus, RunnerKind, Stage,
};
use switchyard_engine::engine::ImageServerConfig;
use switchyard_engine::{Engine, EngineEvent};
use switchyard_testkit::gguf::{shared_sdxs_512, SharedSdxs};
use switchyard_testkit::tools::sd_cli;
use switchyard_testkit::{test_engine, FakeProbe, ManualClock};

const DEADLINE: Duration = Duration::from_secs(300);

async fn start(runner: RunnerKind) -> (Engine, tempfile::TempDir, Arc<SharedSdxs>, String) {
    let model = shared_sdxs_512();
    let (engine, dir) = test_engine(
        Arc::new(FakeProbe::cpu_only(32)),
        Arc::new(ManualClock::at(0)),
    );
    let info = engine
        .start_image_server(ImageServerConfig {
            files: Some(DiffusionModelFiles::single(model.path())),
            port: Some(0),
            sd_binary: Some(sd_cli()),
            options: ImageServiceOptions {
                runner,
                threads: Some(2),
                gallery_dir: Some(dir.path().join("gallery")),
                ..ImageServiceOptions::default()
            },
            ..ImageServerConfig::default()
        })
        .await
        .unwrap();
    assert_eq!(info.runner, runner);
    assert!(
        info.capabilities.samplers.contains(&"euler_a".to_owned()),
        "{info:?}"
    );
    assert!(info.capabilities.schedulers.contains(&"karras".to_owned()));
    (engine, dir, model, info.url)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn create(url: &str, body: Value) -> String {
    let response = client()
        .post(format!("{url}/v1/images/generations"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn poll(url: &str, id: &str) -> Value {
    client()
        .get(format!("{url}/v1/images/generations/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Three 64×64 one-step images: consecutive seeds, real PNGs, different pictures.
async fn batch_of_three(runner: RunnerKind) {
    let (engine, dir, _model, url) = start(runner).await;
    let mut events = engine.subscribe();
    let id = create(
        &url,
        json!({"prompt": "a switch yard at dawn", "width": 64, "height": 64, "steps": 1, "cfg_scale": 1.0, "seed": 100, "count": 3}),
    )
    .await;
    engine.wait_image_job(&id, DEADLINE).await.unwrap();
    let job = poll(&url, &id).await;
    assert_eq!(job["status"], "complete", "{job}");
    let images = job["result"]["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    let mut decoded = Vec::new();
    for (index, image) in images.iter().enumerate() {
        assert_eq!(image["seed"], 100 + index as i64);
        assert_eq!(
            (image["width"].as_u64(), image["height"].as_u64()),
            (Some(64), Some(64))
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(image["image"].as_str().unwrap())
            .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        decoded.push(png);
    }
    assert!(
        decoded[0] != decoded[1] && decoded[1] != decoded[2],
        "three different seeds, three pictures"
    );
    // Each image alone, as its PNG file.
    for (index, png) in decoded.iter().enumerate() {
        let response = client()
            .get(format!("{url}/v1/images/generations/{id}/images/{index}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/png");
        assert_eq!(&response.bytes().await.unwrap()[..], &png[..]);
    }
    let past_the_end = client()
        .get(format!("{url}/v1/images/generations/{id}/images/3"))
        .send()
        .await
        .unwrap();
    assert_eq!(past_the_end.status(), 404);
    let body: Value = past_the_end.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND", "{body}");
    assert!(job["result"]["time_ms"].as_u64().unwrap() > 0);
    let saved = std::fs::read_dir(dir.path().join("gallery"))
        .unwrap()
        .count();
    assert_eq!(saved, 3, "the gallery got every image");

    // Progress from the real output: every image sampled, then decoded.
    let mut stages = Vec::new();
    let mut images_sampled = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EngineEvent::ImageJobChanged(summary) = event {
            if stages.last() != Some(&summary.progress.stage) {
                stages.push(summary.progress.stage);
            }
            if summary.progress.stage == Stage::Sampling && summary.progress.step == 1 {
                images_sampled.push(summary.progress.image);
            }
            assert_eq!(summary.progress.images, 3);
        }
    }
    assert_eq!(images_sampled, [1, 2, 3], "{stages:?}");
    assert!(
        stages.contains(&Stage::Decoding) && stages.ends_with(&[Stage::Done]),
        "{stages:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sd_cli_makes_a_batch_of_three_with_consecutive_seeds() {
    batch_of_three(RunnerKind::Cli).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sd_server_makes_a_batch_of_three_with_consecutive_seeds_and_ends_on_stop() {
    // Auto picks the persistent server when it sits beside sd-cli, as it does here.
    batch_of_three(RunnerKind::Server).await;
}

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A 512×512 four-step run (15 s here) is cancelled once sampling has begun.
async fn cancel_mid_sampling(runner: RunnerKind) {
    let (engine, _dir, _model, url) = start(runner).await;
    let mut events = engine.subscribe();
    let id = create(
        &url,
        json!({"prompt": "a cat", "width": 512, "height": 512, "steps": 4, "cfg_scale": 1.0}),
    )
    .await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("sampling began")
            .unwrap();
        if let EngineEvent::ImageJobChanged(summary) = event {
            assert!(!summary.status.is_finished(), "{summary:?}");
            if summary.progress.stage == Stage::Sampling {
                break;
            }
        }
    }
    let pid = engine.image_service().unwrap().active_pid().unwrap();
    assert!(process_exists(pid));
    let response = client()
        .delete(format!("{url}/v1/images/generations/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let view = engine.wait_image_job(&id, DEADLINE).await.unwrap();
    assert_eq!(view.status, JobStatus::Cancelled);
    assert!(!process_exists(pid), "sd {pid} is gone");
    assert_eq!(poll(&url, &id).await["status"], "cancelled");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_real_sd_cli_mid_sampling_ends_it() {
    cancel_mid_sampling(RunnerKind::Cli).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_real_sd_server_job_mid_sampling_ends_the_server() {
    cancel_mid_sampling(RunnerKind::Server).await;
}
