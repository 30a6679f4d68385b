//! A stand-in Hugging Face Hub for the end-to-end tests: serves generated models in
//! the repository `switchyard/tiny-llama-GGUF` and prints its address on the first
//! line of stdout. Runs until stdin closes or it is killed.
//!
//! Each argument `owner/name:file` also serves the tiny F32 model under that name,
//! so a test can install a model the app knows by a real name (the first-run
//! wizard's curated list) without reaching Hugging Face.

use switchyard_testkit::gguf::{LlamaSpec, TensorType};
use switchyard_testkit::{Fault, FixtureServer};

pub const REPO: &str = "switchyard/tiny-llama-GGUF";

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let server = FixtureServer::start().await?;
    let tiny = LlamaSpec::default().to_bytes();
    server.add_hub_file(REPO, "tiny-llama-F32.gguf", tiny.clone(), None);
    for alias in std::env::args().skip(1) {
        let Some((repo, file)) = alias.split_once(':') else {
            eprintln!("fixture-hub: `{alias}` is not `owner/name:file`");
            std::process::exit(2);
        };
        server.add_hub_file(repo, file, tiny.clone(), None);
    }
    let q8 = LlamaSpec {
        tensor_type: TensorType::Q8_0,
        embedding: 256,
        vocab: 4096,
        ..LlamaSpec::default()
    };
    server.add_hub_file(REPO, "tiny-llama-Q8_0.gguf", q8.to_bytes(), None);
    server.add_hub_file(
        REPO,
        "README.md",
        b"# tiny llama\nGenerated for Switchyard's tests.\n".to_vec(),
        None,
    );
    // Slow enough to see (and pause) in the window: ~5 s for the Q8_0 file.
    server.set_fault(
        &format!("{REPO}/tiny-llama-Q8_0.gguf"),
        Some(Fault::Slow {
            bytes_per_second: 600_000,
        }),
    );
    println!("{}", server.hub_url());
    // Serve until whoever started us goes away.
    let mut line = String::new();
    let stdin = tokio::io::stdin();
    let mut reader = tokio::io::BufReader::new(stdin);
    while tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line).await? > 0 {
        line.clear();
    }
    Ok(())
}
