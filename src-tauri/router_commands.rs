//! The Switchyard endpoint's commands: its address and the models it answers for,
//! with their load, unload and pin. One engine call each.

use switchyard_engine::orchestrator::router::RoutedModel;
use switchyard_engine::Engine;
use tauri::State;
use tracing::instrument;

use crate::ipc_error::IpcError;

/// The endpoint's address for clients (`http://127.0.0.1:8434/v1`), or `null`
/// while it is not served here.
#[tauri::command]
#[instrument(skip_all)]
pub fn endpoint_url(engine: State<'_, Engine>) -> Option<String> {
    engine.endpoint_url()
}

/// Every model the endpoint answers for, with its state (the daemon's, when it
/// serves the endpoint clients reach).
#[tauri::command]
#[instrument(skip_all, err(Debug))]
pub async fn routed_models(engine: State<'_, Engine>) -> Result<Vec<RoutedModel>, IpcError> {
    Ok(engine.endpoint_models().await?)
}

/// Loads a model as a request for it would (making room first).
#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn load_model(engine: State<'_, Engine>, model: String) -> Result<RoutedModel, IpcError> {
    Ok(engine.load_on_endpoint(&model).await?)
}

/// Unloads a model once its answers under way are done.
#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn unload_model(
    engine: State<'_, Engine>,
    model: String,
) -> Result<RoutedModel, IpcError> {
    Ok(engine.unload_on_endpoint(&model).await?)
}

/// Pins a model (the router never unloads it) or unpins it.
#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn pin_model(
    engine: State<'_, Engine>,
    model: String,
    pinned: bool,
) -> Result<RoutedModel, IpcError> {
    Ok(engine.pin_on_endpoint(&model, pinned).await?)
}

/// Sets (or, with `null`, removes) the key clients of the endpoint must send;
/// kept in a private file, never in the settings.
#[tauri::command]
#[instrument(skip_all, err(Debug))]
pub fn set_endpoint_api_key(
    engine: State<'_, Engine>,
    key: Option<String>,
) -> Result<(), IpcError> {
    Ok(engine.set_endpoint_api_key(key)?)
}

/// Whether the endpoint wants a key (the key itself never goes back to the window).
#[tauri::command]
#[instrument(skip_all)]
pub fn endpoint_api_key_set(engine: State<'_, Engine>) -> bool {
    engine.endpoint_api_key_is_set()
}
