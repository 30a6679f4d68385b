//! `image "prompt" …`: runs the image server in this process on an installed
//! diffusion model, generates, saves the PNGs, stops it.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use switchyard_engine::binaries::{BinaryKind, EnsureBinary};
use switchyard_engine::diffusion::{ImageRequest, JobStatus, JobView};
use switchyard_engine::engine::ImageServerConfig;
use switchyard_engine::llama::OwnerKind;
use switchyard_engine::models::ModelKind;
use switchyard_engine::{Engine, EngineError, ErrorReport};

use super::Outcome;
use crate::args::ImageArgs;
use crate::context::Context;
use crate::render;

/// A CPU generation of many large images can take long; a hang cannot take longer.
const GENERATION_TIMEOUT: Duration = Duration::from_secs(6 * 60 * 60);

pub async fn run(context: &Context, args: ImageArgs) -> Outcome {
    let engine = context.local_engine(OwnerKind::Cli)?;
    let outcome = generate(&engine, args).await;
    engine.shutdown().await;
    let saved = outcome?;
    if context.json {
        println!("{}", render::json(&saved));
    } else {
        for path in &saved {
            println!("{}", path.display());
        }
    }
    Ok(0)
}

async fn generate(engine: &Engine, args: ImageArgs) -> Result<Vec<PathBuf>, ErrorReport> {
    let model_id = match args.model {
        Some(model) => model,
        None => first_diffusion_model(engine)?,
    };
    if engine.binary_status(BinaryKind::Diffusion).is_none() {
        engine
            .ensure_binary(BinaryKind::Diffusion, EnsureBinary::default())
            .await?;
    }
    engine
        .start_image_server(ImageServerConfig {
            model_id: Some(model_id),
            files: None,
            // Any free port: this server is for this command only.
            port: Some(0),
            api_key: None,
            sd_binary: None,
            options: Default::default(),
        })
        .await?;
    let id = engine.generate_image(ImageRequest {
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
    })?;
    let job = tokio::select! {
        job = engine.wait_image_job(&id, GENERATION_TIMEOUT) => job?,
        () = crate::signals::terminated() => {
            let _ = engine.cancel_image_job(&id);
            return Err(EngineError::Cancelled.report());
        }
    };
    save(job, &args.out)
}

fn first_diffusion_model(engine: &Engine) -> Result<String, ErrorReport> {
    engine
        .models()
        .models()
        .into_iter()
        .filter(|model| model.kind == ModelKind::Diffusion)
        .map(|model| model.id)
        .min()
        .ok_or_else(|| {
            EngineError::InvalidInput {
                field: "--model",
                problem: "no diffusion model is installed; add one with `switchyard-cli models pull … --kind diffusion`".into(),
            }
            .report()
        })
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
            .decode(&image.image)
            .map_err(|error| {
                EngineError::Internal {
                    problem: format!("the image came back damaged: {error}"),
                }
                .report()
            })?;
        let path = out.join(format!("switchyard_{}_{index}.png", image.seed));
        std::fs::write(&path, png)
            .map_err(|source| EngineError::writing(&path, source).report())?;
        saved.push(path);
    }
    Ok(saved)
}
