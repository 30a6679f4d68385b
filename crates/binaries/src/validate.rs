//! Does this executable work here? The basic test runs `llama-server --version` or
//! `sd --help`; the real test, when a model is at hand, generates one token or one
//! 64×64 image. A failure has a reason a person can act on: the exit code or the
//! signal (an illegal instruction means the build needs newer CPU features), the
//! error line from its output ("CUDA error", "out of memory"…), or the deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::process::Command;

use super::BinaryKind;
use switchyard_process::failure::first_failure_line;
use switchyard_process::{describe_exit, last_lines, CapturedProcess};

/// Deadlines for the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestLimits {
    /// `--version` / `--help` answer at once; a program that does not is broken.
    pub basic: Duration,
    /// Load, answer, stop. A Vulkan build compiles its shaders on the first start
    /// (about 10 s), and a large model takes time to load.
    pub real: Duration,
    /// After SIGTERM, before the kill.
    pub stop_grace: Duration,
}

impl Default for TestLimits {
    fn default() -> Self {
        Self {
            basic: Duration::from_secs(15),
            real: Duration::from_secs(120),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// How often readiness is polled during the real test.
const HEALTH_POLL: Duration = Duration::from_millis(50);

/// The basic test: on success, the version the program reports (`unknown` when it
/// reports none).
pub async fn basic_test(
    kind: BinaryKind,
    executable: &Path,
    limits: &TestLimits,
    pid_dir: Option<&Path>,
) -> Result<String, String> {
    let mut command = Command::new(executable);
    command.arg(match kind {
        BinaryKind::LlamaServer => "--version",
        // sd-cli prints an `[ERROR] … invalid parameter for argument: --help` line
        // first, then the usage, and exits 0.
        BinaryKind::Diffusion => "--help",
    });
    set_working_dir(&mut command, executable);
    let mut process = CapturedProcess::spawn(command, pid_dir)
        .await
        .map_err(|error| format!("could not be started: {error}"))?;
    let Some(status) = process.wait_for(limits.basic).await else {
        process.kill();
        let _ = process.wait_for(limits.stop_grace).await;
        return Err(format!(
            "did not answer within {} s and was killed",
            limits.basic.as_secs_f32()
        ));
    };
    let output = process.output().await;
    if !status.success() {
        return Err(with_output(&describe_exit(status), &output));
    }
    let looks_right = match kind {
        BinaryKind::LlamaServer => output.contains("version"),
        BinaryKind::Diffusion => output.to_ascii_lowercase().contains("usage"),
    };
    if !looks_right {
        return Err(with_output(
            &format!("does not answer like {}", kind.label()),
            &output,
        ));
    }
    Ok(parse_version(kind, &output).unwrap_or_else(|| "unknown".into()))
}

/// The version from `--version` (llama-server: `version: 0.6.0-dev (build 0, commit
/// unknown)`) or from the first line of sd's usage (`stable-diffusion.cpp version
/// master-920-2f88688, commit 2f88688`).
pub fn parse_version(kind: BinaryKind, output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let line = line.trim();
        let version = match kind {
            BinaryKind::LlamaServer => line.strip_prefix("version:")?,
            BinaryKind::Diffusion => line.strip_prefix("stable-diffusion.cpp version")?,
        };
        let version = version.trim();
        (!version.is_empty()).then(|| version.to_owned())
    })
}

/// What the real test runs with.
#[derive(Debug, Clone, Copy)]
pub struct RealTest<'a> {
    pub kind: BinaryKind,
    pub executable: &'a Path,
    pub model: &'a Path,
    /// Offload every layer to the GPU (`-ngl 99`).
    pub offload: bool,
    /// A build for a GPU that finds none has failed: the CPU build does that job.
    pub require_gpu: bool,
    /// Where the test's process is recorded while it runs.
    pub pid_dir: Option<&'a Path>,
}

/// The real test: one token from llama-server, one 64×64 one-step image from sd.
pub async fn real_test(test: RealTest<'_>, limits: &TestLimits) -> Result<(), String> {
    let output = match test.kind {
        BinaryKind::LlamaServer => llama_one_token(&test, limits).await?,
        BinaryKind::Diffusion => sd_small_image(&test, limits).await?,
    };
    match first_failure_line(&output, test.require_gpu) {
        Some(line) => Err(format!("reported an error: {line}")),
        None => Ok(()),
    }
}

async fn llama_one_token(test: &RealTest<'_>, limits: &TestLimits) -> Result<String, String> {
    let port = free_port().map_err(|error| format!("no free port for the test: {error}"))?;
    let mut command = Command::new(test.executable);
    command
        .arg("-m")
        .arg(test.model)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["-c", "512", "-np", "1"])
        .args(["-ngl", if test.offload { "99" } else { "0" }]);
    set_working_dir(&mut command, test.executable);
    let mut server = CapturedProcess::spawn(command, test.pid_dir)
        .await
        .map_err(|error| format!("could not be started: {error}"))?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|error| format!("no HTTP client for the test: {error}"))?;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + limits.real;

    let answer = async {
        loop {
            if let Some(status) = server.try_exit() {
                return Err(format!("{} while loading the model", describe_exit(status)));
            }
            let health = client
                .get(format!("{base}/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if health.is_ok_and(|response| response.status() == 200) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "was not ready within {} s",
                    limits.real.as_secs_f32()
                ));
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
        one_token(&client, &base, deadline, &mut server).await
    }
    .await;

    server.stop(limits.stop_grace).await;
    let output = server.output().await;
    answer.map_err(|reason| with_output(&reason, &output))?;
    Ok(output)
}

