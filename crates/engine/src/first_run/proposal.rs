//! Which curated model to propose on this machine: the largest language model whose
//! file fits the size the estimator allows here (the System tab's "models up to"),
//! with every other choice marked as fitting or not.

use serde::Serialize;
use ts_rs::TS;

use super::curated::CuratedModel;
use crate::models::ModelKind;
use crate::system::Recommendation;

/// A curated model as this machine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct CuratedChoice {
    pub model: CuratedModel,
    /// Its file fits the machine's model budget with room for the context.
    pub fits: bool,
    /// Already installed (a rerun of the wizard, or added by hand).
    pub installed: bool,
}

/// What the first-run wizard proposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct FirstRunProposal {
    /// The curated id proposed for chat; `None` when no language model fits.
    pub recommended: Option<String>,
    /// The language models, smallest first.
    pub choices: Vec<CuratedChoice>,
    /// An image model that fits, offered beside the chat model.
    pub image_model: Option<CuratedChoice>,
    /// The size limit the choice was made against.
    #[ts(type = "number")]
    pub max_model_bytes: u64,
    /// The machine's one-sentence verdict (the System tab's headline).
    pub headline: String,
}

/// The largest curated language model that fits `max_model_bytes`.
pub fn recommend_first_model(
    models: &[CuratedModel],
    max_model_bytes: u64,
) -> Option<&CuratedModel> {
    models
        .iter()
        .filter(|model| model.kind == ModelKind::Llm && model.size_bytes <= max_model_bytes)
        .max_by_key(|model| model.size_bytes)
}

/// The proposal for a machine with `recommendation`; `installed` says which curated
/// ids are already installed.
pub fn propose(
    models: &[CuratedModel],
    recommendation: &Recommendation,
    installed: impl Fn(&str) -> bool,
) -> FirstRunProposal {
    let budget = recommendation.max_model_bytes;
    let choice = |model: &CuratedModel| CuratedChoice {
        fits: model.size_bytes <= budget,
        installed: installed(&model.id),
        model: model.clone(),
    };
    FirstRunProposal {
        recommended: recommend_first_model(models, budget).map(|model| model.id.clone()),
        choices: models
            .iter()
            .filter(|model| model.kind == ModelKind::Llm)
            .map(choice)
            .collect(),
        image_model: models
            .iter()
            .filter(|model| model.kind == ModelKind::Diffusion && model.size_bytes <= budget)
            .min_by_key(|model| model.size_bytes)
            .map(choice),
        max_model_bytes: budget,
        headline: recommendation.headline.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::first_run::curated_models;
    use crate::system::RunsOn;

    const GB: u64 = 1_000_000_000;

    fn recommendation(max_model_bytes: u64) -> Recommendation {
        Recommendation {
            runs_on: RunsOn::Cpu,
            max_model_bytes,
            suggested_context: 4096,
            headline: "Models up to …".into(),
            details: Vec::new(),
        }
    }

    #[test]
    fn the_largest_language_model_that_fits_is_proposed() {
        let models = curated_models();
        let id = |bytes| recommend_first_model(&models, bytes).map(|model| model.id.as_str());
        assert_eq!(id(GB / 2), Some("qwen2.5-0.5b-instruct"));
        assert_eq!(id(GB), Some("llama-3.2-1b-instruct"));
        assert_eq!(id(3 * GB), Some("qwen2.5-3b-instruct"));
        // The image model is larger still, but never the chat proposal.
        assert_eq!(id(64 * GB), Some("qwen2.5-7b-instruct"));
        assert_eq!(id(GB / 10), None);
    }

    #[test]
    fn choices_say_what_fits_and_what_is_installed() {
        let models = curated_models();
        let proposal = propose(&models, &recommendation(GB), |id| {
            id == "qwen2.5-0.5b-instruct"
        });
        assert_eq!(
            proposal.recommended.as_deref(),
            Some("llama-3.2-1b-instruct")
        );
        let fitting: Vec<&str> = proposal
            .choices
            .iter()
            .filter(|choice| choice.fits)
            .map(|choice| choice.model.id.as_str())
            .collect();
        assert_eq!(fitting, ["qwen2.5-0.5b-instruct", "llama-3.2-1b-instruct"]);
        assert!(proposal.choices[0].installed);
        assert!(!proposal.choices[1].installed);
        assert!(proposal
            .choices
            .iter()
            .all(|choice| choice.model.kind == ModelKind::Llm));
        // 1 GB leaves no room for the image model.
        assert_eq!(proposal.image_model, None);
    }

    #[test]
    fn a_large_machine_is_offered_the_image_model_too() {
        let proposal = propose(&curated_models(), &recommendation(16 * GB), |_| false);
        let image = proposal.image_model.expect("an image model fits in 16 GB");
        assert_eq!(image.model.kind, ModelKind::Diffusion);
        assert!(image.fits);
    }
}
