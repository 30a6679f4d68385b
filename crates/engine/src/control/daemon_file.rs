//! `daemon.json`: where a running daemon listens and the token it wants, readable
//! by its user only; and `daemon.lock`, which keeps a second daemon off the same
//! data folder.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::errors::{EngineError, Result};
use crate::fs_atomic;

const FILE_NAME: &str = "daemon.json";
const LOCK_NAME: &str = "daemon.lock";

/// What a client needs to reach the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DaemonFile {
    pub pid: u32,
    pub port: u16,
    /// The image API's port, when it is served (its port may be taken).
    #[serde(default)]
    pub image_port: Option<u16>,
    /// The Switchyard endpoint's port, when it is served.
    #[serde(default)]
    pub endpoint_port: Option<u16>,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: String,
    pub version: String,
}

impl DaemonFile {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE_NAME)
    }

    /// The daemon recorded in `data_dir`, if one is (it may have died since: the
    /// client finds out when it calls).
    pub fn read(data_dir: &Path) -> Result<Option<Self>> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(EngineError::FileUnreadable { path, source }),
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|error| {
                EngineError::CorruptState {
                    path,
                    problem: error.to_string(),
                }
            }),
        }
    }

    /// The daemon that runs on `data_dir` now (it holds the lock), if one does. One
    /// that holds the lock but has not published its address yet is an error: it
    /// is starting, ask again.
    pub fn running(data_dir: &Path) -> Result<Option<Self>> {
        if !DaemonLock::is_held(data_dir) {
            return Ok(None);
        }
        match Self::read(data_dir)? {
            Some(file) => Ok(Some(file)),
            None => Err(EngineError::DaemonUnreachable {
                address: data_dir.display().to_string(),
                problem: "it runs but has not published its address (daemon.json) yet".into(),
            }),
        }
    }

    pub fn write(&self, data_dir: &Path) -> Result<()> {
        let path = Self::path(data_dir);
        let bytes = serde_json::to_vec_pretty(self).map_err(|error| EngineError::Internal {
            problem: error.to_string(),
        })?;
        fs_atomic::write_private(&path, &bytes)
            .map_err(|source| EngineError::writing(&path, source))
    }

    pub fn remove(data_dir: &Path) {
        let _ = std::fs::remove_file(Self::path(data_dir));
    }

    /// A new random token: 32 bytes from the operating system, as hex.
    pub fn new_token() -> Result<String> {
        crate::secrets::random_token()
    }
}

/// Held by the one daemon of a data folder for its whole life.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

impl DaemonLock {
    /// Takes the data folder's daemon lock, or says that a daemon runs already.
    pub fn acquire(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(LOCK_NAME);
        let file = crate::locks::lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => {
                let pid = DaemonFile::read(data_dir)
                    .ok()
                    .flatten()
                    .map_or(0, |daemon| daemon.pid);
                Err(EngineError::InstanceOwned {
                    instance: "(daemon)".into(),
                    owner: "the Switchyard daemon".into(),
                    pid,
                })
            }
            Err(TryLockError::Error(source)) => Err(EngineError::writing(&path, source)),
        }
    }

    /// Whether a daemon holds the lock of `data_dir` now.
    pub fn is_held(data_dir: &Path) -> bool {
        File::open(data_dir.join(LOCK_NAME))
            .is_ok_and(|file| matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_one_daemon_per_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(DaemonFile::read(dir.path()).unwrap(), None);
        let file = DaemonFile {
            pid: 1,
            port: 2,
            image_port: None,
            endpoint_port: None,
            token: DaemonFile::new_token().unwrap(),
            version: "0".into(),
        };
        assert_eq!(file.token.len(), 64);
        file.write(dir.path()).unwrap();
        assert_eq!(DaemonFile::read(dir.path()).unwrap(), Some(file));

        assert!(!DaemonLock::is_held(dir.path()));
        let lock = DaemonLock::acquire(dir.path()).unwrap();
        assert!(DaemonLock::is_held(dir.path()));
        let second = DaemonLock::acquire(dir.path()).unwrap_err();
        assert_eq!(second.code(), crate::ErrorCode::InstanceOwned);
        drop(lock);
        assert!(!DaemonLock::is_held(dir.path()));
    }
}
