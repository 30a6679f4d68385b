//! Commands: each is one call into the engine (or the settings store) plus error
//! mapping. Nothing here decides anything.

use switchyard_engine::engine::AppInfo;
use switchyard_engine::services::EngineStatus;
use switchyard_engine::settings::{Settings, SettingsUpdate};
use switchyard_engine::system::SystemInfo;
use switchyard_engine::{Engine, ErrorReport};
use tauri::{AppHandle, State};
use tracing::instrument;

use crate::ipc_error::IpcError;
use crate::settings::StartupWarnings;

#[tauri::command(async)]
#[instrument(skip_all)]
pub fn system_info(engine: State<'_, Engine>) -> SystemInfo {
    engine.system_info()
}

#[tauri::command]
#[instrument(skip_all)]
pub fn app_info(engine: State<'_, Engine>) -> AppInfo {
    engine.app_info(env!("CARGO_PKG_VERSION"))
}

#[tauri::command]
#[instrument(skip_all)]
pub fn engine_status(engine: State<'_, Engine>) -> EngineStatus {
    engine.status()
}

#[tauri::command]
#[instrument(skip_all)]
pub fn get_settings(engine: State<'_, Engine>) -> Settings {
    engine.settings()
}

/// The settings stay out of the span: their addresses may carry credentials.
#[tauri::command(async)]
#[instrument(skip(app, engine, settings), err(Debug))]
pub fn save_settings(
    app: AppHandle,
    engine: State<'_, Engine>,
    settings: Settings,
) -> Result<SettingsUpdate, IpcError> {
    crate::settings::save(&app, &engine, settings)
}

#[tauri::command]
#[instrument(skip_all)]
pub fn startup_warnings(
    engine: State<'_, Engine>,
    warnings: State<'_, StartupWarnings>,
) -> Vec<ErrorReport> {
    warnings
        .0
        .iter()
        .chain(engine.startup_warnings())
        .cloned()
        .collect()
}
