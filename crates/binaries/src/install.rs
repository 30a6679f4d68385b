//! One variant from the manifest into `binaries/<kind>/<variant>/`: download each
//! archive through the shared downloader (resumable, hashed while it streams), refuse
//! it unless its SHA-256 is the pinned one, unpack into a staging folder, and move
//! that into place in one rename. A failure at any step leaves nothing behind.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::extract::{self, ArchiveFormat};
use super::manifest::{ArchiveFile, Candidate};
use super::{BinaryStep, LogLevel};
use switchyard_base::errors::{EngineError, Result};
use switchyard_models::download::{discard_part, fetch, part_path, Progress};

/// Where a variant was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub dir: PathBuf,
    pub executable: PathBuf,
}

/// What an install reports while it works.
pub trait InstallObserver: Send {
    fn log(&mut self, level: LogLevel, step: BinaryStep, message: String);
    fn progress(&mut self, file: &str, progress: Progress);
}

/// Everything an install needs from the manager.
#[derive(Debug)]
pub struct InstallRequest<'a> {
    pub client: &'a reqwest::Client,
    /// The download base (GitHub, or a mirror with the same paths).
    pub base_url: &'a str,
    pub binaries_dir: &'a Path,
    pub cancel: &'a CancellationToken,
}

/// The folder a variant is installed in.
pub fn variant_dir(binaries_dir: &Path, candidate: &Candidate) -> PathBuf {
    binaries_dir
        .join(candidate.kind.dir_name())
        .join(candidate.variant.dir_name())
}

pub async fn install(
    request: &InstallRequest<'_>,
    candidate: &Candidate,
    observer: &mut dyn InstallObserver,
) -> Result<Installed> {
    if let Some(unpinned) = candidate.files().find(|file| file.sha256.is_none()) {
        return Err(EngineError::BinaryUnavailable {
            kind: candidate.kind.label().to_owned(),
            problem: format!(
                "{} has no pinned SHA-256, and Switchyard runs no unverified download (docs/binaries.md says how to pin it)",
                unpinned.name
            ),
        });
    }
    let downloads = request.binaries_dir.join(".downloads");
    std::fs::create_dir_all(&downloads)
        .map_err(|source| EngineError::writing(&downloads, source))?;
    let mut archives = Vec::new();
    for file in candidate.files() {
        archives.push(download_verified(request, candidate, file, &downloads, observer).await?);
    }

    // The downloads go whatever happens next: a refused archive is not kept.
    let installed = unpack_into_place(request, candidate, &archives, observer).await;
    for archive in &archives {
        discard_part(archive);
    }
    installed
}

async fn unpack_into_place(
    request: &InstallRequest<'_>,
    candidate: &Candidate,
    archives: &[PathBuf],
    observer: &mut dyn InstallObserver,
) -> Result<Installed> {
    let staging = Staging::create(request.binaries_dir, candidate)?;
    let names = candidate.kind.executable_names();
    let archive_paths: Vec<(PathBuf, String)> = candidate
        .files()
        .zip(archives)
        .map(|(file, path)| (path.clone(), file.name.clone()))
        .collect();
    let staging_dir = staging.path.clone();
    let (root, executable) =
        tokio::task::spawn_blocking(move || unpack_all(&staging_dir, &archive_paths, &names))
            .await
            .map_err(|error| EngineError::Internal {
                problem: format!("unpacking stopped: {error}"),
            })??;
    observer.log(
        LogLevel::Info,
        BinaryStep::Extract,
        format!(
            "unpacked {}; the program is {}",
            candidate.archive.name,
            executable.display()
        ),
    );
    let target = variant_dir(request.binaries_dir, candidate);
    replace_dir(&root, &target, request.binaries_dir)?;
    drop(staging);
    Ok(Installed {
        executable: target.join(executable),
        dir: target,
    })
}

