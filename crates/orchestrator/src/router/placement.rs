//! The arbiter's placement rule for a model about to load: the loaded models and
//! it must stay within the threshold's share of RAM (and of VRAM, for what goes on
//! the GPU) — the rule images are held to — and it must fit what is free now.
//! When it does not, loaded models are unloaded, idle ones first, least recently
//! used first; a pinned one never; a busy one once its answers are done.

use std::time::Duration;

use super::{Router, Slot};
use crate::{is_up, InstanceUsage, OrchestratorEvent};
use switchyard_base::errors::{EngineError, Result};
use switchyard_base::locks::lock;
use switchyard_estimate::Budget;
use switchyard_llama::InstanceStatus;

const MIB: u64 = 1024 * 1024;

/// A model holding memory, as placement sees it.
struct Loaded {
    status: InstanceStatus,
    pinned: bool,
    usage: InstanceUsage,
    busy: bool,
    last_used_ms: u64,
}

impl Router {
    /// Makes room for `instance` (called under the arbiter's lock). Returns what it
    /// needs (RAM, VRAM) and the models unloaded for it.
    pub(super) async fn make_room(&self, instance: &str) -> Result<(u64, u64, Vec<String>)> {
        let orchestrator = &self.shared.orchestrator;
        let threshold = orchestrator.policy().threshold;
        let sample = orchestrator.shared.memory.sample();
        let share = |total: u64| {
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let bytes = (total as f64 * threshold) as u64;
            bytes
        };
        let gpu_room = match self.policy().gpu_shortfall {
            super::GpuShortfall::Evict => share(sample.vram_total_bytes),
            // Only what the loaded models leave: the rest of the layers stay on the CPU.
            super::GpuShortfall::SplitWithCpu => {
                let used: u64 = self
                    .loaded(instance)
                    .iter()
                    .map(|l| l.usage.vram_bytes)
                    .sum();
                share(sample.vram_total_bytes)
                    .saturating_sub(used)
                    .min(sample.vram_free_bytes)
            }
        };
        let budget = Budget {
            ram_bytes: share(sample.ram_total_bytes),
            vram_bytes: gpu_room,
        };
        let need = self
            .shared
            .llama
            .planned_need(instance, budget)
            .await?
            .map_or((0, 0), |estimate| {
                (estimate.ram_bytes(), estimate.vram_bytes())
            });
        let mut evicted = Vec::new();
        loop {
            let sample = orchestrator.shared.memory.sample();
            let loaded = self.loaded(instance);
            let used_ram: u64 = loaded.iter().map(|l| l.usage.ram_bytes).sum();
            let used_vram: u64 = loaded.iter().map(|l| l.usage.vram_bytes).sum();
            let short_ram = (used_ram + need.0)
                .saturating_sub(share(sample.ram_total_bytes))
                .max(need.0.saturating_sub(sample.ram_free_bytes));
            let short_vram = if need.1 > 0 {
                (used_vram + need.1)
                    .saturating_sub(share(sample.vram_total_bytes))
                    .max(need.1.saturating_sub(sample.vram_free_bytes))
            } else {
                0
            };
            if short_ram == 0 && short_vram == 0 {
                return Ok((need.0, need.1, evicted));
            }
            let frees = |l: &&Loaded| {
                (short_ram > 0 && l.usage.ram_bytes > 0)
                    || (short_vram > 0 && l.usage.vram_bytes > 0)
            };
            let victim = loaded
                .iter()
                .filter(|l| !l.pinned && l.status.owned_by.is_none())
                .filter(frees)
                .min_by_key(|l| (l.busy, l.last_used_ms));
            let Some(victim) = victim else {
                return Err(no_room(instance, need, short_ram, short_vram, &loaded));
            };
            let name = victim.status.spec.name.clone();
            self.evict(&name, format!("to make room for `{instance}`"))
                .await?;
            evicted.push(name);
        }
    }

    /// The models holding memory now, `instance` left out.
    fn loaded(&self, instance: &str) -> Vec<Loaded> {
        let slots = lock(&self.shared.slots);
        self.shared
            .llama
            .list()
            .into_iter()
            .filter(|status| is_up(status.state) && status.spec.name != instance)
            .map(|status| {
                let slot = slots.get(&status.spec.name);
                Loaded {
                    pinned: Slot::pinned(slot, &status),
                    usage: InstanceUsage::of(&status),
                    busy: slot.is_some_and(|slot| slot.active > 0),
                    last_used_ms: slot.map_or(0, |slot| slot.last_used_ms),
                    status,
                }
            })
            .collect()
    }

