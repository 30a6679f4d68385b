//! What the tray's "Start/Stop Diffusion" entry does and says. A pure function of
//! the service state, the installed models and whether sd is set up, so it is tested
//! here; the shell only turns the answer into a menu item and a tooltip line.

use switchyard_base::services::ServiceState;
use switchyard_models::{InstalledModel, ModelKind};

/// What "Start/Stop Diffusion" would do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffusionAction {
    /// Start the image server with this installed model.
    Start {
        model_id: String,
    },
    Stop,
    /// Nothing to start with, or a stop under way; the label says why.
    Unavailable,
}

/// The tray's Diffusion entry and tooltip line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffusionControl {
    pub action: DiffusionAction,
    /// "Start Diffusion", "Stop Diffusion", "Start Diffusion (no diffusion model installed)".
    pub label: String,
    pub enabled: bool,
    /// "Images running on :8081", "Images stopped", …
    pub summary: String,
}

/// The first installed diffusion model: the earliest added (ties by id).
pub fn first_diffusion_model(models: &[InstalledModel]) -> Option<&InstalledModel> {
    models
        .iter()
        .filter(|model| model.kind == ModelKind::Diffusion)
        .min_by(|a, b| (a.added_at_ms, &a.id).cmp(&(b.added_at_ms, &b.id)))
}

/// Stop while the server runs (or starts); nothing while it stops; else start it
/// with the first installed diffusion model, once sd is set up. `port` is where a
/// running server listens.
pub fn diffusion_control(
    state: ServiceState,
    port: Option<u16>,
    models: &[InstalledModel],
    sd_ready: bool,
) -> DiffusionControl {
    let summary = match (state, port) {
        (ServiceState::Running, Some(port)) => format!("Images running on :{port}"),
        _ => format!("Images {}", state.label()),
    };
    if matches!(state, ServiceState::Running | ServiceState::Starting) {
        return DiffusionControl {
            action: DiffusionAction::Stop,
            label: "Stop Diffusion".into(),
            enabled: true,
            summary,
        };
    }
    if state == ServiceState::Stopping {
        return DiffusionControl {
            action: DiffusionAction::Unavailable,
            label: "Stopping Diffusion\u{2026}".into(),
            enabled: false,
            summary,
        };
    }
    let unavailable = |reason: &str| DiffusionControl {
        action: DiffusionAction::Unavailable,
        label: format!("Start Diffusion ({reason})"),
        enabled: false,
        summary: summary.clone(),
    };
    let Some(model) = first_diffusion_model(models) else {
        return unavailable("no diffusion model installed");
    };
    if !sd_ready {
        return unavailable("set up sd in the Diffusion tab");
    }
    DiffusionControl {
        action: DiffusionAction::Start {
            model_id: model.id.clone(),
        },
        label: "Start Diffusion".into(),
        enabled: true,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_models::ModelSource;

    fn model(id: &str, kind: ModelKind, added_at_ms: u64) -> InstalledModel {
        InstalledModel {
            id: id.into(),
            name: id.into(),
            kind,
            files: Vec::new(),
            source: ModelSource::Url,
            facts: None,
            added_at_ms,
        }
    }

    #[test]
    fn starts_with_the_first_installed_diffusion_model() {
        let models = [
            model("llama", ModelKind::Llm, 1),
            model("flux", ModelKind::Diffusion, 30),
            model("sdxs", ModelKind::Diffusion, 20),
        ];
        for state in [ServiceState::Stopped, ServiceState::Failed] {
            let control = diffusion_control(state, None, &models, true);
            assert_eq!(
                control.action,
                DiffusionAction::Start {
                    model_id: "sdxs".into()
                }
            );
            assert_eq!(control.label, "Start Diffusion");
            assert!(control.enabled);
        }
        let stopped = diffusion_control(ServiceState::Stopped, None, &models, true);
        assert_eq!(stopped.summary, "Images stopped");
    }

    #[test]
    fn stops_while_running_or_starting_whatever_is_installed() {
        let running = diffusion_control(ServiceState::Running, Some(8081), &[], false);
        assert_eq!(running.action, DiffusionAction::Stop);
        assert_eq!(running.label, "Stop Diffusion");
        assert!(running.enabled);
        assert_eq!(running.summary, "Images running on :8081");
        let starting = diffusion_control(ServiceState::Starting, None, &[], false);
        assert_eq!(starting.action, DiffusionAction::Stop);
    }

    #[test]
    fn waits_while_stopping() {
        let sdxs = [model("sdxs", ModelKind::Diffusion, 1)];
        let stopping = diffusion_control(ServiceState::Stopping, None, &sdxs, true);
        assert_eq!(stopping.action, DiffusionAction::Unavailable);
        assert_eq!(stopping.label, "Stopping Diffusion\u{2026}");
        assert!(!stopping.enabled);
        assert_eq!(stopping.summary, "Images stopping");
    }

    #[test]
    fn is_disabled_with_a_reason_without_a_model_or_sd() {
        let llm_only = [model("llama", ModelKind::Llm, 1)];
        let control = diffusion_control(ServiceState::Stopped, None, &llm_only, true);
        assert_eq!(control.action, DiffusionAction::Unavailable);
        assert_eq!(
            control.label,
            "Start Diffusion (no diffusion model installed)"
        );
        assert!(!control.enabled);

        let sdxs = [model("sdxs", ModelKind::Diffusion, 1)];
        let control = diffusion_control(ServiceState::Stopped, None, &sdxs, false);
        assert_eq!(
            control.label,
            "Start Diffusion (set up sd in the Diffusion tab)"
        );
        assert!(!control.enabled);
    }
}
