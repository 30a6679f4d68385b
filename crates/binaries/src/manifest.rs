//! The pinned releases: for each program, OS, architecture and variant, the release
//! asset to download, its SHA-256, and the archives it needs beside it (the CUDA
//! runtime DLLs on Windows).
//!
//! The built-in pin is `manifest.json` beside this file, embedded at compile time.
//! `docs/binaries.md` says how to move it to a newer release:
//! `python3 scripts/pin-binaries.py --llama bNNNNN --sd master-NNN-xxxxxxx` rewrites
//! the names and fills every `sha256` and `size` from GitHub's release API (or by
//! downloading the asset when the API gives no digest). An asset whose `sha256` is
//! `null` is known by name only: Switchyard refuses to run it unverified, so the next
//! variant is tried.
//!
//! Assets are fetched from `{base}/{repo}/releases/download/{tag}/{name}`, with
//! [`DEFAULT_DOWNLOAD_BASE`] as the base unless a mirror that serves the same paths
//! is given; tests serve their own manifest from a local fixture server that way.

use serde::{Deserialize, Serialize};

use super::{BinaryKind, Variant};
use switchyard_base::errors::{EngineError, Result};

/// GitHub, where llama.cpp and stable-diffusion.cpp publish their releases.
pub const DEFAULT_DOWNLOAD_BASE: &str = "https://github.com";

const BUILTIN: &str = include_str!("manifest.json");

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub releases: Vec<Release>,
}

/// One upstream release of one program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub kind: BinaryKind,
    /// `owner/name` on GitHub (or the same path on a mirror).
    pub repo: String,
    pub tag: String,
    pub assets: Vec<Asset>,
}

/// The build of a release for one OS, architecture and variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// As Rust's `std::env::consts::OS` says it: `linux`, `macos`, `windows`.
    pub os: String,
    /// As `std::env::consts::ARCH` says it: `x86_64`, `aarch64`.
    pub arch: String,
    pub variant: Variant,
    pub archive: ArchiveFile,
    /// Archives unpacked into the same folder (the CUDA runtime DLLs on Windows).
    #[serde(default)]
    pub dependencies: Vec<ArchiveFile>,
}

/// A `.zip` or `.tar.gz` release asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveFile {
    pub name: String,
    /// Lowercase hex; `null` when not pinned yet (the asset is then never used).
    pub sha256: Option<String>,
    pub size: Option<u64>,
}

/// An asset that fits this machine, with what is needed to fetch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub kind: BinaryKind,
    pub variant: Variant,
    pub repo: String,
    pub tag: String,
    pub archive: ArchiveFile,
    pub dependencies: Vec<ArchiveFile>,
}

impl Candidate {
    /// Where `file` (the archive or one of its dependencies) is downloaded from.
    pub fn url(&self, base: &str, file: &ArchiveFile) -> String {
        format!(
            "{}/{}/releases/download/{}/{}",
            base.trim_end_matches('/'),
            self.repo,
            self.tag,
            file.name
        )
    }

    /// The archive, then its dependencies.
    pub fn files(&self) -> impl Iterator<Item = &ArchiveFile> {
        std::iter::once(&self.archive).chain(&self.dependencies)
    }
}

