//! The short list of models the first-run wizard offers: small, well-known, openly
//! downloadable GGUF (and one image) models, with their sizes and licenses, so a
//! person who knows nothing about models still gets one that runs.

use serde::Serialize;
use ts_rs::TS;

use crate::models::{AddModel, AddModelFile, FileRole, ModelKind, ModelLocation};

const MB: u64 = 1_000_000;

/// One model of the curated list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct CuratedModel {
    /// Stable key, also the installed model's id once downloaded.
    pub id: String,
    pub name: String,
    pub kind: ModelKind,
    /// "0.5B", "7B": what people compare models by.
    pub parameters: String,
    /// Hugging Face repository and file (fetched from the `hub_url` setting, so a
    /// mirror or a test's fixture Hub serves them too).
    pub repo: String,
    pub file: String,
    /// The file's size as published (the download itself checks the Hub's listing).
    #[ts(type = "number")]
    pub size_bytes: u64,
    /// Transformer layers (0 for an image model): each costs the runtime a little
    /// time per token, which speed predictions count.
    pub layers: u32,
    pub license: String,
    pub license_url: String,
    /// One plain sentence: what it is good for.
    pub summary: String,
}

impl CuratedModel {
    /// The download that installs this model, under its curated id.
    pub fn add_request(&self) -> AddModel {
        AddModel {
            name: self.id.clone(),
            kind: self.kind,
            files: vec![AddModelFile {
                location: ModelLocation::Hub {
                    repo: self.repo.clone(),
                    revision: "main".to_owned(),
                    path: self.file.clone(),
                },
                role: FileRole::Weights,
                expected_sha256: None,
            }],
        }
    }
}

struct Entry {
    id: &'static str,
    name: &'static str,
    kind: ModelKind,
    parameters: &'static str,
    repo: &'static str,
    file: &'static str,
    size_mb: u64,
    layers: u32,
    license: &'static str,
    license_url: &'static str,
    summary: &'static str,
}

const APACHE_2: &str = "https://www.apache.org/licenses/LICENSE-2.0";
const LLAMA_3_2: &str =
    "https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct/blob/main/LICENSE.txt";

/// Smallest first within each kind; sizes are the published Q4_K_M files.
const ENTRIES: &[Entry] = &[
    Entry {
        id: "qwen2.5-0.5b-instruct",
        name: "Qwen2.5 0.5B Instruct",
        kind: ModelKind::Llm,
        parameters: "0.5B",
        repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        file: "qwen2.5-0.5b-instruct-q4_k_m.gguf",
        size_mb: 491,
        layers: 24,
        license: "Apache-2.0",
        license_url: APACHE_2,
        summary: "Tiny and fast; fine for short answers on any machine.",
    },
    Entry {
        id: "llama-3.2-1b-instruct",
        name: "Llama 3.2 1B Instruct",
        kind: ModelKind::Llm,
        parameters: "1B",
        repo: "bartowski/Llama-3.2-1B-Instruct-GGUF",
        file: "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        size_mb: 808,
        layers: 16,
        license: "Llama 3.2 Community License",
        license_url: LLAMA_3_2,
        summary: "Small general assistant from Meta.",
    },
    Entry {
        id: "qwen2.5-1.5b-instruct",
        name: "Qwen2.5 1.5B Instruct",
        kind: ModelKind::Llm,
        parameters: "1.5B",
        repo: "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        file: "qwen2.5-1.5b-instruct-q4_k_m.gguf",
        size_mb: 1_120,
        layers: 28,
        license: "Apache-2.0",
        license_url: APACHE_2,
        summary: "Good small assistant; quick on a CPU.",
    },
    Entry {
        id: "llama-3.2-3b-instruct",
        name: "Llama 3.2 3B Instruct",
        kind: ModelKind::Llm,
        parameters: "3B",
        repo: "bartowski/Llama-3.2-3B-Instruct-GGUF",
        file: "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        size_mb: 2_020,
        layers: 28,
        license: "Llama 3.2 Community License",
        license_url: LLAMA_3_2,
        summary: "Capable general assistant for laptops.",
    },
    Entry {
        id: "qwen2.5-3b-instruct",
        name: "Qwen2.5 3B Instruct",
        kind: ModelKind::Llm,
        parameters: "3B",
        repo: "Qwen/Qwen2.5-3B-Instruct-GGUF",
        file: "qwen2.5-3b-instruct-q4_k_m.gguf",
        size_mb: 2_100,
        layers: 36,
        license: "Qwen Research License",
        license_url: "https://huggingface.co/Qwen/Qwen2.5-3B-Instruct/blob/main/LICENSE",
        summary: "Strong 3B model; research and non-commercial use.",
    },
    Entry {
        id: "qwen2.5-7b-instruct",
        name: "Qwen2.5 7B Instruct",
        kind: ModelKind::Llm,
        parameters: "7B",
        repo: "bartowski/Qwen2.5-7B-Instruct-GGUF",
        file: "Qwen2.5-7B-Instruct-Q4_K_M.gguf",
        size_mb: 4_680,
        layers: 28,
        license: "Apache-2.0",
        license_url: APACHE_2,
        summary: "The best of the list; wants a GPU or plenty of RAM.",
    },
    Entry {
        id: "sd-turbo",
        name: "SD-Turbo",
        kind: ModelKind::Diffusion,
        parameters: "0.9B",
        repo: "stabilityai/sd-turbo",
        file: "sd_turbo.safetensors",
        size_mb: 5_210,
        layers: 0,
        license: "Stability AI Community License",
        license_url: "https://huggingface.co/stabilityai/sd-turbo/blob/main/LICENSE.md",
        summary: "Images in one to four steps at 512×512.",
    },
];

