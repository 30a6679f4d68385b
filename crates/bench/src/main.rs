//! Switchyard's benchmarks: `cargo run --release -p bench -- <suite>`.
//!
//! Each suite measures Switchyard and a reference in the same run, prints a table,
//! and ends with one line `<suite>: <figure> (goal <goal>)`.

mod idle;
mod proc_stats;
mod session;

use anyhow::{bail, Result};

const SUITES: &[(&str, &str)] = &[(
    "idle",
    "CPU and memory of the running app (backend + webview), System tab open vs in the tray",
)];

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(suite) = args.next() else {
        print_usage();
        bail!("name a suite");
    };
    let rest: Vec<String> = args.collect();
    match suite.as_str() {
        "idle" => idle::run(&idle::Options::parse(&rest)?),
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

fn print_usage() {
    eprintln!("usage: cargo run --release -p bench -- <suite> [options]\n\nsuites:");
    for (name, what) in SUITES {
        eprintln!("  {name:<10} {what}");
    }
}
