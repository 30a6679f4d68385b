//! GGUF metadata values.

use serde::{Serialize, Serializer};

/// One metadata value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    /// An array of strings or of arrays.
    Array(Vec<Value>),
    /// An array of numbers or booleans, as the file's bytes.
    Packed(PackedArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// The on-disk value type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::U8,
            1 => Self::I8,
            2 => Self::U16,
            3 => Self::I16,
            4 => Self::U32,
            5 => Self::I32,
            6 => Self::F32,
            7 => Self::Bool,
            8 => Self::String,
            9 => Self::Array,
            10 => Self::U64,
            11 => Self::I64,
            12 => Self::F64,
            _ => return None,
        })
    }

    /// The bytes of one value of a fixed-width type (numbers and booleans).
    pub fn fixed_width(self) -> Option<usize> {
        match self {
            Self::U8 | Self::I8 | Self::Bool => Some(1),
            Self::U16 | Self::I16 => Some(2),
            Self::U32 | Self::I32 | Self::F32 => Some(4),
            Self::U64 | Self::I64 | Self::F64 => Some(8),
            Self::String | Self::Array => None,
        }
    }

    /// The fewest bytes one value of this type takes on disk (a string is at least
    /// its 8-byte length; an array at least its type and count).
    pub fn min_encoded_len(self) -> u64 {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            Self::Array => 12,
        }
    }
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(u64::from(v)),
            Self::U16(v) => Some(u64::from(v)),
            Self::U32(v) => Some(u64::from(v)),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(text) => Some(text),
            _ => None,
        }
    }

    /// The items of an array of strings or arrays (a packed array of numbers is
    /// read with [`Value::array_len`] and [`Value::array_item`]).
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    /// An array of `items`, packed when they are numbers or booleans of one type
    /// (the form the parser gives them).
    pub fn array(items: Vec<Value>) -> Self {
        PackedArray::from_values(&items).map_or(Self::Array(items), Self::Packed)
    }

    /// How many items an array holds, packed or not.
    pub fn array_len(&self) -> Option<usize> {
        match self {
            Self::Array(items) => Some(items.len()),
            Self::Packed(packed) => Some(packed.len()),
            _ => None,
        }
    }

    /// Item `index` of an array, packed or not.
    pub fn array_item(&self, index: usize) -> Option<Value> {
        match self {
            Self::Array(items) => items.get(index).cloned(),
            Self::Packed(packed) => packed.get(index),
            _ => None,
        }
    }

    /// The largest non-negative integer item of an array.
    pub fn max_u64_item(&self) -> Option<u64> {
        match self {
            Self::Array(items) => items.iter().filter_map(Self::as_u64).max(),
            Self::Packed(packed) => packed.iter().filter_map(|item| item.as_u64()).max(),
            _ => None,
        }
    }
}

/// An array of fixed-width items kept as their little-endian bytes. A header may
/// declare 10^8 one-byte items in 100 MB; as one `Value` each they would take
/// 32 times that.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedArray {
    item_type: ValueType,
    bytes: Vec<u8>,
}

impl PackedArray {
    /// `None` unless `item_type` is fixed-width, `bytes` holds whole items and
    /// every boolean is 0 or 1.
    pub fn new(item_type: ValueType, bytes: Vec<u8>) -> Option<Self> {
        let width = item_type.fixed_width()?;
        if !bytes.len().is_multiple_of(width) {
            return None;
        }
        if item_type == ValueType::Bool && bytes.iter().any(|&byte| byte > 1) {
            return None;
        }
        Some(Self { item_type, bytes })
    }

    /// Packs `items` if they are all numbers or booleans of one type.
    pub fn from_values(items: &[Value]) -> Option<Self> {
        let item_type = items.first()?.fixed_type()?;
        let mut bytes = Vec::with_capacity(items.len() * item_type.fixed_width()?);
        for item in items {
            if item.fixed_type() != Some(item_type) {
                return None;
            }
            item.write_fixed(&mut bytes);
        }
        Some(Self { item_type, bytes })
    }

    pub fn item_type(&self) -> ValueType {
        self.item_type
    }

    /// The items as the file holds them (little-endian).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len() / self.width()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<Value> {
        let width = self.width();
        let start = index.checked_mul(width)?;
        let item = self.bytes.get(start..start.checked_add(width)?)?;
        decode_fixed(self.item_type, item)
    }

    pub fn iter(&self) -> impl Iterator<Item = Value> + '_ {
        self.bytes
            .chunks_exact(self.width())
            .filter_map(|item| decode_fixed(self.item_type, item))
    }

    fn width(&self) -> usize {
        self.item_type.fixed_width().unwrap_or(1)
    }
}

impl Serialize for PackedArray {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl Value {
    fn fixed_type(&self) -> Option<ValueType> {
        Some(match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::F32(_) => ValueType::F32,
            Self::Bool(_) => ValueType::Bool,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F64(_) => ValueType::F64,
            Self::String(_) | Self::Array(_) | Self::Packed(_) => return None,
        })
    }

    fn write_fixed(&self, out: &mut Vec<u8>) {
        match self {
            Self::U8(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::Bool(v) => out.push(u8::from(*v)),
            Self::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::String(_) | Self::Array(_) | Self::Packed(_) => {}
        }
    }
}

/// One fixed-width item from its little-endian bytes (`item` is exactly its width).
fn decode_fixed(item_type: ValueType, item: &[u8]) -> Option<Value> {
    fn le<const N: usize>(item: &[u8]) -> Option<[u8; N]> {
        item.try_into().ok()
    }
    Some(match item_type {
        ValueType::U8 => Value::U8(u8::from_le_bytes(le(item)?)),
        ValueType::I8 => Value::I8(i8::from_le_bytes(le(item)?)),
        ValueType::U16 => Value::U16(u16::from_le_bytes(le(item)?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(le(item)?)),
        ValueType::U32 => Value::U32(u32::from_le_bytes(le(item)?)),
        ValueType::I32 => Value::I32(i32::from_le_bytes(le(item)?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(le(item)?)),
        ValueType::Bool => Value::Bool(le::<1>(item)?[0] != 0),
        ValueType::U64 => Value::U64(u64::from_le_bytes(le(item)?)),
        ValueType::I64 => Value::I64(i64::from_le_bytes(le(item)?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(le(item)?)),
        ValueType::String | ValueType::Array => return None,
    })
}
