//! The real engine, built in a temporary folder on fake hardware.

// Helpers outside `#[test]` functions fail the test the same way an assertion does.
#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use switchyard_engine::diffusion::{DiffusionModelFiles, ImageServiceOptions, RunnerKind};
use switchyard_engine::engine::ImageServerConfig;
use switchyard_engine::services::{EngineStatus, ServiceState};
use switchyard_engine::settings::{Settings, Theme};
use switchyard_engine::system::{RunsOn, SystemSample};
use switchyard_engine::{Engine, EngineDeps, EngineEvent, ErrorCode};
use switchyard_testkit::tools::fake_sd;
use switchyard_testkit::{test_engine, FakeProbe, ManualClock, GIB};
use tokio::sync::broadcast::Receiver;

const DEADLINE: Duration = Duration::from_secs(10);

async fn next_sample(events: &mut Receiver<EngineEvent>) -> SystemSample {
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(EngineEvent::SystemSample(sample)) = events.recv().await {
                return sample;
            }
        }
    })
    .await
    .expect("a system sample before the deadline")
}

#[test]
fn static_facts_are_read_once_and_memory_every_time() {
    let probe = Arc::new(FakeProbe::cpu_only(32));
    let (engine, _dir) = test_engine(probe.clone(), Arc::new(ManualClock::at(1_000)));

    let first = engine.system_info();
    assert_eq!(first.memory.available_bytes, 16 * GIB);
    let reads_after_first = probe.static_reads();

    probe.set_available_ram(3 * GIB);
    let second = engine.system_info();
    assert_eq!(
        second.memory.available_bytes,
        3 * GIB,
        "free RAM must be read fresh"
    );
    assert_eq!(second.memory.used_bytes, 29 * GIB);
    assert_eq!(
        probe.static_reads(),
        reads_after_first,
        "static facts must be cached"
    );
    assert_eq!(second.cpu.logical_cores, 16);
    assert_eq!(second.sampled_at_ms, 1_000);
    assert_eq!(second.recommendation.runs_on, RunsOn::Cpu);
}

#[test]
fn gpu_memory_is_fresh_and_paired_with_its_gpu() {
    let probe = Arc::new(FakeProbe::cpu_only(64).with_nvidia("NVIDIA GeForce RTX 4090", 24));
    let (engine, _dir) = test_engine(probe.clone(), Arc::new(ManualClock::at(0)));
    probe.set_vram_used(0, 6 * GIB);

    let info = engine.system_info();
    assert_eq!(info.gpus.len(), 1);
    assert_eq!(info.gpus[0].identity.name, "NVIDIA GeForce RTX 4090");
    assert_eq!(info.gpus[0].memory.free_bytes, Some(18 * GIB));
    assert_eq!(info.recommendation.runs_on, RunsOn::Gpu);

    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(
        json["gpus"][0]["vendor"], "nvidia",
        "identity is flattened for the UI"
    );
    assert_eq!(json["gpus"][0]["memory"]["used_bytes"], 6 * GIB);
}

#[tokio::test]
async fn monitor_streams_samples_until_shutdown() {
    let probe = Arc::new(FakeProbe::cpu_only(16));
    let clock = Arc::new(ManualClock::at(5_000));
    let (engine, _dir) = test_engine(probe.clone(), clock.clone());
    let mut events = engine.subscribe();
    let monitor = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run_monitor(Duration::from_millis(20)).await }
    });

    let first = next_sample(&mut events).await;
    assert_eq!(first.sampled_at_ms, 5_000);
    assert_eq!(first.memory.total_bytes, 16 * GIB);
    assert_eq!(first.cpu_usage_percent, Some(12.5));

    clock.advance_ms(2_000);
    probe.set_available_ram(GIB);
    let changed = tokio::time::timeout(DEADLINE, async {
        loop {
            let sample = next_sample(&mut events).await;
            if sample.memory.available_bytes == GIB {
                return sample;
            }
        }
    })
    .await
    .expect("a sample with the new free RAM");
    assert_eq!(changed.sampled_at_ms, 7_000);

    engine.shutdown().await;
    tokio::time::timeout(DEADLINE, monitor)
        .await
        .expect("the monitor ends at shutdown")
        .expect("the monitor task did not panic");
    assert!(engine.is_shutting_down());
}

#[tokio::test]
async fn shutdown_is_announced_once_and_refuses_new_work() {
    let (engine, _dir) = test_engine(
        Arc::new(FakeProbe::cpu_only(8)),
        Arc::new(ManualClock::at(0)),
    );
    let mut events = engine.subscribe();
    engine.shutdown().await;
    engine.shutdown().await;
    assert_eq!(events.recv().await.unwrap(), EngineEvent::ShuttingDown);
    assert!(
        events.try_recv().is_err(),
        "a second shutdown announces nothing"
    );
    let refused = engine.update_settings(Settings::default()).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::ShuttingDown);
}

