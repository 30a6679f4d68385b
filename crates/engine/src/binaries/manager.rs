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
use super::{BinaryKind, BinaryLog, BinaryStep, LogLevel, Variant};
use crate::errors::{EngineError, ErrorCode, Result};
use crate::events::{EngineEvent, EventBus};
use crate::locks::{read, write};
use crate::models::download::{sha256_file, Progress};

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
    events: EventBus,
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
    pub fn new(binaries_dir: PathBuf, http: reqwest::Client, events: EventBus) -> Self {
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

    /// A binary of `kind` that works here: the user's own (`custom_path`), else the
    /// downloaded one in use, validated again only when it changed, when a real test
    /// is now possible, or when forced; else the first variant that installs and
    /// passes its tests.
    pub async fn ensure(
        &self,
        kind: BinaryKind,
        options: &EnsureBinary,
        facts: &MachineFacts,
        cancel: &CancellationToken,
    ) -> Result<BinaryStatus> {
        let _one_at_a_time = match kind {
            BinaryKind::LlamaServer => self.llama_lock.lock().await,
            BinaryKind::Diffusion => self.diffusion_lock.lock().await,
        };
        let config = read(&self.config).clone();
        match &options.custom_path {
            Some(path) => self.ensure_custom(kind, path, options, &config).await,
            None => {
                self.ensure_managed(kind, options, facts, &config, cancel)
                    .await
            }
        }
    }

    async fn ensure_custom(
        &self,
        kind: BinaryKind,
        path: &Path,
        options: &EnsureBinary,
        config: &Config,
    ) -> Result<BinaryStatus> {
        let executable = path
            .canonicalize()
            .map_err(|source| EngineError::FileUnreadable {
                path: path.to_path_buf(),
                source,
            })?;
        if !executable.is_file() {
            return Err(EngineError::InvalidInput {
                field: "custom_path",
                problem: format!("{} is not a file", executable.display()),
            });
        }
        let key = cache::entry_key(kind, None, &executable);
        if !options.force_validation {
            if let Some(status) = self.cached(kind, None, &key, None, options).await {
                return Ok(status);
            }
        }
        self.log(
            kind,
            None,
            LogLevel::Info,
            BinaryStep::Plan,
            format!("testing {}", executable.display()),
            None,
        );
        match self
            .test(kind, None, &executable, options, &config.limits)
            .await
        {
            Ok(entry) => {
                let status = status_of(&entry, false);
                self.remember(key, entry, None);
                Ok(status)
            }
            Err(reason) => {
                self.forget(&key);
                Err(EngineError::BinaryRejected {
                    path: executable,
                    reason,
                })
            }
        }
    }

    async fn ensure_managed(
        &self,
        kind: BinaryKind,
        options: &EnsureBinary,
        facts: &MachineFacts,
        config: &Config,
        cancel: &CancellationToken,
    ) -> Result<BinaryStatus> {
        let candidates = config.manifest.candidates(kind, &facts.os, &facts.arch);
        let mut resume_from = None;
        if !options.force_validation {
            let (chosen, validated_pin) = {
                let cache = self
                    .cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let chosen = cache.chosen.get(kind.dir_name()).copied();
                let validated_pin = chosen.and_then(|variant| {
                    cache
                        .entries
                        .get(&cache::entry_key(kind, Some(variant), Path::new("")))
                        .and_then(|entry| entry.archive_sha256.clone())
                });
                (chosen, validated_pin)
            };
            if let Some(variant) = chosen {
                let pinned = candidates
                    .iter()
                    .find(|c| c.variant == variant)
                    .and_then(|c| c.archive.sha256.clone());
                let key = cache::entry_key(kind, Some(variant), Path::new(""));
                if let Some(status) = self
                    .cached(kind, Some(variant), &key, pinned.as_deref(), options)
                    .await
                {
                    return Ok(status);
                }
                // Testing the build in use again (it changed, or a model is here now)
                // starts from it: the better variants failed before, and only
                // `force_validation` or a new pin tries them again.
                if pinned.is_some() && pinned == validated_pin {
                    resume_from = Some(variant);
                }
            }
        }

        let mut plan = choose::plan(candidates, facts);
        if let Some(first) = resume_from {
            plan.to_try.retain(|candidate| candidate.variant >= first);
        }
        for (variant, reason) in &plan.skipped {
            self.log(
                kind,
                Some(*variant),
                LogLevel::Info,
                BinaryStep::Plan,
                format!("not tried: {reason}"),
                None,
            );
        }
        if plan.to_try.is_empty() {
            let problem = format!("no build for {} on {}", facts.arch, facts.os);
            return Err(self.unavailable(kind, problem));
        }
        let order: Vec<&str> = plan.to_try.iter().map(|c| c.variant.dir_name()).collect();
        self.log(
            kind,
            None,
            LogLevel::Info,
            BinaryStep::Plan,
            format!("trying in this order: {}", order.join(", ")),
            None,
        );

        let mut failures = Vec::new();
        for candidate in &plan.to_try {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            match self.try_candidate(candidate, options, config, cancel).await {
                Ok(status) => {
                    self.remove_other_variants(kind, candidate.variant);
                    self.log(
                        kind,
                        Some(candidate.variant),
                        LogLevel::Info,
                        BinaryStep::Choose,
                        format!(
                            "using the {} build, version {}",
                            candidate.variant.dir_name(),
                            status.version
                        ),
                        None,
                    );
                    return Ok(status);
                }
                Err(EngineError::Cancelled) => return Err(EngineError::Cancelled),
                Err(error) => failures.push(format!("{}: {error}", candidate.variant.dir_name())),
            }
        }
        let problem = format!("every build failed ({})", failures.join("; "));
        Err(self.unavailable(kind, problem))
    }

    /// Installs (unless the same pinned build is there already) and tests one
    /// variant; a failure is logged and leaves nothing on disk.
    async fn try_candidate(
        &self,
        candidate: &Candidate,
        options: &EnsureBinary,
        config: &Config,
        cancel: &CancellationToken,
    ) -> Result<BinaryStatus> {
        let kind = candidate.kind;
        let variant = candidate.variant;
        let key = cache::entry_key(kind, Some(variant), Path::new(""));
        let executable = match self.installed_executable(candidate, &key) {
            Some(executable) => {
                self.log(
                    kind,
                    Some(variant),
                    LogLevel::Info,
                    BinaryStep::Download,
                    format!("{} is installed already", candidate.archive.name),
                    None,
                );
                executable
            }
            None => {
                let request = InstallRequest {
                    client: &self.http,
                    base_url: &config.download_base,
                    binaries_dir: &self.binaries_dir,
                    cancel,
                };
                let mut observer = Observer {
                    manager: self,
                    kind,
                    variant,
                    last_progress: None,
                };
                match install::install(&request, candidate, &mut observer).await {
                    Ok(installed) => installed.executable,
                    Err(error) => {
                        install::remove_variant(&self.binaries_dir, candidate);
                        self.forget(&key);
                        let step = match error.code() {
                            ErrorCode::ChecksumMismatch | ErrorCode::BinaryUnavailable => {
                                BinaryStep::Verify
                            }
                            ErrorCode::UnsafeArchive | ErrorCode::FileUnreadable => {
                                BinaryStep::Extract
                            }
                            _ => BinaryStep::Download,
                        };
                        let level = if error.code() == ErrorCode::Cancelled {
                            LogLevel::Warn
                        } else {
                            LogLevel::Error
                        };
                        self.log(
                            kind,
                            Some(variant),
                            level,
                            step,
                            error.to_string(),
                            Some(error.code()),
                        );
                        return Err(error);
                    }
                }
            }
        };
        match self
            .test(kind, Some(variant), &executable, options, &config.limits)
            .await
        {
            Ok(mut entry) => {
                entry.archive_sha256.clone_from(&candidate.archive.sha256);
                let status = status_of(&entry, false);
                self.remember(key, entry, Some((kind, variant)));
                Ok(status)
            }
            Err(reason) => {
                install::remove_variant(&self.binaries_dir, candidate);
                self.forget(&key);
                Err(EngineError::BinaryRejected {
                    path: executable,
                    reason,
                })
            }
        }
    }

    /// The executable of this variant when the same pinned build is installed.
    fn installed_executable(&self, candidate: &Candidate, key: &str) -> Option<PathBuf> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = cache.entries.get(key)?;
        (entry.archive_sha256 == candidate.archive.sha256 && entry.executable.is_file())
            .then(|| entry.executable.clone())
    }

    /// The cached answer when it still holds: same pinned build (managed), the file
    /// unchanged (by size and time, or by hash when those moved), and a real test
    /// done if one is possible now.
    async fn cached(
        &self,
        kind: BinaryKind,
        variant: Option<Variant>,
        key: &str,
        pinned_archive: Option<&str>,
        options: &EnsureBinary,
    ) -> Option<BinaryStatus> {
        let entry = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .get(key)
            .cloned()?;
        if variant.is_some() && entry.archive_sha256.as_deref() != pinned_archive {
            self.log(
                kind,
                variant,
                LogLevel::Info,
                BinaryStep::Cache,
                "a newer build is pinned; setting it up".into(),
                None,
            );
            return None;
        }
        if options.test_model.is_some() && !entry.real_tested {
            self.log(
                kind,
                variant,
                LogLevel::Info,
                BinaryStep::Cache,
                "validated without a model before; running the real test now".into(),
                None,
            );
            return None;
        }
        match entry.freshness().await {
            Freshness::Unchanged => {}
            Freshness::SameContent(now) => {
                let mut updated = entry.clone();
                updated.size = now.size;
                updated.modified_ns = now.modified_ns;
                self.remember(key.to_owned(), updated, None);
            }
            Freshness::Changed(reason) => {
                self.log(
                    kind,
                    variant,
                    LogLevel::Warn,
                    BinaryStep::Cache,
                    format!("{} {reason}; testing again", entry.executable.display()),
                    None,
                );
                return None;
            }
        }
        self.log(
            kind,
            variant,
            LogLevel::Info,
            BinaryStep::Cache,
            format!(
                "{} passed its tests before (SHA-256 {}); tests skipped",
                entry.executable.display(),
                short(&entry.sha256)
            ),
            None,
        );
        Some(status_of(&entry, true))
    }

    /// The basic test, then the real one when there is a model; `Err` is the reason.
    async fn test(
        &self,
        kind: BinaryKind,
        variant: Option<Variant>,
        executable: &Path,
        options: &EnsureBinary,
        limits: &TestLimits,
    ) -> std::result::Result<CachedValidation, String> {
        let pid_dir = read(&self.pid_dir).clone();
        let pid_dir = pid_dir.as_deref();
        let version = match validate::basic_test(kind, executable, limits, pid_dir).await {
            Ok(version) => {
                self.log(
                    kind,
                    variant,
                    LogLevel::Info,
                    BinaryStep::BasicTest,
                    format!("answers: version {version}"),
                    None,
                );
                version
            }
            Err(reason) => {
                self.log(
                    kind,
                    variant,
                    LogLevel::Error,
                    BinaryStep::BasicTest,
                    reason.clone(),
                    Some(ErrorCode::BinaryRejected),
                );
                return Err(reason);
            }
        };
        let real_tested = match &options.test_model {
            Some(model) => {
                let test = RealTest {
                    kind,
                    executable,
                    model,
                    // A user's build may be for a GPU: give it the chance to use one,
                    // without requiring one.
                    offload: variant.is_none_or(Variant::is_gpu),
                    require_gpu: variant.is_some_and(Variant::is_gpu),
                    pid_dir,
                };
                let started = Instant::now();
                if let Err(reason) = validate::real_test(test, limits).await {
                    self.log(
                        kind,
                        variant,
                        LogLevel::Error,
                        BinaryStep::RealTest,
                        reason.clone(),
                        Some(ErrorCode::BinaryRejected),
                    );
                    return Err(reason);
                }
                let what = match kind {
                    BinaryKind::LlamaServer => "generated a token",
                    BinaryKind::Diffusion => "drew a 64×64 image",
                };
                self.log(
                    kind,
                    variant,
                    LogLevel::Info,
                    BinaryStep::RealTest,
                    format!("{what} in {:.1} s", started.elapsed().as_secs_f32()),
                    None,
                );
                true
            }
            None => {
                self.log(
                    kind,
                    variant,
                    LogLevel::Warn,
                    BinaryStep::RealTest,
                    "no model installed yet: only the basic test ran".into(),
                    None,
                );
                false
            }
        };
        let stamp = cache::stamp(executable).map_err(|error| format!("cannot be read: {error}"))?;
        let (_, sha256) = sha256_file(executable)
            .await
            .map_err(|error| error.to_string())?;
        Ok(CachedValidation {
            kind,
            variant,
            executable: executable.to_path_buf(),
            size: stamp.size,
            modified_ns: stamp.modified_ns,
            sha256,
            version,
            real_tested,
            archive_sha256: None,
            validated_at_ms: now_ms(),
        })
    }

    /// Deletes the installed variants of `kind` other than `keep`: only one is used.
    fn remove_other_variants(&self, kind: BinaryKind, keep: Variant) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for variant in Variant::ALL.into_iter().filter(|v| *v != keep) {
            let dir = self
                .binaries_dir
                .join(kind.dir_name())
                .join(variant.dir_name());
            if dir.exists() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            cache
                .entries
                .remove(&cache::entry_key(kind, Some(variant), Path::new("")));
        }
        self.save(&cache);
    }

    fn remember(
        &self,
        key: String,
        entry: CachedValidation,
        chosen: Option<(BinaryKind, Variant)>,
    ) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.entries.insert(key, entry);
        if let Some((kind, variant)) = chosen {
            cache.chosen.insert(kind.dir_name().to_owned(), variant);
        }
        self.save(&cache);
    }

    fn forget(&self, key: &str) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = cache.entries.remove(key) {
            if let Some(variant) = entry.variant {
                if cache.chosen.get(entry.kind.dir_name()) == Some(&variant) {
                    cache.chosen.remove(entry.kind.dir_name());
                }
            }
            self.save(&cache);
        }
    }

    fn save(&self, cache: &ValidationCache) {
        // Losing the cache costs one validation at the next start, nothing more.
        if let Err(error) = cache.save(&self.binaries_dir) {
            tracing::warn!(%error, "could not save the binary validation cache");
        }
    }

    /// Logs why no build of `kind` can be used and returns that as the error.
    fn unavailable(&self, kind: BinaryKind, problem: String) -> EngineError {
        self.log(
            kind,
            None,
            LogLevel::Error,
            BinaryStep::Choose,
            problem.clone(),
            Some(ErrorCode::BinaryUnavailable),
        );
        EngineError::BinaryUnavailable {
            kind: kind.label().to_owned(),
            problem,
        }
    }

    fn log(
        &self,
        kind: BinaryKind,
        variant: Option<Variant>,
        level: LogLevel,
        step: BinaryStep,
        message: String,
        code: Option<ErrorCode>,
    ) {
        let variant_name = variant.map_or("custom", Variant::dir_name);
        match level {
            LogLevel::Info => tracing::info!(
                kind = kind.label(),
                variant = variant_name,
                ?step,
                "{message}"
            ),
            LogLevel::Warn => tracing::warn!(
                kind = kind.label(),
                variant = variant_name,
                ?step,
                "{message}"
            ),
            LogLevel::Error => tracing::error!(
                kind = kind.label(),
                variant = variant_name,
                ?step,
                "{message}"
            ),
        }
        self.events.emit(EngineEvent::BinaryLog(BinaryLog {
            kind,
            variant,
            level,
            step,
            message,
            code,
        }));
    }
}

/// Turns install progress into log lines and throttled download events.
struct Observer<'a> {
    manager: &'a BinaryManager,
    kind: BinaryKind,
    variant: Variant,
    last_progress: Option<Instant>,
}

impl InstallObserver for Observer<'_> {
    fn log(&mut self, level: LogLevel, step: BinaryStep, message: String) {
        self.manager
            .log(self.kind, Some(self.variant), level, step, message, None);
    }

    fn progress(&mut self, file: &str, progress: Progress) {
        let now = Instant::now();
        let finished = progress.total == Some(progress.bytes);
        let due = self
            .last_progress
            .is_none_or(|last| now.duration_since(last) >= PROGRESS_EVERY);
        if !(due || finished) {
            return;
        }
        self.last_progress = Some(now);
        self.manager.events.emit(EngineEvent::BinaryDownload {
            kind: self.kind,
            variant: self.variant,
            file: file.to_owned(),
            bytes: progress.bytes,
            total: progress.total,
        });
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
