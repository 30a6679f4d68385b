//! Room for an image made by another Switchyard process on this data folder (the
//! app attached to the daemon): the daemon's orchestrator stops the daemon's LLM
//! servers when the image would not fit beside them, and brings them back after.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::client::ControlClient;
use super::link::DaemonLink;
use super::server::{ApiError, Authorized, ServerState};
use crate::diffusion::gate::BoxFuture;
use crate::errors::ErrorReport;
use crate::orchestrator::{Orchestrator, ServersElsewhere};
use crate::process::pidfile::start_ticks;

/// How often the daemon looks whether the process it made room for still runs.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// What the image about to run needs, and for whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRequest {
    pub ram_bytes: u64,
    pub vram_bytes: u64,
    /// The process making the image: should it end without saying the image is
    /// done (a crash, a kill), the daemon brings its servers back by itself.
    pub pid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomAnswer {
    /// Whether the daemon stopped LLM servers for it.
    pub made: bool,
}

pub(super) async fn make(
    _: Authorized,
    State(state): State<Arc<ServerState>>,
    Json(request): Json<RoomRequest>,
) -> std::result::Result<Json<RoomAnswer>, ApiError> {
    let orchestrator = state.engine.orchestrator().clone();
    let made = orchestrator
        .make_room(request.pid, request.ram_bytes, request.vram_bytes)
        .await?;
    if made {
        tokio::spawn(bring_back_if_it_ends(orchestrator, request.pid));
    }
    Ok(Json(RoomAnswer { made }))
}

/// Watches the process the servers were stopped for: once it is gone without
/// having said its image is done, the room is no longer needed.
async fn bring_back_if_it_ends(orchestrator: Orchestrator, pid: u32) {
    let started = start_ticks(pid);
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        if !orchestrator.holds_room_for(pid) {
            return;
        }
        if started.is_none() || start_ticks(pid) != started {
            tracing::warn!(pid, "the process an image was made for ended without saying it was done; bringing the LLM servers back");
            orchestrator.room_no_longer_needed(pid);
            return;
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ReleaseQuery {
    /// The process whose image is done.
    pid: u32,
}

pub(super) async fn release(
    _: Authorized,
    State(state): State<Arc<ServerState>>,
    Query(query): Query<ReleaseQuery>,
) -> StatusCode {
    state.engine.orchestrator().room_no_longer_needed(query.pid);
    StatusCode::ACCEPTED
}

/// The daemon of a data folder, as this process's orchestrator sees it; nothing
/// when no daemon runs there, or when this process is that daemon.
#[derive(Debug)]
pub struct DaemonServers {
    link: Arc<DaemonLink>,
}

impl DaemonServers {
    pub fn new(link: Arc<DaemonLink>) -> Self {
        Self { link }
    }

    fn client(&self) -> Option<ControlClient> {
        self.link.other_process_client()
    }
}

impl ServersElsewhere for DaemonServers {
    fn make_room(
        &self,
        image_ram: u64,
        image_vram: u64,
    ) -> BoxFuture<'_, Result<bool, ErrorReport>> {
        Box::pin(async move {
            let Some(client) = self.client() else {
                return Ok(false);
            };
            client
                .make_room(RoomRequest {
                    ram_bytes: image_ram,
                    vram_bytes: image_vram,
                    pid: std::process::id(),
                })
                .await
                .map(|answer| answer.made)
        })
    }

    fn room_no_longer_needed(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(client) = self.client() {
                if let Err(error) = client.room_no_longer_needed(std::process::id()).await {
                    tracing::warn!(problem = %error.message, "could not tell the daemon the image is done");
                }
            }
        })
    }
}
