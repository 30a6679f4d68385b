//! The tray icon: status in the tooltip, and a menu to show the window, start and
//! stop the services, and quit.

use switchyard_engine::services::{EngineStatus, ServiceKind, ServiceState};
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
            // The LLM and image issues wire these to the engine.
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

/// Puts the engine's status into the tooltip and the service entries.
pub fn show_status<R: Runtime>(app: &AppHandle<R>, status: &EngineStatus) {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let tooltip = format!("Switchyard\n{}", status.summary());
        if let Err(error) = tray.set_tooltip(Some(tooltip)) {
            tracing::debug!(%error, "tray tooltip not supported here");
        }
    }
    if let Some(items) = app.try_state::<ServiceItems<R>>() {
        for (item, kind) in [
            (&items.llm, ServiceKind::Llm),
            (&items.diffusion, ServiceKind::Diffusion),
        ] {
            let state = status.state(kind);
            let verb = match state {
                ServiceState::Running | ServiceState::Starting => "Stop",
                ServiceState::Stopped | ServiceState::Failed => "Start",
            };
            let label = match kind {
                ServiceKind::Llm => format!("{verb} LLM"),
                ServiceKind::Diffusion => format!("{verb} image server"),
            };
            // Enabled once the service has something to run (LLM and image issues).
            if let Err(error) = item.set_text(label).and_then(|()| item.set_enabled(false)) {
                tracing::warn!(%error, "could not update the tray menu");
            }
        }
    }
}
