//! The other end of the daemon's routes, for the `switchyard` command (and, later,
//! the app attaching to a daemon).

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::daemon_file::DaemonFile;
use super::rows::{DaemonStatus, InstanceRow};
use crate::errors::{EngineError, ErrorReport};
use crate::llama::{is_valid_name, InstanceStatus, LogLine};

/// Starting a large model can take minutes; the daemon answers when it is healthy.
const START_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const QUICK_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ControlClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ControlClient {
    pub fn new(daemon: &DaemonFile) -> Self {
        Self {
            base: format!("http://127.0.0.1:{}", daemon.port),
            token: daemon.token.clone(),
            // Loopback only: never through a proxy.
            http: reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    pub async fn daemon_status(&self) -> Result<DaemonStatus, ErrorReport> {
        self.call(reqwest::Method::GET, "/v1/daemon", QUICK_TIMEOUT)
            .await
    }

    pub async fn reload(&self) -> Result<DaemonStatus, ErrorReport> {
        self.call(reqwest::Method::POST, "/v1/reload", QUICK_TIMEOUT)
            .await
    }

    pub async fn shutdown(&self) -> Result<(), ErrorReport> {
        self.send(reqwest::Method::POST, "/v1/shutdown", QUICK_TIMEOUT)
            .await
            .map(drop)
    }

    pub async fn list(&self) -> Result<Vec<InstanceRow>, ErrorReport> {
        self.call(reqwest::Method::GET, "/v1/instances", QUICK_TIMEOUT)
            .await
    }

    pub async fn describe(&self, name: &str) -> Result<InstanceStatus, ErrorReport> {
        self.call(reqwest::Method::GET, &instance(name, ""), QUICK_TIMEOUT)
            .await
    }

    pub async fn up(&self, name: &str) -> Result<InstanceStatus, ErrorReport> {
        self.call(reqwest::Method::POST, &instance(name, "/up"), START_TIMEOUT)
            .await
    }

    pub async fn down(&self, name: &str) -> Result<InstanceStatus, ErrorReport> {
        self.call(
            reqwest::Method::POST,
            &instance(name, "/down"),
            QUICK_TIMEOUT,
        )
        .await
    }

    pub async fn restart(&self, name: &str) -> Result<InstanceStatus, ErrorReport> {
        let path = instance(name, "/restart");
        self.call(reqwest::Method::POST, &path, START_TIMEOUT).await
    }

    pub async fn logs(
        &self,
        name: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<LogLine>, ErrorReport> {
        let path = format!("{}?since={since}&limit={limit}", instance(name, "/logs"));
        self.call(reqwest::Method::GET, &path, QUICK_TIMEOUT).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        timeout: Duration,
    ) -> Result<T, ErrorReport> {
        let response = self.send(method, path, timeout).await?;
        response
            .json()
            .await
            .map_err(|error| self.unreachable(&error.to_string()))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        timeout: Duration,
    ) -> Result<reqwest::Response, ErrorReport> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(timeout)
            .send()
            .await
            .map_err(|error| self.unreachable(&error.to_string()))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        // The daemon's own error, as the engine reported it.
        match response.json::<ErrorReport>().await {
            Ok(report) => Err(report),
            Err(_) => Err(self.unreachable(&format!("it answered HTTP {status}"))),
        }
    }

    fn unreachable(&self, problem: &str) -> ErrorReport {
        EngineError::DaemonUnreachable {
            address: self.base.clone(),
            problem: problem.to_owned(),
        }
        .report()
    }
}

fn instance(name: &str, action: &str) -> String {
    // Not a name any instance can have: ask for one that surely does not exist,
    // so the daemon answers NOT_FOUND and nothing else is reached.
    let name = if is_valid_name(name) { name } else { "-" };
    format!("/v1/instances/{name}{action}")
}
