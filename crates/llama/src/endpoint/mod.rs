//! The stable OpenAI-compatible endpoint of each instance: a reverse proxy on its
//! own port that forwards to llama-server (streaming included) and outlives the
//! server behind it. While the server is offloaded for an image, starting,
//! loading or restarting after a crash, requests are held (a bounded number, for a
//! bounded time) and forwarded once it is healthy again, so clients never see
//! "connection refused" because of an image. A stopped or failed instance answers
//! 503 at once with the reason; a hold that times out answers 503 with
//! `Retry-After`.

mod forward;
mod refusal;
mod sse;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

pub use refusal::Refusal;

use super::ports;
use super::state::InstanceState;
use switchyard_base::errors::{EngineError, ErrorReport, Result};
use switchyard_base::locks::lock;
use switchyard_net::body::{BodyBudget, BodyLimits};
use switchyard_net::guard::{AllowedOrigins, Guard};
use switchyard_net::serve::ConnectionLimits;

/// How long answers still being streamed may delay closing an endpoint.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long and how many requests an endpoint holds, and what one client may make
/// it hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// Requests waiting at once per instance; more get 503 at once.
    pub max_held: usize,
    /// A held request gets 503 with `Retry-After` after this.
    pub hold_timeout: Duration,
    /// Request bodies are read whole (so a request can be sent again when the
    /// server went away under it); larger ones get 413. The largest real ones are
    /// chats with images (a few photos, base64: ~1.4 × their size).
    pub max_body_bytes: usize,
    /// The whole body must arrive within this (else 408).
    pub body_timeout: Duration,
    /// Bytes of request bodies every endpoint together holds at once (held and
    /// in-flight requests keep theirs); a body that would pass it gets 503 with
    /// `Retry-After`.
    pub body_budget_bytes: usize,
    pub connections: ConnectionLimits,
}

impl Default for EndpointPolicy {
    fn default() -> Self {
        Self {
            max_held: 64,
            // An offload lasts an image or a short queue of them, plus a reload.
            hold_timeout: Duration::from_secs(300),
            max_body_bytes: 32 * 1024 * 1024,
            body_timeout: Duration::from_secs(60),
            body_budget_bytes: 256 * 1024 * 1024,
            connections: ConnectionLimits {
                max_connections: 512,
                ..ConnectionLimits::default()
            },
        }
    }
}

impl EndpointPolicy {
    pub fn body_limits(&self) -> BodyLimits {
        BodyLimits {
            max_bytes: self.max_body_bytes,
            timeout: self.body_timeout,
        }
    }
}

/// Why the requests being forwarded to a server were cut: it is about to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CutReason {
    /// The orchestrator pauses it for an image; it comes back.
    PausedForImage,
    /// The person (or a command) stops it.
    Stopping,
    /// The person (or a command) restarts it.
    Restarting,
    /// The app or the daemon is closing.
    Closing,
}

impl CutReason {
    /// The code a stream cut for this reason ends with.
    fn code(self) -> &'static str {
        match self {
            Self::PausedForImage => "LLM_PAUSED_FOR_IMAGE",
            Self::Stopping => "LLM_STOPPED",
            Self::Restarting => "LLM_RESTARTING",
            Self::Closing => "LLM_ENDPOINT_CLOSED",
        }
    }

    fn message(self, instance: &str) -> String {
        match self {
            Self::PausedForImage => format!(
                "llama-server `{instance}` was paused for an image before this answer was complete"
            ),
            Self::Stopping => {
                format!("llama-server `{instance}` was stopped before this answer was complete")
            }
            Self::Restarting => {
                format!("llama-server `{instance}` was restarted before this answer was complete")
            }
            Self::Closing => {
                format!("Switchyard closed before the answer of `{instance}` was complete")
            }
        }
    }

    fn suggestion(self) -> &'static str {
        match self {
            Self::PausedForImage => {
                "Send the request again: it waits until the LLM is back (a few seconds)."
            }
            Self::Stopping => {
                "Start the instance in Switchyard's LLM tab and send the request again."
            }
            Self::Restarting => "Send the request again: it waits until the server is back.",
            Self::Closing => "Start Switchyard again and send the request again.",
        }
    }
}

