//! The daemon's HTTP routes: one engine call each, behind the token.

use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::rows::{DaemonStatus, InstanceRow};
use crate::errors::{EngineError, ErrorCode, ErrorReport};
use crate::llama::{InstanceStatus, LogLine};
use crate::locks::lock;
use crate::Engine;

mod images;
mod models;
mod room;

#[derive(Debug)]
pub(super) struct ServerState {
    pub engine: Engine,
    pub token: String,
    pub version: String,
    pub stop: CancellationToken,
    /// Instance files the last (re)load could not use.
    pub problems: Mutex<Vec<ErrorReport>>,
}

type Shared = State<Arc<ServerState>>;

pub(super) fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/v1/daemon", get(daemon_status))
        .route("/v1/reload", post(reload))
        .route("/v1/shutdown", post(shutdown))
        .route("/v1/instances", get(list))
        .route("/v1/instances/{name}", get(describe))
        .route("/v1/instances/{name}/up", post(up))
        .route("/v1/instances/{name}/down", post(down))
        .route("/v1/instances/{name}/restart", post(restart))
        .route("/v1/instances/{name}/logs", get(logs))
        .route("/v1/images", post(images::generate))
        .route("/v1/images/{id}", get(images::job).delete(images::cancel))
        .route("/v1/room", post(room::make).delete(room::release))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{id}/load", post(models::load))
        .route("/v1/models/{id}/unload", post(models::unload))
        .route("/v1/models/{id}/pin", post(models::pin))
        .with_state(state)
}

/// An error as the client receives it: the engine's report, with a status.
pub(super) struct ApiError(ErrorReport);

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        Self(error.report())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0.code {
            ErrorCode::NotFound | ErrorCode::ResultExpired => StatusCode::NOT_FOUND,
            ErrorCode::InvalidInput | ErrorCode::InvalidInstanceFile => StatusCode::BAD_REQUEST,
            ErrorCode::InstanceOwned | ErrorCode::PortInUse | ErrorCode::ModelInUse => {
                StatusCode::CONFLICT
            }
            ErrorCode::DaemonUnreachable => StatusCode::UNAUTHORIZED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(self.0)).into_response()
    }
}

/// A request that carried the daemon's token.
pub(super) struct Authorized;

impl FromRequestParts<Arc<ServerState>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ServerState>,
    ) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if crate::secrets::same_secret(presented.as_bytes(), state.token.as_bytes()) {
            Ok(Self)
        } else {
            Err(ApiError(
                EngineError::DaemonUnreachable {
                    address: "this daemon".into(),
                    problem: "missing or wrong token (it is in daemon.json, readable by the daemon's user only)".into(),
                }
                .report(),
            ))
        }
    }
}

async fn daemon_status(_: Authorized, State(state): Shared) -> Json<DaemonStatus> {
    Json(status_of(&state))
}

fn status_of(state: &ServerState) -> DaemonStatus {
    DaemonStatus {
        pid: std::process::id(),
        version: state.version.clone(),
        data_dir: state.engine.layout().root().display().to_string(),
        instances_dir: state.engine.instances_dir().display().to_string(),
        problems: lock(&state.problems).clone(),
    }
}

async fn reload(_: Authorized, State(state): Shared) -> Json<DaemonStatus> {
    refresh(&state);
    Json(status_of(&state))
}

/// The instance files as they are now: a file added or changed since the daemon
/// started counts at the next `ps`, `up` or `restart`, without a reload.
fn refresh(state: &ServerState) {
    let loaded = state.engine.apply_instance_files();
    *lock(&state.problems) = loaded.problems.iter().map(EngineError::report).collect();
}

async fn shutdown(_: Authorized, State(state): Shared) -> StatusCode {
    state.stop.cancel();
    StatusCode::ACCEPTED
}

async fn list(_: Authorized, State(state): Shared) -> Json<Vec<InstanceRow>> {
    refresh(&state);
    Json(state.engine.instance_rows())
}

async fn describe(
    _: Authorized,
    State(state): Shared,
    Path(name): Path<String>,
) -> Result<Json<InstanceStatus>, ApiError> {
    Ok(Json(state.engine.llama().status(&name)?))
}

async fn up(
    _: Authorized,
    State(state): Shared,
    Path(name): Path<String>,
) -> Result<Json<InstanceStatus>, ApiError> {
    refresh(&state);
    Ok(Json(state.engine.up(&name).await?))
}

async fn down(
    _: Authorized,
    State(state): Shared,
    Path(name): Path<String>,
) -> Result<Json<InstanceStatus>, ApiError> {
    Ok(Json(state.engine.llama().stop(&name).await?))
}

async fn restart(
    _: Authorized,
    State(state): Shared,
    Path(name): Path<String>,
) -> Result<Json<InstanceStatus>, ApiError> {
    refresh(&state);
    state.engine.llama().stop(&name).await?;
    Ok(Json(state.engine.up(&name).await?))
}

#[derive(Debug, Deserialize)]
struct LogsQuery {
    #[serde(default)]
    since: u64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    200
}

async fn logs(
    _: Authorized,
    State(state): Shared,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Json<Vec<LogLine>>, ApiError> {
    Ok(Json(state.engine.llama().logs(
        &name,
        query.since,
        query.limit,
    )?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_compare_whole() {
        assert!(crate::secrets::same_secret(b"abc", b"abc"));
        assert!(!crate::secrets::same_secret(b"abd", b"abc"));
        assert!(!crate::secrets::same_secret(b"ab", b"abc"));
        assert!(!crate::secrets::same_secret(b"", b"abc"));
    }
}
