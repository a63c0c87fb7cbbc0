//! `.npy` reader and writer for the two dtypes the tools exchange with NumPy:
//! little-endian float32 (`<f4`) and int64 (`<i8`), C order, format versions 1.0 to 3.0.

use std::path::Path;

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The values of an `.npy` array.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f4`.
    F32(Vec<f32>),
    /// `<i8`.
    I64(Vec<i64>),
}

/// A C-order array read from or written to an `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Dimensions, outermost first (empty for a scalar).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: NpyData,
}

impl NpyArray {
    /// The dtype as NumPy writes it in the header (`<f4` or `<i8`).
    pub fn descr(&self) -> &'static str {
        match self.data {
            NpyData::F32(_) => "<f4",
            NpyData::I64(_) => "<i8",
        }
    }
}

/// True if `bytes` start with the `.npy` magic string.
pub fn is_npy(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Reads an `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npy(&bytes, path)
}

/// Reads an `.npy` file that must hold float32 values; returns shape and data.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let a = read_npy(path)?;
    match a.data {
        NpyData::F32(v) => Ok((a.shape, v)),
        NpyData::I64(_) => Err(Error::Npy {
            path: path.to_path_buf(),
            reason: "expected dtype float32 (<f4), found int64 (<i8)".into(),
        }),
    }
}

/// Reads an `.npy` file that must hold int64 values; returns shape and data.
pub fn read_npy_i64(path: &Path) -> Result<(Vec<usize>, Vec<i64>)> {
    let a = read_npy(path)?;
    match a.data {
        NpyData::I64(v) => Ok((a.shape, v)),
        NpyData::F32(_) => Err(Error::Npy {
            path: path.to_path_buf(),
            reason: "expected dtype int64 (<i8), found float32 (<f4)".into(),
        }),
    }
}

/// Parses `.npy` bytes; `path` is only used in error messages.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    let bad = |reason: String| Error::Npy {
        path: path.to_path_buf(),
        reason,
    };
    if !is_npy(bytes) || bytes.len() < 10 {
        return Err(bad("missing the \\x93NUMPY magic string".into()));
    }
    let major = bytes[6];
    let (hlen, start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated header".into()));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad(format!("unsupported format version {v}"))),
    };
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("truncated header".into()))?;
    let header =
        std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("header is not text".into()))?;

    let descr = dict_value(header, "descr")
        .and_then(|v| v.strip_prefix('\''))
        .and_then(|v| v.split('\'').next())
        .ok_or_else(|| bad("header has no 'descr'".into()))?;
    let fortran = dict_value(header, "fortran_order")
        .ok_or_else(|| bad("header has no 'fortran_order'".into()))?;
    if fortran.starts_with("True") {
        return Err(bad(
            "Fortran-order arrays are not supported (save with np.ascontiguousarray)".into(),
        ));
    }
    if !fortran.starts_with("False") {
        return Err(bad("malformed 'fortran_order'".into()));
    }
    let shape_src = dict_value(header, "shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .ok_or_else(|| bad("header has no 'shape' tuple".into()))?;
    let shape = shape_src
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| bad(format!("malformed shape ({shape_src})")))?;
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("shape overflows".into()))?;
    let payload = &bytes[end..];
    let need = |size: usize| -> Result<&[u8]> {
        let n = numel
            .checked_mul(size)
            .ok_or_else(|| bad("shape overflows".into()))?;
        if payload.len() < n {
            return Err(bad(format!(
                "data is {} bytes, shape {shape:?} needs {n}",
                payload.len()
            )));
        }
        Ok(&payload[..n])
    };
    let data = match descr {
        "<f4" => NpyData::F32(
            need(4)?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        "<i8" => NpyData::I64(
            need(8)?
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ),
        other => {
            return Err(bad(format!(
                "unsupported dtype '{other}' (supported: '<f4' float32, '<i8' int64)"
            )))
        }
    };
    Ok(NpyArray { shape, data })
}

/// Returns the text after `'key':` in a Python dict literal, leading spaces trimmed.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("'{key}':");
    let i = header.find(&pat)?;
    Some(header[i + pat.len()..].trim_start())
}

/// Serializes an array to `.npy` bytes (format 1.0, header padded to 64 bytes).
pub fn to_npy_bytes(array: &NpyArray) -> Vec<u8> {
    let shape = match array.shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", array.shape[0]),
        _ => format!(
            "({})",
            array
                .shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        array.descr()
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    match &array.data {
        NpyData::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
    out
}

/// Writes a float32 array (`data.len()` must equal the product of `shape`).
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "shape/data mismatch"
    );
    let a = NpyArray {
        shape: shape.to_vec(),
        data: NpyData::F32(data.to_vec()),
    };
    std::fs::write(path, to_npy_bytes(&a)).map_err(|e| Error::io(path, e))
}

/// Writes an int64 array (`data.len()` must equal the product of `shape`).
pub fn write_npy_i64(path: &Path, shape: &[usize], data: &[i64]) -> Result<()> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "shape/data mismatch"
    );
    let a = NpyArray {
        shape: shape.to_vec(),
        data: NpyData::I64(data.to_vec()),
    };
    std::fs::write(path, to_npy_bytes(&a)).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = Path::new("a.npy");
        for a in [
            NpyArray {
                shape: vec![2, 3],
                data: NpyData::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]),
            },
            NpyArray {
                shape: vec![4],
                data: NpyData::I64(vec![1, -2, 3, 1 << 40]),
            },
            NpyArray {
                shape: vec![],
                data: NpyData::F32(vec![7.0]),
            },
        ] {
            let b = to_npy_bytes(&a);
            assert_eq!(
                b.len() % 64,
                (a.shape.iter().product::<usize>()
                    * 4
                    * if matches!(a.data, NpyData::I64(_)) {
                        2
                    } else {
                        1
                    })
                    % 64
            );
            assert_eq!(parse_npy(&b, p).unwrap(), a);
        }
    }

    #[test]
    fn rejects_fortran_and_other_dtypes() {
        let p = Path::new("a.npy");
        let a = NpyArray {
            shape: vec![2, 2],
            data: NpyData::F32(vec![0.0; 4]),
        };
        let b = to_npy_bytes(&a);
        let patch = |from: &[u8], to: &[u8]| {
            let mut out = b.clone();
            let i = out.windows(from.len()).position(|w| w == from).unwrap();
            out[i..i + to.len()].copy_from_slice(to);
            out
        };
        let fb = patch(b"False", b"True ");
        assert_eq!(
            parse_npy(&fb, p).unwrap_err().to_string(),
            "a.npy: invalid .npy file: Fortran-order arrays are not supported (save with np.ascontiguousarray)"
        );
        let bb = patch(b"<f4", b">f4");
        assert_eq!(
            parse_npy(&bb, p).unwrap_err().to_string(),
            "a.npy: invalid .npy file: unsupported dtype '>f4' (supported: '<f4' float32, '<i8' int64)"
        );
    }
}
