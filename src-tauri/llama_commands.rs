//! llama-server instance commands: one engine call each. Starts, stops and chats run
//! on the async runtime (`async`), where the engine's supervisors live; a chat's
//! pieces arrive as `llama_chat_delta` events while the call runs.

use switchyard_engine::estimate::{AutoFields, LlamaConfig, LlamaEstimate};
use switchyard_engine::llama::{
    ChatOutcome, ChatRequest, InstancePreview, InstanceSpec, InstanceStatus, LogLine,
};
use switchyard_engine::Engine;
use tauri::State;
use tracing::instrument;

use crate::ipc_error::IpcError;

#[tauri::command]
#[instrument(skip_all)]
pub fn list_instances(engine: State<'_, Engine>) -> Vec<InstanceStatus> {
    engine.llama().list()
}

#[tauri::command(async, rename_all = "snake_case")]
#[instrument(skip(engine), err(Debug))]
pub fn create_instance(
    engine: State<'_, Engine>,
    name: String,
    model_id: String,
) -> Result<InstanceStatus, IpcError> {
    Ok(engine.create_instance_for_model(&name, &model_id)?)
}

/// The span names the instance only: the spec holds its API key.
#[tauri::command(async)]
#[instrument(skip(engine, spec), fields(instance = %spec.name), err(Debug))]
pub fn update_instance(
    engine: State<'_, Engine>,
    spec: InstanceSpec,
) -> Result<InstanceStatus, IpcError> {
    Ok(engine.update_instance(spec)?)
}

#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn remove_instance(engine: State<'_, Engine>, name: String) -> Result<(), IpcError> {
    Ok(engine.llama().remove(&name).await?)
}

/// Resolves once the server is healthy, or with why it did not start.
#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn start_instance(
    engine: State<'_, Engine>,
    name: String,
) -> Result<InstanceStatus, IpcError> {
    Ok(engine.llama().start(&name).await?)
}

#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn stop_instance(
    engine: State<'_, Engine>,
    name: String,
) -> Result<InstanceStatus, IpcError> {
    Ok(engine.llama().stop(&name).await?)
}

#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn restart_instance(
    engine: State<'_, Engine>,
    name: String,
) -> Result<InstanceStatus, IpcError> {
    Ok(engine.llama().restart(&name).await?)
}

/// Lines with `seq >= since`, at most the last `limit`.
#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub fn instance_logs(
    engine: State<'_, Engine>,
    name: String,
    since: u64,
    limit: usize,
) -> Result<Vec<LogLine>, IpcError> {
    Ok(engine.llama().logs(&name, since, limit)?)
}

#[tauri::command]
#[instrument(skip(engine, request), err(Debug))]
pub async fn chat(
    engine: State<'_, Engine>,
    name: String,
    request: ChatRequest,
) -> Result<ChatOutcome, IpcError> {
    Ok(engine.llama().chat(&name, request).await?)
}

#[tauri::command(rename_all = "snake_case")]
#[instrument(skip(engine), err(Debug))]
pub async fn estimate_model(
    engine: State<'_, Engine>,
    model_id: String,
    config: LlamaConfig,
) -> Result<LlamaEstimate, IpcError> {
    Ok(engine.estimate_model(&model_id, &config).await?)
}

#[tauri::command(rename_all = "snake_case")]
#[instrument(skip(engine), err(Debug))]
pub async fn preview_instance(
    engine: State<'_, Engine>,
    model_id: String,
    config: LlamaConfig,
    auto: AutoFields,
) -> Result<InstancePreview, IpcError> {
    Ok(engine.preview_instance(&model_id, &config, auto).await?)
}
