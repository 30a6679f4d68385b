//! A persistent `sd-server` that keeps the model loaded between jobs. Started on the
//! first job (and again when the placement changes, or after a crash or a cancel),
//! on a free loopback port. It has no `/health`: `GET /v1/models` answers once the
//! model is loaded. Jobs go through its native async API (`POST /sdcpp/v1/img_gen`,
//! `GET /sdcpp/v1/jobs/{id}`); its progress bar and log lines come on its stdout,
//! parsed like sd-cli's. It cannot cancel a job that is generating
//! (`cancel_generating: false` in its capabilities), so a cancel stops the server.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::args::{server_args, server_job_body, ContextArgs};
use super::child::{OutputLines, SdChild, Stream, STDERR_TAIL_LINES};
use super::progress::ProgressParser;
use super::run_spec::{png_size, GeneratedImage, JobSpec, ProgressSink, RunnerConfig};
use switchyard_base::errors::{EngineError, Result};

const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The job whose progress the server's output belongs to (one at a time).
#[derive(Default)]
struct LiveJob {
    parser: Option<(ProgressParser, ProgressSink)>,
    output_tail: VecDeque<String>,
}

#[derive(Debug)]
struct Running {
    child: SdChild,
    base_url: String,
    context: ContextArgs,
}

#[derive(Debug)]
pub struct ServerRunner {
    config: RunnerConfig,
    server_binary: PathBuf,
    running: Option<Running>,
    live: Arc<Mutex<LiveJobCell>>,
    http: reqwest::Client,
}

/// `LiveJob` behind a Debug-able wrapper (sinks are closures).
#[derive(Default)]
struct LiveJobCell(LiveJob);

impl std::fmt::Debug for LiveJobCell {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("LiveJob")
    }
}

