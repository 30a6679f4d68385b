//! Unloading models nobody asked for lately: each model the router loaded after
//! its idle time (the instance's, else the router's default), any model after the
//! `keep_alive` its last request gave — at once for 0.

use std::time::Duration;

use super::Router;
use switchyard_base::locks::lock;
use switchyard_llama::InstanceState;

/// Runs until the router closes: looks for idle models every `idle_check_ms`, and
/// whenever a request ends (a `keep_alive` of 0 unloads at once).
pub(super) async fn unload_idle_models(router: Router) {
    let closed = router.shared.closed.clone();
    loop {
        let tick = Duration::from_millis(router.policy().idle_check_ms.max(10));
        tokio::select! {
            () = closed.cancelled() => return,
            () = tokio::time::sleep(tick) => {}
            () = router.shared.slot_changed.notified() => {}
        }
        for instance in router.due_for_unload() {
            let _one_decision = router.shared.orchestrator.shared.deciding.lock().await;
            // Looked at again under the lock: a request may have come meanwhile.
            if router.due_for_unload().contains(&instance) {
                if let Err(error) = router.evict_if_idle(&instance, "idle".into()).await {
                    tracing::warn!(instance, %error, "cannot unload an idle model");
                }
            }
        }
    }
}

impl Router {
    /// The loaded models whose idle time has passed, with no request under way.
    fn due_for_unload(&self) -> Vec<String> {
        let now = self.shared.clock.now_ms();
        let statuses = self.shared.llama.list();
        let slots = lock(&self.shared.slots);
        statuses
            .iter()
            .filter(|status| status.state == InstanceState::Healthy && status.owned_by.is_none())
            .filter_map(|status| {
                let slot = slots.get(&status.spec.name)?;
                let limit = self.idle_limit_ms(status, slot)?;
                let due = slot.active == 0
                    && !slot.evicting
                    && now.saturating_sub(slot.last_used_ms) >= limit;
                due.then(|| status.spec.name.clone())
            })
            .collect()
    }
}
