//! From what the person configured to what is launched: the model's header read
//! (shape, reasoning), the empty fields fitted to free memory, the resource check.

use std::path::Path;

use switchyard_base::errors::{EngineError, Result};
use switchyard_binaries::Variant;
use switchyard_estimate::{
    check_fits, estimate, fit, AutoFields, Backend, Budget, Calibration, EstimateSource,
    LlamaConfig, LlamaEstimate, ModelShape, NoShape,
};
use switchyard_gguf as gguf;

use super::args::{DraftPlan, LaunchPlan};
use super::spec::{InstanceSpec, ModelRole, ReasoningChoice};

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

/// What the machine offers a start: free memory now, and the context it suggests.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub free: Budget,
    pub suggested_context: u32,
}

/// The budget a backend may use: no VRAM for the CPU.
fn budget_for(backend: Backend, free: Budget) -> Budget {
    Budget {
        ram_bytes: free.ram_bytes,
        vram_bytes: if backend == Backend::Cpu {
            0
        } else {
            free.vram_bytes
        },
    }
}

/// Fills the fields left to Switchyard (a context of 0: the model's trained one,
/// capped by what the machine suggests; `auto` fields fitted to free memory) and
/// returns the estimate of the result (formula only; the caller refines it with
/// measurements). `config` becomes the final configuration.
pub fn plan_memory(
    shape: &ModelShape,
    config: &mut LlamaConfig,
    auto: AutoFields,
    backend: Backend,
    memory: Memory,
    notes: &mut Vec<String>,
) -> Result<LlamaEstimate> {
    if config.context == 0 {
        config.context = shape.trained_context.map_or(FALLBACK_CONTEXT, |trained| {
            trained.min(memory.suggested_context.max(MIN_AUTO_CONTEXT))
        });
    }
    let estimate_now = if auto.gpu_layers || auto.context {
        let min_context = MIN_AUTO_CONTEXT.min(config.context);
        let plan = fit(
            shape,
            config,
            backend,
            budget_for(backend, memory.free),
            auto,
            min_context,
        )?;
        notes.extend(plan.notes);
        plan.estimate
    } else {
        estimate(shape, config, backend)
    };
    config.context = estimate_now.config.context;
    config.gpu_layers = estimate_now.config.gpu_layers;
    config.cpu_moe_layers = estimate_now.config.cpu_moe_layers;
    Ok(estimate_now)
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
    let shape = match header.as_ref().map(ModelShape::from_gguf) {
        Some(Ok(shape)) => Some(shape),
        Some(Err(NoShape::Implausible(problem))) => {
            notes.push(format!(
                "Switchyard does not estimate this model's memory: {problem}; llama-server's own defaults apply."
            ));
            None
        }
        Some(Err(NoShape::NotALanguageModel)) | None => None,
    };
    let (role, pooling) = served_role(spec.role, header.as_ref());
    if spec.role == ModelRole::Auto && role != ModelRole::Chat {
        notes.push(format!(
            "An {} model (its file names a pooling type): served at /v1/{}.",
            if role == ModelRole::Reranking {
                "reranking"
            } else {
                "embedding"
            },
            if role == ModelRole::Reranking {
                "rerank"
            } else {
                "embeddings"
            },
        ));
    }
    let reasoning = role == ModelRole::Chat
        && match spec.reasoning {
            ReasoningChoice::On => true,
            ReasoningChoice::Off => false,
            ReasoningChoice::Auto => header
                .as_ref()
                .is_some_and(super::reasoning::is_reasoning_model),
        };
    if reasoning && spec.reasoning == ReasoningChoice::Auto {
        notes.push("A reasoning model: its thinking is returned apart from the answer.".into());
    }
    let draft = match &spec.draft {
        Some(draft) => Some(read_draft(spec, draft, header.as_ref()).await?),
        None => None,
    };
    let mut planned = None;
    if let Some(shape) = &shape {
        // The draft runs in the same process with the model's context and slots:
        // the model is fitted to what the draft leaves (at the context asked for),
        // then the draft is counted at the context chosen.
        let draft_first = draft.as_ref().and_then(|(_, draft_shape)| {
            let mut asked = config.clone();
            if asked.context == 0 {
                asked.context = shape.trained_context.unwrap_or(FALLBACK_CONTEXT);
            }
            draft_shape
                .as_ref()
                .map(|draft_shape| draft_estimate(draft_shape, &asked, backend, false))
        });
        let free_for_model = draft_first
            .as_ref()
            .map_or(inputs.free, |draft| leaves(inputs.free, draft));
        let mut refined = plan_memory(
            shape,
            &mut config,
            spec.auto,
            backend,
            Memory {
                free: free_for_model,
                suggested_context: inputs.suggested_context,
            },
            &mut notes,
        )
        .map(|estimate| {
            inputs
                .calibration
                .refine(&spec.measurement_key(), &estimate)
        })?;
        if role != ModelRole::Chat {
            // An embedding or reranking input is read in one micro-batch: as long as
            // the context, so every input that fits the context is answered.
            config.batch = config.batch.max(config.context);
            config.ubatch = config.ubatch.max(config.context);
            refined = inputs
                .calibration
                .refine(&spec.measurement_key(), &estimate(shape, &config, backend));
        }
        if let Some((_, Some(draft_shape))) = &draft {
            if refined.source == EstimateSource::Estimated {
                let all_on_gpu = config.gpu_layers > shape.layers;
                let counted = draft_estimate(draft_shape, &config, backend, all_on_gpu);
                refined.ram = refined.ram.plus(&counted.ram);
                refined.vram = refined.vram.plus(&counted.vram);
            }
        }
        check_fits(shape, &refined, budget_for(backend, inputs.free))?;
        planned = Some(refined);
    } else if config.context == 0 {
        config.context = FALLBACK_CONTEXT;
    }
    let draft = spec
        .draft
        .as_ref()
        .zip(draft)
        .map(|(asked, (_, draft_shape))| {
            let on_gpu = shape
                .as_ref()
                .is_some_and(|shape| config.gpu_layers > shape.layers);
            DraftPlan {
                model_path: asked.model_path.clone(),
                max_tokens: asked.max_tokens,
                min_tokens: asked.min_tokens,
                // With the model whole on the GPU the draft goes there too, else it
                // stays in RAM; a build of unknown backend places it itself.
                gpu_layers: known_backend.map(|_| match (&draft_shape, on_gpu) {
                    (Some(draft_shape), true) => draft_shape.layers + 1,
                    _ => 0,
                }),
            }
        });
    let api_key_file = None;
    let aliases = spec
        .model_id
        .iter()
        .chain(std::iter::once(&spec.name))
        .filter(|alias| !alias.is_empty() && !alias.contains(','))
        .cloned()
        .collect();
    let plan = LaunchPlan {
        aliases,
        binary: inputs.binary.to_path_buf(),
        model_path: spec.model_path.clone(),
        mmproj_path: spec.mmproj_path.clone(),
        config,
        // A build of unknown backend fits GPU layers itself unless the person set them.
        pass_gpu_layers: !spec.auto.gpu_layers || known_backend.is_some(),
        threads: spec.threads,
        // The server itself only ever listens on loopback: other machines (when
        // the person lets them) reach it through the endpoint, which is on `host`.
        host: super::LOOPBACK.to_owned(),
        port: inputs.port,
        api_key_file,
        reasoning,
        draft,
        role,
        pooling,
        slot_save_path: None,
        extra_args: spec.extra_args.clone(),
    };
    Ok(Resolved {
        plan,
        estimate: planned,
        backend,
        notes,
    })
}

