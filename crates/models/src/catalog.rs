//! The catalog of installed models: `models/catalog.json`, written atomically. A
//! model is in it only once all its files are complete and verified.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use switchyard_base::errors::{EngineError, Result};
use switchyard_base::fs_atomic;
use switchyard_gguf::ModelFacts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ModelKind {
    Llm,
    Diffusion,
}

/// What a file is to its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum FileRole {
    /// The model itself, or one shard of a split model.
    Weights,
    /// A multimodal projector (vision) for an LLM.
    Mmproj,
    /// A diffusion model's VAE.
    Vae,
    /// A diffusion model's text encoder (CLIP, T5, …).
    TextEncoder,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ModelFile {
    pub role: FileRole,
    /// The name inside the model's folder (sanitized).
    pub file_name: String,
    #[ts(type = "number")]
    pub size_bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum ModelSource {
    HuggingFace { repo: String, revision: String },
    Url,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct InstalledModel {
    /// Also the folder name under `models/`.
    pub id: String,
    pub name: String,
    pub kind: ModelKind,
    pub files: Vec<ModelFile>,
    pub source: ModelSource,
    /// From the first weights file's GGUF header.
    pub facts: Option<ModelFacts>,
    #[ts(type = "number")]
    pub added_at_ms: u64,
}

impl InstalledModel {
    pub fn size_bytes(&self) -> u64 {
        self.files.iter().map(|file| file.size_bytes).sum()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub models: Vec<InstalledModel>,
}

impl Catalog {
    pub fn path(models_dir: &Path) -> PathBuf {
        models_dir.join("catalog.json")
    }

    /// Reads the catalog; a missing one is empty. A damaged one is kept aside as
    /// `catalog.json.damaged` and reported, never silently overwritten.
    pub fn load(models_dir: &Path) -> Result<Self> {
        fs_atomic::read_json(&Self::path(models_dir))
    }

    pub fn save(&self, models_dir: &Path) -> Result<()> {
        fs_atomic::write_json(&Self::path(models_dir), self).map_err(|source| {
            EngineError::StorageUnavailable {
                path: models_dir.to_path_buf(),
                source,
            }
        })
    }

    pub fn get(&self, id: &str) -> Option<&InstalledModel> {
        self.models.iter().find(|model| model.id == id)
    }
}
