//! `daemon` (run it here), `daemon status|reload|stop` (ask the running one).

use std::time::{Duration, Instant};

use switchyard_engine::control::{
    run_daemon, ControlClient, DaemonFile, DaemonLock, DaemonOptions, DaemonStatus,
};
use switchyard_engine::llama::OwnerKind;
use switchyard_engine::{EngineError, ErrorReport};

use super::Outcome;
use crate::args::DaemonCommand;
use crate::context::Context;
use crate::render;

pub async fn run(context: &Context, action: Option<DaemonCommand>, ports: DaemonPorts) -> Outcome {
    match action.unwrap_or(DaemonCommand::Run) {
        DaemonCommand::Run => serve(context, ports).await,
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
            // Like `systemctl stop`: stopping what is not running is done already.
            let Some(daemon) = DaemonFile::running(&context.data_dir)? else {
                if !context.json {
                    println!("no daemon runs on {}", context.data_dir.display());
                }
                return Ok(0);
            };
            let pid = daemon.pid;
            ControlClient::new(&daemon).shutdown().await?;
            // Returns once it has gone, so that what a script runs next (`up
            // --foreground`, a new daemon, `ps`) does not meet it on its way out.
            wait_until_gone(context, pid).await?;
            if !context.json {
                println!("the daemon (pid {pid}) stopped its servers and exited");
            }
            Ok(0)
        }
    }
}

/// Where the daemon listens: its control API, the image API, the endpoint.
pub struct DaemonPorts {
    pub port: u16,
    pub image_port: Option<u16>,
    pub endpoint_port: Option<u16>,
}

async fn serve(context: &Context, ports: DaemonPorts) -> Outcome {
    let engine = context.local_engine(OwnerKind::Daemon)?;
    run_daemon(
        engine,
        DaemonOptions {
            port: ports.port,
            image_port: ports.image_port,
            endpoint_port: ports.endpoint_port,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        crate::signals::terminated(),
    )
    .await?;
    Ok(0)
}

/// Stopping every server gracefully: each gets SIGTERM, a second one, then SIGKILL
/// within about 10 s; a few at once stay well within this.
const STOP_DEADLINE: Duration = Duration::from_secs(120);
const STOP_POLL: Duration = Duration::from_millis(50);

/// Until the daemon has let go of the data folder's lock (its process has ended, or
/// is past removing `daemon.json`).
async fn wait_until_gone(context: &Context, pid: u32) -> Result<(), ErrorReport> {
    let started = Instant::now();
    while DaemonLock::is_held(&context.data_dir) {
        if started.elapsed() > STOP_DEADLINE {
            return Err(EngineError::DaemonUnreachable {
                address: context.data_dir.display().to_string(),
                problem: format!(
                    "the daemon (pid {pid}) was asked to stop but still runs after {} s",
                    STOP_DEADLINE.as_secs()
                ),
            }
            .report());
        }
        tokio::time::sleep(STOP_POLL).await;
    }
    Ok(())
}

fn running(context: &Context) -> Result<ControlClient, ErrorReport> {
    context.daemon()?.ok_or_else(|| {
        EngineError::DaemonNotRunning {
            data_dir: context.data_dir.clone(),
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
