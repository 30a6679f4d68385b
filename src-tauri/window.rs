//! Window behaviour: show and focus, close-to-tray, and a window that never leaves
//! the app.

use switchyard_engine::Engine;
use tauri::{AppHandle, Manager, Runtime, Url, Window, WindowEvent};
use tauri_plugin_opener::OpenerExt;

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

/// The window stays on the app's own pages: a link followed in it (one in a chat
/// answer, say) opens in the person's browser instead (http and https only), and
/// any other navigation is dropped. A page elsewhere in the window would have the
/// app's commands.
pub fn navigation_guard<R: Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri::plugin::Builder::new("navigation-guard")
        .on_navigation(|webview, url| {
            let app = webview.app_handle();
            let dev_url = app.config().build.dev_url.clone();
            let current = webview.url().ok();
            if is_app_page(url, dev_url.as_ref(), current.as_ref()) {
                return true;
            }
            if matches!(url.scheme(), "http" | "https") {
                if let Err(error) = app.opener().open_url(url.as_str(), None::<&str>) {
                    tracing::warn!(%error, "could not open a link in the browser");
                }
            } else {
                tracing::warn!(
                    scheme = url.scheme(),
                    "a navigation away from the app was dropped"
                );
            }
            false
        })
        .build()
}

/// The app's own pages: its scheme (`tauri://localhost`, `http://tauri.localhost`
/// on Windows), the development server while developing, the page it shows now.
fn is_app_page(url: &Url, dev_url: Option<&Url>, current: Option<&Url>) -> bool {
    let same_origin = |other: &Url| {
        matches!(other.scheme(), "http" | "https" | "tauri") && other.origin() == url.origin()
    };
    url.scheme() == "tauri"
        || (matches!(url.scheme(), "http" | "https") && url.host_str() == Some("tauri.localhost"))
        || dev_url.is_some_and(same_origin)
        || current.is_some_and(same_origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn the_window_stays_on_the_apps_pages() {
        let dev = url("http://localhost:1420/");
        let current = url("tauri://localhost/index.html");
        for own in [
            "tauri://localhost/",
            "tauri://localhost/#llm",
            "http://tauri.localhost/index.html",
            "http://localhost:1420/src/main.ts",
        ] {
            assert!(is_app_page(&url(own), Some(&dev), Some(&current)), "{own}");
        }
        for away in [
            "https://evil.example/",
            "http://localhost:8080/v1/models",
            "http://127.0.0.1:1420/",
            "file:///etc/passwd",
            "javascript:alert(1)",
        ] {
            assert!(
                !is_app_page(&url(away), Some(&dev), Some(&current)),
                "{away}"
            );
        }
        assert!(!is_app_page(
            &url("https://evil.example/"),
            None,
            Some(&url("about:blank"))
        ));
    }
}
