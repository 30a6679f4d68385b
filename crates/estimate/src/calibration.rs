//! What llama-server really allocated, read from its startup lines (at `-lv 4`):
//!
//! ```text
//! load_tensors:   CPU_Mapped model buffer size =   105.53 MiB
//! llama_context:        CPU  output buffer size =     0.49 MiB
//! llama_kv_cache:      CUDA0 KV buffer size =    16.00 MiB
//! sched_reserve:   CUDA_Host compute buffer size =    17.27 MiB
//! ```
//!
//! A device may report several model and cache buffers, and each is memory of its
//! own: a model in several files has a model buffer per file, `CPU_REPACK` holds the
//! weights repacked for the CPU beside `CPU_Mapped`, a sliding-window model
//! (gemma3's iSWA) has a non-SWA and a SWA cache, a recurrent or hybrid model a state
//! buffer (`RS buffer size`). The compute and output buffers are sized again when
//! the scheduler reserves its graph again: the last size counts.
//!
//! Measurements are kept per model and configuration (`state/calibration.json`);
//! a later estimate for the same pair uses them instead of the formula. The app,
//! the daemon and benchmarks each keep a copy and each records into the file as it
//! is on disk, under an OS lock (`state/calibration.lock`), so none drops what
//! another measured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::llama::{Backend, Breakdown, EstimateSource, LlamaConfig, LlamaEstimate};
use switchyard_base::errors::{EngineError, Result};
use switchyard_base::fs_atomic;

const MIB: f64 = 1024.0 * 1024.0;

/// What the RSS once loaded holds beyond the runtime: the pages of the compute
/// buffer that llama.cpp's warm-up batch touched (measured: 1.5–2 MiB on the CPU
/// for every model of the estimator's real test). A measured runtime closer to the
/// formula than twice that is noise; a farther one (another backend's libraries, a
/// build the formula does not know) replaces it.
const RUNTIME_NOISE: u64 = 4 * 1024 * 1024;

/// Taken while the file is read, changed and written.
const LOCK_FILE: &str = "calibration.lock";

/// Buffers as llama-server reported them, split into RAM and VRAM, and what the
/// process used once loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[ts(export)]
pub struct MeasuredMemory {
    /// Model buffers (weights and output layer together), KV, compute and logits.
    pub ram: Breakdown,
    pub vram: Breakdown,
    /// Resident set of the process after loading.
    #[ts(type = "number | null")]
    pub rss_bytes: Option<u64>,
}

impl MeasuredMemory {
    pub fn is_empty(&self) -> bool {
        self.ram.total() == 0 && self.vram.total() == 0
    }

    /// The process's own runtime in RAM: its resident memory once loaded beyond the
    /// model, the caches and the logits, which loading wrote. (The compute buffer is
    /// left out: only the warm-up batch has touched a little of it by then, which
    /// this keeps, on the safe side.)
    pub fn runtime_bytes(&self) -> Option<u64> {
        let written = self
            .ram
            .weights
            .saturating_add(self.ram.kv_cache)
            .saturating_add(self.ram.overhead);
        self.rss_bytes?.checked_sub(written)
    }
}

/// Which buffer a line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Buffer {
    Model,
    Kv,
    Compute,
    Output,
}

const MARKERS: [(&str, Buffer); 5] = [
    (" model buffer size = ", Buffer::Model),
    (" KV buffer size = ", Buffer::Kv),
    // A recurrent model's state (Mamba, the recurrent layers of a hybrid): its cache.
    (" RS buffer size = ", Buffer::Kv),
    (" compute buffer size = ", Buffer::Compute),
    (" output buffer size = ", Buffer::Output),
];

/// Host memory: the CPU backend's buffers and pinned host buffers of a GPU backend.
fn is_ram(device: &str) -> bool {
    device.starts_with("CPU") || device.ends_with("_Host")
}

/// One buffer line: (buffer, device, bytes).
fn parse_line(line: &str) -> Option<(Buffer, String, u64)> {
    let (marker, buffer) = MARKERS.iter().find(|(marker, _)| line.contains(marker))?;
    let (before, after) = line.split_once(marker)?;
    let device = before.split_whitespace().last()?.to_owned();
    let mib: f64 = after.split_whitespace().next()?.parse().ok()?;
    if !after.contains("MiB") || !mib.is_finite() || mib < 0.0 {
        return None;
    }
    Some((*buffer, device, (mib * MIB).round() as u64))
}

