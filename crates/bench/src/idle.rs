//! `idle`: what the running app costs while nobody uses it. Measured twice in one
//! run: with the window showing the live System tab, and minimized to the tray (the
//! reference: the same binary without the UI's periodic work).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proc_stats::{self, ProcessSample};
use crate::session::AppSession;

const GOAL_PERCENT_OF_A_CORE: f64 = 0.5;
const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug)]
pub struct Options {
    seconds: u64,
    warmup: u64,
    app: Option<PathBuf>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self {
            seconds: 60,
            warmup: 15,
            app: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--seconds" => options.seconds = value()?.parse()?,
                "--warmup" => options.warmup = value()?.parse()?,
                "--app" => options.app = Some(value()?.into()),
                other => {
                    bail!("unknown option {other} (known: --seconds N, --warmup N, --app PATH)")
                }
            }
        }
        Ok(options)
    }
}

/// One measured process: CPU as a share of one core, memory at the end.
#[derive(Debug, Clone)]
struct Usage {
    cpu_percent: f64,
    rss_bytes: u64,
    pss_bytes: u64,
}

pub fn run(options: &Options) -> Result<()> {
    let app = locate_app(options.app.clone())?;
    println!(
        "idle: {} s per scenario after {} s warm-up; app {}",
        options.seconds,
        options.warmup,
        app.display()
    );
    let shown = measure(&app, &[], options)?;
    let tray = measure(&app, &["--minimized"], options)?;

    println!(
        "\n{:<24} {:>22} {:>22}",
        "", "System tab open", "in the tray (ref.)"
    );
    println!(
        "{:<24} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6}",
        "process", "CPU %", "RSS MiB", "PSS", "CPU %", "RSS MiB", "PSS"
    );
    let names: Vec<&String> = shown
        .keys()
        .chain(tray.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for name in names {
        let cells = |usage: Option<&Usage>| match usage {
            Some(u) => format!(
                "{:>7.2} {:>7.0} {:>6.0}",
                u.cpu_percent,
                mib(u.rss_bytes),
                mib(u.pss_bytes)
            ),
            None => format!("{:>7} {:>7} {:>6}", "-", "-", "-"),
        };
        println!(
            "{name:<24} {} {}",
            cells(shown.get(name)),
            cells(tray.get(name))
        );
    }
    let (shown_total, tray_total) = (total(&shown), total(&tray));
    println!(
        "{:<24} {:>7.2} {:>7.0} {:>6.0} {:>7.2} {:>7.0} {:>6.0}",
        "total",
        shown_total.cpu_percent,
        mib(shown_total.rss_bytes),
        mib(shown_total.pss_bytes),
        tray_total.cpu_percent,
        mib(tray_total.rss_bytes),
        mib(tray_total.pss_bytes),
    );
    println!(
        "\nthe open System tab costs {:.2} percentage points of a core over the tray reference",
        shown_total.cpu_percent - tray_total.cpu_percent
    );
    println!(
        "idle: {:.2} % of a core with the System tab open, RSS {:.0} MiB (PSS {:.0} MiB) (goal < {GOAL_PERCENT_OF_A_CORE} %)",
        shown_total.cpu_percent,
        mib(shown_total.rss_bytes),
        mib(shown_total.pss_bytes)
    );
    Ok(())
}

/// CPU and memory per process name, over the measuring window.
fn measure(
    app: &std::path::Path,
    args: &[&str],
    options: &Options,
) -> Result<BTreeMap<String, Usage>> {
    let session = AppSession::start(app, args)?;
    let app_pid = session.app_pid(Duration::from_secs(30))?;
    session.wait_for_webview(app_pid, Duration::from_secs(60))?;
    std::thread::sleep(Duration::from_secs(options.warmup));

    let before = snapshot(app_pid);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(options.seconds));
    let after = snapshot(app_pid);
    let elapsed = started.elapsed().as_secs_f64();
    if !after.contains_key(&app_pid) {
        bail!("the app exited while it was measured");
    }

    #[allow(clippy::cast_precision_loss)]
    let ticks_per_second = proc_stats::ticks_per_second() as f64;
    let mut usage: BTreeMap<String, Usage> = BTreeMap::new();
    for (pid, end) in &after {
        let start_ticks = before.get(pid).map_or(0, |s| s.cpu_ticks);
        #[allow(clippy::cast_precision_loss)]
        let cpu_seconds = end.cpu_ticks.saturating_sub(start_ticks) as f64 / ticks_per_second;
        let entry = usage.entry(end.name.clone()).or_insert(Usage {
            cpu_percent: 0.0,
            rss_bytes: 0,
            pss_bytes: 0,
        });
        entry.cpu_percent += cpu_seconds / elapsed * 100.0;
        entry.rss_bytes += end.rss_bytes;
        entry.pss_bytes += end.pss_bytes;
    }
    Ok(usage)
}

fn snapshot(app_pid: u32) -> BTreeMap<u32, ProcessSample> {
    proc_stats::tree(app_pid)
        .into_iter()
        .filter_map(|pid| proc_stats::sample(pid).ok().map(|s| (pid, s)))
        .collect()
}

fn total(usage: &BTreeMap<String, Usage>) -> Usage {
    usage.values().fold(
        Usage {
            cpu_percent: 0.0,
            rss_bytes: 0,
            pss_bytes: 0,
        },
        |sum, u| Usage {
            cpu_percent: sum.cpu_percent + u.cpu_percent,
            rss_bytes: sum.rss_bytes + u.rss_bytes,
            pss_bytes: sum.pss_bytes + u.pss_bytes,
        },
    )
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// The release build of the app: `--app`, else the workspace's target folder.
fn locate_app(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let app = explicit.unwrap_or_else(|| target.join("release/switchyard-desktop"));
    if !app.is_file() {
        bail!(
            "no release build of the app at {}: run `npm run build:app` first (or pass --app PATH)",
            app.display()
        );
    }
    Ok(app)
}
