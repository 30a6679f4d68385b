//! `image-latency`: time per image through Switchyard's image service with the real
//! sd-cli (a process per job, the model loaded each time) and the persistent sd-server
//! (the model stays loaded), on the random SDXS-512 model of the test kit. The first
//! image and the following ones are reported apart: the first pays the model load in
//! both cases. `sd-cli` run directly (no Switchyard) is the reference for overhead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use switchyard_engine::diffusion::service::ImageServiceSetup;
use switchyard_engine::diffusion::{
    DiffusionModelFiles, ImageRequest, ImageService, ImageServiceOptions, JobStatus, RunnerKind,
};
use switchyard_engine::events::EventBus;
use switchyard_testkit::gguf::write_sdxs_512;
use switchyard_testkit::tools::sd_cli;

/// A 64×64 one-step image after the first: what a client waits for with the default
/// runner, on this 2-core CPU.
const GOAL_SECONDS: f64 = 1.0;
const JOB_DEADLINE: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct Options {
    runs: usize,
    sizes: Vec<(u32, u32)>,
    threads: u32,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut options = Self {
            runs: 5,
            sizes: vec![(64, 1), (256, 4)],
            threads: 2,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--runs" => options.runs = value()?.parse()?,
                "--threads" => options.threads = value()?.parse()?,
                "--quick" => options.sizes = vec![(64, 1)],
                other => bail!("unknown option {other} (known: --runs N, --threads N, --quick)"),
            }
        }
        if options.runs < 2 {
            bail!("--runs must be at least 2 (the first image is reported apart)");
        }
        Ok(options)
    }
}

pub fn run(options: &Options) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(measure(options))
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    first_s: f64,
    /// Median of the images after the first.
    next_s: f64,
}

async fn measure(options: &Options) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let model = dir.path().join("sdxs-512-random.gguf");
    write_sdxs_512(&model, 7)?;
    println!(
        "image-latency: SDXS-512 (random weights, 883 MB), sd 0.4.7 on {} threads, {} images per row",
        options.threads, options.runs
    );
    println!(
        "{:<12} {:<22} {:>10} {:>14}",
        "size", "runner", "first s", "next s (med)"
    );
    let mut headline = None;
    for &(side, steps) in &options.sizes {
        let direct = direct_cli(&model, side, steps, options).await?;
        let mut rows = vec![("sd-cli direct", direct)];
        for runner in [RunnerKind::Cli, RunnerKind::Server] {
            rows.push((
                label(runner),
                through_service(&model, runner, side, steps, options).await?,
            ));
        }
        for (name, timing) in &rows {
            println!(
                "{:<12} {:<22} {:>10.2} {:>14.2}",
                format!("{side}²×{steps} step"),
                name,
                timing.first_s,
                timing.next_s
            );
        }
        if side == 64 {
            headline = Some((rows[1].1, rows[2].1));
        }
    }
    let Some((cli, server)) = headline else {
        bail!("no 64×64 row");
    };
    let (default_s, default_name) = if server.next_s <= cli.next_s {
        (server.next_s, "sd-server")
    } else {
        (cli.next_s, "sd-cli")
    };
    println!(
        "\nper image after the first: sd-server {:.2} s, sd-cli {:.2} s ({:.1}× faster with the model kept loaded); default runner (auto) = {default_name}",
        server.next_s,
        cli.next_s,
        cli.next_s / server.next_s
    );
    println!("image-latency: {default_s:.2} s per 64×64 image with {default_name} (goal ≤ {GOAL_SECONDS:.1} s)");
    Ok(())
}

fn label(runner: RunnerKind) -> &'static str {
    match runner {
        RunnerKind::Cli => "switchyard + sd-cli",
        RunnerKind::Server => "switchyard + sd-server",
        RunnerKind::Auto => "switchyard (auto)",
    }
}

fn request(side: u32, steps: u32, seed: i64) -> ImageRequest {
    ImageRequest {
        width: side,
        height: side,
        steps,
        cfg_scale: 1.0,
        seed: Some(seed),
        ..ImageRequest::new("a switch yard at dawn")
    }
}

async fn through_service(
    model: &std::path::Path,
    runner: RunnerKind,
    side: u32,
    steps: u32,
    options: &Options,
) -> Result<Timing> {
    let work = tempfile::tempdir()?;
    let service = ImageService::start(ImageServiceSetup {
        cli_binary: sd_cli(),
        files: DiffusionModelFiles::single(model),
        components: Default::default(),
        options: ImageServiceOptions {
            runner,
            threads: Some(options.threads),
            ..ImageServiceOptions::default()
        },
        work_dir: work.path().to_path_buf(),
        free_vram: Arc::new(|| None),
        events: EventBus::default().emitter(),
        stop_grace: Duration::from_secs(5),
        load_timeout: Duration::from_secs(300),
        pid_dir: None,
    })
    .await?;
    let mut seconds = Vec::new();
    for run in 0..options.runs {
        let started = Instant::now();
        let id = service.submit(request(side, steps, run as i64))?;
        let view = service.wait(&id, JOB_DEADLINE).await?;
        if view.status != JobStatus::Complete {
            bail!("{runner:?} job failed: {:?}", view.error);
        }
        seconds.push(started.elapsed().as_secs_f64());
    }
    service.stop().await;
    Ok(timing(&seconds))
}

async fn direct_cli(
    model: &std::path::Path,
    side: u32,
    steps: u32,
    options: &Options,
) -> Result<Timing> {
    let out = tempfile::tempdir()?;
    let mut seconds = Vec::new();
    for run in 0..options.runs {
        let started = Instant::now();
        let status = tokio::process::Command::new(sd_cli())
            .arg("-m")
            .arg(model)
            .args(["-p", "a switch yard at dawn", "--cfg-scale", "1", "-t"])
            .arg(options.threads.to_string())
            .args([
                "-W",
                &side.to_string(),
                "-H",
                &side.to_string(),
                "--steps",
                &steps.to_string(),
            ])
            .args(["-s", &run.to_string(), "-o"])
            .arg(out.path().join("direct.png"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await?;
        if !status.success() {
            bail!("sd-cli failed: {status}");
        }
        seconds.push(started.elapsed().as_secs_f64());
    }
    Ok(timing(&seconds))
}

fn timing(seconds: &[f64]) -> Timing {
    let mut next: Vec<f64> = seconds.iter().skip(1).copied().collect();
    next.sort_by(f64::total_cmp);
    Timing {
        first_s: seconds.first().copied().unwrap_or_default(),
        next_s: next.get(next.len() / 2).copied().unwrap_or_default(),
    }
}
