//! The tray icon: status in the tooltip, and a menu to show the window, start and
//! stop the services, and quit.

use switchyard_engine::llama::tooltip;
use switchyard_engine::services::{EngineStatus, ServiceState};
use switchyard_engine::Engine;
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

const TRAY_ID: &str = "main";
const SHOW: &str = "show";
const TOGGLE_LLM: &str = "toggle-llm";
const TOGGLE_DIFFUSION: &str = "toggle-diffusion";
const QUIT: &str = "quit";

/// The service entries, kept so their labels can follow the status.
struct ServiceItems<R: Runtime> {
    llm: MenuItem<R>,
    diffusion: MenuItem<R>,
}

pub fn create<R: Runtime>(app: &AppHandle<R>, status: &EngineStatus) -> tauri::Result<()> {
    let llm = MenuItem::with_id(app, TOGGLE_LLM, "", false, None::<&str>)?;
    let diffusion = MenuItem::with_id(app, TOGGLE_DIFFUSION, "", false, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[
            &MenuItem::with_id(app, SHOW, "Show Switchyard", true, None::<&str>)?,
            &PredefinedMenuItem::separator(app)?,
            &llm,
            &diffusion,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(app, QUIT, "Quit Switchyard", true, None::<&str>)?,
        ],
    )?;
    app.manage(ServiceItems { llm, diffusion });
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(include_bytes!("../icons/tray.png"))?)
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id.as_ref() {
            SHOW => crate::window::show(app),
            QUIT => app.exit(0),
            TOGGLE_LLM => toggle_llm(app),
            // The image issue wires this one to the engine.
            other => tracing::debug!(item = other, "tray item not available yet"),
        })
        .on_tray_icon_event(|tray, event| {
            if let tauri::tray::TrayIconEvent::Click {
                button: tauri::tray::MouseButton::Left,
                button_state: tauri::tray::MouseButtonState::Up,
                ..
            } = event
            {
                crate::window::show(tray.app_handle());
            }
        })
        .build(app)?;
    show_status(app, status);
    Ok(())
}

/// "Start/Stop LLM": the engine decides what that means now (see
/// `switchyard_engine::llama::llm_control`); the outcome shows through events.
fn toggle_llm<R: Runtime>(app: &AppHandle<R>) {
    let Some(engine) = app.try_state::<Engine>() else {
        return;
    };
    let engine = engine.inner().clone();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Err(error) = engine.toggle_default_llm().await {
            tracing::warn!(%error, "tray: start/stop LLM failed");
        }
        refresh(&app);
    });
}

/// Redraws the tooltip and the service entries from the engine's state.
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    if let Some(engine) = app.try_state::<Engine>() {
        show_status(app, &engine.status());
    }
}

/// Puts the LLM's and the image server's state into the tooltip and the entries.
pub fn show_status<R: Runtime>(app: &AppHandle<R>, status: &EngineStatus) {
    let Some(engine) = app.try_state::<Engine>() else {
        return;
    };
    let llm = engine.llm_control();
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let text = format!("{}\nImages: {}", tooltip(&llm), status.diffusion.label());
        if let Err(error) = tray.set_tooltip(Some(text)) {
            tracing::debug!(%error, "tray tooltip not supported here");
        }
    }
    if let Some(items) = app.try_state::<ServiceItems<R>>() {
        let updated = items
            .llm
            .set_text(&llm.label)
            .and_then(|()| items.llm.set_enabled(llm.enabled));
        let verb = match status.diffusion {
            ServiceState::Running | ServiceState::Starting => "Stop",
            ServiceState::Stopped | ServiceState::Failed => "Start",
        };
        // Enabled once the image server exists (the image issue).
        let updated = updated.and_then(|()| {
            items
                .diffusion
                .set_text(format!("{verb} image server"))
                .and_then(|()| items.diffusion.set_enabled(false))
        });
        if let Err(error) = updated {
            tracing::warn!(%error, "could not update the tray menu");
        }
    }
}
