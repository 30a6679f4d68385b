//! Settings at start and on save. The engine knows `settings.json` (its place, the
//! key its fields live under, how a damaged file is kept and reported, how a save
//! is committed whole: `switchyard_engine::settings_file`) and reads it; the shell
//! writes it through tauri-plugin-store, adds what only it can do (start at
//! login), and keeps the start-up warnings for the window.

use std::path::Path;

use switchyard_engine::settings::{Settings, SettingsUpdate};
use switchyard_engine::{settings_file, Engine, ErrorReport};
use tauri::{AppHandle, Runtime};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_store::StoreExt as _;

use crate::ipc_error::IpcError;

/// Problems met while starting (damaged settings, an unusable data folder) that
/// the window shows once, with what was done about them.
#[derive(Debug, Default)]
pub struct StartupWarnings(pub Vec<ErrorReport>);

/// The saved settings; a file that cannot be used gives the defaults and a warning.
pub fn load(config_dir: &Path, warnings: &mut StartupWarnings) -> Settings {
    let (settings, problem) = settings_file::load(config_dir);
    warnings.0.extend(problem);
    settings
}

/// One save at a time: the store's staging file is shared by every save.
static SAVING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Validates, applies start-at-login, writes the settings through tauri-plugin-store
/// (to the engine's staging file, which the engine then renames over
/// `settings.json`: whole or not at all), then has the engine apply them. A change
/// that fails half-way is not reported as saved.
pub fn save<R: Runtime>(
    app: &AppHandle<R>,
    engine: &Engine,
    settings: Settings,
) -> Result<SettingsUpdate, IpcError> {
    settings.validate()?;
    apply_autostart(app, settings.autostart)?;
    let config_dir = engine.config_dir();
    let value = serde_json::to_value(&settings)
        .map_err(|error| IpcError::internal(error, "Report this as a bug."))?;
    let _saving = SAVING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let store = app
        .store(settings_file::staging_path(config_dir))
        .map_err(|error| storage_error(config_dir, error))?;
    if store.is_empty() {
        for (key, kept) in settings_file::stored_object(config_dir) {
            store.set(key, kept);
        }
    }
    store.set(settings_file::KEY, value);
    store
        .save()
        .map_err(|error| storage_error(config_dir, error))?;
    settings_file::commit_staged(config_dir)?;
    Ok(engine.update_settings(settings)?)
}

fn storage_error(folder: &Path, error: tauri_plugin_store::Error) -> IpcError {
    let source = match error {
        tauri_plugin_store::Error::Io(io) => io,
        other => std::io::Error::other(other.to_string()),
    };
    switchyard_engine::EngineError::StorageUnavailable {
        path: folder.to_path_buf(),
        source,
    }
    .into()
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
