//! `download`, `verify` and `gguf-remote`: Switchyard's transfer paths against the
//! standard tools, measured in the same run on the same data.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use switchyard_engine::gguf;
use switchyard_engine::models::download::{fetch, sha256_file};
use switchyard_testkit::gguf::LlamaSpec;
use switchyard_testkit::random::XorShift;
use switchyard_testkit::FixtureServer;
use tokio_util::sync::CancellationToken;

const GIB: u64 = 1024 * 1024 * 1024;

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

#[allow(clippy::cast_precision_loss)]
fn rate(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / seconds / 1e6
}

fn best_of<T>(runs: u32, mut measure: impl FnMut() -> Result<(f64, T)>) -> Result<(f64, T)> {
    let mut best: Option<(f64, T)> = None;
    for _ in 0..runs {
        let (seconds, value) = measure()?;
        if best.as_ref().is_none_or(|(b, _)| seconds < *b) {
            best = Some((seconds, value));
        }
    }
    best.context("no runs")
}

pub fn download(gib: u64) -> Result<()> {
    let len = gib * GIB;
    let rt = runtime()?;
    let dir = tempfile::tempdir()?;
    let server = rt.block_on(FixtureServer::start())?;
    server.add_file(
        "big.bin",
        XorShift::new(0x9e37_79b9_7f4a_7c15).bytes(usize::try_from(len)?),
    );
    let url = server.url("big.bin");
    println!(
        "download: {gib} GiB from a local fixture server, best of 2, to {}",
        dir.path().display()
    );

    let (curl_s, ()) = best_of(2, || {
        let out = dir.path().join("curl.bin");
        let start = Instant::now();
        let status = Command::new("curl")
            .args(["-sS", "-o"])
            .arg(&out)
            .arg(&url)
            .status()
            .context("curl")?;
        let seconds = start.elapsed().as_secs_f64();
        if !status.success() {
            bail!("curl failed");
        }
        std::fs::remove_file(out)?;
        Ok((seconds, ()))
    })?;
    let client = reqwest::Client::new();
    let (ours_s, sha) = best_of(2, || {
        let part = dir.path().join("ours.bin.part");
        let start = Instant::now();
        let fetched = rt.block_on(fetch(
            &client,
            &url,
            &part,
            &CancellationToken::new(),
            |_| {},
        ))?;
        let seconds = start.elapsed().as_secs_f64();
        std::fs::remove_file(&part)?;
        let _ = std::fs::remove_file(dir.path().join("ours.bin.part.json"));
        if fetched.size != len {
            bail!("downloaded {} of {len} bytes", fetched.size);
        }
        Ok((seconds, fetched.sha256))
    })?;
    println!("\n{:<34} {:>10} {:>10}", "", "seconds", "MB/s");
    println!(
        "{:<34} {:>10.2} {:>10.0}",
        "curl -o (no hashing)",
        curl_s,
        rate(len, curl_s)
    );
    println!(
        "{:<34} {:>10.2} {:>10.0}",
        "Switchyard (SHA-256 while writing)",
        ours_s,
        rate(len, ours_s)
    );
    println!("sha256 {sha}");
    println!("download: {:.2}× curl (goal ≥ 0.95×)", curl_s / ours_s);
    Ok(())
}

pub fn verify(gib: u64) -> Result<()> {
    let len = gib * GIB;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model.bin");
    std::fs::write(
        &path,
        XorShift::new(0x9e37_79b9_7f4a_7c15).bytes(usize::try_from(len)?),
    )?;
    println!("verify: SHA-256 of a {gib} GiB file (in the page cache), best of 3");
    let tool = |program: &str, args: &[&str]| -> Result<(f64, String)> {
        let start = Instant::now();
        let output = Command::new(program)
            .args(args)
            .arg(&path)
            .output()
            .with_context(|| program.to_owned())?;
        let seconds = start.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&output.stdout);
        let hash = text
            .split_whitespace()
            .find(|word| word.len() == 64)
            .unwrap_or_default()
            .to_owned();
        Ok((seconds, hash))
    };
    let rt = runtime()?;
    let (openssl_s, openssl_hash) = best_of(3, || tool("openssl", &["dgst", "-sha256", "-r"]))?;
    let (sha256sum_s, sha256sum_hash) = best_of(3, || tool("sha256sum", &[]))?;
    let (ours_s, ours_hash) = best_of(3, || {
        let start = Instant::now();
        let (_, hash) = rt.block_on(sha256_file(&path))?;
        Ok((start.elapsed().as_secs_f64(), hash))
    })?;
    if ours_hash != openssl_hash || ours_hash != sha256sum_hash {
        bail!(
            "hashes differ: ours {ours_hash}, openssl {openssl_hash}, sha256sum {sha256sum_hash}"
        );
    }
    println!("\n{:<24} {:>10} {:>10}", "", "seconds", "MB/s");
    for (name, seconds) in [
        ("openssl dgst -sha256", openssl_s),
        ("sha256sum", sha256sum_s),
        ("Switchyard", ours_s),
    ] {
        println!("{name:<24} {seconds:>10.2} {:>10.0}", rate(len, seconds));
    }
    println!(
        "verify: {:.2}× openssl (goal ≥ 0.9×), {:.2}× sha256sum",
        openssl_s / ours_s,
        sha256sum_s / ours_s
    );
    Ok(())
}

pub fn gguf_remote() -> Result<()> {
    let rt = runtime()?;
    let server = rt.block_on(FixtureServer::start())?;
    println!("gguf-remote: reading model headers over HTTP ranges from a local fixture server\n");
    println!(
        "{:<30} {:>12} {:>12} {:>12} {:>9} {:>7}",
        "model", "file bytes", "header", "fetched", "requests", "ratio"
    );
    let mut worst: f64 = 0.0;
    for (label, vocab, embedding) in [
        ("tiny (512 tokens)", 512, 64),
        ("32k vocabulary", 32_000, 64),
        ("128k vocabulary", 128_256, 32),
        ("256k vocabulary", 256_000, 32),
    ] {
        let bytes = LlamaSpec {
            vocab,
            embedding,
            heads: 2,
            kv_heads: 1,
            feed_forward: 64,
            ..LlamaSpec::default()
        }
        .to_bytes();
        let name = format!("{vocab}.gguf");
        let file_len = bytes.len();
        server.add_file(&name, bytes);
        let (file, stats) = rt.block_on(gguf::read_remote(
            reqwest::Client::new(),
            &server.url(&name),
        ))?;
        #[allow(clippy::cast_precision_loss)]
        let ratio = stats.bytes as f64 / file.header_len as f64;
        // The first read is a fixed 64 KiB: only headers larger than that count.
        if file.header_len > 64 * 1024 {
            worst = worst.max(ratio);
        }
        println!(
            "{label:<30} {file_len:>12} {:>12} {:>12} {:>9} {ratio:>6.2}×",
            file.header_len, stats.bytes, stats.requests
        );
    }
    println!("\ngguf-remote: {worst:.2}× header bytes at worst (goal ≤ 1.5×)");
    Ok(())
}