/// Downloads `file` into `downloads/` and returns its path once its SHA-256 is the
/// pinned one; a mismatch deletes it.
async fn download_verified(
    request: &InstallRequest<'_>,
    candidate: &Candidate,
    file: &ArchiveFile,
    downloads: &Path,
    observer: &mut dyn InstallObserver,
) -> Result<PathBuf> {
    let url = candidate.url(request.base_url, file);
    observer.log(
        LogLevel::Info,
        BinaryStep::Download,
        format!("downloading {url}"),
    );
    let part = part_path(&downloads.join(&file.name));
    let fetched = fetch(request.client, &url, &part, request.cancel, |progress| {
        observer.progress(&file.name, progress);
    })
    .await?;
    let expected = file.sha256.clone().unwrap_or_default();
    if fetched.sha256 != expected {
        discard_part(&part);
        return Err(EngineError::ChecksumMismatch {
            file: file.name.clone(),
            expected,
            actual: fetched.sha256,
        });
    }
    observer.log(
        LogLevel::Info,
        BinaryStep::Verify,
        format!(
            "{} ({} bytes) has the pinned SHA-256",
            file.name, fetched.size
        ),
    );
    Ok(part)
}

/// Unpacks the program's archive, then its dependencies beside it; returns the folder
/// to install and the executable's path inside it.
fn unpack_all(
    staging: &Path,
    archives: &[(PathBuf, String)],
    names: &[String],
) -> Result<(PathBuf, PathBuf)> {
    let mut root = None;
    for (index, (archive, name)) in archives.iter().enumerate() {
        let format = ArchiveFormat::from_name(name).ok_or_else(|| EngineError::InvalidInput {
            field: "manifest",
            problem: format!("`{name}` is not a .zip or .tar.gz"),
        })?;
        let into = staging.join(format!("archive-{index}"));
        std::fs::create_dir(&into).map_err(|source| EngineError::writing(&into, source))?;
        extract::extract(archive, format, &into).map_err(|error| name_archive(error, name))?;
        let unpacked = extract::single_root(&into);
        match &root {
            None => root = Some(unpacked),
            Some(program_dir) => extract::merge_into(&unpacked, program_dir, name)?,
        }
    }
    let root = root.ok_or_else(|| EngineError::Internal {
        problem: "no archive to unpack".into(),
    })?;
    let executable =
        extract::find_executable(&root, names).ok_or_else(|| EngineError::BinaryUnavailable {
            kind: names.join(" or "),
            problem: format!(
                "{} holds no {}",
                archives
                    .first()
                    .map(|(_, name)| name.as_str())
                    .unwrap_or_default(),
                names.join(" or ")
            ),
        })?;
    let full = root.join(&executable);
    extract::make_executable(&full).map_err(|source| EngineError::writing(&full, source))?;
    Ok((root, executable))
}

/// The `.part` file's name is not the archive's; errors name the archive.
fn name_archive(error: EngineError, name: &str) -> EngineError {
    match error {
        EngineError::UnsafeArchive { entry, problem, .. } => EngineError::UnsafeArchive {
            archive: name.to_owned(),
            entry,
            problem,
        },
        other => other,
    }
}

/// Puts `from` at `target` in one rename; an older install there is moved aside
/// first and deleted after.
fn replace_dir(from: &Path, target: &Path, binaries_dir: &Path) -> Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|source| EngineError::writing(parent, source))?;
    }
    let old = binaries_dir.join(format!(".old-{}", unique_suffix()));
    let had_old = std::fs::rename(target, &old).is_ok();
    std::fs::rename(from, target).map_err(|source| EngineError::writing(target, source))?;
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

/// Deletes a variant's folder (a variant that failed its tests).
pub fn remove_variant(binaries_dir: &Path, candidate: &Candidate) {
    let dir = variant_dir(binaries_dir, candidate);
    if let Err(error) = std::fs::remove_dir_all(&dir) {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(%error, dir = %dir.display(), "could not remove a failed variant");
        }
    }
}

/// A staging folder under `binaries/`, deleted when dropped.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn create(binaries_dir: &Path, candidate: &Candidate) -> Result<Self> {
        let path = binaries_dir.join(format!(
            ".staging-{}-{}-{}",
            candidate.kind.dir_name(),
            candidate.variant.dir_name(),
            unique_suffix()
        ));
        std::fs::create_dir_all(&path).map_err(|source| EngineError::writing(&path, source))?;
        Ok(Self { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}
