//! What the `switchyard` command and its daemon ask of the engine beyond the
//! window's calls: instance files, `ps` rows, and starts that set up llama-server
//! first.

use std::path::PathBuf;

use super::{Engine, ImageServerConfig};
use crate::binaries::{BinaryKind, EnsureBinary};
use crate::control::InstanceRow;
use crate::diffusion::ImageServerInfo;
use crate::errors::{EngineError, Result};
use crate::instance_files::{self, InstanceFiles};
use crate::llama::{parse_line, InstanceState, InstanceStatus, LogLine};
use crate::models::ModelKind;

/// Where the `switchyard` command and its daemon keep their instances (in
/// `state/`), apart from the window's `instances.json`.
pub const HEADLESS_INSTANCES_FILE: &str = "cli-instances.json";

impl Engine {
    /// Switches the llama-server instances to the command line's own list
    /// ([`HEADLESS_INSTANCES_FILE`]); call before anything starts.
    pub fn use_headless_instances(&self) -> Result<()> {
        if let Some(warning) = self.llama().use_store_file(HEADLESS_INSTANCES_FILE)? {
            tracing::warn!(problem = %warning.message, "instance list not loaded");
        }
        Ok(())
    }

    /// Wall-clock milliseconds by the engine's clock.
    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// `<config>/instances`, the folder of instance files.
    pub fn instances_dir(&self) -> PathBuf {
        instance_files::instances_dir(self.config_dir())
    }

    /// The instance files, checked (a `model_id` against the store).
    pub fn load_instance_files(&self) -> InstanceFiles {
        instance_files::load_dir(&self.instances_dir(), &|spec| self.with_model_paths(spec))
    }

    /// Loads the instance files and makes the llama-server instances match them:
    /// created, updated (a running server keeps its configuration until it is
    /// restarted), or forgotten once stopped when their file is gone. For the
    /// command line's own list (see [`Self::use_headless_instances`]).
    pub fn apply_instance_files(&self) -> InstanceFiles {
        let mut loaded = self.load_instance_files();
        let mut applied = Vec::new();
        // Paused for an image: the orchestrator starts them again as they ran (it
        // pins the port and configuration while it does); a changed file counts
        // at the first (re)load after they are back.
        let paused: Vec<String> = self
            .orchestrator()
            .saved_state()
            .map(|saved| saved.instances.into_iter().map(|i| i.spec.name).collect())
            .unwrap_or_default();
        for mut file in std::mem::take(&mut loaded.files) {
            if paused.contains(&file.spec.name) {
                applied.push(file);
                continue;
            }
            let current = self.llama().status(&file.spec.name).ok();
            // An endpoint port the engine chose (the file leaves it open) is kept:
            // clients keep their address across restarts of the daemon.
            if file.spec.endpoint_port.is_none() {
                file.spec.endpoint_port = current
                    .as_ref()
                    .and_then(|status| status.spec.endpoint_port);
            }
            let outcome = match current {
                Some(current) if current.spec == file.spec => Ok(current),
                Some(_) => self.llama().update(file.spec.clone()),
                None => self.llama().create(file.spec.clone()),
            };
            match outcome {
                Ok(_) => applied.push(file),
                // E.g. a port another (window-made) instance has fixed.
                Err(EngineError::InvalidInput { field, problem }) => {
                    loaded.problems.push(EngineError::InvalidInstanceFile {
                        file: file.path.clone(),
                        field: format!("llama.{field}"),
                        problem,
                    });
                }
                Err(error) => loaded.problems.push(error),
            }
        }
        // An instance whose file is gone (or no longer valid) is forgotten once it
        // is stopped: the files are this list's only source.
        let named: std::collections::BTreeSet<&str> =
            applied.iter().map(|file| file.spec.name.as_str()).collect();
        for status in self.llama().list() {
            if !named.contains(status.spec.name.as_str()) {
                self.llama().remove_if_stopped(&status.spec.name);
            }
        }
        loaded.files = applied;
        loaded
    }