/// The image server's state (the Diffusion card, the header and the tray show it)
/// is the engine's: each change comes as `StatusChanged`, stopping included.
#[tokio::test]
async fn the_image_servers_states_are_announced_as_they_change() {
    let (engine, dir) = test_engine(
        Arc::new(FakeProbe::cpu_only(8)),
        Arc::new(ManualClock::at(0)),
    );
    let model = dir.path().join("model.gguf");
    std::fs::write(&model, b"not read by the fake").expect("a model file");
    let config = |sd_binary| ImageServerConfig {
        files: Some(DiffusionModelFiles::single(&model)),
        port: Some(0),
        sd_binary: Some(sd_binary),
        options: ImageServiceOptions {
            runner: RunnerKind::Cli,
            ..ImageServiceOptions::default()
        },
        ..ImageServerConfig::default()
    };
    let mut events = engine.subscribe();
    engine
        .start_image_server(config(fake_sd()))
        .await
        .expect("starts with the fake sd");
    assert_eq!(engine.status().diffusion, ServiceState::Running);
    engine.stop_image_server().await;
    engine.stop_image_server().await;
    let missing = dir.path().join("no-sd-here");
    engine
        .start_image_server(config(missing))
        .await
        .expect_err("no sd, no server");
    engine.shutdown().await;

    let heard: Vec<ServiceState> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            EngineEvent::StatusChanged(EngineStatus { diffusion, .. }) => Some(diffusion),
            _ => None,
        })
        .collect();
    use ServiceState::{Failed, Running, Starting, Stopped, Stopping};
    assert_eq!(
        heard,
        [Starting, Running, Stopping, Stopped, Starting, Failed, Stopped],
        "a second stop has nothing to say; shutdown ends the failure"
    );
}

/// What the app saves is what the `switchyard` command (and the next start) reads:
/// the engine writes the file it reads.
#[test]
fn saved_settings_are_written_where_they_are_read() {
    let (engine, dir) = test_engine(
        Arc::new(FakeProbe::cpu_only(8)),
        Arc::new(ManualClock::at(0)),
    );
    let config = dir.path().join("config");
    let bad = Settings {
        image_port: 8434,
        ..Settings::default()
    };
    let error = engine.save_settings(bad).unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidSetting);
    assert!(
        !switchyard_engine::settings_file::path(&config).exists(),
        "a refused change is not written"
    );

    let dark = Settings {
        theme: Theme::Dark,
        first_run_done: true,
        ..Settings::default()
    };
    engine.save_settings(dark.clone()).unwrap();
    assert_eq!(engine.settings(), dark);
    assert_eq!(Settings::read_saved(&config), (dark.clone(), None));
    assert_eq!(
        switchyard_engine::settings_file::load(&config),
        (dark, None)
    );
}

#[test]
fn settings_are_validated_applied_and_announced() {
    let (engine, dir) = test_engine(
        Arc::new(FakeProbe::cpu_only(8)),
        Arc::new(ManualClock::at(0)),
    );
    let mut events = engine.subscribe();

    let bad = Settings {
        image_port: 8434,
        ..Settings::default()
    };
    let error = engine.update_settings(bad).unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidSetting);
    assert_eq!(
        engine.settings(),
        Settings::default(),
        "a refused change changes nothing"
    );
    assert!(events.try_recv().is_err());

    let dark = Settings {
        theme: Theme::Dark,
        ..Settings::default()
    };
    let update = engine.update_settings(dark.clone()).unwrap();
    assert!(
        !update.restart_required,
        "the test's data folder override still wins"
    );
    assert_eq!(engine.settings().theme, Theme::Dark);
    assert_eq!(
        events.try_recv().unwrap(),
        EngineEvent::SettingsChanged(dark)
    );

    // Without an override, moving the data folder needs a restart.
    let engine = Engine::new(EngineDeps {
        data_dir_override: None,
        config_dir: dir.path().join("config"),
        settings: Settings {
            data_dir: Some(dir.path().join("a")),
            ..Settings::default()
        },
        probe: Arc::new(FakeProbe::cpu_only(8)),
        clock: Arc::new(ManualClock::at(0)),
    })
    .unwrap();
    assert_eq!(engine.layout().root(), dir.path().join("a"));
    let moved = Settings {
        data_dir: Some(dir.path().join("b")),
        ..Settings::default()
    };
    assert!(engine.update_settings(moved).unwrap().restart_required);
    let same = Settings {
        data_dir: Some(dir.path().join("a")),
        ..Settings::default()
    };
    assert!(!engine.update_settings(same).unwrap().restart_required);
}

#[test]
fn an_unusable_data_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let error = Engine::new(EngineDeps {
        data_dir_override: Some(blocker),
        config_dir: dir.path().join("config"),
        settings: Settings::default(),
        probe: Arc::new(FakeProbe::cpu_only(8)),
        clock: Arc::new(ManualClock::at(0)),
    })
    .unwrap_err();
    assert_eq!(error.code(), ErrorCode::StorageUnavailable);
    assert!(!error.suggestion().is_empty());
}

