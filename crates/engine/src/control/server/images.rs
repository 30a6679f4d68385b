//! `switchyard image` through the daemon: the daemon's own image service runs the
//! generation, so its orchestrator pauses the daemon's LLM servers for it (an image
//! made in the command's own process would not know about them).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

use super::{ApiError, Authorized, ServerState};
use crate::control::wire::{DaemonImageRequest, QueuedImage, MAX_WAIT};
use crate::diffusion::{JobSummary, JobView};
use crate::errors::EngineError;

pub(in crate::control) async fn generate(
    _: Authorized,
    State(state): State<Arc<ServerState>>,
    Json(order): Json<DaemonImageRequest>,
) -> Result<Json<QueuedImage>, ApiError> {
    let server = state.engine.image_server_for(order.model).await?;
    let id = state.engine.generate_image(order.request)?;
    Ok(Json(QueuedImage {
        id,
        model: server.model,
    }))
}

#[derive(Debug, Deserialize)]
pub(in crate::control) struct WaitQuery {
    /// Seconds to wait for the job to finish before answering with how it is.
    #[serde(default)]
    wait_s: u64,
}

pub(in crate::control) async fn job(
    _: Authorized,
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Result<Json<JobView>, ApiError> {
    let wait = Duration::from_secs(query.wait_s).min(MAX_WAIT);
    if !wait.is_zero() {
        match state.engine.wait_image_job(&id, wait).await {
            Ok(view) => return Ok(Json(view)),
            // Not finished yet: answered below with its progress.
            Err(EngineError::TimedOut { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(Json(state.engine.image_job(&id)?))
}

pub(in crate::control) async fn cancel(
    _: Authorized,
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
) -> Result<Json<JobSummary>, ApiError> {
    Ok(Json(state.engine.cancel_image_job(&id)?))
}
