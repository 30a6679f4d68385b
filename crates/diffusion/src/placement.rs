//! `--clip-on-cpu`, `--vae-on-cpu` and `--vae-tiling` chosen from the free VRAM at
//! generation time and the estimator (seed issue, Fix 1 and 6: without
//! `--clip-on-cpu`, SDXL crashed on an 8 GB GPU). The user's overrides always win.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use switchyard_estimate::diffusion::{
    estimate, DiffusionComponents, DiffusionConfig, DiffusionEstimate,
};

use super::request::PlacementOverrides;

/// Where the parts run for one job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Placement {
    pub clip_on_cpu: bool,
    pub vae_on_cpu: bool,
    pub vae_tiling: bool,
}

/// Free VRAM left over after the estimate, kept for fragmentation and the driver: a
/// plan that fills the GPU to the last byte fails in practice.
const VRAM_HEADROOM_BYTES: u64 = 512 * 1024 * 1024;

/// Picks the cheapest placement that fits `free_vram` (None: no usable GPU, so
/// everything runs on the CPU and the flags change nothing). Tried in order of
/// speed: all on GPU; tiled VAE; text encoders on CPU; VAE on CPU too.
pub fn choose(
    parts: &DiffusionComponents,
    width: u32,
    height: u32,
    batch: u32,
    free_vram: Option<u64>,
    overrides: &PlacementOverrides,
) -> (Placement, DiffusionEstimate) {
    let config = |placement: Placement, on_gpu: bool| DiffusionConfig {
        width,
        height,
        batch: batch.max(1),
        on_gpu,
        clip_on_cpu: placement.clip_on_cpu,
        vae_on_cpu: placement.vae_on_cpu,
        vae_tiling: placement.vae_tiling,
    };
    let apply_overrides = |placement: Placement| Placement {
        clip_on_cpu: overrides.clip_on_cpu.unwrap_or(placement.clip_on_cpu),
        vae_on_cpu: overrides.vae_on_cpu.unwrap_or(placement.vae_on_cpu),
        vae_tiling: overrides.vae_tiling.unwrap_or(placement.vae_tiling),
    };
    let Some(free_vram) = free_vram else {
        let placement = apply_overrides(Placement::default());
        return (placement, estimate(parts, &config(placement, false)));
    };
    let budget = free_vram.saturating_sub(VRAM_HEADROOM_BYTES);
    let candidates = [
        Placement::default(),
        Placement {
            vae_tiling: true,
            ..Placement::default()
        },
        Placement {
            clip_on_cpu: true,
            vae_tiling: true,
            ..Placement::default()
        },
        Placement {
            clip_on_cpu: true,
            vae_on_cpu: true,
            vae_tiling: true,
        },
    ];
    let mut chosen = None;
    for candidate in candidates {
        let placement = apply_overrides(candidate);
        let planned = estimate(parts, &config(placement, true));
        chosen = Some((placement, planned));
        if planned.vram_bytes <= budget {
            break;
        }
    }
    // The last candidate is the most frugal; if even it does not fit, sd may still
    // manage (or fail with its own out-of-memory message, which is reported).
    chosen.unwrap_or_else(|| {
        let placement = apply_overrides(Placement::default());
        (placement, estimate(parts, &config(placement, true)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    fn sdxl_like() -> DiffusionComponents {
        DiffusionComponents {
            diffusion_bytes: 5 * GIB / 2,
            text_encoder_bytes: 3 * GIB / 2,
            vae_bytes: 160 * 1024 * 1024,
        }
    }

    #[test]
    fn a_roomy_gpu_keeps_everything_on_it() {
        let (placement, _) = choose(
            &sdxl_like(),
            1024,
            1024,
            1,
            Some(24 * GIB),
            &Default::default(),
        );
        assert_eq!(placement, Placement::default());
    }

    #[test]
    fn a_tight_gpu_moves_the_text_encoder_to_the_cpu() {
        // The seed issue's machine: an 8 GB card with little left after the LLM.
        let (placement, planned) = choose(
            &sdxl_like(),
            768,
            768,
            1,
            Some(4 * GIB),
            &Default::default(),
        );
        assert!(placement.clip_on_cpu, "{placement:?} {planned:?}");
        assert!(planned.vram_bytes <= 4 * GIB);
    }

    #[test]
    fn overrides_win_and_no_gpu_needs_no_flags() {
        let forced = PlacementOverrides {
            clip_on_cpu: Some(false),
            vae_on_cpu: None,
            vae_tiling: Some(true),
        };
        let (placement, _) = choose(&sdxl_like(), 768, 768, 1, Some(4 * GIB), &forced);
        assert!(!placement.clip_on_cpu);
        assert!(placement.vae_tiling);
        let (placement, planned) = choose(&sdxl_like(), 512, 512, 1, None, &Default::default());
        assert_eq!(placement, Placement::default());
        assert_eq!(planned.vram_bytes, 0);
    }
}
