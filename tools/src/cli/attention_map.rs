//! `simulate --attention-map OUT.png [--layer L] [--head H|mean]`: where the class token looks.
//!
//! For the first input image of a ViT (or the encoder of the encoder–decoder): the attention
//! probabilities of the CLS query over the patch tokens (the CLS→CLS weight is left out) from
//! the f32 reference, for one head or the mean over heads, drawn over the image:
//! - the image in grey (channel mean, min–max stretched to 0..255);
//! - each patch tinted red in proportion to its weight divided by the largest patch weight
//!   (`out = grey·(1 − 0.6·a) + (255, 0, 0)·0.6·a`, `a` in `[0, 1]`);
//! - every pixel upscaled ×[`SCALE`] (nearest neighbour), an RGB 8-bit PNG.
//!
//! The file is written atomically (temporary file + rename), so a failed run leaves an
//! existing file untouched.

use std::path::Path;

use crate::cli::convert::write_atomic;
use crate::error::{Error, Result};
use crate::model::VitEncoder;

/// Upscaling factor of the picture.
pub const SCALE: usize = 8;

/// Which head(s) to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The mean over heads.
    Mean,
    /// One head.
    One(usize),
}

impl std::str::FromStr for Head {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "mean" {
            return Ok(Head::Mean);
        }
        s.parse::<usize>()
            .map(Head::One)
            .map_err(|_| format!("expected a head index or `mean`, found {s:?}"))
    }
}

/// CLS→patch weights `[grid rows * grid cols]` of `layer` (default: the last) for `head`.
pub fn cls_attention(
    enc: &VitEncoder,
    image: &[f32],
    layer: Option<usize>,
    head: Head,
) -> Result<Vec<f32>> {
    let cfg = &enc.config;
    let layer = layer.unwrap_or(cfg.num_layers - 1);
    if layer >= cfg.num_layers {
        return Err(Error::Input(format!(
            "--layer {layer} out of range (model has {} layers)",
            cfg.num_layers
        )));
    }
    if let Head::One(h) = head {
        if h >= cfg.num_heads {
            return Err(Error::Input(format!(
                "--head {h} out of range (model has {} heads)",
                cfg.num_heads
            )));
        }
    }
    let out = crate::float::vit::encode(enc, image, Some(layer))?;
    let probs = out
        .attentions
        .ok_or_else(|| Error::Input("no attention probabilities".into()))?;
    let t = cfg.seq_len();
    let heads: Vec<usize> = match head {
        Head::Mean => (0..cfg.num_heads).collect(),
        Head::One(h) => vec![h],
    };
    let mut w = vec![0.0f32; t - 1];
    for &h in &heads {
        let row = &probs[h * t * t..][..t];
        for (o, &p) in w.iter_mut().zip(&row[1..]) {
            *o += p / heads.len() as f32;
        }
    }
    Ok(w)
}

/// RGB pixels `[H·SCALE][W·SCALE][3]` of the picture described in the module docs.
pub fn render(enc: &VitEncoder, image: &[f32], weights: &[f32]) -> (usize, usize, Vec<u8>) {
    let cfg = &enc.config;
    let (c, (h, w)) = (cfg.num_channels, cfg.image_size);
    let (ph, pw) = cfg.patch_size;
    let (_, gc) = cfg.grid();
    let grey: Vec<f32> = (0..h * w)
        .map(|i| (0..c).map(|ch| image[ch * h * w + i]).sum::<f32>() / c as f32)
        .collect();
    let lo = grey.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = grey.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let wmax = weights.iter().copied().fold(0.0f32, f32::max);
    let (oh, ow) = (h * SCALE, w * SCALE);
    let mut px = Vec::with_capacity(oh * ow * 3);
    for y in 0..oh {
        for x in 0..ow {
            let (iy, ix) = (y / SCALE, x / SCALE);
            let g = (grey[iy * w + ix] - lo) / span * 255.0;
            let a = if wmax > 0.0 {
                0.6 * weights[(iy / ph) * gc + ix / pw] / wmax
            } else {
                0.0
            };
            let mix = |tint: f32| (g * (1.0 - a) + tint * a).round().clamp(0.0, 255.0) as u8;
            px.extend([mix(255.0), mix(0.0), mix(0.0)]);
        }
    }
    (ow, oh, px)
}

/// Draws and writes the attention map of `image` to `path` (atomically).
pub fn write(
    path: &Path,
    enc: &VitEncoder,
    image: &[f32],
    layer: Option<usize>,
    head: Head,
) -> Result<()> {
    let weights = cls_attention(enc, image, layer, head)?;
    let (w, h, px) = render(enc, image, &weights);
    let mut bytes = Vec::new();
    {
        let mut e = png::Encoder::new(&mut bytes, w as u32, h as u32);
        e.set_color(png::ColorType::Rgb);
        e.set_depth(png::BitDepth::Eight);
        let png_err = |e: png::EncodingError| Error::Image {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut wr = e.write_header().map_err(png_err)?;
        wr.write_image_data(&px).map_err(png_err)?;
    }
    write_atomic(path, &bytes)
}