impl Manifest {
    /// The pin compiled into this build of Switchyard.
    pub fn builtin() -> Result<Self> {
        Self::from_json(BUILTIN)
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let manifest: Self =
            serde_json::from_str(text).map_err(|error| EngineError::InvalidInput {
                field: "manifest",
                problem: error.to_string(),
            })?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Every asset name is a plain file name and every pinned hash looks like one, so
    /// a damaged manifest cannot point a download somewhere unexpected.
    pub fn validate(&self) -> Result<()> {
        let invalid = |problem: String| EngineError::InvalidInput {
            field: "manifest",
            problem,
        };
        for release in &self.releases {
            for part in [&release.repo, &release.tag] {
                if part.is_empty() || part.contains("..") || part.contains(['?', '#', '\\']) {
                    return Err(invalid(format!("`{part}` is not a repository or tag")));
                }
            }
            for asset in &release.assets {
                for file in std::iter::once(&asset.archive).chain(&asset.dependencies) {
                    if file.name.is_empty()
                        || file.name.starts_with('.')
                        || file.name.contains(['/', '\\', '?', '#'])
                    {
                        return Err(invalid(format!("`{}` is not a file name", file.name)));
                    }
                    if super::extract::ArchiveFormat::from_name(&file.name).is_none() {
                        return Err(invalid(format!("`{}` is not a .zip or .tar.gz", file.name)));
                    }
                    if let Some(sha256) = &file.sha256 {
                        let is_hex = sha256.len() == 64
                            && sha256
                                .bytes()
                                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                        if !is_hex {
                            return Err(invalid(format!(
                                "the SHA-256 of `{}` is not 64 lowercase hex digits",
                                file.name
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The assets of `kind` built for `os` and `arch`, one per variant, in the
    /// variants' order (the first release listing a variant wins).
    pub fn candidates(&self, kind: BinaryKind, os: &str, arch: &str) -> Vec<Candidate> {
        let mut found: Vec<Candidate> = Vec::new();
        for release in self.releases.iter().filter(|r| r.kind == kind) {
            for asset in release
                .assets
                .iter()
                .filter(|a| a.os == os && a.arch == arch)
            {
                if found.iter().any(|c| c.variant == asset.variant) {
                    continue;
                }
                found.push(Candidate {
                    kind,
                    variant: asset.variant,
                    repo: release.repo.clone(),
                    tag: release.tag.clone(),
                    archive: asset.archive.clone(),
                    dependencies: asset.dependencies.clone(),
                });
            }
        }
        found.sort_by_key(|c| c.variant);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_pin_parses_and_covers_the_desktop_platforms() {
        let manifest = Manifest::builtin().unwrap();
        for kind in [BinaryKind::LlamaServer, BinaryKind::Diffusion] {
            for (os, arch) in [
                ("linux", "x86_64"),
                ("windows", "x86_64"),
                ("macos", "aarch64"),
            ] {
                assert!(
                    !manifest.candidates(kind, os, arch).is_empty(),
                    "no {kind:?} for {os}/{arch}"
                );
            }
        }
        // Windows CUDA needs its runtime DLLs.
        let cuda = manifest
            .candidates(BinaryKind::LlamaServer, "windows", "x86_64")
            .into_iter()
            .find(|c| c.variant == Variant::Cuda)
            .unwrap();
        assert_eq!(cuda.dependencies.len(), 1);
        assert!(cuda.dependencies[0].name.starts_with("cudart-"));
    }

    #[test]
    fn candidates_come_in_variant_order_with_upstream_urls() {
        let manifest = Manifest::builtin().unwrap();
        let linux = manifest.candidates(BinaryKind::LlamaServer, "linux", "x86_64");
        let variants: Vec<Variant> = linux.iter().map(|c| c.variant).collect();
        assert_eq!(variants, [Variant::Vulkan, Variant::Cpu]);
        assert_eq!(
            linux[0].url(DEFAULT_DOWNLOAD_BASE, &linux[0].archive),
            "https://github.com/ggml-org/llama.cpp/releases/download/b11429/llama-b11429-bin-ubuntu-vulkan-x64.tar.gz"
        );
        assert_eq!(
            linux[0].url("http://127.0.0.1:9/mirror/", &linux[0].archive),
            "http://127.0.0.1:9/mirror/ggml-org/llama.cpp/releases/download/b11429/llama-b11429-bin-ubuntu-vulkan-x64.tar.gz"
        );
    }

    #[test]
    fn names_that_leave_the_release_folder_are_refused() {
        for name in ["../evil.zip", "a/b.zip", ".hidden.zip", "x.exe"] {
            let json = format!(
                r#"{{"releases":[{{"kind":"llama_server","repo":"o/r","tag":"t","assets":[
                {{"os":"linux","arch":"x86_64","variant":"cpu","archive":{{"name":"{name}","sha256":null,"size":null}}}}]}}]}}"#
            );
            assert!(Manifest::from_json(&json).is_err(), "{name} accepted");
        }
        let bad_hash = r#"{"releases":[{"kind":"llama_server","repo":"o/r","tag":"t","assets":[
            {"os":"linux","arch":"x86_64","variant":"cpu","archive":{"name":"a.zip","sha256":"ABC","size":null}}]}]}"#;
        assert!(Manifest::from_json(bad_hash).is_err());
    }
}
