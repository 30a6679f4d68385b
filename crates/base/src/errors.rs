//! Typed errors: a stable code for programs, a message and a suggestion for people.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The field name a damaged state file reports when the file as a whole, not one
/// field of it, cannot be read.
pub const WHOLE_FILE: &str = "(file)";

/// Stable error codes. The UI and scripts match on these, never on message text,
/// so a variant is never renamed once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[ts(export)]
pub enum ErrorCode {
    /// The data or config folder cannot be created or written.
    StorageUnavailable,
    /// A setting has a value that cannot work.
    InvalidSetting,
    /// A request's input cannot work (a malformed repository name, an unknown id).
    InvalidInput,
    /// A state file exists but cannot be read back.
    CorruptState,
    /// The operating system does not tell Switchyard about the hardware.
    HardwareUnreadable,
    /// A file is not a valid GGUF model (or its header is damaged).
    InvalidGguf,
    /// A file exists but cannot be read.
    FileUnreadable,
    /// A server could not be reached or answered wrongly.
    NetworkError,
    /// The disk filled up while writing.
    DiskFull,
    /// A downloaded file's SHA-256 is not the one expected.
    ChecksumMismatch,
    /// The user cancelled (or paused) the operation.
    Cancelled,
    /// The engine is shutting down and takes no new work.
    ShuttingDown,
    /// Not enough free RAM or VRAM for what was asked.
    InsufficientResources,
    /// No llama-server (or sd) that works on this machine could be set up.
    BinaryUnavailable,
    /// A binary was tested and does not work here (crash, missing library, GPU error).
    BinaryRejected,
    /// An archive tried to write outside its folder (zip-slip, absolute path, a link
    /// pointing out) or holds something that is not a file, folder or link.
    UnsafeArchive,
    /// The port asked for is taken by another program.
    PortInUse,
    /// A server ended before it was ready (its own message says why).
    ServerStartFailed,
    /// A running server ended without being asked to.
    ServerCrashed,
    /// A server crashed too often (or could not be restarted) and waits for the person.
    ServerFailed,
    /// The request needs a running server.
    ServerNotRunning,
    /// `sd` ended without an image (crash, error exit, out of memory); the details
    /// carry its exit code and last stderr lines.
    GenerationFailed,
    /// A generation ran past its time limit and was stopped.
    TimedOut,
    /// The image queue is full; try again when a job finished.
    QueueFull,
    /// Something asked for by id does not exist (or no longer does).
    NotFound,
    /// Anything the shell could not map to a more precise code.
    Internal,
    /// An instance file (`instances/NAME.toml`) has a field that cannot work; the
    /// message names the file and the field.
    InvalidInstanceFile,
    /// Another Switchyard process (the daemon, the app, a CLI) runs this instance.
    InstanceOwned,
    /// A `switchyard daemon` is recorded but does not answer (or refused the token).
    DaemonUnreachable,
    /// No `switchyard daemon` runs on this data folder.
    DaemonNotRunning,
    /// Another Switchyard process downloads this model right now.
    DownloadBusy,
    /// A finished image job's result is no longer kept (its time passed, or newer
    /// results needed the memory).
    ResultExpired,
    /// A model cannot be deleted while a server (here or in the daemon) uses it.
    ModelInUse,
}

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("Switchyard cannot use the folder {path}: {source}")]
    StorageUnavailable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("The setting `{field}` is invalid: {problem}")]
    InvalidSetting {
        field: &'static str,
        problem: String,
    },
    #[error("`{field}`: {problem}")]
    InvalidInput {
        field: &'static str,
        problem: String,
    },
    #[error("The file {path} is damaged: {problem}")]
    CorruptState { path: PathBuf, problem: String },
    #[error("Switchyard cannot read this machine's hardware: {problem}")]
    HardwareUnreadable { problem: String },
    #[error("{source_name} is not a usable GGUF model: {problem}")]
    InvalidGguf {
        source_name: String,
        problem: String,
    },
    #[error("Switchyard cannot read {path}: {source}")]
    FileUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Downloading from {url} failed: {problem}")]
    Network { url: String, problem: String },
    #[error("{url} answered HTTP {status}")]
    HttpStatus { url: String, status: u16 },
    #[error("The disk is full while writing {path}")]
    DiskFull { path: PathBuf },
    #[error("{file} is damaged: its SHA-256 is {actual}, expected {expected}")]
    ChecksumMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{file} is not the file expected: it should be {expected} bytes, the server sent {actual}"
    )]
    SizeMismatch {
        file: String,
        expected: u64,
        actual: String,
    },
    #[error("Cancelled")]
    Cancelled,
    #[error("Switchyard hit an internal problem: {problem}")]
    Internal { problem: String },
    #[error("Switchyard is shutting down")]
    ShuttingDown,
    #[error("{what} needs {needed_mib} MiB of {resource}, but only {available_mib} MiB are free")]
    InsufficientResources {
        what: String,
        resource: &'static str,
        needed_mib: u64,
        available_mib: u64,
        suggestion: String,
    },
    #[error("No working {kind} could be set up: {problem}")]
    BinaryUnavailable { kind: String, problem: String },
    #[error("{path} does not work here: {reason}")]
    BinaryRejected { path: PathBuf, reason: String },
    #[error("Port {port} on {host} is already in use by another program")]
    PortInUse { host: String, port: u16 },
    #[error("llama-server `{instance}` did not start ({exit}): {details}")]
    ServerStartFailed {
        instance: String,
        exit: String,
        details: String,
    },
    #[error("llama-server `{instance}` crashed ({exit}): {details}")]
    ServerCrashed {
        instance: String,
        exit: String,
        details: String,
    },
    #[error("llama-server `{instance}` is stopped after repeated failures: {problem}")]
    ServerFailed { instance: String, problem: String },
    #[error("llama-server `{instance}` is not running")]
    ServerNotRunning { instance: String },
    #[error("Image generation failed: sd {exit}{}", stderr_tail.last().map(|line| format!(": {line}")).unwrap_or_default())]
    GenerationFailed {
        /// How it ended, in words ("exited with code 1", "crashed (SIGSEGV…)").
        exit: String,
        exit_code: Option<i32>,
        /// Its last standard-error lines (at most 20), oldest first.
        stderr_tail: Vec<String>,
        /// Its output said it ran out of memory.
        out_of_memory: bool,
    },
    #[error("{what} took longer than {seconds} s and was stopped")]
    TimedOut { what: String, seconds: u64 },
    #[error("The image queue is full ({capacity} waiting)")]
    QueueFull { capacity: usize },
    #[error("{what} `{id}` does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("{}: `{field}`: {problem}", file.display())]
    InvalidInstanceFile {
        file: PathBuf,
        /// The field's path in the file, e.g. `llama.port`.
        field: String,
        problem: String,
    },
    #[error("llama-server `{instance}` is run by {owner} (pid {pid})")]
    InstanceOwned {
        instance: String,
        /// Who: "the Switchyard daemon", "the Switchyard app", "a switchyard command".
        owner: String,
        pid: u32,
    },
    #[error("The Switchyard daemon at {address} does not answer: {problem}")]
    DaemonUnreachable { address: String, problem: String },
    #[error("No Switchyard daemon runs on the data folder {}", data_dir.display())]
    DaemonNotRunning { data_dir: PathBuf },
    #[error("Another Switchyard process (the app or a `switchyard models pull`) is downloading `{id}` right now")]
    DownloadBusy { id: String },
    #[error("Switchyard will not use the folder {path}: {problem}")]
    UnsafeFolder { path: PathBuf, problem: String },
    #[error("The result of image job `{id}` is no longer kept: {reason}")]
    ResultExpired { id: String, reason: String },
    #[error("The model `{model_id}` is in use by llama-server `{instance}`, run by {owner}")]
    ModelInUse {
        model_id: String,
        instance: String,
        /// Who runs it: "this Switchyard", "the Switchyard daemon".
        owner: String,
    },
    #[error("The archive {archive} is unsafe: entry `{entry}` {problem}")]
    UnsafeArchive {
        archive: String,
        entry: String,
        problem: String,
    },
    /// An error the daemon reported for a call the app made through it, passed on
    /// with the daemon's own code and suggestion.
    #[error("{}", report.message)]
    FromDaemon { report: ErrorReport },
}

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::StorageUnavailable { .. } | Self::UnsafeFolder { .. } => {
                ErrorCode::StorageUnavailable
            }
            Self::InvalidSetting { .. } => ErrorCode::InvalidSetting,
            Self::InvalidInput { .. } => ErrorCode::InvalidInput,
            Self::CorruptState { .. } => ErrorCode::CorruptState,
            Self::HardwareUnreadable { .. } => ErrorCode::HardwareUnreadable,
            Self::InvalidGguf { .. } => ErrorCode::InvalidGguf,
            Self::FileUnreadable { .. } => ErrorCode::FileUnreadable,
            Self::Network { .. } | Self::HttpStatus { .. } => ErrorCode::NetworkError,
            Self::DiskFull { .. } => ErrorCode::DiskFull,
            Self::ChecksumMismatch { .. } | Self::SizeMismatch { .. } => {
                ErrorCode::ChecksumMismatch
            }
            Self::Cancelled => ErrorCode::Cancelled,
            Self::Internal { .. } => ErrorCode::Internal,
            Self::ShuttingDown => ErrorCode::ShuttingDown,
            Self::InsufficientResources { .. } => ErrorCode::InsufficientResources,
            Self::BinaryUnavailable { .. } => ErrorCode::BinaryUnavailable,
            Self::BinaryRejected { .. } => ErrorCode::BinaryRejected,
            Self::UnsafeArchive { .. } => ErrorCode::UnsafeArchive,
            Self::PortInUse { .. } => ErrorCode::PortInUse,
            Self::ServerStartFailed { .. } => ErrorCode::ServerStartFailed,
            Self::ServerCrashed { .. } => ErrorCode::ServerCrashed,
            Self::ServerFailed { .. } => ErrorCode::ServerFailed,
            Self::ServerNotRunning { .. } => ErrorCode::ServerNotRunning,
            Self::GenerationFailed { .. } => ErrorCode::GenerationFailed,
            Self::TimedOut { .. } => ErrorCode::TimedOut,
            Self::QueueFull { .. } => ErrorCode::QueueFull,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::InvalidInstanceFile { .. } => ErrorCode::InvalidInstanceFile,
            Self::InstanceOwned { .. } => ErrorCode::InstanceOwned,
            Self::DaemonUnreachable { .. } => ErrorCode::DaemonUnreachable,
            Self::DaemonNotRunning { .. } => ErrorCode::DaemonNotRunning,
            Self::DownloadBusy { .. } => ErrorCode::DownloadBusy,
            Self::ResultExpired { .. } => ErrorCode::ResultExpired,
            Self::ModelInUse { .. } => ErrorCode::ModelInUse,
            Self::FromDaemon { report } => report.code,
        }
    }

    /// What the person can do about it, in one sentence.
    pub fn suggestion(&self) -> String {
        match self {
            Self::StorageUnavailable { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                "Choose a data folder you can write to in Settings, or fix the folder's permissions."
                    .into()
            }
            Self::StorageUnavailable { .. } => {
                "Check that the disk is mounted and not full, or choose another data folder in Settings."
                    .into()
            }
            Self::InvalidSetting { .. } => "Correct the value and save again.".into(),
            Self::InvalidInput { .. } => "Correct the value and try again.".into(),
            Self::CorruptState { .. } => {
                "Switchyard kept the damaged file beside the new one; delete it if you do not need it."
                    .into()
            }
            Self::HardwareUnreadable { .. } => {
                "Report this with your operating system's name and version: it may not be supported yet."
                    .into()
            }
            Self::InvalidGguf { .. } => {
                "Download the model again, or pick another file: this one is damaged or not a GGUF model."
                    .into()
            }
            Self::FileUnreadable { .. } => "Check that the file exists and that you may read it.".into(),
            Self::Network { .. } => {
                "Check your internet connection and the address, then try again.".into()
            }
            Self::HttpStatus { status: 401 | 403, .. } => {
                "The file needs permission: for gated Hugging Face models, accept the license on the model page first."
                    .into()
            }
            Self::HttpStatus { status: 404, .. } => "Check the repository, file name and revision.".into(),
            Self::HttpStatus { .. } => "The server has a problem; try again later.".into(),
            Self::DiskFull { .. } => {
                "Free some space (or choose a data folder on a larger disk), then resume: what was downloaded is kept."
                    .into()
            }
            Self::ChecksumMismatch { .. } | Self::SizeMismatch { .. } => {
                "The download was discarded. Try again; if it happens again, the source file differs from what it claims."
                    .into()
            }
            Self::Cancelled => String::new(),
            Self::Internal { .. } => "Please report this, with the log folder attached.".into(),
            Self::ShuttingDown => "Start Switchyard again.".into(),
            Self::InsufficientResources { suggestion, .. } => suggestion.clone(),
            Self::BinaryUnavailable { .. } => {
                "The Binary setup log says why each build failed; you can also choose your own llama-server or sd in Settings (`llama_server_path`, `sd_path` in settings.json without the app)."
                    .into()
            }
            Self::BinaryRejected { .. } => {
                "Choose another build: this one crashed, misses a library, or needs a GPU driver or CPU features this machine lacks."
                    .into()
            }
            Self::UnsafeArchive { .. } => {
                "The download was discarded and nothing was installed. If you use a mirror, check it; otherwise report this."
                    .into()
            }
            Self::PortInUse { .. } => {
                "Choose another port, leave the port empty for a free one, or stop the program that uses it."
                    .into()
            }
            Self::ServerStartFailed { .. } => {
                "Read llama-server's message above: a damaged or unsupported model file, too little memory, or a setting the model does not accept."
                    .into()
            }
            Self::ServerCrashed { .. } => {
                "Switchyard restarts it by itself; if it keeps crashing, look at its log and try a smaller context or fewer GPU layers."
                    .into()
            }
            Self::ServerFailed { .. } => {
                "Look at the instance's log for the cause, change what it points to, then start it again."
                    .into()
            }
            Self::ServerNotRunning { .. } => "Start the instance first.".into(),
            Self::GenerationFailed {
                out_of_memory: true,
                ..
            } => {
                "Not enough memory: try a smaller size or fewer images, keep the text encoder and VAE on the CPU, or enable VAE tiling."
                    .into()
            }
            Self::GenerationFailed { .. } => {
                "The last lines sd printed are in the details; check the model files and the settings, then try again."
                    .into()
            }
            Self::TimedOut { .. } => {
                "Try fewer steps or a smaller image, or raise the time limit.".into()
            }
            Self::QueueFull { .. } => "Wait for the images in progress, then try again.".into(),
            Self::NotFound {
                what: "instance", ..
            } => "Check the name: `switchyard ps` (or the LLM tab) lists the instances.".into(),
            Self::NotFound { what: "model", .. } => {
                "Check the id: `switchyard models list` (or the Models tab) lists the installed models."
                    .into()
            }
            Self::NotFound { .. } => "Check the id; finished results are kept only for a while.".into(),
            Self::InvalidInstanceFile { file, field, .. }
                if field == WHOLE_FILE =>
            {
                format!(
                    "Correct the TOML syntax in {} (the line is named above), then check with `switchyard config validate`.",
                    file.display()
                )
            }
            Self::InvalidInstanceFile { file, field, .. } => format!(
                "Correct `{field}` in {}, then check with `switchyard config validate`.",
                file.display()
            ),
            Self::DaemonUnreachable { .. } => {
                "Check it with `switchyard daemon status`; restart it (`systemctl --user restart switchyard`, or run `switchyard daemon`)."
                    .into()
            }
            Self::DaemonNotRunning { .. } => {
                "Start one: `switchyard daemon` in a terminal, `switchyard service install` to run it as a service, or `switchyard up NAME`, which starts one in the background."
                    .into()
            }
            Self::FromDaemon { report } => report.suggestion.clone(),
            Self::DownloadBusy { .. } => {
                "Let that download finish (it is installed for every Switchyard process), or pause it there and resume it here."
                    .into()
            }
            Self::UnsafeFolder { path, .. } => format!(
                "Remove {} (Switchyard makes it again, private to you), or choose another data folder in Settings.",
                path.display()
            ),
            Self::ResultExpired { id, .. } => format!(
                "Fetch results soon after they finish (each image alone: /v1/images/generations/{id}/images/0, 1, …), or generate again."
            ),
            Self::ModelInUse { instance, .. } => format!(
                "Stop `{instance}` first (the LLM tab, or `switchyard down {instance}`), then delete the model."
            ),
            Self::InstanceOwned { instance, .. } => format!(
                "One instance has one owner: stop `{instance}` there, or control it through that owner (the CLI talks to a running daemon by itself)."
            ),
        }
    }

    /// A failed write: `DISK_FULL` when the disk is full, else the folder is
    /// unusable.
    pub fn writing(path: &std::path::Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::StorageFull {
            Self::DiskFull {
                path: path.to_path_buf(),
            }
        } else {
            Self::StorageUnavailable {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// Worth retrying by itself: a dropped connection or a server's passing trouble.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network { .. } => true,
            Self::HttpStatus { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            Self::QueueFull { .. } => true,
            _ => false,
        }
    }

    pub fn report(&self) -> ErrorReport {
        ErrorReport {
            code: self.code(),
            message: self.to_string(),
            suggestion: self.suggestion(),
        }
    }
}

/// The serialized form of an error, as the window and scripts receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ErrorReport {
    pub code: ErrorCode,
    pub message: String,
    pub suggestion: String,
}

impl From<EngineError> for ErrorReport {
    fn from(error: EngineError) -> Self {
        error.report()
    }
}

impl From<ErrorReport> for EngineError {
    /// A report that came back from the daemon.
    fn from(report: ErrorReport) -> Self {
        Self::FromDaemon { report }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_in_screaming_snake_case() {
        let report = EngineError::InvalidSetting {
            field: "endpoint_port",
            problem: "must not be 0".into(),
        }
        .report();
        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(json["code"], "INVALID_SETTING");
        assert_eq!(
            json["message"],
            "The setting `endpoint_port` is invalid: must not be 0"
        );
        assert_eq!(json["suggestion"], "Correct the value and save again.");
    }

    #[test]
    fn permission_problems_get_their_own_suggestion() {
        let denied = EngineError::StorageUnavailable {
            path: "/root/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let missing = EngineError::StorageUnavailable {
            path: "/root/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(denied.suggestion().contains("permissions"));
        assert!(missing.suggestion().contains("not full"));
        assert_eq!(denied.code(), ErrorCode::StorageUnavailable);
    }
}