impl ServerRunner {
    pub fn new(config: RunnerConfig, server_binary: PathBuf) -> Self {
        let http = reqwest::Client::builder()
            // Loopback only: a proxy from the environment must not get these.
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            config,
            server_binary,
            running: None,
            live: Arc::default(),
            http,
        }
    }

    /// Ends the server (and frees its model).
    pub async fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            running.child.stop(self.config.stop_grace).await;
        }
        self.config.active_pid.set(None);
    }

    pub async fn generate(
        &mut self,
        job: &JobSpec,
        sink: &ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<Vec<GeneratedImage>> {
        let context = ContextArgs::new(
            self.config.files.clone(),
            self.config.threads,
            job.placement,
        );
        let deadline = tokio::time::Instant::now() + job.timeout;
        let needs_start = match &mut self.running {
            Some(running) => running.context != context || running.child.try_wait().is_some(),
            None => true,
        };
        // A fresh server shows loading as its own stage; a loaded one starts sampling.
        let mut parser = ProgressParser::new(job.request.count, job.request.steps, needs_start);
        sink(parser.start());
        {
            let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
            live.0.parser = Some((parser, sink.clone()));
            live.0.output_tail.clear();
        }
        if needs_start {
            self.stop().await;
            let started = tokio::select! {
                () = cancel.cancelled() => Err(EngineError::Cancelled),
                started = self.start(context) => started,
            };
            if let Err(error) = started {
                self.live
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
                    .parser = None;
                self.stop().await;
                return Err(error);
            }
        }
        let outcome = self.run_job(job, cancel, deadline).await;
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .parser = None;
        if outcome.is_err() {
            // Cancelled, timed out or failed: a server mid-job cannot be trusted to
            // be idle (and cannot cancel); the next job starts a fresh one.
            self.stop().await;
        }
        outcome
    }

    async fn start(&mut self, context: ContextArgs) -> Result<()> {
        let address = super::private_loopback_address()?;
        let args = server_args(&context, address);
        let (child, lines) =
            SdChild::spawn(&self.server_binary, &args, self.config.pid_dir.as_deref()).await?;
        self.config.active_pid.set(child.pid());
        tokio::spawn(drain_output(lines, self.live.clone()));
        let base_url = format!("http://{address}");
        self.running = Some(Running {
            child,
            base_url: base_url.clone(),
            context,
        });
        let deadline = tokio::time::Instant::now() + self.config.load_timeout;
        loop {
            let ready = self
                .http
                .get(format!("{base_url}/v1/models"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return Ok(());
            }
            self.check_alive()?;
            if tokio::time::Instant::now() >= deadline {
                return Err(EngineError::TimedOut {
                    what: "Loading the model in sd-server".into(),
                    seconds: self.config.load_timeout.as_secs(),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The server's crash as an error, with its stderr.
    fn check_alive(&mut self) -> Result<()> {
        let Some(running) = &mut self.running else {
            return Err(EngineError::Internal {
                problem: "sd-server is not running".into(),
            });
        };
        if let Some(status) = running.child.try_wait() {
            let tail: Vec<String> = self
                .live
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .0
                .output_tail
                .iter()
                .cloned()
                .collect();
            return Err(running.child.failure(status, &tail));
        }
        Ok(())
    }

    async fn run_job(
        &mut self,
        job: &JobSpec,
        cancel: &CancellationToken,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<GeneratedImage>> {
        let base_url = match &self.running {
            Some(running) => running.base_url.clone(),
            None => {
                return Err(EngineError::Internal {
                    problem: "sd-server is not running".into(),
                })
            }
        };
        let body = server_job_body(&job.request, job.seed, job.placement.vae_tiling);
        let submit_url = format!("{base_url}/sdcpp/v1/img_gen");
        let submitted: Value = self
            .call(self.http.post(&submit_url).json(&body), &submit_url)
            .await?;
        let Some(id) = submitted
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Err(EngineError::Internal {
                problem: format!("sd-server answered without a job id: {submitted}"),
            });
        };
        let poll_url = format!("{base_url}/sdcpp/v1/jobs/{id}");
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Err(EngineError::Cancelled),
                () = tokio::time::sleep_until(deadline) => {
                    return Err(EngineError::TimedOut {
                        what: "Image generation".into(),
                        seconds: job.timeout.as_secs(),
                    })
                }
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            self.check_alive()?;
            let state: Value = match self.call(self.http.get(&poll_url), &poll_url).await {
                Ok(state) => state,
                // The server may be busy writing its answer; its death is caught above.
                Err(_) => continue,
            };
            match state.get("status").and_then(Value::as_str) {
                Some("completed") => return self.images(job, &state),
                Some("failed") => {
                    let message = state
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("generation failed")
                        .to_owned();
                    let mut stderr_tail = self
                        .running
                        .as_ref()
                        .map(|running| running.child.stderr_tail())
                        .unwrap_or_default();
                    stderr_tail.push(message);
                    let out_of_memory = stderr_tail
                        .iter()
                        .any(|line| switchyard_process::failure::mentions_out_of_memory(line));
                    return Err(EngineError::GenerationFailed {
                        exit: "sd-server reported a failed job".into(),
                        exit_code: None,
                        stderr_tail,
                        out_of_memory,
                    });
                }
                Some("cancelled") => return Err(EngineError::Cancelled),
                _ => {}
            }
        }
    }

    fn images(&self, job: &JobSpec, state: &Value) -> Result<Vec<GeneratedImage>> {
        let listed = state
            .pointer("/result/images")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut images = Vec::new();
        for (position, image) in listed.iter().enumerate() {
            let index = image
                .get("index")
                .and_then(Value::as_i64)
                .unwrap_or(i64::try_from(position).unwrap_or(0));
            let png = image
                .get("b64_json")
                .and_then(Value::as_str)
                .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
                .ok_or_else(|| EngineError::Internal {
                    problem: "sd-server returned an image that is not base64".into(),
                })?;
            let (width, height) = png_size(&png).unwrap_or((job.request.width, job.request.height));
            images.push(GeneratedImage {
                png,
                seed: job.seed + index,
                width,
                height,
            });
        }
        if images.len() != job.request.count as usize {
            return Err(EngineError::GenerationFailed {
                exit: format!(
                    "sd-server returned {} of {} images",
                    images.len(),
                    job.request.count
                ),
                exit_code: None,
                stderr_tail: Vec::new(),
                out_of_memory: false,
            });
        }
        Ok(images)
    }

    async fn call(&self, request: reqwest::RequestBuilder, url: &str) -> Result<Value> {
        let network = |problem: String| EngineError::Network {
            url: url.to_owned(),
            problem,
        };
        let response = request
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|error| network(error.to_string()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|error| network(error.to_string()))?;
        if !status.is_success() {
            return Err(network(format!("HTTP {status}: {body}")));
        }
        Ok(body)
    }
}

/// Reads the server's output for as long as it runs (a full pipe would stall it) and
/// feeds the current job's parser.
async fn drain_output(mut lines: OutputLines, live: Arc<Mutex<LiveJobCell>>) {
    while let Some((stream, line)) = lines.recv().await {
        let mut live = live.lock().unwrap_or_else(PoisonError::into_inner);
        let live = &mut live.0;
        if stream == Stream::Stdout {
            if live.output_tail.len() == STDERR_TAIL_LINES {
                live.output_tail.pop_front();
            }
            live.output_tail.push_back(line.clone());
        }
        if let Some((parser, sink)) = &mut live.parser {
            if let Some(progress) = parser.feed(&line) {
                sink(progress);
            }
        }
    }
}
