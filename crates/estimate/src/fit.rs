//! Fitting a model into a memory budget: the most GPU layers that fit, routed
//! experts kept in RAM when the whole model does not fit the GPU, a smaller
//! context when even that is not enough, and the check before a start.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::llama::{estimate, Backend, LlamaConfig, LlamaEstimate};
use super::shape::ModelShape;
use switchyard_base::errors::{EngineError, Result};

const MIB: u64 = 1024 * 1024;
/// Contexts are tried in steps of llama.cpp's cell padding.
const CONTEXT_STEP: u32 = 256;

/// Memory a server may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Budget {
    #[ts(type = "number")]
    pub ram_bytes: u64,
    #[ts(type = "number")]
    pub vram_bytes: u64,
}

/// Which settings fitting may choose; the others stay as the person set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AutoFields {
    pub gpu_layers: bool,
    pub context: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct FitPlan {
    pub estimate: LlamaEstimate,
    /// What fitting changed, in words ("24 of 33 layers on the GPU").
    pub notes: Vec<String>,
}

fn fits(estimate: &LlamaEstimate, budget: Budget) -> bool {
    estimate.ram_bytes() <= budget.ram_bytes && estimate.vram_bytes() <= budget.vram_bytes
}

/// The most layers (of `layers + 1`) whose VRAM fits `vram_budget`; 0 when none.
pub fn max_gpu_layers(
    shape: &ModelShape,
    config: &LlamaConfig,
    backend: Backend,
    vram_budget: u64,
) -> u32 {
    let vram_with = |layers: u32| {
        let trial = LlamaConfig {
            gpu_layers: layers,
            ..config.clone()
        };
        estimate(shape, &trial, backend).vram_bytes()
    };
    // VRAM grows with every layer offloaded: binary search for the last that fits.
    let (mut low, mut high) = (0u32, shape.layers.saturating_add(1));
    if vram_with(high) <= vram_budget {
        return high;
    }
    while low < high {
        let middle = (low + high).div_ceil(2);
        if vram_with(middle) <= vram_budget {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    low
}

/// Chooses GPU layers (and, for MoE models, how many layers keep their experts in
/// RAM) and, if allowed, shrinks the context until the estimate fits `budget`.
pub fn fit(
    shape: &ModelShape,
    wanted: &LlamaConfig,
    backend: Backend,
    budget: Budget,
    auto: AutoFields,
    min_context: u32,
) -> Result<FitPlan> {
    let mut context = wanted.context;
    loop {
        let config = LlamaConfig {
            context,
            ..wanted.clone()
        };
        let (config, mut notes) = if auto.gpu_layers {
            place_layers(shape, config, backend, budget.vram_bytes)
        } else {
            (config, Vec::new())
        };
        let planned = estimate(shape, &config, backend);
        if fits(&planned, budget) {
            if context < wanted.context {
                notes.push(format!(
                    "Context reduced from {} to {} tokens to fit.",
                    wanted.context, context
                ));
            }
            return Ok(FitPlan {
                estimate: planned,
                notes,
            });
        }
        let smaller = (context / 2 / CONTEXT_STEP) * CONTEXT_STEP;
        if !auto.context || smaller < min_context.max(CONTEXT_STEP) {
            return Err(shortfall(shape, &planned, budget));
        }
        context = smaller;
    }
}

/// All layers on the GPU when they fit; else, for a mixture of experts, the
/// fewest layers' experts in RAM that make the rest fit; else as many layers as fit.
fn place_layers(
    shape: &ModelShape,
    config: LlamaConfig,
    backend: Backend,
    vram_budget: u64,
) -> (LlamaConfig, Vec<String>) {
    let all = shape.layers.saturating_add(1);
    if !matches!(backend, Backend::Cpu) {
        let everything = LlamaConfig {
            gpu_layers: all,
            ..config.clone()
        };
        if estimate(shape, &everything, backend).vram_bytes() <= vram_budget {
            return (everything, vec!["All layers on the GPU.".to_owned()]);
        }
        if shape.is_moe() {
            let fits_with = |n: u32| {
                let trial = LlamaConfig {
                    cpu_moe_layers: n,
                    ..everything.clone()
                };
                estimate(shape, &trial, backend).vram_bytes() <= vram_budget
            };
            let experts_in_ram = fewest_that_fit(shape.layers, fits_with);
            if let Some(n) = experts_in_ram {
                let note = format!(
                    "All layers on the GPU; the experts of the first {n} of {} layers stay in RAM.",
                    shape.layers
                );
                return (
                    LlamaConfig {
                        cpu_moe_layers: n,
                        ..everything
                    },
                    vec![note],
                );
            }
        }
    }
    let layers = max_gpu_layers(shape, &config, backend, vram_budget);
    let note = match (backend, layers) {
        (Backend::Cpu, _) => "Runs on the CPU.".to_owned(),
        (_, 0) => "Not even one layer fits the GPU: runs on the CPU.".to_owned(),
        (_, n) => format!("{n} of {all} layers on the GPU, the rest in RAM."),
    };
    (
        LlamaConfig {
            gpu_layers: layers,
            ..config
        },
        vec![note],
    )
}

/// The smallest `n` in `1..=most` for which `fits(n)` holds, given that once it
/// holds it holds for every larger `n` (more experts in RAM, less VRAM): a binary
/// search, so a model with many layers costs a few estimates, not one per layer.
fn fewest_that_fit(most: u32, fits: impl Fn(u32) -> bool) -> Option<u32> {
    if most == 0 || !fits(most) {
        return None;
    }
    let (mut low, mut high) = (1u32, most);
    while low < high {
        let middle = low + (high - low) / 2;
        if fits(middle) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    Some(low)
}

fn shortfall(shape: &ModelShape, planned: &LlamaEstimate, budget: Budget) -> EngineError {
    let vram_short =
        planned.vram_bytes() > budget.vram_bytes && planned.ram_bytes() <= budget.ram_bytes;
    let (resource, needed, available, suggestion) = if vram_short {
        (
            "VRAM",
            planned.vram_bytes(),
            budget.vram_bytes,
            "Put fewer layers on the GPU, use a smaller context or quantization, or stop what else uses the GPU.",
        )
    } else {
        (
            "RAM",
            planned.ram_bytes(),
            budget.ram_bytes,
            "Use a smaller context or a smaller quantization of the model, or close other programs.",
        )
    };
    EngineError::InsufficientResources {
        what: format!("This {} model", shape.architecture),
        resource,
        needed_mib: needed.div_ceil(MIB),
        available_mib: available / MIB,
        suggestion: suggestion.to_owned(),
    }
}

/// The check before a start: the estimate (measured values when known) against
/// what is free now.
pub fn check_fits(shape: &ModelShape, planned: &LlamaEstimate, free: Budget) -> Result<()> {
    if fits(planned, free) {
        Ok(())
    } else {
        Err(shortfall(shape, planned, free))
    }
}
