//! `up`, `down`, `restart`: through the daemon, which `up` starts when none runs;
//! `up --foreground` runs the server in this process until Ctrl-C.

use switchyard_engine::llama::{state_word, InstanceStatus, OwnerKind};
use switchyard_engine::EngineError;

use super::Outcome;
use crate::context::Context;
use crate::render;

pub async fn up(context: &Context, name: &str, foreground: bool) -> Outcome {
    if foreground {
        return up_here(context, name).await;
    }
    let daemon = context.daemon_or_start().await?;
    let status = daemon.up(name).await?;
    print_status(context, &status);
    Ok(0)
}

/// The server lives as long as this command: Ctrl-C (or SIGTERM) stops it.
async fn up_here(context: &Context, name: &str) -> Outcome {
    if context.daemon()?.is_some() {
        return Err(EngineError::InvalidInput {
            field: "--foreground",
            problem: "a daemon runs on this data folder; use `up` without --foreground".into(),
        }
        .report());
    }
    let engine = context.local_engine(OwnerKind::Cli)?;
    let started = engine.up(name).await;
    let status = match started {
        Ok(status) => status,
        Err(error) => {
            engine.shutdown().await;
            return Err(error.report());
        }
    };
    print_status(context, &status);
    if !context.json {
        eprintln!("running in the foreground: Ctrl-C stops it");
    }
    crate::signals::terminated().await;
    // Ctrl-C is the person stopping it: a later daemon does not start it again.
    let _ = engine.llama().stop(name).await;
    engine.shutdown().await;
    Ok(0)
}

pub async fn down(context: &Context, name: &str) -> Outcome {
    if let Some(daemon) = context.daemon()? {
        let status = daemon.down(name).await?;
        print_status(context, &status);
        return Ok(0);
    }
    // No daemon: the instance is stopped, unless another Switchyard (the app)
    // runs it, which this command must not touch.
    let engine = context.local_engine(OwnerKind::Cli)?;
    let status = engine.llama().status(name)?;
    if let Some(owner) = engine.llama().owner_of(name) {
        return Err(EngineError::InstanceOwned {
            instance: name.to_owned(),
            owner: owner.kind.describe().to_owned(),
            pid: owner.pid,
        }
        .report());
    }
    print_status(context, &status);
    Ok(0)
}

pub async fn restart(context: &Context, name: &str) -> Outcome {
    let daemon = context.daemon_or_start().await?;
    let status = daemon.restart(name).await?;
    print_status(context, &status);
    Ok(0)
}

fn print_status(context: &Context, status: &InstanceStatus) {
    if context.json {
        println!("{}", render::json(status));
        return;
    }
    let name = &status.spec.name;
    let state = state_word(status.state);
    match (&status.endpoint, &status.api_endpoint) {
        (Some(server), Some(stable)) => {
            println!("{name}: {state} at {server} (clients: {stable}, held while it pauses)");
        }
        (Some(server), None) => println!("{name}: {state} at {server}"),
        _ => println!("{name}: {state}"),
    }
}
