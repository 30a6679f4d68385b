//! [`BinaryManager`]: the one place that decides which llama-server and sd this
//! machine runs. A cached start costs a `stat`; otherwise each variant is installed
//! and tested in turn, the first that works is kept and the others are removed.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

use super::cache::{self, CachedValidation, Freshness, ValidationCache};
use super::choose::{self, MachineFacts};
use super::install::{self, InstallObserver, InstallRequest};
use super::manifest::{Candidate, Manifest, DEFAULT_DOWNLOAD_BASE};
use super::validate::{self, RealTest, TestLimits};
use super::{BinariesEvent, BinaryKind, BinaryLog, BinaryStep, LogLevel, Variant};
use switchyard_base::emit::Emitter;
use switchyard_base::errors::{EngineError, ErrorCode, Result};
use switchyard_base::locks::{read, write};
use switchyard_models::download::{sha256_file, Progress};

mod ensure;
mod records;

/// How often download progress is announced.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What [`BinaryManager::ensure`] should do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsureBinary {
    /// Test again even when the cache says the binary passed (after a driver update).
    pub force_validation: bool,
    /// A model for the real test (one token, one small image). Without one only the
    /// basic test runs, and a later call with a model runs the real test.
    pub test_model: Option<PathBuf>,
    /// The user's own executable instead of a downloaded one.
    pub custom_path: Option<PathBuf>,
}

/// The binary in use, for the Binary setup card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct BinaryStatus {
    pub kind: BinaryKind,
    /// `null` for a user-supplied binary.
    pub variant: Option<Variant>,
    pub version: String,
    pub path: String,
    /// The real test passed, not only `--version` / `--help`.
    pub real_tested: bool,
    #[ts(type = "number")]
    pub validated_at_ms: u64,
    /// This answer came from the validation cache: no test ran.
    pub from_cache: bool,
}

/// What can be changed while the app runs (and what tests replace).
#[derive(Debug, Clone)]
struct Config {
    manifest: Manifest,
    download_base: String,
    limits: TestLimits,
}

#[derive(Debug)]
pub struct BinaryManager {
    binaries_dir: PathBuf,
    http: reqwest::Client,
    events: Emitter<BinariesEvent>,
    config: RwLock<Config>,
    cache: Mutex<ValidationCache>,
    /// One setup at a time per program: two callers must not install the same
    /// variant into the same folder at once.
    llama_lock: tokio::sync::Mutex<()>,
    diffusion_lock: tokio::sync::Mutex<()>,
    /// Where the programs under test are recorded while they run (the engine's
    /// state folder), so a crash does not leave one behind for good.
    pid_dir: RwLock<Option<PathBuf>>,
}

impl BinaryManager {
    /// With the built-in pin and GitHub as the download base.
    pub fn new(
        binaries_dir: PathBuf,
        http: reqwest::Client,
        events: Emitter<BinariesEvent>,
    ) -> Self {
        let manifest = Manifest::builtin().unwrap_or_else(|error| {
            // A unit test keeps the embedded pin valid; should it ever not be, the
            // user-supplied path still works.
            tracing::error!(%error, "the built-in binary manifest is invalid");
            Manifest::default()
        });
        remove_interrupted_work(&binaries_dir);
        Self {
            cache: Mutex::new(ValidationCache::load(&binaries_dir)),
            binaries_dir,
            http,
            events,
            config: RwLock::new(Config {
                manifest,
                download_base: DEFAULT_DOWNLOAD_BASE.to_owned(),
                limits: TestLimits::default(),
            }),
            llama_lock: tokio::sync::Mutex::new(()),
            diffusion_lock: tokio::sync::Mutex::new(()),
            pid_dir: RwLock::new(None),
        }
    }

    /// Records each program under test in `dir` while it runs.
    pub fn set_pid_dir(&self, dir: PathBuf) {
        *write(&self.pid_dir) = Some(dir);
    }

    /// Replaces the pinned releases (tests; a future "update binaries" feature).
    pub fn set_manifest(&self, manifest: Manifest) {
        write(&self.config).manifest = manifest;
    }

    /// Downloads from a mirror that serves `{repo}/releases/download/{tag}/{name}`.
    pub fn set_download_base(&self, base: impl Into<String>) {
        write(&self.config).download_base = base.into();
    }

    /// The pinned upstream release of `kind` (`b11429`, `master-920-2f88688`), for
    /// the About box and problem reports.
    pub fn pinned_release(&self, kind: BinaryKind) -> Option<String> {
        read(&self.config)
            .manifest
            .releases
            .iter()
            .find(|release| release.kind == kind)
            .map(|release| format!("{} {}", release.repo, release.tag))
    }

    /// Where archives are downloaded from now.
    pub fn download_base(&self) -> String {
        read(&self.config).download_base.clone()
    }

    pub fn set_test_limits(&self, limits: TestLimits) {
        write(&self.config).limits = limits;
    }

    pub fn binaries_dir(&self) -> &Path {
        &self.binaries_dir
    }

    /// The downloaded binary in use, as last validated; no test, no file access.
    pub fn status(&self, kind: BinaryKind) -> Option<BinaryStatus> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let variant = *cache.chosen.get(kind.dir_name())?;
        let entry = cache
            .entries
            .get(&cache::entry_key(kind, Some(variant), Path::new("")))?;
        Some(status_of(entry, true))
    }

    /// The user's own executable at `path`, as last validated; `None` when it has not
    /// passed its tests (or is gone). No test runs; only the path is resolved.
    pub fn custom_status(&self, kind: BinaryKind, path: &Path) -> Option<BinaryStatus> {
        let executable = path.canonicalize().ok()?;
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = cache
            .entries
            .get(&cache::entry_key(kind, None, &executable))?;
        Some(status_of(entry, true))
    }
}

/// Staging folders of an unpack and replaced installs that a crash left behind.
fn remove_interrupted_work(binaries_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(binaries_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".staging-") || name.starts_with(".old-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn status_of(entry: &CachedValidation, from_cache: bool) -> BinaryStatus {
    BinaryStatus {
        kind: entry.kind,
        variant: entry.variant,
        version: entry.version.clone(),
        path: entry.executable.display().to_string(),
        real_tested: entry.real_tested,
        validated_at_ms: entry.validated_at_ms,
        from_cache,
    }
}

fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}
