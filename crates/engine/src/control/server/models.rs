//! The Switchyard endpoint's models, for `switchyard models ps|load|unload|pin`.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

use super::{refresh, ApiError, Authorized, Shared};
use crate::orchestrator::router::RoutedModel;

pub(super) async fn list(_: Authorized, State(state): Shared) -> Json<Vec<RoutedModel>> {
    refresh(&state);
    Json(state.engine.routed_models())
}

pub(super) async fn load(
    _: Authorized,
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<Json<RoutedModel>, ApiError> {
    refresh(&state);
    Ok(Json(state.engine.load_model(&id).await?))
}

pub(super) async fn unload(
    _: Authorized,
    State(state): Shared,
    Path(id): Path<String>,
) -> Result<Json<RoutedModel>, ApiError> {
    Ok(Json(state.engine.unload_model(&id).await?))
}

#[derive(Debug, Deserialize)]
pub(super) struct PinQuery {
    pinned: bool,
}

pub(super) async fn pin(
    _: Authorized,
    State(state): Shared,
    Path(id): Path<String>,
    Query(query): Query<PinQuery>,
) -> Result<Json<RoutedModel>, ApiError> {
    Ok(Json(state.engine.pin_model(&id, query.pinned)?))
}
