//! Stopping the LLM servers for an image: hold new requests, let the answers under
//! way finish (the drain time), cut what is left, then stop and save each server
//! as it ran.

use super::*;

impl Orchestrator {
    /// Saves and stops every running server but the pinned ones, held stopped for
    /// `holder`.
    pub(super) async fn offload(&self, reason: String, holder: RoomHolder) -> Result<()> {
        // A pinned model is never unloaded, for an image either (the router's rule).
        let running: Vec<InstanceStatus> = self
            .running_instances()
            .into_iter()
            .filter(|status| !status.spec.pinned)
            .collect();
        let mut saved = Vec::new();
        let llama = &self.shared.llama;
        let decided = Instant::now();
        // Chat waits from here: the pause a client sees begins with the drain.
        let decided_at_ms = self.shared.clock.now_ms();
        for status in &running {
            // Clients' requests wait from here until the server is healthy again.
            llama.hold_requests(&status.spec.name);
        }
        // The requests being answered finish first (all servers drain at once).
        let drain_deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.policy().drain_ms);
        let cut_requests = futures_util::future::join_all(
            running
                .iter()
                .map(|status| llama.drain_requests(&status.spec.name, drain_deadline)),
        )
        .await
        .into_iter()
        .sum();
        let drain_ms = millis(decided.elapsed());
        let started = Instant::now();
        for status in running {
            let InstanceUsage {
                ram_bytes,
                vram_bytes,
                ..
            } = InstanceUsage::of(&status);
            let mut pinned = status.spec.clone();
            if let Some(running) = &status.running {
                // Back exactly as it ran: same port, same final configuration.
                pinned.port = Some(running.port);
                pinned.config = running.config.clone();
                pinned.threads = running.threads;
                pinned.auto = AutoFields {
                    gpu_layers: false,
                    context: false,
                };
            }
            if let Err(error) = self.shared.llama.pause(&status.spec.name).await {
                self.shared.llama.release_requests(&status.spec.name);
                return Err(error);
            }
            saved.push(SavedInstance {
                spec: status.spec,
                pinned,
                ram_bytes,
                vram_bytes,
            });
        }
        let names: Vec<String> = saved.iter().map(|s| s.spec.name.clone()).collect();
        let stop_ms = millis(started.elapsed());
        {
            let mut state = lock(&self.shared.state);
            state.phase = OrchestratorPhase::Offloaded;
            state.saved = Some(SavedState {
                instances: saved,
                offloaded_at_ms: decided_at_ms,
                reload_error: None,
            });
            state.holders.insert(holder);
        }
        self.emit(OrchestratorEvent::Offloaded {
            instances: names,
            reason,
            drain_ms,
            cut_requests,
            stop_ms,
        });
        Ok(())
    }
}
