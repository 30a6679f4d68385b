//! Image generation's memory: the components' weights (diffusion model, text
//! encoders, VAE) where they run, plus working memory that grows with the image.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use switchyard_gguf::GgufFile;

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
            if name.starts_with("first_stage_model.")
                || name.starts_with("vae.")
                || name.starts_with("tae.")
            {
                // Text-to-image only decodes: sd loads the VAE's decoder alone.
                if !name.contains(".encoder.") {
                    parts.vae_bytes += tensor.bytes;
                }
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

/// Fixed runtime of an `sd` process.
const RUNTIME_BYTES: u64 = 48 * MIB;
/// Measured with sd-cli 0.4.7 and the SDXS-512 model (its `compute buffer size`
/// lines at 64² and 512²): the diffusion model's working memory grows by 30 KB
/// per latent pixel (8×8 image pixels) over a 2.4 MB base; the tiny VAE (TAESD)
/// decoder needs 1.9 KB per image pixel. Each stage frees its compute buffer
/// before the next one runs, so a device holds the largest, not the sum.
const DIFFUSION_BASE_BYTES: u64 = 2_400_000;
const DIFFUSION_BYTES_PER_LATENT: u64 = 30_555;
const TINY_VAE_BYTES_PER_PIXEL: u64 = 1_920;
/// A full VAE decoder (SD 1.x/SDXL/FLUX, 128–512 channels at full resolution) is
/// about five times the tiny one per pixel (not measured here: no such model can
/// be had offline).
const FULL_VAE_BYTES_PER_PIXEL: u64 = 9_500;
/// Larger than this, a VAE is a full one.
const TINY_VAE_MAX_BYTES: u64 = 16 * MIB;
/// stable-diffusion.cpp's default VAE tile is 32×32 latents (256×256 pixels).
const VAE_TILE_PIXELS: u64 = 256 * 256;

pub fn estimate(parts: &DiffusionComponents, config: &DiffusionConfig) -> DiffusionEstimate {
    let pixels = u64::from(config.width) * u64::from(config.height);
    let batch = u64::from(config.batch.max(1));
    let latents = pixels / 64;
    let sampling = DIFFUSION_BASE_BYTES + DIFFUSION_BYTES_PER_LATENT * latents * batch;
    let decoded_pixels = if config.vae_tiling {
        pixels.min(VAE_TILE_PIXELS)
    } else {
        pixels
    };
    let per_pixel = if parts.vae_bytes <= TINY_VAE_MAX_BYTES {
        TINY_VAE_BYTES_PER_PIXEL
    } else {
        FULL_VAE_BYTES_PER_PIXEL
    };
    let decoding = per_pixel * decoded_pixels;

    let diffusion_on_gpu = config.on_gpu;
    let clip_on_gpu = config.on_gpu && !config.clip_on_cpu;
    let vae_on_gpu = config.on_gpu && !config.vae_on_cpu;
    let mut ram = RUNTIME_BYTES;
    let mut vram = 0;
    let mut place = |bytes: u64, on_gpu: bool| {
        if on_gpu {
            vram += bytes;
        } else {
            ram += bytes;
        }
    };
    place(parts.diffusion_bytes, diffusion_on_gpu);
    place(parts.text_encoder_bytes, clip_on_gpu);
    place(parts.vae_bytes, vae_on_gpu);
    let working_on = |on_gpu: bool| {
        let mut peak = 0;
        if diffusion_on_gpu == on_gpu {
            peak = peak.max(sampling);
        }
        if vae_on_gpu == on_gpu {
            peak = peak.max(decoding);
        }
        peak
    };
    ram += working_on(false);
    vram += working_on(true);
    DiffusionEstimate {
        ram_bytes: ram,
        vram_bytes: vram,
        working_bytes: sampling.max(decoding),
    }
}

/// What an `sd` run reported (`-v`): parameter buffers per place and the largest
/// compute buffer (each stage frees its own before the next runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[ts(export)]
pub struct MeasuredDiffusion {
    #[ts(type = "number")]
    pub params_ram_bytes: u64,
    #[ts(type = "number")]
    pub params_vram_bytes: u64,
    #[ts(type = "number")]
    pub peak_compute_bytes: u64,
}

/// Reads `… params backend buffer size =  602.60 MB(RAM) …` and
/// `… unet compute buffer size: 121.64 MB(RAM)` lines (sd's MB are MiB).
pub fn parse_sd_log(log: &str) -> MeasuredDiffusion {
    let mut measured = MeasuredDiffusion::default();
    for line in log.lines() {
        let (is_params, rest) =
            if let Some((_, rest)) = line.split_once("params backend buffer size =") {
                (true, rest)
            } else if let Some((_, rest)) = line.split_once("compute buffer size:") {
                (false, rest)
            } else {
                continue;
            };
        let Some((number, place)) = rest.trim_start().split_once(" MB(") else {
            continue;
        };
        let Ok(mib) = number.trim().parse::<f64>() else {
            continue;
        };
        let bytes = (mib * MIB as f64).round() as u64;
        let in_vram = place.starts_with("VRAM");
        match (is_params, in_vram) {
            (true, false) => measured.params_ram_bytes += bytes,
            (true, true) => measured.params_vram_bytes += bytes,
            (false, _) => measured.peak_compute_bytes = measured.peak_compute_bytes.max(bytes),
        }
    }
    measured
}
