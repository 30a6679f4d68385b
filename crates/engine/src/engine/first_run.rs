//! The first-run wizard's engine side: the proposal for this machine and the
//! download of a curated model (the same download as the Models tab's).

use super::Engine;
use crate::errors::{EngineError, Result};
use crate::first_run::{curated_models, propose, FirstRunProposal};
use crate::llama::{InstanceStatus, DEFAULT_INSTANCE};

impl Engine {
    /// The curated models with the one proposed for this machine.
    pub fn first_run_proposal(&self) -> FirstRunProposal {
        let installed = self.models().models();
        propose(
            &curated_models(),
            &self.system_info().recommendation,
            |id| installed.iter().any(|model| model.id == id),
        )
    }

    /// Starts downloading a curated model from the `hub_url` setting; returns its
    /// model id. Installed or already downloading: the same id, nothing started, so
    /// the wizard can be run again.
    pub async fn install_curated_model(&self, curated_id: &str) -> Result<String> {
        let model = curated_models()
            .into_iter()
            .find(|model| model.id == curated_id)
            .ok_or_else(|| EngineError::NotFound {
                what: "curated model",
                id: curated_id.to_owned(),
            })?;
        let known = self.models().models().iter().any(|m| m.id == model.id)
            || self.models().downloads().iter().any(|d| d.id == model.id);
        if known {
            return Ok(model.id);
        }
        self.add_model(model.add_request()).await
    }

    /// The instance the wizard starts for an installed model: one that already
    /// serves it, else a new one with the engine's defaults, named `default` unless
    /// that name is taken (then after the model).
    pub fn instance_for_model(&self, model_id: &str) -> Result<InstanceStatus> {
        let instances = self.llama().list();
        if let Some(existing) = instances
            .iter()
            .find(|status| status.spec.model_id.as_deref() == Some(model_id))
        {
            return Ok(existing.clone());
        }
        let default_taken = instances
            .iter()
            .any(|status| status.spec.name == DEFAULT_INSTANCE);
        let name = if default_taken {
            model_id
        } else {
            DEFAULT_INSTANCE
        };
        self.create_instance_for_model(name, model_id)
    }
}
