//! Writes a generated llama model: `gen-llama OUT.gguf [layers embd heads kv_heads ff vocab f32|f16|q8_0]`.
//! For looking at what llama-server does with models of a given shape.

use std::path::PathBuf;
use std::process::ExitCode;

use switchyard_testkit::gguf::{LlamaSpec, TensorType};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().map(PathBuf::from) else {
        eprintln!("usage: gen-llama OUT.gguf [layers embd heads kv_heads ff vocab f32|f16|q8_0]");
        return ExitCode::from(2);
    };
    let number = |index: usize, default: u32| {
        args.get(index)
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let base = LlamaSpec::default();
    let spec = LlamaSpec {
        layers: number(1, base.layers),
        embedding: number(2, base.embedding),
        heads: number(3, base.heads),
        kv_heads: number(4, base.kv_heads),
        feed_forward: number(5, base.feed_forward),
        vocab: number(6, base.vocab),
        tensor_type: match args.get(7).map(String::as_str) {
            Some("f16") => TensorType::F16,
            Some("q8_0") => TensorType::Q8_0,
            _ => TensorType::F32,
        },
        context: 32768,
        ..base
    };
    match spec.write_to(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cannot write {}: {error}", out.display());
            ExitCode::FAILURE
        }
    }
}
