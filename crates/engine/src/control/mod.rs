//! The engine's control API, for front ends without a window: `switchyard daemon`
//! serves it on loopback, the `switchyard` command calls it when a daemon runs, and
//! uses the engine in its own process when none does.
//!
//! The daemon writes `daemon.json` (pid, port, token; mode 0600, atomic) in the data
//! folder while it serves, and removes it when it ends. Every request carries
//! `Authorization: Bearer <token>`: the port is open to every local user, the file
//! only to this one.
//!
//! The desktop app attaches to a running daemon through `link` (see
//! `Engine::daemon_client` and `Engine::run_daemon_watch`): it shows and drives the
//! daemon's instances instead of running its own servers for them.

mod client;
mod daemon;
mod daemon_file;
mod link;
mod room;
mod rows;
mod server;
mod wire;

pub use client::ControlClient;
pub use daemon::{run_daemon, DaemonOptions};
pub use daemon_file::{DaemonFile, DaemonLock};
pub use link::{AttachedDaemon, DaemonInstance, DaemonLink};
pub use room::DaemonServers;
pub use rows::{DaemonStatus, InstanceRow};
pub use wire::{
    DaemonImageRequest, QueuedImage, RoomAnswer, RoomRequest, MAX_WAIT as MAX_IMAGE_WAIT,
};
