//! What a caller asks for, checked before it reaches a queue: sizes sd accepts, sane
//! step counts, a seed fixed up front (so every image's seed is known and reported).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use switchyard_base::errors::{EngineError, Result};

/// Image sides are multiples of this (the VAE downsamples by 8 and the UNet by 8 more).
pub const SIDE_STEP: u32 = 64;
pub const MAX_SIDE: u32 = 2048;
pub const MAX_STEPS: u32 = 150;
/// Images in one request (`-b`); more is a queue's job, not a batch's.
pub const MAX_COUNT: u32 = 16;
const MAX_PROMPT_CHARS: usize = 8_000;
pub const MAX_CFG_SCALE: f32 = 30.0;
/// sd's seeds are 64-bit, but JavaScript clients lose precision past 2^53; random
/// seeds stay well inside both.
const MAX_RANDOM_SEED: u64 = (1 << 31) - 1;

/// The bounds [`ImageRequest::validate`] checks, for a form that wants to say so
/// before it sends anything.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct RequestLimits {
    /// Width and height are multiples of this, from it up to `max_side`.
    pub side_step: u32,
    pub max_side: u32,
    pub max_steps: u32,
    pub max_count: u32,
    pub max_cfg_scale: f32,
    pub max_prompt_chars: u32,
    /// The defaults a request without these fields gets.
    pub default_side: u32,
    pub default_steps: u32,
    pub default_cfg_scale: f32,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            side_step: SIDE_STEP,
            max_side: MAX_SIDE,
            max_steps: MAX_STEPS,
            max_count: MAX_COUNT,
            max_cfg_scale: MAX_CFG_SCALE,
            max_prompt_chars: MAX_PROMPT_CHARS as u32,
            default_side: default_side(),
            default_steps: default_steps(),
            default_cfg_scale: default_cfg_scale(),
        }
    }
}

/// Memory placement a request may force; `None` lets Switchyard choose from the free
/// VRAM (`--clip-on-cpu`, `--vae-on-cpu`, `--vae-tiling`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct PlacementOverrides {
    #[serde(default)]
    pub clip_on_cpu: Option<bool>,
    #[serde(default)]
    pub vae_on_cpu: Option<bool>,
    #[serde(default)]
    pub vae_tiling: Option<bool>,
}

/// One generation request, as the image API and the window send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ImageRequest {
    pub prompt: String,
    #[serde(default)]
    pub negative_prompt: String,
    #[serde(default = "default_side")]
    pub width: u32,
    #[serde(default = "default_side")]
    pub height: u32,
    #[serde(default = "default_steps")]
    pub steps: u32,
    #[serde(default = "default_cfg_scale")]
    pub cfg_scale: f32,
    /// One of the binary's `--sampling-method` values; `None` is sd's default.
    #[serde(default)]
    pub sampler: Option<String>,
    /// One of the binary's `--scheduler` values; `None` is sd's default.
    #[serde(default)]
    pub scheduler: Option<String>,
    /// `None` or negative: a random seed, chosen here and reported with the image.
    #[serde(default)]
    #[ts(type = "number | null")]
    pub seed: Option<i64>,
    /// Images to make; image `i` gets seed `seed + i`.
    #[serde(default = "default_count")]
    pub count: u32,
    #[serde(default)]
    pub overrides: PlacementOverrides,
}

fn default_side() -> u32 {
    512
}
fn default_steps() -> u32 {
    20
}
fn default_cfg_scale() -> f32 {
    7.0
}
fn default_count() -> u32 {
    1
}

