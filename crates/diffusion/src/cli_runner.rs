//! One `sd-cli` process per job: it loads the model, makes the batch (`-b`, seeds
//! incremented by sd itself), writes `image_<i>.png` and exits. Nothing stays in
//! memory between jobs, which is what the orchestrator likes; the price is the model
//! load per job.

use std::collections::VecDeque;
use std::process::ExitStatus;

use tokio_util::sync::CancellationToken;

use super::args::{cli_args, output_file, ContextArgs};
use super::child::{SdChild, Stream, STDERR_TAIL_LINES};
use super::progress::ProgressParser;
use super::run_spec::{png_size, GeneratedImage, JobSpec, ProgressSink, RunnerConfig};
use switchyard_base::errors::{EngineError, Result};

/// How long output may trail the exit before it is given up on.
const DRAIN_AFTER_EXIT: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Debug)]
pub struct CliRunner {
    config: RunnerConfig,
}

/// How a child's run ended, before its images are read.
enum Ending {
    Exited(ExitStatus),
    Cancelled,
    TimedOut,
}

impl CliRunner {
    pub fn new(config: RunnerConfig) -> Self {
        Self { config }
    }

    pub async fn generate(
        &mut self,
        job: &JobSpec,
        sink: &ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<Vec<GeneratedImage>> {
        let out_dir = tempfile::Builder::new()
            .prefix("sd-job-")
            .tempdir_in(&self.config.work_dir)
            .map_err(|source| EngineError::StorageUnavailable {
                path: self.config.work_dir.clone(),
                source,
            })?;
        let context = ContextArgs::new(
            self.config.files.clone(),
            self.config.threads,
            job.placement,
        );
        let args = cli_args(
            &context,
            &job.request,
            job.seed,
            job.placement.vae_tiling,
            out_dir.path(),
        );
        let mut parser = ProgressParser::new(job.request.count, job.request.steps, true);
        sink(parser.start());
        let (mut child, mut lines) = SdChild::spawn(
            &self.config.cli_binary,
            &args,
            self.config.pid_dir.as_deref(),
        )
        .await?;
        self.config.active_pid.set(child.pid());
        let mut output_tail = VecDeque::new();
        let mut on_line = |(stream, line): (Stream, String)| {
            if stream == Stream::Stdout {
                if output_tail.len() == STDERR_TAIL_LINES {
                    output_tail.pop_front();
                }
                output_tail.push_back(line.clone());
            }
            if let Some(progress) = parser.feed(&line) {
                sink(progress);
            }
        };
        let deadline = tokio::time::Instant::now() + job.timeout;
        let mut lines_open = true;
        let ending = loop {
            tokio::select! {
                () = cancel.cancelled() => break Ending::Cancelled,
                () = tokio::time::sleep_until(deadline) => break Ending::TimedOut,
                line = lines.recv(), if lines_open => match line {
                    Some(line) => on_line(line),
                    None => lines_open = false,
                },
                status = child.wait() => match status {
                    Ok(status) => break Ending::Exited(status),
                    Err(error) => {
                        self.config.active_pid.set(None);
                        return Err(EngineError::Internal { problem: format!("waiting for sd: {error}") });
                    }
                },
            }
        };
        let status = match ending {
            Ending::Exited(status) => status,
            Ending::Cancelled | Ending::TimedOut => {
                child.stop(self.config.stop_grace).await;
                self.config.active_pid.set(None);
                return Err(match ending {
                    Ending::TimedOut => EngineError::TimedOut {
                        what: "Image generation".into(),
                        seconds: job.timeout.as_secs(),
                    },
                    _ => EngineError::Cancelled,
                });
            }
        };
        self.config.active_pid.set(None);
        // The last lines may still be in the pipe when the exit is seen.
        while lines_open {
            match tokio::time::timeout(DRAIN_AFTER_EXIT, lines.recv()).await {
                Ok(Some(line)) => on_line(line),
                Ok(None) | Err(_) => lines_open = false,
            }
        }
        let output_tail: Vec<String> = output_tail.into_iter().collect();
        if !status.success() {
            return Err(child.failure(status, &output_tail));
        }
        let mut images = Vec::new();
        for index in 0..job.request.count {
            let path = output_file(out_dir.path(), index);
            let png = std::fs::read(&path).map_err(|_| EngineError::GenerationFailed {
                exit: format!(
                    "exited with code 0 but wrote no image {}",
                    path.file_name()
                        .map(|name| name.to_string_lossy())
                        .unwrap_or_default()
                ),
                exit_code: status.code(),
                stderr_tail: child.stderr_tail(),
                out_of_memory: false,
            })?;
            let (width, height) = png_size(&png).unwrap_or((job.request.width, job.request.height));
            images.push(GeneratedImage {
                png,
                seed: job.seed + i64::from(index),
                width,
                height,
            });
        }
        Ok(images)
    }
}
