//! `logs NAME [--follow] [--tail N]`: from the daemon's ring of parsed lines, else
//! from the instance's log file.

use std::time::Duration;

use switchyard_engine::llama::{LogLine, OwnerKind};

use super::Outcome;
use crate::context::Context;
use crate::render;

/// How often `--follow` asks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
const PAGE: usize = 1000;

pub async fn run(context: &Context, name: &str, follow: bool, tail: usize) -> Outcome {
    let Some(daemon) = context.daemon()? else {
        return from_file(context, name, follow, tail).await;
    };
    let lines = daemon.logs(name, 0, tail).await?;
    print(context, &lines);
    if !follow {
        return Ok(0);
    }
    let mut next = lines.last().map_or(0, |line| line.seq + 1);
    loop {
        tokio::select! {
            () = crate::signals::terminated() => return Ok(0),
            () = tokio::time::sleep(FOLLOW_INTERVAL) => {}
        }
        let lines = daemon.logs(name, next, PAGE).await?;
        if let Some(last) = lines.last() {
            next = last.seq + 1;
            print(context, &lines);
        }
    }
}

/// No daemon: the instance's log file (a server run by `up --foreground` or the
/// app writes there too), followed by polling its size.
async fn from_file(context: &Context, name: &str, follow: bool, tail: usize) -> Outcome {
    let engine = context.local_engine(OwnerKind::Cli)?;
    engine.llama().status(name)?;
    print(context, &engine.log_file_tail(name, tail)?);
    if !follow {
        return Ok(0);
    }
    let (_, mut offset) = engine.log_file_since(name, u64::MAX)?;
    loop {
        tokio::select! {
            () = crate::signals::terminated() => return Ok(0),
            () = tokio::time::sleep(FOLLOW_INTERVAL) => {}
        }
        let (lines, next) = engine.log_file_since(name, offset)?;
        offset = next;
        print(context, &lines);
    }
}

fn print(context: &Context, lines: &[LogLine]) {
    if lines.is_empty() {
        return;
    }
    if context.json {
        // One JSON object per line, so `--follow --json` streams.
        for line in lines {
            println!("{}", serde_json::to_string(line).unwrap_or_default());
        }
    } else {
        println!("{}", render::log_lines(lines));
    }
}
