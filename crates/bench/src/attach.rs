//! `attach`: what the app's daemon watcher costs at each tick, without a daemon (the
//! common case: every 2 s for the app's whole life) and with one running a tiny
//! instance, and how soon a stop or start made through the daemon is announced.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use switchyard_engine::clock::SystemClock;
use switchyard_engine::control::{run_daemon, DaemonOptions};
use switchyard_engine::llama::InstanceState;
use switchyard_engine::settings::Settings;
use switchyard_engine::system::HostProbe;
use switchyard_engine::{Engine, EngineDeps, EngineEvent};
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::tools::{llama_server, use_real_llama_server};
use tokio::sync::broadcast;

use crate::llama::{engine_on, median_p90, row, runtime};

const POLLS: usize = 200;
const ROUND_TRIPS: usize = 10;
const DEADLINE: Duration = Duration::from_secs(60);

pub fn run() -> Result<()> {
    runtime()?.block_on(measure())
}

async fn measure() -> Result<()> {
    let home = tempfile::tempdir()?;
    let model = home.path().join("tiny.gguf");
    LlamaSpec::default().write_to(&model)?;
    let instances = home.path().join("config/instances");
    std::fs::create_dir_all(&instances)?;
    std::fs::write(
        instances.join("tiny.toml"),
        format!(
            "model = {:?}\n[llama]\ncontext = 512\nparallel = 1\nthreads = 2\n",
            model.display().to_string()
        ),
    )?;
    let app = engine_on(home.path(), Arc::new(HostProbe::for_this_machine()?)).await?;
    let alone = polls(&app).await?;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run_daemon(
        daemon_engine(home.path()).await?,
        DaemonOptions {
            port: 0,
            image_port: Some(0),
            endpoint_port: Some(0),
            version: "bench".into(),
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let outcome = with_daemon(&app, alone).await;
    let _ = stop.send(());
    daemon.await??;
    outcome
}

async fn with_daemon(app: &Engine, mut alone: Vec<Duration>) -> Result<()> {
    let started = Instant::now();
    while app.attached_daemon().await.is_none() {
        if started.elapsed() > DEADLINE {
            bail!("the daemon never answered");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.daemon_up("tiny").await.context("up tiny")?;
    let mut attached = polls(app).await?;

    let mut events = app.subscribe();
    let (mut downs, mut ups) = (Vec::new(), Vec::new());
    for _ in 0..ROUND_TRIPS {
        downs.push(announced(app, &mut events, InstanceState::Stopped).await?);
        ups.push(announced(app, &mut events, InstanceState::Healthy).await?);
    }
    let (alone_median, alone_p90) = median_p90(&mut alone);
    let (attached_median, attached_p90) = median_p90(&mut attached);
    let (down_median, down_p90) = median_p90(&mut downs);
    let (up_median, up_p90) = median_p90(&mut ups);
    println!(
        "attach: {POLLS} watcher ticks each; {ROUND_TRIPS} stops and starts of the tiny model"
    );
    println!("  {:<44} {:>10} {:>10}", "", "median", "p90");
    row("tick, no daemon", alone_median, alone_p90);
    row(
        "tick, daemon with one healthy instance",
        attached_median,
        attached_p90,
    );
    row("stop through the daemon → announced", down_median, down_p90);
    row(
        "start through the daemon → healthy, announced",
        up_median,
        up_p90,
    );
    println!(
        "attach: a tick costs {:.1} µs without a daemon, {:.1} µs with one (medians; one tick per 2 s)",
        micros(alone_median),
        micros(attached_median)
    );
    Ok(())
}

/// The daemon's engine: the real llama-server is its Settings' own, as
/// `switchyard daemon` finds it in `settings.json`.
async fn daemon_engine(home: &Path) -> Result<Engine> {
    let engine = Engine::new(EngineDeps {
        data_dir_override: Some(home.join("data")),
        config_dir: home.join("config"),
        settings: Settings {
            llama_server_path: Some(llama_server()),
            ..Settings::default()
        },
        probe: Arc::new(HostProbe::for_this_machine()?),
        clock: Arc::new(SystemClock),
    })?;
    use_real_llama_server(&engine).await?;
    Ok(engine)
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

async fn polls(app: &Engine) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(POLLS);
    for _ in 0..POLLS {
        let started = Instant::now();
        app.attached_daemon().await;
        times.push(started.elapsed());
    }
    Ok(times)
}

/// Stops or starts `tiny` through the daemon; the time until the app announced it.
async fn announced(
    app: &Engine,
    events: &mut broadcast::Receiver<EngineEvent>,
    target: InstanceState,
) -> Result<Duration> {
    let started = Instant::now();
    if target == InstanceState::Stopped {
        app.daemon_down("tiny").await?;
    } else {
        app.daemon_up("tiny").await?;
    }
    loop {
        let event = tokio::time::timeout(DEADLINE, events.recv()).await??;
        if let EngineEvent::DaemonChanged {
            daemon: Some(daemon),
        } = event
        {
            if daemon
                .instances
                .iter()
                .any(|row| row.name == "tiny" && row.state == target)
            {
                return Ok(started.elapsed());
            }
        }
    }
}
