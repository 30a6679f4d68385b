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

/// 8 when `rows` is a multiple of 8, 4 when of 4, else 1: all repacking asks.
fn row_divisor(rows: u64) -> u8 {
    if rows.is_multiple_of(8) {
        8
    } else if rows.is_multiple_of(4) {
        4
    } else {
        1
    }
}

impl MatrixBytes {
    /// Adds a matrix to a layer's list.
    pub fn add(list: &mut Vec<Self>, ggml_type: &str, rows: u64, bytes: u64) {
        let rows_divisible_by = row_divisor(rows);
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

/// Where a tensor at one end of the file's data belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum TensorPlace {
    Layer(u32),
    /// The output norm and projection: placed with the output layer.
    Output,
    /// Embeddings and anything else: always in RAM, never repacked (a row lookup
    /// or no matrix product).
    Fixed,
}

/// A tensor near one end of the file's data. The mapped buffer spans from the first
/// to the last tensor it holds: repacked tensors at either end fall outside it
/// (in the middle they stay mapped), so they are held once, not twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct EdgeTensor {
    pub place: TensorPlace,
    pub ggml_type: String,
    /// 0 for a vector (not a matrix); else as in [`MatrixBytes`].
    pub rows_divisible_by: u8,
    #[ts(type = "number")]
    pub bytes: u64,
}

/// How many tensors of each end a shape keeps: runs of repacked matrices longer
/// than this at an end are rare, and what is past it only makes the estimate high.
pub const EDGE_TENSORS: usize = 64;

impl EdgeTensor {
    pub fn new(place: TensorPlace, ggml_type: &str, dims: &[u64], bytes: u64) -> Self {
        Self {
            place,
            ggml_type: ggml_type.to_owned(),
            rows_divisible_by: dims.get(1).map_or(0, |&rows| row_divisor(rows)),
            bytes,
        }
    }

    /// The bytes of the run of repacked tensors at this end (`tensors` from the end
    /// inwards) that the mapped buffer leaves out. Tensors not in RAM (`in_ram`
    /// false: on a GPU) are in no CPU buffer and do not end the run.
    pub fn unmapped_run(
        tensors: &[Self],
        kernels: CpuKernels,
        in_ram: impl Fn(TensorPlace) -> bool,
    ) -> u64 {
        let mut run = 0u64;
        for tensor in tensors {
            if !in_ram(tensor.place) {
                continue;
            }
            let repacked = tensor.place != TensorPlace::Fixed
                && tensor.rows_divisible_by > 0
                && kernels.repacks(&tensor.ggml_type, u64::from(tensor.rows_divisible_by));
            if !repacked {
                break;
            }
            run = run.saturating_add(tensor.bytes);
        }
        run
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
    fn a_run_of_repacked_tensors_at_an_end_leaves_the_mapping() {
        let tensor = |place, ty, rows, bytes| EdgeTensor::new(place, ty, &[256, rows], bytes);
        let end = [
            tensor(TensorPlace::Layer(7), "Q4_K", 1024, 10),
            tensor(TensorPlace::Layer(7), "Q4_K", 1024, 20),
            EdgeTensor::new(TensorPlace::Layer(7), "F32", &[256], 1),
            tensor(TensorPlace::Layer(7), "Q4_K", 1024, 40),
        ];
        let everything_in_ram = |_| true;
        assert_eq!(
            EdgeTensor::unmapped_run(&end, CpuKernels::X86Avx2, everything_in_ram),
            30,
            "a norm (a vector, mapped) ends the run"
        );
        assert_eq!(
            EdgeTensor::unmapped_run(&end, CpuKernels::None, everything_in_ram),
            0
        );
        let embeddings = [tensor(TensorPlace::Fixed, "Q4_K", 1024, 10)];
        assert_eq!(
            EdgeTensor::unmapped_run(&embeddings, CpuKernels::X86Avx2, everything_in_ram),
            0,
            "the embeddings are looked up, never repacked"
        );
        // A layer on the GPU is in no CPU buffer: the run goes on past it.
        let offloaded = [
            tensor(TensorPlace::Layer(8), "Q6_K", 1024, 5),
            tensor(TensorPlace::Layer(7), "Q4_K", 1024, 10),
        ];
        let layer_8_on_gpu = |place| place != TensorPlace::Layer(8);
        assert_eq!(
            EdgeTensor::unmapped_run(&offloaded, CpuKernels::X86Avx2, layer_8_on_gpu),
            10
        );
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
