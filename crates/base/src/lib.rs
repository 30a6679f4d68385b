//! Switchyard's ground floor, shared by every other crate: typed errors (a stable
//! code, a message for people, a suggestion), state files written whole or not at
//! all, lock helpers that survive a poisoned lock, the clock, redaction for what may
//! hold secrets, secret files (0600), the private work folder, the two services'
//! states with the board that announces them, and the [`emit::Emitter`] through
//! which each part announces its own events. Nothing here knows about models,
//! servers or the engine.

pub mod clock;
pub mod emit;
pub mod errors;
pub mod fs_atomic;
pub mod locks;
pub mod private_dir;
pub mod redact;
pub mod secrets;
pub mod services;
