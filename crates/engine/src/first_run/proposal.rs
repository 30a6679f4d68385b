//! Which curated model to propose on this machine: the largest language model whose
//! file fits the size the estimator allows here (the System tab's "models up to")
//! and that generates at the usable speed (the `usable_tokens_per_second` setting),
//! with every other choice marked as fitting or not and its predicted speed. When
//! no fitting model is fast enough, the fastest that fits, said to be slow.

use serde::Serialize;
use ts_rs::TS;

use super::curated::CuratedModel;
use crate::estimate::speed::{describe_speed, predict_from_size};
use crate::models::ModelKind;
use crate::system::{Recommendation, RunsOn};

/// A curated model as this machine sees it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct CuratedChoice {
    pub model: CuratedModel,
    /// Its file fits the machine's model budget with room for the context.
    pub fits: bool,
    /// Predicted generation speed here (tokens/s); `None` when this machine's
    /// memory bandwidth is unknown or it is not a language model.
    pub tokens_per_second: Option<f64>,
    /// Reaches the usable speed (`true` when the speed is unknown: nothing says
    /// otherwise).
    pub usable: bool,
    /// Already installed (a rerun of the wizard, or added by hand).
    pub installed: bool,
}

/// What the first-run wizard proposes.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
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
    /// The speed the choice was made against (tokens/s).
    pub usable_tokens_per_second: f64,
    /// The machine's one-sentence verdict (the System tab's headline).
    pub headline: String,
    /// Said when even the proposed model is slower than the usable speed.
    pub speed_warning: Option<String>,
}

/// The largest fitting language model that reaches the usable speed, else the
/// fastest that fits.
pub fn recommend_first_model(choices: &[CuratedChoice]) -> Option<&CuratedChoice> {
    let fitting = || {
        choices
            .iter()
            .filter(|choice| choice.model.kind == ModelKind::Llm && choice.fits)
    };
    fitting()
        .filter(|choice| choice.usable)
        .max_by_key(|choice| choice.model.size_bytes)
        .or_else(|| {
            fitting().max_by(|a, b| {
                let speed = |choice: &CuratedChoice| choice.tokens_per_second.unwrap_or(0.0);
                speed(a).total_cmp(&speed(b))
            })
        })
}

