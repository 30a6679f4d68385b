//! From what the person configured to what is launched: the model's header read
//! (shape, reasoning), the empty fields fitted to free memory, the resource check.

use std::path::Path;

use crate::binaries::Variant;
use crate::errors::Result;
use crate::estimate::{
    check_fits, estimate, fit, Backend, Budget, Calibration, LlamaEstimate, ModelShape,
};
use crate::gguf;

use super::args::LaunchPlan;
use super::spec::{InstanceSpec, ReasoningChoice};

/// The smallest context auto-configuration may shrink to.
const MIN_AUTO_CONTEXT: u32 = 2048;
/// The context when neither the person nor the model says.
const FALLBACK_CONTEXT: u32 = 4096;

/// A plan and what Switchyard knows about it.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub plan: LaunchPlan,
    pub estimate: Option<LlamaEstimate>,
    /// `None` for a user-supplied build (calibration is then keyed on the CPU).
    pub backend: Backend,
    pub notes: Vec<String>,
}

/// The backend a downloaded variant runs on; `None` when unknown (the person's
/// own build).
pub fn backend_of(variant: Option<Variant>) -> Option<Backend> {
    match variant? {
        Variant::Cuda => Some(Backend::Cuda),
        Variant::Vulkan => Some(Backend::Vulkan),
        Variant::Metal => Some(Backend::Metal),
        Variant::CpuAvx512 | Variant::CpuAvx2 | Variant::Cpu => Some(Backend::Cpu),
    }
}

pub struct Inputs<'a> {
    pub binary: &'a Path,
    pub backend: Option<Backend>,
    pub free: Budget,
    pub suggested_context: u32,
    pub calibration: &'a Calibration,
    pub port: u16,
}

pub async fn resolve(spec: &InstanceSpec, inputs: Inputs<'_>) -> Result<Resolved> {
    let mut notes = Vec::new();
    let mut config = spec.config.clone();
    let known_backend = inputs.backend;
    let backend = known_backend.unwrap_or(Backend::Cpu);
    let header = match gguf::read_local(&spec.model_path).await {
        Ok(header) => Some(header),
        Err(error) => {
            // llama-server is the authority on what it can load; its own message is
            // the one to show if it cannot.
            notes.push(format!(
                "Switchyard could not read the model's header ({error}); llama-server's own defaults apply."
            ));
            None
        }
    };
    let shape = header.as_ref().and_then(ModelShape::from_gguf);
    let reasoning = match spec.reasoning {
        ReasoningChoice::On => true,
        ReasoningChoice::Off => false,
        ReasoningChoice::Auto => header
            .as_ref()
            .is_some_and(super::reasoning::is_reasoning_model),
    };
    if reasoning && spec.reasoning == ReasoningChoice::Auto {
        notes.push("A reasoning model: its thinking is returned apart from the answer.".into());
    }
    if config.context == 0 {
        let trained = shape.as_ref().and_then(|shape| shape.trained_context);
        config.context = trained.map_or(FALLBACK_CONTEXT, |trained| {
            trained.min(inputs.suggested_context.max(MIN_AUTO_CONTEXT))
        });
    }
    let mut planned = None;
    if let Some(shape) = &shape {
        let budget = Budget {
            ram_bytes: inputs.free.ram_bytes,
            vram_bytes: if backend == Backend::Cpu {
                0
            } else {
                inputs.free.vram_bytes
            },
        };
        let auto = spec.auto;
        let estimate_now = if auto.gpu_layers || auto.context {
            let min_context = MIN_AUTO_CONTEXT.min(config.context);
            let plan = fit(shape, &config, backend, budget, auto, min_context)?;
            notes.extend(plan.notes);
            plan.estimate
        } else {
            estimate(shape, &config, backend)
        };
        config.context = estimate_now.config.context;
        config.gpu_layers = estimate_now.config.gpu_layers;
        config.cpu_moe_layers = estimate_now.config.cpu_moe_layers;
        let refined = inputs.calibration.refine(&spec.model_key(), &estimate_now);
        check_fits(shape, &refined, budget)?;
        planned = Some(refined);
    }
    let api_key_file = None;
    let plan = LaunchPlan {
        binary: inputs.binary.to_path_buf(),
        model_path: spec.model_path.clone(),
        mmproj_path: spec.mmproj_path.clone(),
        config,
        // A build of unknown backend fits GPU layers itself unless the person set them.
        pass_gpu_layers: !spec.auto.gpu_layers || known_backend.is_some(),
        threads: spec.threads,
        host: spec.host.clone(),
        port: inputs.port,
        api_key_file,
        api_key: spec.api_key.clone(),
        reasoning,
        extra_args: spec.extra_args.clone(),
    };
    Ok(Resolved {
        plan,
        estimate: planned,
        backend,
        notes,
    })
}