    /// Unloads `instance` once no request is being answered by it (new ones wait
    /// for it to load again), waiting at most the eviction time. Called under the
    /// arbiter's lock.
    pub(super) async fn evict(&self, instance: &str, reason: String) -> Result<()> {
        let wait = Duration::from_millis(self.policy().eviction_wait_ms);
        self.evict_within(instance, reason, wait).await
    }

    /// Unloads `instance` if no request is being answered by it now; whether it did.
    pub(super) async fn evict_if_idle(&self, instance: &str, reason: String) -> Result<bool> {
        {
            let mut slots = lock(&self.shared.slots);
            let slot = slots.entry(instance.to_owned()).or_default();
            if slot.active > 0 || slot.evicting {
                return Ok(false);
            }
            // From here new requests wait for it to load again.
            slot.evicting = true;
        }
        self.evict_within(instance, reason, Duration::ZERO).await?;
        Ok(true)
    }

    async fn evict_within(&self, instance: &str, reason: String, wait: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + wait;
        lock(&self.shared.slots)
            .entry(instance.to_owned())
            .or_default()
            .evicting = true;
        let waited_out = loop {
            let changed = self.shared.slot_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let active = lock(&self.shared.slots)
                .get(instance)
                .map_or(0, |slot| slot.active);
            if active == 0 {
                break None;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break Some(active);
            }
        };
        if let Some(active) = waited_out {
            if let Some(slot) = lock(&self.shared.slots).get_mut(instance) {
                slot.evicting = false;
            }
            return Err(EngineError::TimedOut {
                what: format!(
                    "`{instance}` to finish its {active} answer(s) before it is unloaded ({reason})"
                ),
                seconds: wait.as_secs(),
            });
        }
        let before = self.shared.llama.status(instance).ok();
        let stopped = self.shared.llama.unload(instance).await;
        {
            let mut slots = lock(&self.shared.slots);
            let slot: &mut Slot = slots.entry(instance.to_owned()).or_default();
            slot.evicting = false;
            slot.loaded_by_router = false;
            slot.keep_alive = None;
        }
        self.shared.slot_changed.notify_waiters();
        stopped?;
        let usage = before
            .filter(|status| is_up(status.state))
            .map(|status| InstanceUsage::of(&status));
        self.shared
            .orchestrator
            .emit(OrchestratorEvent::ModelUnloaded {
                instance: instance.to_owned(),
                reason,
                ram_bytes: usage.as_ref().map_or(0, |usage| usage.ram_bytes),
                vram_bytes: usage.as_ref().map_or(0, |usage| usage.vram_bytes),
            });
        Ok(())
    }
}

/// `INSUFFICIENT_RESOURCES` naming what each loaded model holds and why it stays.
fn no_room(
    instance: &str,
    need: (u64, u64),
    short_ram: u64,
    short_vram: u64,
    loaded: &[Loaded],
) -> EngineError {
    let (resource, needed, short) = if short_vram > 0 {
        ("VRAM", need.1, short_vram)
    } else {
        ("RAM", need.0, short_ram)
    };
    let holders: Vec<String> = loaded
        .iter()
        .map(|l| {
            let held = if resource == "VRAM" {
                l.usage.vram_bytes
            } else {
                l.usage.ram_bytes
            };
            let why = if l.pinned {
                "pinned"
            } else if l.status.owned_by.is_some() {
                "run by another Switchyard process"
            } else {
                "evictable"
            };
            format!("`{}` holds {} MiB ({why})", l.status.spec.name, held / MIB)
        })
        .collect();
    let holders = if holders.is_empty() {
        "no other model is loaded".to_owned()
    } else {
        holders.join(", ")
    };
    EngineError::InsufficientResources {
        what: format!("model `{instance}` ({holders})"),
        resource: if resource == "VRAM" { "VRAM" } else { "RAM" },
        needed_mib: needed / MIB,
        available_mib: needed.saturating_sub(short) / MIB,
        suggestion: "Unpin or unload a model in Switchyard's Models tab, or choose a smaller model or context.".into(),
    }
}
