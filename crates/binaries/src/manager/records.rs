//! What the manager remembers and says: the validation cache, the variants kept on
//! disk, and the setup log the window shows.

use super::*;

impl BinaryManager {
    /// Deletes the installed variants of `kind` other than `keep`: only one is used.
    pub(super) fn remove_other_variants(&self, kind: BinaryKind, keep: Variant) {
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

    pub(super) fn remember(
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

    pub(super) fn forget(&self, key: &str) {
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

    pub(super) fn save(&self, cache: &ValidationCache) {
        // Losing the cache costs one validation at the next start, nothing more.
        if let Err(error) = cache.save(&self.binaries_dir) {
            tracing::warn!(%error, "could not save the binary validation cache");
        }
    }

    /// Logs why no build of `kind` can be used and returns that as the error.
    pub(super) fn unavailable(&self, kind: BinaryKind, problem: String) -> EngineError {
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

    pub(super) fn log(
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
        self.events.emit(BinariesEvent::Log(BinaryLog {
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
pub(super) struct Observer<'a> {
    pub(super) manager: &'a BinaryManager,
    pub(super) kind: BinaryKind,
    pub(super) variant: Variant,
    pub(super) last_progress: Option<Instant>,
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
        self.manager.events.emit(BinariesEvent::Download {
            kind: self.kind,
            variant: self.variant,
            file: file.to_owned(),
            bytes: progress.bytes,
            total: progress.total,
        });
    }
}
