//! The GGUF header parser: a pure function over the bytes read so far. It either
//! finishes, asks for more bytes, or says precisely what is wrong. Every count and
//! length is checked against the bytes that exist before anything is allocated.

use std::collections::HashSet;

use super::ggml_type::GgmlType;
use super::value::{PackedArray, Value, ValueType};
use super::{GgufFile, TensorInfo};

const MAGIC: &[u8; 4] = b"GGUF";
/// Nobody names a key or tensor this long; a longer one is corruption.
const MAX_NAME_LEN: u64 = 64 * 1024;
/// Chat templates are kilobytes; 64 MiB leaves room for anything real.
const MAX_STRING_LEN: u64 = 64 * 1024 * 1024;
const MAX_ARRAY_DEPTH: u32 = 8;
/// ggml tensors have at most four dimensions.
const MAX_DIMS: u32 = 4;
const DEFAULT_ALIGNMENT: u64 = 32;
/// Minimum bytes of one key/value pair (8-byte key length, 4-byte type, 1 byte).
const MIN_KV_LEN: u64 = 13;
/// Minimum bytes of one tensor info (name length, dims count, type, offset).
const MIN_TENSOR_INFO_LEN: u64 = 24;

/// Why parsing stopped before a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The bytes so far end inside the header; at least this many bytes from the
    /// start of the file are needed.
    Incomplete { needed_len: u64 },
    /// The file is not a valid GGUF file.
    Invalid(String),
}

type Step<T> = Result<T, Stop>;

fn invalid<T>(problem: impl Into<String>) -> Step<T> {
    Err(Stop::Invalid(problem.into()))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: u64,
    /// How long the whole file is, when known: nothing may claim to extend past it.
    file_len: Option<u64>,
}

impl<'a> Cursor<'a> {
    fn buffered(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Bytes that exist after the cursor: the file's rest when its length is known.
    fn remaining_in_file(&self) -> u64 {
        self.file_len.unwrap_or(u64::MAX).saturating_sub(self.pos)
    }

    fn take(&mut self, len: u64, what: &str) -> Step<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .ok_or_else(|| Stop::Invalid(format!("{what} is impossibly long")))?;
        if let Some(file_len) = self.file_len {
            if end > file_len {
                return invalid(format!(
                    "{what} at byte {} needs {len} bytes but the file ends at byte {file_len}",
                    self.pos
                ));
            }
        }
        if end > self.buffered() {
            return Err(Stop::Incomplete { needed_len: end });
        }
        // Both bounds are at most `bytes.len()`, so they fit in usize.
        let slice = self
            .bytes
            .get(
                usize::try_from(self.pos).unwrap_or(usize::MAX)
                    ..usize::try_from(end).unwrap_or(usize::MAX),
            )
            .ok_or(Stop::Incomplete { needed_len: end })?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Step<[u8; N]> {
        let slice = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Step<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Step<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, max_len: u64, what: &str) -> Step<String> {
        let len = self.u64(what)?;
        if len > max_len {
            return invalid(format!(
                "{what} claims {len} bytes (the limit is {max_len})"
            ));
        }
        let bytes = self.take(len, what)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// A count of items, each at least `min_item_len` bytes: refused if the items
    /// could not fit in the rest of the file.
    fn count(&mut self, min_item_len: u64, what: &str) -> Step<u64> {
        let count = self.u64(what)?;
        let needed = count.checked_mul(min_item_len);
        if needed.is_none_or(|needed| needed > self.remaining_in_file()) {
            return invalid(format!(
                "{what} is {count}, more than the {} bytes left in the file can hold",
                self.remaining_in_file()
            ));
        }
        Ok(count)
    }

    /// Room to reserve for `count` items: never more than the bytes in memory allow.
    fn capacity_for(&self, count: u64, min_item_len: u64) -> usize {
        let in_memory = self.buffered().saturating_sub(self.pos) / min_item_len.max(1);
        usize::try_from(count.min(in_memory)).unwrap_or(0)
    }

    fn value(&mut self, ty: ValueType, depth: u32, key: &str) -> Step<Value> {
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.array(key)?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(key)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            ValueType::U32 => Value::U32(self.u32(key)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            ValueType::U64 => Value::U64(self.u64(key)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            ValueType::Bool => match self.array::<1>(key)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                other => return invalid(format!("`{key}` holds {other}, which is not a boolean")),
            },
            ValueType::String => Value::String(self.string(MAX_STRING_LEN, key)?),
            ValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return invalid(format!(
                        "`{key}` nests arrays deeper than {MAX_ARRAY_DEPTH} levels"
                    ));
                }
                let item_type = self.value_type(key)?;
                let count = self.count(
                    item_type.min_encoded_len(),
                    &format!("the length of `{key}`"),
                )?;
                if let Some(width) = item_type.fixed_width() {
                    return self.packed_array(item_type, width, count, key);
                }
                let mut items =
                    Vec::with_capacity(self.capacity_for(count, item_type.min_encoded_len()));
                for _ in 0..count {
                    items.push(self.value(item_type, depth + 1, key)?);
                }
                Value::Array(items)
            }
        })
    }

    /// Numbers or booleans kept as the file's bytes: as much memory as the file
    /// holds, not a `Value` per byte.
    fn packed_array(
        &mut self,
        item_type: ValueType,
        width: usize,
        count: u64,
        key: &str,
    ) -> Step<Value> {
        let len = count
            .checked_mul(width as u64)
            .ok_or_else(|| Stop::Invalid(format!("`{key}` is impossibly long")))?;
        let bytes = self.take(len, key)?;
        PackedArray::new(item_type, bytes.to_vec()).map_or_else(
            || invalid(format!("`{key}` holds a value that is not a boolean")),
            |packed| Ok(Value::Packed(packed)),
        )
    }

    fn value_type(&mut self, key: &str) -> Step<ValueType> {
        let id = self.u32(key)?;
        ValueType::from_id(id).map_or_else(
            || invalid(format!("`{key}` has unknown value type {id}")),
            Ok,
        )
    }
}

