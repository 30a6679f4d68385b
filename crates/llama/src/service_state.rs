//! The LLM service's state (what the header and the tray show) from its instances'.

use switchyard_base::services::ServiceState;

/// The LLM service as the header and the tray see it, from the instances' states:
/// running when one serves, starting while one comes up, stopping while one ends,
/// failed when one gave up or crashed (and none serves), else stopped.
pub fn llm_service_state(states: impl IntoIterator<Item = crate::InstanceState>) -> ServiceState {
    use crate::InstanceState as S;
    let states: Vec<S> = states.into_iter().collect();
    if states
        .iter()
        .any(|s| matches!(s, S::Healthy | S::Unhealthy))
    {
        ServiceState::Running
    } else if states
        .iter()
        .any(|s| matches!(s, S::Starting | S::Loading | S::Restarting))
    {
        ServiceState::Starting
    } else if states.contains(&S::Stopping) {
        ServiceState::Stopping
    } else if states.iter().any(|s| matches!(s, S::Failed | S::Crashed)) {
        ServiceState::Failed
    } else {
        ServiceState::Stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InstanceState as S;

    #[test]
    fn the_llm_service_follows_its_liveliest_instance() {
        assert_eq!(llm_service_state([]), ServiceState::Stopped);
        assert_eq!(
            llm_service_state([S::Stopped, S::Healthy, S::Failed]),
            ServiceState::Running
        );
        assert_eq!(
            llm_service_state([S::Stopped, S::Loading]),
            ServiceState::Starting
        );
        assert_eq!(
            llm_service_state([S::Stopped, S::Crashed]),
            ServiceState::Failed
        );
        assert_eq!(
            llm_service_state([S::Failed, S::Stopping]),
            ServiceState::Stopping
        );
        assert_eq!(
            llm_service_state([S::Stopping, S::Restarting]),
            ServiceState::Starting
        );
    }
}