impl ImageRequest {
    /// A request with sd's defaults for everything but the prompt.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            negative_prompt: String::new(),
            width: default_side(),
            height: default_side(),
            steps: default_steps(),
            cfg_scale: default_cfg_scale(),
            sampler: None,
            scheduler: None,
            seed: None,
            count: default_count(),
            overrides: PlacementOverrides::default(),
        }
    }

    /// Checks every field; `samplers`/`schedulers` are what the binary offers (an
    /// empty list accepts any name: the binary's help could not be read).
    pub fn validate(&self, samplers: &[String], schedulers: &[String]) -> Result<()> {
        let invalid = |field: &'static str, problem: String| {
            Err(EngineError::InvalidInput { field, problem })
        };
        if self.prompt.trim().is_empty() {
            return invalid("prompt", "must not be empty".into());
        }
        for (field, text) in [
            ("prompt", &self.prompt),
            ("negative_prompt", &self.negative_prompt),
        ] {
            if text.chars().count() > MAX_PROMPT_CHARS {
                return invalid(field, format!("longer than {MAX_PROMPT_CHARS} characters"));
            }
            if text.contains('\0') {
                return invalid(field, "contains a NUL character".into());
            }
        }
        for (field, side) in [("width", self.width), ("height", self.height)] {
            if side == 0 || side % SIDE_STEP != 0 || side > MAX_SIDE {
                return invalid(
                    field,
                    format!(
                        "{side} is not a multiple of {SIDE_STEP} from {SIDE_STEP} to {MAX_SIDE}"
                    ),
                );
            }
        }
        if !(1..=MAX_STEPS).contains(&self.steps) {
            return invalid(
                "steps",
                format!("{} is not from 1 to {MAX_STEPS}", self.steps),
            );
        }
        if !(self.cfg_scale.is_finite() && (0.0..=MAX_CFG_SCALE).contains(&self.cfg_scale)) {
            return invalid(
                "cfg_scale",
                format!("{} is not from 0 to {MAX_CFG_SCALE}", self.cfg_scale),
            );
        }
        if !(1..=MAX_COUNT).contains(&self.count) {
            return invalid(
                "count",
                format!("{} is not from 1 to {MAX_COUNT}", self.count),
            );
        }
        for (field, value, offered) in [
            ("sampler", &self.sampler, samplers),
            ("scheduler", &self.scheduler, schedulers),
        ] {
            if let Some(name) = value {
                let known = offered.is_empty() || offered.iter().any(|offer| offer == name);
                if !known || name.starts_with('-') {
                    return invalid(
                        field,
                        format!("`{name}` is not one of {}", offered.join(", ")),
                    );
                }
            }
        }
        if let Some(seed) = self.seed {
            // The last image's seed must still fit.
            if seed.checked_add(i64::from(self.count)).is_none() {
                return invalid("seed", format!("{seed} is too large"));
            }
        }
        Ok(())
    }

    /// The seed of the first image: the requested one, or a fresh random one.
    pub fn resolve_seed(&self) -> i64 {
        match self.seed {
            Some(seed) if seed >= 0 => seed,
            _ => i64::try_from(random_u64() % MAX_RANDOM_SEED).unwrap_or(0),
        }
    }
}

/// A random number from the standard library's per-process random hasher keys: enough
/// for seeds and ids (nothing here is a secret).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_sizes_are_named() {
        let request = ImageRequest::new("a cat");
        assert!(request.validate(&[], &[]).is_ok());
        let odd = ImageRequest {
            width: 500,
            ..request.clone()
        };
        let error = odd.validate(&[], &[]).unwrap_err();
        assert!(matches!(
            error,
            EngineError::InvalidInput { field: "width", .. }
        ));
        let empty = ImageRequest::new("  ");
        assert!(empty.validate(&[], &[]).is_err());
    }

    #[test]
    fn samplers_must_be_offered_by_the_binary() {
        let request = ImageRequest {
            sampler: Some("euler".into()),
            ..ImageRequest::new("a cat")
        };
        let offered = vec!["euler".to_string(), "euler_a".to_string()];
        assert!(request.validate(&offered, &[]).is_ok());
        let unknown = ImageRequest {
            sampler: Some("--vae".into()),
            ..request
        };
        assert!(unknown.validate(&offered, &[]).is_err());
        assert!(unknown.validate(&[], &[]).is_err(), "flags never pass");
    }

    #[test]
    fn seeds_are_fixed_before_the_run() {
        let fixed = ImageRequest {
            seed: Some(42),
            ..ImageRequest::new("a cat")
        };
        assert_eq!(fixed.resolve_seed(), 42);
        let random = ImageRequest::new("a cat").resolve_seed();
        assert!((0..=i64::from(i32::MAX)).contains(&random));
        let overflowing = ImageRequest {
            seed: Some(i64::MAX),
            ..ImageRequest::new("a cat")
        };
        assert!(overflowing.validate(&[], &[]).is_err());
    }
}
