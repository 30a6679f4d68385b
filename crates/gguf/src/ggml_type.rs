//! ggml tensor types: how many bytes a block of elements takes. The table follows
//! ggml's `type_traits` (and the PyPI `gguf` package's `GGML_QUANT_SIZES`, which a
//! test compares against).

/// A ggml tensor type by its on-disk id, with its name, block size (elements) and
/// block bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GgmlType {
    pub id: u32,
    pub name: &'static str,
    pub block_elements: u32,
    pub block_bytes: u32,
}

const fn t(id: u32, name: &'static str, block_elements: u32, block_bytes: u32) -> GgmlType {
    GgmlType {
        id,
        name,
        block_elements,
        block_bytes,
    }
}

/// Every type llama.cpp writes today; ids 4, 5 (old Q4_2/Q4_3) and 31–33 (removed
/// Q4_0 repacks) are gone from the format.
const TYPES: &[GgmlType] = &[
    t(0, "F32", 1, 4),
    t(1, "F16", 1, 2),
    t(2, "Q4_0", 32, 18),
    t(3, "Q4_1", 32, 20),
    t(6, "Q5_0", 32, 22),
    t(7, "Q5_1", 32, 24),
    t(8, "Q8_0", 32, 34),
    t(9, "Q8_1", 32, 40),
    t(10, "Q2_K", 256, 84),
    t(11, "Q3_K", 256, 110),
    t(12, "Q4_K", 256, 144),
    t(13, "Q5_K", 256, 176),
    t(14, "Q6_K", 256, 210),
    t(15, "Q8_K", 256, 292),
    t(16, "IQ2_XXS", 256, 66),
    t(17, "IQ2_XS", 256, 74),
    t(18, "IQ3_XXS", 256, 98),
    t(19, "IQ1_S", 256, 50),
    t(20, "IQ4_NL", 32, 18),
    t(21, "IQ3_S", 256, 110),
    t(22, "IQ2_S", 256, 82),
    t(23, "IQ4_XS", 256, 136),
    t(24, "I8", 1, 1),
    t(25, "I16", 1, 2),
    t(26, "I32", 1, 4),
    t(27, "I64", 1, 8),
    t(28, "F64", 1, 8),
    t(29, "IQ1_M", 256, 56),
    t(30, "BF16", 1, 2),
    t(34, "TQ1_0", 256, 54),
    t(35, "TQ2_0", 256, 66),
    t(39, "MXFP4", 32, 17),
    t(40, "NVFP4", 64, 36),
    t(41, "Q1_0", 128, 18),
];

impl GgmlType {
    pub fn from_id(id: u32) -> Option<Self> {
        TYPES.iter().copied().find(|ty| ty.id == id)
    }

    pub fn all() -> &'static [GgmlType] {
        TYPES
    }

    /// Bytes of `elements` values, or `None` when the count is not a whole number
    /// of blocks or overflows.
    pub fn bytes_for(self, elements: u64) -> Option<u64> {
        let block = u64::from(self.block_elements);
        if !elements.is_multiple_of(block) {
            return None;
        }
        (elements / block).checked_mul(u64::from(self.block_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_sizes_sane() {
        let mut ids: Vec<u32> = TYPES.iter().map(|ty| ty.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TYPES.len());
        assert!(TYPES
            .iter()
            .all(|ty| ty.block_elements > 0 && ty.block_bytes > 0));
    }

    #[test]
    fn sizes_follow_blocks() {
        let q4_k = GgmlType::from_id(12).unwrap();
        assert_eq!(q4_k.bytes_for(4096 * 4096), Some(4096 * 4096 / 256 * 144));
        assert_eq!(q4_k.bytes_for(100), None, "not a whole block");
        assert_eq!(GgmlType::from_id(0).unwrap().bytes_for(10), Some(40));
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(GgmlType::from_id(0).unwrap().bytes_for(u64::MAX), None);
    }
}