#[test]
fn the_host_probe_reads_this_machine() {
    // The real probe, checked against the kernel's own numbers.
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(EngineDeps {
        data_dir_override: Some(dir.path().to_path_buf()),
        ..EngineDeps::for_host(Settings::default()).unwrap()
    })
    .unwrap();
    let info = engine.system_info();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    assert!(info.cpu.logical_cores >= u32::try_from(threads).unwrap());
    assert!(info.memory.available_bytes <= info.memory.total_bytes);
    if let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") {
        let kib: u64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        assert_eq!(info.memory.total_bytes, kib * 1024);
    }
    if let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") {
        let processors = cpuinfo
            .lines()
            .filter(|line| line.starts_with("processor"))
            .count();
        assert_eq!(info.cpu.logical_cores, u32::try_from(processors).unwrap());
    }
    assert!(!info.recommendation.headline.is_empty());
}

#[test]
fn the_offload_threshold_setting_drives_the_orchestrator() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(EngineDeps {
        data_dir_override: Some(dir.path().join("data")),
        config_dir: dir.path().join("config"),
        settings: Settings {
            offload_threshold: 40,
            ..Settings::default()
        },
        probe: Arc::new(FakeProbe::cpu_only(8)),
        clock: Arc::new(ManualClock::at(0)),
    })
    .unwrap();
    assert!(
        (engine.orchestrator().policy().threshold - 0.40).abs() < 1e-9,
        "applied at start"
    );
    let status = engine.orchestrator_status();
    assert_eq!(status.policy, engine.orchestrator().policy());
    assert!(status.saved.is_none());
    assert!(status.llm.is_empty(), "no LLM server runs");
    assert!(
        status.next_image.is_none(),
        "no image server, no prediction"
    );

    engine
        .update_settings(Settings {
            offload_threshold: 10,
            ..Settings::default()
        })
        .unwrap();
    let policy = engine.orchestrator().policy();
    assert!((policy.threshold - 0.10).abs() < 1e-9, "applied on update");
    assert_eq!(policy.reload_attempts, 4, "the rest of the policy stays");

    let refused = engine.update_settings(Settings {
        offload_threshold: 101,
        ..Settings::default()
    });
    assert_eq!(refused.unwrap_err().code(), ErrorCode::InvalidSetting);
    assert!(
        (engine.orchestrator().policy().threshold - 0.10).abs() < 1e-9,
        "a refused change changes nothing"
    );
}

#[test]
fn a_saved_image_lands_in_the_gallery_under_a_name_the_engine_chose() {
    use base64::Engine as _;
    let (engine, _dir) = test_engine(
        Arc::new(FakeProbe::cpu_only(16)),
        Arc::new(ManualClock::at(0)),
    );
    let png = b"\x89PNG\r\n\x1a\nthe rest of an image".to_vec();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    let first = engine.save_image(&encoded, 42).expect("saved");
    let second = engine.save_image(&encoded, 42).expect("saved again");
    assert_ne!(first, second, "a second save never overwrites the first");
    for path in [&first, &second] {
        assert_eq!(path.parent(), Some(engine.layout().gallery().as_path()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.contains("seed42") && name.ends_with(".png"), "{name}");
        assert_eq!(std::fs::read(path).unwrap(), png);
    }
    let error = engine
        .save_image(
            &base64::engine::general_purpose::STANDARD.encode(b"<svg/>"),
            1,
        )
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidInput);
}

/// The app and the daemon (two engines on one data folder) each measure a model:
/// the calibration file keeps both, and the later writer's copy knows both.
#[test]
fn two_engines_on_one_folder_keep_each_others_measurements() {
    use switchyard_engine::estimate::{
        Backend, Breakdown, Calibration, LlamaConfig, MeasuredMemory,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let open = || {
        Engine::new(EngineDeps {
            data_dir_override: Some(dir.path().join("data")),
            config_dir: dir.path().join("config"),
            settings: Settings::default(),
            probe: Arc::new(FakeProbe::cpu_only(8)),
            clock: Arc::new(ManualClock::at(0)),
        })
        .expect("engine")
    };
    let (app, daemon) = (open(), open());
    let config = LlamaConfig::default();
    let measured = |weights: u64| MeasuredMemory {
        ram: Breakdown {
            weights,
            ..Breakdown::default()
        },
        ..MeasuredMemory::default()
    };

    app.llama()
        .record_measurement("model-a", &config, Backend::Cpu, measured(100 * GIB));
    daemon
        .llama()
        .record_measurement("model-b", &config, Backend::Cpu, measured(200 * GIB));

    let on_disk = Calibration::load(&app.layout().state()).expect("readable");
    let weights = |calibration: &Calibration, model: &str| {
        calibration
            .lookup(model, &config, Backend::Cpu)
            .map(|measured| measured.ram.weights)
    };
    assert_eq!(weights(&on_disk, "model-a"), Some(100 * GIB));
    assert_eq!(weights(&on_disk, "model-b"), Some(200 * GIB));
    let daemon_copy = daemon.llama().calibration();
    assert_eq!(weights(&daemon_copy, "model-a"), Some(100 * GIB));
}
