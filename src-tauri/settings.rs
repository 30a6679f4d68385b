//! Settings at start and on save. The engine reads and writes `settings.json`
//! (`switchyard_engine::settings_file`: its place, layout and how a damaged file is
//! kept and reported); the shell adds what only it can do (start at login) and
//! keeps the start-up warnings for the window.

use std::path::Path;

use switchyard_engine::settings::{Settings, SettingsUpdate};
use switchyard_engine::{settings_file, Engine, ErrorReport};
use tauri::{AppHandle, Runtime};
use tauri_plugin_autostart::ManagerExt as _;

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

/// Validates, applies start-at-login, then has the engine write and apply the
/// settings: a change that fails half-way is not reported as saved.
pub fn save<R: Runtime>(
    app: &AppHandle<R>,
    engine: &Engine,
    settings: Settings,
) -> Result<SettingsUpdate, IpcError> {
    settings.validate()?;
    apply_autostart(app, settings.autostart)?;
    Ok(engine.save_settings(settings)?)
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
