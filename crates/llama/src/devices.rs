//! Which backend a llama-server build runs on, from its `--list-devices`: the
//! person's own build has no variant name to go by, and the estimator needs to
//! know whether layers can go to a GPU.
//!
//! ```text
//! Available devices:
//!   CUDA0: NVIDIA H100 80GB HBM3 (81079 MiB, 80604 MiB free)
//! ```
//! A CPU-only build lists `(none)`.

use std::path::Path;
use std::time::Duration;

use switchyard_estimate::Backend;

const LIST_TIMEOUT: Duration = Duration::from_secs(20);

/// `None` when the output says nothing usable (an old build without the flag).
pub fn parse_devices(output: &str) -> Option<Backend> {
    let mut lines = output
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("Available devices"));
    lines.next()?;
    let mut found = Backend::Cpu;
    for line in lines {
        let device = line.trim_start();
        let backend = if device.starts_with("CUDA") {
            Backend::Cuda
        } else if device.starts_with("Vulkan") {
            Backend::Vulkan
        } else if device.starts_with("Metal") || device.starts_with("MTL") {
            Backend::Metal
        } else {
            continue;
        };
        // CUDA beats Vulkan when a build has both: llama.cpp prefers it too.
        if found == Backend::Cpu || backend == Backend::Cuda {
            found = backend;
        }
    }
    Some(found)
}

/// The backend `binary --list-devices` names (recorded in `pid_dir` while it runs).
pub async fn probe_backend(binary: &Path, pid_dir: Option<&Path>) -> Option<Backend> {
    let mut command = tokio::process::Command::new(binary);
    command.arg("--list-devices");
    let text = switchyard_process::output_within(command, LIST_TIMEOUT, pid_dir).await?;
    parse_devices(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_devices_name_the_backend() {
        let cuda = "ggml_cuda_init: found 1 CUDA devices:\nAvailable devices:\n  CUDA0: NVIDIA H100 80GB HBM3 (81079 MiB, 80604 MiB free)\n";
        assert_eq!(parse_devices(cuda), Some(Backend::Cuda));
        let vulkan = "Available devices:\n  Vulkan0: llvmpipe (LLVM 15.0.6, 256 bits) (2048 MiB, 2048 MiB free)\n";
        assert_eq!(parse_devices(vulkan), Some(Backend::Vulkan));
        assert_eq!(
            parse_devices("Available devices:\n  (none)\n"),
            Some(Backend::Cpu)
        );
        assert_eq!(
            parse_devices("error: unknown argument: --list-devices"),
            None
        );
    }
}
