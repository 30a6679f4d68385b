//! Where the command's answers come from: the running daemon when there is one,
//! else the engine in this process, on the same data folder as the app.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use switchyard_engine::control::{ControlClient, DaemonFile, DaemonLock};
use switchyard_engine::llama::OwnerKind;
use switchyard_engine::paths;
use switchyard_engine::settings::Settings;
use switchyard_engine::{Engine, EngineDeps, EngineError, ErrorReport};

/// A daemon started by `up` has this long to publish its address.
const DAEMON_START_DEADLINE: Duration = Duration::from_secs(30);
const DAEMON_START_POLL: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub struct Context {
    pub json: bool,
    settings: Settings,
    pub data_dir: PathBuf,
}

impl Context {
    pub fn from_environment(json: bool) -> Result<Self, ErrorReport> {
        let config_dir =
            paths::resolve_config_dir(std::env::var_os(paths::CONFIG_DIR_ENV).map(Into::into));
        let (settings, problem) = Settings::read_saved(&config_dir);
        if let Some(problem) = problem {
            eprintln!("warning: settings not used ({problem}); using the defaults");
        }
        let data_dir = paths::resolve_data_dir(
            std::env::var_os(paths::DATA_DIR_ENV).map(Into::into),
            settings.data_dir.as_deref(),
        );
        Ok(Self {
            json,
            settings,
            data_dir,
        })
    }

    /// What an engine in this process is built from. Only then is the hardware
    /// probed: a command the daemon answers does not spend that time.
    pub fn engine_deps(&self) -> Result<EngineDeps, ErrorReport> {
        Ok(EngineDeps::for_host(self.settings.clone())?)
    }

    /// The running daemon of this data folder, if one runs.
    pub fn daemon(&self) -> Result<Option<ControlClient>, ErrorReport> {
        if !DaemonLock::is_held(&self.data_dir) {
            return Ok(None);
        }
        match DaemonFile::read(&self.data_dir)? {
            Some(file) => Ok(Some(ControlClient::new(&file))),
            None => Err(EngineError::DaemonUnreachable {
                address: self.data_dir.display().to_string(),
                problem: "it runs but has not published its address (daemon.json) yet".into(),
            }
            .report()),
        }
    }

    /// The engine in this process, as `owner`, with the instance files applied
    /// (their problems are printed, not fatal: other instances still work).
    pub fn local_engine(&self, owner: OwnerKind) -> Result<Engine, ErrorReport> {
        let engine = Engine::new(self.engine_deps()?)?;
        engine.llama().set_owner_kind(owner);
        engine.use_headless_instances()?;
        for problem in engine.apply_instance_files().problems {
            eprintln!("warning: {problem}");
        }
        Ok(engine)
    }

    /// The daemon, started in the background first when none runs: servers
    /// started with `up` keep running after the command ends, as a person expects.
    pub async fn daemon_or_start(&self) -> Result<ControlClient, ErrorReport> {
        if let Some(client) = self.daemon()? {
            return Ok(client);
        }
        self.spawn_daemon()?;
        let started = Instant::now();
        loop {
            if let Ok(Some(client)) = self.daemon() {
                return Ok(client);
            }
            if started.elapsed() > DAEMON_START_DEADLINE {
                return Err(EngineError::DaemonUnreachable {
                    address: self.data_dir.display().to_string(),
                    problem: format!(
                        "the daemon did not start within {} s; its log is {}",
                        DAEMON_START_DEADLINE.as_secs(),
                        self.daemon_log().display()
                    ),
                }
                .report());
            }
            tokio::time::sleep(DAEMON_START_POLL).await;
        }
    }

    fn daemon_log(&self) -> PathBuf {
        self.data_dir.join("logs").join("daemon.log")
    }

    /// `switchyard daemon` as a process of its own, in its own process group
    /// (a Ctrl-C in this terminal is not for it), output to `logs/daemon.log`.
    fn spawn_daemon(&self) -> Result<(), ErrorReport> {
        let internal = |problem: String| EngineError::Internal { problem }.report();
        let program = std::env::current_exe()
            .map_err(|error| internal(format!("cannot find this program: {error}")))?;
        let log_path = self.daemon_log();
        if let Some(folder) = log_path.parent() {
            std::fs::create_dir_all(folder)
                .map_err(|source| EngineError::writing(folder, source).report())?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| EngineError::writing(&log_path, source).report())?;
        let mut command = std::process::Command::new(program);
        command
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
            .spawn()
            .map_err(|error| internal(format!("cannot start the daemon: {error}")))?;
        if !self.json {
            eprintln!(
                "started the Switchyard daemon (log: {}); servers keep running after this command",
                log_path.display()
            );
        }
        Ok(())
    }
}
