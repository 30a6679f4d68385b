//! Settings on disk, through tauri-plugin-store, in the config folder. The engine
//! validates; this module loads, persists and applies what only the shell can
//! (start at login).

use std::path::{Path, PathBuf};

use switchyard_engine::settings::{Settings, SettingsUpdate};
use switchyard_engine::{Engine, EngineError, ErrorReport};
use tauri::{AppHandle, Runtime};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_store::StoreExt as _;

use crate::ipc_error::IpcError;

const SETTINGS_FILE: &str = "settings.json";
const SETTINGS_KEY: &str = "settings";

/// Problems met while starting (damaged settings, an unusable data folder) that
/// the window shows once, with what was done about them.
#[derive(Debug, Default)]
pub struct StartupWarnings(pub Vec<ErrorReport>);

pub fn settings_path(config_dir: &Path) -> PathBuf {
    config_dir.join(SETTINGS_FILE)
}

/// Reads the settings. A damaged file never stops the app and is never lost: a copy
/// is kept as `settings.json.damaged`, the defaults are used, and the window says so.
pub fn load<R: Runtime>(
    app: &AppHandle<R>,
    path: &Path,
    warnings: &mut StartupWarnings,
) -> Settings {
    // The store plugin silently ignores a file it cannot parse (and would overwrite
    // it at the next save), so the file is checked here first.
    let problem = match unparsable(path) {
        Some(problem) => Some(problem),
        None => match app.store(path) {
            Err(error) => Some(error.to_string()),
            Ok(store) => match store.get(SETTINGS_KEY).map(Settings::from_stored) {
                None => return Settings::default(),
                Some((settings, None)) => return settings,
                Some((_, Some(problem))) => Some(problem),
            },
        },
    };
    let problem = problem.unwrap_or_default();
    let kept = keep_copy(path);
    warnings.0.push(
        EngineError::CorruptState {
            path: kept.unwrap_or_else(|| path.to_path_buf()),
            problem: format!("{problem}. Switchyard started with default settings"),
        }
        .report(),
    );
    Settings::default()
}

/// Why the file is not a JSON object, if it exists and is not.
fn unparsable(path: &Path) -> Option<String> {
    match std::fs::read(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => Some(error.to_string()),
        Ok(bytes) => serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
            .err()
            .map(|error| error.to_string()),
    }
}

/// Copies a damaged settings file to `settings.json.damaged` so nothing is lost.
fn keep_copy(path: &Path) -> Option<PathBuf> {
    let kept = path.with_extension("json.damaged");
    std::fs::copy(path, &kept).ok().map(|_| kept)
}

/// Validates, applies start-at-login, persists, then hands the settings to the
/// engine: a change that fails half-way is not reported as saved.
pub fn save<R: Runtime>(
    app: &AppHandle<R>,
    engine: &Engine,
    settings: Settings,
) -> Result<SettingsUpdate, IpcError> {
    settings.validate()?;
    apply_autostart(app, settings.autostart)?;
    let store = app
        .store(settings_path(engine.config_dir()))
        .map_err(|error| storage_error(engine.config_dir(), error))?;
    let value = serde_json::to_value(&settings)
        .map_err(|error| IpcError::internal(error, "Report this as a bug."))?;
    store.set(SETTINGS_KEY, value);
    store
        .save()
        .map_err(|error| storage_error(engine.config_dir(), error))?;
    Ok(engine.update_settings(settings)?)
}

fn apply_autostart<R: Runtime>(app: &AppHandle<R>, wanted: bool) -> Result<(), IpcError> {
    let autolaunch = app.autolaunch();
    let current = autolaunch.is_enabled().unwrap_or(false);
    if current == wanted {
        return Ok(());
    }
    let result = if wanted {
        autolaunch.enable()
    } else {
        autolaunch.disable()
    };
    result.map_err(|error| {
        IpcError::internal(
            format!("Switchyard could not change start at login: {error}"),
            "Check that your session allows login items (on Linux, ~/.config/autostart must be writable).",
        )
    })
}

fn storage_error(folder: &Path, error: tauri_plugin_store::Error) -> IpcError {
    let source = match error {
        tauri_plugin_store::Error::Io(io) => io,
        other => std::io::Error::other(other.to_string()),
    };
    EngineError::StorageUnavailable {
        path: folder.to_path_buf(),
        source,
    }
    .into()
}
