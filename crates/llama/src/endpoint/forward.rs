//! One endpoint's HTTP side: every request waits for the server when it is held,
//! is refused with the reason when it is down, and is otherwise forwarded as it
//! came (method, path, query, headers, body) with the answer streamed back as it
//! arrives.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{request::Parts, HeaderMap, HeaderName};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::sse::{error_end, EventFramer};
use super::{
    Availability, Counted, CutReason, CutSignal, EndpointShared, Refusal, Upstream, CLOSE_GRACE,
};
use switchyard_net as net;
use switchyard_net::body::{read_body, HeldBody};

pub(super) async fn serve(listener: tokio::net::TcpListener, endpoint: Arc<EndpointShared>) {
    let closed = endpoint.closed.clone();
    let limits = endpoint.policy.connections;
    let guard = endpoint.guard.clone();
    let router = Router::new().fallback(handle).with_state(endpoint).layer(
        axum::middleware::from_fn_with_state(guard, net::guard::check),
    );
    net::serve::serve(listener, router, limits, closed, CLOSE_GRACE).await;
}

async fn handle(State(endpoint): State<Arc<EndpointShared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // Held until the answer is complete: a request cut by a pause is sent again.
    let held = read_body(
        body,
        &parts.headers,
        endpoint.policy.body_limits(),
        &endpoint.budget,
    )
    .await;
    match held {
        Ok(held) => answer_held(&endpoint, parts, held).await,
        Err(refused) => counted_refusal(&endpoint, Refusal::from(refused)),
    }
}

/// Answers a request whose body has been read (here, or by the router, which read
/// it for its `model`): forwarded, held, or refused with the reason.
pub(super) async fn answer_held(
    endpoint: &EndpointShared,
    parts: Parts,
    held: HeldBody,
) -> Response {
    match answer(endpoint, parts, held).await {
        Ok(response) => response,
        Err(refusal) => counted_refusal(endpoint, refusal),
    }
}

fn counted_refusal(endpoint: &EndpointShared, refusal: Refusal) -> Response {
    endpoint
        .counters
        .refused
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    refusal.into_response()
}

