//! Test fixtures for Switchyard. Dev-only: nothing here ships in the app.
//!
//! - [`FakeProbe`]: hardware of our choosing, with memory readings a test can change.
//! - [`ManualClock`]: time that moves only when a test moves it.
//! - [`gguf`]: a GGUF writer and generated llama models the real llama-server runs.
//! - [`FixtureServer`]: local HTTP with ranges, ETags, redirects and faults.
//! - [`chat_clients`]: clients that are always talking to an LLM endpoint.
//! - [`test_engine`]: a real [`Engine`] in a temporary folder with both of the above.

pub mod chat_clients;
mod clock;
mod fixture_server;
pub mod gguf;
mod probe;
pub mod processes;
pub mod random;
pub mod tools;

pub use clock::ManualClock;
pub use fixture_server::{Fault, FixtureServer, Traffic};
pub use probe::{FakeProbe, GIB};

use std::sync::Arc;

use switchyard_engine::settings::Settings;
use switchyard_engine::{Engine, EngineDeps};

/// A real engine on fake hardware in a fresh temporary folder (kept alive by the
/// returned guard).
pub fn test_engine(probe: Arc<FakeProbe>, clock: Arc<ManualClock>) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("temp dir: {error}"));
    let engine = Engine::new(EngineDeps {
        data_dir_override: Some(dir.path().join("data")),
        config_dir: dir.path().join("config"),
        settings: Settings::default(),
        probe,
        clock,
    })
    .unwrap_or_else(|error| panic!("engine: {error}"));
    (engine, dir)
}
