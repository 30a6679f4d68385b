//! The other end of the daemon's routes, for the `switchyard` command and the app
//! attaching to a daemon.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

use super::daemon_file::DaemonFile;
use super::rows::{DaemonStatus, InstanceRow};
use super::wire::{self, DaemonImageRequest, QueuedImage, RoomAnswer, RoomRequest};
use crate::diffusion::{JobSummary, JobView};
use crate::errors::{EngineError, ErrorReport};
use crate::llama::{is_valid_name, InstanceStatus, LogLine};
use crate::orchestrator::router::RoutedModel;

/// Starting a large model can take minutes; the daemon answers when it is healthy.
const START_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const QUICK_TIMEOUT: Duration = Duration::from_secs(30);
/// Stopping servers gracefully takes seconds; a daemon still busy after this is
/// not waited for (the image goes ahead, and the log says so).
const ROOM_TIMEOUT: Duration = Duration::from_secs(120);

/// Plain HTTP to loopback. Not reqwest: its TLS set-up loads the system's
/// certificates at every client, which cost a command 40–80 ms here, more than
/// the whole call.
#[derive(Debug, Clone)]
pub struct ControlClient {
    base: String,
    token: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl ControlClient {
    pub fn new(daemon: &DaemonFile) -> Self {
        Self {
            base: format!("http://127.0.0.1:{}", daemon.port),
            token: daemon.token.clone(),
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn daemon_status(&self) -> Result<DaemonStatus, ErrorReport> {
        self.call(Method::GET, "/v1/daemon", QUICK_TIMEOUT).await
    }

    pub async fn reload(&self) -> Result<DaemonStatus, ErrorReport> {
        self.call(Method::POST, "/v1/reload", QUICK_TIMEOUT).await
    }

    pub async fn shutdown(&self) -> Result<(), ErrorReport> {
        self.send(Method::POST, "/v1/shutdown", Bytes::new(), QUICK_TIMEOUT)
            .await
            .map(drop)
    }

    pub async fn list(&self) -> Result<Vec<InstanceRow>, ErrorReport> {
        self.call(Method::GET, "/v1/instances", QUICK_TIMEOUT).await
    }

    pub async fn describe(&self, name: &str) -> Result<InstanceStatus, ErrorReport> {
        self.call(Method::GET, &instance(name, ""), QUICK_TIMEOUT)
            .await
    }

    pub async fn up(&self, name: &str) -> Result<InstanceStatus, ErrorReport> {
        self.call(Method::POST, &instance(name, "/up"), START_TIMEOUT)
            .await
    }

    pub async fn down(&self, name: &str) -> Result<InstanceStatus, ErrorReport> {
        self.call(Method::POST, &instance(name, "/down"), QUICK_TIMEOUT)
            .await
    }

    pub async fn restart(&self, name: &str) -> Result<InstanceStatus, ErrorReport> {
        let path = instance(name, "/restart");
        self.call(Method::POST, &path, START_TIMEOUT).await
    }

    pub async fn logs(
        &self,
        name: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<LogLine>, ErrorReport> {
        let path = format!("{}?since={since}&limit={limit}", instance(name, "/logs"));
        self.call(Method::GET, &path, QUICK_TIMEOUT).await
    }

    /// Queues a generation on the daemon's image service (started on the model
    /// first when it does not run it; sd may be set up first).
    pub async fn generate_image(
        &self,
        order: &DaemonImageRequest,
    ) -> Result<QueuedImage, ErrorReport> {
        let body =
            serde_json::to_vec(order).map_err(|error| self.unreachable(&error.to_string()))?;
        let answer = self
            .send(Method::POST, "/v1/images", Bytes::from(body), START_TIMEOUT)
            .await?;
        self.parse(&answer)
    }

    /// The job, once finished or after `wait` (at most [`wire::MAX_WAIT`]) with
    /// its progress.
    pub async fn image_job(&self, id: &str, wait: Duration) -> Result<JobView, ErrorReport> {
        let path = format!("/v1/images/{}?wait_s={}", image(id), wait.as_secs());
        self.call(Method::GET, &path, QUICK_TIMEOUT + wire::MAX_WAIT)
            .await
    }

    pub async fn cancel_image(&self, id: &str) -> Result<JobSummary, ErrorReport> {
        let path = format!("/v1/images/{}", image(id));
        self.call(Method::DELETE, &path, QUICK_TIMEOUT).await
    }

    /// Asks the daemon to stop its LLM servers if an image of this size would not
    /// fit beside them (see `Orchestrator::make_room`). Offloading takes seconds.
    pub async fn make_room(&self, request: RoomRequest) -> Result<RoomAnswer, ErrorReport> {
        let body =
            serde_json::to_vec(&request).map_err(|error| self.unreachable(&error.to_string()))?;
        let answer = self
            .send(Method::POST, "/v1/room", Bytes::from(body), ROOM_TIMEOUT)
            .await?;
        self.parse(&answer)
    }

    /// The models of the daemon's Switchyard endpoint, with their states.
    pub async fn routed_models(&self) -> Result<Vec<RoutedModel>, ErrorReport> {
        self.call(Method::GET, "/v1/models", QUICK_TIMEOUT).await
    }

    /// Loads a model as a request for it would (making room first).
    pub async fn load_model(&self, id: &str) -> Result<RoutedModel, ErrorReport> {
        self.call(Method::POST, &model(id, "/load"), START_TIMEOUT)
            .await
    }

    /// Unloads a model once its answers under way are done.
    pub async fn unload_model(&self, id: &str) -> Result<RoutedModel, ErrorReport> {
        self.call(Method::POST, &model(id, "/unload"), START_TIMEOUT)
            .await
    }

    pub async fn pin_model(&self, id: &str, pinned: bool) -> Result<RoutedModel, ErrorReport> {
        let path = format!("{}?pinned={pinned}", model(id, "/pin"));
        self.call(Method::POST, &path, QUICK_TIMEOUT).await
    }

    /// Process `pid`'s image is done.
    pub async fn room_no_longer_needed(&self, pid: u32) -> Result<(), ErrorReport> {
        let path = format!("/v1/room?pid={pid}");
        self.send(Method::DELETE, &path, Bytes::new(), QUICK_TIMEOUT)
            .await
            .map(drop)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        timeout: Duration,
    ) -> Result<T, ErrorReport> {
        let body = self.send(method, path, Bytes::new(), timeout).await?;
        self.parse(&body)
    }

    fn parse<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, ErrorReport> {
        serde_json::from_slice(body).map_err(|error| self.unreachable(&error.to_string()))
    }

    /// The answer's body, or the daemon's own error as the engine reported it.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, ErrorReport> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|error| self.unreachable(&error.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|error| error.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| error.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| self.unreachable(&format!("no answer within {} s", timeout.as_secs())))?
            .map_err(|problem| self.unreachable(&problem))?;
        if status.is_success() {
            return Ok(body);
        }
        Err(serde_json::from_slice::<ErrorReport>(&body)
            .unwrap_or_else(|_| self.unreachable(&format!("it answered HTTP {status}"))))
    }

    fn unreachable(&self, problem: &str) -> ErrorReport {
        EngineError::DaemonUnreachable {
            address: self.base.clone(),
            problem: problem.to_owned(),
        }
        .report()
    }
}

/// A job id as a path segment (ids are like `img_000001_1a2b3c4d`): anything else
/// cannot be one, and asks for a job that surely does not exist.
fn image(id: &str) -> &str {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        id
    } else {
        "-"
    }
}

/// A model id as a path segment: ids are file-name-like; anything else asks for
/// a model that surely does not exist.
fn model(id: &str, action: &str) -> String {
    let safe = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    format!("/v1/models/{}{action}", if safe { id } else { "-" })
}

fn instance(name: &str, action: &str) -> String {
    // Not a name any instance can have: ask for one that surely does not exist,
    // so the daemon answers NOT_FOUND and nothing else is reached.
    let name = if is_valid_name(name) { name } else { "-" };
    format!("/v1/instances/{name}{action}")
}
