//! What the next image would do to the LLM: the memory both would use against the
//! bottleneck, the pause chat would see, the answers it would wait for.

use super::*;

impl Orchestrator {
    /// Whether an image needing `image_ram`/`image_vram` would stop the LLM now.
    pub fn would_need_offload(&self, image_ram: u64, image_vram: u64) -> OffloadPrediction {
        let usage = self.llm_usage();
        let (llm_ram, llm_vram) = usage.iter().fold((0, 0), |sum, one| {
            (sum.0 + one.ram_bytes, sum.1 + one.vram_bytes)
        });
        let sample = self.shared.memory.sample();
        let bottleneck_is_vram = sample.vram_total_bytes > 0 && (llm_vram > 0 || image_vram > 0);
        let (used, total) = if bottleneck_is_vram {
            (llm_vram + image_vram, sample.vram_total_bytes)
        } else {
            (llm_ram + image_ram, sample.ram_total_bytes)
        };
        #[allow(clippy::cast_precision_loss)]
        let projected_share = if total == 0 {
            f64::INFINITY
        } else {
            used as f64 / total as f64
        };
        let needs_offload = !usage.is_empty() && projected_share > self.policy().threshold;
        let pause = lock(&self.shared.state)
            .last_pause
            .unwrap_or(Duration::from_secs(2));
        let answers_in_progress = if needs_offload {
            self.shared.llama.requests_in_flight()
        } else {
            0
        };
        #[allow(clippy::cast_precision_loss)]
        let drain_wait_secs = if answers_in_progress > 0 {
            self.policy().drain_ms as f64 / 1000.0
        } else {
            0.0
        };
        OffloadPrediction {
            needs_offload,
            projected_share,
            bottleneck_is_vram,
            predicted_pause_secs: if needs_offload {
                pause.as_secs_f64()
            } else {
                0.0
            },
            answers_in_progress,
            drain_wait_secs,
        }
    }

    /// What each LLM server holding memory now counts in the decision.
    pub fn llm_usage(&self) -> Vec<InstanceUsage> {
        self.running_instances()
            .iter()
            .map(InstanceUsage::of)
            .collect()
    }

    /// The LLM servers that hold memory now (also while starting or restarting).
    pub(super) fn running_instances(&self) -> Vec<InstanceStatus> {
        self.shared
            .llama
            .list()
            .into_iter()
            .filter(|status| is_up(status.state))
            .collect()
    }
}