/// What the server is for, and the pooling to ask for: the person's choice, else
/// the model's own pooling type (`<arch>.pooling_type`: 0 none, 1 mean, 2 cls,
/// 3 last, 4 rank). An embedding model that names none is pooled by the mean
/// (llama-server cannot answer `/v1/embeddings` without pooling).
fn served_role(
    asked: ModelRole,
    header: Option<&gguf::GgufFile>,
) -> (ModelRole, Option<&'static str>) {
    let pooling = header.and_then(|header| header.arch_u64("pooling_type"));
    let role = match asked {
        ModelRole::Auto => match pooling {
            Some(4) => ModelRole::Reranking,
            Some(1..=3) => ModelRole::Embedding,
            _ => ModelRole::Chat,
        },
        chosen => chosen,
    };
    let pooled = matches!(pooling, Some(1..=4));
    let pooling = (role == ModelRole::Embedding && !pooled).then_some("mean");
    (role, pooling)
}

/// The draft's header (checked against the model's vocabulary when both could
/// be read) and its shape, when Switchyard can estimate it.
async fn read_draft(
    spec: &InstanceSpec,
    draft: &crate::spec::DraftSpec,
    model_header: Option<&gguf::GgufFile>,
) -> Result<(gguf::GgufFile, Option<ModelShape>)> {
    let header =
        gguf::read_local(&draft.model_path)
            .await
            .map_err(|error| EngineError::InvalidInput {
                field: "draft",
                problem: format!(
                    "cannot read the draft model {}: {error}",
                    draft.model_path.display()
                ),
            })?;
    if let Some(why) =
        model_header.and_then(|model| crate::draft::vocabulary_mismatch(model, &header))
    {
        return Err(EngineError::InvalidInput {
            field: "draft",
            problem: format!(
                "{} cannot draft for {}: {why}. A draft must share its model's vocabulary (usually a smaller model of the same family)",
                draft.model_path.display(),
                spec.model_path.display()
            ),
        });
    }
    let shape = ModelShape::from_gguf(&header).ok();
    Ok((header, shape))
}

/// The draft at the model's context, slots and cache types; all its layers on the
/// GPU when the model's all are. Its process runtime is the model's, counted once.
fn draft_estimate(
    shape: &ModelShape,
    config: &LlamaConfig,
    backend: Backend,
    on_gpu: bool,
) -> LlamaEstimate {
    let config = LlamaConfig {
        gpu_layers: if on_gpu { shape.layers + 1 } else { 0 },
        cpu_moe_layers: 0,
        ..config.clone()
    };
    let mut draft = estimate(shape, &config, backend);
    draft.ram.overhead = draft.ram.overhead.saturating_sub(draft.runtime_bytes);
    draft
}

