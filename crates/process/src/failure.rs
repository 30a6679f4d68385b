//! What a child's output says went wrong: one reading of the words ggml, CUDA,
//! Vulkan, Metal and the loader print, for every program Switchyard runs (a
//! binary's test, llama-server, sd). Lower-case fragments, matched without regard
//! to case.

/// A kind of failure a line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// RAM or VRAM ran out.
    OutOfMemory,
    /// The GPU backend failed (CUDA, Vulkan).
    GpuError,
    /// A library the build needs is missing.
    MissingLibrary,
    /// The build needs CPU features this machine lacks.
    IllegalInstruction,
    /// A crash or an assertion inside ggml.
    Crash,
    /// A GPU build found no GPU to use (a failure only for a build that must use one).
    NoGpu,
}

const OUT_OF_MEMORY: &[&str] = &[
    "out of memory",
    "failed to allocate",
    "insufficient memory",
    "cannot allocate memory",
    "erroroutofdevicememory",
    "cudamalloc failed",
];
const GPU_ERROR: &[&str] = &["cuda error"];
const MISSING_LIBRARY: &[&str] = &["error while loading shared libraries"];
const ILLEGAL_INSTRUCTION: &[&str] = &["illegal instruction"];
const CRASH: &[&str] = &["segmentation fault", "ggml_assert", "ggml_abort"];
const NO_GPU: &[&str] = &[
    "no usable gpu found",
    "no cuda-capable device",
    "failed to initialize cuda",
    "no vulkan devices",
];

/// What `line` reports, if it reports a failure.
pub fn classify(line: &str) -> Option<Failure> {
    let lower = line.to_ascii_lowercase();
    let has = |patterns: &[&str]| patterns.iter().any(|pattern| lower.contains(pattern));
    if has(OUT_OF_MEMORY) {
        Some(Failure::OutOfMemory)
    } else if has(GPU_ERROR) || (lower.contains("ggml_vulkan") && lower.contains("error")) {
        Some(Failure::GpuError)
    } else if has(MISSING_LIBRARY) {
        Some(Failure::MissingLibrary)
    } else if has(ILLEGAL_INSTRUCTION) {
        Some(Failure::IllegalInstruction)
    } else if has(CRASH) {
        Some(Failure::Crash)
    } else if has(NO_GPU) {
        Some(Failure::NoGpu)
    } else {
        None
    }
}

/// Whether `line` says memory ran out.
pub fn mentions_out_of_memory(line: &str) -> bool {
    classify(line) == Some(Failure::OutOfMemory)
}

/// The first line of `output` that reports a failure; a GPU found missing counts
/// only when `gpu_required`.
pub fn first_failure_line(output: &str, gpu_required: bool) -> Option<String> {
    output.lines().find_map(|line| {
        let failure = classify(line)?;
        (failure != Failure::NoGpu || gpu_required).then(|| line.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_of_each_failure_are_read_alike_everywhere() {
        for (line, failure) in [
            ("ggml_backend_cuda_buffer_type_alloc_buffer: allocating 2048 MiB on device 0: cudaMalloc failed: out of memory", Failure::OutOfMemory),
            ("ggml_vulkan: Device memory allocation of size 1 failed. ErrorOutOfDeviceMemory", Failure::OutOfMemory),
            ("CUDA error: an illegal memory access was encountered", Failure::GpuError),
            ("ggml_vulkan: Error: unsupported device", Failure::GpuError),
            ("error while loading shared libraries: libcudart.so.12", Failure::MissingLibrary),
            ("Illegal instruction (core dumped)", Failure::IllegalInstruction),
            ("GGML_ASSERT(n_dims <= 4) failed", Failure::Crash),
            ("warning: no usable GPU found, --gpu-layers option will be ignored", Failure::NoGpu),
        ] {
            assert_eq!(classify(line), Some(failure), "{line}");
        }
        assert_eq!(classify("srv  llama_server: model loaded"), None);
        assert!(mentions_out_of_memory("failed to allocate compute buffer"));
        let output = "load: fine\nno usable GPU found\n";
        assert_eq!(first_failure_line(output, false), None);
        assert_eq!(
            first_failure_line(output, true).as_deref(),
            Some("no usable GPU found")
        );
    }
}
