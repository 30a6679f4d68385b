//! `state/instances.json`: the instances and whether each was running, written
//! atomically, so that the app can start again what ran before it closed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::InstanceSpec;
use crate::errors::{EngineError, Result};
use crate::fs_atomic;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StoredInstances {
    pub instances: Vec<StoredInstance>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredInstance {
    pub spec: InstanceSpec,
    /// The person had it running when the app last closed (or crashed).
    #[serde(default)]
    pub was_running: bool,
}

/// The window's instances.
pub const APP_FILE: &str = "instances.json";

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(APP_FILE)
}

pub fn load(path: &Path) -> Result<StoredInstances> {
    fs_atomic::read_json(path)
}

pub fn save(path: &Path, stored: &StoredInstances) -> Result<()> {
    fs_atomic::write_json(path, stored).map_err(|source| EngineError::StorageUnavailable {
        path: path.to_path_buf(),
        source,
    })
}
