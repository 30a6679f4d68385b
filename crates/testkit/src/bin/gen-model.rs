//! Writes a generated model, for looking at what llama-server and sd do with it:
//! `gen-model llama OUT.gguf [layers embd heads kv_heads ff vocab f32|f16|q8_0]` or
//! `gen-model sdxs OUT.gguf`.

use std::path::PathBuf;
use std::process::ExitCode;

use switchyard_testkit::gguf::{write_sdxs_512, LlamaSpec, TensorType};

const USAGE: &str = "usage: gen-model llama OUT.gguf [layers embd heads kv_heads ff vocab f32|f16|q8_0]\n       gen-model sdxs OUT.gguf";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let kind = if args.is_empty() {
        String::new()
    } else {
        args.remove(0)
    };
    let Some(out) = args.first().map(PathBuf::from) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let written = match kind.as_str() {
        "llama" => llama(&args).write_to(&out),
        "sdxs" => write_sdxs_512(&out, 7),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cannot write {}: {error}", out.display());
            ExitCode::FAILURE
        }
    }
}

fn llama(args: &[String]) -> LlamaSpec {
    let number = |index: usize, default: u32| {
        args.get(index)
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let base = LlamaSpec::default();
    LlamaSpec {
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
    }
}
