//! A small, strict safetensors reader and writer.
//!
//! Format: 8-byte little-endian header length `n`, then `n` bytes of UTF-8 JSON mapping tensor
//! names to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the data
//! section that follows the header), plus an optional `"__metadata__"` map of strings.
//! F32, F16 and BF16 tensors are converted to `f32`; every other dtype is rejected.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Largest header accepted (the reference implementation uses the same 100 MB cap).
const MAX_HEADER: u64 = 100_000_000;

/// A dense f32 tensor in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values in C order.
    pub data: Vec<f32>,
}

impl Tensor {
    /// Builds a tensor, checking that `data` has as many values as `shape` implies.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Option<Self> {
        (shape.iter().product::<usize>() == data.len()).then_some(Tensor { shape, data })
    }
}

/// Tensors by name, sorted by name.
pub type TensorMap = BTreeMap<String, Tensor>;

/// Floating-point storage dtypes this module reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16 (upper half of a binary32).
    BF16,
}

impl Dtype {
    /// The safetensors dtype string (`"F32"`, `"F16"`, `"BF16"`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
        }
    }

    /// Parses a safetensors dtype string; `None` for dtypes this module does not convert.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "F32" => Some(Dtype::F32),
            "F16" => Some(Dtype::F16),
            "BF16" => Some(Dtype::BF16),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
        }
    }

    /// Encodes `data` little-endian in this dtype (round to nearest even for F16/BF16).
    pub fn encode(self, data: &[f32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() * self.size());
        for &x in data {
            match self {
                Dtype::F32 => out.extend_from_slice(&x.to_le_bytes()),
                Dtype::F16 => out.extend_from_slice(&half::f16::from_f32(x).to_le_bytes()),
                Dtype::BF16 => out.extend_from_slice(&half::bf16::from_f32(x).to_le_bytes()),
            }
        }
        out
    }

    /// Decodes little-endian bytes of this dtype to f32 (`bytes.len()` must be a multiple of
    /// [`Dtype::size`]).
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        }
    }
}

/// Reads a safetensors file and converts every tensor to f32.
pub fn read_safetensors(path: &Path) -> Result<TensorMap> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_safetensors(&bytes, path)
}

/// Parses safetensors bytes; `path` is only used in error messages.
pub fn parse_safetensors(bytes: &[u8], path: &Path) -> Result<TensorMap> {
    let bad = |reason: String| Error::Safetensors {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < 8 {
        return Err(bad(format!(
            "file is {} bytes, too short for the 8-byte header length",
            bytes.len()
        )));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let rest = (bytes.len() - 8) as u64;
    if n > MAX_HEADER || n > rest {
        return Err(bad(format!(
            "header length {n} exceeds the {rest} bytes after it"
        )));
    }
    let header_end = 8 + n as usize;
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..header_end])
        .map_err(|e| bad(format!("header is not a JSON object: {e}")))?;
    let data = &bytes[header_end..];

    let mut out = TensorMap::new();
    for (name, entry) in &header {
        if name == "__metadata__" {
            continue;
        }
        let entry = entry
            .as_object()
            .ok_or_else(|| bad(format!("tensor `{name}`: header entry is not an object")))?;
        let dtype_str = entry
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("tensor `{name}`: missing or non-string `dtype`")))?;
        let shape = entry
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                    .collect::<Option<Vec<usize>>>()
            })
            .ok_or_else(|| {
                bad(format!(
                    "tensor `{name}`: `shape` is not a list of integers"
                ))
            })?;
        let offsets = entry
            .get("data_offsets")
            .and_then(Value::as_array)
            .filter(|a| a.len() == 2)
            .and_then(|a| Some([a[0].as_u64()?, a[1].as_u64()?]))
            .ok_or_else(|| {
                bad(format!(
                    "tensor `{name}`: `data_offsets` is not a pair of integers"
                ))
            })?;
        let dtype = Dtype::from_name(dtype_str).ok_or_else(|| Error::UnsupportedDtype {
            tensor: name.clone(),
            dtype: dtype_str.to_string(),
        })?;
        let [begin, end] = offsets;
        if begin > end || end > data.len() as u64 {
            return Err(bad(format!(
                "tensor `{name}`: data_offsets [{begin}, {end}] out of range (data section is {} bytes)",
                data.len()
            )));
        }
        let numel = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad(format!("tensor `{name}`: shape {shape:?} overflows")))?;
        let need = numel as u128 * dtype.size() as u128;
        if need != (end - begin) as u128 {
            return Err(bad(format!(
                "tensor `{name}`: shape {shape:?} of {dtype_str} needs {need} bytes but data_offsets [{begin}, {end}] span {}",
                end - begin
            )));
        }
        let values = dtype.decode(&data[begin as usize..end as usize]);
        out.insert(
            name.clone(),
            Tensor {
                shape,
                data: values,
            },
        );
    }
    Ok(out)
}

