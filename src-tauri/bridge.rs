//! The one place engine events become window events (and tray updates). It only
//! forwards: every event, the status included, is the engine's own.

use switchyard_engine::{Engine, EngineEvent};
use tauri::{AppHandle, Emitter, Manager, Runtime};
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
                    match &event {
                        // The tray's entries follow the status, the installed models,
                        // the settings (the user's own sd) and binary setups.
                        EngineEvent::StatusChanged(_)
                        | EngineEvent::ModelsChanged { .. }
                        | EngineEvent::SettingsChanged(_)
                        | EngineEvent::BinaryLog(_) => crate::tray::refresh(&app),
                        // The tray's LLM entry follows the default instance and
                        // whether a model exists to create one from. (The header's
                        // chips follow `StatusChanged`, which the engine sends.)
                        EngineEvent::LlamaState(_) | EngineEvent::LlamaInstances { .. } => {
                            crate::tray::refresh(&app);
                        }
                        _ => {}
                    }
                    // A hidden window has no use for live figures; skipping them lets
                    // the web view sleep while Switchyard sits in the tray.
                    if matches!(event, EngineEvent::SystemSample(_)) && !window_visible(&app) {
                        continue;
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

fn window_visible<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.get_webview_window(crate::window::MAIN)
        .is_some_and(|window| window.is_visible().unwrap_or(true))
}
