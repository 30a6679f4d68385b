//! GGUF v2/v3 reader: metadata and tensor infos from the header alone, read from a
//! local file or from a URL with HTTP range requests that fetch only what the
//! header needs. The readers (tokio, reqwest) are the default `sources` feature;
//! without it the crate is the parser and the facts alone.

mod facts;
mod ggml_type;
mod parser;
#[cfg(feature = "sources")]
mod source;
mod value;

pub use facts::{file_type_name, ModelFacts, QuantShare, SplitInfo};
pub use ggml_type::GgmlType;
pub use parser::{parse, Stop};
#[cfg(feature = "sources")]
pub use source::{
    content_range, read_header, read_local, read_remote, FetchStats, HttpSource, LocalSource,
    RangeSource,
};
pub use value::{PackedArray, Value, ValueType};

/// One tensor's description in the header.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset from the start of the data section.
    pub offset: u64,
    pub elements: u64,
    pub bytes: u64,
}

/// A parsed GGUF header.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufFile {
    pub version: u32,
    /// Key/value pairs in file order.
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Where the tensor infos end.
    pub header_len: u64,
    /// Where tensor data starts (header rounded up to the alignment).
    pub data_offset: u64,
    pub file_len: Option<u64>,
}

impl GgufFile {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// An architecture-specific key such as `llama.block_count`.
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        let arch = self.architecture()?;
        let value = self.get(&format!("{arch}.{suffix}"))?;
        // Some architectures give per-layer values (an array); the largest decides
        // the memory needed.
        value.as_u64().or_else(|| value.max_u64_item())
    }

    pub fn facts(&self) -> ModelFacts {
        ModelFacts::from_file(self)
    }
}
