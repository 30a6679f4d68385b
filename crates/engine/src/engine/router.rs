//! The Switchyard endpoint on the engine: one address for every installed model
//! (the orchestrator's router, placing models by this engine's memory readings),
//! the models' states and their load, unload and pin for the window and the CLI.

use std::net::SocketAddr;
use std::sync::Weak;

use super::{Engine, Inner};
use crate::binaries::{BinaryKind, EnsureBinary};
use crate::errors::{EngineError, Result};
use crate::llama::InstanceStatus;
use crate::models::ModelKind;
use crate::orchestrator::router::{CatalogModel, ModelCatalog, RoutedModel, Router, RouterPolicy};
use crate::settings::Settings;

/// The engine's installed models, for the router (a weak link: the engine still
/// drops when its last handle goes).
#[derive(Debug)]
pub(super) struct EngineCatalog {
    pub engine: Weak<Inner>,
}

impl EngineCatalog {
    fn engine(&self) -> Option<Engine> {
        self.engine.upgrade().map(|inner| Engine { inner })
    }
}

impl ModelCatalog for EngineCatalog {
    fn language_models(&self) -> Vec<CatalogModel> {
        let Some(engine) = self.engine() else {
            return Vec::new();
        };
        engine
            .models()
            .models()
            .into_iter()
            .filter(|model| model.kind == ModelKind::Llm)
            .map(|model| CatalogModel {
                size_bytes: model.size_bytes(),
                id: model.id,
                name: model.name,
            })
            .collect()
    }

    fn create_instance(&self, name: &str, model_id: &str) -> Result<InstanceStatus> {
        self.engine()
            .ok_or(EngineError::ShuttingDown)?
            .create_instance_for_model(name, model_id)
    }

    fn ensure_runtime(&self) -> crate::diffusion::gate::BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let engine = self.engine().ok_or(EngineError::ShuttingDown)?;
            if !engine.llama().has_binary() {
                engine
                    .ensure_binary(BinaryKind::LlamaServer, EnsureBinary::default())
                    .await?;
            }
            Ok(())
        })
    }
}

impl Engine {
    /// The router behind the Switchyard endpoint.
    pub fn router(&self) -> &Router {
        &self.inner.router
    }

    /// Serves the Switchyard endpoint where the settings say (`endpoint_port`, on
    /// loopback unless `endpoint_on_network`). `PORT_IN_USE` when taken (the
    /// daemon of this data folder may serve it).
    pub async fn serve_endpoint(&self) -> Result<SocketAddr> {
        self.serve_endpoint_at(self.settings().endpoint_port).await
    }

    /// The same on `port` (0: a free one), whatever the setting says.
    pub async fn serve_endpoint_at(&self, port: u16) -> Result<SocketAddr> {
        check_network_key(self.router(), &self.settings())?;
        let host = if self.settings().endpoint_on_network {
            "0.0.0.0"
        } else {
            crate::llama::LOOPBACK
        };
        self.router().serve(host, port).await
    }