    /// One row per instance for `switchyard ps`, with the process that runs it.
    pub fn instance_rows(&self) -> Vec<InstanceRow> {
        let variant =
            self.binary_status(BinaryKind::LlamaServer)
                .map(|status| match status.variant {
                    Some(variant) => serde_json::to_value(variant)
                        .ok()
                        .and_then(|value| value.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    None => "custom".to_owned(),
                });
        let now = self.now_ms();
        self.llama()
            .list()
            .iter()
            .map(|status| {
                let owner = self.llama().owner_of(&status.spec.name);
                InstanceRow::new(status, variant.clone(), owner, now)
            })
            .collect()
    }

    /// Starts an instance, first setting up llama-server when none has passed its
    /// tests yet (the one Settings name, else a download), and returns once it
    /// serves, also when another start of it was already on its way.
    pub async fn up(&self, name: &str) -> Result<InstanceStatus> {
        // An unknown name is the answer, before any setup.
        self.llama().status(name)?;
        if self.binary_status(BinaryKind::LlamaServer).is_none() {
            self.ensure_binary(BinaryKind::LlamaServer, EnsureBinary::default())
                .await?;
        }
        let status = self.llama().start(name).await?;
        if status.state == InstanceState::Healthy {
            return Ok(status);
        }
        // Another start was already on its way (the daemon's autostart of what ran
        // when it last ended, a second `up`): `up` returns with its outcome.
        self.llama().wait_for_start(name).await
    }

    /// The image server on `model` (else the first installed diffusion model),
    /// started (on any free port, with sd set up first when needed) unless it
    /// already runs that model: `switchyard image`, in the daemon or in the command.
    pub async fn image_server_for(&self, model: Option<String>) -> Result<ImageServerInfo> {
        let model_id = match model {
            Some(model) => model,
            None => self.first_diffusion_model()?,
        };
        if let Some(running) = self.image_server().filter(|info| info.model == model_id) {
            return Ok(running);
        }
        if self.binary_status(BinaryKind::Diffusion).is_none() {
            self.ensure_binary(BinaryKind::Diffusion, EnsureBinary::default())
                .await?;
        }
        self.start_image_server(ImageServerConfig {
            model_id: Some(model_id),
            port: Some(0),
            ..ImageServerConfig::default()
        })
        .await
    }

    fn first_diffusion_model(&self) -> Result<String> {
        self.models()
            .models()
            .into_iter()
            .filter(|model| model.kind == ModelKind::Diffusion)
            .map(|model| model.id)
            .min()
            .ok_or_else(|| EngineError::InvalidInput {
                field: "model",
                problem: "no diffusion model is installed; add one with `switchyard models pull … --kind diffusion`".into(),
            })
    }

    /// The complete lines written to the instance's log file after its first
    /// `offset` bytes, and the offset to ask from next (`logs --follow` without a
    /// daemon). A file shorter than `offset` was rotated: it is read from its start.
    pub fn log_file_since(&self, name: &str, offset: u64) -> Result<(Vec<LogLine>, u64)> {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let path = self.llama().log_dir(name).join("llama-server.log");
        let unreadable = |source| EngineError::FileUnreadable {
            path: path.clone(),
            source,
        };
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), 0))
            }
            Err(source) => return Err(unreadable(source)),
        };
        let length = file.metadata().map_err(unreadable)?.len();
        let start = if length < offset { 0 } else { offset };
        file.seek(SeekFrom::Start(start)).map_err(unreadable)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(unreadable)?;
        // A line still being written waits for its end.
        let complete = bytes
            .iter()
            .rposition(|byte| *byte == b'\n')
            .map_or(0, |at| at + 1);
        let lines = String::from_utf8_lossy(&bytes[..complete])
            .lines()
            .map(|line| parse_line(0, line))
            .collect();
        Ok((lines, start + complete as u64))
    }

    /// The last `tail` lines of the instance's log file, for when no process that
    /// runs it can be asked (its ring lives in that process).
    pub fn log_file_tail(&self, name: &str, tail: usize) -> Result<Vec<LogLine>> {
        let path = self.llama().log_dir(name).join("llama-server.log");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(EngineError::FileUnreadable { path, source }),
        };
        let lines: Vec<&str> = text.lines().collect();
        let skip = lines.len().saturating_sub(tail);
        Ok(lines
            .into_iter()
            .enumerate()
            .skip(skip)
            .map(|(index, line)| parse_line(index as u64, line))
            .collect())
    }
}
