//! No llama-server outlives the app: not when the app is killed with SIGKILL (the
//! parent-death signal ends it), and not across launches (pid files end leftovers).

#![allow(clippy::expect_used, clippy::unwrap_used)]
#![cfg(target_os = "linux")]

mod llama_common;

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use llama_common::{engine_at, is_gone, spec, wait_gone};
use switchyard_engine::llama::PidRecord;
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::tools::{free_port, llama_server};

/// Set for the copy of this test binary that plays the app.
const CHILD_DIR_ENV: &str = "SWITCHYARD_TEST_ORPHAN_DIR";

/// The app: starts an instance, prints its pid, then waits to be killed. Does
/// nothing in a normal test run.
#[tokio::test]
async fn child_app_that_starts_a_server_and_waits() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let engine = engine_at(&dir.join("data"), &dir).await;
    let model = dir.join("tiny.gguf");
    LlamaSpec::default().write_to(&model).unwrap();
    engine.llama().create(spec("orphan", &model)).unwrap();
    let status = engine.llama().start("orphan").await.expect("starts");
    println!("LLAMA_PID {}", status.pid.expect("pid"));
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test]
async fn an_app_killed_with_sigkill_leaves_no_server_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_app_that_starts_a_server_and_waits",
            "--nocapture",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the app starts");
    let stdout = app.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                line.strip_prefix("LLAMA_PID ")
                    .and_then(|pid| pid.parse::<u32>().ok())
            })
    });
    let started = Instant::now();
    while !reader.is_finished() {
        assert!(
            started.elapsed() < llama_common::DEADLINE,
            "the app never started its server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let server = reader
        .join()
        .unwrap()
        .expect("the app printed its server's pid");
    assert!(!is_gone(server), "the server runs");
    let state_dir = dir.path().join("data/state");
    assert!(state_dir.join("llama-orphan.pid.json").exists());

    app.kill().unwrap(); // SIGKILL: the app runs no clean-up code.
    app.wait().unwrap();
    assert!(
        wait_gone(server, Duration::from_secs(5)).await,
        "llama-server {server} outlived its app"
    );

    // The next launch finds the stale pid file, sees the process is gone (nothing
    // to end) and removes it.
    let next = engine_at(&dir.path().join("data"), dir.path()).await;
    assert!(next.llama().leftovers_ended().is_empty());
    assert!(!state_dir.join("llama-orphan.pid.json").exists());
}

/// The process start time in ticks, as the engine records it.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// A real llama-server started outside Switchyard, as a crashed app leaves it.
fn stray_server(dir: &std::path::Path) -> std::process::Child {
    let model = dir.join("stray.gguf");
    LlamaSpec::default().write_to(&model).unwrap();
    Command::new(llama_server())
        .args([
            "-m",
            model.to_str().unwrap(),
            "-c",
            "512",
            "-np",
            "1",
            "-t",
            "1",
        ])
        .args(["--host", "127.0.0.1", "--port", &free_port().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("llama-server starts")
}

fn write_pid_file(state_dir: &std::path::Path, record: &PidRecord) {
    std::fs::create_dir_all(state_dir).unwrap();
    let path = state_dir.join(format!("llama-{}.pid.json", record.instance));
    std::fs::write(path, serde_json::to_vec(record).unwrap()).unwrap();
}

fn dead_pid() -> u32 {
    let mut done = Command::new("true").spawn().unwrap();
    let pid = done.id();
    done.wait().unwrap();
    pid
}

#[tokio::test]
async fn a_leftover_server_from_a_pid_file_is_ended_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let mut stray = stray_server(dir.path());
    let pid = stray.id();
    let state_dir = dir.path().join("data/state");
    write_pid_file(
        &state_dir,
        &PidRecord {
            instance: "old".into(),
            pid,
            start_ticks: start_ticks(pid),
            binary: llama_server(),
            port: 1,
            owner_pid: dead_pid(),
            owner_start_ticks: Some(1),
        },
    );

    let engine = engine_at(&dir.path().join("data"), dir.path()).await;
    let ended = engine.llama().leftovers_ended();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].pid, pid);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = stray.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the leftover still runs"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(!status.success());
    assert!(!state_dir.join("llama-old.pid.json").exists());
}

#[tokio::test]
async fn a_server_whose_app_still_runs_or_a_reused_pid_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut stray = stray_server(dir.path());
    let pid = stray.id();
    let mut owner = Command::new("sleep").arg("60").spawn().unwrap();
    let state_dir = dir.path().join("data/state");
    // Owned by a Switchyard that still runs (the `sleep` plays it).
    write_pid_file(
        &state_dir,
        &PidRecord {
            instance: "owned".into(),
            pid,
            start_ticks: start_ticks(pid),
            binary: llama_server(),
            port: 1,
            owner_pid: owner.id(),
            owner_start_ticks: start_ticks(owner.id()),
        },
    );
    // The pid was reused by another process since (a different start time).
    write_pid_file(
        &state_dir,
        &PidRecord {
            instance: "reused".into(),
            pid,
            start_ticks: start_ticks(pid).map(|ticks| ticks + 1),
            binary: llama_server(),
            port: 1,
            owner_pid: dead_pid(),
            owner_start_ticks: Some(1),
        },
    );

    let engine = engine_at(&dir.path().join("data"), dir.path()).await;
    assert!(engine.llama().leftovers_ended().is_empty());
    assert!(stray.try_wait().unwrap().is_none(), "the server still runs");
    assert!(
        state_dir.join("llama-owned.pid.json").exists(),
        "its owner keeps it"
    );
    assert!(!state_dir.join("llama-reused.pid.json").exists());
    let _ = stray.kill();
    let _ = stray.wait();
    let _ = owner.kill();
    let _ = owner.wait();
}

/// Two engines on one data folder (the app and the daemon, say) never both run an
/// instance: the second start is refused naming the first, before anything is
/// spawned, and succeeds once the first has stopped it.
#[tokio::test]
async fn a_second_engine_on_the_same_folder_is_refused_the_running_instance() {
    use switchyard_engine::llama::OwnerKind;
    use switchyard_engine::ErrorCode;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let model = dir.path().join("tiny.gguf");
    LlamaSpec::default().write_to(&model).unwrap();
    let daemon = engine_at(&data, dir.path()).await;
    daemon.llama().set_owner_kind(OwnerKind::Daemon);
    let app = engine_at(&data, dir.path()).await;
    daemon.llama().create(spec("shared", &model)).unwrap();
    app.llama().create(spec("shared", &model)).ok();

    let running = daemon.llama().start("shared").await.expect("starts");
    let refused = app.llama().start("shared").await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InstanceOwned);
    assert!(
        refused.to_string().contains(&format!(
            "the Switchyard daemon (pid {})",
            std::process::id()
        )),
        "{refused}"
    );
    assert_eq!(
        app.llama().owner_of("shared").map(|owner| owner.kind),
        Some(OwnerKind::Daemon)
    );
    assert!(
        !is_gone(running.pid.unwrap()),
        "the daemon's server still runs"
    );

    daemon.llama().stop("shared").await.unwrap();
    assert_eq!(app.llama().owner_of("shared"), None);
    let mine = app.llama().start("shared").await.expect("free now");
    assert_eq!(
        app.llama().owner_of("shared").map(|owner| owner.kind),
        Some(OwnerKind::App)
    );
    app.llama().stop("shared").await.unwrap();
    assert!(wait_gone(mine.pid.unwrap(), Duration::from_secs(10)).await);
}