async fn answer(
    endpoint: &EndpointShared,
    parts: Parts,
    held: HeldBody,
) -> Result<Response, Refusal> {
    let body = held.bytes.clone();
    let instance = &endpoint.instance;
    let deadline = Instant::now() + endpoint.policy.hold_timeout;
    let mut availability = endpoint.availability.subscribe();
    let mut waiting: Option<Counted> = None;
    let mut failed_sends = 0;
    loop {
        let now = availability.borrow_and_update().clone();
        let reason = match now {
            Availability::Ready(upstream) => {
                drop(waiting.take());
                match forward(endpoint, &upstream, &parts, body.clone()).await {
                    Forwarded::Answer(response) => return Ok(keep_until_sent(response, held)),
                    // Nothing reached the client yet: it waits for the server's
                    // next state like a held request, then is sent again.
                    Forwarded::Again(reason) => reason,
                    // The connection went as the request was sent (a kept-alive
                    // one the server was closing, or a server going down): nothing
                    // was answered, so it is sent again, a few times at most.
                    Forwarded::SendFailed(_) if failed_sends < MAX_FAILED_SENDS => {
                        failed_sends += 1;
                        continue;
                    }
                    Forwarded::SendFailed(problem) | Forwarded::Failed(problem) => {
                        return Err(Refusal::UpstreamFailed {
                            instance: instance.clone(),
                            problem,
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

/// The answer, with the request's body kept (and counted against the budget)
/// until the answer has been sent or the client has left.
fn keep_until_sent(response: Response, held: HeldBody) -> Response {
    let (parts, body) = response.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _kept = &held;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// How often a request is sent again right away when sending it failed.
const MAX_FAILED_SENDS: u32 = 2;

/// How one attempt to forward a request ended.
enum Forwarded {
    /// The answer is on its way to the client.
    Answer(Response),
    /// Nothing was sent to the client: the request can be sent again later.
    Again(String),
    /// Sending it failed before the server answered anything.
    SendFailed(String),
    /// The server failed the request.
    Failed(String),
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

/// Sends the request to the server and starts the answer back to the client.
/// A request the endpoint cuts (its server is about to stop) before the client got
/// anything is to be sent again; a stream under way then ends with an error event.
async fn forward(
    endpoint: &EndpointShared,
    upstream: &Upstream,
    parts: &Parts,
    body: Bytes,
) -> Forwarded {
    let in_flight = Counted::new(&endpoint.counters, |counters| &counters.in_flight);
    let mut cut = endpoint.cut.subscribe();
    cut.borrow_and_update();
    // Looked at again with the request counted: a drain that began meanwhile either
    // sees it in flight, or this sees the hold.
    if !matches!(*endpoint.availability.borrow(), Availability::Ready(_)) {
        return Forwarded::Again("the server is about to stop".into());
    }
    let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let mut headers = end_to_end(&parts.headers);
    if let Some(key) = &upstream.key {
        // A keyless instance: whatever key a client sends (OpenAI's libraries
        // always send one) is replaced by the one the server's port wants.
        headers.remove("x-api-key");
        if let Ok(value) = axum::http::HeaderValue::from_str(&format!("Bearer {key}")) {
            headers.insert(axum::http::header::AUTHORIZATION, value);
        }
    }
    let send = upstream
        .http
        .request(parts.method.clone(), format!("{}{path}", upstream.base))
        .headers(headers)
        .body(body)
        .send();
    let answer = tokio::select! {
        answer = send => answer,
        _ = cut.changed() => return Forwarded::Again(cut_words(&cut)),
    };
    let answer = match answer {
        Ok(answer) => answer,
        // The server went away between its last health check and this request.
        Err(error) if error.is_connect() => {
            return Forwarded::Again("the server is not answering".into())
        }
        Err(error) => return Forwarded::SendFailed(error.to_string()),
    };
    endpoint
        .counters
        .forwarded
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = answer.status();
    *response.headers_mut() = end_to_end(answer.headers());
    if !is_event_stream(answer.headers()) {
        // llama-server sends a plain answer once all of it exists: it is passed
        // on as it comes, and the count drops when it has been sent (or the
        // client left).
        let stream = answer.bytes_stream().map(move |chunk| {
            let _answering = &in_flight;
            chunk
        });
        *response.body_mut() = Body::from_stream(stream);
        return Forwarded::Answer(response);
    }
    // A stream: its headers go out with its first event, so that a cut before
    // then can still send the request again.
    let mut events = EventStream {
        source: EventSource {
            upstream: Box::pin(answer.bytes_stream()),
            framer: EventFramer::default(),
            ended: false,
        },
        cut,
        instance: endpoint.instance.clone(),
        _in_flight: in_flight,
    };
    let first = tokio::select! {
        first = events.source.next_events() => first,
        _ = events.cut.changed() => return Forwarded::Again(cut_words(&events.cut)),
    };
    let first = match first {
        Ok(first) => first,
        Err(problem) => return Forwarded::Failed(problem),
    };
    let body =
        futures_util::stream::unfold((Some(first), events), |(first, mut events)| async move {
            if let Some(first) = first.filter(|bytes| !bytes.is_empty()) {
                return Some((Ok::<_, std::convert::Infallible>(first), (None, events)));
            }
            let next = events.next_or_end().await?;
            Some((Ok(next), (None, events)))
        });
    *response.body_mut() = Body::from_stream(body);
    Forwarded::Answer(response)
}

/// Why a cut request is sent again, in words (it waits for the server meanwhile).
fn cut_words(cut: &watch::Receiver<CutSignal>) -> String {
    match cut.borrow().1 {
        Some(CutReason::PausedForImage) | None => "the LLM is paused for an image".into(),
        Some(CutReason::Stopping) => "the server is stopping".into(),
        Some(CutReason::Restarting) => "the server is restarting".into(),
        Some(CutReason::Closing) => "the endpoint is closing".into(),
    }
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("text/event-stream"))
}

/// A server's stream of events on its way to the client.
struct EventStream {
    source: EventSource,
    cut: watch::Receiver<CutSignal>,
    instance: String,
    /// The request counts as in flight until its stream has ended.
    _in_flight: Counted,
}

/// The server's side of a stream, whole events at a time.
struct EventSource {
    upstream: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    framer: EventFramer,
    ended: bool,
}

impl EventSource {
    /// The next complete events; at the end of the stream, whatever is left.
    /// `Err` when the server failed meanwhile.
    async fn next_events(&mut self) -> Result<Bytes, String> {
        loop {
            match self.upstream.next().await {
                Some(Ok(bytes)) => {
                    let events = self.framer.push(&bytes);
                    if !events.is_empty() {
                        return Ok(events);
                    }
                }
                Some(Err(error)) => return Err(error.to_string()),
                None => {
                    self.ended = true;
                    return Ok(self.framer.rest());
                }
            }
        }
    }
}

impl EventStream {
    /// The next bytes for the client, `None` after the last. A cut, or a server
    /// that fails mid-stream, ends the stream on an event boundary with an error
    /// event and `[DONE]`.
    async fn next_or_end(&mut self) -> Option<Bytes> {
        if self.source.ended {
            return None;
        }
        let next = tokio::select! {
            next = self.source.next_events() => next,
            changed = self.cut.changed() => {
                self.source.ended = true;
                let reason = match changed {
                    Ok(()) => self.cut.borrow().1.unwrap_or(CutReason::PausedForImage),
                    Err(_) => CutReason::Closing,
                };
                return Some(error_end(
                    reason.code(),
                    &reason.message(&self.instance),
                    reason.suggestion(),
                ));
            }
        };
        match next {
            Ok(bytes) if bytes.is_empty() && self.source.ended => None,
            Ok(bytes) => Some(bytes),
            Err(problem) => {
                self.source.ended = true;
                Some(error_end(
                    "LLM_UPSTREAM_FAILED",
                    &format!(
                        "llama-server `{}` failed while answering: {problem}",
                        self.instance
                    ),
                    "See the instance's log in Switchyard's LLM tab; send the request again.",
                ))
            }
        }
    }
}
