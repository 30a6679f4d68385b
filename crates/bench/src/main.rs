//! Switchyard's benchmarks: `cargo run --release -p bench -- <suite>`.
//!
//! Each suite measures Switchyard and a reference in the same run, prints a table,
//! and ends with one line `<suite>: <figure> (goal <goal>)`.

mod attach;
mod binaries;
mod cli;
mod estimator;
mod idle;
mod images;
mod kv_restore;
mod llama;
mod orchestrator;
mod proc_stats;
mod router;
mod session;
mod speed;
mod transfer;

use anyhow::{bail, Result};

const SUITES: &[(&str, &str)] = &[
    (
        "idle",
        "CPU and memory of the running app (backend + webview), System tab open vs in the tray",
    ),
    (
        "download",
        "2 GiB from a local server: Switchyard (hashing) vs curl [--gib N]",
    ),
    (
        "verify",
        "SHA-256 of a 2 GiB file: Switchyard vs openssl and sha256sum [--gib N]",
    ),
    (
        "estimator",
        "memory estimate vs the real llama-server's buffers and RSS (+VRAM): 6 generated models and 4 architectures x 5 quantizations, 2 contexts [--gpu] [--llama-server PATH] [--models DIR] [--log FILE] [--only NAME]",
    ),
    (
        "speed",
        "predicted vs llama-server's measured generation tokens/s, generated models quantized with llama-quantize (Q4_K_M, Q8_0) [--llama-server PATH] [--llama-quantize PATH] [--models DIR] [--reuse-timings]",
    ),
    (
        "binaries",
        "llama-server setup: first validation (download, verify, unpack, tests) vs a cached start [--cuda]",
    ),
    (
        "start-overhead",
        "llama-server spawn → healthy: raw vs through Switchyard, same model and arguments",
    ),
    (
        "restart-latency",
        "llama-server killed → replacement spawned by Switchyard (backoff 0)",
    ),
    (
        "image-latency",
        "seconds per image: sd-cli per job vs the persistent sd-server, 64² and 256² [--runs N] [--threads N] [--quick]",
    ),
    (
        "offload",
        "image needing the LLM's memory → LLM healthy again, by phase, vs stop + start + image by hand",
    ),
    (
        "proxy",
        "request latency through the stable endpoint vs llama-server directly, p50 and p99, 4 clients",
    ),
    (
        "router",
        "the Switchyard endpoint vs the same by hand: cold request → first token, warm p99 (4 clients), swap with a one-model budget",
    ),
    (
        "kv-restore",
        "the next turn of a 4,000-token conversation after an image: warm vs saved-and-restored vs read again (real llama-server and sd-cli)",
    ),
    (
        "cli",
        "switchyard ps through a running daemon vs curl on the same route [--cli PATH]",
    ),
    (
        "attach",
        "the app's daemon watcher: a tick without and with a daemon; stop/start through it → announced",
    ),
    (
        "gguf-remote",
        "bytes and requests to read model headers over HTTP vs header size",
    ),
];

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(suite) = args.next() else {
        print_usage();
        bail!("name a suite");
    };
    let rest: Vec<String> = args.collect();
    match suite.as_str() {
        "idle" => idle::run(&idle::Options::parse(&rest)?),
        "download" => transfer::download(gib_option(&rest)?),
        "verify" => transfer::verify(gib_option(&rest)?),
        "gguf-remote" => transfer::gguf_remote(),
        "cli" => cli::run(&rest),
        "attach" => attach::run(),
        "estimator" => estimator::run(&estimator::Options::parse(&rest)?),
        "speed" => speed::run(&speed::Options::parse(&rest)?),
        "binaries" => binaries::run(&rest),
        "start-overhead" => llama::start_overhead(),
        "restart-latency" => llama::restart_latency(),
        "image-latency" => images::run(&images::Options::parse(&rest)?),
        "offload" => orchestrator::offload(),
        "proxy" => orchestrator::proxy(),
        "router" => router::run(),
        "kv-restore" => kv_restore::run(),
        "--help" | "-h" | "help" => {
            print_usage();
            Ok(())
        }
        other => {
            print_usage();
            bail!("unknown suite `{other}`")
        }
    }
}

/// `--gib N` (default 2).
fn gib_option(args: &[String]) -> Result<u64> {
    match args {
        [] => Ok(2),
        [flag, value] if flag == "--gib" => Ok(value.parse()?),
        other => bail!("unexpected options {other:?} (known: --gib N)"),
    }
}

fn print_usage() {
    eprintln!("usage: cargo run --release -p bench -- <suite> [options]\n\nsuites:");
    for (name, what) in SUITES {
        eprintln!("  {name:<16} {what}");
    }
}
