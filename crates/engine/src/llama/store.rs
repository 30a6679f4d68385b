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

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("instances.json")
}

pub fn load(state_dir: &Path) -> Result<StoredInstances> {
    fs_atomic::read_json(&path(state_dir))
}

pub fn save(state_dir: &Path, stored: &StoredInstances) -> Result<()> {
    fs_atomic::write_json(&path(state_dir), stored).map_err(|source| {
        EngineError::StorageUnavailable {
            path: path(state_dir),
            source,
        }
    })
}
