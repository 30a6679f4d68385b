//! One owner per instance: an operating-system file lock per instance name, held by
//! the process that runs its server (the app, the daemon, or a `switchyard up
//! --foreground`) for as long as it runs it. Two Switchyard processes on the same
//! data folder can then never both run one instance; the second gets
//! `INSTANCE_OWNED` naming the first.
//!
//! The lock (`state/llama-<name>.lock`) is released by the kernel when its owner
//! exits, however it exits, so a crashed owner never blocks the next one. Who
//! holds it is written beside it (`state/llama-<name>.owner.json`): on Windows a
//! locked file cannot be read by others.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use switchyard_base::errors::{EngineError, Result};
use switchyard_base::fs_atomic;

/// Which kind of Switchyard process owns an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum OwnerKind {
    /// The desktop app (the default for an engine).
    #[default]
    App,
    /// `switchyard daemon`.
    Daemon,
    /// A `switchyard` command running a server in the foreground.
    Cli,
}

impl OwnerKind {
    /// In words, for messages: "the Switchyard daemon".
    pub fn describe(self) -> &'static str {
        match self {
            Self::App => "the Switchyard app",
            Self::Daemon => "the Switchyard daemon",
            Self::Cli => "a switchyard command",
        }
    }
}

/// Who holds an instance's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Owner {
    pub kind: OwnerKind,
    pub pid: u32,
}

impl Owner {
    /// This process, as `kind`.
    pub fn this_process(kind: OwnerKind) -> Self {
        Self {
            kind,
            pid: std::process::id(),
        }
    }
}

/// Held while this process owns the instance; dropping it releases the lock.
#[derive(Debug)]
pub struct Ownership {
    /// The lock lives as long as this open file.
    _lock: File,
    owner_file: PathBuf,
}

impl Drop for Ownership {
    fn drop(&mut self) {
        // Removed before the lock goes (the file closes after this): a reader that
        // finds no owner file while the lock is held just sees "unknown owner".
        let _ = std::fs::remove_file(&self.owner_file);
    }
}

fn lock_path(state_dir: &Path, instance: &str) -> PathBuf {
    state_dir.join(format!("llama-{instance}.lock"))
}

fn owner_path(state_dir: &Path, instance: &str) -> PathBuf {
    state_dir.join(format!("llama-{instance}.owner.json"))
}

/// Takes the instance for `me`, or says who has it.
pub fn claim(state_dir: &Path, instance: &str, me: &Owner) -> Result<Ownership> {
    let path = lock_path(state_dir, instance);
    let file = switchyard_base::locks::lock_file(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let owner = read_owner(state_dir, instance);
            return Err(EngineError::InstanceOwned {
                instance: instance.to_owned(),
                owner: owner
                    .as_ref()
                    .map_or("another Switchyard process", |owner| owner.kind.describe())
                    .to_owned(),
                pid: owner.map_or(0, |owner| owner.pid),
            });
        }
        Err(TryLockError::Error(source)) => return Err(EngineError::writing(&path, source)),
    }
    let owner_file = owner_path(state_dir, instance);
    fs_atomic::write_json(&owner_file, me)
        .map_err(|source| EngineError::writing(&owner_file, source))?;
    Ok(Ownership {
        _lock: file,
        owner_file,
    })
}

/// Who runs `instance` now, if any process holds its lock (this one included).
///
/// The owner file is looked at first: it exists only while the lock is held (or
/// after an owner crashed). Probing the lock itself takes a shared lock for an
/// instant, and a claim landing in that instant would be refused, so the window's
/// polling probes only when an owner is written.
pub fn current_owner(state_dir: &Path, instance: &str) -> Option<Owner> {
    let recorded = read_owner(state_dir, instance)?;
    let file = File::open(lock_path(state_dir, instance)).ok()?;
    match file.try_lock_shared() {
        // Nobody holds it (this probe's own shared lock ends with `file`).
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => Some(recorded),
        Err(TryLockError::Error(_)) => None,
    }
}

fn read_owner(state_dir: &Path, instance: &str) -> Option<Owner> {
    let bytes = std::fs::read(owner_path(state_dir, instance)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_with_the_owner_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Owner::this_process(OwnerKind::Daemon);
        let held = claim(dir.path(), "tiny", &daemon).unwrap();
        assert_eq!(current_owner(dir.path(), "tiny"), Some(daemon.clone()));

        let refused = claim(dir.path(), "tiny", &Owner::this_process(OwnerKind::App)).unwrap_err();
        assert_eq!(
            refused.code(),
            switchyard_base::errors::ErrorCode::InstanceOwned
        );
        let message = refused.to_string();
        assert!(message.contains("the Switchyard daemon"), "{message}");
        assert!(message.contains(&daemon.pid.to_string()), "{message}");

        // Other instances are independent.
        let other = claim(dir.path(), "other", &Owner::this_process(OwnerKind::App));
        assert!(other.is_ok());

        drop(held);
        assert_eq!(current_owner(dir.path(), "tiny"), None);
        assert!(claim(dir.path(), "tiny", &Owner::this_process(OwnerKind::App)).is_ok());
    }
}
