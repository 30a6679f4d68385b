//! Switchyard's engine: the facade over the crates that know and do everything
//! (docs/architecture.md), with no Tauri in it. It owns [`Engine`], [`EngineEvent`]
//! and its bus (each part's own events wrapped into it), the settings and their
//! file, the data layout, the daemon and its control API.
//!
//! The desktop shell, the CLI and the tests all drive the same [`Engine`]. It is
//! built from [`EngineDeps`] (data folder, system probe, clock) so a test can hand it
//! fakes and a temporary folder; there are no global singletons.

pub mod control;
pub mod engine;
pub mod events;
pub mod first_run;
pub mod paths;
pub mod report;
pub mod settings;
pub mod settings_file;

// The layers below the engine, each a crate of its own (docs/architecture.md),
// under the names the engine has always used.
pub(crate) use switchyard_base::locks;
pub use switchyard_base::{clock, errors, fs_atomic, private_dir, redact, secrets, services};
pub use switchyard_binaries as binaries;
pub use switchyard_diffusion as diffusion;
pub use switchyard_estimate as estimate;
pub use switchyard_gguf as gguf;
pub use switchyard_llama as llama;
pub use switchyard_llama::instance_files;
pub use switchyard_models as models;
pub use switchyard_net as net;
pub use switchyard_orchestrator as orchestrator;
pub use switchyard_process as process;
pub use switchyard_system as system;

pub use engine::{Engine, EngineDeps};
pub use errors::{EngineError, ErrorCode, ErrorReport};
pub use events::EngineEvent;
