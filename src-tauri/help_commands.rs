//! First run and help: the wizard's proposal and curated download, marking the
//! wizard done, the log folder, and the problem report. One engine call each; the
//! shell only adds what needs the desktop (opening a folder).

use std::path::Path;

use switchyard_engine::first_run::FirstRunProposal;
use switchyard_engine::llama::InstanceStatus;
use switchyard_engine::settings::{Settings, SettingsUpdate};
use switchyard_engine::Engine;
use tauri::{AppHandle, State};
use tauri_plugin_opener::OpenerExt;
use tracing::instrument;

use crate::ipc_error::IpcError;

#[tauri::command(async)]
#[instrument(skip_all)]
pub fn first_run_proposal(engine: State<'_, Engine>) -> FirstRunProposal {
    engine.first_run_proposal()
}

/// Starts downloading a curated model; resolves to its model id.
#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn install_curated_model(
    engine: State<'_, Engine>,
    id: String,
) -> Result<String, IpcError> {
    Ok(engine.install_curated_model(&id).await?)
}

/// The instance that serves an installed model (created when there is none).
#[tauri::command(async, rename_all = "snake_case")]
#[instrument(skip(engine), err(Debug))]
pub fn instance_for_model(
    engine: State<'_, Engine>,
    model_id: String,
) -> Result<InstanceStatus, IpcError> {
    Ok(engine.instance_for_model(&model_id)?)
}

/// The wizard was finished or skipped: it does not open by itself again.
#[tauri::command(async)]
#[instrument(skip_all, err(Debug))]
pub fn finish_first_run(
    app: AppHandle,
    engine: State<'_, Engine>,
) -> Result<SettingsUpdate, IpcError> {
    let settings = Settings {
        first_run_done: true,
        ..engine.settings()
    };
    crate::settings::save(&app, &engine, settings)
}

/// Opens the logs folder in the file manager.
#[tauri::command(async)]
#[instrument(skip_all, err(Debug))]
pub fn open_logs_folder(app: AppHandle, engine: State<'_, Engine>) -> Result<(), IpcError> {
    let logs = engine.layout().logs();
    app.opener()
        .open_path(logs.display().to_string(), None::<&str>)
        .map_err(|error| cannot_open(&logs, error))
}

/// Writes the problem report zip and shows it in the file manager; resolves to its
/// path (also when no file manager could show it: the window shows the path).
#[tauri::command(async)]
#[instrument(skip_all, err(Debug))]
pub fn report_problem(app: AppHandle, engine: State<'_, Engine>) -> Result<String, IpcError> {
    let path = engine.write_problem_report(env!("CARGO_PKG_VERSION"))?;
    if let Err(error) = app.opener().reveal_item_in_dir(&path) {
        tracing::warn!(%error, path = %path.display(), "could not show the report");
    }
    Ok(path.display().to_string())
}

fn cannot_open(path: &Path, error: impl std::fmt::Display) -> IpcError {
    IpcError::internal(
        format!("Switchyard could not open {}: {error}", path.display()),
        "Open the folder yourself; its path is in Settings → About.",
    )
}
