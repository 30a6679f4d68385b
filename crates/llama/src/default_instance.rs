//! The "default" LLM the tray starts and stops, and what the tray says about it.
//! Pure functions of the instance list and the installed models, so they are tested
//! here; the shell only turns the answer into a menu item and a tooltip.

use super::state::{InstanceState, InstanceStatus};

/// The name of the instance the tray creates when there is none.
pub const DEFAULT_INSTANCE: &str = "default";

/// The instance named `default`, else the first one (instances are listed by name).
pub fn default_instance(instances: &[InstanceStatus]) -> Option<&InstanceStatus> {
    instances
        .iter()
        .find(|instance| instance.spec.name == DEFAULT_INSTANCE)
        .or_else(|| instances.first())
}

/// What "Start/Stop LLM" would do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmAction {
    /// Start this existing instance.
    Start(String),
    /// Stop this running (or starting, restarting …) instance.
    Stop(String),
    /// No instance yet: create `default` from this installed model, then start it.
    CreateAndStart { model_id: String },
    /// Nothing to run: no instance and no LLM model installed.
    Unavailable,
}

/// The tray's LLM entry and tooltip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmControl {
    pub action: LlmAction,
    /// The menu item's text ("Start LLM", "Stop LLM", "Start LLM (no model installed)").
    pub label: String,
    pub enabled: bool,
    /// One line for the tooltip: "LLM healthy on :8080", "LLM stopped", …
    pub summary: String,
}

/// Decides the tray's LLM entry from the instances and the first installed LLM
/// model (by id), if any.
pub fn llm_control(instances: &[InstanceStatus], first_llm_model: Option<&str>) -> LlmControl {
    match default_instance(instances) {
        Some(instance) => {
            let name = instance.spec.name.clone();
            let running = instance.state.is_active() && instance.state != InstanceState::Stopping;
            let (action, verb) = if running {
                (LlmAction::Stop(name), "Stop")
            } else {
                (LlmAction::Start(name), "Start")
            };
            // Another process (the daemon) runs it: a start here would be refused.
            if let (false, Some(owner)) = (running, &instance.owned_by) {
                return LlmControl {
                    label: format!(
                        "LLM ({}) run by {} (pid {})",
                        instance.spec.name,
                        owner.kind.describe(),
                        owner.pid
                    ),
                    enabled: false,
                    summary: format!("LLM run by {}", owner.kind.describe()),
                    action,
                };
            }
            LlmControl {
                label: format!("{verb} LLM ({})", instance.spec.name),
                // A stop in progress finishes by itself; nothing to do until then.
                enabled: instance.state != InstanceState::Stopping,
                summary: summary(instance),
                action,
            }
        }
        None => match first_llm_model {
            Some(model_id) => LlmControl {
                action: LlmAction::CreateAndStart {
                    model_id: model_id.to_owned(),
                },
                label: format!("Start LLM ({model_id})"),
                enabled: true,
                summary: "LLM not set up".to_owned(),
            },
            None => LlmControl {
                action: LlmAction::Unavailable,
                label: "Start LLM (no model installed)".to_owned(),
                enabled: false,
                summary: "LLM: no model installed".to_owned(),
            },
        },
    }
}

/// "LLM healthy on :8080", "LLM loading on :41234", "LLM stopped", "LLM failed".
fn summary(instance: &InstanceStatus) -> String {
    let state = state_word(instance.state);
    let port = instance.running.as_ref().map(|running| running.port);
    match port {
        Some(port) if instance.state.is_active() => format!("LLM {state} on :{port}"),
        _ => format!("LLM {state}"),
    }
}

pub fn state_word(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Stopped => "stopped",
        InstanceState::Starting => "starting",
        InstanceState::Loading => "loading",
        InstanceState::Healthy => "healthy",
        InstanceState::Unhealthy => "unhealthy",
        InstanceState::Crashed => "crashed",
        InstanceState::Restarting => "restarting",
        InstanceState::Failed => "failed",
        InstanceState::Stopping => "stopping",
    }
}

