//! `binaries`: what setting up llama-server costs the first time (download from a
//! local mirror, verify, unpack, `--version`, one real token) against a cached start
//! (size and time of the executable, no test), next to what one `--version` alone
//! costs. genai-electron re-ran its binary test on every start: about 0.5 s.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use switchyard_engine::binaries::manifest::{ArchiveFile, Asset, Manifest, Release};
use switchyard_engine::binaries::{BinaryKind, BinaryManager, EnsureBinary, MachineFacts, Variant};
use switchyard_engine::events::EventBus;
use switchyard_engine::models::download::sha256_file;
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::tools::llama_server;
use switchyard_testkit::FixtureServer;
use tokio_util::sync::CancellationToken;

const CACHED_RUNS: usize = 50;
/// What a cached start may cost: a `stat` and a small JSON lookup.
const GOAL: Duration = Duration::from_millis(5);

/// `[--cuda]`: serve the llama-server in hand as the CUDA variant on a machine with
/// an NVIDIA GPU, so the choice and the real test (`-ngl 99`) run on the GPU.
pub fn run(args: &[String]) -> Result<()> {
    let variant = match args {
        [] => Variant::Cpu,
        [flag] if flag == "--cuda" => Variant::Cuda,
        other => anyhow::bail!("unexpected options {other:?} (known: --cuda)"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(measure(variant))
}

async fn measure(variant: Variant) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let program = std::fs::read(llama_server())?;
    let archive = tar_gz("llama-bench/llama-server", &program)?;
    let archive_path = dir.path().join("archive.tar.gz");
    std::fs::write(&archive_path, &archive)?;
    let (_, sha256) = sha256_file(&archive_path).await?;
    let server = FixtureServer::start().await?;
    let name = if variant == Variant::Cuda {
        "llama-bench-bin-cuda.tar.gz"
    } else {
        "llama-bench-bin-cpu.tar.gz"
    };
    server.add_file(
        &format!("ggml-org/llama.cpp/releases/download/bench/{name}"),
        archive,
    );
    let model = dir.path().join("tiny.gguf");
    LlamaSpec::default().write_to(&model)?;

    let binaries = dir.path().join("binaries");
    std::fs::create_dir_all(&binaries)?;
    let manager = BinaryManager::new(
        binaries,
        reqwest::Client::new(),
        EventBus::default().emitter(),
    );
    manager.set_download_base(format!("{}/files", server.hub_url()));
    manager.set_manifest(Manifest {
        releases: vec![Release {
            kind: BinaryKind::LlamaServer,
            repo: "ggml-org/llama.cpp".into(),
            tag: "bench".into(),
            assets: vec![Asset {
                os: std::env::consts::OS.into(),
                arch: std::env::consts::ARCH.into(),
                variant,
                archive: ArchiveFile {
                    name: name.into(),
                    sha256: Some(sha256),
                    size: None,
                },
                dependencies: Vec::new(),
            }],
        }],
    });
    let facts = MachineFacts {
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        nvidia_gpu: variant == Variant::Cuda,
        cpu_features: Vec::new(),
    };
    let options = EnsureBinary {
        test_model: Some(model.clone()),
        ..EnsureBinary::default()
    };
    let cancel = CancellationToken::new();

    let version_alone = {
        let start = Instant::now();
        let status = std::process::Command::new(llama_server())
            .arg("--version")
            .output()?;
        anyhow::ensure!(status.status.success(), "llama-server --version failed");
        start.elapsed()
    };

    let start = Instant::now();
    let first = manager
        .ensure(BinaryKind::LlamaServer, &options, &facts, &cancel)
        .await?;
    let first_time = start.elapsed();
    anyhow::ensure!(
        !first.from_cache && first.real_tested,
        "the first run must test"
    );
    anyhow::ensure!(
        first.variant == Some(variant),
        "chose {:?}, expected {variant:?}",
        first.variant
    );

    let mut cached_times = Vec::with_capacity(CACHED_RUNS);
    for _ in 0..CACHED_RUNS {
        let start = Instant::now();
        let cached = manager
            .ensure(BinaryKind::LlamaServer, &options, &facts, &cancel)
            .await?;
        cached_times.push(start.elapsed());
        anyhow::ensure!(cached.from_cache, "a later run must come from the cache");
    }
    cached_times.sort();
    let median = *cached_times.get(CACHED_RUNS / 2).context("no runs")?;
    let worst = *cached_times.last().context("no runs")?;

    let start = Instant::now();
    let forced = manager
        .ensure(
            BinaryKind::LlamaServer,
            &EnsureBinary {
                force_validation: true,
                ..options.clone()
            },
            &facts,
            &cancel,
        )
        .await?;
    let forced_time = start.elapsed();
    anyhow::ensure!(!forced.from_cache);

    println!(
        "binaries: llama-server {} ({} MB) as the {variant:?} variant, tiny model, local mirror",
        first.version,
        program.len() / 1_000_000
    );
    println!(
        "  {:<58} {:>10.1} ms",
        "llama-server --version alone",
        ms(version_alone)
    );
    println!(
        "  {:<58} {:>10.1} ms",
        "first: download, verify, unpack, --version, one token",
        ms(first_time)
    );
    println!(
        "  {:<58} {:>10.1} ms",
        "force_validation: --version, one token (installed)",
        ms(forced_time)
    );
    println!(
        "  {:<58} {:>10.3} ms",
        format!("cached start, median of {CACHED_RUNS}"),
        ms(median)
    );
    println!(
        "  {:<58} {:>10.3} ms",
        format!("cached start, worst of {CACHED_RUNS}"),
        ms(worst)
    );
    println!(
        "  {:<58} {:>10.1} ms",
        "genai-electron: binary test on every start (reference)", 500.0
    );
    println!(
        "binaries: cached validation {:.3} ms (goal < {} ms; first validation {:.0} ms)",
        ms(median),
        GOAL.as_millis(),
        ms(first_time)
    );
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn tar_gz(path: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    builder.append_data(&mut header, path, bytes)?;
    let mut gz = builder.into_inner()?;
    gz.flush()?;
    Ok(gz.finish()?)
}
