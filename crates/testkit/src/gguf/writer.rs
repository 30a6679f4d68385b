//! A general GGUF v3 writer (little-endian), independent of the engine's reader
//! apart from the shared value enum.

use std::io::Write as _;
use std::path::Path;

use switchyard_engine::gguf::{Value, ValueType};

const ALIGNMENT: u64 = 32;

/// A tensor's description when its bytes are written separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub type_id: u32,
    /// Encoded bytes (before padding).
    pub len: u64,
}

struct Tensor {
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    data: Vec<u8>,
}

/// Collects metadata and tensors, then writes them as one GGUF file.
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<Tensor>,
}

impl std::fmt::Debug for GgufWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufWriter")
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn kv(&mut self, key: &str, value: Value) -> &mut Self {
        self.metadata.push((key.to_owned(), value));
        self
    }

    pub fn string(&mut self, key: &str, value: &str) -> &mut Self {
        self.kv(key, Value::String(value.to_owned()))
    }

    pub fn u32(&mut self, key: &str, value: u32) -> &mut Self {
        self.kv(key, Value::U32(value))
    }

    /// A tensor whose bytes are already encoded as ggml type `type_id`.
    pub fn tensor(&mut self, name: &str, dims: &[u64], type_id: u32, data: Vec<u8>) -> &mut Self {
        self.tensors.push(Tensor {
            name: name.to_owned(),
            dims: dims.to_vec(),
            type_id,
            data,
        });
        self
    }

    pub fn tensor_f32(&mut self, name: &str, dims: &[u64], values: &[f32]) -> &mut Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, dims, 0, data)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let specs: Vec<TensorSpec> = self
            .tensors
            .iter()
            .map(|t| TensorSpec {
                name: t.name.clone(),
                dims: t.dims.clone(),
                type_id: t.type_id,
                len: t.data.len() as u64,
            })
            .collect();
        let mut out = self.header(&specs);
        for tensor in &self.tensors {
            out.extend_from_slice(&tensor.data);
            pad_to_alignment(&mut out);
        }
        out
    }

    /// Metadata and tensor infos for tensors whose data follows (each padded to the
    /// alignment), ending padded so the first tensor's data can follow directly.
    pub fn header(&self, tensors: &[TensorSpec]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            write_string(&mut out, key);
            out.extend_from_slice(&(value_type(value) as u32).to_le_bytes());
            write_value(&mut out, value);
        }
        let mut offset = 0u64;
        for tensor in tensors {
            write_string(&mut out, &tensor.name);
            out.extend_from_slice(&u32::try_from(tensor.dims.len()).unwrap_or(0).to_le_bytes());
            for dim in &tensor.dims {
                out.extend_from_slice(&dim.to_le_bytes());
            }
            out.extend_from_slice(&tensor.type_id.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = align(offset + tensor.len);
        }
        pad_to_alignment(&mut out);
        out
    }

    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        let mut file = std::fs::File::create(path)?;
        file.write_all(&self.to_bytes())?;
        file.sync_all()
    }
}

pub fn align(offset: u64) -> u64 {
    offset.div_ceil(ALIGNMENT) * ALIGNMENT
}

fn pad_to_alignment(out: &mut Vec<u8>) {
    let padded = usize::try_from(align(out.len() as u64)).unwrap_or(out.len());
    out.resize(padded, 0);
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn value_type(value: &Value) -> ValueType {
    match value {
        Value::U8(_) => ValueType::U8,
        Value::I8(_) => ValueType::I8,
        Value::U16(_) => ValueType::U16,
        Value::I16(_) => ValueType::I16,
        Value::U32(_) => ValueType::U32,
        Value::I32(_) => ValueType::I32,
        Value::F32(_) => ValueType::F32,
        Value::Bool(_) => ValueType::Bool,
        Value::String(_) => ValueType::String,
        Value::Array(_) | Value::Packed(_) => ValueType::Array,
        Value::U64(_) => ValueType::U64,
        Value::I64(_) => ValueType::I64,
        Value::F64(_) => ValueType::F64,
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::String(text) => write_string(out, text),
        Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Packed(packed) => {
            out.extend_from_slice(&(packed.item_type() as u32).to_le_bytes());
            out.extend_from_slice(&(packed.len() as u64).to_le_bytes());
            out.extend_from_slice(packed.bytes());
        }
        Value::Array(items) => {
            // An empty array still needs an element type; U32 is as good as any.
            let item_type = items.first().map_or(ValueType::U32, value_type);
            out.extend_from_slice(&(item_type as u32).to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                write_value(out, item);
            }
        }
    }
}
