//! A fake `sd-cli` for the faults the real one will not produce on demand. It takes
//! the real flags, prints the real lines (formats as captured from sd-cli 0.4.7 in
//! `crates/engine/tests/fixtures/sd-cli-64px-3steps.txt`) and writes real PNGs of the
//! asked size. The prompt picks the behaviour:
//! - `[crash]`: 25 numbered stderr lines, then exit code 3;
//! - `[oom]`: ggml's allocation failure on stderr, exit code 1;
//! - `[hang]`: starts sampling, then waits forever (SIGTERM ends it);
//! - `[hang-ignore-term]`: the same, but SIGTERM is ignored (only SIGKILL ends it);
//! - anything else: a normal run, `FAKE_SD_STEP_MS` (default 5) per step.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const HELP: &str = "Usage: sd-cli [options]

Generation Options:
  -p, --prompt <string>                    the prompt to render
  --sampling-method                        sampling method, one of [euler, euler_a, heun, dpm2, dpm++2s_a, dpm++2m,
                                           dpm++2mv2, ipndm, ipndm_v, lcm, ddim_trailing, tcd, res_multistep, res_2s,
                                           er_sde] (default: euler for Flux/SD3/Wan, euler_a otherwise)
  --scheduler                              denoiser sigma scheduler, one of [discrete, karras, exponential, ays, gits,
                                           smoothstep, sgm_uniform, simple, kl_optimal, lcm, bong_tangent], default:
                                           discrete
";

#[derive(Debug, Default)]
struct Args {
    model: Option<String>,
    prompt: String,
    width: u32,
    height: u32,
    steps: u32,
    seed: i64,
    batch: u32,
    output: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        width: 512,
        height: 512,
        steps: 20,
        seed: 42,
        batch: 1,
        ..Args::default()
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = || {
            argv.next()
                .ok_or(format!("error: missing value for {flag}"))
        };
        match flag.as_str() {
            "-m" | "--model" | "--diffusion-model" => args.model = Some(value()?),
            "-p" | "--prompt" => args.prompt = value()?,
            "-W" | "--width" => args.width = number(&value()?)?,
            "-H" | "--height" => args.height = number(&value()?)?,
            "--steps" => args.steps = number(&value()?)?,
            "-s" | "--seed" => args.seed = number(&value()?)?,
            "-b" | "--batch-count" => args.batch = number(&value()?)?,
            "-o" | "--output" => args.output = Some(PathBuf::from(value()?)),
            "-n" | "--negative-prompt" | "--cfg-scale" | "-t" | "--threads" | "--vae"
            | "--clip_l" | "--clip_g" | "--t5xxl" | "--llm" | "--sampling-method"
            | "--scheduler" => {
                value()?;
            }
            "--clip-on-cpu" | "--vae-on-cpu" | "--vae-tiling" | "-v" | "--verbose" => {}
            other => return Err(format!("error: invalid parameter for argument: {other}")),
        }
    }
    Ok(args)
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("error: invalid number {text}"))
}

fn info(file_line: &str, message: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "[INFO ] {file_line} - {message}");
    let _ = out.flush();
}

fn error(file_line: &str, message: &str) {
    eprintln!("[ERROR] {file_line} - {message}");
}

/// sd's bar: `\r  |====>   | i/N - speed\x1b[K`, a newline after the last step.
fn bar(step: u32, steps: u32, speed: &str) {
    let cells = 50;
    let done = (step * cells / steps.max(1)) as usize;
    let mut progress = String::from("  |");
    for cell in 0..cells as usize {
        progress.push(if cell < done {
            '='
        } else if cell == done {
            '>'
        } else {
            ' '
        });
    }
    progress.push('|');
    let end = if step == steps { "\n" } else { "" };
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "\r{progress} {step}/{steps} - {speed}\x1b[K{end}");
    let _ = out.flush();
}