/// The proposal for a machine with `recommendation`; `installed` says which curated
/// ids are already installed.
pub fn propose(
    models: &[CuratedModel],
    recommendation: &Recommendation,
    installed: impl Fn(&str) -> bool,
) -> FirstRunProposal {
    let budget = recommendation.max_model_bytes;
    let usable_speed = recommendation.usable_tokens_per_second;
    let choice = |model: &CuratedModel| {
        let tokens_per_second = recommendation
            .read_rate_bytes_per_second
            .filter(|_| model.kind == ModelKind::Llm)
            .and_then(|rate| {
                let on_gpu = recommendation.runs_on == RunsOn::Gpu;
                predict_from_size(model.size_bytes, model.layers, rate, on_gpu)
            });
        CuratedChoice {
            fits: model.size_bytes <= budget,
            tokens_per_second,
            usable: tokens_per_second.is_none_or(|speed| speed >= usable_speed),
            installed: installed(&model.id),
            model: model.clone(),
        }
    };
    let choices: Vec<CuratedChoice> = models
        .iter()
        .filter(|model| model.kind == ModelKind::Llm)
        .map(choice)
        .collect();
    let recommended = recommend_first_model(&choices);
    let speed_warning = recommended
        .filter(|choice| !choice.usable)
        .and_then(|choice| {
            let speed = choice.tokens_per_second?;
            Some(format!(
                "Every model that fits is slow on this machine: {} is the fastest, at {} (usable is {usable_speed:.0} tokens/s or more).",
                choice.model.name,
                describe_speed(speed),
            ))
        });
    FirstRunProposal {
        recommended: recommended.map(|choice| choice.model.id.clone()),
        image_model: models
            .iter()
            .filter(|model| model.kind == ModelKind::Diffusion && model.size_bytes <= budget)
            .min_by_key(|model| model.size_bytes)
            .map(choice),
        choices,
        max_model_bytes: budget,
        usable_tokens_per_second: usable_speed,
        headline: recommendation.headline.clone(),
        speed_warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::first_run::curated_models;

    const GB: u64 = 1_000_000_000;

    fn recommendation(max_model_bytes: u64) -> Recommendation {
        Recommendation {
            runs_on: RunsOn::Cpu,
            max_model_bytes,
            suggested_context: 4096,
            max_model_tokens_per_second: None,
            usable_tokens_per_second: 10.0,
            usable_model_bytes: None,
            read_rate_bytes_per_second: None,
            headline: "Models up to …".into(),
            details: Vec::new(),
        }
    }

    /// The same machine reading models' weights at `gb_per_second`.
    fn with_bandwidth(max_model_bytes: u64, gb_per_second: u64) -> Recommendation {
        Recommendation {
            read_rate_bytes_per_second: Some((gb_per_second * GB) as f64),
            ..recommendation(max_model_bytes)
        }
    }

    fn proposed(recommendation: &Recommendation) -> Option<String> {
        propose(&curated_models(), recommendation, |_| false).recommended
    }

    #[test]
    fn the_largest_language_model_that_fits_is_proposed() {
        let id = |bytes| proposed(&recommendation(bytes));
        assert_eq!(id(GB / 2).as_deref(), Some("qwen2.5-0.5b-instruct"));
        assert_eq!(id(GB).as_deref(), Some("llama-3.2-1b-instruct"));
        assert_eq!(id(3 * GB).as_deref(), Some("qwen2.5-3b-instruct"));
        // The image model is larger still, but never the chat proposal.
        assert_eq!(id(64 * GB).as_deref(), Some("qwen2.5-7b-instruct"));
        assert_eq!(id(GB / 10), None);
    }

    #[test]
    fn a_smaller_model_at_a_usable_speed_wins_over_a_larger_slow_one() {
        // 64 GB fit, but RAM read at 20 GB/s makes the 7B (4.7 GB) ~3 tokens/s and
        // the 3B models (~2 GB) ~8: the 1.5B (1.1 GB, ~13 tokens/s) is proposed.
        let slow_ram = with_bandwidth(64 * GB, 20);
        let proposal = propose(&curated_models(), &slow_ram, |_| false);
        assert_eq!(
            proposal.recommended.as_deref(),
            Some("qwen2.5-1.5b-instruct")
        );
        assert_eq!(proposal.speed_warning, None);
        let seven = proposal
            .choices
            .iter()
            .find(|choice| choice.model.id == "qwen2.5-7b-instruct")
            .expect("listed");
        assert!(seven.fits && !seven.usable);
        let speed = seven.tokens_per_second.expect("a prediction");
        assert!(speed > 1.0 && speed < 10.0, "{speed}");
        // Fast memory: the largest again.
        assert_eq!(
            proposed(&with_bandwidth(64 * GB, 200)).as_deref(),
            Some("qwen2.5-7b-instruct")
        );
    }

    #[test]
    fn when_nothing_is_fast_enough_the_fastest_is_proposed_and_called_slow() {
        let crawling = Recommendation {
            read_rate_bytes_per_second: Some(1.5e9),
            ..recommendation(64 * GB)
        };
        let proposal = propose(&curated_models(), &crawling, |_| false);
        assert_eq!(
            proposal.recommended.as_deref(),
            Some("qwen2.5-0.5b-instruct")
        );
        let warning = proposal.speed_warning.expect("a warning");
        assert!(
            warning.contains("Qwen2.5 0.5B Instruct is the fastest, at about 3 tokens/s"),
            "{warning}"
        );
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
        assert_eq!(image.tokens_per_second, None);
    }
}
