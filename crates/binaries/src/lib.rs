//! llama.cpp's `llama-server` and stable-diffusion.cpp's `sd`: which build to use on
//! this machine, fetched from a pinned manifest, unpacked safely, and proven to work by
//! running it, or a path the user chose, proven the same way.
//!
//! - [`manifest`]: the pinned release assets per OS, architecture and variant.
//! - [`extract`]: zip and tar.gz unpacking that never writes outside its folder.
//! - [`validate`]: the basic test (`--version`, `--help`) and the real test (one
//!   token, one 64×64 image) with crash and error-pattern detection.
//! - [`cache`]: what was validated, keyed by the executable's SHA-256.
//! - [`choose`]: the order in which variants are tried on this machine.
//! - [`install`]: download, verify and unpack one variant into `binaries/`.
//! - [`manager`]: [`BinaryManager`], which ties these together.

pub mod cache;
pub mod choose;
pub mod extract;
pub mod install;
pub mod manager;
pub mod manifest;
pub mod validate;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use switchyard_base::errors::ErrorCode;

pub use choose::MachineFacts;
pub use manager::{BinaryManager, BinaryStatus, EnsureBinary};
pub use manifest::Manifest;

/// What setting up a program announces.
#[derive(Debug, Clone, PartialEq)]
pub enum BinariesEvent {
    /// A step of setting up llama-server or sd: download, verify, extract, tests.
    Log(BinaryLog),
    /// An archive's download moved on (throttled).
    Download {
        kind: BinaryKind,
        variant: Variant,
        file: String,
        bytes: u64,
        total: Option<u64>,
    },
}

/// Which program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum BinaryKind {
    /// llama.cpp's `llama-server`.
    LlamaServer,
    /// stable-diffusion.cpp's CLI: `sd-cli` (current name) or `sd` (older releases).
    Diffusion,
}

impl BinaryKind {
    /// What people call it, in messages.
    pub fn label(self) -> &'static str {
        match self {
            Self::LlamaServer => "llama-server",
            Self::Diffusion => "sd",
        }
    }

    /// The folder under `binaries/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::LlamaServer => "llama-server",
            Self::Diffusion => "sd",
        }
    }

    /// The executable's possible file names inside a release archive, preferred first.
    pub fn executable_names(self) -> Vec<String> {
        let stems: &[&str] = match self {
            Self::LlamaServer => &["llama-server"],
            Self::Diffusion => &["sd-cli", "sd"],
        };
        stems
            .iter()
            .map(|stem| format!("{stem}{}", std::env::consts::EXE_SUFFIX))
            .collect()
    }
}

/// A build of llama.cpp or stable-diffusion.cpp for one kind of hardware. The
/// declaration order is the order in which they are tried: the fastest that works wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Variant {
    /// NVIDIA GPUs; tried only when one is present.
    Cuda,
    /// Any GPU with a Vulkan driver (NVIDIA, AMD, Intel).
    Vulkan,
    /// Apple GPUs (macOS).
    Metal,
    /// CPU only, built for AVX-512 (upstream used to ship these; mirrors may still).
    CpuAvx512,
    /// CPU only, built for AVX2.
    CpuAvx2,
    /// CPU only, portable (current upstream builds pick SIMD code at run time).
    Cpu,
}

impl Variant {
    pub const ALL: [Self; 6] = [
        Self::Cuda,
        Self::Vulkan,
        Self::Metal,
        Self::CpuAvx512,
        Self::CpuAvx2,
        Self::Cpu,
    ];

    /// The folder under `binaries/<kind>/`, and the name in the manifest.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Cuda => "cuda",
            Self::Vulkan => "vulkan",
            Self::Metal => "metal",
            Self::CpuAvx512 => "cpu_avx512",
            Self::CpuAvx2 => "cpu_avx2",
            Self::Cpu => "cpu",
        }
    }

    /// Uses a GPU: the real test offloads every layer, and a build that finds no GPU
    /// has failed (the CPU variant does that job).
    pub fn is_gpu(self) -> bool {
        matches!(self, Self::Cuda | Self::Vulkan | Self::Metal)
    }

    /// The CPU feature (as [`switchyard_system::CpuInfo::features`] names it) without
    /// which this build dies with an illegal instruction.
    pub fn required_cpu_feature(self) -> Option<&'static str> {
        match self {
            Self::CpuAvx512 => Some("AVX-512F"),
            Self::CpuAvx2 => Some("AVX2"),
            _ => None,
        }
    }
}

/// How much a log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

/// The step of a binary's setup a log line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum BinaryStep {
    /// Which variants are tried, and why others are not.
    Plan,
    Download,
    /// SHA-256 against the pin.
    Verify,
    Extract,
    /// `--version` / `--help`.
    BasicTest,
    /// One token or one small image with a real model.
    RealTest,
    /// The validation cache answered; no test ran.
    Cache,
    /// The outcome: a variant was kept, or none works.
    Choose,
}

/// One line of the `binary.log` a person reads in the Binary setup card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct BinaryLog {
    pub kind: BinaryKind,
    /// `null` for a binary the user supplied.
    pub variant: Option<Variant>,
    pub level: LogLevel,
    pub step: BinaryStep,
    pub message: String,
    /// The error's code when the line reports one.
    pub code: Option<ErrorCode>,
}
