//! Image commands: one engine call each. The window names an installed model, never
//! a path or a binary: the engine resolves both.

use switchyard_engine::diffusion::{
    ImageRequest, ImageServerInfo, JobSummary, JobView, SdCapabilities,
};
use switchyard_engine::engine::ImageServerConfig;
use switchyard_engine::Engine;
use tauri::State;
use tracing::instrument;

use crate::ipc_error::IpcError;

/// Starts the image server on the `image_port` setting with an installed diffusion
/// model (stopping one already running).
#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn start_image_server(
    engine: State<'_, Engine>,
    model: String,
) -> Result<ImageServerInfo, IpcError> {
    Ok(engine
        .start_image_server(ImageServerConfig {
            model_id: Some(model),
            ..ImageServerConfig::default()
        })
        .await?)
}

/// Stops the image server: its jobs are cancelled and every sd process ends.
#[tauri::command]
#[instrument(skip_all)]
pub async fn stop_image_server(engine: State<'_, Engine>) -> Result<(), IpcError> {
    engine.stop_image_server().await;
    Ok(())
}

/// Where the image server listens and what it runs, or `null` when stopped.
#[tauri::command]
#[instrument(skip_all)]
pub fn image_server(engine: State<'_, Engine>) -> Option<ImageServerInfo> {
    engine.image_server()
}

/// The samplers and schedulers the running sd offers (read from its `--help`).
#[tauri::command]
#[instrument(skip_all, err(Debug))]
pub fn image_capabilities(engine: State<'_, Engine>) -> Result<SdCapabilities, IpcError> {
    Ok(engine.image_capabilities()?)
}

/// Sets (or, with `null` or empty, removes) the key clients of the image API must
/// send; kept in a private file, never in the settings.
#[tauri::command]
#[instrument(skip_all, err(Debug))]
pub fn set_image_api_key(engine: State<'_, Engine>, key: Option<String>) -> Result<(), IpcError> {
    Ok(engine.set_image_api_key(key)?)
}

/// Whether the image API wants a key (the key itself never goes back to the window).
#[tauri::command]
#[instrument(skip_all)]
pub fn image_api_key_set(engine: State<'_, Engine>) -> bool {
    engine.image_api_key_is_set()
}

/// Queues a generation (the same queue as the HTTP API); returns the job's id.
/// The prompt stays out of the span.
#[tauri::command(async)]
#[instrument(skip(engine, request), err(Debug))]
pub fn generate_image(
    engine: State<'_, Engine>,
    request: ImageRequest,
) -> Result<String, IpcError> {
    Ok(engine.generate_image(request)?)
}

/// A job with its result: the images (base64 PNG) once it is complete. Off the main
/// thread: encoding a large batch takes a moment.
#[tauri::command(async)]
#[instrument(skip(engine), err(Debug))]
pub fn image_job(engine: State<'_, Engine>, id: String) -> Result<JobView, IpcError> {
    Ok(engine.image_job(&id)?)
}

#[tauri::command(async)]
#[instrument(skip(engine), err(Debug))]
pub fn cancel_image_job(engine: State<'_, Engine>, id: String) -> Result<JobSummary, IpcError> {
    Ok(engine.cancel_image_job(&id)?)
}

/// Writes a result's PNG into the gallery folder; returns the file's path.
#[tauri::command(async)]
#[instrument(skip(engine, image), err(Debug))]
pub fn save_image(engine: State<'_, Engine>, image: String, seed: i64) -> Result<String, IpcError> {
    let path = engine.save_image(&image, seed)?;
    Ok(path.display().to_string())
}
