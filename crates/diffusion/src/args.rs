//! Command lines and request bodies for sd 0.4.x, flag names as its `--help` prints
//! them (they change between releases: `sd` → `sd-cli`, `--qwen2vl` → `--llm`).

use std::ffi::OsString;
use std::path::Path;

use serde_json::{json, Value};

use super::model_files::DiffusionModelFiles;
use super::placement::Placement;
use super::request::ImageRequest;

/// The file name pattern sd-cli writes a batch to: `image_0.png`, `image_1.png`, ….
pub const OUTPUT_PATTERN: &str = "image_%d.png";

/// The image file for batch index `index` under [`OUTPUT_PATTERN`].
pub fn output_file(dir: &Path, index: u32) -> std::path::PathBuf {
    dir.join(format!("image_{index}.png"))
}

/// How sd is run, the same for every request to one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextArgs {
    pub files: DiffusionModelFiles,
    pub threads: Option<u32>,
    pub clip_on_cpu: bool,
    pub vae_on_cpu: bool,
}

impl ContextArgs {
    pub fn new(files: DiffusionModelFiles, threads: Option<u32>, placement: Placement) -> Self {
        Self {
            files,
            threads,
            clip_on_cpu: placement.clip_on_cpu,
            vae_on_cpu: placement.vae_on_cpu,
        }
    }

    fn push(&self, args: &mut Vec<OsString>) {
        for (flag, path) in self.files.flags() {
            args.push(flag.into());
            args.push(path.into());
        }
        if let Some(threads) = self.threads {
            args.extend(["-t".into(), threads.to_string().into()]);
        }
        if self.clip_on_cpu {
            args.push("--clip-on-cpu".into());
        }
        if self.vae_on_cpu {
            args.push("--vae-on-cpu".into());
        }
    }
}

/// `sd-cli` arguments for one request writing its images into `out_dir`.
pub fn cli_args(
    context: &ContextArgs,
    request: &ImageRequest,
    seed: i64,
    vae_tiling: bool,
    out_dir: &Path,
) -> Vec<OsString> {
    let mut args = Vec::new();
    context.push(&mut args);
    args.extend(["-p".into(), request.prompt.clone().into()]);
    if !request.negative_prompt.is_empty() {
        args.extend(["-n".into(), request.negative_prompt.clone().into()]);
    }
    for (flag, value) in [
        ("-W", request.width.to_string()),
        ("-H", request.height.to_string()),
        ("--steps", request.steps.to_string()),
        ("--cfg-scale", request.cfg_scale.to_string()),
        ("-s", seed.to_string()),
        ("-b", request.count.to_string()),
    ] {
        args.extend([flag.into(), value.into()]);
    }
    if let Some(sampler) = &request.sampler {
        args.extend(["--sampling-method".into(), sampler.clone().into()]);
    }
    if let Some(scheduler) = &request.scheduler {
        args.extend(["--scheduler".into(), scheduler.clone().into()]);
    }
    if vae_tiling {
        args.push("--vae-tiling".into());
    }
    args.push("-o".into());
    args.push(out_dir.join(OUTPUT_PATTERN).into());
    args
}

/// `sd-server` arguments: the model stays loaded; requests bring the rest.
pub fn server_args(context: &ContextArgs, address: std::net::SocketAddr) -> Vec<OsString> {
    let mut args = Vec::new();
    context.push(&mut args);
    args.extend([
        "--listen-ip".into(),
        address.ip().to_string().into(),
        "--listen-port".into(),
        address.port().to_string().into(),
    ]);
    args
}

/// The body of sd-server's native `POST /sdcpp/v1/img_gen` (fields it does not get
/// keep its defaults).
pub fn server_job_body(request: &ImageRequest, seed: i64, vae_tiling: bool) -> Value {
    let mut sample = json!({
        "sample_steps": request.steps,
        "guidance": { "txt_cfg": request.cfg_scale },
    });
    if let Some(sampler) = &request.sampler {
        sample["sample_method"] = json!(sampler);
    }
    if let Some(scheduler) = &request.scheduler {
        sample["scheduler"] = json!(scheduler);
    }
    json!({
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "width": request.width,
        "height": request.height,
        "seed": seed,
        "batch_count": request.count,
        "sample_params": sample,
        "vae_tiling_params": { "enabled": vae_tiling },
        "output_format": "png",
    })
}

/// The names in a `one of [a, b, c]` list after `flag` in sd's help text: how the
/// binary in hand tells which samplers and schedulers it has.
pub fn help_choices(help: &str, flag: &str) -> Vec<String> {
    let Some(start) = help
        .lines()
        .position(|line| line.trim_start().starts_with(&format!("{flag} ")) || line.trim() == flag)
    else {
        return Vec::new();
    };
    // The description wraps over the next lines, up to the next flag.
    let mut text = String::new();
    for (offset, line) in help.lines().skip(start).enumerate() {
        if offset > 0 && line.trim_start().starts_with('-') {
            break;
        }
        text.push_str(line.trim());
        text.push(' ');
    }
    let Some((_, list)) = text.split_once("one of [") else {
        return Vec::new();
    };
    let Some((list, _)) = list.split_once(']') else {
        return Vec::new();
    };
    list.split(',')
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_args_carry_every_field_and_the_batch_pattern() {
        let context = ContextArgs::new(
            DiffusionModelFiles::single("/m/model.gguf"),
            Some(2),
            Placement {
                clip_on_cpu: true,
                vae_on_cpu: false,
                vae_tiling: true,
            },
        );
        let request = ImageRequest {
            negative_prompt: "blurry".into(),
            sampler: Some("euler".into()),
            count: 3,
            ..ImageRequest::new("a cat")
        };
        let args: Vec<String> = cli_args(&context, &request, 42, true, Path::new("/out"))
            .into_iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(joined.starts_with("-m /m/model.gguf -t 2 --clip-on-cpu -p a cat -n blurry"));
        assert!(joined.contains("-s 42 -b 3 --sampling-method euler --vae-tiling"));
        assert!(joined.ends_with("-o /out/image_%d.png"), "{joined}");
        assert!(!joined.contains("--vae-on-cpu"));
    }

    #[test]
    fn help_lists_are_read_across_wrapped_lines() {
        let help = "  --sampling-method                        sampling method, one of [euler, euler_a, heun, dpm2, dpm++2s_a,\n                                           lcm] (default: euler_a)\n  --scheduler                              denoiser sigma scheduler, one of [discrete, karras], default:\n";
        assert_eq!(
            help_choices(help, "--sampling-method"),
            ["euler", "euler_a", "heun", "dpm2", "dpm++2s_a", "lcm"]
        );
        assert_eq!(help_choices(help, "--scheduler"), ["discrete", "karras"]);
        assert!(help_choices(help, "--nothing").is_empty());
    }
}
