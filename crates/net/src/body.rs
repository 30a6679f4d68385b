//! Request bodies read whole within bounds: a cap per body (checked against
//! `Content-Length` before a byte is read), a time limit for the whole body (a
//! client that sends one byte a minute holds nothing for long), and a budget of
//! bytes that all bodies held at once share (the LLM endpoints keep each body
//! until its answer is complete, so that a request cut by a pause can be sent
//! again: 64 held requests must not pin gigabytes). A permit for the bytes is taken
//! before they are read.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budget permits are counted in units of this many bytes.
const UNIT: usize = 64 * 1024;

/// Bytes that bodies may hold at once, shared by the listeners given a clone.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    total_units: usize,
}

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        let total_units = bytes.div_ceil(UNIT).max(1);
        Self {
            units: Arc::new(Semaphore::new(total_units)),
            total_units,
        }
    }

    /// Bytes held by bodies now (for tests and the monitor).
    pub fn held_bytes(&self) -> usize {
        (self.total_units - self.units.available_permits()) * UNIT
    }

    fn reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let units = u32::try_from(bytes.div_ceil(UNIT)).ok()?;
        if units == 0 {
            return None;
        }
        self.units.clone().try_acquire_many_owned(units).ok()
    }
}

/// What a body may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    pub max_bytes: usize,
    /// From the headers' arrival to the body's last byte.
    pub timeout: Duration,
}

/// A body, and its share of the budget (given back when it is dropped).
#[derive(Debug)]
pub struct HeldBody {
    pub bytes: Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Why a body was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRefusal {
    TooLarge {
        limit: usize,
    },
    /// The budget is spent by other requests now: try again later.
    Busy,
    TimedOut {
        after: Duration,
    },
    /// The client went away or sent something that is not a body.
    Broken,
}

/// Reads `body` whole within `limits`, holding its bytes against `budget`.
pub async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limits: BodyLimits,
    budget: &BodyBudget,
) -> Result<HeldBody, BodyRefusal> {
    let too_large = BodyRefusal::TooLarge {
        limit: limits.max_bytes,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<usize>().ok());
    if declared.is_some_and(|length| length > limits.max_bytes) {
        return Err(too_large);
    }
    let mut permit = match declared {
        Some(0) | None => None,
        Some(length) => Some(budget.reserve(length).ok_or(BodyRefusal::Busy)?),
    };
    let mut reserved = declared.unwrap_or(0);
    let read = async {
        let mut body = body;
        let mut bytes = Vec::with_capacity(declared.unwrap_or(0));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyRefusal::Broken)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let length = bytes.len() + data.len();
            if length > limits.max_bytes || declared.is_some_and(|declared| length > declared) {
                return Err(too_large);
            }
            if length > reserved {
                // A body of unknown length: its bytes are reserved as they come.
                let more = budget
                    .reserve(length - reserved + UNIT)
                    .ok_or(BodyRefusal::Busy)?;
                reserved += more.num_permits() * UNIT;
                match &mut permit {
                    Some(permit) => permit.merge(more),
                    None => permit = Some(more),
                }
            }
            bytes.extend_from_slice(&data);
        }
        Ok((bytes, permit))
    };
    let (bytes, permit) = tokio::time::timeout(limits.timeout, read)
        .await
        .map_err(|_| BodyRefusal::TimedOut {
            after: limits.timeout,
        })??;
    Ok(HeldBody {
        bytes: Bytes::from(bytes),
        _budget: permit,
    })
}

/// The rules of [`buffer`].
#[derive(Debug, Clone)]
pub struct Buffered {
    pub limits: BodyLimits,
    pub budget: BodyBudget,
}

