//! `switchyard`: Switchyard without a window. The same engine as the app: the
//! llama-server instances of the instance files (`ps`, `up`, `down`, `logs`, …),
//! models, images, and `daemon`, which keeps instances running and serves the
//! engine's control API on loopback. docs/cli.md describes it all.

mod args;
mod commands;
mod context;
mod exit;
mod render;
mod signals;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
                .unwrap_or_else(|_| default_log_filter(&cli.command).into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person's terminal, not in a journal or a file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return exit::exit(exit::FAILURE);
        }
    };
    let json = cli.json;
    let outcome = runtime.block_on(async {
        let context = context::Context::from_environment(json)?;
        commands::run(cli.command, &context).await
    });
    match outcome {
        Ok(code) => exit::exit(code),
        Err(report) => {
            if json {
                println!("{}", render::error(&report, true));
            } else {
                eprintln!("{}", render::error(&report, false));
            }
            exit::exit(exit::code_for(&report))
        }
    }
}

/// The daemon and `up --foreground` log what they do (a crash, a restart); a
/// one-shot command's failure is its error, said once (`SWITCHYARD_LOG=warn`
/// shows the engine's log lines too).
fn default_log_filter(command: &args::Command) -> &'static str {
    match command {
        args::Command::Daemon {
            action: None | Some(args::DaemonCommand::Run),
            ..
        }
        | args::Command::Up {
            foreground: true, ..
        } => "info",
        _ => "off",
    }
}
