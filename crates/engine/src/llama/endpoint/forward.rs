//! One endpoint's HTTP side: every request waits for the server when it is held,
//! is refused with the reason when it is down, and is otherwise forwarded as it
//! came (method, path, query, headers, body) with the answer streamed back as it
//! arrives.

use std::sync::Arc;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{request::Parts, HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::{Availability, Counted, EndpointShared, Refusal};

pub(super) async fn serve(listener: tokio::net::TcpListener, endpoint: Arc<EndpointShared>) {
    let closed = endpoint.closed.clone();
    let router = Router::new().fallback(handle).with_state(endpoint);
    if let Err(error) = axum::serve(listener, router)
        .with_graceful_shutdown(async move { closed.cancelled().await })
        .await
    {
        tracing::warn!(%error, "an LLM endpoint stopped serving");
    }
}

async fn handle(State(endpoint): State<Arc<EndpointShared>>, request: Request) -> Response {
    let answer = answer(&endpoint, request).await;
    if answer.is_err() {
        endpoint
            .counters
            .refused
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    answer.unwrap_or_else(IntoResponse::into_response)
}

async fn answer(endpoint: &EndpointShared, request: Request) -> Result<Response, Refusal> {
    let (parts, body) = request.into_parts();
    let limit = endpoint.policy.max_body_bytes;
    let body = to_bytes(body, limit)
        .await
        .map_err(|_| Refusal::BodyTooLarge { limit })?;
    let instance = &endpoint.instance;
    let deadline = Instant::now() + endpoint.policy.hold_timeout;
    let mut availability = endpoint.availability.subscribe();
    let mut waiting: Option<Counted> = None;
    loop {
        let now = availability.borrow_and_update().clone();
        let reason = match now {
            Availability::Ready(upstream) => {
                drop(waiting.take());
                match send(endpoint, &upstream, &parts, body.clone()).await {
                    Ok(response) => return Ok(response),
                    // The server went away between its last health check and this
                    // request: wait for the next state like a held request.
                    Err(error) if error.is_connect() => "the server is not answering".to_owned(),
                    Err(error) => {
                        return Err(Refusal::UpstreamFailed {
                            instance: instance.clone(),
                            problem: error.to_string(),
                        })
                    }
                }
            }
            Availability::Down { reason, error } => {
                return Err(Refusal::Stopped {
                    instance: instance.clone(),
                    reason,
                    error,
                })
            }
            Availability::Held(reason) => reason,
        };
        if waiting.is_none() {
            let limit = endpoint.policy.max_held;
            let counted = Counted::new(&endpoint.counters, |counters| &counters.held);
            if endpoint.counters.snapshot().held > limit as u64 {
                return Err(Refusal::HoldQueueFull {
                    instance: instance.clone(),
                    limit,
                });
            }
            waiting = Some(counted);
        }
        tokio::select! {
            changed = availability.changed() => {
                if changed.is_err() {
                    return Err(Refusal::Closed { instance: instance.clone() });
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                return Err(Refusal::HoldTimedOut { instance: instance.clone(), reason });
            }
            () = endpoint.closed.cancelled() => {
                return Err(Refusal::Closed { instance: instance.clone() });
            }
        }
    }
}

/// Headers that belong to one connection, not to the request or the answer.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    )
}

fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    headers
        .iter()
        .filter(|(name, _)| !hop_by_hop(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

async fn send(
    endpoint: &EndpointShared,
    upstream: &str,
    parts: &Parts,
    body: Bytes,
) -> reqwest::Result<Response> {
    let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let in_flight = Counted::new(&endpoint.counters, |counters| &counters.in_flight);
    let answer = endpoint
        .http
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .headers(end_to_end(&parts.headers))
        .body(body)
        .send()
        .await?;
    endpoint
        .counters
        .forwarded
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = answer.status();
    *response.headers_mut() = end_to_end(answer.headers());
    // The count drops when the answer has been streamed out (or the client left).
    let stream = answer.bytes_stream().map(move |chunk| {
        let _answering = &in_flight;
        chunk
    });
    *response.body_mut() = Body::from_stream(stream);
    Ok(response)
}
