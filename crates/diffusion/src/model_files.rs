//! The files of a diffusion model and the sd flag each one goes to: one file with
//! everything (`-m`), or components (`--diffusion-model`, `--vae`, `--clip_l`,
//! `--clip_g`, `--t5xxl`, `--llm`) as FLUX/SD3-style models ship them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use switchyard_base::errors::{EngineError, Result};
use switchyard_models::{FileRole, InstalledModel};

/// Where each part of a model is on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DiffusionModelFiles {
    /// A file with every part (`-m`).
    #[ts(type = "string | null")]
    pub model: Option<PathBuf>,
    /// The diffusion model alone (`--diffusion-model`).
    #[ts(type = "string | null")]
    pub diffusion_model: Option<PathBuf>,
    #[ts(type = "string | null")]
    pub vae: Option<PathBuf>,
    #[ts(type = "string | null")]
    pub clip_l: Option<PathBuf>,
    #[ts(type = "string | null")]
    pub clip_g: Option<PathBuf>,
    #[ts(type = "string | null")]
    pub t5xxl: Option<PathBuf>,
    /// An LLM used as text encoder (Qwen-Image, FLUX.2) (`--llm`).
    #[ts(type = "string | null")]
    pub llm: Option<PathBuf>,
}

impl DiffusionModelFiles {
    pub fn single(path: impl Into<PathBuf>) -> Self {
        Self {
            model: Some(path.into()),
            ..Self::default()
        }
    }

    /// The files of an installed model. Text encoders are told apart by their file
    /// names (`t5xxl_fp16.gguf`, `clip_l.safetensors`, `Qwen2.5-VL…`), which is how
    /// every published split model names them.
    pub fn from_installed(model: &InstalledModel, dir: &Path) -> Result<Self> {
        let mut files = Self::default();
        let weights: Vec<_> = model
            .files
            .iter()
            .filter(|file| file.role == FileRole::Weights)
            .collect();
        let has_components = model
            .files
            .iter()
            .any(|file| matches!(file.role, FileRole::Vae | FileRole::TextEncoder));
        let Some(first) = weights.first() else {
            return Err(EngineError::InvalidInput {
                field: "model",
                problem: format!("`{}` has no weights file", model.id),
            });
        };
        if has_components {
            files.diffusion_model = Some(dir.join(&first.file_name));
        } else {
            files.model = Some(dir.join(&first.file_name));
        }
        for file in &model.files {
            let path = dir.join(&file.file_name);
            match file.role {
                FileRole::Vae => files.vae = Some(path),
                FileRole::TextEncoder => {
                    let name = file.file_name.to_ascii_lowercase();
                    let slot = if name.contains("t5") || name.contains("umt5") {
                        &mut files.t5xxl
                    } else if name.contains("clip_g") || name.contains("clip-g") {
                        &mut files.clip_g
                    } else if name.contains("clip") {
                        &mut files.clip_l
                    } else {
                        &mut files.llm
                    };
                    *slot = Some(path);
                }
                FileRole::Weights | FileRole::Mmproj => {}
            }
        }
        Ok(files)
    }

    /// `(flag, path)` for every file, in a stable order.
    pub fn flags(&self) -> Vec<(&'static str, &Path)> {
        [
            ("-m", &self.model),
            ("--diffusion-model", &self.diffusion_model),
            ("--vae", &self.vae),
            ("--clip_l", &self.clip_l),
            ("--clip_g", &self.clip_g),
            ("--t5xxl", &self.t5xxl),
            ("--llm", &self.llm),
        ]
        .into_iter()
        .filter_map(|(flag, path)| path.as_deref().map(|path| (flag, path)))
        .collect()
    }

    /// Every file must exist, and there must be a diffusion model.
    pub fn check(&self) -> Result<()> {
        if self.model.is_none() && self.diffusion_model.is_none() {
            return Err(EngineError::InvalidInput {
                field: "model",
                problem: "no model file or diffusion model file was given".into(),
            });
        }
        for (_, path) in self.flags() {
            if !path.is_file() {
                return Err(EngineError::FileUnreadable {
                    path: path.to_path_buf(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
        }
        Ok(())
    }
}