/// Seeds tried for the one token: a generated token can be part of a character, and
/// some llama-server releases answer HTTP 500 for that instead of the token.
const TOKEN_SEEDS: [u32; 3] = [1, 2, 3];

/// Asks for one token; `Ok` once the server computed one.
async fn one_token(
    client: &reqwest::Client,
    base: &str,
    deadline: Instant,
    server: &mut CapturedProcess,
) -> Result<(), String> {
    for seed in TOKEN_SEEDS {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let response = client
            .post(format!("{base}/completion"))
            .json(&serde_json::json!({"prompt": "Hello", "n_predict": 1, "seed": seed}))
            .timeout(remaining.max(Duration::from_secs(1)))
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                return Err(match server.try_exit() {
                    Some(status) => format!("{} while generating", describe_exit(status)),
                    None => format!("did not answer a one-token request: {error}"),
                })
            }
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if status == 200 {
            let json: serde_json::Value = serde_json::from_str(&body)
                .map_err(|error| format!("answered something that is not JSON: {error}"))?;
            return if json.get("content").is_some() {
                Ok(())
            } else {
                Err(format!("answered without a token: {body}"))
            };
        }
        // Older releases' output parser refuses a token that is half a character
        // ("The model produced output that does not match the expected Content-only
        // format"): the token was computed, so another seed tells more.
        if !(status == 500 && body.contains("produced output")) {
            return Err(format!(
                "answered HTTP {status} to a one-token request: {body}"
            ));
        }
        tracing::debug!(
            seed,
            "token refused by the server's output parser; next seed"
        );
    }
    // Every token computed and refused only as text: the build itself works.
    Ok(())
}

async fn sd_small_image(test: &RealTest<'_>, limits: &TestLimits) -> Result<String, String> {
    let scratch =
        tempfile::tempdir().map_err(|error| format!("no scratch folder for the test: {error}"))?;
    let image = scratch.path().join("test.png");
    let mut command = Command::new(test.executable);
    command
        .arg("-m")
        .arg(test.model)
        .args(["-p", "test", "-W", "64", "-H", "64", "--steps", "1"])
        .args(["--cfg-scale", "1"])
        .arg("-o")
        .arg(&image);
    set_working_dir(&mut command, test.executable);
    let mut process = CapturedProcess::spawn(command, test.pid_dir)
        .await
        .map_err(|error| format!("could not be started: {error}"))?;
    let Some(status) = process.wait_for(limits.real).await else {
        process.kill();
        let _ = process.wait_for(limits.stop_grace).await;
        let output = process.output().await;
        return Err(with_output(
            &format!(
                "did not draw a 64×64 image within {} s and was killed",
                limits.real.as_secs_f32()
            ),
            &output,
        ));
    };
    let output = process.output().await;
    if !status.success() {
        return Err(with_output(
            &format!("{} while drawing a test image", describe_exit(status)),
            &output,
        ));
    }
    let is_png = std::fs::read(&image).is_ok_and(|bytes| bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    if !is_png {
        return Err(with_output("exited 0 but wrote no image", &output));
    }
    Ok(output)
}

/// Runs the program in its own folder, where Windows also looks for its DLLs.
fn set_working_dir(command: &mut Command, executable: &Path) {
    if let Some(dir) = executable.parent().filter(|d| !d.as_os_str().is_empty()) {
        command.current_dir(dir);
    }
}

fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()
        .map(|addr| addr.port())
}

/// The reason, with the output's last lines when there are any.
fn with_output(reason: &str, output: &str) -> String {
    let tail = last_lines(output, 5);
    if tail.is_empty() {
        reason.to_owned()
    } else {
        format!("{reason}; last output:\n{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_both_programs() {
        let llama = "version: 0.6.0-dev (build 0, commit unknown)\nbuilt with GNU 12.2.0 for Linux x86_64\n";
        assert_eq!(
            parse_version(BinaryKind::LlamaServer, llama).as_deref(),
            Some("0.6.0-dev (build 0, commit unknown)")
        );
        let sd = "[ERROR] common.cpp:286  - error: invalid parameter for argument: --help\nstable-diffusion.cpp version unknown, commit unknown\nUsage: sd-cli [options]\n";
        assert_eq!(
            parse_version(BinaryKind::Diffusion, sd).as_deref(),
            Some("unknown, commit unknown")
        );
        assert_eq!(parse_version(BinaryKind::LlamaServer, "usage: x"), None);
    }

    #[test]
    fn error_lines_are_found_and_gpu_absence_counts_only_for_gpu_builds() {
        let cuda = "load_tensors: offloading\nCUDA error: out of memory\n  current device: 0\n";
        assert_eq!(
            first_failure_line(cuda, true).as_deref(),
            Some("CUDA error: out of memory")
        );
        let vulkan = "ggml_vulkan: Found 1 Vulkan devices:\nggml_vulkan: device lost error while allocating\n";
        assert_eq!(
            first_failure_line(vulkan, true).as_deref(),
            Some("ggml_vulkan: device lost error while allocating")
        );
        let no_gpu = "ggml_vulkan: No devices found.\nW no usable GPU found, --gpu-layers option will be ignored\n";
        assert!(first_failure_line(no_gpu, true).is_some());
        assert_eq!(first_failure_line(no_gpu, false), None);
        assert_eq!(
            first_failure_line("srv  llama_server: model loaded\n", true),
            None
        );
    }
}