/// Middleware for listeners whose handlers take small bodies whole (the image API,
/// the control API): the body is read within the limits and against the budget
/// before the handler runs, so no handler waits on a slow client.
pub async fn buffer(State(rules): State<Buffered>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match read_body(body, &parts.headers, rules.limits, &rules.budget).await {
        Ok(held) => {
            let request = Request::from_parts(parts, Body::from(held.bytes.clone()));
            let response = next.run(request).await;
            drop(held);
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}

impl BodyRefusal {
    pub fn status(self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::TimedOut { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Broken => StatusCode::BAD_REQUEST,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "REQUEST_TOO_LARGE",
            Self::Busy => "SERVER_BUSY",
            Self::TimedOut { .. } => "REQUEST_TIMED_OUT",
            Self::Broken => "REQUEST_BROKEN",
        }
    }

    pub fn message(self) -> String {
        match self {
            Self::TooLarge { limit } => format!("the request body is larger than {limit} bytes"),
            Self::Busy => "Switchyard holds as many request bodies as it may now".into(),
            Self::TimedOut { after } => {
                format!(
                    "the request body did not arrive within {} s",
                    after.as_secs()
                )
            }
            Self::Broken => "the request body broke off".into(),
        }
    }

    pub fn suggestion(self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "Send a smaller request.",
            Self::Busy => "Try again after the Retry-After delay.",
            Self::TimedOut { .. } | Self::Broken => "Send the whole request again.",
        }
    }
}

impl IntoResponse for BodyRefusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {
                "code": self.code(),
                "message": self.message(),
                "suggestion": self.suggestion(),
            }
        });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if self == Self::Busy {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_bytes: usize) -> BodyLimits {
        BodyLimits {
            max_bytes,
            timeout: Duration::from_secs(5),
        }
    }

    fn with_length(length: usize) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, length.into());
        headers
    }

    #[tokio::test]
    async fn bodies_hold_their_bytes_against_the_budget_until_dropped() {
        let budget = BodyBudget::new(4 * UNIT);
        let first = read_body(
            Body::from(vec![1_u8; 3 * UNIT]),
            &with_length(3 * UNIT),
            limits(1 << 20),
            &budget,
        )
        .await
        .unwrap();
        assert_eq!(first.bytes.len(), 3 * UNIT);
        assert_eq!(budget.held_bytes(), 3 * UNIT);
        let second = read_body(
            Body::from(vec![1_u8; 2 * UNIT]),
            &with_length(2 * UNIT),
            limits(1 << 20),
            &budget,
        )
        .await;
        assert_eq!(second.unwrap_err(), BodyRefusal::Busy);
        drop(first);
        assert_eq!(budget.held_bytes(), 0);
        // Of unknown length (a stream of chunks): counted as it arrives.
        let chunks = futures_util::stream::iter(
            (0..3).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![0_u8; UNIT]))),
        );
        let streamed = read_body(
            Body::from_stream(chunks),
            &HeaderMap::new(),
            limits(1 << 20),
            &budget,
        )
        .await
        .unwrap();
        assert_eq!(streamed.bytes.len(), 3 * UNIT);
        assert!(budget.held_bytes() >= 3 * UNIT);
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused_before_it_is_read_or_as_it_grows() {
        let budget = BodyBudget::new(1 << 20);
        let declared = read_body(Body::empty(), &with_length(2000), limits(1000), &budget).await;
        assert_eq!(declared.unwrap_err(), BodyRefusal::TooLarge { limit: 1000 });
        let chunks = futures_util::stream::iter(
            (0..3).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![0_u8; 600]))),
        );
        let grown = read_body(
            Body::from_stream(chunks),
            &HeaderMap::new(),
            limits(1000),
            &budget,
        )
        .await;
        assert_eq!(grown.unwrap_err(), BodyRefusal::TooLarge { limit: 1000 });
        assert_eq!(budget.held_bytes(), 0);
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_refused() {
        let budget = BodyBudget::new(1 << 20);
        let never = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        let slow = read_body(
            Body::from_stream(never),
            &with_length(10),
            BodyLimits {
                max_bytes: 100,
                timeout: Duration::from_millis(50),
            },
            &budget,
        )
        .await;
        assert!(matches!(slow.unwrap_err(), BodyRefusal::TimedOut { .. }));
        assert_eq!(budget.held_bytes(), 0);
    }
}