/// Reads the buffer lines of a llama-server log: every model and cache buffer adds
/// up; of the compute and output buffers, the last size per device counts.
pub fn parse_llama_log(log: &str) -> MeasuredMemory {
    let mut sizes: BTreeMap<(Buffer, String), u64> = BTreeMap::new();
    for (buffer, device, bytes) in log.lines().filter_map(parse_line) {
        let size = sizes.entry((buffer, device)).or_default();
        match buffer {
            Buffer::Model | Buffer::Kv => *size += bytes,
            Buffer::Compute | Buffer::Output => *size = bytes,
        }
    }
    let mut measured = MeasuredMemory::default();
    for ((buffer, device), bytes) in sizes {
        let place = if is_ram(&device) {
            &mut measured.ram
        } else {
            &mut measured.vram
        };
        match buffer {
            Buffer::Model => place.weights += bytes,
            Buffer::Kv => place.kv_cache += bytes,
            Buffer::Compute => place.compute += bytes,
            Buffer::Output => place.overhead += bytes,
        }
    }
    measured
}

/// Replaces the formula's weights, KV cache and compute buffers with measured
/// ones, and its runtime with the measured runtime (the RSS once loaded beyond the
/// buffers loading wrote); what grows with use (a long prompt's work buffers, the
/// checkpoints and the prompt cache at their bounds) stays estimated. A part the
/// log did not show at all (a line llama-server words differently one day) keeps
/// the formula's figure: a partial reading never makes a model look smaller.
pub fn apply(estimate: &LlamaEstimate, measured: &MeasuredMemory) -> LlamaEstimate {
    let (estimated_parts, measured_parts) = (
        estimate.ram.plus(&estimate.vram),
        measured.ram.plus(&measured.vram),
    );
    let weights_seen =
        measured_parts.weights > 0 || estimated_parts.weights + estimated_parts.output_layer == 0;
    let kv_seen = measured_parts.kv_cache > 0 || estimated_parts.kv_cache == 0;
    let compute_seen = measured_parts.compute > 0 || estimated_parts.compute == 0;
    let merge = |estimated: &Breakdown, measured: &Breakdown| Breakdown {
        weights: if weights_seen {
            measured.weights
        } else {
            estimated.weights
        },
        output_layer: if weights_seen {
            0
        } else {
            estimated.output_layer
        },
        kv_cache: if kv_seen {
            measured.kv_cache
        } else {
            estimated.kv_cache
        },
        compute: if compute_seen {
            measured.compute
        } else {
            estimated.compute
        },
        overhead: estimated.overhead,
    };
    let mut ram = merge(&estimate.ram, &measured.ram);
    let mut runtime_bytes = estimate.runtime_bytes;
    let differs = |runtime: &u64| runtime.abs_diff(estimate.runtime_bytes) > RUNTIME_NOISE;
    if let Some(measured_runtime) = measured
        .runtime_bytes()
        .filter(|_| weights_seen && kv_seen)
        .filter(differs)
    {
        ram.overhead = ram
            .overhead
            .saturating_sub(estimate.runtime_bytes)
            .saturating_add(measured_runtime);
        runtime_bytes = measured_runtime;
    }
    LlamaEstimate {
        ram,
        vram: merge(&estimate.vram, &measured.vram),
        runtime_bytes,
        source: EstimateSource::Measured,
        ..estimate.clone()
    }
}

/// Generated tokens a run needs before its speed counts as measured: the first few
/// tokens include warm-up that a conversation does not see again.
pub const MIN_MEASURED_TOKENS: u32 = 16;

/// Generation speed as llama-server timed it (`timings.predicted_per_second`, or
/// its log's `eval time = … tokens per second`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct MeasuredSpeed {
    pub generation_tokens_per_second: f64,
    /// Tokens the timed run generated.
    pub generated_tokens: u32,
}

/// Measurements per model and configuration, kept across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Calibration {
    entries: BTreeMap<String, MeasuredMemory>,
    /// Generation speeds, by the same key; absent from files written before
    /// speeds were measured.
    #[serde(default)]
    speeds: BTreeMap<String, MeasuredSpeed>,
}

