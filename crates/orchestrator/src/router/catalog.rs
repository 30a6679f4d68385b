//! What the router can route to: the installed language models (from the engine's
//! store) and every instance, each by a stable id.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use switchyard_base::errors::Result;
use switchyard_llama::InstanceStatus;

/// An installed language model, as the engine's store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogModel {
    pub id: String,
    pub name: String,
    pub size_bytes: u64,
}

/// The engine's side: its installed models, and instances made from them with its
/// defaults (so the router keeps no copy of how a model's files are found).
pub trait ModelCatalog: Send + Sync + std::fmt::Debug {
    fn language_models(&self) -> Vec<CatalogModel>;
    fn create_instance(&self, name: &str, model_id: &str) -> Result<InstanceStatus>;
    /// Sets up llama-server when none has passed its tests yet (as `up` does).
    fn ensure_runtime(&self) -> switchyard_diffusion::gate::BoxFuture<'_, Result<()>>;
}

/// Where a routed model stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ModelState {
    Unloaded,
    Loading,
    Loaded,
    Unloading,
}

/// One model the endpoint answers for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RoutedModel {
    /// What clients put in `model`: the installed model's id, or the name of an
    /// instance of a file outside the store.
    pub id: String,
    pub name: String,
    /// The instance that serves it (made on its first request when none exists).
    pub instance: Option<String>,
    /// Other names that reach it: every instance of this model.
    pub aliases: Vec<String>,
    pub state: ModelState,
    pub pinned: bool,
    /// Seconds without requests before the router unloads it (`null`: the
    /// default; 0: never).
    #[ts(type = "number | null")]
    pub idle_unload_secs: Option<u64>,
    /// Memory it holds now (measured once loaded), or needed at its last load.
    #[ts(type = "number | null")]
    pub ram_bytes: Option<u64>,
    #[ts(type = "number | null")]
    pub vram_bytes: Option<u64>,
    #[ts(type = "number")]
    pub size_bytes: u64,
    /// Requests being answered or waiting for it now.
    #[ts(type = "number")]
    pub requests: u64,
    #[ts(type = "number | null")]
    pub last_used_ms: Option<u64>,
    /// When the router will unload it if no request comes (idle time or the last
    /// request's `keep_alive`).
    #[ts(type = "number | null")]
    pub unload_at_ms: Option<u64>,
}

/// A name an instance may take: the model's id with anything else replaced.
pub(super) fn instance_name_for(model_id: &str) -> String {
    let mut name: String = model_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(56)
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert(0, 'm');
    }
    name
}
