//! The order in which variants are tried on this machine: CUDA (only with an NVIDIA
//! GPU), Vulkan, Metal (macOS), then the CPU builds, skipping CPU builds for SIMD
//! extensions this processor lacks (they would die of an illegal instruction).

use serde::{Deserialize, Serialize};

use super::manifest::Candidate;
use super::Variant;
use switchyard_system::{GpuVendor, SystemInfo};

/// What the choice depends on; from [`SystemInfo`] in the app, chosen by tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineFacts {
    /// As `std::env::consts::OS` names it.
    pub os: String,
    /// As `std::env::consts::ARCH` names it.
    pub arch: String,
    pub nvidia_gpu: bool,
    /// As [`switchyard_system::CpuInfo::features`] names them (`AVX2`, `AVX-512F`).
    pub cpu_features: Vec<String>,
}

impl MachineFacts {
    pub fn from_system(info: &SystemInfo) -> Self {
        Self {
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            nvidia_gpu: info
                .gpus
                .iter()
                .any(|gpu| gpu.identity.vendor == GpuVendor::Nvidia),
            cpu_features: info.cpu.features.clone(),
        }
    }
}

/// The candidates to try, best first, and the ones left out with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub to_try: Vec<Candidate>,
    pub skipped: Vec<(Variant, String)>,
}

pub fn plan(mut candidates: Vec<Candidate>, facts: &MachineFacts) -> Plan {
    candidates.sort_by_key(|c| c.variant);
    let mut plan = Plan {
        to_try: Vec::new(),
        skipped: Vec::new(),
    };
    for candidate in candidates {
        match skip_reason(candidate.variant, facts) {
            Some(reason) => plan.skipped.push((candidate.variant, reason)),
            None => plan.to_try.push(candidate),
        }
    }
    plan
}

fn skip_reason(variant: Variant, facts: &MachineFacts) -> Option<String> {
    match variant {
        Variant::Cuda if !facts.nvidia_gpu => Some("no NVIDIA GPU on this machine".into()),
        Variant::Metal if facts.os != "macos" => Some("Metal exists only on macOS".into()),
        _ => {
            let feature = variant.required_cpu_feature()?;
            (!facts.cpu_features.iter().any(|f| f == feature))
                .then(|| format!("this CPU lacks {feature}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ArchiveFile;
    use crate::BinaryKind;

    fn candidate(variant: Variant) -> Candidate {
        Candidate {
            kind: BinaryKind::LlamaServer,
            variant,
            repo: "o/r".into(),
            tag: "t".into(),
            archive: ArchiveFile {
                name: format!("{}.zip", variant.dir_name()),
                sha256: None,
                size: None,
            },
            dependencies: Vec::new(),
        }
    }

    fn facts(nvidia_gpu: bool, cpu_features: &[&str]) -> MachineFacts {
        MachineFacts {
            os: "linux".into(),
            arch: "x86_64".into(),
            nvidia_gpu,
            cpu_features: cpu_features.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn cuda_first_only_with_nvidia_and_cpu_builds_only_for_present_features() {
        let all = Variant::ALL.map(candidate).to_vec();
        let with_nvidia = plan(all.clone(), &facts(true, &["AVX2", "AVX-512F"]));
        let order: Vec<Variant> = with_nvidia.to_try.iter().map(|c| c.variant).collect();
        assert_eq!(
            order,
            [
                Variant::Cuda,
                Variant::Vulkan,
                Variant::CpuAvx512,
                Variant::CpuAvx2,
                Variant::Cpu
            ]
        );
        assert_eq!(with_nvidia.skipped.len(), 1, "Metal on Linux");

        let avx2_only = plan(all.into_iter().rev().collect(), &facts(false, &["AVX2"]));
        let order: Vec<Variant> = avx2_only.to_try.iter().map(|c| c.variant).collect();
        assert_eq!(order, [Variant::Vulkan, Variant::CpuAvx2, Variant::Cpu]);
        assert!(avx2_only
            .skipped
            .contains(&(Variant::CpuAvx512, "this CPU lacks AVX-512F".into())));
        assert!(avx2_only
            .skipped
            .contains(&(Variant::Cuda, "no NVIDIA GPU on this machine".into())));
    }
}