/// Cuts so far (a counter, so every cut is seen) and the last one's reason.
pub(crate) type CutSignal = (u64, Option<CutReason>);

/// The server a request is forwarded to, and the client that reaches it.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub base: String,
    pub http: reqwest::Client,
    /// Put on every request in place of the client's (see `set_server_key`).
    pub key: Option<String>,
}

/// What the endpoint does with a request now.
#[derive(Debug, Clone)]
pub(crate) enum Availability {
    /// Forward to this server.
    Ready(Upstream),
    /// Wait: the server is coming back (why, in words).
    Held(String),
    /// Refuse: nobody is bringing the server back.
    Down {
        reason: String,
        error: Option<ErrorReport>,
    },
}

/// Counters of one endpoint, for the Resource Monitor and the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, TS)]
#[ts(export)]
pub struct EndpointActivity {
    /// Requests waiting for the server now.
    #[ts(type = "number")]
    pub held: u64,
    /// Requests being forwarded now (until their answer is fully sent).
    #[ts(type = "number")]
    pub in_flight: u64,
    #[ts(type = "number")]
    pub forwarded: u64,
    #[ts(type = "number")]
    pub refused: u64,
}

#[derive(Debug, Default)]
struct Counters {
    held: AtomicUsize,
    in_flight: AtomicUsize,
    forwarded: AtomicU64,
    refused: AtomicU64,
    /// Woken whenever a request stops waiting or its answer ends (a drain waits
    /// for `in_flight` to reach zero).
    changed: Notify,
}

impl Counters {
    fn snapshot(&self) -> EndpointActivity {
        let load = |counter: &AtomicUsize| counter.load(Ordering::SeqCst) as u64;
        EndpointActivity {
            held: load(&self.held),
            in_flight: load(&self.in_flight),
            forwarded: self.forwarded.load(Ordering::SeqCst),
            refused: self.refused.load(Ordering::SeqCst),
        }
    }
}

/// Decrements a counter when dropped (a request stops waiting or its answer ends).
#[derive(Debug)]
struct Counted(Arc<Counters>, fn(&Counters) -> &AtomicUsize);

