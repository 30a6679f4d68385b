//! What has been validated: `binaries/validation.json`, written atomically, one entry
//! per program and variant (or user-supplied path), keyed to the executable's SHA-256.
//! A later start checks size and modification time first (a `stat`, microseconds)
//! and hashes the file only when one of them changed; a match skips the tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::{BinaryKind, Variant};
use switchyard_base::fs_atomic;
use switchyard_models::download::sha256_file;

pub const CACHE_FILE: &str = "validation.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationCache {
    /// By [`entry_key`].
    #[serde(default)]
    pub entries: BTreeMap<String, CachedValidation>,
    /// The installed variant in use, by [`BinaryKind::dir_name`].
    #[serde(default)]
    pub chosen: BTreeMap<String, Variant>,
}

/// One executable that passed its tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedValidation {
    pub kind: BinaryKind,
    /// `None` for a user-supplied binary.
    pub variant: Option<Variant>,
    pub executable: PathBuf,
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub modified_ns: u64,
    pub sha256: String,
    pub version: String,
    /// The real test (a token, an image) passed too, not only the basic one.
    pub real_tested: bool,
    /// The pinned SHA-256 of the release archive it came from (managed installs).
    pub archive_sha256: Option<String>,
    pub validated_at_ms: u64,
}

/// `llama-server/vulkan`, or `llama-server/custom:/usr/bin/llama-server`.
pub fn entry_key(kind: BinaryKind, variant: Option<Variant>, executable: &Path) -> String {
    match variant {
        Some(variant) => format!("{}/{}", kind.dir_name(), variant.dir_name()),
        None => format!("{}/custom:{}", kind.dir_name(), executable.display()),
    }
}

/// Size and modification time: what changes when a file is replaced or rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub size: u64,
    pub modified_ns: u64,
}

pub fn stamp(path: &Path) -> std::io::Result<FileStamp> {
    let meta = std::fs::metadata(path)?;
    let modified_ns = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Ok(FileStamp {
        size: meta.len(),
        modified_ns,
    })
}

/// What a cached entry says about the executable as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Same size and time: trusted without reading the file.
    Unchanged,
    /// Size or time changed but the content hashes the same (touched, copied back).
    SameContent(FileStamp),
    /// Gone, or different content: validate again.
    Changed(String),
}

impl CachedValidation {
    pub async fn freshness(&self) -> Freshness {
        let now = match stamp(&self.executable) {
            Ok(now) => now,
            Err(error) => return Freshness::Changed(format!("cannot be read: {error}")),
        };
        if now.size == self.size && now.modified_ns == self.modified_ns {
            return Freshness::Unchanged;
        }
        match sha256_file(&self.executable).await {
            Ok((_, sha256)) if sha256 == self.sha256 => Freshness::SameContent(now),
            Ok(_) => Freshness::Changed("changed since it was validated".into()),
            Err(error) => Freshness::Changed(error.to_string()),
        }
    }
}

impl ValidationCache {
    /// The cache in `binaries_dir`; a missing or damaged file is an empty cache (the
    /// cost is one validation, never a failure to start).
    pub fn load(binaries_dir: &Path) -> Self {
        let path = binaries_dir.join(CACHE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(%error, path = %path.display(), "validation cache unreadable; starting empty");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    pub fn save(&self, binaries_dir: &Path) -> std::io::Result<()> {
        fs_atomic::write_json(&binaries_dir.join(CACHE_FILE), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(executable: PathBuf, stamp: FileStamp, sha256: String) -> CachedValidation {
        CachedValidation {
            kind: BinaryKind::LlamaServer,
            variant: Some(Variant::Cpu),
            executable,
            size: stamp.size,
            modified_ns: stamp.modified_ns,
            sha256,
            version: "1".into(),
            real_tested: true,
            archive_sha256: None,
            validated_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn unchanged_files_are_trusted_touched_ones_hashed_changed_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("llama-server");
        std::fs::write(&exe, b"program").unwrap();
        let (_, sha256) = sha256_file(&exe).await.unwrap();
        let cached = entry(exe.clone(), stamp(&exe).unwrap(), sha256);
        assert_eq!(cached.freshness().await, Freshness::Unchanged);

        let mut touched = cached.clone();
        touched.modified_ns -= 1;
        assert!(matches!(
            touched.freshness().await,
            Freshness::SameContent(_)
        ));

        std::fs::write(&exe, b"another program").unwrap();
        assert!(matches!(cached.freshness().await, Freshness::Changed(_)));
        std::fs::remove_file(&exe).unwrap();
        assert!(matches!(cached.freshness().await, Freshness::Changed(_)));
    }

    #[test]
    fn damaged_cache_reads_as_empty_and_saves_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CACHE_FILE), b"{not json").unwrap();
        assert_eq!(
            ValidationCache::load(dir.path()),
            ValidationCache::default()
        );
        let mut cache = ValidationCache::default();
        cache.chosen.insert("llama-server".into(), Variant::Vulkan);
        cache.save(dir.path()).unwrap();
        assert_eq!(ValidationCache::load(dir.path()), cache);
        assert_eq!(
            entry_key(BinaryKind::Diffusion, None, Path::new("/opt/sd")),
            "sd/custom:/opt/sd"
        );
    }
}
