//! `state/instances.json`: the instances and whether each was running, written
//! atomically, so that the app can start again what ran before it closed. The
//! specs hold API keys, so the file is its user's alone (0600), set again at every
//! write (a file an older version left readable by others becomes private).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::InstanceSpec;
use switchyard_base::errors::{EngineError, Result};
use switchyard_base::fs_atomic;

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
    fs_atomic::write_json_private(path, stored).map_err(|source| EngineError::StorageUnavailable {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn keyed() -> StoredInstances {
        let mut spec = InstanceSpec::new("chat", "/models/m.gguf");
        spec.api_key = Some("sesame-in-the-store".into());
        StoredInstances {
            instances: vec![StoredInstance {
                spec,
                was_running: true,
            }],
        }
    }

    fn mode(path: &Path) -> Option<u32> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(metadata.permissions().mode() & 0o777)
    }

    #[test]
    fn the_instances_file_is_readable_by_its_user_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        save(&file, &keyed()).unwrap();
        assert_eq!(mode(&file), Some(0o600));
        assert_eq!(load(&file).unwrap(), keyed());
    }

    #[test]
    fn an_instances_file_readable_by_others_becomes_private_at_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cli-instances.json");
        std::fs::write(&file, b"{\"instances\": []}").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        save(&file, &keyed()).unwrap();
        assert_eq!(mode(&file), Some(0o600));
    }
}
