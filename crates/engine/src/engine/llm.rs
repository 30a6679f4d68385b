//! The LLM side of the engine: sizing a model for this machine, the instances made
//! from installed models, the tray's LLM switch, and what a run measured.

use super::Engine;
use crate::binaries::BinaryKind;
use crate::errors::{EngineError, Result};
use crate::estimate::Budget;
use crate::llama::{
    llm_control, InstancePreview, InstanceSpec, InstanceStatus, LlmAction, LlmControl,
    DEFAULT_INSTANCE,
};
use crate::models;

impl Engine {
    /// The memory an installed model needs under `config`, measured where
    /// llama-server already reported it for this model and configuration.
    pub async fn estimate_model(
        &self,
        model_id: &str,
        config: &crate::estimate::LlamaConfig,
    ) -> Result<crate::estimate::LlamaEstimate> {
        let shape = self.model_shape(model_id).await?;
        let planned = crate::estimate::estimate(&shape, config, self.llama_backend());
        Ok(self.llama().calibration().refine(model_id, &planned))
    }

    /// What an instance of an installed model with `config` would run with if
    /// started now: the `auto` fields (and a context of 0) fitted to free memory as
    /// a start would fit them, the estimate of the result, and the reason it would
    /// not start (`INSUFFICIENT_RESOURCES`), if so. The LLM tab shows this live.
    pub async fn preview_instance(
        &self,
        model_id: &str,
        config: &crate::estimate::LlamaConfig,
        auto: crate::estimate::AutoFields,
    ) -> Result<InstancePreview> {
        use crate::estimate::{check_fits, estimate};
        use crate::llama::{plan_memory, Memory};
        let shape = self.model_shape(model_id).await?;
        let backend = self.llama_backend();
        let engine = self.clone();
        let (memory, bandwidth) = tokio::task::spawn_blocking(move || {
            let system = engine.system_info();
            let memory = Memory {
                free: engine.free_budget(),
                suggested_context: system.recommendation.suggested_context,
            };
            (memory, crate::system::machine_bandwidth(&system))
        })
        .await
        .map_err(|error| EngineError::Internal {
            problem: format!("reading free memory: {error}"),
        })?;
        let calibration = self.llama().calibration();
        let mut final_config = config.clone();
        let mut notes = Vec::new();
        let fitted = plan_memory(&shape, &mut final_config, auto, backend, memory, &mut notes);
        let (estimate, problem) = match fitted {
            Ok(planned) => {
                let refined = calibration.refine(model_id, &planned);
                let budget = crate::estimate::Budget {
                    ram_bytes: memory.free.ram_bytes,
                    vram_bytes: if backend == crate::estimate::Backend::Cpu {
                        0
                    } else {
                        memory.free.vram_bytes
                    },
                };
                let problem = check_fits(&shape, &refined, budget)
                    .err()
                    .map(|error| error.report());
                (refined, problem)
            }
            // Nothing fits: show what was asked for, and why it cannot start.
            Err(error) => {
                let asked = estimate(&shape, &final_config, backend);
                (calibration.refine(model_id, &asked), Some(error.report()))
            }
        };
        let speed = crate::estimate::speed::speed_estimate(
            &calibration,
            model_id,
            &shape,
            &estimate,
            bandwidth,
        );
        Ok(InstancePreview {
            speed,
            estimate,
            notes,
            problem,
            free_ram_bytes: memory.free.ram_bytes,
            free_vram_bytes: memory.free.vram_bytes,
        })
    }

    /// An installed model by id; `field` names the input in the error.
    fn installed_model(
        &self,
        model_id: &str,
        field: &'static str,
    ) -> Result<models::InstalledModel> {
        self.models()
            .models()
            .into_iter()
            .find(|model| model.id == model_id)
            .ok_or_else(|| EngineError::InvalidInput {
                field,
                problem: format!("no installed model `{model_id}`"),
            })
    }

    /// The shape of an installed language model, from its weights' header.
    async fn model_shape(&self, model_id: &str) -> Result<crate::estimate::ModelShape> {
        let model = self.installed_model(model_id, "model")?;
        let first = model
            .files
            .iter()
            .find(|file| file.role == models::FileRole::Weights)
            .or_else(|| model.files.first())
            .ok_or_else(|| EngineError::InvalidInput {
                field: "model",
                problem: format!("`{model_id}` has no files"),
            })?;
        let path = self.models().model_dir(model_id).join(&first.file_name);
        let header = crate::gguf::read_local(&path).await?;
        crate::estimate::ModelShape::from_gguf(&header).map_err(|no_shape| match no_shape {
            crate::estimate::NoShape::NotALanguageModel => EngineError::InvalidInput {
                field: "model",
                problem: format!("`{model_id}` is not a language model"),
            },
            crate::estimate::NoShape::Implausible(problem) => EngineError::InvalidGguf {
                source_name: path.display().to_string(),
                problem,
            },
        })
    }

    /// Free RAM now, and the free VRAM of the GPU with the most (one GPU runs the
    /// model; llama.cpp splits across several only when asked).
    pub(super) fn free_budget(&self) -> Budget {
        let sample = self.inner.system.sample();
        let vram_bytes = sample
            .gpus
            .iter()
            .filter_map(|gpu| gpu.free_bytes)
            .max()
            .unwrap_or(0);
        Budget {
            ram_bytes: sample.memory.available_bytes,
            vram_bytes,
        }
    }

    /// Creates an llama-server instance. A spec naming an installed model
    /// (`model_id`) gets that model's weights (and projector) paths from the store,
    /// so the window never builds file paths itself.
    pub fn create_instance(&self, spec: InstanceSpec) -> Result<InstanceStatus> {
        let spec = self.with_model_paths(spec)?;
        self.llama().create(spec)
    }

