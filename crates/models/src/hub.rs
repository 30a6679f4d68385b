//! Hugging Face Hub: a repository's file list (with the SHA-256 of LFS files) and
//! the download URL of a file. The Hub's address is a setting, so mirrors and the
//! tests' fixture server work the same way.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::catalog::FileRole;
use super::guess::{natural_order, FileGuess};
use switchyard_base::errors::{EngineError, Result};

pub const DEFAULT_HUB_URL: &str = "https://huggingface.co";

/// A file in a Hub repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct HubFile {
    pub path: String,
    #[ts(type = "number")]
    pub size_bytes: u64,
    /// From the LFS pointer, when the Hub stores the file in LFS (all GGUF files).
    pub sha256: Option<String>,
    /// What its name suggests (the form prefills from it).
    pub guess: FileGuess,
}

impl HubFile {
    /// A file of `repo`, with what its name (and the repository's) suggests.
    pub fn new(path: String, size_bytes: u64, sha256: Option<String>, repo: &str) -> Self {
        Self {
            guess: FileGuess::of(repo, &path),
            path,
            size_bytes,
            sha256,
        }
    }
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    lfs: Option<LfsInfo>,
}

#[derive(Deserialize)]
struct LfsInfo {
    oid: String,
    size: u64,
}

/// Checks `owner/name`: one slash, and only the characters the Hub allows.
pub fn validate_repo(repo: &str) -> Result<()> {
    let valid_part = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if valid_part(owner) && valid_part(name) => Ok(()),
        _ => Err(EngineError::InvalidInput {
            field: "repo",
            problem: format!("`{repo}` is not a Hugging Face repository (owner/name)"),
        }),
    }
}

fn validate_path(path: &str) -> Result<()> {
    if path.is_empty()
        || path.starts_with('/')
        || path.split('/').any(|part| part == ".." || part.is_empty())
    {
        return Err(EngineError::InvalidInput {
            field: "file",
            problem: format!("`{path}` is not a file path in a repository"),
        });
    }
    Ok(())
}

fn validate_revision(revision: &str) -> Result<()> {
    if revision.is_empty()
        || revision.contains("..")
        || revision
            .chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '#')
    {
        return Err(EngineError::InvalidInput {
            field: "revision",
            problem: format!("`{revision}` is not a branch, tag or commit"),
        });
    }
    Ok(())
}

/// The URL that serves a file (the Hub redirects it to its CDN).
pub fn resolve_url(hub_url: &str, repo: &str, revision: &str, path: &str) -> Result<String> {
    validate_repo(repo)?;
    validate_revision(revision)?;
    validate_path(path)?;
    Ok(format!(
        "{}/{repo}/resolve/{revision}/{path}",
        hub_url.trim_end_matches('/')
    ))
}

/// Every file of a repository at a revision, weights first (see
/// [`sort_listing`]).
pub async fn list_files(
    client: &reqwest::Client,
    hub_url: &str,
    repo: &str,
    revision: &str,
) -> Result<Vec<HubFile>> {
    validate_repo(repo)?;
    validate_revision(revision)?;
    let url = format!(
        "{}/api/models/{repo}/tree/{revision}?recursive=true",
        hub_url.trim_end_matches('/')
    );
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|error| EngineError::Network {
            url: url.clone(),
            problem: error.to_string(),
        })?;
    if !response.status().is_success() {
        return Err(EngineError::HttpStatus {
            url,
            status: response.status().as_u16(),
        });
    }
    let entries: Vec<TreeEntry> = response
        .json()
        .await
        .map_err(|error| EngineError::Network {
            url: url.clone(),
            problem: format!("unexpected answer: {error}"),
        })?;
    let mut files: Vec<HubFile> = entries
        .into_iter()
        .filter(|entry| entry.kind == "file")
        .map(|entry| {
            let size_bytes = entry.lfs.as_ref().map_or(entry.size, |lfs| lfs.size);
            let sha256 = entry
                .lfs
                .map(|lfs| lfs.oid.to_ascii_lowercase())
                .filter(|oid| oid.len() == 64);
            HubFile::new(entry.path, size_bytes, sha256, repo)
        })
        .collect();
    sort_listing(&mut files);
    Ok(files)
}

/// A Hub listing in the order the Add form shows it: weights first, smallest to
/// largest (so quantizations line up by size), then the files that go with weights
/// (projectors, VAEs, encoders), then everything else; names in natural order
/// ("Q2" before "Q10") within each group.
pub fn sort_listing(files: &mut [HubFile]) {
    let group = |file: &HubFile| match file.guess.role {
        Some(FileRole::Weights) => 0,
        Some(_) => 1,
        None => 2,
    };
    files.sort_by(|a, b| {
        group(a)
            .cmp(&group(b))
            .then_with(|| {
                if group(a) == 0 {
                    a.size_bytes.cmp(&b.size_bytes)
                } else {
                    Ordering::Equal
                }
            })
            .then_with(|| natural_order(&a.path, &b.path))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(path: &str, size_bytes: u64) -> HubFile {
        HubFile::new(
            path.into(),
            size_bytes,
            None,
            "bartowski/Qwen2-VL-7B-Instruct-GGUF",
        )
    }

    #[test]
    fn a_listing_puts_weights_first_by_size_then_companions_then_the_rest_by_name() {
        let mut files = vec![
            listed(".gitattributes", 2_391),
            listed("README.md", 11_842),
            listed("Qwen2-VL-7B-Instruct.imatrix", 5_229_060),
            listed("Qwen2-VL-7B-Instruct-Q8_0.gguf", 8_000),
            listed("mmproj-Qwen2-VL-7B-Instruct-f16.gguf", 600),
            listed("Qwen2-VL-7B-Instruct-IQ2_M.gguf", 2_000),
            listed("Qwen2-VL-7B-Instruct-f16.gguf", 16_000),
            listed("Qwen2-VL-7B-Instruct-Q4_K_M.gguf", 4_000),
            listed("Qwen2-VL-7B-Instruct-Q4_K_S.gguf", 4_000),
        ];
        sort_listing(&mut files);
        let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Qwen2-VL-7B-Instruct-IQ2_M.gguf",
                "Qwen2-VL-7B-Instruct-Q4_K_M.gguf",
                "Qwen2-VL-7B-Instruct-Q4_K_S.gguf",
                "Qwen2-VL-7B-Instruct-Q8_0.gguf",
                "Qwen2-VL-7B-Instruct-f16.gguf",
                "mmproj-Qwen2-VL-7B-Instruct-f16.gguf",
                ".gitattributes",
                "Qwen2-VL-7B-Instruct.imatrix",
                "README.md",
            ]
        );
    }

    #[test]
    fn urls_are_built_only_from_valid_parts() {
        assert_eq!(
            resolve_url(
                "https://hub.example/",
                "owner/model-GGUF",
                "main",
                "sub/m-Q4_K_M.gguf"
            )
            .unwrap(),
            "https://hub.example/owner/model-GGUF/resolve/main/sub/m-Q4_K_M.gguf"
        );
        for repo in ["owner", "a/b/c", "../x", "o/..", "o/na me", ""] {
            assert!(
                resolve_url("https://h", repo, "main", "f.gguf").is_err(),
                "{repo}"
            );
        }
        for path in ["../f.gguf", "/etc/passwd", "a//b", ""] {
            assert!(
                resolve_url("https://h", "o/r", "main", path).is_err(),
                "{path}"
            );
        }
        assert!(resolve_url("https://h", "o/r", "main?x", "f").is_err());
    }
}
