//! `cli`: what a script pays for `switchyard ps` against a running daemon,
//! beside `curl` asking the daemon's same route (a process that only does HTTP).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use switchyard_engine::control::DaemonFile;
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::tools::llama_server;

use crate::llama::{median_p90, ms, row};

const RUNS: usize = 30;
const GOAL: Duration = Duration::from_millis(20);
const DEADLINE: Duration = Duration::from_secs(60);

pub fn run(rest: &[String]) -> Result<()> {
    let cli = match rest.iter().position(|arg| arg == "--cli") {
        Some(at) => PathBuf::from(rest.get(at + 1).context("--cli PATH")?),
        None => std::env::current_exe()?.with_file_name("switchyard"),
    };
    if !cli.is_file() {
        bail!(
            "{} is missing: cargo build --release -p switchyard-cli (or --cli PATH)",
            cli.display()
        );
    }
    let home = tempfile::tempdir()?;
    let config = home.path().join("config");
    std::fs::create_dir_all(config.join("instances"))?;
    let settings = serde_json::json!({ "settings": { "llama_server_path": llama_server() } });
    std::fs::write(config.join("settings.json"), settings.to_string())?;
    let model = home.path().join("tiny.gguf");
    LlamaSpec::default().write_to(&model)?;
    std::fs::write(
        config.join("instances/tiny.toml"),
        format!(
            "model = {:?}\n[llama]\ncontext = 512\nparallel = 1\nthreads = 2\n",
            model.display().to_string()
        ),
    )?;
    let data = home.path().join("data");
    let command = |args: &[&str]| {
        let mut command = Command::new(&cli);
        command
            .args(args)
            .env("SWITCHYARD_DATA_DIR", &data)
            .env("SWITCHYARD_CONFIG_DIR", &config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    let mut daemon = command(&["daemon"]).spawn()?;
    let published = wait_for_daemon(&data, daemon.id())?;
    let outcome = measure(&command, &published);
    let _ = command(&["daemon", "stop"]).status();
    daemon.wait()?;
    outcome
}

fn measure(command: &dyn Fn(&[&str]) -> Command, daemon: &DaemonFile) -> Result<()> {
    if !command(&["up", "tiny"]).status()?.success() {
        bail!("`up tiny` failed");
    }
    let url = format!("http://127.0.0.1:{}/v1/instances", daemon.port);
    let auth = format!("Authorization: Bearer {}", daemon.token);
    let mut curl = Command::new("curl");
    curl.args(["-sf", "-o", "/dev/null", "-H", &auth, &url]);
    let mut ps = command(&["ps"]);
    let (mut cli_times, mut curl_times) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        cli_times.push(timed(&mut ps)?);
        curl_times.push(timed(&mut curl).context("curl (install it for the reference)")?);
    }
    let (cli_median, cli_p90) = median_p90(&mut cli_times);
    let (curl_median, curl_p90) = median_p90(&mut curl_times);
    println!("cli: one running tiny instance, {RUNS} runs each, through the daemon");
    println!("  {:<44} {:>10} {:>10}", "", "median", "p90");
    row("switchyard ps", cli_median, cli_p90);
    row("curl GET /v1/instances (reference)", curl_median, curl_p90);
    println!(
        "cli: ps {:.1} ms, {:.1} ms over curl (goal <= {} ms)",
        ms(cli_median),
        ms(cli_median.saturating_sub(curl_median)),
        GOAL.as_millis()
    );
    Ok(())
}

fn timed(command: &mut Command) -> Result<Duration> {
    let started = Instant::now();
    let status = command.status()?;
    let took = started.elapsed();
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(took)
}

fn wait_for_daemon(data: &Path, pid: u32) -> Result<DaemonFile> {
    let started = Instant::now();
    loop {
        if let Some(daemon) = DaemonFile::read(data)?.filter(|daemon| daemon.pid == pid) {
            return Ok(daemon);
        }
        if started.elapsed() > DEADLINE {
            bail!("the daemon did not publish daemon.json within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
