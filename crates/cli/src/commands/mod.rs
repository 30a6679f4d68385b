//! One module per group of verbs; each returns the exit code or the error.

mod config;
mod daemon;
mod describe;
mod image;
mod lifecycle;
mod logs;
mod models;
mod ps;
pub mod service;

use switchyard_engine::ErrorReport;

use crate::args::Command;
use crate::context::Context;

/// The exit code of a command that ran (0, or e.g. 5 for "not healthy").
pub type Outcome = Result<u8, ErrorReport>;

pub async fn run(command: Command, context: &Context) -> Outcome {
    match command {
        Command::Ps => ps::run(context).await,
        Command::Up { name, foreground } => lifecycle::up(context, &name, foreground).await,
        Command::Down { name } => lifecycle::down(context, &name).await,
        Command::Restart { name } => lifecycle::restart(context, &name).await,
        Command::Logs { name, follow, tail } => logs::run(context, &name, follow, tail).await,
        Command::Describe { name } => describe::describe(context, &name).await,
        Command::Health { name } => describe::health(context, &name).await,
        Command::Models(models) => models::run(context, models).await,
        Command::Image(image) => image::run(context, image).await,
        Command::Config(config) => config::run(context, config),
        Command::Daemon {
            action,
            port,
            image_port,
            endpoint_port,
        } => {
            let ports = daemon::DaemonPorts {
                port,
                image_port,
                endpoint_port,
            };
            daemon::run(context, action, ports).await
        }
        Command::Service(service) => service::run(context, service),
    }
}