/// The whole tooltip: the app's name and the LLM line.
pub fn tooltip(control: &LlmControl) -> String {
    format!("Switchyard \u{2014} {}", control.summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RunningConfig;
    use crate::InstanceSpec;
    use switchyard_estimate::LlamaConfig;

    fn instance(name: &str, state: InstanceState, port: Option<u16>) -> InstanceStatus {
        let mut status = InstanceStatus::stopped(InstanceSpec::new(name, "/m.gguf"));
        status.state = state;
        status.running = port.map(|port| RunningConfig {
            config: LlamaConfig::default(),
            threads: None,
            host: "127.0.0.1".into(),
            port,
            reasoning: false,
            role: crate::ModelRole::Chat,
            args: Vec::new(),
            binary: String::new(),
            estimate: None,
            notes: Vec::new(),
        });
        status
    }

    #[test]
    fn the_instance_named_default_wins_over_the_first() {
        let list = [
            instance("alpha", InstanceState::Stopped, None),
            instance("default", InstanceState::Stopped, None),
        ];
        assert_eq!(
            default_instance(&list).map(|i| i.spec.name.as_str()),
            Some("default")
        );
        let list = [
            instance("alpha", InstanceState::Stopped, None),
            instance("beta", InstanceState::Stopped, None),
        ];
        assert_eq!(
            default_instance(&list).map(|i| i.spec.name.as_str()),
            Some("alpha")
        );
        assert!(default_instance(&[]).is_none());
    }

    #[test]
    fn a_healthy_default_is_stopped_and_named_in_the_tooltip() {
        let list = [instance("default", InstanceState::Healthy, Some(8080))];
        let control = llm_control(&list, Some("tiny"));
        assert_eq!(control.action, LlmAction::Stop("default".into()));
        assert_eq!(control.label, "Stop LLM (default)");
        assert!(control.enabled);
        assert_eq!(
            tooltip(&control),
            "Switchyard \u{2014} LLM healthy on :8080"
        );
    }

    #[test]
    fn a_stopped_or_failed_default_is_started() {
        for state in [InstanceState::Stopped, InstanceState::Failed] {
            let list = [instance("a", state, Some(9000))];
            let control = llm_control(&list, None);
            assert_eq!(control.action, LlmAction::Start("a".into()));
            assert!(control.enabled);
            assert_eq!(control.summary, format!("LLM {}", state_word(state)));
        }
    }

    #[test]
    fn loading_and_restarting_count_as_running_and_stopping_disables_the_item() {
        let control = llm_control(&[instance("a", InstanceState::Loading, Some(1234))], None);
        assert_eq!(control.action, LlmAction::Stop("a".into()));
        assert_eq!(control.summary, "LLM loading on :1234");
        let control = llm_control(&[instance("a", InstanceState::Restarting, None)], None);
        assert_eq!(control.action, LlmAction::Stop("a".into()));
        let control = llm_control(&[instance("a", InstanceState::Stopping, Some(1))], None);
        assert!(!control.enabled);
    }

    #[test]
    fn a_default_another_process_runs_is_not_offered_to_start() {
        use crate::{Owner, OwnerKind};
        let mut owned = instance("default", InstanceState::Stopped, None);
        owned.owned_by = Some(Owner {
            kind: OwnerKind::Daemon,
            pid: 4242,
        });
        let control = llm_control(&[owned], Some("tiny"));
        assert!(!control.enabled);
        assert_eq!(
            control.label,
            "LLM (default) run by the Switchyard daemon (pid 4242)"
        );
        assert_eq!(
            tooltip(&control),
            "Switchyard \u{2014} LLM run by the Switchyard daemon"
        );
    }

    #[test]
    fn without_instances_the_first_model_is_offered_or_the_item_says_why_not() {
        let control = llm_control(&[], Some("tiny-llama"));
        assert_eq!(
            control.action,
            LlmAction::CreateAndStart {
                model_id: "tiny-llama".into()
            }
        );
        assert!(control.enabled);
        let control = llm_control(&[], None);
        assert_eq!(control.action, LlmAction::Unavailable);
        assert!(!control.enabled);
        assert_eq!(control.label, "Start LLM (no model installed)");
        assert_eq!(
            tooltip(&control),
            "Switchyard \u{2014} LLM: no model installed"
        );
    }
}
