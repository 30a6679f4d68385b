//! Switchyard's engine: everything the app knows and does, with no Tauri in it.
//!
//! The desktop shell, the CLI and the tests all drive the same [`Engine`]. It is
//! built from [`EngineDeps`] (data folder, system probe, clock) so a test can hand it
//! fakes and a temporary folder; there are no global singletons.

pub mod binaries;
pub mod clock;
pub mod control;
pub mod diffusion;
pub mod engine;
pub mod errors;
pub mod estimate;
pub mod events;
pub mod first_run;
pub mod fs_atomic;
pub mod gguf;
pub mod instance_files;
pub mod llama;
mod locks;
pub mod models;
pub mod net;
pub mod orchestrator;
pub mod paths;
pub mod private_dir;
pub mod process;
pub mod redact;
pub mod report;
pub mod secrets;
pub mod services;
pub mod settings;
pub mod settings_file;
pub mod system;

pub use engine::{Engine, EngineDeps};
pub use errors::{EngineError, ErrorCode, ErrorReport};
pub use events::EngineEvent;
