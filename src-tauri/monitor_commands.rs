//! Resource Monitor commands: the orchestrator's status and its saved LLM state,
//! and the image server's load (busy, queue, sd pid). One engine call each.

use switchyard_engine::engine::{ImageServerStatus, OrchestratorStatus};
use switchyard_engine::llama::InstanceStatus;
use switchyard_engine::Engine;
use tauri::State;
use tracing::instrument;

use crate::ipc_error::IpcError;

/// Phase, policy, saved state and the prediction for the next default image.
#[tauri::command]
#[instrument(skip_all)]
pub fn orchestrator_status(engine: State<'_, Engine>) -> OrchestratorStatus {
    engine.orchestrator_status()
}

/// Forgets the saved LLM state (the person will start the servers by hand).
#[tauri::command]
#[instrument(skip_all)]
pub fn clear_saved_state(engine: State<'_, Engine>) {
    engine.orchestrator().clear_saved_state();
}

/// "Restart LLM": starts the saved servers as they ran, then clears the state.
#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn restart_saved_llm(engine: State<'_, Engine>) -> Result<Vec<InstanceStatus>, IpcError> {
    Ok(engine.restart_saved_llm().await?)
}

/// The running image server with its load, or `null` when stopped.
#[tauri::command]
#[instrument(skip_all)]
pub fn image_server_status(engine: State<'_, Engine>) -> Option<ImageServerStatus> {
    engine.image_server_status()
}
