//! Switchyard's image API over HTTP (DESIGN.md "Image API"), on loopback, behind
//! the guard every listener has (`net::guard`: a foreign `Host` or `Origin` gets
//! 403, so a web page resolving its name to 127.0.0.1 cannot drive the GPU) and the
//! same bounds (connections, header and body time, body size); an optional API key.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::gate::BoxFuture;
use super::jobs::JobError;
use super::request::ImageRequest;
use super::service::ImageService;
use switchyard_base::errors::{EngineError, ErrorCode, Result};
use switchyard_net::body::{buffer, BodyBudget, BodyLimits, Buffered};
use switchyard_net::guard::{AllowedOrigins, Guard};
use switchyard_net::serve::ConnectionLimits;

/// Where the API finds the image service: the one the app started, or (in the
/// daemon) one started on demand for the model a request names.
pub trait ImageSource: Send + Sync + std::fmt::Debug {
    /// The running service, for health, jobs and cancel.
    fn running(&self) -> Option<ImageService>;
    /// The service a new job goes to; `model` is the request's `model` field.
    fn for_new_job<'a>(&'a self, model: Option<String>) -> BoxFuture<'a, Result<ImageService>>;
}

/// The app's image API: the service it serves, fixed (the API starts and stops with
/// it).
#[derive(Debug)]
pub struct FixedService(pub ImageService);

impl ImageSource for FixedService {
    fn running(&self) -> Option<ImageService> {
        Some(self.0.clone())
    }

    fn for_new_job<'a>(&'a self, _model: Option<String>) -> BoxFuture<'a, Result<ImageService>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// The key clients of the image API must send, if any; shared, so a change applies
/// to a running API at once.
#[derive(Debug, Clone, Default)]
pub struct ImageApiKey(Arc<RwLock<Option<String>>>);

impl ImageApiKey {
    pub fn fixed(key: Option<String>) -> Self {
        let shared = Self::default();
        shared.set(key);
        shared
    }

    pub fn set(&self, key: Option<String>) {
        *switchyard_base::locks::write(&self.0) = key.filter(|key| !key.is_empty());
    }

    pub fn is_set(&self) -> bool {
        switchyard_base::locks::read(&self.0).is_some()
    }

    /// Whether `headers` carry the key (always, when none is set).
    fn admits(&self, headers: &HeaderMap) -> bool {
        switchyard_base::locks::read(&self.0)
            .as_deref()
            .is_none_or(|key| bearer_matches(headers, key))
    }
}

#[derive(Debug, Clone)]
struct ApiState {
    source: Arc<dyn ImageSource>,
    api_key: ImageApiKey,
}

/// A generation as the API takes it: the request, and which installed model
/// (where the server picks one: the daemon's).
#[derive(Debug, serde::Deserialize)]
struct Order {
    #[serde(default)]
    model: Option<String>,
    #[serde(flatten)]
    request: ImageRequest,
}

