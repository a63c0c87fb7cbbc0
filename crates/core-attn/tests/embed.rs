//! ViT patch embedding (against a direct f64 stride-P convolution), class token, token lookup.

use core_attn::embed::{embed_tokens, PatchEmbedding};
use core_attn::linear::{Activation, Linear};
use core_attn::reference::position::patch_conv;
use core_attn::requant::{ChannelRequant, QParams, Requant};
use core_attn::Error;

/// Tiny deterministic generator (xorshift) for test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn i8(&mut self) -> i8 {
        self.next() as i8
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A quantized patch-embedding problem and its f64 answer.
struct Case {
    c: usize,
    h: usize,
    w: usize,
    p: usize,
    d: usize,
    image: Vec<i8>,
    weights: Vec<i8>,
    bias: Vec<i32>,
    multipliers: Vec<i32>,
    shifts: Vec<i8>,
    out_q: QParams,
    /// f64 conv output `[N][D]` on dequantized values.
    expected: Vec<f64>,
}

impl Case {
    fn new(c: usize, h: usize, w: usize, p: usize, d: usize, seed: u64) -> Case {
        let mut rng = Rng(seed);
        let k = c * p * p;
        let x_q = QParams {
            scale: 0.02,
            zero_point: -7,
        };
        let image: Vec<i8> = (0..c * h * w).map(|_| rng.i8()).collect();
        let weights: Vec<i8> = (0..d * k).map(|_| rng.i8()).collect();
        let w_scale: Vec<f64> = (0..d).map(|_| 0.002 + 0.008 * rng.unit()).collect();
        let bias_acc: Vec<i32> = (0..d)
            .map(|_| (rng.next() % 20001) as i32 - 10000)
            .collect();
        // f64 reference on dequantized values; the bias is exactly representable.
        let image_f: Vec<f64> = image.iter().map(|&q| x_q.dequantize(q)).collect();
        let kernel_f: Vec<f64> = weights
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f64 * w_scale[i / k])
            .collect();
        let bias_f: Vec<f64> = (0..d)
            .map(|o| bias_acc[o] as f64 * x_q.scale * w_scale[o])
            .collect();
        let expected = patch_conv(&image_f, c, h, w, p, &kernel_f, &bias_f);
        let lo = expected.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = expected.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let out_q = QParams::asymmetric(lo, hi);
        // Pack: fold the input zero point into the bias; per-channel requant s_x·s_w/s_y.
        let bias: Vec<i32> = (0..d)
            .map(|o| {
                let wsum: i32 = weights[o * k..(o + 1) * k].iter().map(|&v| v as i32).sum();
                bias_acc[o] - x_q.zero_point * wsum
            })
            .collect();
        let rq: Vec<Requant> = w_scale
            .iter()
            .map(|s| Requant::from_real(x_q.scale * s / out_q.scale).unwrap())
            .collect();
        Case {
            c,
            h,
            w,
            p,
            d,
            image,
            weights,
            bias,
            multipliers: rq.iter().map(|r| r.multiplier).collect(),
            shifts: rq.iter().map(|r| r.shift).collect(),
            out_q,
            expected,
        }
    }

    fn embedding(&self) -> PatchEmbedding<'_> {
        PatchEmbedding {
            channels: self.c,
            height: self.h,
            width: self.w,
            patch: self.p,
            projection: Linear {
                in_features: self.c * self.p * self.p,
                out_features: self.d,
                weights: &self.weights,
                bias: &self.bias,
                requant: ChannelRequant {
                    multipliers: &self.multipliers,
                    shifts: &self.shifts,
                },
                output_zero_point: self.out_q.zero_point,
            },
        }
    }
}

/// Under Miri (the f64 convolution and the kernels interpreted) the two largest images keep
/// their channels, patch size, width D and non-square patch grid with fewer patches
/// (4 × 3 → 3 × 2, 2 × 5 → 2 × 3); the other shapes are unchanged.
const MIRI: bool = cfg!(miri);