    /// Serves the endpoint where the settings now say, if it is served (in the
    /// background: a settings change returns at once; a taken port is logged and
    /// the old address stays).
    pub(super) fn move_endpoint(&self) {
        if self.router().address().is_none() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            if let Err(error) = engine.serve_endpoint().await {
                tracing::warn!(%error, "the Switchyard endpoint stays where it was");
            }
        });
    }

    /// The endpoint's address for clients (`http://127.0.0.1:8434/v1`): this
    /// process's while it listens, else the daemon's of this data folder.
    pub fn endpoint_url(&self) -> Option<String> {
        let own = self.router().address().map(|address| {
            let host = if address.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                address.ip().to_string()
            };
            format!("http://{host}:{}/v1", address.port())
        });
        own.or_else(|| {
            self.daemons_endpoint()
                .map(|(port, _)| format!("http://127.0.0.1:{port}/v1"))
        })
    }

    /// The daemon's endpoint, when this process serves none (the daemon took the
    /// port first) and a daemon of this data folder serves one: the window then
    /// drives the daemon's, where the models clients use are loaded.
    fn daemons_endpoint(&self) -> Option<(u16, crate::control::ControlClient)> {
        if self.router().address().is_some() {
            return None;
        }
        self.inner.daemon.link().other_process_endpoint()
    }

    /// The models of the endpoint clients reach (see [`Self::endpoint_url`]).
    pub async fn endpoint_models(&self) -> Result<Vec<RoutedModel>> {
        match self.daemons_endpoint() {
            Some((_, daemon)) => Ok(daemon.routed_models().await?),
            None => Ok(self.routed_models()),
        }
    }

    /// Loads a model on the endpoint clients reach.
    pub async fn load_on_endpoint(&self, model: &str) -> Result<RoutedModel> {
        match self.daemons_endpoint() {
            Some((_, daemon)) => Ok(daemon.load_model(model).await?),
            None => self.load_model(model).await,
        }
    }

    /// Unloads a model from the endpoint clients reach.
    pub async fn unload_on_endpoint(&self, model: &str) -> Result<RoutedModel> {
        match self.daemons_endpoint() {
            Some((_, daemon)) => Ok(daemon.unload_model(model).await?),
            None => self.unload_model(model).await,
        }
    }

    /// Pins or unpins a model on the endpoint clients reach.
    pub async fn pin_on_endpoint(&self, model: &str, pinned: bool) -> Result<RoutedModel> {
        match self.daemons_endpoint() {
            Some((_, daemon)) => Ok(daemon.pin_model(model, pinned).await?),
            None => self.pin_model(model, pinned),
        }
    }

    /// Every model the endpoint answers for, with its state.
    pub fn routed_models(&self) -> Vec<RoutedModel> {
        self.router().models()
    }

    /// Loads a model as a request for it would (making room first).
    pub async fn load_model(&self, model: &str) -> Result<RoutedModel> {
        self.router().load(model).await
    }

    /// Unloads a model once its answers under way are done.
    pub async fn unload_model(&self, model: &str) -> Result<RoutedModel> {
        self.router().unload(model).await
    }

    /// Pins a model (never unloaded by the router, nor paused for an image) or
    /// unpins it.
    pub fn pin_model(&self, model: &str, pinned: bool) -> Result<RoutedModel> {
        self.router().set_pinned(model, pinned)
    }
}

/// Where the endpoint's key is kept (mode 0600), for the app and the daemon alike.
pub(super) fn endpoint_api_key_file(layout: &crate::paths::DataLayout) -> std::path::PathBuf {
    layout.state().join("endpoint-api.key")
}

impl Engine {
    /// Sets (or, with `None` or empty, removes) the key clients of the Switchyard
    /// endpoint must send as `Authorization: Bearer <key>`. Kept in a file only
    /// this user can read, never in the settings; applies at once. It cannot be
    /// removed while the endpoint serves other machines.
    pub fn set_endpoint_api_key(&self, key: Option<String>) -> Result<()> {
        let removing = key.as_deref().is_none_or(|key| key.trim().is_empty());
        if removing && self.settings().endpoint_on_network {
            return Err(EngineError::InvalidInput {
                field: "endpoint_api_key",
                problem: "the endpoint serves other machines, which it does only with a key: turn that off first".into(),
            });
        }
        let key = crate::secrets::store_key(&endpoint_api_key_file(&self.inner.layout), key)?;
        self.router().set_api_key(key);
        Ok(())
    }

    /// Whether the endpoint wants a key (the key itself never leaves the engine).
    pub fn endpoint_api_key_is_set(&self) -> bool {
        self.router().api_key_is_set()
    }
}

/// Other machines reach the endpoint only with a key (as an instance's endpoint).
pub(super) fn check_network_key(router: &Router, settings: &Settings) -> Result<()> {
    if settings.endpoint_on_network && !router.api_key_is_set() {
        return Err(EngineError::InvalidSetting {
            field: "endpoint_on_network",
            problem: "other machines may use the Switchyard endpoint only with a key: set the endpoint key first".into(),
        });
    }
    Ok(())
}

/// The settings' idle time and GPU rule become the router's policy.
pub(super) fn apply_router_settings(router: &Router, settings: &Settings) {
    router.set_policy(RouterPolicy {
        idle_unload_secs: u64::from(settings.model_idle_minutes) * 60,
        gpu_shortfall: settings.gpu_shortfall,
        ..router.policy()
    });
}
