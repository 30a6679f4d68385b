//! `models list|pull|rm|verify`: the model store, in this process (it is files on
//! disk, shared with the app and the daemon).

use switchyard_engine::clock::{Clock, SystemClock};
use switchyard_engine::control::ControlClient;
use switchyard_engine::llama::OwnerKind;
use switchyard_engine::models::names::model_id;
use switchyard_engine::models::{
    AddModel, AddModelFile, DownloadState, DownloadStatus, FileGuess, FileRole, ModelKind,
    ModelLocation,
};
use switchyard_engine::orchestrator::router::RoutedModel;
use switchyard_engine::{Engine, EngineError, EngineEvent, ErrorReport};
use tokio::sync::broadcast;

use super::Outcome;
use crate::args::ModelsCommand;
use crate::context::Context;
use crate::render::{self, mib};

pub async fn run(context: &Context, command: ModelsCommand) -> Outcome {
    match command {
        ModelsCommand::Ps => return ps(context).await,
        ModelsCommand::Load { model } => {
            let daemon = context.daemon_or_start().await?;
            let loaded = daemon.load_model(&model).await?;
            return routed(context, &[loaded]);
        }
        ModelsCommand::Unload { model } => {
            let unloaded = running_daemon(context)?.unload_model(&model).await?;
            return routed(context, &[unloaded]);
        }
        ModelsCommand::Pin { model, off } => {
            let pinned = running_daemon(context)?.pin_model(&model, !off).await?;
            return routed(context, &[pinned]);
        }
        _ => {}
    }
    let engine = context.local_engine(OwnerKind::Cli)?;
    match command {
        ModelsCommand::Ps
        | ModelsCommand::Load { .. }
        | ModelsCommand::Unload { .. }
        | ModelsCommand::Pin { .. } => Ok(0),
        ModelsCommand::List => list(context, &engine),
        ModelsCommand::Rm { id } => {
            if unfinished(&engine, &id).is_some() {
                engine.models().cancel(&id)?;
                done(context, "discarded", &id);
            } else {
                engine.delete_model(&id).await?;
                done(context, "deleted", &id);
            }
            Ok(0)
        }
        ModelsCommand::Verify { id } => {
            engine.models().verify(&id).await?;
            done(context, "verified", &id);
            Ok(0)
        }
        ModelsCommand::Pull {
            source,
            file,
            revision,
            name,
            kind,
            sha256,
        } => {
            let add = add_request(source, file, revision, name, kind.as_deref(), sha256)?;
            pull(context, &engine, add).await
        }
    }
}

/// The daemon, which serves the endpoint: without one, nothing is loaded by it.
fn running_daemon(context: &Context) -> Result<ControlClient, ErrorReport> {
    context.daemon()?.ok_or_else(|| {
        EngineError::DaemonNotRunning {
            data_dir: context.data_dir.clone(),
        }
        .report()
    })
}

async fn ps(context: &Context) -> Outcome {
    let models = running_daemon(context)?.routed_models().await?;
    routed(context, &models)
}

fn routed(context: &Context, models: &[RoutedModel]) -> Outcome {
    if context.json {
        println!("{}", render::json(&models));
        return Ok(0);
    }
    let now_ms = SystemClock.now_ms();
    let unloads_in = |at_ms: u64| {
        format!(
            "in {}",
            render::duration(at_ms.saturating_sub(now_ms) / 1000)
        )
    };
    println!(
        "{}",
        render::table(
            [
                "MODEL",
                "STATE",
                "MEMORY",
                "REQUESTS",
                "PINNED",
                "IDLE UNLOAD"
            ],
            models.iter().map(|model| {
                [
                    model.id.clone(),
                    render::word(&model.state),
                    render::dash(model.ram_bytes.map(mib)),
                    model.requests.to_string(),
                    if model.pinned { "yes" } else { "no" }.to_owned(),
                    render::dash(model.unload_at_ms.map(unloads_in)),
                ]
            }),
        )
    );
    Ok(0)
}

/// A download of `id` left paused or failed (by this command, the app or the
/// daemon), which `pull` resumes and `rm` discards.
fn unfinished(engine: &Engine, id: &str) -> Option<DownloadStatus> {
    engine
        .models()
        .downloads()
        .into_iter()
        .find(|download| download.id == id)
}

