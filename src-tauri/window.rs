//! Window behaviour: show and focus, and close-to-tray.

use switchyard_engine::Engine;
use tauri::{AppHandle, Manager, Runtime, Window, WindowEvent};

pub const MAIN: &str = "main";

/// Brings the main window to the front (tray, second launch).
pub fn show<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN) {
        let shown = window
            .unminimize()
            .and_then(|()| window.show())
            .and_then(|()| window.set_focus());
        if let Err(error) = shown {
            tracing::warn!(%error, "could not show the window");
        }
    }
}

/// Closing the window hides it when "close to tray" is on; otherwise the app quits
/// (through the normal exit path, which stops the servers).
pub fn on_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    if let WindowEvent::CloseRequested { api, .. } = event {
        let keep_running = window
            .app_handle()
            .try_state::<Engine>()
            .is_some_and(|engine| engine.settings().close_to_tray && !engine.is_shutting_down());
        if keep_running {
            api.prevent_close();
            if let Err(error) = window.hide() {
                tracing::warn!(%error, "could not hide the window");
            }
        }
    }
}
