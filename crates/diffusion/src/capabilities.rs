//! What the sd binary in hand offers, read from its `--help` (the lists change
//! between releases): samplers, schedulers, and whether an `sd-server` sits beside it.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use ts_rs::TS;

use super::args::help_choices;
use super::runner::server_binary_beside;
use switchyard_base::errors::{EngineError, Result};
use switchyard_process::CapturedProcess;

const HELP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct SdCapabilities {
    pub samplers: Vec<String>,
    pub schedulers: Vec<String>,
    /// A persistent `sd-server` is available beside the CLI.
    pub has_server: bool,
}

impl SdCapabilities {
    /// From help text (sd 0.4.x: `--sampling-method … one of [euler, …]`).
    pub fn from_help(help: &str) -> Self {
        Self {
            samplers: help_choices(help, "--sampling-method"),
            schedulers: help_choices(help, "--scheduler"),
            has_server: false,
        }
    }

    /// Runs `binary --help` (sd prints the usage to stdout; some releases complain
    /// about `--help` on stderr first and still exit 0), recorded in `pid_dir` while
    /// it runs like every sd.
    pub async fn read(binary: &Path, pid_dir: Option<&Path>) -> Result<Self> {
        let mut command = tokio::process::Command::new(binary);
        command.arg("--help");
        let mut process = CapturedProcess::spawn(command, pid_dir)
            .await
            .map_err(|error| EngineError::BinaryUnavailable {
                kind: "sd".into(),
                problem: format!("{} cannot be started: {error}", binary.display()),
            })?;
        if process.wait_for(HELP_TIMEOUT).await.is_none() {
            process.kill();
            return Err(EngineError::TimedOut {
                what: format!("{} --help", binary.display()),
                seconds: HELP_TIMEOUT.as_secs(),
            });
        }
        let help = process.output().await;
        let mut capabilities = Self::from_help(&help);
        capabilities.has_server = server_binary_beside(binary).is_some();
        Ok(capabilities)
    }
}
