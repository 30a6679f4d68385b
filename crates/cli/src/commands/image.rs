//! `image "prompt" …`: generates on an installed diffusion model and saves the
//! PNGs, through the running daemon (whose orchestrator pauses its LLM servers for
//! the image) or, without one, with the image server in this process.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use switchyard_engine::control::{ControlClient, DaemonImageRequest, MAX_IMAGE_WAIT as MAX_WAIT};
use switchyard_engine::diffusion::{ImageRequest, JobStatus, JobView};
use switchyard_engine::llama::OwnerKind;
use switchyard_engine::{Engine, EngineError, ErrorReport};

use super::Outcome;
use crate::args::ImageArgs;
use crate::context::Context;
use crate::render;

/// A CPU generation of many large images can take long; a hang cannot take longer.
const GENERATION_TIMEOUT: Duration = Duration::from_secs(6 * 60 * 60);

pub async fn run(context: &Context, args: ImageArgs) -> Outcome {
    let out = args.out.clone();
    let order = DaemonImageRequest {
        model: args.model,
        request: ImageRequest {
            prompt: args.prompt,
            negative_prompt: args.negative,
            width: args.width,
            height: args.height,
            steps: args.steps,
            cfg_scale: args.cfg_scale,
            sampler: args.sampler,
            scheduler: None,
            seed: args.seed,
            count: args.count,
            overrides: Default::default(),
        },
    };
    // Through a running daemon, its orchestrator pauses the LLM servers it runs for
    // the image; without one, nothing else runs here to be paused.
    let job = match context.daemon()? {
        Some(daemon) => through_daemon(&daemon, &order).await?,
        None => {
            let engine = context.local_engine(OwnerKind::Cli)?;
            let job = in_this_process(&engine, order).await;
            engine.shutdown().await;
            job?
        }
    };
    let saved = save(job, &out)?;
    if context.json {
        println!("{}", render::json(&saved));
    } else {
        for path in &saved {
            println!("{}", path.display());
        }
    }
    Ok(0)
}

async fn in_this_process(
    engine: &Engine,
    order: DaemonImageRequest,
) -> Result<JobView, ErrorReport> {
    engine.image_server_for(order.model).await?;
    let id = engine.generate_image(order.request)?;
    tokio::select! {
        job = engine.wait_image_job(&id, GENERATION_TIMEOUT) => Ok(job?),
        () = crate::signals::terminated() => {
            let _ = engine.cancel_image_job(&id);
            Err(EngineError::Cancelled.report())
        }
    }
}

async fn through_daemon(
    daemon: &ControlClient,
    order: &DaemonImageRequest,
) -> Result<JobView, ErrorReport> {
    let queued = daemon.generate_image(order).await?;
    let waiting = async {
        loop {
            let job = daemon.image_job(&queued.id, MAX_WAIT).await?;
            if job.status.is_finished() {
                return Ok(job);
            }
        }
    };
    tokio::select! {
        job = waiting => job,
        () = crate::signals::terminated() => {
            // The daemon would otherwise go on making images nobody saves.
            let _ = daemon.cancel_image(&queued.id).await;
            Err(EngineError::Cancelled.report())
        }
    }
}

fn save(job: JobView, out: &std::path::Path) -> Result<Vec<PathBuf>, ErrorReport> {
    if job.status != JobStatus::Complete {
        return Err(match job.error {
            Some(error) => ErrorReport {
                code: error.code,
                message: error.message,
                suggestion: error.suggestion,
            },
            None => EngineError::Cancelled.report(),
        });
    }
    std::fs::create_dir_all(out).map_err(|source| EngineError::writing(out, source).report())?;
    let images = job.result.map(|result| result.images).unwrap_or_default();
    let mut saved = Vec::new();
    for (index, image) in images.iter().enumerate() {
        let png = base64::engine::general_purpose::STANDARD
            .decode(image.image.as_bytes())
            .map_err(|error| {
                EngineError::Internal {
                    problem: format!("the image came back damaged: {error}"),
                }
                .report()
            })?;
        let path = out.join(format!("switchyard_{}_{index}.png", image.seed));
        // Atomic: a full disk leaves no cut-off PNG under the final name.
        switchyard_engine::fs_atomic::write(&path, &png)
            .map_err(|source| EngineError::writing(&path, source).report())?;
        saved.push(path);
    }
    Ok(saved)
}
