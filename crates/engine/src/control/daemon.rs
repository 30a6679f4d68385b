//! `switchyard daemon`: one engine that owns the instances of the instance files,
//! starts those marked `autostart`, supervises them with the engine's health and
//! restart rules, and serves the control API and the image API on loopback until
//! it is told to stop.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::daemon_file::{DaemonFile, DaemonLock};
use super::server::{router, ServerState};
use crate::errors::{EngineError, Result};
use crate::llama::OwnerKind;
use crate::net::body::{buffer, BodyBudget, BodyLimits, Buffered};
use crate::net::guard::Guard;
use crate::net::serve::{serve, ConnectionLimits};
use crate::Engine;

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The control API's port on 127.0.0.1; 0 for a free one (clients read it
    /// from `daemon.json`).
    pub port: u16,
    /// The image API's port on 127.0.0.1; `None`: the `image_port` setting; 0: any
    /// free one (clients read it from `daemon.json`).
    pub image_port: Option<u16>,
    /// The Switchyard endpoint's port on loopback (or every address, as the
    /// settings say); `None`: the `endpoint_port` setting; 0: any free one.
    pub endpoint_port: Option<u16>,
    pub version: String,
}

/// Removes `daemon.json` however the daemon ends.
struct Published<'a>(&'a std::path::Path);

impl Drop for Published<'_> {
    fn drop(&mut self) {
        DaemonFile::remove(self.0);
    }
}

/// Runs until `stop` completes (a signal) or a client asks it to stop, then stops
/// every server it runs. Fails at once when another daemon runs on this data
/// folder or the port cannot be bound.
pub async fn run_daemon(
    engine: Engine,
    options: DaemonOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let data_dir = engine.layout().root().to_path_buf();
    let _lock = DaemonLock::acquire(&data_dir)?;
    engine.llama().set_owner_kind(OwnerKind::Daemon);
    engine.use_headless_instances()?;
    let loaded = engine.apply_instance_files();
    for problem in &loaded.problems {
        tracing::warn!(%problem, "instance file not used");
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::AddrInUse => EngineError::PortInUse {
                host: "127.0.0.1".into(),
                port: options.port,
            },
            _ => EngineError::Internal {
                problem: format!("the control API cannot listen: {error}"),
            },
        })?;
    let port = listener
        .local_addr()
        .map_err(|error| EngineError::Internal {
            problem: error.to_string(),
        })?
        .port();
    // The image API, for programs that make images over HTTP as they chat. A taken
    // port (the app's image server, say) is said in the log, not fatal: the
    // control API still makes images.
    let image_port = options
        .image_port
        .unwrap_or_else(|| engine.settings().image_port);
    let image_port = match engine.serve_standing_image_api(image_port).await {
        Ok(address) => Some(address.port()),
        Err(error) => {
            tracing::warn!(port = image_port, %error, "the daemon's image API is not served");
            None
        }
    };
    // The Switchyard endpoint (one address for every model). A taken port is said
    // in the log: the instances' own endpoints still answer.
    let endpoint = match options.endpoint_port {
        Some(port) => engine.serve_endpoint_at(port).await,
        None => engine.serve_endpoint().await,
    };
    let endpoint_port = match endpoint {
        Ok(address) => {
            tracing::info!(%address, "the Switchyard endpoint listens");
            Some(address.port())
        }
        Err(error) => {
            tracing::warn!(%error, "the Switchyard endpoint is not served");
            None
        }
    };
    let stop_requested = CancellationToken::new();
    let state = Arc::new(ServerState {
        engine: engine.clone(),
        token: DaemonFile::new_token()?,
        version: options.version.clone(),
        stop: stop_requested.clone(),
        problems: Mutex::new(loaded.problems.iter().map(EngineError::report).collect()),
    });
    DaemonFile {
        pid: std::process::id(),
        port,
        image_port,
        endpoint_port,
        token: state.token.clone(),
        version: options.version,
    }
    .write(&data_dir)?;
    let _published = Published(&data_dir);
    tracing::info!(port, data_dir = %data_dir.display(), "switchyard daemon listening");

    // What the files mark `autostart`, and what ran when the daemon last ended
    // (`up` without a later `down`). In the background: the API answers (and `ps`
    // shows them loading) meanwhile.
    let autostart: Vec<String> = loaded
        .files
        .iter()
        .filter(|file| file.autostart || engine.llama().was_running(&file.spec.name))
        .map(|file| file.spec.name.clone())
        .collect();
    tokio::spawn({
        let engine = engine.clone();
        async move {
            for name in autostart {
                if let Err(error) = engine.up(&name).await {
                    tracing::warn!(instance = %name, %error, "autostart failed");
                }
            }
        }
    });

    // Until a signal or `daemon stop`.
    let serving = CancellationToken::new();
    tokio::spawn({
        let serving = serving.clone();
        async move {
            tokio::select! {
                () = stop => {}
                () = stop_requested.cancelled() => {}
            }
            serving.cancel();
        }
    });
    let guard = Guard::new(
        engine.allowed_origins(),
        std::net::Ipv4Addr::LOCALHOST.into(),
    );
    let bodies = Buffered {
        limits: BodyLimits {
            max_bytes: MAX_BODY_BYTES,
            timeout: Duration::from_secs(30),
        },
        budget: BodyBudget::new(MAX_BODY_BYTES * 16),
    };
    let app = router(state)
        .layer(axum::middleware::from_fn_with_state(bodies, buffer))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            crate::net::guard::check,
        ));
    // A waiting `GET /v1/images/{id}?wait_s=…` is not worth delaying the stop.
    serve(
        listener,
        app,
        ConnectionLimits::default(),
        serving,
        Duration::from_secs(2),
    )
    .await;
    tracing::info!("switchyard daemon stopping its servers");
    engine.shutdown().await;
    Ok(())
}

/// A control request's body: an instance name, an image request.
const MAX_BODY_BYTES: usize = 256 * 1024;
