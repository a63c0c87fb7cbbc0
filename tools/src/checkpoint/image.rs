//! Image reader: binary (P5) and ASCII (P2) PGM, and PNG (via the `png` crate).
//!
//! Pixels come back as f32 in `[0, 1]` (value / max value), channel-major (`[C, H, W]`).
//! Alpha channels are dropped; palette PNGs are expanded to RGB; 16-bit samples keep full
//! precision for PGM and are reduced to 8 bits for PNG.

use std::path::Path;

use crate::error::{Error, Result};

/// Largest pixel count a PGM may declare (2^28): larger headers are rejected before any
/// size arithmetic or allocation.
const MAX_PIXELS: usize = 1 << 28;

/// A decoded image, pixels in `[0, 1]`, `[channels, height, width]` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `channels * height * width` values in `[0, 1]`, channel-major.
    pub data: Vec<f32>,
}

/// True if `bytes` look like a PGM or PNG file.
pub fn is_image(bytes: &[u8]) -> bool {
    bytes.starts_with(b"P5") || bytes.starts_with(b"P2") || bytes.starts_with(b"\x89PNG")
}

/// Reads a PGM or PNG file, chosen by its magic bytes.
pub fn read_image(path: &Path) -> Result<Image> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_image(&bytes, path)
}

/// Decodes PGM or PNG bytes; `path` is only used in error messages.
pub fn parse_image(bytes: &[u8], path: &Path) -> Result<Image> {
    let bad = |reason: String| Error::Image {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.starts_with(b"P5") || bytes.starts_with(b"P2") {
        parse_pgm(bytes).map_err(bad)
    } else if bytes.starts_with(b"\x89PNG") {
        parse_png(bytes).map_err(bad)
    } else {
        Err(bad("not a PGM (P2/P5) or PNG file".into()))
    }
}

fn parse_pgm(bytes: &[u8]) -> std::result::Result<Image, String> {
    let ascii = bytes.starts_with(b"P2");
    // Header: magic, width, height, maxval, separated by whitespace, `#` comments to end of line.
    let mut pos = 2;
    let mut fields = [0usize; 3];
    for (i, name) in ["width", "height", "maxval"].iter().enumerate() {
        loop {
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos < bytes.len() && bytes[pos] == b'#' {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
            } else {
                break;
            }
        }
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        fields[i] = std::str::from_utf8(&bytes[start..pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("malformed PGM header ({name})"))?;
    }
    let [width, height, maxval] = fields;
    if width == 0 || height == 0 || maxval == 0 || maxval > 65535 {
        return Err(format!(
            "unsupported PGM dimensions {width}x{height} / maxval {maxval}"
        ));
    }
    let n = width
        .checked_mul(height)
        .filter(|&n| n <= MAX_PIXELS)
        .ok_or_else(|| format!("PGM dimensions {width}x{height} are too large"))?;
    let scale = 1.0 / maxval as f32;
    let data: Vec<f32> = if ascii {
        let text = std::str::from_utf8(&bytes[pos..]).map_err(|_| "non-ASCII P2 data")?;
        let v = text
            .split_ascii_whitespace()
            .take(n)
            .map(|t| t.parse::<u32>().map(|x| x as f32 * scale))
            .collect::<std::result::Result<Vec<f32>, _>>()
            .map_err(|_| "malformed P2 pixel value".to_string())?;
        if v.len() != n {
            return Err(format!("P2 data has {} pixels, expected {n}", v.len()));
        }
        v
    } else {
        // Exactly one whitespace byte after maxval.
        let body = bytes.get(pos + 1..).unwrap_or(&[]);
        let bpp = if maxval > 255 { 2 } else { 1 };
        if body.len() < n * bpp {
            return Err(format!(
                "P5 data is {} bytes, expected {}",
                body.len(),
                n * bpp
            ));
        }
        if bpp == 1 {
            body[..n].iter().map(|&b| b as f32 * scale).collect()
        } else {
            body[..2 * n]
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]) as f32 * scale)
                .collect()
        }
    };
    if data.iter().any(|&x| x > 1.0) {
        return Err(format!("pixel value above maxval {maxval}"));
    }
    Ok(Image {
        channels: 1,
        height,
        width,
        data,
    })
}