/// The listening HTTP server; stops when [`ImageHttp::stop`] is called.
#[derive(Debug)]
pub struct ImageHttp {
    address: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ImageHttp {
    /// Listens on `127.0.0.1:port` (0: any free port), letting in local programs
    /// and the pages of `allowed` origins.
    pub async fn serve(
        source: Arc<dyn ImageSource>,
        port: u16,
        api_key: ImageApiKey,
        allowed: AllowedOrigins,
    ) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::AddrInUse => EngineError::PortInUse {
                    host: "127.0.0.1".to_owned(),
                    port,
                },
                _ => EngineError::Internal {
                    problem: format!("cannot listen on 127.0.0.1:{port}: {error}"),
                },
            })?;
        let address = listener
            .local_addr()
            .map_err(|error| EngineError::Internal {
                problem: format!("no local address: {error}"),
            })?;
        let shutdown = CancellationToken::new();
        let app = router(
            ApiState { source, api_key },
            Guard::new(allowed, address.ip()),
        );
        let stopping = shutdown.clone();
        let task = tokio::spawn(switchyard_net::serve::serve(
            listener,
            app,
            ConnectionLimits {
                max_connections: MAX_CONNECTIONS,
                ..ConnectionLimits::default()
            },
            stopping,
            STOP_GRACE,
        ));
        Ok(Self {
            address,
            shutdown,
            task,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// A request's body: a prompt and a few numbers.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Connections at once; a client polling its jobs needs one.
const MAX_CONNECTIONS: usize = 128;
/// Answers under way may delay a stop this long.
const STOP_GRACE: Duration = Duration::from_secs(2);

fn router(state: ApiState, guard: Guard) -> Router {
    let bodies = Buffered {
        limits: BodyLimits {
            max_bytes: MAX_BODY_BYTES,
            timeout: Duration::from_secs(30),
        },
        budget: BodyBudget::new(MAX_BODY_BYTES * 16),
    };
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .route("/v1/images/generations", axum::routing::post(create))
        .route("/v1/images/generations/{id}", get(status).delete(cancel))
        .route("/v1/images/generations/{id}/images/{index}", get(png))
        .layer(middleware::from_fn_with_state(state.clone(), require_key))
        .with_state(state)
        // Outermost first: who may ask, then the body within bounds.
        .layer(middleware::from_fn_with_state(bodies, buffer))
        .layer(middleware::from_fn_with_state(
            guard,
            switchyard_net::guard::check,
        ))
}

/// Checks the API key (health and the description stay open so a client can find
/// out that a key is needed); the Host/Origin guard runs before.
async fn require_key(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let open_path = matches!(request.uri().path(), "/health" | "/openapi.json");
    if !open_path && !state.api_key.admits(request.headers()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "A valid API key is needed: send `Authorization: Bearer <key>`.",
        );
    }
    next.run(request).await
}

fn bearer_matches(headers: &HeaderMap, key: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    switchyard_base::secrets::same_secret(given.as_bytes(), key.as_bytes())
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

fn error_response(error: &EngineError) -> Response {
    let status = match error.code() {
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::QueueFull => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::NotFound | ErrorCode::ResultExpired => StatusCode::NOT_FOUND,
        ErrorCode::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut response = (status, Json(json!({ "error": JobError::from(error) }))).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    response
}

async fn health(State(state): State<ApiState>) -> Response {
    let service = state.source.running();
    Json(json!({
        "status": "ok",
        "busy": service.as_ref().is_some_and(ImageService::busy),
        "runner": service.as_ref().map(ImageService::runner_kind),
    }))
    .into_response()
}

async fn openapi() -> Response {
    Json(super::openapi::description()).into_response()
}

async fn create(State(state): State<ApiState>, body: Bytes) -> Response {
    let order: Order = match serde_json::from_slice(&body) {
        Ok(order) => order,
        Err(error) => {
            return error_response(&EngineError::InvalidInput {
                field: "body",
                problem: error.to_string(),
            })
        }
    };
    let submitted = match state.source.for_new_job(order.model).await {
        Ok(service) => service.submit(order.request),
        Err(error) => Err(error),
    };
    match submitted {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response(),
        Err(error) => error_response(&error),
    }
}

/// The running service, or why there is none (so its jobs are gone too).
fn running(state: &ApiState, id: &str) -> Result<ImageService> {
    state.source.running().ok_or_else(|| EngineError::NotFound {
        what: "Job",
        id: id.to_owned(),
    })
}

async fn status(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match running(&state, &id).and_then(|service| service.job_json(&id)) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(error) => error_response(&error),
    }
}

/// One image of a complete job as its PNG file: no base64, no JSON.
async fn png(State(state): State<ApiState>, Path((id, index)): Path<(String, usize)>) -> Response {
    match running(&state, &id).and_then(|service| service.job_png(&id, index)) {
        Ok(png) => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
        Err(error) => error_response(&error),
    }
}

async fn cancel(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match running(&state, &id).and_then(|service| service.cancel(&id)) {
        Ok(summary) => Json(summary).into_response(),
        Err(error) => error_response(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_result_is_a_404_with_its_own_code() {
        let response = error_response(&EngineError::ResultExpired {
            id: "img_1".into(),
            reason: "finished results are kept 900 s".into(),
        });
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