    /// Creates an instance of an installed model with the engine's defaults (auto
    /// port, context and GPU layers fitted at start), so no front end keeps its own
    /// copy of them.
    pub fn create_instance_for_model(&self, name: &str, model_id: &str) -> Result<InstanceStatus> {
        let mut spec = InstanceSpec {
            model_id: Some(model_id.to_owned()),
            ..InstanceSpec::new(name, "")
        };
        // 0: chosen at start from what the model was trained for and what this
        // machine suggests.
        spec.config.context = 0;
        self.create_instance(spec)
    }

    /// Changes an instance's configuration (see [`Self::create_instance`]).
    pub fn update_instance(&self, spec: InstanceSpec) -> Result<InstanceStatus> {
        let spec = self.with_model_paths(spec)?;
        self.llama().update(spec)
    }

    pub(super) fn with_model_paths(&self, mut spec: InstanceSpec) -> Result<InstanceSpec> {
        if let Some(draft) = &mut spec.draft {
            if let Some(draft_id) = draft.model_id.clone() {
                draft.model_path = self.llm_weights(&draft_id, "draft")?.0;
            }
        }
        let Some(model_id) = spec.model_id.clone() else {
            return Ok(spec);
        };
        let (weights, mmproj) = self.llm_weights(&model_id, "model_id")?;
        spec.model_path = weights;
        spec.mmproj_path = mmproj;
        Ok(spec)
    }

    /// An installed language model's weights file and projector; `field` names the
    /// setting that asked, in the error.
    fn llm_weights(
        &self,
        model_id: &str,
        field: &'static str,
    ) -> Result<(std::path::PathBuf, Option<std::path::PathBuf>)> {
        let model = self.installed_model(model_id, field)?;
        if model.kind != models::ModelKind::Llm {
            return Err(EngineError::InvalidInput {
                field,
                problem: format!("`{model_id}` is an image model, not a language model"),
            });
        }
        let dir = self.models().model_dir(&model.id);
        let file_of = |role: models::FileRole| {
            model
                .files
                .iter()
                .find(|file| file.role == role)
                .map(|file| dir.join(&file.file_name))
        };
        let weights =
            file_of(models::FileRole::Weights).ok_or_else(|| EngineError::InvalidInput {
                field,
                problem: format!("`{model_id}` has no weights file"),
            })?;
        Ok((weights, file_of(models::FileRole::Mmproj)))
    }

    /// The first installed language model (by id), which the tray offers when no
    /// instance exists yet.
    fn first_llm_model(&self) -> Option<String> {
        self.models()
            .models()
            .into_iter()
            .filter(|model| model.kind == models::ModelKind::Llm)
            .map(|model| model.id)
            .min()
    }

    /// What the tray's "Start/Stop LLM" entry does now, and its tooltip line.
    pub fn llm_control(&self) -> LlmControl {
        llm_control(&self.llama().list(), self.first_llm_model().as_deref())
    }

    /// The tray's "Start/Stop LLM": stops the default instance when it runs, else
    /// starts it, first creating `default` from the first installed LLM model when
    /// there is no instance at all.
    pub async fn toggle_default_llm(&self) -> Result<InstanceStatus> {
        match self.llm_control().action {
            LlmAction::Stop(name) => self.llama().stop(&name).await,
            LlmAction::Start(name) => self.llama().start(&name).await,
            LlmAction::CreateAndStart { model_id } => {
                let spec = InstanceSpec {
                    name: DEFAULT_INSTANCE.to_owned(),
                    model_id: Some(model_id),
                    ..InstanceSpec::default()
                };
                self.create_instance(spec)?;
                self.llama().start(DEFAULT_INSTANCE).await
            }
            LlmAction::Unavailable => Err(EngineError::InvalidInput {
                field: "model",
                problem: "no language model is installed; add one in the Models tab".into(),
            }),
        }
    }

    /// Starts again the servers that ran when the app last closed, if Settings
    /// ask for it (`restore_llm_servers`). Failures are logged and announced as
    /// state changes; they do not stop the app.
    pub async fn restore_llm_servers(&self) {
        if !self.settings().restore_llm_servers {
            return;
        }
        for (name, outcome) in self.llama().restore().await {
            match outcome {
                Ok(_) => tracing::info!(instance = %name, "llama-server restored"),
                // The daemon (or a foreground command) runs it now: the window
                // shows that owner; nothing failed.
                Err(error @ EngineError::InstanceOwned { .. }) => {
                    tracing::info!(instance = %name, %error, "llama-server left to its owner");
                }
                Err(error) => tracing::warn!(instance = %name, %error, "llama-server not restored"),
            }
        }
    }

    /// Keeps what llama-server reported for a model and configuration, so later
    /// estimates for them are measured ones.
    pub fn record_memory(
        &self,
        model_id: &str,
        estimate: &crate::estimate::LlamaEstimate,
        measured: crate::estimate::MeasuredMemory,
    ) {
        self.llama()
            .record_measurement(model_id, &estimate.config, estimate.backend, measured);
    }

    /// The llama.cpp backend a server would run on: the validated llama-server's
    /// variant, else what this machine's GPUs suggest.
    pub fn llama_backend(&self) -> crate::estimate::Backend {
        use crate::binaries::Variant;
        use crate::estimate::Backend;
        match self
            .binary_status(BinaryKind::LlamaServer)
            .and_then(|status| status.variant)
        {
            Some(Variant::Cuda) => Backend::Cuda,
            Some(Variant::Vulkan) => Backend::Vulkan,
            Some(Variant::Metal) => Backend::Metal,
            Some(_) => Backend::Cpu,
            None => crate::system::machine_budget(&self.system_info()).0,
        }
    }
}
