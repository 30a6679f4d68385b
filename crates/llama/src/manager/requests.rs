//! What the manager tells the endpoints: hold, drain and release requests around
//! a pause, and their counters.

use super::LlamaManager;
use crate::endpoint::{CutReason, EndpointActivity, EndpointPolicy};
use switchyard_net::body::{BodyBudget, BodyLimits, HeldBody};

impl LlamaManager {
    /// The orchestrator is about to stop `name` and will bring it back: its
    /// endpoint holds requests instead of refusing them until it is healthy.
    pub fn hold_requests(&self, name: &str) {
        self.shared
            .endpoints
            .hold(name, "the LLM is paused for an image");
    }

    /// The orchestrator's hold began: waits until the requests being forwarded to
    /// `name` have been answered, at most until `deadline`, then cuts those left
    /// (they are sent again once the server is back, or a stream under way ends
    /// with an error event). Returns how many were cut.
    pub async fn drain_requests(&self, name: &str, deadline: tokio::time::Instant) -> u64 {
        self.shared
            .endpoints
            .drain(name, deadline, CutReason::PausedForImage)
            .await
    }

    /// Ends a hold without the server coming back (the reload failed, or the
    /// person took over): waiting requests get the reason.
    pub fn release_requests(&self, name: &str) {
        self.shared.endpoints.release(name);
    }

    /// The origins of browser apps every endpoint lets in (the `allowed_origins`
    /// setting); shared, so setting it applies at once.
    pub fn allowed_origins(&self) -> switchyard_net::guard::AllowedOrigins {
        self.shared.endpoints.allowed_origins()
    }

    /// Bytes of request bodies the endpoints hold now (held and in-flight
    /// requests keep theirs until answered).
    pub fn request_bytes_held(&self) -> usize {
        self.shared.endpoints.body_bytes_held()
    }

    /// The endpoint's counters, once it listens.
    pub fn endpoint_activity(&self, name: &str) -> Option<EndpointActivity> {
        self.shared.endpoints.activity(name)
    }

    /// Requests held on any endpoint now (clients waiting for a paused LLM).
    pub fn requests_waiting(&self) -> u64 {
        self.shared.endpoints.waiting()
    }

    /// Requests being answered on any endpoint now.
    pub fn requests_in_flight(&self) -> u64 {
        self.shared.endpoints.in_flight()
    }

    /// Requests held or being answered on any endpoint now.
    pub fn requests_busy(&self) -> u64 {
        self.shared.endpoints.busy()
    }

    /// Answers a request the router read whole and picked `name` for, as `name`'s
    /// own endpoint would (held while it loads, refused with the reason when it is
    /// stopped).
    pub async fn answer_routed(
        &self,
        name: &str,
        parts: axum::http::request::Parts,
        held: HeldBody,
    ) -> axum::response::Response {
        self.shared.endpoints.answer_routed(name, parts, held).await
    }

    /// How the endpoints read request bodies, and the budget they share.
    pub fn request_body_rules(&self) -> (BodyLimits, BodyBudget) {
        self.shared.endpoints.body_rules()
    }

    /// The endpoints' policy for the next one bound (the router applies the same
    /// connection limits and hold time).
    pub fn endpoint_policy(&self) -> EndpointPolicy {
        self.shared.endpoints.policy()
    }
}