/// The whole curated list, smallest first within each kind.
pub fn curated_models() -> Vec<CuratedModel> {
    ENTRIES
        .iter()
        .map(|entry| CuratedModel {
            id: entry.id.to_owned(),
            name: entry.name.to_owned(),
            kind: entry.kind,
            parameters: entry.parameters.to_owned(),
            repo: entry.repo.to_owned(),
            file: entry.file.to_owned(),
            size_bytes: entry.size_mb * MB,
            layers: entry.layers,
            license: entry.license.to_owned(),
            license_url: entry.license_url.to_owned(),
            summary: entry.summary.to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::names::model_id;

    #[test]
    fn ids_are_unique_and_are_the_installed_ids() {
        let models = curated_models();
        let mut ids: Vec<&str> = models.iter().map(|model| model.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), models.len(), "duplicate curated id");
        for model in &models {
            // The store names a model's folder from its name: the curated id must
            // survive that unchanged, or the wizard would not find what it installed.
            assert_eq!(model_id(&model.add_request().name), model.id);
        }
    }

    #[test]
    fn every_kind_is_ordered_smallest_first_with_a_license() {
        let models = curated_models();
        for kind in [ModelKind::Llm, ModelKind::Diffusion] {
            let sizes: Vec<u64> = models
                .iter()
                .filter(|model| model.kind == kind)
                .map(|model| model.size_bytes)
                .collect();
            assert!(!sizes.is_empty());
            assert!(sizes.windows(2).all(|pair| pair[0] <= pair[1]), "{sizes:?}");
        }
        assert!(models
            .iter()
            .all(|model| !model.license.is_empty() && model.license_url.starts_with("https://")));
    }

    #[test]
    fn the_add_request_names_the_hub_file_as_weights() {
        let model = &curated_models()[0];
        let add = model.add_request();
        assert_eq!(add.kind, ModelKind::Llm);
        assert_eq!(
            add.files,
            vec![AddModelFile {
                location: ModelLocation::Hub {
                    repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF".into(),
                    revision: "main".into(),
                    path: "qwen2.5-0.5b-instruct-q4_k_m.gguf".into(),
                },
                role: FileRole::Weights,
                expected_sha256: None,
            }]
        );
    }
}