fn list(context: &Context, engine: &Engine) -> Outcome {
    let models = engine.models().models();
    if context.json {
        println!("{}", render::json(&models));
        return Ok(0);
    }
    let downloads = engine.models().downloads();
    if !downloads.is_empty() {
        println!(
            "{}",
            render::table(
                ["UNFINISHED", "STATE", "SO FAR", "SIZE"],
                downloads.iter().map(|download| {
                    [
                        download.id.clone(),
                        render::word(&download.state),
                        mib(download.bytes),
                        download.total.map_or("?".to_owned(), mib),
                    ]
                }),
            )
        );
        println!("(`switchyard models pull` again resumes one, `models rm ID` discards it)\n");
    }
    if models.is_empty() {
        println!("no models installed; add one with `switchyard models pull`");
        return Ok(0);
    }
    println!(
        "{}",
        render::table(
            ["ID", "KIND", "SIZE", "FILES"],
            models.iter().map(|model| {
                [
                    model.id.clone(),
                    render::word(&model.kind),
                    mib(model.size_bytes()),
                    model
                        .files
                        .iter()
                        .map(|file| file.file_name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            }),
        )
    );
    Ok(0)
}

fn done(context: &Context, what: &str, id: &str) {
    if context.json {
        println!(
            "{}",
            render::json(&serde_json::json!({ "id": id, what: true }))
        );
    } else {
        println!("{id}: {what}");
    }
}

/// The download `pull` asks for. What is not given comes from the names (the
/// engine's guess, the same as the window's Add form): the name from the file, the
/// kind from the repository and the file.
fn add_request(
    source: String,
    file: Option<String>,
    revision: String,
    name: Option<String>,
    kind: Option<&str>,
    sha256: Option<String>,
) -> Result<AddModel, ErrorReport> {
    let is_url = source.starts_with("http://") || source.starts_with("https://");
    let (location, guess) = match (is_url, file) {
        (true, _) => {
            let guess = FileGuess::of("", &source);
            (ModelLocation::Url { url: source }, guess)
        }
        (false, Some(path)) => {
            let guess = FileGuess::of(&source, &path);
            (
                ModelLocation::Hub {
                    repo: source,
                    revision,
                    path,
                },
                guess,
            )
        }
        (false, None) => {
            return Err(EngineError::InvalidInput {
                field: "--file",
                problem: "name the file in the repository (`--file model-q4_k_m.gguf`)".into(),
            }
            .report())
        }
    };
    let kind = match kind {
        None => guess.kind,
        Some("llm") => ModelKind::Llm,
        Some("diffusion") => ModelKind::Diffusion,
        Some(other) => {
            return Err(EngineError::InvalidInput {
                field: "--kind",
                problem: format!("`{other}`: use `llm` or `diffusion`"),
            }
            .report())
        }
    };
    Ok(AddModel {
        name: name.unwrap_or(guess.name),
        kind,
        files: vec![AddModelFile {
            location,
            role: FileRole::Weights,
            expected_sha256: sha256,
        }],
    })
}

/// Starts the download and follows it to its end (Ctrl-C pauses it: a later
/// `pull` or the app resumes it).
async fn pull(context: &Context, engine: &Engine, add: AddModel) -> Outcome {
    let mut events = engine.subscribe();
    let left = unfinished(engine, &model_id(&add.name));
    let id = match left {
        // The same pull again: go on from the bytes already here.
        Some(left) => {
            if !context.json {
                eprintln!("{}: resuming ({} already here)", left.id, mib(left.bytes));
            }
            engine.models().resume(&left.id)?;
            left.id
        }
        None => engine.add_model(add).await?,
    };
    let finished = tokio::select! {
        finished = follow(context, &mut events, &id) => finished,
        () = crate::signals::terminated() => {
            let _ = engine.models().pause(&id);
            return Err(EngineError::Cancelled.report());
        }
    };
    match finished.state {
        DownloadState::Complete => {
            done(context, "installed", &id);
            Ok(0)
        }
        _ => Err(finished
            .error
            .unwrap_or_else(|| EngineError::Cancelled.report())),
    }
}

async fn follow(
    context: &Context,
    events: &mut broadcast::Receiver<EngineEvent>,
    id: &str,
) -> DownloadStatus {
    loop {
        match events.recv().await {
            Ok(EngineEvent::DownloadChanged(status)) if status.id == id => {
                if !context.json {
                    let total = status.total.map_or("?".to_owned(), mib);
                    eprintln!("{id}: {:?} {} of {total}", status.state, mib(status.bytes));
                }
                if matches!(
                    status.state,
                    DownloadState::Complete | DownloadState::Failed | DownloadState::Cancelled
                ) {
                    return status;
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => {
                return DownloadStatus {
                    id: id.to_owned(),
                    name: id.to_owned(),
                    state: DownloadState::Failed,
                    bytes: 0,
                    total: None,
                    speed_bps: 0,
                    eta_seconds: None,
                    error: Some(EngineError::ShuttingDown.report()),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_request(
        source: &str,
        file: Option<&str>,
        kind: Option<&str>,
    ) -> Result<AddModel, ErrorReport> {
        add_request(
            source.into(),
            file.map(Into::into),
            "main".into(),
            None,
            kind,
            None,
        )
    }

    fn request(source: &str, file: Option<&str>, kind: Option<&str>) -> AddModel {
        try_request(source, file, kind).unwrap_or_else(|error| panic!("{error:?}"))
    }

    #[test]
    fn the_kind_and_the_name_come_from_the_names_unless_given() {
        let sd = request(
            "second-state/stable-diffusion-v1-5-GGUF",
            Some("v1-5-pruned-emaonly-Q8_0.gguf"),
            None,
        );
        assert_eq!(sd.kind, ModelKind::Diffusion);
        assert_eq!(sd.name, "v1-5-pruned-emaonly-Q8_0");

        let llm = request("https://example.com/m/Tiny%20Llama-Q4_K_M.gguf", None, None);
        assert_eq!(llm.kind, ModelKind::Llm);
        assert_eq!(llm.name, "Tiny Llama-Q4_K_M");

        let told = request("https://example.com/sd-turbo.gguf", None, Some("llm"));
        assert_eq!(told.kind, ModelKind::Llm, "--kind wins over the guess");
    }

    #[test]
    fn an_unknown_kind_or_a_repository_without_a_file_is_refused() {
        let refused = |source: &str, file: Option<&str>, kind: Option<&str>| {
            try_request(source, file, kind)
                .map(|_| ())
                .map_err(|report| report.message)
        };
        assert!(refused("https://example.com/a.gguf", None, Some("image"))
            .unwrap_err()
            .contains("--kind"));
        assert!(refused("owner/repo", None, None)
            .unwrap_err()
            .contains("--file"));
    }
}