impl Counted {
    fn new(counters: &Arc<Counters>, which: fn(&Counters) -> &AtomicUsize) -> Self {
        which(counters).fetch_add(1, Ordering::SeqCst);
        Self(counters.clone(), which)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        (self.1)(&self.0).fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// What a running endpoint's requests share.
#[derive(Debug)]
pub(crate) struct EndpointShared {
    instance: String,
    availability: watch::Sender<Availability>,
    counters: Arc<Counters>,
    policy: EndpointPolicy,
    guard: Guard,
    /// Shared by every endpoint of this engine.
    budget: BodyBudget,
    closed: CancellationToken,
    /// Sent when the requests being forwarded are cut (the server is about to
    /// stop): each ends as well as it can (see `forward`).
    cut: watch::Sender<CutSignal>,
}

#[derive(Debug)]
struct Endpoint {
    shared: Arc<EndpointShared>,
    address: SocketAddr,
    /// The server task; it owns the listening socket.
    serving: tokio::task::JoinHandle<()>,
    /// Why requests wait while the orchestrator (or a restart) stops the server,
    /// or is about to, and will bring it back.
    hold: Option<&'static str>,
    http: reqwest::Client,
    /// The server went down since the orchestrator's hold began: it is healthy
    /// again only after that (a hold set while it was still loading must not end
    /// when that load finishes).
    hold_saw_stop: bool,
    /// Its requests were cut for a stop: nothing more is forwarded to this run.
    stopping: bool,
    /// The key the server's own port wants from clients of a keyless instance.
    server_key: Option<String>,
    /// Answers under way were cut in this run (the server may still be winding
    /// them down: nothing is lost by ending it at once).
    answers_cut: bool,
    last_state: InstanceState,
    upstream: Option<String>,
    last_error: Option<ErrorReport>,
}

impl Endpoint {
    fn availability(&self) -> Availability {
        use InstanceState as S;
        if let Some(reason) = self.hold {
            // Also while the server still runs: the drain before the stop lets the
            // requests in flight finish and forwards nothing new.
            return Availability::Held(reason.into());
        }
        match (self.last_state, &self.upstream) {
            _ if self.stopping => Availability::Down {
                reason: "the server is stopping".into(),
                error: None,
            },
            (S::Healthy, Some(base)) => Availability::Ready(Upstream {
                base: base.clone(),
                http: self.http.clone(),
                key: self.server_key.clone(),
            }),
            (S::Starting | S::Loading, _) => Availability::Held("the model is loading".into()),
            (S::Unhealthy | S::Crashed | S::Restarting, _) => {
                Availability::Held("the server is being restarted".into())
            }
            (S::Failed, _) => Availability::Down {
                reason: "the server failed and waits to be started again".into(),
                error: self.last_error.clone(),
            },
            _ => Availability::Down {
                reason: "the server is stopped".into(),
                error: None,
            },
        }
    }

    fn publish(&self) {
        self.shared.availability.send_replace(self.availability());
    }
}

/// Every instance's endpoint; cheap to share.
#[derive(Debug)]
pub(crate) struct Endpoints {
    endpoints: Mutex<BTreeMap<String, Endpoint>>,
    policy: Mutex<EndpointPolicy>,
    /// Built once: a client costs tens of milliseconds (its TLS set-up).
    http: reqwest::Client,
    allowed_origins: AllowedOrigins,
    budget: Mutex<BodyBudget>,
}

impl Endpoints {
    pub fn new() -> Self {
        // Forwarded requests go to local servers: never through a system proxy, and
        // without a total timeout (a streamed answer may take minutes). A new
        // connection per request (a local one costs well under a millisecond): a
        // kept-alive one may be closing as a request goes out on it (llama-server
        // closes them after a few requests), or lead to a server that has gone.
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_default();
        let policy = EndpointPolicy::default();
        Self {
            endpoints: Mutex::new(BTreeMap::new()),
            budget: Mutex::new(BodyBudget::new(policy.body_budget_bytes)),
            policy: Mutex::new(policy),
            http,
            allowed_origins: AllowedOrigins::default(),
        }
    }

    pub fn policy(&self) -> EndpointPolicy {
        *lock(&self.policy)
    }

    /// Applies to endpoints bound from now on.
    pub fn set_policy(&self, policy: EndpointPolicy) {
        let mut current = lock(&self.policy);
        if current.body_budget_bytes != policy.body_budget_bytes {
            *lock(&self.budget) = BodyBudget::new(policy.body_budget_bytes);
        }
        *current = policy;
    }

    /// The origins every endpoint lets in (the `allowed_origins` setting).
    pub fn allowed_origins(&self) -> AllowedOrigins {
        self.allowed_origins.clone()
    }

    /// How a request's body is read, and the budget every endpoint shares (the
    /// router reads its requests by the same rules, against the same budget).
    pub fn body_rules(&self) -> (BodyLimits, BodyBudget) {
        (lock(&self.policy).body_limits(), lock(&self.budget).clone())
    }

    /// Bytes of request bodies the endpoints hold now.
    pub fn body_bytes_held(&self) -> usize {
        lock(&self.budget).held_bytes()
    }

    /// The endpoint's address; binds it first if it does not listen yet
    /// (`port` fixed, or `None` for a free one). `PORT_IN_USE` when taken.
    pub fn ensure(&self, instance: &str, host: &str, port: Option<u16>) -> Result<SocketAddr> {
        let mut endpoints = lock(&self.endpoints);
        if let Some(endpoint) = endpoints.get(instance) {
            let same_port = port.is_none_or(|port| port == endpoint.address.port());
            if same_port && endpoint.address.ip() == ports::address(host, 0)?.ip() {
                return Ok(endpoint.address);
            }
            // The person moved it: the old listener closes, held requests get 503.
            if let Some(old) = endpoints.remove(instance) {
                old.shared.closed.cancel();
            }
        }
        let wanted = ports::address(host, port.unwrap_or(0))?;
        let listener = std::net::TcpListener::bind(wanted).map_err(|_| EngineError::PortInUse {
            host: host.to_owned(),
            port: wanted.port(),
        })?;
        let address = listener
            .local_addr()
            .and_then(|address| listener.set_nonblocking(true).map(|()| address))
            .map_err(|error| EngineError::Internal {
                problem: format!("endpoint socket: {error}"),
            })?;
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|error| EngineError::Internal {
                problem: format!("endpoint socket: {error}"),
            })?;
        let shared = Arc::new(EndpointShared {
            instance: instance.to_owned(),
            availability: watch::channel(Availability::Held("the server is starting".into())).0,
            counters: Arc::default(),
            policy: *lock(&self.policy),
            guard: Guard::new(self.allowed_origins.clone(), address.ip()),
            budget: lock(&self.budget).clone(),
            closed: CancellationToken::new(),
            cut: watch::channel((0, None)).0,
        });
        let endpoint = Endpoint {
            serving: tokio::spawn(forward::serve(listener, shared.clone())),
            shared,
            address,
            hold: None,
            http: self.http.clone(),
            hold_saw_stop: false,
            stopping: false,
            server_key: None,
            answers_cut: false,
            last_state: InstanceState::Starting,
            upstream: None,
            last_error: None,
        };
        endpoints.insert(instance.to_owned(), endpoint);
        Ok(address)
    }

    /// The instance moved to `state`; `upstream` is its server's base URL while one
    /// runs. Healthy again ends the orchestrator's hold.
    pub fn on_state(
        &self,
        instance: &str,
        state: InstanceState,
        upstream: Option<String>,
        error: Option<ErrorReport>,
    ) {
        if let Some(endpoint) = lock(&self.endpoints).get_mut(instance) {
            endpoint.last_state = state;
            endpoint.upstream = upstream;
            if error.is_some() {
                endpoint.last_error = error;
            }
            match state {
                InstanceState::Starting => {
                    endpoint.stopping = false;
                    endpoint.answers_cut = false;
                }
                InstanceState::Stopping => endpoint.hold_saw_stop = true,
                InstanceState::Stopped | InstanceState::Failed => {
                    endpoint.hold_saw_stop = true;
                    // That run is over: the state says the rest.
                    endpoint.stopping = false;
                }
                InstanceState::Healthy => {
                    if endpoint.hold_saw_stop {
                        endpoint.hold = None;
                    }
                    endpoint.last_error = None;
                }
                _ => {}
            }
            endpoint.publish();
        }
    }

    /// The key llama-server's own port wants for the next run, which the endpoint
    /// puts on every request of a keyless instance: `None` when the person set a
    /// key (clients must send theirs, and it is passed on as they sent it).
    pub fn set_server_key(&self, instance: &str, key: Option<String>) {
        if let Some(endpoint) = lock(&self.endpoints).get_mut(instance) {
            endpoint.server_key = key;
            endpoint.publish();
        }
    }

    /// The orchestrator is about to stop the server and will bring it back: from
    /// now on requests wait instead of being forwarded or refused, until the server
    /// is healthy again after its stop.
    pub fn hold(&self, instance: &str, reason: &'static str) {
        if let Some(endpoint) = lock(&self.endpoints).get_mut(instance) {
            endpoint.hold = Some(reason);
            endpoint.hold_saw_stop = false;
            endpoint.publish();
        }
    }

    /// The orchestrator gave up bringing it back (or the person took over).
    pub fn release(&self, instance: &str) {
        if let Some(endpoint) = lock(&self.endpoints).get_mut(instance) {
            endpoint.hold = None;
            endpoint.publish();
        }
    }

    /// Waits until no request is being forwarded to the server (they were held
    /// from the moment of [`Self::hold`]), at most until `deadline`; then cuts what
    /// is still in flight for `reason` (see [`Self::cut`]). Returns how many were
    /// cut.
    pub async fn drain(&self, instance: &str, deadline: Instant, reason: CutReason) -> u64 {
        let Some(shared) = self.shared(instance) else {
            return 0;
        };
        let counters = &shared.counters;
        loop {
            let changed = counters.changed.notified();
            tokio::pin!(changed);
            // Registered before the count is read, so an answer ending in between
            // still wakes this wait.
            changed.as_mut().enable();
            if counters.in_flight.load(Ordering::SeqCst) == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        self.cut(instance, reason)
    }

    /// The server is about to stop: nothing new is forwarded to this run, and the
    /// requests being forwarded are cut now rather than left for the server to end
    /// (llama-server cancels a task whose client left, so it then stops at once).
    /// A request that had sent nothing to its client yet is sent again once the
    /// server is back (or refused, when nobody brings it back); a stream already
    /// under way ends with an error event. Returns how many were in flight.
    pub fn cut(&self, instance: &str, reason: CutReason) -> u64 {
        let mut endpoints = lock(&self.endpoints);
        let Some(endpoint) = endpoints.get_mut(instance) else {
            return 0;
        };
        endpoint.stopping = !matches!(
            endpoint.last_state,
            InstanceState::Stopped | InstanceState::Failed
        );
        endpoint.publish();
        let in_flight = endpoint.shared.counters.in_flight.load(Ordering::SeqCst) as u64;
        endpoint.answers_cut |= in_flight > 0;
        endpoint
            .shared
            .cut
            .send_modify(|(cuts, last)| (*cuts, *last) = (*cuts + 1, Some(reason)));
        in_flight
    }

    /// Answers a request the router has read whole (it picked `instance` by the
    /// body's `model`) exactly as `instance`'s own endpoint would: forwarded, held
    /// while the server loads or is paused, or refused with the reason.
    pub async fn answer_routed(
        &self,
        instance: &str,
        parts: axum::http::request::Parts,
        held: switchyard_net::body::HeldBody,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        match self.shared(instance) {
            Some(shared) => forward::answer_held(&shared, parts, held).await,
            None => Refusal::Stopped {
                instance: instance.to_owned(),
                reason: "the server is stopped".into(),
                error: None,
            }
            .into_response(),
        }
    }

    /// Whether answers under way were cut since the server's run began.
    pub fn answers_were_cut(&self, instance: &str) -> bool {
        lock(&self.endpoints)
            .get(instance)
            .is_some_and(|endpoint| endpoint.answers_cut)
    }

    fn shared(&self, instance: &str) -> Option<Arc<EndpointShared>> {
        lock(&self.endpoints)
            .get(instance)
            .map(|endpoint| endpoint.shared.clone())
    }

    /// Whether a request sent now would be answered (now, or once the server is
    /// back) rather than refused.
    pub fn accepts(&self, instance: &str) -> bool {
        lock(&self.endpoints)
            .get(instance)
            .is_some_and(|endpoint| !matches!(endpoint.availability(), Availability::Down { .. }))
    }

    pub fn activity(&self, instance: &str) -> Option<EndpointActivity> {
        lock(&self.endpoints)
            .get(instance)
            .map(|endpoint| endpoint.shared.counters.snapshot())
    }

    /// Requests waiting on any endpoint now.
    pub fn waiting(&self) -> u64 {
        lock(&self.endpoints)
            .values()
            .map(|endpoint| endpoint.shared.counters.snapshot().held)
            .sum()
    }

    /// Requests being answered on any endpoint now.
    pub fn in_flight(&self) -> u64 {
        lock(&self.endpoints)
            .values()
            .map(|endpoint| endpoint.shared.counters.snapshot().in_flight)
            .sum()
    }

    /// Requests waiting or being answered on any endpoint now.
    pub fn busy(&self) -> u64 {
        lock(&self.endpoints)
            .values()
            .map(|endpoint| {
                let activity = endpoint.shared.counters.snapshot();
                activity.held + activity.in_flight
            })
            .sum()
    }

    /// Closes the instance's endpoint (it was removed).
    pub fn remove(&self, instance: &str) {
        if let Some(endpoint) = lock(&self.endpoints).remove(instance) {
            endpoint.shared.closed.cancel();
        }
    }

    /// Closes every endpoint (the app is closing) and returns once their ports are
    /// free, so the next launch can listen on them again.
    pub async fn close_all(&self) {
        let endpoints = std::mem::take(&mut *lock(&self.endpoints));
        for endpoint in endpoints.values() {
            endpoint.shared.closed.cancel();
        }
        for (_, endpoint) in endpoints {
            let mut serving = endpoint.serving;
            // Answers still streaming get a moment; then the socket goes regardless.
            if tokio::time::timeout(CLOSE_GRACE, &mut serving)
                .await
                .is_err()
            {
                serving.abort();
                let _ = serving.await;
            }
        }
    }
}
