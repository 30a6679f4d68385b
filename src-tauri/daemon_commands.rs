//! The daemon the app is attached to: its instances, and starts, stops, logs and
//! reloads through it. One engine call each; changes arrive as `daemon_changed`.

use switchyard_engine::control::{AttachedDaemon, DaemonInstance, DaemonStatus};
use switchyard_engine::llama::{InstanceStatus, LogLine};
use switchyard_engine::Engine;
use tauri::State;
use tracing::instrument;

use crate::ipc_error::IpcError;

/// What the daemon of this data folder runs now, or `null` without one.
#[tauri::command]
#[instrument(skip_all)]
pub async fn attached_daemon(
    engine: State<'_, Engine>,
) -> Result<Option<AttachedDaemon>, IpcError> {
    Ok(engine.attached_daemon().await)
}

#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn daemon_instance(
    engine: State<'_, Engine>,
    name: String,
) -> Result<DaemonInstance, IpcError> {
    Ok(engine.daemon_instance(&name).await?)
}

/// Resolves once the daemon says the server is healthy.
#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn daemon_up(
    engine: State<'_, Engine>,
    name: String,
) -> Result<InstanceStatus, IpcError> {
    Ok(engine.daemon_up(&name).await?)
}

#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn daemon_down(
    engine: State<'_, Engine>,
    name: String,
) -> Result<InstanceStatus, IpcError> {
    Ok(engine.daemon_down(&name).await?)
}

#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn daemon_restart(
    engine: State<'_, Engine>,
    name: String,
) -> Result<InstanceStatus, IpcError> {
    Ok(engine.daemon_restart(&name).await?)
}

/// Lines with `seq >= since`, at most the last `limit`, from the daemon's ring.
#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn daemon_logs(
    engine: State<'_, Engine>,
    name: String,
    since: u64,
    limit: usize,
) -> Result<Vec<LogLine>, IpcError> {
    Ok(engine.daemon_logs(&name, since, limit).await?)
}

/// The daemon reads its instance files again.
#[tauri::command]
#[instrument(skip(engine), err(Debug))]
pub async fn daemon_reload(engine: State<'_, Engine>) -> Result<DaemonStatus, IpcError> {
    Ok(engine.daemon_reload().await?)
}