impl Calibration {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("calibration.json")
    }

    pub fn load(state_dir: &Path) -> Result<Self> {
        fs_atomic::read_json(&Self::path(state_dir))
    }

    pub fn save(&self, state_dir: &Path) -> Result<()> {
        fs_atomic::write_json(&Self::path(state_dir), self).map_err(|source| {
            EngineError::StorageUnavailable {
                path: state_dir.to_path_buf(),
                source,
            }
        })
    }

    /// Records a measurement into `state/calibration.json` as it is now, under an
    /// OS lock: another process may have recorded others since this copy was read,
    /// and saving this copy whole would drop them. Returns the file's new content
    /// (this copy, with what others recorded).
    pub fn record_shared(
        &self,
        state_dir: &Path,
        model_id: &str,
        config: &LlamaConfig,
        backend: Backend,
        measured: MeasuredMemory,
    ) -> Result<Self> {
        self.update_shared(state_dir, |next| {
            next.record(model_id, config, backend, measured);
        })
    }

    /// Reads `state/calibration.json` as it is now under the OS lock, applies
    /// `change` and saves it: what every recording into the shared file does.
    fn update_shared(&self, state_dir: &Path, change: impl FnOnce(&mut Self)) -> Result<Self> {
        let lock_path = state_dir.join(LOCK_FILE);
        let file = switchyard_base::locks::lock_file(&lock_path)?;
        file.lock()
            .map_err(|source| EngineError::writing(&lock_path, source))?;
        // A damaged file was kept aside by `load`; this copy replaces it.
        let mut next = Self::load(state_dir).unwrap_or_else(|_| self.clone());
        change(&mut next);
        next.save(state_dir)?;
        Ok(next)
    }

    /// Records a generation speed into `state/calibration.json` as it is now,
    /// under the same lock as [`Calibration::record_shared`].
    pub fn record_speed_shared(
        &self,
        state_dir: &Path,
        model_id: &str,
        config: &LlamaConfig,
        backend: Backend,
        measured: MeasuredSpeed,
    ) -> Result<Self> {
        self.update_shared(state_dir, |next| {
            next.record_speed(model_id, config, backend, measured);
        })
    }

    /// Keeps a run's generation speed when it timed enough tokens to mean
    /// something ([`MIN_MEASURED_TOKENS`]); the latest such run wins.
    pub fn record_speed(
        &mut self,
        model_id: &str,
        config: &LlamaConfig,
        backend: Backend,
        measured: MeasuredSpeed,
    ) {
        let timed = measured.generated_tokens >= MIN_MEASURED_TOKENS
            && measured.generation_tokens_per_second.is_finite()
            && measured.generation_tokens_per_second > 0.0;
        if timed {
            self.speeds
                .insert(Self::key(model_id, config, backend), measured);
        }
    }

    pub fn speed(
        &self,
        model_id: &str,
        config: &LlamaConfig,
        backend: Backend,
    ) -> Option<&MeasuredSpeed> {
        self.speeds.get(&Self::key(model_id, config, backend))
    }

    /// The key: the model and every setting that changes its memory.
    fn key(model_id: &str, config: &LlamaConfig, backend: Backend) -> String {
        let config = serde_json::to_string(config).unwrap_or_default();
        format!("{model_id}|{backend:?}|{config}")
    }

    pub fn record(
        &mut self,
        model_id: &str,
        config: &LlamaConfig,
        backend: Backend,
        measured: MeasuredMemory,
    ) {
        if !measured.is_empty() {
            self.entries
                .insert(Self::key(model_id, config, backend), measured);
        }
    }

    pub fn lookup(
        &self,
        model_id: &str,
        config: &LlamaConfig,
        backend: Backend,
    ) -> Option<&MeasuredMemory> {
        self.entries.get(&Self::key(model_id, config, backend))
    }

    /// The estimate for a model, measured where a measurement exists.
    pub fn refine(&self, model_id: &str, estimate: &LlamaEstimate) -> LlamaEstimate {
        match self.lookup(model_id, &estimate.config, estimate.backend) {
            Some(measured) => apply(estimate, measured),
            None => estimate.clone(),
        }
    }
}
