//! The generated SDXS-512 model is real: the real sd-cli loads it and writes a PNG.

#![allow(clippy::expect_used)]

use std::process::Command;

use switchyard_engine::estimate::diffusion::{
    estimate, parse_sd_log, DiffusionComponents, DiffusionConfig,
};
use switchyard_testkit::gguf::write_sdxs_512;
use switchyard_testkit::tools::sd_cli;

#[test]
fn sd_cli_draws_a_64px_image_with_the_random_sdxs_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = dir.path().join("sdxs-512-random.gguf");
    write_sdxs_512(&model, 7).expect("model written");
    let size = std::fs::metadata(&model).expect("model").len();
    assert!((850_000_000..900_000_000).contains(&size), "{size} bytes");

    let image = dir.path().join("out.png");
    let output = Command::new(sd_cli())
        .arg("-m")
        .arg(&model)
        .args([
            "-p",
            "a switch yard at dawn",
            "-W",
            "64",
            "-H",
            "64",
            "--steps",
            "1",
            "--cfg-scale",
            "1",
            "-t",
            "2",
            "-v",
        ])
        .arg("-o")
        .arg(&image)
        .output()
        .expect("sd-cli runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "sd-cli failed: {log}");
    assert!(
        log.contains("total params memory size"),
        "it loaded every tensor: {log}"
    );
    let png = std::fs::read(&image).expect("an image was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");

    // The estimator's numbers against what sd reported for this run.
    let measured = parse_sd_log(&log);
    let header = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(switchyard_engine::gguf::read_local(&model))
        .expect("header");
    let parts = DiffusionComponents::from_gguf(&header);
    let params = parts.diffusion_bytes + parts.text_encoder_bytes + parts.vae_bytes;
    // sd's buffers add alignment padding to the tensor bytes.
    assert!(
        params.abs_diff(measured.params_ram_bytes) < measured.params_ram_bytes / 1000,
        "weights: {parts:?} vs {measured:?}"
    );
    let estimated = estimate(
        &parts,
        &DiffusionConfig {
            width: 64,
            height: 64,
            batch: 1,
            on_gpu: false,
            clip_on_cpu: false,
            vae_on_cpu: false,
            vae_tiling: false,
        },
    );
    let error = estimated
        .working_bytes
        .abs_diff(measured.peak_compute_bytes) as f64
        / measured.peak_compute_bytes as f64;
    assert!(error < 0.05, "working memory {estimated:?} vs {measured:?}");
}