fn parse_png(bytes: &[u8]) -> std::result::Result<Image, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    // Check the declared size before allocating: a 40-byte header can claim 2^32 × 2^32 pixels.
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    if w.checked_mul(h).is_none_or(|n| n > MAX_PIXELS) {
        return Err(format!(
            "{w}x{h} pixels exceeds the limit of {MAX_PIXELS} pixels"
        ));
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let (width, height) = (info.width as usize, info.height as usize);
    let (src_channels, channels) = match info.color_type {
        png::ColorType::Grayscale => (1, 1),
        png::ColorType::GrayscaleAlpha => (2, 1),
        png::ColorType::Rgb => (3, 3),
        png::ColorType::Rgba => (4, 3),
        png::ColorType::Indexed => return Err("indexed PNG was not expanded".into()),
    };
    let mut data = vec![0f32; channels * height * width];
    for y in 0..height {
        let row = &buf[y * info.line_size..];
        for x in 0..width {
            for c in 0..channels {
                data[(c * height + y) * width + x] = row[x * src_channels + c] as f32 / 255.0;
            }
        }
    }
    Ok(Image {
        channels,
        height,
        width,
        data,
    })
}

/// Writes a binary 8-bit PGM (values clamped to `[0, 1]` and scaled to 0..=255).
pub fn write_pgm(path: &Path, width: usize, height: usize, pixels: &[f32]) -> Result<()> {
    assert_eq!(pixels.len(), width * height, "pixel count");
    let mut out = format!("P5\n{width} {height}\n255\n").into_bytes();
    out.extend(
        pixels
            .iter()
            .map(|&p| (p.clamp(0.0, 1.0) * 255.0).round() as u8),
    );
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRC-32 (IEEE), bit by bit: enough to build a valid PNG chunk in a test.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    /// Regression (fuzz/regressions/npy_image/png-huge-ihdr-*): a PNG header that claims a
    /// gigantic image must be refused before the decoder's buffer is allocated.
    #[test]
    fn png_claiming_a_huge_image_is_refused_before_allocating() {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&0x0100_0000u32.to_be_bytes()); // width 2^24
        ihdr.extend_from_slice(&0x0100_0000u32.to_be_bytes()); // height 2^24
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        // An (empty) IDAT chunk: the decoder reads the header up to the first image data.
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IDAT");
        png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
        let err = parse_png(&png).unwrap_err();
        assert_eq!(
            err,
            format!("16777216x16777216 pixels exceeds the limit of {MAX_PIXELS} pixels")
        );
    }

    #[test]
    fn pgm_binary_and_ascii() {
        let p = Path::new("i.pgm");
        let img = parse_image(b"P5\n# c\n2 1\n255\n\x00\xff", p).unwrap();
        assert_eq!((img.channels, img.height, img.width), (1, 1, 2));
        assert_eq!(img.data, vec![0.0, 1.0]);
        let img = parse_image(b"P2 2 2 4\n0 1\n2 4\n", p).unwrap();
        assert_eq!(img.data, vec![0.0, 0.25, 0.5, 1.0]);
        let e = parse_image(b"P5 2 2 255\n\x00", p).unwrap_err().to_string();
        assert_eq!(e, "i.pgm: invalid image: P5 data is 1 bytes, expected 4");
    }

    #[test]
    fn png_rgb() {
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, 2, 1);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&[255, 0, 0, 0, 0, 255]).unwrap();
        }
        let img = parse_image(&bytes, Path::new("i.png")).unwrap();
        assert_eq!((img.channels, img.height, img.width), (3, 1, 2));
        assert_eq!(img.data, vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    }
}
