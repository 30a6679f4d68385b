//! Adding a model: from Hugging Face files or plain URLs to a download request, and
//! a look at a model's metadata before any of it is downloaded.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::catalog::{FileRole, ModelKind, ModelSource};
use super::hub::{self, HubFile};
use super::names::sanitize_file_name;
use super::store::{DownloadFileRequest, DownloadRequest};
use switchyard_base::errors::{EngineError, Result};
use switchyard_estimate::{first_estimate_at_speed, Backend, Bandwidth, Budget, MemoryEstimate};
use switchyard_gguf::{self as gguf, ModelFacts};

/// Where a model file is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum ModelLocation {
    Hub {
        repo: String,
        revision: String,
        path: String,
    },
    Url {
        url: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AddModelFile {
    pub location: ModelLocation,
    pub role: FileRole,
    /// Overrides (or, for plain URLs, supplies) the expected SHA-256.
    pub expected_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AddModel {
    pub name: String,
    pub kind: ModelKind,
    pub files: Vec<AddModelFile>,
}

/// What a remote model file is, read from its header alone.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct RemoteModel {
    pub url: String,
    pub facts: ModelFacts,
    #[ts(type = "number | null")]
    pub size_bytes: Option<u64>,
    /// Bytes fetched to learn this (the header, not the weights).
    #[ts(type = "number")]
    pub fetched_bytes: u64,
    /// Memory to run it at the context this machine suggests; `None` for a file
    /// that is not a language model (an image model, a projector).
    pub memory: Option<MemoryEstimate>,
}

pub fn url_of(hub_url: &str, location: &ModelLocation) -> Result<String> {
    match location {
        ModelLocation::Hub {
            repo,
            revision,
            path,
        } => hub::resolve_url(hub_url, repo, revision, path),
        ModelLocation::Url { url } if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(url.clone())
        }
        ModelLocation::Url { url } => Err(EngineError::InvalidInput {
            field: "url",
            problem: format!("`{url}` is not an http(s) address"),
        }),
    }
}

pub async fn inspect(
    client: &reqwest::Client,
    hub_url: &str,
    location: &ModelLocation,
    context: u32,
    machine: (Backend, Budget),
    bandwidth: Option<Bandwidth>,
) -> Result<RemoteModel> {
    let url = url_of(hub_url, location)?;
    let (file, stats) = gguf::read_remote(client.clone(), &url).await?;
    let facts = file.facts();
    let memory = first_estimate_at_speed(&file, context, machine, bandwidth);
    Ok(RemoteModel {
        facts,
        size_bytes: file.file_len,
        fetched_bytes: stats.bytes,
        memory,
        url,
    })
}

/// Turns the person's choice into a download request, with sizes and SHA-256 from
/// the Hub's listing where it has them.
pub async fn download_request(
    client: &reqwest::Client,
    hub_url: &str,
    add: AddModel,
) -> Result<DownloadRequest> {
    let mut listings: Vec<(String, String, Vec<HubFile>)> = Vec::new();
    let mut files = Vec::with_capacity(add.files.len());
    let mut source = ModelSource::Url;
    for file in &add.files {
        let url = url_of(hub_url, &file.location)?;
        let (file_name, listed) = match &file.location {
            ModelLocation::Hub {
                repo,
                revision,
                path,
            } => {
                source = ModelSource::HuggingFace {
                    repo: repo.clone(),
                    revision: revision.clone(),
                };
                if !listings.iter().any(|(r, v, _)| r == repo && v == revision) {
                    let listing = hub::list_files(client, hub_url, repo, revision).await?;
                    listings.push((repo.clone(), revision.clone(), listing));
                }
                let listed = listings
                    .iter()
                    .find(|(r, v, _)| r == repo && v == revision)
                    .and_then(|(_, _, listing)| {
                        listing.iter().find(|entry| entry.path == *path).cloned()
                    });
                if listed.is_none() {
                    return Err(EngineError::InvalidInput {
                        field: "path",
                        problem: format!("`{path}` is not in {repo} at {revision}"),
                    });
                }
                (path.clone(), listed)
            }
            ModelLocation::Url { url } => (url.clone(), None),
        };
        files.push(DownloadFileRequest {
            file_name: sanitize_file_name(&file_name).unwrap_or_default(),
            url,
            role: file.role,
            expected_sha256: file
                .expected_sha256
                .clone()
                .or(listed.as_ref().and_then(|l| l.sha256.clone())),
            expected_size: listed.map(|l| l.size_bytes),
        });
    }
    Ok(DownloadRequest {
        name: add.name,
        kind: add.kind,
        source,
        files,
    })
}
