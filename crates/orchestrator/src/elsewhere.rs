//! LLM servers another Switchyard process runs on this machine: the daemon's, when
//! the app (or a command) makes an image beside it. Each process's orchestrator
//! only stops its own servers; before an image, this one asks the other to make
//! room (it decides with its own rules and servers), and after it, to bring them
//! back.

use std::fmt::Debug;

use switchyard_base::errors::ErrorReport;
use switchyard_diffusion::gate::BoxFuture;

/// The other process, as the orchestrator needs it.
pub trait ServersElsewhere: Send + Sync + Debug {
    /// Stops that process's LLM servers when an image needing this much memory
    /// would not fit beside them; whether it stopped any. `Ok(false)` when no such
    /// process runs.
    fn make_room(
        &self,
        image_ram: u64,
        image_vram: u64,
    ) -> BoxFuture<'_, Result<bool, ErrorReport>>;

    /// The image is done: the servers stopped for it may come back.
    fn room_no_longer_needed(&self) -> BoxFuture<'_, ()>;
}