#[test]
fn patch_embedding_equals_f64_conv() {
    // (C, H, W, P, D): C = 1 and 3; P = 7, 4, 1; non-square images.
    let shapes = [
        if MIRI {
            (1, 21, 14, 7, 16)
        } else {
            (1, 28, 21, 7, 16)
        },
        if MIRI {
            (3, 14, 21, 7, 24)
        } else {
            (3, 14, 35, 7, 24)
        },
        (3, 12, 8, 4, 10),
        (1, 16, 4, 4, 12),
        (3, 16, 8, 4, 32),
        (1, 5, 3, 1, 6),
        (3, 6, 9, 1, 8),
    ];
    for (n, &(c, h, w, p, d)) in shapes.iter().enumerate() {
        let case = Case::new(c, h, w, p, d, 0x9e37_79b9_7f4a_7c15 ^ n as u64);
        let pe = case.embedding();
        pe.validate().unwrap();
        let patches = (h / p) * (w / p);
        assert_eq!(pe.patches(), patches);
        assert_eq!(pe.patch_len(), c * p * p);
        let mut scratch = vec![0i8; c * p * p];
        let mut out = vec![0i8; patches * d];
        pe.run(&case.image, &mut scratch, &mut out).unwrap();
        let mut worst = 0.0f64;
        let mut exact = 0usize;
        for (i, (&got, &y)) in out.iter().zip(&case.expected).enumerate() {
            let want = case.out_q.quantize(y);
            let diff = (got as i32 - want as i32).abs();
            worst = worst.max((case.out_q.dequantize(got) - y).abs() / case.out_q.scale);
            exact += (diff == 0) as usize;
            assert!(
                diff <= 1,
                "shape {:?} element {i}: {got} vs {want}",
                (c, h, w, p, d)
            );
        }
        // Almost every output is exactly the rounded f64 value (only near-ties may differ).
        assert!(exact * 100 >= out.len() * 95, "{exact}/{}", out.len());
        println!(
            "C={c} H={h} W={w} P={p} D={d}: max |q - y/s| = {worst:.3} LSB, {exact}/{} exact",
            out.len()
        );
    }
}

#[test]
fn extract_patch_order_is_channel_row_col() {
    // Image values encode (c, y, x) so the flattened order can be read back.
    let (c, h, w, p) = (3usize, 6usize, 6usize, 2usize);
    let image: Vec<i8> = (0..c * h * w)
        .map(|i| {
            let (ci, rest) = (i / (h * w), i % (h * w));
            (ci * 40 + (rest / w) * 8 + rest % w) as i8
        })
        .collect();
    let case = Case::new(c, h, w, p, 2, 1);
    let mut pe = case.embedding();
    pe.height = h;
    pe.width = w;
    let mut scratch = vec![0i8; c * p * p];
    // Patch 5 is row 1, column 2 of the 3×3 patch grid: pixels y ∈ {2,3}, x ∈ {4,5}.
    pe.extract_patch(&image, 5, &mut scratch).unwrap();
    let mut want = Vec::new();
    for ci in 0..c {
        for y in 2..4 {
            for x in 4..6 {
                want.push((ci * 40 + y * 8 + x) as i8);
            }
        }
    }
    assert_eq!(scratch, want);
    assert!(matches!(
        pe.extract_patch(&image, 9, &mut scratch),
        Err(Error::BadDimension { .. })
    ));
}

/// The batched path (im2col of every patch, one projection over all rows) gives the same bytes
/// as one patch at a time, for the generic kernel too, with scratch of exactly one patch, between
/// one patch and all of them, exactly all, and more; also with the class token.
#[test]
fn batched_patches_equal_one_at_a_time() {
    // Under Miri the ViT's 28 × 28 image becomes 21 × 21 (9 patches of 49, D = 64), and the
    // other two large ones as in `patch_embedding_equals_f64_conv`.
    let shapes = [
        if MIRI {
            (1, 21, 21, 7, 64)
        } else {
            (1, 28, 28, 7, 64)
        },
        if MIRI {
            (1, 21, 14, 7, 16)
        } else {
            (1, 28, 21, 7, 16)
        },
        if MIRI {
            (3, 14, 21, 7, 24)
        } else {
            (3, 14, 35, 7, 24)
        },
        (3, 12, 8, 4, 10),
        (1, 5, 3, 1, 6),
        (1, 7, 7, 7, 5),
    ];
    for (n, &(c, h, w, p, d)) in shapes.iter().enumerate() {
        let case = Case::new(c, h, w, p, d, 0x5151 ^ n as u64);
        let pe = case.embedding();
        let (np, pl) = (pe.patches(), pe.patch_len());
        assert_eq!(pe.batched_scratch_len(), np * pl);
        // Reference: the generic kernel on each extracted patch.
        let mut want = vec![0i8; np * d];
        let mut one = vec![0i8; pl];
        for (i, row) in want.chunks_exact_mut(d).enumerate() {
            pe.extract_patch(&case.image, i, &mut one).unwrap();
            pe.projection
                .run_generic(&one, row, Activation::Identity)
                .unwrap();
        }
        for len in [
            pl,
            (np * pl).saturating_sub(1).max(pl),
            np * pl,
            np * pl + 13,
        ] {
            let mut scratch = vec![0x55i8; len];
            let mut out = vec![0i8; np * d];
            pe.run(&case.image, &mut scratch, &mut out).unwrap();
            assert_eq!(out, want, "shape {:?} scratch {len}", (c, h, w, p, d));
            let cls: Vec<i8> = (0..d).map(|i| i as i8).collect();
            let mut with_cls = vec![0i8; (np + 1) * d];
            pe.run_with_class_token(&case.image, &cls, &mut scratch, &mut with_cls)
                .unwrap();
            assert_eq!(&with_cls[..d], cls.as_slice());
            assert_eq!(&with_cls[d..], want.as_slice());
        }
    }
}

