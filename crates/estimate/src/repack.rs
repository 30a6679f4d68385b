//! Weights llama.cpp's CPU backend repacks. For some quantized types it keeps the
//! weight matrices of the layers it runs in an interleaved layout its SIMD kernels
//! read faster (`ggml-cpu/repack.cpp`, `ggml_repack_get_optimal_repack_type`). The
//! repacked copy is a buffer of its own (`CPU_REPACK model buffer size`) beside the
//! mapped file, whose pages the repacking read, so both count: a model with repacked
//! weights holds those weights twice.
//!
//! Which types repack depends on the kernels the CPU runs (llama.cpp's release
//! builds load the variant that matches the CPU) and on the matrix's row count:
//!
//! | kernels                | types (rows a multiple of 8)   | (rows a multiple of 4)             |
//! |------------------------|--------------------------------|------------------------------------|
//! | x86 AVX2               | Q4_0, Q4_K, IQ4_NL, MXFP4      |                                    |
//! | x86 AVX-512            | the AVX2 ones and Q2_K         |                                    |
//! | ARM NEON dot product   | Q4_K, Q5_K, Q6_K               | Q4_0, IQ4_NL, MXFP4, Q8_0, Q1_0    |
//! | ARM NEON int8 matmul   | Q4_K, Q5_K, Q6_K               | Q4_0, IQ4_NL, MXFP4, Q8_0, Q1_0    |
//!
//! Only matrix multiplications repack: the embeddings (a row lookup) never do; a
//! tied output layer is a second, repacked copy of them when their type repacks.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The SIMD kernels llama.cpp's CPU backend runs on a machine, as far as repacking
/// goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, Default)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum CpuKernels {
    /// No repacking (an older x86 CPU, or `--no-repack`).
    #[default]
    None,
    X86Avx2,
    X86Avx512,
    ArmDotprod,
    ArmI8mm,
}

impl CpuKernels {
    /// The kernels of the CPU this runs on, which is the one llama-server runs on.
    pub fn of_this_cpu() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Self::X86Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Self::X86Avx2;
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("i8mm") {
                return Self::ArmI8mm;
            }
            if std::arch::is_aarch64_feature_detected!("dotprod") {
                return Self::ArmDotprod;
            }
        }
        Self::None
    }

    /// Whether a weight matrix of `ggml_type` (its GGUF name) with `rows` rows
    /// (`ne[1]`) gets repacked.
    pub fn repacks(self, ggml_type: &str, rows: u64) -> bool {
        let by_8 = rows.is_multiple_of(8);
        let by_4 = rows.is_multiple_of(4);
        match self {
            Self::None => false,
            Self::X86Avx2 => by_8 && matches!(ggml_type, "Q4_0" | "Q4_K" | "IQ4_NL" | "MXFP4"),
            Self::X86Avx512 => {
                by_8 && matches!(ggml_type, "Q4_0" | "Q4_K" | "IQ4_NL" | "MXFP4" | "Q2_K")
            }
            Self::ArmDotprod | Self::ArmI8mm => {
                (by_8 && matches!(ggml_type, "Q4_K" | "Q5_K" | "Q6_K"))
                    || (by_4 && matches!(ggml_type, "Q4_0" | "IQ4_NL" | "MXFP4" | "Q8_0" | "Q1_0"))
            }
        }
    }
}

/// Bytes of weight matrices of one type whose row counts share a divisor (8, 4 or
/// 1): what repacking depends on, kept per layer without keeping every tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct MatrixBytes {
    pub ggml_type: String,
    /// 8 when every matrix counted here has a multiple of 8 rows, 4 when of 4, else 1.
    pub rows_divisible_by: u8,
    #[ts(type = "number")]
    pub bytes: u64,
}

impl MatrixBytes {
    /// Adds a matrix to a layer's list.
    pub fn add(list: &mut Vec<Self>, ggml_type: &str, rows: u64, bytes: u64) {
        let rows_divisible_by = if rows.is_multiple_of(8) {
            8
        } else if rows.is_multiple_of(4) {
            4
        } else {
            1
        };
        match list
            .iter_mut()
            .find(|m| m.ggml_type == ggml_type && m.rows_divisible_by == rows_divisible_by)
        {
            Some(matrices) => matrices.bytes = matrices.bytes.saturating_add(bytes),
            None => list.push(Self {
                ggml_type: ggml_type.to_owned(),
                rows_divisible_by,
                bytes,
            }),
        }
    }

    /// The bytes of `list` that `kernels` repack.
    pub fn repacked(list: &[Self], kernels: CpuKernels) -> u64 {
        list.iter()
            .filter(|m| kernels.repacks(&m.ggml_type, u64::from(m.rows_divisible_by)))
            .fold(0, |sum, m| sum.saturating_add(m.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avx2_repacks_4_bit_types_with_rows_by_8() {
        let kernels = CpuKernels::X86Avx2;
        assert!(kernels.repacks("Q4_K", 1024));
        assert!(kernels.repacks("Q4_0", 256));
        assert!(kernels.repacks("IQ4_NL", 8));
        assert!(!kernels.repacks("Q4_K", 12), "rows not a multiple of 8");
        for kept in ["Q5_K", "Q6_K", "Q8_0", "IQ4_XS", "F16", "Q2_K"] {
            assert!(!kernels.repacks(kept, 1024), "{kept}");
        }
        assert!(CpuKernels::X86Avx512.repacks("Q2_K", 1024));
        assert!(!CpuKernels::None.repacks("Q4_K", 1024));
    }

    #[test]
    fn arm_repacks_k_quants_and_q8_0() {
        let kernels = CpuKernels::ArmDotprod;
        assert!(kernels.repacks("Q6_K", 1024));
        assert!(kernels.repacks("Q8_0", 12));
        assert!(!kernels.repacks("Q6_K", 12));
        assert!(!kernels.repacks("IQ4_XS", 1024));
    }

    #[test]
    fn matrices_group_by_type_and_row_divisor() {
        let mut list = Vec::new();
        MatrixBytes::add(&mut list, "Q4_K", 1024, 100);
        MatrixBytes::add(&mut list, "Q4_K", 256, 50);
        MatrixBytes::add(&mut list, "Q4_K", 6, 7);
        MatrixBytes::add(&mut list, "Q6_K", 1024, 30);
        assert_eq!(list.len(), 3);
        assert_eq!(MatrixBytes::repacked(&list, CpuKernels::X86Avx2), 150);
        assert_eq!(MatrixBytes::repacked(&list, CpuKernels::ArmI8mm), 180);
        assert_eq!(MatrixBytes::repacked(&list, CpuKernels::None), 0);
    }
}