/// Set once the fake runs with SIGTERM ignored.
const TERM_IGNORED: &str = "FAKE_SD_TERM_IGNORED";

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    #[cfg(unix)]
    if raw.iter().any(|arg| arg.contains("[hang-ignore-term]"))
        && std::env::var_os(TERM_IGNORED).is_none()
    {
        // Ignore SIGTERM before anything is printed, so no SIGTERM can arrive in a
        // window where it still kills: a shell sets the disposition and execs this
        // program again (an ignored signal stays ignored across exec).
        use std::os::unix::process::CommandExt as _;
        if let Ok(me) = std::env::current_exe() {
            let error = std::process::Command::new("sh")
                .arg("-c")
                .arg("trap '' TERM; exec \"$0\" \"$@\"")
                .arg(me)
                .args(&raw)
                .env(TERM_IGNORED, "1")
                .exec();
            eprintln!("cannot exec sh: {error}");
        }
    }
    if raw.iter().any(|arg| arg == "--help" || arg == "-h") {
        error(
            "common.cpp:286 ",
            "error: invalid parameter for argument: --help",
        );
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    if raw.first().is_some_and(|arg| arg == "--version") {
        println!("stable-diffusion.cpp version fake, commit fake");
        return ExitCode::SUCCESS;
    }
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            error("common.cpp:286 ", &message);
            return ExitCode::FAILURE;
        }
    };
    let model = args.model.clone().unwrap_or_default();
    info(
        "stable-diffusion.cpp:212 ",
        &format!("loading model from '{model}'"),
    );
    bar(610, 610, "1024.00MB/s");
    info(
        "stable-diffusion.cpp:3367",
        &format!("generate_image {}x{}", args.width, args.height),
    );
    if args.prompt.contains("[crash]") {
        for line in 1..=25 {
            error("ggml.c:1234", &format!("fake failure line {line}"));
        }
        return ExitCode::from(3);
    }
    if args.prompt.contains("[oom]") {
        eprintln!("ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 9663676416");
        error(
            "stable-diffusion.cpp:700 ",
            "out of memory: could not allocate the UNet compute buffer",
        );
        return ExitCode::FAILURE;
    }
    let step_pause = Duration::from_millis(
        std::env::var("FAKE_SD_STEP_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(5),
    );
    for image in 0..args.batch {
        let seed = args.seed + i64::from(image);
        info(
            "stable-diffusion.cpp:3401",
            &format!(
                "generating image: {}/{} - seed {seed}",
                image + 1,
                args.batch
            ),
        );
        for step in 1..=args.steps {
            if args.prompt.contains("[hang") && step == 2 {
                hang();
            }
            std::thread::sleep(step_pause);
            bar(step, args.steps, "8.00it/s");
        }
        info(
            "stable-diffusion.cpp:3432",
            "sampling completed, taking 0.12s",
        );
    }
    info(
        "stable-diffusion.cpp:3192",
        &format!("decoding {} latents", args.batch),
    );
    info(
        "stable-diffusion.cpp:3212",
        "decode_first_stage completed, taking 0.02s",
    );
    info(
        "stable-diffusion.cpp:3591",
        "generate_image completed in 0.20s",
    );
    let output = args.output.unwrap_or_else(|| PathBuf::from("output.png"));
    for index in 0..args.batch {
        let path = output_path(&output, index, args.batch);
        let written = std::fs::write(&path, png(args.width, args.height, index));
        info(
            "main.cpp:441 ",
            &format!(
                "save result image {index} to '{}' ({})",
                path.display(),
                if written.is_ok() {
                    "success"
                } else {
                    "failure"
                }
            ),
        );
    }
    ExitCode::SUCCESS
}

/// Waits forever; with `[hang-ignore-term]` SIGTERM is already ignored (see
/// `main`), so only SIGKILL ends it.
fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// sd-cli's naming: `%d` in the path is the index; else `name_<i>.png` for batches.
fn output_path(output: &Path, index: u32, batch: u32) -> PathBuf {
    let text = output.to_string_lossy();
    if text.contains("%d") {
        return PathBuf::from(text.replace("%d", &index.to_string()));
    }
    if batch > 1 {
        let stem = output.with_extension("");
        return PathBuf::from(format!("{}_{index}.png", stem.display()));
    }
    output.to_path_buf()
}

/// A gray RGB PNG of the size asked for, its shade varying with `index`.
fn png(width: u32, height: u32, index: u32) -> Vec<u8> {
    use flate2::write::ZlibEncoder;
    let shade = u8::try_from(64 + (index * 40) % 160).unwrap_or(128);
    let mut raw = Vec::new();
    for _ in 0..height {
        raw.push(0);
        raw.extend(std::iter::repeat_n(shade, width as usize * 3));
    }
    let mut encoder = ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(&raw);
    let compressed = encoder.finish().unwrap_or_default();
    let mut header = Vec::new();
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", header),
        (b"IDAT", compressed),
        (b"IEND", Vec::new()),
    ] {
        png.extend(u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(&data);
        png.extend(kind);
        png.extend(&data);
        png.extend(crc.sum().to_be_bytes());
    }
    png
}
