//! f64 references of positional encodings and of the ViT patch embedding, written directly from
//! the definitions (no code shared with the fixed-point kernels).

use std::vec;
use std::vec::Vec;

/// `PE[pos][index]` of Vaswani et al. for a model of `width` features:
/// `sin(pos·ω_k)` for even `index = 2k`, `cos(pos·ω_k)` for odd `index = 2k+1`,
/// `ω_k = 1/10000^(2k/width)`.
pub fn sinusoid(pos: u32, index: u32, width: u32) -> f64 {
    let k = (index / 2) as f64;
    let omega = 1.0 / libm::pow(10000.0, 2.0 * k / width as f64);
    let angle = pos as f64 * omega;
    if index % 2 == 0 {
        libm::sin(angle)
    } else {
        libm::cos(angle)
    }
}

/// The whole `[positions][width]` sinusoid table in f64.
pub fn sinusoid_table(positions: usize, width: usize) -> Vec<f64> {
    let mut t = Vec::with_capacity(positions * width);
    for p in 0..positions {
        for i in 0..width {
            t.push(sinusoid(p as u32, i as u32, width as u32));
        }
    }
    t
}

/// A stride-`patch` 2-D convolution with a `patch × patch` kernel and no padding (HF
/// `ViTPatchEmbeddings`), computed as a direct convolution loop.
///
/// `image` is `[channels][height][width]`, `kernel` is `[out][channels][patch][patch]`, `bias` is
/// `[out]`; the result is `[patches][out]` with patches in row-major order
/// (`patch index = oy·(width/patch) + ox`), i.e. the conv output `[out][H/P][W/P]` flattened over
/// space and transposed. Panics on sizes that do not divide (a test helper).
pub fn patch_conv(
    image: &[f64],
    channels: usize,
    height: usize,
    width: usize,
    patch: usize,
    kernel: &[f64],
    bias: &[f64],
) -> Vec<f64> {
    let out = bias.len();
    assert_eq!(image.len(), channels * height * width);
    assert_eq!(kernel.len(), out * channels * patch * patch);
    assert!(height % patch == 0 && width % patch == 0);
    let (gh, gw) = (height / patch, width / patch);
    let mut y = vec![0.0; gh * gw * out];
    for o in 0..out {
        for oy in 0..gh {
            for ox in 0..gw {
                let mut s = bias[o];
                for c in 0..channels {
                    for ky in 0..patch {
                        for kx in 0..patch {
                            let iy = oy * patch + ky;
                            let ix = ox * patch + kx;
                            s += image[(c * height + iy) * width + ix]
                                * kernel[((o * channels + c) * patch + ky) * patch + kx];
                        }
                    }
                }
                y[(oy * gw + ox) * out + o] = s;
            }
        }
    }
    y
}
