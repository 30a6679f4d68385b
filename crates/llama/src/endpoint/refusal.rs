//! Why an endpoint answered instead of the server: a stable code, words for people
//! and what to do, in OpenAI's error shape so clients show the message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use switchyard_base::errors::ErrorReport;
use switchyard_net::body::BodyRefusal;

/// Seconds a client is told to wait before trying again.
const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Nobody is bringing the server back (stopped, or failed).
    Stopped {
        instance: String,
        reason: String,
        error: Option<ErrorReport>,
    },
    /// Held for the whole hold timeout.
    HoldTimedOut { instance: String, reason: String },
    /// Too many requests held already.
    HoldQueueFull { instance: String, limit: usize },
    /// The server was there and failed the request in transit.
    UpstreamFailed { instance: String, problem: String },
    /// The body was too large, too slow, broken, or the budget is spent.
    Body(BodyRefusal),
    /// The app is closing or the endpoint moved.
    Closed { instance: String },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Stopped { .. } => "LLM_STOPPED",
            Self::HoldTimedOut { .. } => "LLM_HOLD_TIMED_OUT",
            Self::HoldQueueFull { .. } => "LLM_HOLD_QUEUE_FULL",
            Self::UpstreamFailed { .. } => "LLM_UPSTREAM_FAILED",
            Self::Body(refusal) => refusal.code(),
            Self::Closed { .. } => "LLM_ENDPOINT_CLOSED",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::UpstreamFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::Body(refusal) => refusal.status(),
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Whether trying again later can succeed without the person doing anything.
    fn retry_after(&self) -> Option<u64> {
        matches!(
            self,
            Self::HoldTimedOut { .. }
                | Self::HoldQueueFull { .. }
                | Self::Closed { .. }
                | Self::Body(BodyRefusal::Busy)
        )
        .then_some(RETRY_AFTER_SECS)
    }

    pub fn message(&self) -> String {
        match self {
            Self::Stopped {
                instance,
                reason,
                error,
            } => {
                let cause = error
                    .as_ref()
                    .map(|error| format!(" ({})", error.message))
                    .unwrap_or_default();
                format!("llama-server `{instance}` is not running: {reason}{cause}")
            }
            Self::HoldTimedOut { instance, reason } => {
                format!("llama-server `{instance}` did not come back in time: {reason}")
            }
            Self::HoldQueueFull { instance, limit } => {
                format!("llama-server `{instance}` is paused and {limit} requests wait already")
            }
            Self::UpstreamFailed { instance, problem } => {
                format!("llama-server `{instance}` failed the request: {problem}")
            }
            Self::Body(refusal) => refusal.message(),
            Self::Closed { instance } => {
                format!("the endpoint of `{instance}` closed (the app is closing or it moved)")
            }
        }
    }

    pub fn suggestion(&self) -> &'static str {
        match self {
            Self::Stopped { .. } => "Start the instance in Switchyard's LLM tab.",
            Self::HoldTimedOut { .. } | Self::HoldQueueFull { .. } => {
                "Try again after the Retry-After delay; images may be generating."
            }
            Self::UpstreamFailed { .. } => "See the instance's log in Switchyard's LLM tab.",
            Self::Body(refusal) => refusal.suggestion(),
            Self::Closed { .. } => "Try again; check the instance's endpoint in Switchyard.",
        }
    }
}

impl From<BodyRefusal> for Refusal {
    fn from(refusal: BodyRefusal) -> Self {
        Self::Body(refusal)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "code": self.code(),
                "message": self.message(),
                "suggestion": self.suggestion(),
                "type": "switchyard_unavailable",
            }
        });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
