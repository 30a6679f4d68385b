//! The tray icon: status in the tooltip, and a menu to show the window, start and
//! stop the services, and quit.

use switchyard_engine::llama::tooltip;
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

pub fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
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
            TOGGLE_DIFFUSION => toggle_diffusion(app),
            other => tracing::debug!(item = other, "unknown tray item"),
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
    refresh(app);
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

/// "Start/Stop Diffusion": the engine decides (see
/// `switchyard_engine::diffusion::control`); the outcome shows through events.
fn toggle_diffusion<R: Runtime>(app: &AppHandle<R>) {
    let Some(engine) = app.try_state::<Engine>() else {
        return;
    };
    let engine = engine.inner().clone();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        // A failed start leaves the status at Failed, which the window shows.
        if let Err(error) = engine.toggle_diffusion().await {
            tracing::warn!(%error, "tray: start/stop Diffusion failed");
        }
        refresh(&app);
    });
}

/// Puts the LLM's and the image server's state, as the engine decides them, into the
/// tooltip and the entries.
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let Some(engine) = app.try_state::<Engine>() else {
        return;
    };
    let llm = engine.llm_control();
    let diffusion = engine.diffusion_control();
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let text = format!("{}\n{}", tooltip(&llm), diffusion.summary);
        if let Err(error) = tray.set_tooltip(Some(text)) {
            tracing::debug!(%error, "tray tooltip not supported here");
        }
    }
    if let Some(items) = app.try_state::<ServiceItems<R>>() {
        let updated = items
            .llm
            .set_text(&llm.label)
            .and_then(|()| items.llm.set_enabled(llm.enabled));
        let updated = updated.and_then(|()| {
            items
                .diffusion
                .set_text(&diffusion.label)
                .and_then(|()| items.diffusion.set_enabled(diffusion.enabled))
        });
        if let Err(error) = updated {
            tracing::warn!(%error, "could not update the tray menu");
        }
    }
}
