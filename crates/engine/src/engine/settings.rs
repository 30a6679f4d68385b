//! The settings the engine runs with: validated, written, and applied to the parts
//! that read them (orchestrator, binary downloads, listeners).

use super::Engine;
use crate::binaries::manifest::DEFAULT_DOWNLOAD_BASE;
use crate::binaries::BinaryManager;
use crate::errors::{EngineError, Result};
use crate::events::EngineEvent;
use crate::locks::{read, write};
use crate::orchestrator::Orchestrator;
use crate::paths;
use crate::settings::{Settings, SettingsUpdate};

impl Engine {
    pub fn settings(&self) -> Settings {
        read(&self.inner.settings).clone()
    }

    /// Validates, writes `settings.json` in the config folder (see
    /// [`crate::settings_file`]), then applies: a change that cannot be kept is not
    /// applied either.
    pub fn save_settings(&self, settings: Settings) -> Result<SettingsUpdate> {
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        settings.validate()?;
        crate::settings_file::save(&self.inner.config_dir, &settings)?;
        self.update_settings(settings)
    }

    /// Validates and applies new settings without writing them (tests, and front
    /// ends that keep their own).
    pub fn update_settings(&self, settings: Settings) -> Result<SettingsUpdate> {
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        settings.validate()?;
        super::router::check_network_key(&self.inner.router, &settings)?;
        // The data folder in use stays until the next start.
        let next_data_dir = paths::resolve_data_dir(
            self.inner.data_dir_override.clone(),
            settings.data_dir.as_deref(),
        );
        let restart_required = next_data_dir != self.inner.layout.root();
        apply_binaries_mirror(&self.inner.binaries, &settings);
        apply_orchestrator_settings(&self.inner.orchestrator, &settings);
        apply_slot_saving(self.llama(), &settings);
        super::router::apply_router_settings(&self.inner.router, &settings);
        self.allowed_origins().set(&settings.allowed_origins);
        let endpoint_moved = {
            let before = read(&self.inner.settings);
            before.endpoint_port != settings.endpoint_port
                || before.endpoint_on_network != settings.endpoint_on_network
        };
        *write(&self.inner.settings) = settings.clone();
        if endpoint_moved {
            self.move_endpoint();
        }
        self.inner
            .events
            .emit(EngineEvent::SettingsChanged(settings.clone()));
        Ok(SettingsUpdate {
            settings,
            restart_required,
        })
    }
}

/// The `offload_threshold` setting (percent) becomes the orchestrator's share, and
/// `drain_seconds` its drain time.
pub(super) fn apply_orchestrator_settings(orchestrator: &Orchestrator, settings: &Settings) {
    orchestrator.set_policy(crate::orchestrator::OrchestratorPolicy {
        threshold: f64::from(settings.offload_threshold) / 100.0,
        drain_ms: u64::from(settings.drain_seconds) * 1000,
        ..orchestrator.policy()
    });
}

/// `keep_conversations` and `kv_cache_budget_mib` become the manager's slot saving.
pub(super) fn apply_slot_saving(llama: &crate::llama::LlamaManager, settings: &Settings) {
    llama.set_slot_saving(
        settings.keep_conversations,
        u64::from(settings.kv_cache_budget_mib) << 20,
    );
}

/// Settings own the download base: a mirror when one is set, else GitHub (so clearing
/// the mirror goes back to GitHub at once, without a restart).
pub(super) fn apply_binaries_mirror(binaries: &BinaryManager, settings: &Settings) {
    binaries.set_download_base(
        settings
            .binaries_mirror
            .as_deref()
            .unwrap_or(DEFAULT_DOWNLOAD_BASE),
    );
}
