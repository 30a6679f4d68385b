//! Image generation's memory: the components' weights (diffusion model, text
//! encoders, VAE) where they run, plus working memory that grows with the image.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::gguf::GgufFile;

const MIB: u64 = 1024 * 1024;

/// Weights by component, from tensor name prefixes as stable-diffusion.cpp names
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[ts(export)]
pub struct DiffusionComponents {
    #[ts(type = "number")]
    pub diffusion_bytes: u64,
    #[ts(type = "number")]
    pub text_encoder_bytes: u64,
    #[ts(type = "number")]
    pub vae_bytes: u64,
}

impl DiffusionComponents {
    pub fn from_gguf(file: &GgufFile) -> Self {
        let mut parts = Self::default();
        for tensor in &file.tensors {
            let name = tensor.name.as_str();
            if name.starts_with("first_stage_model.") || name.starts_with("vae.") {
                parts.vae_bytes += tensor.bytes;
            } else if name.starts_with("cond_stage_model.")
                || name.starts_with("text_encoders.")
                || name.starts_with("conditioner.")
            {
                parts.text_encoder_bytes += tensor.bytes;
            } else {
                parts.diffusion_bytes += tensor.bytes;
            }
        }
        parts
    }

    /// Components in separate files (FLUX-style: diffusion model, VAE, encoders).
    pub fn add(&mut self, other: &Self) {
        self.diffusion_bytes += other.diffusion_bytes;
        self.text_encoder_bytes += other.text_encoder_bytes;
        self.vae_bytes += other.vae_bytes;
    }
}

/// Where the parts run and how big the image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DiffusionConfig {
    pub width: u32,
    pub height: u32,
    /// Images generated together.
    pub batch: u32,
    pub on_gpu: bool,
    /// `--clip-on-cpu`: the text encoders stay in RAM.
    pub clip_on_cpu: bool,
    /// `--vae-on-cpu`.
    pub vae_on_cpu: bool,
    /// `--vae-tiling`: decode in tiles, so the VAE's working memory stops growing
    /// with the image.
    pub vae_tiling: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[ts(export)]
pub struct DiffusionEstimate {
    #[ts(type = "number")]
    pub ram_bytes: u64,
    #[ts(type = "number")]
    pub vram_bytes: u64,
    /// Working memory of sampling and decoding at this size.
    #[ts(type = "number")]
    pub working_bytes: u64,
}

/// Fixed runtime of an `sd` process and its compute scratch.
const RUNTIME_BYTES: u64 = 48 * MIB;
/// The VAE decoder's activations per output pixel (f32 feature maps up to 128
/// channels at full resolution, two alive at once) and per latent pixel for the
/// diffusion model's attention and feature maps.
const VAE_BYTES_PER_PIXEL: u64 = 2 * 128 * 4;
const DIFFUSION_BYTES_PER_LATENT: u64 = 24 * 1024;
/// A VAE tile is 32×32 latents (256×256 pixels).
const VAE_TILE_PIXELS: u64 = 256 * 256;

pub fn estimate(parts: &DiffusionComponents, config: &DiffusionConfig) -> DiffusionEstimate {
    let pixels = u64::from(config.width) * u64::from(config.height);
    let batch = u64::from(config.batch.max(1));
    let latents = pixels / 64;
    let sampling = DIFFUSION_BYTES_PER_LATENT * latents * batch;
    let decoded_pixels = if config.vae_tiling {
        pixels.min(VAE_TILE_PIXELS)
    } else {
        pixels
    };
    let decoding = VAE_BYTES_PER_PIXEL * decoded_pixels;

    let mut ram = RUNTIME_BYTES;
    let mut vram = 0;
    let mut place = |bytes: u64, on_gpu: bool| {
        if on_gpu {
            vram += bytes;
        } else {
            ram += bytes;
        }
    };
    place(parts.diffusion_bytes + sampling, config.on_gpu);
    place(
        parts.text_encoder_bytes,
        config.on_gpu && !config.clip_on_cpu,
    );
    place(
        parts.vae_bytes + decoding,
        config.on_gpu && !config.vae_on_cpu,
    );
    DiffusionEstimate {
        ram_bytes: ram,
        vram_bytes: vram,
        working_bytes: sampling.max(decoding),
    }
}
