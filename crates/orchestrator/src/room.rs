//! Who holds the LLM servers stopped: this process's image window and other
//! processes' images it made room for; one decision at a time, and the last holder
//! to leave starts the reload.

use super::*;

impl Orchestrator {
    /// Process `pid` is about to make an image needing this much memory: stops this
    /// process's servers when it would not fit beside them, by the same rule as for
    /// its own images. Whether they are stopped for it (also when they already
    /// were): then they stay stopped until it says it is done.
    pub async fn make_room(&self, pid: u32, image_ram: u64, image_vram: u64) -> Result<bool> {
        self.hold_room(RoomHolder::Process(pid), image_ram, image_vram)
            .await
    }

    /// Whether another process's image holds the servers stopped: a break in this
    /// process's window would not bring them back for the waiting chat.
    pub(super) fn held_for_other_processes(&self) -> bool {
        lock(&self.shared.state)
            .holders
            .iter()
            .any(|holder| matches!(holder, RoomHolder::Process(_)))
    }

    /// Whether this process's servers are stopped for process `pid`'s image.
    pub fn holds_room_for(&self, pid: u32) -> bool {
        lock(&self.shared.state)
            .holders
            .contains(&RoomHolder::Process(pid))
    }

    /// Process `pid`'s image is done: the servers come back (in the background)
    /// once nobody else needs them stopped. Said twice (by it, and by the watch on
    /// it), the second does nothing.
    pub fn room_no_longer_needed(&self, pid: u32) {
        self.release_room(RoomHolder::Process(pid));
    }

    /// Decides for `holder`'s image: offloads when the servers and an image of this
    /// size would pass the threshold. Whether the servers are stopped now (by this
    /// call or before it); then `holder` holds them stopped until it releases them.
    /// This process's window holds even when nothing was stopped, so that servers
    /// stopped meanwhile for another process do not come back beside its image.
    pub(super) async fn hold_room(
        &self,
        holder: RoomHolder,
        image_ram: u64,
        image_vram: u64,
    ) -> Result<bool> {
        let _one_decision = self.shared.deciding.lock().await;
        loop {
            // The LLM is on its way back: let it arrive (and answer the chat that
            // waited for it) rather than load the image beside it.
            let reload_over =
                !self.reload_pending() || self.wait_for_reload(self.reload_bound()).await;
            let already_stopped = {
                let mut state = lock(&self.shared.state);
                if reload_over && self.reload_pending() {
                    // The last holder left after the wait: wait for that reload too.
                    continue;
                }
                if holder == RoomHolder::OwnWindow {
                    state.holders.insert(holder);
                }
                let stopped = state.saved.is_some();
                if stopped {
                    // Offloaded for another image, or the reload failed: nothing of
                    // the LLM holds memory.
                    state.holders.insert(holder);
                }
                stopped
            };
            if already_stopped {
                return Ok(true);
            }
            break;
        }
        // Nothing is saved, and only an offload (under `deciding`, held here) saves.
        let prediction = self.would_need_offload(image_ram, image_vram);
        if !prediction.needs_offload {
            return Ok(false);
        }
        let reason = format!(
            "LLM and image together would use {:.0} % of {} (threshold {:.0} %)",
            prediction.projected_share * 100.0,
            if prediction.bottleneck_is_vram {
                "VRAM"
            } else {
                "RAM"
            },
            self.policy().threshold * 100.0
        );
        self.offload(reason, holder).await?;
        Ok(true)
    }

    /// `holder` no longer needs the servers stopped: the last one to leave starts
    /// the reload, in the background (an image is already with its caller).
    pub(super) fn release_room(&self, holder: RoomHolder) {
        let reload = {
            let mut state = lock(&self.shared.state);
            state.holders.remove(&holder)
                && state.holders.is_empty()
                && state.phase == OrchestratorPhase::Offloaded
                && state
                    .saved
                    .as_ref()
                    .is_some_and(|saved| saved.reload_error.is_none())
                // Decided under `state`, once: a second caller finds it pending.
                && !self.shared.reloading.send_replace(true)
        };
        if reload {
            let me = self.clone();
            tokio::spawn(async move { me.reload().await });
        }
    }
}