#[test]
fn class_token_is_row_zero() {
    let case = Case::new(3, 8, 12, 4, 20, 42);
    let pe = case.embedding();
    let n = pe.patches();
    let cls: Vec<i8> = (0..20).map(|i| (i * 5 - 50) as i8).collect();
    let mut scratch = vec![0i8; pe.patch_len()];
    let mut with_cls = vec![0i8; (n + 1) * 20];
    pe.run_with_class_token(&case.image, &cls, &mut scratch, &mut with_cls)
        .unwrap();
    let mut plain = vec![0i8; n * 20];
    pe.run(&case.image, &mut scratch, &mut plain).unwrap();
    assert_eq!(&with_cls[..20], cls.as_slice());
    assert_eq!(&with_cls[20..], plain.as_slice());
    // Wrong class-token length or output size.
    assert!(matches!(
        pe.run_with_class_token(&case.image, &cls[..19], &mut scratch, &mut with_cls),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        pe.run_with_class_token(&case.image, &cls, &mut scratch, &mut plain),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn bad_shapes_are_errors() {
    let case = Case::new(1, 28, 28, 7, 8, 7);
    let mut scratch = vec![0i8; 49];
    let mut out = vec![0i8; 16 * 8];
    // Height / width not divisible by P.
    for (h, w) in [(27usize, 28usize), (28, 30), (5, 7)] {
        let mut pe = case.embedding();
        pe.height = h;
        pe.width = w;
        let image = vec![0i8; h * w];
        assert!(matches!(pe.validate(), Err(Error::BadDimension { .. })));
        assert!(matches!(
            pe.run(&image, &mut scratch, &mut out),
            Err(Error::BadDimension { .. })
        ));
    }
    let pe = case.embedding();
    // Zero sizes.
    let mut zero = pe;
    zero.patch = 0;
    assert!(matches!(zero.validate(), Err(Error::BadDimension { .. })));
    assert_eq!(zero.patches(), 0);
    // Projection width not C·P·P.
    let mut wrong = pe;
    wrong.channels = 3;
    let image3 = vec![0i8; 3 * 28 * 28];
    assert!(matches!(
        wrong.run(&image3, &mut [0i8; 147], &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    // Image, scratch and output lengths.
    assert!(matches!(
        pe.run(&case.image[1..], &mut scratch, &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        pe.run(&case.image, &mut scratch[..48], &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        pe.run(&case.image, &mut scratch, &mut out[..120]),
        Err(Error::ShapeMismatch { .. })
    ));
    // Sizes whose products overflow are errors, not panics.
    let mut huge = pe;
    huge.channels = usize::MAX;
    assert!(huge.validate().is_err());
    assert!(huge.run(&case.image, &mut scratch, &mut out).is_err());
    let mut huge = pe;
    huge.height = usize::MAX / 7 * 7;
    huge.width = usize::MAX / 7 * 7;
    assert!(huge.run(&case.image, &mut scratch, &mut out).is_err());
    pe.run(&case.image, &mut scratch, &mut out).unwrap();
    assert_eq!(pe.macs(), 16 * 49 * 8);
}

#[test]
fn token_lookup() {
    let (vocab, d) = (50usize, 16usize);
    let mut rng = Rng(99);
    let table: Vec<i8> = (0..vocab * d).map(|_| rng.i8()).collect();
    let ids = [0u32, 49, 3, 3, 17];
    let mut out = vec![0i8; ids.len() * d];
    embed_tokens(&ids, &table, d, &mut out).unwrap();
    for (t, &id) in ids.iter().enumerate() {
        assert_eq!(
            &out[t * d..(t + 1) * d],
            &table[id as usize * d..(id as usize + 1) * d]
        );
    }
    // Out of range: error, output untouched.
    let before = out.clone();
    assert_eq!(
        embed_tokens(&[1, 50, 2, 0, 7], &table, d, &mut out),
        Err(Error::TokenOutOfRange { id: 50, vocab: 50 })
    );
    assert_eq!(out, before);
    assert_eq!(
        embed_tokens(&[u32::MAX, 0, 0, 0, 0], &table, d, &mut out),
        Err(Error::TokenOutOfRange {
            id: u32::MAX,
            vocab: 50
        })
    );
    // Shapes.
    assert!(matches!(
        embed_tokens(&ids, &table, d, &mut out[..10]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        embed_tokens(&ids, &table[..15], d, &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        embed_tokens(&ids, &table, 0, &mut out),
        Err(Error::BadDimension { .. })
    ));
    embed_tokens(&[], &table, d, &mut []).unwrap();
}