/// One tensor as raw bytes, for writing files with any dtype string (including ones the reader
/// rejects, which is how the error tests build broken checkpoints).
#[derive(Debug, Clone)]
pub struct RawTensor {
    /// Tensor name.
    pub name: String,
    /// Dtype string written to the header.
    pub dtype: String,
    /// Shape written to the header.
    pub shape: Vec<usize>,
    /// Little-endian payload.
    pub bytes: Vec<u8>,
}

/// Serializes raw tensors into safetensors bytes (header padded with spaces to 8 bytes,
/// `{"format": "pt"}` metadata, tensors in the given order).
pub fn serialize_raw(tensors: &[RawTensor]) -> Vec<u8> {
    let mut header = Map::new();
    let mut meta = Map::new();
    meta.insert("format".into(), Value::String("pt".into()));
    header.insert("__metadata__".into(), Value::Object(meta));
    let mut offset = 0usize;
    for t in tensors {
        let mut e = Map::new();
        e.insert("dtype".into(), Value::String(t.dtype.clone()));
        e.insert("shape".into(), Value::from(t.shape.clone()));
        e.insert(
            "data_offsets".into(),
            Value::from(vec![offset, offset + t.bytes.len()]),
        );
        offset += t.bytes.len();
        header.insert(t.name.clone(), Value::Object(e));
    }
    let mut h = serde_json::to_vec(&Value::Object(header)).expect("JSON map serializes");
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + offset);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    for t in tensors {
        out.extend_from_slice(&t.bytes);
    }
    out
}

/// Writes `tensors` to `path` in `dtype` (values are rounded for F16/BF16).
pub fn write_safetensors(path: &Path, tensors: &TensorMap, dtype: Dtype) -> Result<()> {
    let raw: Vec<RawTensor> = tensors
        .iter()
        .map(|(name, t)| RawTensor {
            name: name.clone(),
            dtype: dtype.name().to_string(),
            shape: t.shape.clone(),
            bytes: dtype.encode(&t.data),
        })
        .collect();
    std::fs::write(path, serialize_raw(&raw)).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("x.safetensors")
    }

    #[test]
    fn round_trip_all_dtypes() {
        let mut m = TensorMap::new();
        m.insert(
            "a".into(),
            Tensor::new(vec![2, 2], vec![1.0, -2.5, 0.125, 3.0]).unwrap(),
        );
        for dt in [Dtype::F32, Dtype::F16, Dtype::BF16] {
            let raw: Vec<RawTensor> = m
                .iter()
                .map(|(n, t)| RawTensor {
                    name: n.clone(),
                    dtype: dt.name().into(),
                    shape: t.shape.clone(),
                    bytes: dt.encode(&t.data),
                })
                .collect();
            let back = parse_safetensors(&serialize_raw(&raw), p()).unwrap();
            assert_eq!(back, m, "{dt:?}");
        }
    }

    #[test]
    fn rejects_bad_files() {
        let err = parse_safetensors(&[1, 2, 3], p()).unwrap_err().to_string();
        assert_eq!(
            err,
            "x.safetensors: invalid safetensors file: file is 3 bytes, too short for the 8-byte header length"
        );
        let mut b = 1000u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        let err = parse_safetensors(&b, p()).unwrap_err().to_string();
        assert_eq!(
            err,
            "x.safetensors: invalid safetensors file: header length 1000 exceeds the 2 bytes after it"
        );
        let mut b = 3u64.to_le_bytes().to_vec();
        b.extend_from_slice(b"[1]");
        let err = parse_safetensors(&b, p()).unwrap_err().to_string();
        assert!(
            err.starts_with("x.safetensors: invalid safetensors file: header is not a JSON object"),
            "{err}"
        );

        let raw = RawTensor {
            name: "w".into(),
            dtype: "F32".into(),
            shape: vec![3],
            bytes: vec![0; 8],
        };
        let err = parse_safetensors(&serialize_raw(std::slice::from_ref(&raw)), p())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "x.safetensors: invalid safetensors file: tensor `w`: shape [3] of F32 needs 12 bytes but data_offsets [0, 8] span 8");

        let mut bytes = serialize_raw(&[RawTensor {
            shape: vec![2],
            ..raw.clone()
        }]);
        bytes.truncate(bytes.len() - 4);
        let err = parse_safetensors(&bytes, p()).unwrap_err().to_string();
        assert_eq!(err, "x.safetensors: invalid safetensors file: tensor `w`: data_offsets [0, 8] out of range (data section is 4 bytes)");

        let err = parse_safetensors(
            &serialize_raw(&[RawTensor {
                dtype: "I64".into(),
                shape: vec![1],
                ..raw
            }]),
            p(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "tensor `w`: unsupported dtype I64 (supported: F32, F16, BF16)"
        );
    }
}
