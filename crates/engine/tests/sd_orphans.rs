//! No sd outlives the app: an engine in a child process killed with SIGKILL during
//! an image leaves neither sd-cli nor sd-server behind (the parent-death signal
//! ends them), and an sd-server a crash left behind on a platform without that
//! signal is ended at the next launch from its pid file.

#![allow(clippy::expect_used, clippy::unwrap_used)]
#![cfg(target_os = "linux")]

mod llama_common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use llama_common::{engine_at, is_gone, wait_gone, wait_until};
use switchyard_engine::diffusion::{
    DiffusionModelFiles, ImageRequest, ImageServiceOptions, JobStatus, RunnerKind,
};
use switchyard_engine::engine::ImageServerConfig;
use switchyard_engine::process::{ChildKind, PidFile};
use switchyard_testkit::gguf::shared_sdxs_512;
use switchyard_testkit::processes::children_named;
use switchyard_testkit::tools::{sd_cli, sd_server};

/// Set for the copy of this test binary that plays the app.
const CHILD_DIR_ENV: &str = "SWITCHYARD_TEST_SD_ORPHAN_DIR";
const CHILD_RUNNER_ENV: &str = "SWITCHYARD_TEST_SD_ORPHAN_RUNNER";
/// The model the test wrote: the child is killed, so a model it wrote itself would
/// never be deleted (843 MB left in the temp folder per run).
const CHILD_MODEL_ENV: &str = "SWITCHYARD_TEST_SD_ORPHAN_MODEL";

/// The app: starts the image server with the real sd and the random SDXS-512 model,
/// queues a 512² image, prints `RUNNING` once sd is at work, then waits to be
/// killed. Does nothing in a normal test run.
#[tokio::test]
async fn child_app_that_makes_an_image_and_waits() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let runner = match std::env::var(CHILD_RUNNER_ENV).as_deref() {
        Ok("server") => RunnerKind::Server,
        _ => RunnerKind::Cli,
    };
    let model = std::env::var_os(CHILD_MODEL_ENV)
        .map(PathBuf::from)
        .expect("the test names the model");
    let engine = engine_at(&dir.join("data"), &dir).await;
    engine
        .start_image_server(ImageServerConfig {
            files: Some(DiffusionModelFiles::single(model)),
            sd_binary: Some(sd_cli()),
            port: Some(0),
            options: ImageServiceOptions {
                runner,
                threads: Some(2),
                ..ImageServiceOptions::default()
            },
            ..ImageServerConfig::default()
        })
        .await
        .expect("the image server starts");
    let id = engine
        .generate_image(ImageRequest {
            width: 512,
            height: 512,
            steps: 4,
            seed: Some(1),
            ..ImageRequest::new("a switch yard")
        })
        .unwrap();
    let started = Instant::now();
    while engine.image_job(&id).unwrap().status != JobStatus::Running {
        assert!(started.elapsed() < llama_common::DEADLINE);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("RUNNING");
    tokio::time::sleep(Duration::from_secs(600)).await;
}

async fn killed_during_an_image_leaves_no_sd(runner: &str) {
    let dir = tempfile::tempdir().unwrap();
    let model = shared_sdxs_512();
    let mut app = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_app_that_makes_an_image_and_waits",
            "--nocapture",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .env(CHILD_RUNNER_ENV, runner)
        .env(CHILD_MODEL_ENV, model.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the app starts");
    let stdout = app.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line == "RUNNING")
    });
    let started = Instant::now();
    while !reader.is_finished() {
        assert!(
            started.elapsed() < llama_common::DEADLINE,
            "{runner}: the app never started its image"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        reader.join().unwrap(),
        "{runner}: the app said it was at work"
    );
    let app_pid = app.id();
    let sd = children_named(app_pid, "sd");
    assert!(!sd.is_empty(), "{runner}: sd runs for the image");
    let recorded: Vec<_> = std::fs::read_dir(dir.path().join("data/state"))
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("sd-"))
        .collect();
    assert!(!recorded.is_empty(), "{runner}: sd has a pid file");

    app.kill().unwrap(); // SIGKILL: the app runs no clean-up code.
    app.wait().unwrap();
    for pid in sd {
        assert!(
            wait_gone(pid, Duration::from_secs(5)).await,
            "{runner}: sd (pid {pid}) outlived its app"
        );
    }
}

#[tokio::test]
async fn an_app_killed_during_an_image_leaves_no_sd_cli_behind() {
    killed_during_an_image_leaves_no_sd("cli").await;
}

#[tokio::test]
async fn an_app_killed_during_an_image_leaves_no_sd_server_behind() {
    killed_during_an_image_leaves_no_sd("server").await;
}

/// A real sd-server started outside Switchyard, as a crash on a platform without
/// the parent-death signal leaves it, recorded in `state` as an app that is gone
/// recorded it; with its model (the file goes when that is dropped).
fn stray_sd_server(
    state: &Path,
) -> (
    std::process::Child,
    std::sync::Arc<switchyard_testkit::gguf::SharedSdxs>,
) {
    let model = shared_sdxs_512();
    let port = switchyard_testkit::tools::free_port();
    let stray = Command::new(sd_server())
        .arg("-m")
        .arg(model.path())
        .args([
            "--listen-ip",
            "127.0.0.1",
            "--listen-port",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sd-server starts");
    std::fs::create_dir_all(state).unwrap();
    let record = PidFile::record(state, ChildKind::Sd, None, stray.id(), &sd_server(), port);
    // The app that wrote it crashed: its record stays behind.
    std::mem::forget(record);
    (stray, model)
}

#[tokio::test]
async fn an_sd_server_left_behind_is_ended_at_the_next_launch() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("data/state");
    let (mut stray, _model) = stray_sd_server(&state);
    let pid = stray.id();
    wait_until("sd-server runs", || !is_gone(pid)).await;

    let engine = engine_at(&dir.path().join("data"), dir.path()).await;
    let ended = engine.llama().leftovers_ended();
    assert!(
        ended.iter().any(|leftover| leftover.pid == pid),
        "{ended:?}"
    );
    let status = stray.wait().unwrap();
    assert!(status.code().is_none(), "killed: {status:?}");
    assert!(
        !std::fs::read_dir(&state)
            .unwrap()
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with("sd-")),
        "its pid file is gone"
    );
    engine.shutdown().await;
}
