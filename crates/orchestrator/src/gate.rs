//! The orchestrator as the image service's gate: it opens a window for a queue of
//! images (asking the daemon, if any, for room too), yields it to waiting chat when
//! it has lasted too long, and closes it.

use super::*;

impl GenerationGate for Orchestrator {
    fn open<'a>(&'a self, first: &'a GateRequest) -> BoxFuture<'a, Result<GateDecision>> {
        Box::pin(async move {
            if self.reload_pending() {
                // The LLM is on its way back (after a yielded window, say): let it
                // arrive before the chat that waited for it gets its turn.
                self.wait_for_reload(self.reload_bound()).await;
            }
            if std::mem::take(&mut lock(&self.shared.state).yielded) {
                self.give_chat_its_turn().await;
            }
            let (ram, vram) = (first.estimate.ram_bytes, first.estimate.vram_bytes);
            let made_room_elsewhere = self.ask_elsewhere_for_room(ram, vram).await;
            match self.hold_room(RoomHolder::OwnWindow, ram, vram).await {
                Ok(offloaded_here) => Ok(GateDecision {
                    release_after: offloaded_here || made_room_elsewhere,
                }),
                Err(error) => {
                    // No window after all, and `close` comes only after one.
                    self.close(&GateOutcome::default()).await;
                    Err(error)
                }
            }
        })
    }

    fn should_yield(&self) -> bool {
        let Some(saved) = self.saved_state() else {
            return false;
        };
        let window_ms = self
            .shared
            .clock
            .now_ms()
            .saturating_sub(saved.offloaded_at_ms);
        let waiting_requests = self.shared.llama.requests_waiting();
        let yielded = saved.reload_error.is_none()
            && waiting_requests > 0
            && window_ms >= self.policy().max_window_ms
            && !self.held_for_other_processes();
        if yielded {
            lock(&self.shared.state).yielded = true;
            self.emit(OrchestratorEvent::WindowYielded {
                window_ms,
                waiting_requests,
            });
        }
        yielded
    }

    fn close<'a>(&'a self, _outcome: &'a GateOutcome) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.release_room(RoomHolder::OwnWindow);
            let made_room = std::mem::take(&mut lock(&self.shared.state).room_made_elsewhere);
            if let Some(elsewhere) = self.servers_elsewhere().filter(|_| made_room) {
                elsewhere.room_no_longer_needed().await;
            }
        })
    }
}

impl Orchestrator {
    /// Asks the other process (if any) to stop its servers for this image; an
    /// unreachable one is said in the log and otherwise ignored (it may have just
    /// ended; its servers then ended with it).
    pub(super) async fn ask_elsewhere_for_room(&self, image_ram: u64, image_vram: u64) -> bool {
        let Some(elsewhere) = self.servers_elsewhere() else {
            return false;
        };
        let made = match elsewhere.make_room(image_ram, image_vram).await {
            Ok(made) => made,
            Err(error) => {
                tracing::warn!(problem = %error.message, "could not ask the other Switchyard process to make room for an image");
                false
            }
        };
        lock(&self.shared.state).room_made_elsewhere = made;
        made
    }
}
