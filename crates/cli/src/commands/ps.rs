//! `ps`: every instance with its process, port, backend, model, health and uptime.

use switchyard_engine::llama::OwnerKind;

use super::Outcome;
use crate::context::Context;
use crate::render;

pub async fn run(context: &Context) -> Outcome {
    let rows = match context.daemon()? {
        Some(daemon) => {
            let rows = daemon.list().await?;
            // The daemon left these files out; say so, as a local run would.
            for problem in daemon.daemon_status().await?.problems {
                eprintln!("warning: {}", problem.message);
            }
            rows
        }
        None => context.local_engine(OwnerKind::Cli)?.instance_rows(),
    };
    if context.json {
        println!("{}", render::json(&rows));
    } else if rows.is_empty() {
        println!("no instances; add one as a TOML file (see `switchyard config validate`)");
    } else {
        println!("{}", render::instances(&rows));
    }
    Ok(0)
}
