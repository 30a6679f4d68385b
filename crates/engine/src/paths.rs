//! Where Switchyard keeps its files, and the folders inside the data folder.

use std::path::{Path, PathBuf};

use crate::errors::{EngineError, Result};

/// Environment variable that overrides the data folder (tests, portable installs).
pub const DATA_DIR_ENV: &str = "SWITCHYARD_DATA_DIR";
/// Environment variable that overrides the config folder holding `settings.json`.
pub const CONFIG_DIR_ENV: &str = "SWITCHYARD_CONFIG_DIR";

const APP_FOLDER: &str = "switchyard";

/// The data folder: the environment override first, then the user's setting, then
/// the platform default (`~/.local/share/switchyard` on Linux).
pub fn resolve_data_dir(env_override: Option<PathBuf>, setting: Option<&Path>) -> PathBuf {
    env_override
        .filter(|path| !path.as_os_str().is_empty())
        .or_else(|| setting.map(Path::to_path_buf))
        .unwrap_or_else(|| platform_dir(dirs::data_dir()))
}

/// The config folder (`~/.config/switchyard` on Linux), where settings live. It is
/// separate from the data folder because the data folder itself is a setting.
pub fn resolve_config_dir(env_override: Option<PathBuf>) -> PathBuf {
    env_override
        .filter(|path| !path.as_os_str().is_empty())
        .unwrap_or_else(|| platform_dir(dirs::config_dir()))
}

fn platform_dir(base: Option<PathBuf>) -> PathBuf {
    // No home folder at all (a bare service account): fall back to the working
    // folder rather than refusing to start.
    base.unwrap_or_else(|| PathBuf::from(".")).join(APP_FOLDER)
}

/// The folders inside the data folder, created on start.
#[derive(Debug, Clone)]
pub struct DataLayout {
    root: PathBuf,
}

impl DataLayout {
    const SUBFOLDERS: [&'static str; 4] = ["models", "binaries", "logs", "state"];

    /// Creates the data folder and its subfolders and proves the folder is writable.
    pub fn create(root: PathBuf) -> Result<Self> {
        for sub in Self::SUBFOLDERS {
            let path = root.join(sub);
            std::fs::create_dir_all(&path)
                .map_err(|source| EngineError::StorageUnavailable { path, source })?;
        }
        let probe = root.join("state").join(".write-test");
        std::fs::write(&probe, b"ok")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|source| EngineError::StorageUnavailable {
                path: root.clone(),
                source,
            })?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }
    pub fn binaries(&self) -> PathBuf {
        self.root.join("binaries")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }
    /// Where sd writes the images of a job before Switchyard reads them back: private
    /// to this user (see [`crate::private_dir`]), never a shared temporary folder.
    pub fn image_work(&self) -> PathBuf {
        self.state().join("images-work")
    }
    /// Conversations (llama-server slots' KV caches) kept across a pause: private
    /// to this user, created at the first start that saves one.
    pub fn kv_cache(&self) -> PathBuf {
        self.root.join("kv-cache")
    }
    /// Images the person chose to keep (created on the first save).
    pub fn gallery(&self) -> PathBuf {
        self.root.join("gallery")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_override_beats_setting_and_default() {
        let chosen = resolve_data_dir(Some("/env".into()), Some(Path::new("/setting")));
        assert_eq!(chosen, PathBuf::from("/env"));
        let chosen = resolve_data_dir(Some(PathBuf::new()), Some(Path::new("/setting")));
        assert_eq!(chosen, PathBuf::from("/setting"));
        let chosen = resolve_data_dir(None, None);
        assert!(chosen.ends_with(APP_FOLDER));
    }

    #[test]
    fn layout_creates_every_subfolder() {
        let dir = tempfile::tempdir().unwrap();
        let layout = DataLayout::create(dir.path().join("nested/data")).unwrap();
        for path in [
            layout.models(),
            layout.binaries(),
            layout.logs(),
            layout.state(),
        ] {
            assert!(path.is_dir(), "{} missing", path.display());
        }
    }

    #[test]
    fn unwritable_location_is_a_storage_error() {
        // A regular file where the data folder should be cannot hold subfolders.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("occupied");
        std::fs::write(&file, b"not a folder").unwrap();
        let error = DataLayout::create(file.clone()).unwrap_err();
        assert_eq!(error.code(), crate::ErrorCode::StorageUnavailable);
        assert!(error.to_string().contains(&file.display().to_string()));
    }
}
