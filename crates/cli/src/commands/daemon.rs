//! `daemon` (run it here), `daemon status|reload|stop` (ask the running one).

use switchyard_engine::control::{run_daemon, DaemonOptions, DaemonStatus};
use switchyard_engine::llama::OwnerKind;
use switchyard_engine::{EngineError, ErrorReport};

use super::Outcome;
use crate::args::DaemonCommand;
use crate::context::Context;
use crate::render;

pub async fn run(context: &Context, action: Option<DaemonCommand>, port: u16) -> Outcome {
    match action.unwrap_or(DaemonCommand::Run) {
        DaemonCommand::Run => serve(context, port).await,
        DaemonCommand::Status => {
            let status = running(context)?.daemon_status().await?;
            print_status(context, &status);
            Ok(0)
        }
        DaemonCommand::Reload => {
            let status = running(context)?.reload().await?;
            print_status(context, &status);
            Ok(0)
        }
        DaemonCommand::Stop => {
            running(context)?.shutdown().await?;
            if !context.json {
                println!("the daemon is stopping its servers and exiting");
            }
            Ok(0)
        }
    }
}

async fn serve(context: &Context, port: u16) -> Outcome {
    let engine = context.local_engine(OwnerKind::Daemon)?;
    run_daemon(
        engine,
        DaemonOptions {
            port,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        crate::signals::terminated(),
    )
    .await?;
    Ok(0)
}

fn running(context: &Context) -> Result<switchyard_engine::control::ControlClient, ErrorReport> {
    context.daemon()?.ok_or_else(|| {
        EngineError::DaemonUnreachable {
            address: context.data_dir.display().to_string(),
            problem: "no daemon runs on this data folder".into(),
        }
        .report()
    })
}

fn print_status(context: &Context, status: &DaemonStatus) {
    if context.json {
        println!("{}", render::json(status));
        return;
    }
    println!("daemon pid {} (version {})", status.pid, status.version);
    println!("data folder:    {}", status.data_dir);
    println!("instance files: {}", status.instances_dir);
    for problem in &status.problems {
        println!("{}", render::error(problem, false));
    }
}
