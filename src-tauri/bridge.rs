//! The one place engine events become window events (and tray updates).

use switchyard_engine::{Engine, EngineEvent};
use tauri::{AppHandle, Emitter, Runtime};
use tokio::sync::broadcast::error::RecvError;

/// The window listens on this name; the payload is an `EngineEvent`.
pub const EVENT_NAME: &str = "engine://event";

/// Forwards every engine event to the window until the engine shuts down.
pub fn spawn<R: Runtime>(app: AppHandle<R>, engine: &Engine) {
    let mut events = engine.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let EngineEvent::StatusChanged(status) = &event {
                        crate::tray::show_status(&app, status);
                    }
                    if let Err(error) = app.emit(EVENT_NAME, &event) {
                        tracing::warn!(%error, "could not forward an engine event");
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "the window missed engine events");
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}
