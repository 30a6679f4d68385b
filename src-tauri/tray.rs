//! The tray icon: status in the tooltip, and a menu to show the window, start and
//! stop the services, and quit.

use switchyard_engine::binaries::BinaryKind;
use switchyard_engine::engine::ImageServerConfig;
use switchyard_engine::models::{InstalledModel, ModelKind};
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
            TOGGLE_DIFFUSION => toggle_diffusion(app),
            // The LLM issue wires this one to the engine.
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
    refresh(app);
    Ok(())
}

/// What the Diffusion entry does when clicked now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DiffusionAction {
    /// Start the image server with this installed model.
    Start {
        model_id: String,
    },
    Stop,
    /// Nothing to start with; the reason goes into the label.
    Unavailable {
        reason: &'static str,
    },
}

/// Stop while it runs (or starts); else start with the first installed diffusion
/// model, once sd is set up.
fn diffusion_action(
    state: ServiceState,
    models: &[InstalledModel],
    sd_ready: bool,
) -> DiffusionAction {
    if matches!(state, ServiceState::Running | ServiceState::Starting) {
        return DiffusionAction::Stop;
    }
    let Some(model) = models
        .iter()
        .find(|model| model.kind == ModelKind::Diffusion)
    else {
        return DiffusionAction::Unavailable {
            reason: "no diffusion model installed",
        };
    };
    if !sd_ready {
        return DiffusionAction::Unavailable {
            reason: "set up sd in the Diffusion tab",
        };
    }
    DiffusionAction::Start {
        model_id: model.id.clone(),
    }
}

/// The entry's label and whether it can be clicked.
fn diffusion_entry(action: &DiffusionAction) -> (String, bool) {
    match action {
        DiffusionAction::Start { .. } => ("Start Diffusion".into(), true),
        DiffusionAction::Stop => ("Stop Diffusion".into(), true),
        DiffusionAction::Unavailable { reason } => (format!("Start Diffusion ({reason})"), false),
    }
}

fn current_diffusion_action(engine: &Engine) -> DiffusionAction {
    diffusion_action(
        engine.status().diffusion,
        &engine.models().models(),
        engine.binary_status(BinaryKind::Diffusion).is_some(),
    )
}

/// Decided again at the click (the menu may be older than the engine's state).
fn toggle_diffusion<R: Runtime>(app: &AppHandle<R>) {
    let Some(engine) = app
        .try_state::<Engine>()
        .map(|engine| engine.inner().clone())
    else {
        return;
    };
    let action = current_diffusion_action(&engine);
    tauri::async_runtime::spawn(async move {
        match action {
            DiffusionAction::Start { model_id } => {
                let config = ImageServerConfig {
                    model_id: Some(model_id),
                    ..ImageServerConfig::default()
                };
                // The status goes to Failed and the window shows it; the log keeps why.
                if let Err(error) = engine.start_image_server(config).await {
                    tracing::warn!(%error, "the tray could not start the image server");
                }
            }
            DiffusionAction::Stop => engine.stop_image_server().await,
            DiffusionAction::Unavailable { reason } => {
                tracing::debug!(reason, "nothing to start the image server with");
            }
        }
    });
}

/// Puts the engine's status into the tooltip and the service entries. Called when
/// the status, the models, the settings or a binary change.
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let Some(engine) = app.try_state::<Engine>() else {
        return;
    };
    let status: EngineStatus = engine.status();
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let tooltip = format!("Switchyard\n{}", status.summary());
        if let Err(error) = tray.set_tooltip(Some(tooltip)) {
            tracing::debug!(%error, "tray tooltip not supported here");
        }
    }
    let Some(items) = app.try_state::<ServiceItems<R>>() else {
        return;
    };
    let llm_verb = match status.llm {
        ServiceState::Running | ServiceState::Starting => "Stop",
        ServiceState::Stopped | ServiceState::Failed => "Start",
    };
    let (diffusion_label, diffusion_enabled) = diffusion_entry(&current_diffusion_action(&engine));
    let updated = items
        .llm
        .set_text(format!("{llm_verb} LLM"))
        // Enabled once the LLM issue wires it to the engine.
        .and_then(|()| items.llm.set_enabled(false))
        .and_then(|()| items.diffusion.set_text(diffusion_label))
        .and_then(|()| items.diffusion.set_enabled(diffusion_enabled));
    if let Err(error) = updated {
        tracing::warn!(%error, "could not update the tray menu");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_engine::models::ModelSource;

    fn model(id: &str, kind: ModelKind) -> InstalledModel {
        InstalledModel {
            id: id.into(),
            name: id.into(),
            kind,
            files: Vec::new(),
            source: ModelSource::Url,
            facts: None,
            added_at_ms: 0,
        }
    }

    #[test]
    fn starts_with_the_first_installed_diffusion_model() {
        let models = [
            model("llama", ModelKind::Llm),
            model("sdxs", ModelKind::Diffusion),
            model("flux", ModelKind::Diffusion),
        ];
        for state in [ServiceState::Stopped, ServiceState::Failed] {
            let action = diffusion_action(state, &models, true);
            assert_eq!(
                action,
                DiffusionAction::Start {
                    model_id: "sdxs".into()
                }
            );
            assert_eq!(diffusion_entry(&action), ("Start Diffusion".into(), true));
        }
    }

    #[test]
    fn stops_while_running_or_starting_whatever_is_installed() {
        for state in [ServiceState::Running, ServiceState::Starting] {
            let action = diffusion_action(state, &[], false);
            assert_eq!(action, DiffusionAction::Stop);
            assert_eq!(diffusion_entry(&action), ("Stop Diffusion".into(), true));
        }
    }

    #[test]
    fn is_disabled_with_a_reason_without_a_model_or_sd() {
        let llm_only = [model("llama", ModelKind::Llm)];
        let (label, enabled) =
            diffusion_entry(&diffusion_action(ServiceState::Stopped, &llm_only, true));
        assert_eq!(label, "Start Diffusion (no diffusion model installed)");
        assert!(!enabled);

        let sdxs = [model("sdxs", ModelKind::Diffusion)];
        let (label, enabled) =
            diffusion_entry(&diffusion_action(ServiceState::Stopped, &sdxs, false));
        assert_eq!(label, "Start Diffusion (set up sd in the Diffusion tab)");
        assert!(!enabled);
    }
}