/// Parses the header from the first bytes of a file. `file_len` is the whole file's
/// length when known (a local file, or a server that reported it).
pub fn parse(bytes: &[u8], file_len: Option<u64>) -> Result<GgufFile, Stop> {
    let mut cursor = Cursor {
        bytes,
        pos: 0,
        file_len,
    };
    if cursor.take(4, "the magic number")? != MAGIC {
        let found = bytes.get(..4).unwrap_or_default();
        return invalid(format!(
            "this is not a GGUF file (it starts with {:?}, not \"GGUF\")",
            String::from_utf8_lossy(found)
        ));
    }
    let version = cursor.u32("the version")?;
    match version {
        2 | 3 => {}
        1 => {
            return invalid(
                "GGUF version 1 is obsolete; convert the model again with a current llama.cpp",
            )
        }
        v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => return invalid(
            "big-endian GGUF files are not supported; use the little-endian release of this model",
        ),
        v => {
            return invalid(format!(
                "GGUF version {v} is newer than this Switchyard understands"
            ))
        }
    }
    let tensor_count = cursor.count(MIN_TENSOR_INFO_LEN, "the tensor count")?;
    let kv_count = cursor.count(MIN_KV_LEN, "the metadata count")?;

    let mut metadata = Vec::with_capacity(cursor.capacity_for(kv_count, MIN_KV_LEN));
    let mut seen = HashSet::new();
    for _ in 0..kv_count {
        let key = cursor.string(MAX_NAME_LEN, "a metadata key")?;
        let ty = cursor.value_type(&key)?;
        let value = cursor.value(ty, 0, &key)?;
        if !seen.insert(key.clone()) {
            return invalid(format!("the metadata key `{key}` appears twice"));
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(key, _)| key == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, value)) => match value.as_u64() {
            Some(align) if align.is_power_of_two() => align,
            _ => {
                return invalid(format!(
                    "general.alignment is {value:?}, not a power of two"
                ))
            }
        },
    };

    let mut tensors = Vec::with_capacity(cursor.capacity_for(tensor_count, MIN_TENSOR_INFO_LEN));
    let mut names = HashSet::new();
    for _ in 0..tensor_count {
        let tensor = tensor_info(&mut cursor, alignment)?;
        if !names.insert(tensor.name.clone()) {
            return invalid(format!("the tensor `{}` appears twice", tensor.name));
        }
        tensors.push(tensor);
    }

    let header_len = cursor.pos;
    let data_offset = header_len.div_ceil(alignment).saturating_mul(alignment);
    if let Some(file_len) = file_len {
        for tensor in &tensors {
            let end = data_offset
                .checked_add(tensor.offset)
                .and_then(|start| start.checked_add(tensor.bytes));
            if end.is_none_or(|end| end > file_len) {
                return invalid(format!(
                    "the data of tensor `{}` is not within the file ({file_len} bytes): the file is incomplete or corrupted",
                    tensor.name
                ));
            }
        }
    }
    Ok(GgufFile {
        version,
        metadata,
        tensors,
        alignment,
        header_len,
        data_offset,
        file_len,
    })
}

fn tensor_info(cursor: &mut Cursor<'_>, alignment: u64) -> Step<TensorInfo> {
    let name = cursor.string(MAX_NAME_LEN, "a tensor name")?;
    let n_dims = cursor.u32(&name)?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return invalid(format!(
            "tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"
        ));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(cursor.u64(&name)?);
    }
    let type_id = cursor.u32(&name)?;
    let Some(ggml_type) = GgmlType::from_id(type_id) else {
        return invalid(format!("tensor `{name}` has unknown type {type_id}"));
    };
    let offset = cursor.u64(&name)?;
    let elements = dims
        .iter()
        .try_fold(1u64, |product, &dim| product.checked_mul(dim))
        .ok_or_else(|| {
            Stop::Invalid(format!("tensor `{name}` has more elements than can exist"))
        })?;
    if dims[0] % u64::from(ggml_type.block_elements) != 0 {
        return invalid(format!(
            "tensor `{name}` has a row of {} values, not a multiple of {}'s block of {}",
            dims[0], ggml_type.name, ggml_type.block_elements
        ));
    }
    let Some(bytes) = ggml_type.bytes_for(elements) else {
        return invalid(format!("tensor `{name}` is too large"));
    };
    if offset % alignment != 0 {
        return invalid(format!(
            "tensor `{name}` starts at offset {offset}, not a multiple of {alignment}"
        ));
    }
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
        elements,
        bytes,
    })
}
