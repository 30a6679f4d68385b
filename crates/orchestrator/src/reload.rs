//! Bringing the saved servers back once nobody holds them stopped: wait for the
//! memory, start them as they ran, retry while memory or a port is not back, keep
//! the saved state (and say so) when it finally fails.

use super::*;

impl Orchestrator {
    /// Brings the saved servers back: waits for the memory, then starts them with
    /// retries; on final failure the saved state stays, with the error.
    pub(super) async fn reload(&self) {
        let Some(saved) = self.saved_state() else {
            self.shared.reloading.send_replace(false);
            return;
        };
        let policy = self.policy();
        let names: Vec<String> = saved
            .instances
            .iter()
            .map(|s| s.spec.name.clone())
            .collect();
        let (need_ram, need_vram) = saved
            .instances
            .iter()
            .fold((0, 0), |a, s| (a.0 + s.ram_bytes, a.1 + s.vram_bytes));
        let waiting_since = Instant::now();
        self.wait_for_memory(need_ram, need_vram, &policy).await;
        let memory_wait_ms = millis(waiting_since.elapsed());
        self.set_phase(OrchestratorPhase::Reloading);

        let began = Instant::now();

        let mut backoff = Duration::from_millis(policy.reload_backoff_ms);
        let mut last_error = None;
        for attempt in 1..=policy.reload_attempts.max(1) {
            self.emit(OrchestratorEvent::Reloading {
                instances: names.clone(),
                attempt,
            });
            match self.start_saved(&saved).await {
                Ok(()) => {
                    let paused_ms = self
                        .shared
                        .clock
                        .now_ms()
                        .saturating_sub(saved.offloaded_at_ms);
                    {
                        let mut state = lock(&self.shared.state);
                        state.saved = None;
                        state.phase = OrchestratorPhase::Idle;
                        state.last_pause = Some(Duration::from_millis(paused_ms));
                    }
                    self.shared.reloading.send_replace(false);
                    self.emit(OrchestratorEvent::Reloaded {
                        instances: names,
                        paused_ms,
                        memory_wait_ms,
                        start_ms: millis(began.elapsed()),
                    });
                    return;
                }
                Err(error) => {
                    let retry = error.code() == ErrorCode::InsufficientResources
                        || error.code() == ErrorCode::PortInUse;
                    last_error = Some(error.report());
                    if !retry {
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        let error = last_error.unwrap_or_else(|| ErrorReport {
            code: ErrorCode::Internal,
            message: "the reload did not run".into(),
            suggestion: String::new(),
        });
        {
            let mut state = lock(&self.shared.state);
            state.phase = OrchestratorPhase::ReloadFailed;
            if let Some(saved) = &mut state.saved {
                saved.reload_error = Some(error.clone());
            }
        }
        // Nobody brings them back now: waiting clients get the reason.
        for name in &names {
            self.shared.llama.release_requests(name);
        }
        self.shared.reloading.send_replace(false);
        self.emit(OrchestratorEvent::ReloadFailed {
            instances: names,
            error,
        });
    }

    /// Polls the fresh free memory until the servers fit again, or the deadline.
    pub(super) async fn wait_for_memory(&self, ram: u64, vram: u64, policy: &OrchestratorPolicy) {
        let deadline = Instant::now() + Duration::from_millis(policy.memory_wait_ms);
        loop {
            let sample = self.shared.memory.sample();
            let ram_ok = sample.ram_free_bytes >= ram;
            let vram_ok = vram == 0 || sample.vram_free_bytes >= vram;
            if (ram_ok && vram_ok) || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(policy.poll_ms.max(1))).await;
        }
    }

    pub(super) fn reload_pending(&self) -> bool {
        *self.shared.reloading.borrow()
    }

    /// The longest a reload can take: the memory wait and every attempt's backoff,
    /// plus a load per attempt.
    pub(super) fn reload_bound(&self) -> Duration {
        let policy = self.policy();
        let attempts = policy.reload_attempts.max(1);
        let backoff = policy
            .reload_backoff_ms
            .saturating_mul((1u64 << attempts.min(16)).saturating_sub(1));
        let loads = u64::from(attempts).saturating_mul(
            self.shared
                .llama
                .policy()
                .health
                .load_timeout
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
        );
        Duration::from_millis(
            policy
                .memory_wait_ms
                .saturating_add(backoff)
                .saturating_add(loads),
        )
    }

    /// After a reload, waits until the requests that waited for the LLM have been
    /// answered (at most `chat_turn_ms`), so a long image queue cannot starve chat.
    pub(super) async fn give_chat_its_turn(&self) {
        let policy = self.policy();
        let deadline = Instant::now() + Duration::from_millis(policy.chat_turn_ms);
        while self.shared.llama.requests_busy() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(policy.poll_ms.max(1))).await;
        }
    }

    pub(super) async fn start_saved(&self, saved: &SavedState) -> Result<()> {
        let llama = &self.shared.llama;
        for instance in &saved.instances {
            let name = &instance.spec.name;
            let up = llama.status(name).is_ok_and(|status| is_up(status.state));
            if up {
                continue;
            }
            llama.update(instance.pinned.clone())?;
            let started = llama.start(name).await;
            // The person's own specification applies again at the next start.
            llama.update(instance.spec.clone())?;
            started?;
        }
        Ok(())
    }
}
