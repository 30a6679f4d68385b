//! Room for an image made by another Switchyard process on this data folder (the
//! app attached to the daemon): the daemon's orchestrator stops the daemon's LLM
//! servers when the image would not fit beside them, and brings them back after.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::{ApiError, Authorized, ServerState};
use crate::control::wire::{RoomAnswer, RoomRequest};
use crate::orchestrator::Orchestrator;
use crate::process::pidfile::start_ticks;

/// How often the daemon looks whether the process it made room for still runs.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub(in crate::control) async fn make(
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
pub(in crate::control) struct ReleaseQuery {
    /// The process whose image is done.
    pid: u32,
}

pub(in crate::control) async fn release(
    _: Authorized,
    State(state): State<Arc<ServerState>>,
    Query(query): Query<ReleaseQuery>,
) -> StatusCode {
    state.engine.orchestrator().room_no_longer_needed(query.pid);
    StatusCode::ACCEPTED
}