/// What `free` leaves once `taken` is counted.
fn leaves(free: Budget, taken: &LlamaEstimate) -> Budget {
    Budget {
        ram_bytes: free.ram_bytes.saturating_sub(taken.ram_bytes()),
        vram_bytes: free.vram_bytes.saturating_sub(taken.vram_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_base::errors::ErrorCode;
    use switchyard_testkit::gguf::LlamaSpec;

    const GIB: u64 = 1024 * 1024 * 1024;

    fn inputs<'a>(
        calibration: &'a Calibration,
        backend: Option<Backend>,
        free: Budget,
    ) -> Inputs<'a> {
        Inputs {
            binary: Path::new("/opt/llama/llama-server"),
            backend,
            free,
            suggested_context: 8192,
            calibration,
            port: 8080,
        }
    }

    fn plenty() -> Budget {
        Budget {
            ram_bytes: 8 * GIB,
            vram_bytes: 8 * GIB,
        }
    }

    #[tokio::test]
    async fn empty_fields_are_fitted_and_recorded_as_the_final_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        LlamaSpec::default().write_to(&model).unwrap();
        let mut spec = InstanceSpec::new("m", &model);
        spec.config.context = 0; // the person left it open
        let calibration = Calibration::default();

        let on_gpu = resolve(&spec, inputs(&calibration, Some(Backend::Cuda), plenty()))
            .await
            .unwrap();
        // Two layers plus the output layer, all on the GPU; the model's trained
        // context (2048) caps the machine's suggestion.
        assert_eq!(on_gpu.plan.config.gpu_layers, 3);
        assert!(on_gpu.plan.pass_gpu_layers);
        assert_eq!(on_gpu.plan.config.context, 2048);
        assert!(
            on_gpu
                .notes
                .iter()
                .any(|n| n.contains("All layers on the GPU")),
            "{:?}",
            on_gpu.notes
        );
        assert_eq!(on_gpu.estimate.unwrap().config.gpu_layers, 3);

        let own_build = resolve(&spec, inputs(&calibration, None, plenty()))
            .await
            .unwrap();
        assert!(
            !own_build.plan.pass_gpu_layers,
            "a build of unknown backend fits its GPU layers itself"
        );
    }

    #[tokio::test]
    async fn too_little_memory_is_refused_before_a_start() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        LlamaSpec::default().write_to(&model).unwrap();
        let spec = InstanceSpec::new("m", &model);
        let calibration = Calibration::default();
        let tiny = Budget {
            ram_bytes: 1024 * 1024,
            vram_bytes: 0,
        };
        let error = resolve(&spec, inputs(&calibration, Some(Backend::Cpu), tiny))
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::InsufficientResources);
    }

    #[tokio::test]
    async fn an_unreadable_model_is_left_to_llama_server() {
        let spec = InstanceSpec::new("m", "/nowhere/m.gguf");
        let calibration = Calibration::default();
        let resolved = resolve(&spec, inputs(&calibration, Some(Backend::Cpu), plenty()))
            .await
            .unwrap();
        assert_eq!(resolved.plan.config.context, FALLBACK_CONTEXT);
        assert!(resolved.estimate.is_none());
        assert!(
            resolved.notes[0].contains("llama-server's own defaults"),
            "{:?}",
            resolved.notes
        );
    }

    #[tokio::test]
    async fn the_role_comes_from_the_pooling_type_unless_the_person_chose() {
        let dir = tempfile::tempdir().unwrap();
        let header = |pooling: Option<u32>| {
            let path = dir.path().join(format!("m{pooling:?}.gguf"));
            match pooling {
                Some(kind) => LlamaSpec::default().write_pooled(&path, kind).unwrap(),
                None => LlamaSpec::default().write_to(&path).unwrap(),
            }
            path
        };
        let read = |path: std::path::PathBuf| async move { gguf::read_local(&path).await.unwrap() };
        let plain = read(header(None)).await;
        let mean = read(header(Some(1))).await;
        let rank = read(header(Some(4))).await;
        assert_eq!(
            served_role(ModelRole::Auto, Some(&plain)),
            (ModelRole::Chat, None)
        );
        assert_eq!(
            served_role(ModelRole::Auto, Some(&mean)),
            (ModelRole::Embedding, None)
        );
        assert_eq!(
            served_role(ModelRole::Auto, Some(&rank)),
            (ModelRole::Reranking, None)
        );
        assert_eq!(
            served_role(ModelRole::Embedding, Some(&plain)),
            (ModelRole::Embedding, Some("mean")),
            "a model that names no pooling is pooled by the mean"
        );
        assert_eq!(
            served_role(ModelRole::Chat, Some(&mean)),
            (ModelRole::Chat, None)
        );
    }
}
