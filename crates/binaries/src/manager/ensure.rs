//! Setting a binary up: the person's own build, else the pinned release's variants
//! for this machine in order (downloaded, verified, unpacked, tested), the first
//! that passes its tests wins; a validation already cached for the same bytes is
//! taken at once.

use super::records::Observer;
use super::*;

impl BinaryManager {
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

    pub(super) async fn ensure_custom(
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

    pub(super) async fn ensure_managed(
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
    pub(super) async fn try_candidate(
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
    pub(super) fn installed_executable(&self, candidate: &Candidate, key: &str) -> Option<PathBuf> {
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
    pub(super) async fn cached(
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
    pub(super) async fn test(
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
}
