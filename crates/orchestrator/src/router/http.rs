//! The endpoint's HTTP side: `GET /v1/models` lists what it answers for; every
//! other request is read whole (within the endpoints' limits and shared budget),
//! routed by its `model`, and answered through that instance's endpoint, with the
//! request counted until its answer has been sent.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{keep_alive, ModelState, RouteFailure, Routed, Router, Serving};
use switchyard_base::errors::{EngineError, Result};
use switchyard_base::locks::lock;
use switchyard_net as net;
use switchyard_net::body::{read_body, BodyRefusal};

/// How long answers still being streamed may delay closing the endpoint.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) async fn serve(router: &Router, host: &str, port: u16) -> Result<SocketAddr> {
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| EngineError::InvalidInput {
            field: "router_host",
            problem: format!("`{host}` is not an IP address"),
        })?;
    if let Some(address) = router.address() {
        if address.ip() == ip && (port == 0 || address.port() == port) {
            return Ok(address);
        }
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, port))
        .await
        .map_err(|_| EngineError::PortInUse {
            host: host.to_owned(),
            port,
        })?;
    let address = listener
        .local_addr()
        .map_err(|error| EngineError::Internal {
            problem: format!("router socket: {error}"),
        })?;
    let llama = &router.shared.llama;
    let guard = net::guard::Guard::new(llama.allowed_origins(), address.ip());
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(router.clone())
        .layer(axum::middleware::from_fn_with_state(
            guard,
            net::guard::check,
        ));
    let stop = CancellationToken::new();
    let limits = llama.endpoint_policy().connections;
    let task = tokio::spawn(net::serve::serve(
        listener,
        app,
        limits,
        stop.clone(),
        CLOSE_GRACE,
    ));
    let old = lock(&router.shared.serving).replace(Serving {
        address,
        task,
        stop,
    });
    if let Some(old) = old {
        old.stop.cancel();
    }
    Ok(address)
}

async fn handle(State(router): State<Router>, request: Request) -> Response {
    let path = request.uri().path();
    if !router.admits(presented_key(request.headers()).as_deref()) {
        return key_refused();
    }
    if request.method() == Method::GET && matches!(path, "/v1/models" | "/models") {
        return list_models(&router);
    }
    if request.method() == Method::GET {
        if let Some(id) = path.strip_prefix("/v1/models/") {
            return one_model(&router, id);
        }
    }
    if request.method() == Method::GET && path == "/health" {
        return axum::Json(json!({"status": "ok"})).into_response();
    }
    let (parts, body) = request.into_parts();
    let (limits, budget) = router.shared.llama.request_body_rules();
    let held = match read_body(body, &parts.headers, limits, &budget).await {
        Ok(held) => held,
        Err(refusal) => return body_refused(refusal),
    };
    let request: Option<Value> = serde_json::from_slice(&held.bytes).ok();
    let model = request
        .as_ref()
        .and_then(|request| request.get("model"))
        .and_then(Value::as_str);
    let keep_alive = request.as_ref().and_then(keep_alive::of_request);
    let instance = match model {
        Some(model) => router.resolve(model),
        None => only_loaded(&router),
    };
    let instance = match instance {
        Ok(instance) => instance,
        Err(error) => return failure_response(&RouteFailure::of(&error)),
    };
    let routed = match router.acquire(&instance, keep_alive).await {
        Ok(routed) => routed,
        Err(failure) => return failure_response(&failure),
    };
    let response = router
        .shared
        .llama
        .answer_routed(&instance, parts, held)
        .await;
    counted_until_sent(response, routed)
}

/// The key a client sent: `Authorization: Bearer <key>` (OpenAI's clients) or
/// `x-api-key` (Anthropic-style clients).
fn presented_key(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|value| value.to_str().ok())
        })
        .map(|key| key.trim().to_owned())
}

fn key_refused() -> Response {
    let body = json!({
        "error": {
            "code": "invalid_api_key",
            "message": "this Switchyard endpoint wants its key",
            "suggestion": "Send `Authorization: Bearer <key>`: the key set in Switchyard's Settings (Endpoint key).",
            "type": "invalid_request_error",
        }
    });
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

/// A request without `model` (a plain `GET /props`, say) goes to the one model
/// loaded, when exactly one is.
fn only_loaded(router: &Router) -> Result<String> {
    let loaded: Vec<String> = router
        .models()
        .into_iter()
        .filter(|model| model.state == ModelState::Loaded)
        .filter_map(|model| model.instance)
        .collect();
    match loaded.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(EngineError::InvalidInput {
            field: "model",
            problem: format!(
                "say which model in the request's `model` field ({} loaded: the endpoint cannot guess)",
                loaded.len()
            ),
        }),
    }
}

/// The answer, with the request counted (its model kept from unloading) until
/// it has been sent or the client has left.
fn counted_until_sent(response: Response, routed: Routed) -> Response {
    let (parts, body) = response.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _counted = &routed;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

fn list_models(router: &Router) -> Response {
    let data: Vec<Value> = router.models().into_iter().map(model_entry).collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// OpenAI's `GET /v1/models/{model}`.
/// An instance's name finds the model it serves.
fn one_model(router: &Router, id: &str) -> Response {
    let models = router.models();
    let known = || models.iter().map(|model| model.id.clone()).collect();
    match models
        .iter()
        .find(|model| model.id == id || model.aliases.iter().any(|alias| alias == id))
    {
        Some(model) => axum::Json(model_entry(model.clone())).into_response(),
        None => failure_response(&RouteFailure::of(&super::unknown_model(id, known()))),
    }
}

fn model_entry(model: super::RoutedModel) -> Value {
    json!({
        "id": model.id,
        "object": "model",
        "created": 0,
        "owned_by": "switchyard",
        "switchyard": model,
    })
}

fn failure_response(failure: &RouteFailure) -> Response {
    let report = &failure.report;
    let code = serde_json::to_value(report.code).unwrap_or(Value::Null);
    let kind = if failure.status == 404 {
        "invalid_request_error"
    } else {
        "switchyard_unavailable"
    };
    let body = json!({
        "error": {
            "code": if failure.status == 404 { json!("model_not_found") } else { code },
            "message": report.message,
            "suggestion": report.suggestion,
            "type": kind,
        }
    });
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(seconds) = failure.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn body_refused(refusal: BodyRefusal) -> Response {
    let body = json!({
        "error": {
            "code": refusal.code(),
            "message": refusal.message(),
            "suggestion": refusal.suggestion(),
            "type": "switchyard_unavailable",
        }
    });
    (refusal.status(), axum::Json(body)).into_response()
}
