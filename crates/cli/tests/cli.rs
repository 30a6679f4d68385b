//! The `switchyard` program end to end, with the real llama-server and a
//! generated model: up → ps healthy → logs → down, `--json`, instance files with
//! problems, the daemon restarting a killed server, and one owner per instance.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_engine::clock::SystemClock;
use switchyard_engine::control::{DaemonFile, DaemonLock};
use switchyard_engine::llama::InstanceSpec;
use switchyard_engine::settings::Settings;
use switchyard_engine::{Engine, EngineDeps, ErrorCode};
use switchyard_testkit::gguf::{shared_sdxs_512, LlamaSpec};
use switchyard_testkit::processes::children_named;
use switchyard_testkit::tools::{llama_server, sd_cli, use_real_llama_server};
use switchyard_testkit::{FakeProbe, Fault, FixtureServer};

/// Generous: a loaded CI machine may be slow; a passing test never waits this long.
const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

const EXIT_NOT_FOUND: i32 = 3;
const EXIT_INVALID_CONFIG: i32 = 4;
const EXIT_NOT_HEALTHY: i32 = 5;
const EXIT_OWNED_ELSEWHERE: i32 = 7;

/// A data folder, a config folder with the real llama-server in its settings, and
/// a generated model. Stops any daemon it started when dropped.
struct Home {
    dir: tempfile::TempDir,
    model: PathBuf,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config");
        std::fs::create_dir_all(config.join("instances")).unwrap();
        let model = dir.path().join("tiny.gguf");
        LlamaSpec::default()
            .write_to(&model)
            .expect("model written");
        let home = Self { dir, model };
        home.settings(serde_json::json!({}));
        home
    }

    /// Settings beside the real llama-server.
    fn settings(&self, mut more: Value) {
        more["llama_server_path"] = serde_json::json!(llama_server());
        let file = serde_json::json!({ "settings": more });
        std::fs::write(self.config_dir().join("settings.json"), file.to_string()).unwrap();
    }

    /// `image --json` of one 64×64 one-step image with seed 42 into `out`.
    fn small_image(&self, model: &str, out: &Path) -> Value {
        self.json(&[
            "image",
            "a red cube",
            "--model",
            model,
            "--width",
            "64",
            "--height",
            "64",
            "--steps",
            "1",
            "--seed",
            "42",
            "-o",
            out.to_str().unwrap(),
        ])
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// `instances/NAME.toml`.
    fn instance_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self
            .config_dir()
            .join("instances")
            .join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A small, fast instance of the generated model.
    fn tiny_instance(&self, name: &str) {
        self.tiny_instance_file(name, "");
    }

    /// The same, started by the daemon as it starts.
    fn autostart_tiny(&self, name: &str) {
        self.tiny_instance_file(name, "autostart = true\n");
    }

    fn tiny_instance_file(&self, name: &str, top: &str) {
        self.instance_file(
            name,
            &format!(
                "model = {:?}\n{top}[llama]\ncontext = 512\nparallel = 1\nthreads = 2\n",
                self.model.display().to_string()
            ),
        );
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        command
            .args(args)
            .env("SWITCHYARD_DATA_DIR", self.data_dir())
            .env("SWITCHYARD_CONFIG_DIR", self.config_dir())
            .env_remove("SWITCHYARD_LOG")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("switchyard runs")
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?} failed ({:?}):\n{}\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let stdout = self.ok(&with_json);
        serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{args:?}: {error}: {stdout}"))
    }

    /// `ps --json`'s row for `name`.
    fn row(&self, name: &str) -> Value {
        let rows = self.json(&["ps"]);
        rows.as_array()
            .expect("ps --json is an array")
            .iter()
            .find(|row| row["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {rows}"))
    }

    fn daemon_pid(&self) -> Option<u32> {
        DaemonFile::read(&self.data_dir())
            .ok()
            .flatten()
            .map(|daemon| daemon.pid)
    }

    /// An engine in this process on the same folders, as the desktop app opens one.
    async fn app_engine(&self) -> Engine {
        let (settings, _) = Settings::read_saved(&self.config_dir());
        let engine = Engine::new(EngineDeps {
            data_dir_override: Some(self.data_dir()),
            config_dir: self.config_dir(),
            settings,
            probe: Arc::new(FakeProbe::cpu_only(16)),
            clock: Arc::new(SystemClock),
        })
        .expect("engine");
        use_real_llama_server(&engine)
            .await
            .expect("the real llama-server passes its checks");
        engine
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        // A failed test must not leave a daemon (and its servers) behind.
        if let Some(pid) = self.daemon_pid() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            wait_until("the daemon to exit", || !is_running(pid));
        }
    }
}

fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// Polls `condition` until it holds; panics at the deadline.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < DEADLINE,
            "waited {DEADLINE:?} for {what}"
        );
        std::thread::sleep(POLL);
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An instance in the app's own list, as its window would create one.
fn app_instance(app: &Engine, name: &str, model: &Path) {
    let mut spec = InstanceSpec::new(name, model);
    spec.config.context = 512;
    spec.auto.context = false;
    spec.config.parallel = 1;
    app.create_instance(spec).unwrap();
}

/// `switchyard daemon` as this test's own child.
fn start_daemon(home: &Home) -> Child {
    // Its image API on a free port: tests run side by side.
    let child = home
        .command(&["daemon", "--image-port", "0", "--endpoint-port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("daemon starts");
    wait_until("daemon.json", || home.daemon_pid() == Some(child.id()));
    child
}

#[test]
fn up_ps_logs_down_through_a_daemon_started_on_demand() {
    let home = Home::new();
    home.tiny_instance("tiny");

    let before = home.row("tiny");
    assert_eq!(before["state"], "stopped");
    assert!(home.daemon_pid().is_none(), "ps alone starts no daemon");

    let up = home.ok(&["up", "tiny"]);
    assert!(up.contains("tiny: healthy at http://127.0.0.1:"), "{up}");
    let daemon = home.daemon_pid().expect("up started a daemon");

    // A file added while the daemon runs counts without a reload; a removed one
    // is forgotten.
    home.tiny_instance("later");
    assert_eq!(home.row("later")["state"], "stopped");
    std::fs::remove_file(home.config_dir().join("instances/later.toml")).unwrap();
    let names: Vec<Value> = home
        .json(&["ps"])
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].clone())
        .collect();
    assert_eq!(names, ["tiny"]);

    let table = home.ok(&["ps"]);
    let line = table
        .lines()
        .find(|line| line.trim_start().starts_with("tiny"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains("healthy"), "{table}");
    assert!(line.contains("tiny.gguf"), "{table}");
    assert!(line.contains(&format!("daemon:{daemon}")), "{table}");
    let row = home.row("tiny");
    assert_eq!(row["state"], "healthy");
    assert_eq!(row["backend"], "cpu");
    let pid = row["pid"].as_u64().expect("a pid") as u32;
    assert!(is_running(pid));
    let port = row["port"].as_u64().expect("a port");
    assert!(row["uptime_s"].is_u64());

    let health = home.run(&["health", "tiny"]);
    assert_eq!(health.status.code(), Some(0), "{}", stderr(&health));

    let logs = home.ok(&["logs", "tiny", "--tail", "500"]);
    assert!(
        logs.contains(&format!("port {port}")) || logs.contains("listening"),
        "{logs}"
    );
    let tail = home.ok(&["logs", "tiny", "--tail", "3"]);
    assert_eq!(tail.lines().count(), 3, "{tail}");

    let describe = home.ok(&["describe", "tiny"]);
    for expected in [
        "Configuration:",
        "context:    512",
        "Runtime:",
        "ESTIMATE",
        "MEASURED",
    ] {
        assert!(
            describe.contains(expected),
            "{expected} missing:\n{describe}"
        );
    }

    let down = home.ok(&["down", "tiny"]);
    assert!(down.contains("tiny: stopped"), "{down}");
    wait_until("the server to end", || !is_running(pid));
    assert_eq!(home.row("tiny")["state"], "stopped");
    let health = home.run(&["health", "tiny"]);
    assert_eq!(health.status.code(), Some(EXIT_NOT_HEALTHY));

    // `daemon stop` returns once the daemon has let go: the next command meets none.
    let stopped = home.ok(&["daemon", "stop"]);
    assert!(
        stopped.contains("stopped its servers and exited"),
        "{stopped}"
    );
    assert!(!DaemonLock::is_held(&home.data_dir()));
    assert!(
        !DaemonFile::path(&home.data_dir()).exists(),
        "daemon.json is removed"
    );
    assert_eq!(home.row("tiny")["state"], "stopped");
    wait_until("the daemon to exit", || !is_running(daemon));
}

#[test]
fn json_output_parses_and_errors_have_codes_and_exit_codes() {
    let home = Home::new();
    home.tiny_instance("tiny");

    let rows = home.json(&["ps"]);
    assert_eq!(rows[0]["name"], "tiny");
    assert_eq!(rows[0]["model"], "tiny.gguf");
    let described = home.json(&["describe", "tiny"]);
    assert_eq!(described["spec"]["config"]["context"], 512);
    assert_eq!(described["state"], "stopped");
    let models = home.json(&["models", "list"]);
    assert!(models.as_array().is_some_and(Vec::is_empty));
    let validated = home.json(&["config", "validate"]);
    assert_eq!(validated["valid"][0]["name"], "tiny");

    let health = home.run(&["health", "tiny", "--json"]);
    assert_eq!(health.status.code(), Some(EXIT_NOT_HEALTHY));
    let health: Value = serde_json::from_slice(&health.stdout).unwrap();
    assert_eq!(health["healthy"], false);

    let missing = home.run(&["describe", "nope", "--json"]);
    assert_eq!(missing.status.code(), Some(EXIT_NOT_FOUND));
    let error: Value = serde_json::from_slice(&missing.stdout).unwrap();
    assert_eq!(error["error"]["code"], "NOT_FOUND");
    assert!(error["error"]["suggestion"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));

    // No daemon: its status says so (not "does not answer"), and stopping it is
    // done already.
    let status = home.run(&["daemon", "status", "--json"]);
    assert_eq!(status.status.code(), Some(EXIT_NOT_HEALTHY));
    let error: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(error["error"]["code"], "DAEMON_NOT_RUNNING");
    let stopped = home.ok(&["daemon", "stop"]);
    assert!(stopped.contains("no daemon runs"), "{stopped}");

    let usage = home.run(&["up"]);
    assert_eq!(usage.status.code(), Some(2), "clap's usage error");
}

#[test]
fn invalid_instance_files_name_the_file_and_the_field() {
    let home = Home::new();
    home.tiny_instance("good");
    let model = format!("{:?}", home.model.display().to_string());
    home.instance_file("typo", &format!("model = {model}\n[llama]\nprot = 8080\n"));
    home.instance_file(
        "range",
        &format!("model = {model}\n[llama]\ncontext = 16\n"),
    );
    home.instance_file("gone", "model = \"/nowhere/missing.gguf\"\n");
    home.instance_file(
        "first",
        &format!("model = {model}\n[llama]\nport = 18123\n"),
    );
    home.instance_file(
        "second",
        &format!("model = {model}\n[llama]\nport = 18123\n"),
    );

    let output = home.run(&["config", "validate"]);
    assert_eq!(output.status.code(), Some(EXIT_INVALID_CONFIG));
    let text = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "typo.toml: `llama.prot`: unknown field `prot`",
        "range.toml: `llama.context`: 16 is out of range",
        "gone.toml: `model`: no file at /nowhere/missing.gguf",
        "second.toml: `llama.port`: port 18123 is also fixed by",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    assert!(
        text.contains("ok      ") && text.contains("good.toml"),
        "{text}"
    );

    let report = home.run(&["config", "validate", "--json"]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 4, "{report}");
    assert!(problems
        .iter()
        .all(|p| p["code"] == "INVALID_INSTANCE_FILE"));

    // An instance whose file is invalid does not exist for the other commands.
    let up = home.run(&["up", "--foreground", "typo"]);
    assert_eq!(up.status.code(), Some(EXIT_NOT_FOUND), "{}", stderr(&up));
    assert!(
        stderr(&up).contains("typo.toml: `llama.prot`"),
        "{}",
        stderr(&up)
    );
}

#[test]
fn the_daemon_restarts_a_killed_server() {
    let home = Home::new();
    home.autostart_tiny("tiny");
    let mut daemon = start_daemon(&home);

    // autostart: healthy without an `up`.
    wait_until("tiny healthy", || home.row("tiny")["state"] == "healthy");
    let first = home.row("tiny")["pid"].as_u64().unwrap();
    let status = Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    wait_until("a new healthy server", || {
        let row = home.row("tiny");
        row["state"] == "healthy" && row["pid"].as_u64().is_some_and(|pid| pid != first)
    });
    let row = home.row("tiny");
    assert_eq!(row["restarts"], 1, "{row}");
    let described = home.json(&["describe", "tiny"]);
    assert_eq!(described["restarts"], 1);

    // SIGTERM (systemd's stop): the daemon stops its server and exits cleanly.
    let second = row["pid"].as_u64().unwrap() as u32;
    let status = Command::new("kill")
        .arg(daemon.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = daemon.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    assert!(!is_running(second), "the server ended with its daemon");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_and_the_daemon_never_both_own_an_instance() {
    let home = Home::new();
    home.tiny_instance("tiny");
    home.tiny_instance("other");
    let mut daemon = start_daemon(&home);
    home.ok(&["up", "tiny"]);

    // The app opens the same data folder: the daemon's server is not ended as a
    // leftover, and starting an instance of the same name (the window keeps its
    // own list) is refused with the daemon named.
    let app = home.app_engine().await;
    app_instance(&app, "tiny", &home.model);
    let refused = app.llama().start("tiny").await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InstanceOwned);
    let message = refused.to_string();
    assert!(message.contains("the Switchyard daemon"), "{message}");
    assert!(message.contains(&daemon.id().to_string()), "{message}");
    assert_eq!(home.row("tiny")["state"], "healthy", "still the daemon's");

    // And the other way round: what the app runs, the daemon refuses.
    app_instance(&app, "other", &home.model);
    app.llama()
        .start("other")
        .await
        .expect("the app starts one nobody runs");
    let output = home.run(&["up", "other"]);
    assert_eq!(
        output.status.code(),
        Some(EXIT_OWNED_ELSEWHERE),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("the Switchyard app"),
        "{}",
        stderr(&output)
    );
    let row = home.row("other");
    assert_eq!(row["owner"]["kind"], "app");
    assert_eq!(row["owner"]["pid"], std::process::id());

    app.shutdown().await;
    home.ok(&["daemon", "stop"]);
    let exit = daemon.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn the_service_unit_runs_this_program_as_a_daemon() {
    let home = Home::new();
    let unit = home.ok(&["service", "install", "--print"]);
    let program = Path::new(env!("CARGO_BIN_EXE_switchyard"));
    assert!(
        unit.contains(&format!("ExecStart={} daemon\n", program.display())),
        "{unit}"
    );
    assert!(unit.contains(&format!(
        "Environment=\"SWITCHYARD_DATA_DIR={}\"",
        home.data_dir().display()
    )));
}

#[test]
fn a_restarted_daemon_starts_again_what_it_ran_but_not_what_was_stopped() {
    let home = Home::new();
    home.tiny_instance("kept");
    home.tiny_instance("dropped");
    let mut daemon = start_daemon(&home);
    home.ok(&["up", "kept"]);
    home.ok(&["up", "dropped"]);
    home.ok(&["down", "dropped"]);
    home.ok(&["daemon", "stop"]);
    assert_eq!(daemon.wait().unwrap().code(), Some(0));

    let mut daemon = start_daemon(&home);
    wait_until("kept healthy again", || {
        home.row("kept")["state"] == "healthy"
    });
    assert_eq!(home.row("dropped")["state"], "stopped");
    home.ok(&["daemon", "stop"]);
    assert_eq!(daemon.wait().unwrap().code(), Some(0));
}

/// `models pull` from a local server (SHA-256 checked), `list`, `verify`, `rm`, and
/// `image` with the real sd-cli and the random-weight SDXS-512 model, saving a PNG.
#[tokio::test(flavor = "multi_thread")]
async fn models_pull_verify_rm_and_an_image_saved_as_png() {
    use sha2::{Digest as _, Sha256};

    let home = Home::new();
    home.settings(serde_json::json!({ "sd_path": sd_cli() }));
    let server = FixtureServer::start().await.unwrap();
    serve_sdxs(&server);
    let tiny = std::fs::read(&home.model).unwrap();
    let tiny_sha: String = Sha256::digest(&tiny)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    server.add_file("tiny.gguf", tiny);

    let pulled = home.json(&[
        "models",
        "pull",
        &server.url("tiny.gguf"),
        "--sha256",
        &tiny_sha,
    ]);
    let tiny_id = pulled["id"].as_str().expect("an id").to_owned();
    let wrong = home.run(&[
        "models",
        "pull",
        &server.url("tiny.gguf"),
        "--name",
        "wrong",
        "--sha256",
        &"0".repeat(64),
    ]);
    assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("SHA-256"), "{}", stderr(&wrong));

    let models = home.json(&["models", "list"]);
    let ids: Vec<&str> = models
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|model| model["id"].as_str())
        .collect();
    assert_eq!(ids, [tiny_id.as_str()]);
    home.ok(&["models", "verify", &tiny_id]);

    let sdxs_id = pull_sdxs(&home, &server);
    let out = home.dir.path().join("images");
    assert_one_png(&home.small_image(&sdxs_id, &out), &out);

    home.ok(&["models", "rm", &sdxs_id]);
    home.ok(&["models", "rm", &tiny_id]);
    assert!(home
        .json(&["models", "list"])
        .as_array()
        .unwrap()
        .is_empty());
    let gone = home.run(&["models", "verify", &tiny_id]);
    assert_eq!(
        gone.status.code(),
        Some(EXIT_NOT_FOUND),
        "{}",
        stderr(&gone)
    );
}

/// Ctrl-C pauses a pull; `models list` shows it unfinished; the same pull again
/// asks only for the rest; `rm` discards an unfinished one.
#[tokio::test(flavor = "multi_thread")]
async fn a_pull_paused_by_ctrl_c_is_listed_and_resumed_by_the_same_pull() {
    let home = Home::new();
    let server = FixtureServer::start().await.unwrap();
    let model = LlamaSpec {
        embedding: 256,
        vocab: 4096,
        ..LlamaSpec::default()
    }
    .to_bytes();
    server.add_file("big.gguf", model.clone());
    server.add_file("other.gguf", model.clone());
    for name in ["big.gguf", "other.gguf"] {
        server.set_fault(
            name,
            Some(Fault::Slow {
                bytes_per_second: 1_000_000,
            }),
        );
    }
    let pull = |name: &str| {
        home.command(&["models", "pull", &server.url(name)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let interrupt = |mut pulling: Child, id: &str| {
        let part = home.data_dir().join(format!("models/{id}/{id}.gguf.part"));
        wait_until("some bytes arrived", || {
            std::fs::metadata(&part).is_ok_and(|m| m.len() > 100_000)
        });
        let sent = Command::new("kill")
            .args(["-INT", &pulling.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let ended = pulling.wait().unwrap();
        assert!(!ended.success(), "a paused pull is not a finished one");
    };
    interrupt(pull("big.gguf"), "big");
    interrupt(pull("other.gguf"), "other");

    let listed = home.ok(&["models", "list"]);
    let row = listed
        .lines()
        .find(|line| line.trim_start().starts_with("big"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains("paused"), "{listed}");

    server.set_fault("big.gguf", None);
    server.reset_traffic();
    let resumed = home.run(&["models", "pull", &server.url("big.gguf")]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("big: resuming"),
        "{}",
        stderr(&resumed)
    );
    let ranges = server.traffic().ranges;
    assert!(
        ranges.iter().flatten().any(|range| range != "bytes=0-"),
        "only the rest was asked for: {ranges:?}"
    );
    home.ok(&["models", "verify", "big"]);

    let discarded = home.ok(&["models", "rm", "other"]);
    assert!(discarded.contains("other: discarded"), "{discarded}");
    assert!(!home.data_dir().join("models/other").exists());
    let listed = home.ok(&["models", "list"]);
    assert!(!listed.contains("UNFINISHED"), "{listed}");
}

/// The random-weight SDXS-512 model as `sdxs.gguf` on `server`.
fn serve_sdxs(server: &FixtureServer) {
    let sdxs = shared_sdxs_512();
    server.add_file("sdxs.gguf", std::fs::read(sdxs.path()).unwrap());
}

/// `models pull` of the served SDXS model; its id.
fn pull_sdxs(home: &Home, server: &FixtureServer) -> String {
    let pulled = home.json(&[
        "models",
        "pull",
        &server.url("sdxs.gguf"),
        "--kind",
        "diffusion",
        "--name",
        "sdxs",
    ]);
    pulled["id"].as_str().expect("an id").to_owned()
}

/// `saved` (what `image --json` printed) is the one PNG of seed 42 in `out`.
fn assert_one_png(saved: &Value, out: &Path) {
    let saved = saved.as_array().expect("the saved files");
    assert_eq!(saved.len(), 1);
    let path = PathBuf::from(saved[0].as_str().unwrap());
    assert_eq!(path, out.join("switchyard_42_0.png"));
    let png = std::fs::read(&path).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG file");
}

/// With a daemon running, `image` is made by the daemon's image service: its
/// orchestrator stops the daemon's LLM server for the image (threshold 0: always)
/// and starts it again after, on the same port.
#[tokio::test(flavor = "multi_thread")]
async fn an_image_through_the_daemon_pauses_its_llm_server_and_brings_it_back() {
    let home = Home::new();
    home.settings(serde_json::json!({ "sd_path": sd_cli(), "offload_threshold": 0 }));
    let server = FixtureServer::start().await.unwrap();
    serve_sdxs(&server);
    let sdxs_id = pull_sdxs(&home, &server);
    home.autostart_tiny("tiny");
    let mut daemon = start_daemon(&home);
    wait_until("tiny healthy", || home.row("tiny")["state"] == "healthy");
    let before = home.row("tiny");

    let out = home.dir.path().join("images");
    assert_one_png(&home.small_image(&sdxs_id, &out), &out);

    // Paused and started again: another process, the same address for clients (the
    // server's own port may change when another program took it meanwhile), not
    // counted as a crash.
    wait_until("tiny healthy again in a new process", || {
        let row = home.row("tiny");
        row["state"] == "healthy" && row["pid"] != before["pid"]
    });
    let after = home.row("tiny");
    assert_eq!(
        after["api_endpoint"], before["api_endpoint"],
        "{before} → {after}"
    );
    assert_eq!(after["restarts"], 0, "{after}");

    home.ok(&["daemon", "stop"]);
    assert_eq!(daemon.wait().unwrap().code(), Some(0));
}

/// The app attached to a daemon makes an image in its own process: its orchestrator
/// asks the daemon to make room, and the daemon stops its LLM server for the image
/// and starts it again after.
#[tokio::test(flavor = "multi_thread")]
async fn an_image_made_by_the_app_makes_the_daemon_pause_its_llm_server() {
    use switchyard_engine::diffusion::{ImageRequest, JobStatus};

    let home = Home::new();
    home.settings(serde_json::json!({ "sd_path": sd_cli(), "offload_threshold": 0 }));
    let server = FixtureServer::start().await.unwrap();
    serve_sdxs(&server);
    let sdxs_id = pull_sdxs(&home, &server);
    home.autostart_tiny("tiny");
    let mut daemon = start_daemon(&home);
    wait_until("tiny healthy", || home.row("tiny")["state"] == "healthy");
    let before = home.row("tiny");

    let app = home.app_engine().await;
    app.image_server_for(Some(sdxs_id)).await.unwrap();
    let id = app
        .generate_image(ImageRequest {
            width: 64,
            height: 64,
            steps: 1,
            ..serde_json::from_value(serde_json::json!({ "prompt": "a red cube" })).unwrap()
        })
        .unwrap();
    let job = app.wait_image_job(&id, DEADLINE).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.error);

    wait_until("tiny healthy again in a new process", || {
        let row = home.row("tiny");
        row["state"] == "healthy" && row["pid"] != before["pid"]
    });
    assert_eq!(home.row("tiny")["api_endpoint"], before["api_endpoint"]);
    app.shutdown().await;
    home.ok(&["daemon", "stop"]);
    assert_eq!(daemon.wait().unwrap().code(), Some(0));
}

/// The daemon made room for a process that then ended without saying its image was
/// done (a crash): it brings its LLM server back by itself.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_brings_its_server_back_when_the_process_it_made_room_for_ends() {
    use switchyard_engine::control::{ControlClient, RoomRequest};

    let home = Home::new();
    home.settings(serde_json::json!({ "offload_threshold": 0 }));
    home.autostart_tiny("tiny");
    let mut daemon = start_daemon(&home);
    wait_until("tiny healthy", || home.row("tiny")["state"] == "healthy");
    let before = home.row("tiny");

    let mut image_maker = Command::new("sleep").arg("600").spawn().unwrap();
    let client = ControlClient::new(&DaemonFile::read(&home.data_dir()).unwrap().unwrap());
    let answer = client
        .make_room(RoomRequest {
            ram_bytes: 1 << 30,
            vram_bytes: 0,
            pid: image_maker.id(),
        })
        .await
        .unwrap();
    assert!(answer.made);
    let paused = home.row("tiny");
    assert_ne!(paused["state"], "healthy", "{paused}");
    assert_eq!(paused["pid"], Value::Null, "{paused}");

    image_maker.kill().unwrap();
    image_maker.wait().unwrap();
    wait_until("tiny healthy again in a new process", || {
        let row = home.row("tiny");
        row["state"] == "healthy" && row["pid"] != before["pid"]
    });
    home.ok(&["daemon", "stop"]);
    assert_eq!(daemon.wait().unwrap().code(), Some(0));
}

#[test]
fn up_in_the_foreground_runs_until_sigterm_and_its_log_is_read_from_the_file() {
    use std::io::{BufRead as _, BufReader};

    let home = Home::new();
    home.tiny_instance("fg");
    let mut child = home
        .command(&["up", "--foreground", "fg"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.starts_with("fg: healthy at http://127.0.0.1:"),
        "{first}"
    );
    // "fg: healthy at http://127.0.0.1:PORT (clients: …)"
    let server = first.split_whitespace().nth(3).unwrap();
    let port: u16 = server.rsplit(':').next().unwrap().parse().unwrap();

    // No daemon: ps names this command as the owner; logs come from the file.
    let row = home.row("fg");
    assert_eq!(row["owner"]["kind"], "cli");
    assert_eq!(row["owner"]["pid"], child.id());
    wait_until("the log file to show the server listening", || {
        home.ok(&["logs", "fg", "--tail", "500"])
            .contains("listening")
    });
    // The daemon (started by this `up`) is refused what the command runs.
    let output = home.run(&["up", "fg"]);
    assert_eq!(
        output.status.code(),
        Some(EXIT_OWNED_ELSEWHERE),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("a switchyard command"),
        "{}",
        stderr(&output)
    );

    let status = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "the server ended with the command"
    );
}

/// A program on a headless box makes images over HTTP as it chats: the daemon
/// serves the image API (with the app's guard), its orchestrator pauses the LLM for
/// each image (threshold 0) while chat requests are held and answered after, and
/// the daemon killed with SIGKILL during an image leaves no sd behind, whichever
/// runner it uses.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_serves_the_image_api_and_no_sd_outlives_it() {
    use base64::Engine as _;
    use switchyard_testkit::chat_clients::{ChattingClients, ClientPlan};

    // sd-cli alone in a folder: no sd-server beside it, so every image runs sd-cli.
    let cli_only = tempfile::tempdir().unwrap();
    let lone_cli = cli_only.path().join("sd-cli");
    std::os::unix::fs::symlink(sd_cli(), &lone_cli).unwrap();
    for (runner, sd) in [("sd-cli", lone_cli), ("sd-server", sd_cli())] {
        let home = Home::new();
        home.settings(serde_json::json!({ "sd_path": sd, "offload_threshold": 0 }));
        let server = FixtureServer::start().await.unwrap();
        serve_sdxs(&server);
        pull_sdxs(&home, &server);
        home.autostart_tiny("tiny");
        let mut daemon = start_daemon(&home);
        wait_until("tiny healthy", || home.row("tiny")["state"] == "healthy");
        let endpoint = home.row("tiny")["api_endpoint"]
            .as_str()
            .unwrap()
            .to_owned();
        let image_port = DaemonFile::read(&home.data_dir())
            .unwrap()
            .unwrap()
            .image_port
            .expect("the image API listens");
        let api = format!("http://127.0.0.1:{image_port}/v1/images/generations");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();

        let plan = |stream| ClientPlan {
            stream,
            max_tokens: 32,
            model: None,
        };
        let clients = ChattingClients::start(&endpoint, &[plan(false), plan(true), plan(false)]);
        let small = serde_json::json!({
            "prompt": "a red cube", "width": 64, "height": 64, "steps": 1, "seed": 42
        });
        for _ in 0..2 {
            let id = queue_image(&http, &api, &small).await;
            let job = poll_image_job(&http, &format!("{api}/{id}")).await;
            assert_eq!(job["status"], "complete", "{runner}: {job}");
            let png = base64::engine::general_purpose::STANDARD
                .decode(job["result"]["images"][0]["image"].as_str().unwrap())
                .unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{runner}");
        }
        assert!(clients.wait_for_requests(3, DEADLINE).await);
        let tally = clients.finish().await;
        assert!(tally.failures.is_empty(), "{runner}: {:#?}", tally.failures);
        // The same guard as the app's: a page elsewhere gets nothing.
        let foreign = http
            .post(&api)
            .header("Origin", "https://evil.example")
            .json(&small)
            .send()
            .await
            .unwrap();
        assert_eq!(foreign.status(), 403, "{runner}");

        // SIGKILL during a larger image: sd goes with the daemon.
        let large = serde_json::json!({
            "prompt": "a red cube", "width": 512, "height": 512, "steps": 4, "seed": 1
        });
        let id = queue_image(&http, &api, &large).await;
        let job_url = format!("{api}/{id}");
        let daemon_pid = daemon.id();
        let mut sd = Vec::new();
        let http_poll = http.clone();
        let started = Instant::now();
        while sd.is_empty() {
            let job: Value = http_poll
                .get(&job_url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(
                job["status"] != "complete" && started.elapsed() < DEADLINE,
                "{runner}: the image ended before sd was seen: {job}"
            );
            if job["status"] == "running" {
                sd = children_named(daemon_pid, "sd");
            }
            tokio::time::sleep(POLL).await;
        }
        daemon.kill().unwrap();
        daemon.wait().unwrap();
        for pid in sd {
            wait_until(
                &format!("{runner} (pid {pid}) to end with the daemon"),
                || !is_running(pid),
            );
        }
    }
}

/// Queues an image through the image API at `api`; its job id.
async fn queue_image(http: &reqwest::Client, api: &str, request: &Value) -> String {
    let queued: Value = http
        .post(api)
        .json(request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    queued["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no job id: {queued}"))
        .to_owned()
}

/// Polls an image job until it has finished; its last view.
async fn poll_image_job(http: &reqwest::Client, url: &str) -> Value {
    let started = Instant::now();
    loop {
        let job: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        if !matches!(job["status"].as_str(), Some("pending" | "running")) {
            return job;
        }
        assert!(started.elapsed() < DEADLINE, "{job}");
        tokio::time::sleep(POLL).await;
    }
}

#[test]
fn models_load_ps_pin_unload_through_the_daemon_and_its_endpoint_answers_by_model() {
    let home = Home::new();
    home.tiny_instance("tiny");
    let mut daemon = start_daemon(&home);

    let loaded = home.json(&["models", "load", "tiny"]);
    assert_eq!(loaded[0]["state"], "loaded", "{loaded}");
    // The endpoint the daemon serves (a free port, in daemon.json) answers by model.
    let port = DaemonFile::read(&home.data_dir())
        .ok()
        .flatten()
        .and_then(|daemon| daemon.endpoint_port)
        .expect("the endpoint's port in daemon.json");
    let answer = std::process::Command::new("curl")
        .args([
            "-s",
            "--noproxy",
            "*",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}"#,
            &format!("http://127.0.0.1:{port}/v1/chat/completions"),
        ])
        .output()
        .expect("curl runs");
    let answer: Value = serde_json::from_slice(&answer.stdout).expect("a JSON answer");
    assert!(answer["choices"][0]["message"].is_object(), "{answer}");

    let pinned = home.json(&["models", "pin", "tiny"]);
    assert_eq!(pinned[0]["pinned"], true, "{pinned}");
    let listed = home.ok(&["models", "ps"]);
    assert!(
        listed.contains("tiny") && listed.contains("loaded") && listed.contains("yes"),
        "{listed}"
    );
    let unloaded = home.json(&["models", "unload", "tiny"]);
    assert_eq!(unloaded[0]["state"], "unloaded", "{unloaded}");
    let unpinned = home.json(&["models", "pin", "tiny", "--off"]);
    assert_eq!(unpinned[0]["pinned"], false, "{unpinned}");
    home.ok(&["daemon", "stop"]);
    let _ = daemon.wait();
}

/// The window of a data folder whose daemon serves the Switchyard endpoint (the
/// daemon took the port): it shows and drives the daemon's endpoint, where the
/// models its clients use are loaded, not a second one of its own.
#[tokio::test(flavor = "multi_thread")]
async fn the_window_drives_the_daemons_endpoint_when_the_daemon_serves_it() {
    use switchyard_engine::orchestrator::router::ModelState;
    let home = Home::new();
    home.tiny_instance("tiny");
    let mut daemon = start_daemon(&home);
    let port = DaemonFile::read(&home.data_dir())
        .ok()
        .flatten()
        .and_then(|daemon| daemon.endpoint_port)
        .expect("the daemon's endpoint");
    let app = home.app_engine().await;
    assert_eq!(
        app.endpoint_url(),
        Some(format!("http://127.0.0.1:{port}/v1"))
    );
    let loaded = app.load_on_endpoint("tiny").await.expect("loaded");
    assert_eq!(loaded.state, ModelState::Loaded);
    let listed = app.endpoint_models().await.expect("the daemon's models");
    assert!(
        listed
            .iter()
            .any(|model| model.id == "tiny" && model.state == ModelState::Loaded),
        "{listed:?}"
    );
    assert!(
        app.routed_models().iter().all(|model| model.id != "tiny"),
        "the daemon's instance, not one of the window's"
    );
    let pinned = app.pin_on_endpoint("tiny", true).await.expect("pinned");
    assert!(pinned.pinned);
    let unloaded = app.unload_on_endpoint("tiny").await.expect("unloaded");
    assert_eq!(unloaded.state, ModelState::Unloaded);
    app.shutdown().await;
    home.ok(&["daemon", "stop"]);
    let _ = daemon.wait();
}
