//! Model commands: one engine call each. Those that may start or stop downloads run
//! on the async runtime (`async`), where the engine's tasks live.

use switchyard_engine::models::hub::HubFile;
use switchyard_engine::models::{
    AddModel, DiskUsage, DownloadStatus, FileGuess, InstalledModel, ModelLocation, RemoteModel,
};
use switchyard_engine::Engine;
use tauri::State;
use tracing::instrument;

use crate::ipc_error::IpcError;

#[tauri::command]
#[instrument(skip_all)]
pub fn list_models(engine: State<'_, Engine>) -> Vec<InstalledModel> {
    engine.models().models()
}

#[tauri::command]
#[instrument(skip_all)]
pub fn list_downloads(engine: State<'_, Engine>) -> Vec<DownloadStatus> {
    engine.models().downloads()
}

#[tauri::command(async)]
#[instrument(skip_all)]
pub fn disk_usage(engine: State<'_, Engine>) -> DiskUsage {
    engine.models().disk_usage()
}

#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn hub_files(
    engine: State<'_, Engine>,
    repo: String,
    revision: String,
) -> Result<Vec<HubFile>, IpcError> {
    Ok(engine.hub_files(&repo, &revision).await?)
}

/// What a pasted address's file name suggests (name, kind, quantization); a Hub
/// listing carries the same guess for each file.
#[tauri::command]
#[instrument(skip_all)]
pub fn guess_model_file(address: String) -> FileGuess {
    FileGuess::of("", &address)
}

#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn inspect_model(
    engine: State<'_, Engine>,
    location: ModelLocation,
) -> Result<RemoteModel, IpcError> {
    Ok(engine.inspect_model(&location).await?)
}

#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn add_model(engine: State<'_, Engine>, add: AddModel) -> Result<String, IpcError> {
    Ok(engine.add_model(add).await?)
}

#[tauri::command(async)]
#[instrument(skip(engine), err(Debug))]
pub fn pause_download(engine: State<'_, Engine>, id: String) -> Result<(), IpcError> {
    Ok(engine.models().pause(&id)?)
}

#[tauri::command(async)]
#[instrument(skip(engine), err(Debug))]
pub fn resume_download(engine: State<'_, Engine>, id: String) -> Result<(), IpcError> {
    Ok(engine.models().resume(&id)?)
}

#[tauri::command(async)]
#[instrument(skip(engine), err(Debug))]
pub fn cancel_download(engine: State<'_, Engine>, id: String) -> Result<(), IpcError> {
    Ok(engine.models().cancel(&id)?)
}

#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn verify_model(engine: State<'_, Engine>, id: String) -> Result<(), IpcError> {
    Ok(engine.models().verify(&id).await?)
}

#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn delete_model(engine: State<'_, Engine>, id: String) -> Result<(), IpcError> {
    Ok(engine.delete_model(&id).await?)
}
