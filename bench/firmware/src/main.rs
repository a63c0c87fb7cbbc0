//! Kernel benchmarks at the shipped shapes.
//!
//! Every measured call sits between `bench_start()` and `bench_stop()`; the QEMU plugin
//! (`bench/host/plugin`) counts instructions and estimated cycles between the two markers and
//! writes one `region` line per pair, in order. This firmware prints one `bench` line per region,
//! in the same order, over semihosting:
//!
//! `bench <kernel> <shape> <variant> macs=<n> elems=<n> match=<0|1>`
//!
//! `match` says the variant's output equals the generic reference kernel's byte for byte (the
//! on-device cross-check); the firmware exits with failure if any does not. The `embedded-nn`
//! variant (the crate's own requantization and softmax) is compared, not required to be equal:
//! its line carries `maxdiff=<n>` (largest |difference| from the generic output, in LSB) and
//! `match=1` when that is within the stated tolerance (`tol=<n>`).
//!
//! Built with `BENCH_SUITE=models` (cfg `bench_models`) it runs the whole-model suite instead
//! ([`models`]).
#![no_std]
#![no_main]

use core::arch::asm;
use core::fmt::Write;
use core::hint::black_box;
use core_attn::activation::Lut;
use core_attn::attention::{Attention, Mask};
use core_attn::linear::{Activation, Linear};
use core_attn::norm::LayerNorm;
use core_attn::softmax::ExpTable;
use core_attn::ChannelRequant;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};

mod params {
    include!(concat!(env!("OUT_DIR"), "/params.rs"));
}
use params::*;

/// Start marker: the plugin snapshots its counters when this function's first instruction runs.
#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_start() {
    // SAFETY: a no-op; without `nomem` it is also a compiler memory barrier.
    unsafe { asm!("nop", options(nostack, preserves_flags)) }
}

/// Stop marker (a different body, so that it is never merged with `bench_start`).
#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_stop() {
    // SAFETY: as above.
    unsafe { asm!("nop", "nop", options(nostack, preserves_flags)) }
}

struct Out(hio::HostStream);
impl Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.write_all(s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}

/// Measure `f` as one region.
#[inline(always)]
fn measure<R>(f: impl FnOnce() -> R) -> R {
    bench_start();
    let r = f();
    bench_stop();
    r
}

mod models;

struct Bench {
    out: Out,
    failed: bool,
}

impl Bench {
    /// Print the line of the region just measured with [`measure`].
    fn line(
        &mut self,
        kernel: &str,
        shape: &str,
        variant: &str,
        macs: usize,
        elems: usize,
        m: bool,
    ) {
        self.failed |= !m;
        let _ = writeln!(
            self.out,
            "bench {kernel} {shape} {variant} macs={macs} elems={elems} match={}",
            m as u8
        );
    }

    /// The line of an `embedded-nn` region: `y` against the reference `r`, within `tol` LSB.
    #[allow(clippy::too_many_arguments)]
    fn line_close(
        &mut self,
        kernel: &str,
        shape: &str,
        macs: usize,
        elems: usize,
        r: &[i8],
        y: &[i8],
        tol: i32,
    ) {
        let d = r
            .iter()
            .zip(y)
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .max()
            .unwrap_or(0);
        let m = d <= tol && r.len() == y.len();
        self.failed |= !m;
        let _ = writeln!(
            self.out,
            "bench {kernel} {shape} embedded-nn macs={macs} elems={elems} match={} maxdiff={d} tol={tol}",
            m as u8
        );
    }
}

/// `embedded-nn`'s per-channel int8 fully connected layer with our layer's parameters
/// (input and weight zero points 0, output zero point 3, the same multipliers and shifts).
fn enn_linear(l: &Linear<'_>, s32: &[i32], x: &[i8], y: &mut [i8]) {
    use embedded_nn::types::{Activation as Act, Dims, FcParams, PerChannelQuantParams};
    let rows = x.len() / l.in_features;
    let fc = FcParams {
        input_offset: 0,
        filter_offset: 0,
        output_offset: l.output_zero_point,
        activation: Act::new(-128, 127),
    };
    embedded_nn::fully_connected::fully_connected_per_channel_s8(
        &fc,
        &PerChannelQuantParams::new(l.requant.multipliers, s32),
        &Dims::new(rows as i32, 1, 1, l.in_features as i32),
        x,
        &Dims::new(l.in_features as i32, 1, 1, l.out_features as i32),
        l.weights,
        Some(l.bias),
        &Dims::new(rows as i32, 1, 1, l.out_features as i32),
        y,
    )
    .unwrap();
}

static mut ENN_QKV: [i8; 17 * 192] = [0; 17 * 192];
static mut ENN_SCORES: [i8; 2 * 17 * 17] = [0; 2 * 17 * 17];

static mut Y_REF: [i8; 17 * 192] = [0; 17 * 192];
static mut Y: [i8; 17 * 192] = [0; 17 * 192];

/// The naive scalar baseline: indexed loops, one output at a time.
#[inline(never)]
fn naive_linear(l: &Linear<'_>, x: &[i8], y: &mut [i8]) {
    let rows = x.len() / l.in_features;
    for t in 0..rows {
        for o in 0..l.out_features {
            let mut acc = l.bias[o];
            for i in 0..l.in_features {
                acc = acc.wrapping_add(
                    x[t * l.in_features + i] as i32 * l.weights[o * l.in_features + i] as i32,
                );
            }
            y[t * l.out_features + o] = l.requant.get(o).to_i8(acc, l.output_zero_point);
        }
    }
}

fn linear<'a>(w: &'a [i8], b: &'a [i32], m: &'a [i32], s: &'a [i8]) -> Linear<'a> {
    let l = Linear {
        in_features: w.len() / b.len(),
        out_features: b.len(),
        weights: w,
        bias: b,
        requant: ChannelRequant {
            multipliers: m,
            shifts: s,
        },
        output_zero_point: 3,
    };
    l.validate().unwrap();
    l
}

#[allow(static_mut_refs)]
fn run(b: &mut Bench) {
    // Calibration: an empty region (marker overhead, subtracted by the runner).
    measure(|| {});
    b.line("empty", "-", "-", 0, 0, true);

    let layers = [
        (
            "17x64x192",
            17,
            linear(&L64X192_W, &L64X192_B, &L64X192_M, &L64X192_S),
            &L64X192_S32[..],
        ),
        (
            "17x64x64",
            17,
            linear(&L64X64_W, &L64X64_B, &L64X64_M, &L64X64_S),
            &L64X64_S32[..],
        ),
        (
            "17x64x128",
            17,
            linear(&L64X128_W, &L64X128_B, &L64X128_M, &L64X128_S),
            &L64X128_S32[..],
        ),
        (
            "17x128x64",
            17,
            linear(&L128X64_W, &L128X64_B, &L128X64_M, &L128X64_S),
            &L128X64_S32[..],
        ),
        (
            "1x64x192",
            1,
            linear(&L64X192_W, &L64X192_B, &L64X192_M, &L64X192_S),
            &L64X192_S32[..],
        ),
    ];
    for (shape, rows, l, s32) in layers.iter() {
        let x = &X[..rows * l.in_features];
        let n = rows * l.out_features;
        let macs = rows * l.macs_per_row();
        // SAFETY (static mut): single-threaded firmware, nothing else touches these buffers.
        let (y_ref, y) = unsafe { (&mut Y_REF[..n], &mut Y[..n]) };
        measure(|| {
            black_box(l)
                .run_generic(black_box(x), y_ref, Activation::Identity)
                .unwrap()
        });
        b.line("linear", shape, "generic", macs, n, true);
        y.fill(0);
        measure(|| naive_linear(black_box(l), black_box(x), y));
        b.line("linear", shape, "naive", macs, n, y_ref == y);
        y.fill(0);
        measure(|| {
            black_box(l)
                .run(black_box(x), y, Activation::Identity)
                .unwrap()
        });
        b.line("linear", shape, "optimized", macs, n, y_ref == y);
        y.fill(0);
        measure(|| enn_linear(black_box(l), s32, black_box(x), y));
        // Double rounding (CMSIS-NN rounds the high product, then the shift): ±1 LSB.
        b.line_close("linear", shape, macs, n, y_ref, y, 1);
    }

    // Any input width (the looped `asm!` passes): char-lm's per-token layers (width 96, MLP
    // 384, tied 63-row head) and the ViT's batched patch embedding (16 patches × 49 inputs).
    for (shape, rows, inf, outf) in [
        ("1x96x288", 1usize, 96usize, 288usize),
        ("1x96x96", 1, 96, 96),
        ("1x96x384", 1, 96, 384),
        ("1x384x96", 1, 384, 96),
        ("1x96x63", 1, 96, 63),
        ("16x49x64", 16, 49, 64),
    ] {
        let l = Linear {
            in_features: inf,
            out_features: outf,
            weights: &ANY_W.0[..inf * outf],
            bias: &ANY_B[..outf],
            requant: ChannelRequant {
                multipliers: &ANY_M[..outf],
                shifts: &ANY_S[..outf],
            },
            output_zero_point: 3,
        };
        l.validate().unwrap();
        let x = &X[..rows * inf];
        let n = rows * outf;
        let macs = rows * l.macs_per_row();
        // SAFETY (static mut): as above.
        let (y_ref, y) = unsafe { (&mut Y_REF[..n], &mut Y[..n]) };
        measure(|| {
            black_box(&l)
                .run_generic(black_box(x), y_ref, Activation::Identity)
                .unwrap()
        });
        b.line("linear", shape, "generic", macs, n, true);
        y.fill(0);
        measure(|| {
            black_box(&l)
                .run(black_box(x), y, Activation::Identity)
                .unwrap()
        });
        b.line("linear", shape, "optimized", macs, n, y_ref == y);
    }
    random_linear_check(b);

    // One attention layer: 17 tokens, 4 heads of 16.
    let att = Attention {
        heads: 4,
        head_dim: 16,
        score_to_index: SCORE_TO_INDEX,
        exp: ExpTable::new(&EXP_HI, &EXP_LO).unwrap(),
        output: ATT_OUT,
        output_zero_point: 0,
    };
    att.validate().unwrap();
    {
        let mut scratch = [0i32; 17];
        let n = 17 * 64;
        // QK^T and PV: 2 · 17 · 17 · 64 MACs.
        let macs = 2 * 17 * 17 * 64;
        // SAFETY (static mut): as above.
        let (y_ref, y) = unsafe { (&mut Y_REF[..n], &mut Y[..n]) };
        measure(|| {
            black_box(&att)
                .self_attention_generic(black_box(&QKV), y_ref, &mut scratch, Mask::None)
                .unwrap()
        });
        b.line("attention", "17x4x16", "generic", macs, n, true);
        y.fill(0);
        measure(|| {
            black_box(&att)
                .self_attention(black_box(&QKV), y, &mut scratch, Mask::None)
                .unwrap()
        });
        b.line("attention", "17x4x16", "optimized", macs, n, y_ref == y);

        // embedded-nn: Q, K, V as separate [17][64] tensors (copied out of the fused rows
        // before the region), int8 logits, its int8 softmax, P·V.
        // SAFETY (static mut): as above.
        let (qkv, sc) = unsafe { (&mut ENN_QKV, &mut ENN_SCORES) };
        for t in 0..17 {
            for p in 0..3 {
                qkv[p * n + t * 64..p * n + t * 64 + 64]
                    .copy_from_slice(&QKV[t * 192 + p * 64..t * 192 + p * 64 + 64]);
            }
        }
        let (q, kv) = qkv.split_at(n);
        let (k, v) = kv.split_at(n);
        let params = embedded_nn::transformer::AttentionParams {
            batches: 1,
            seq_len: 17,
            num_heads: 4,
            head_dim: 16,
            q_offset: 0,
            k_offset: 0,
            v_offset: 0,
            score_offset: 128,
            output_offset: 0,
            softmax_mult: ENN_SOFTMAX.0,
            softmax_shift: ENN_SOFTMAX.1,
            softmax_diff_min: ENN_SOFTMAX.2,
        };
        let lq = embedded_nn::types::PerTensorQuantParams::new(ENN_LOGITS.0, ENN_LOGITS.1);
        let oq = embedded_nn::types::PerTensorQuantParams::new(ENN_OUT.0, ENN_OUT.1);
        y.fill(0);
        measure(|| {
            embedded_nn::transformer::scaled_dot_product_attention_s8(
                &params,
                &lq,
                &oq,
                black_box(q),
                black_box(k),
                black_box(v),
                sc,
                y,
            )
            .unwrap()
        });
        // int8 logits (1/8) and int8 probabilities (1/256) against our 16-bit softmax.
        b.line_close("attention", "17x4x16", macs, n, y_ref, y, 8);
    }

    // Softmax over attention scores (i32) and over int8 rows.
    let exp = att.exp;
    for (len, shape) in [(17usize, "17"), (65, "65")] {
        let mut r = [0i32; 65];
        let mut o = [0i32; 65];
        r[..len].copy_from_slice(&SCORES[..len]);
        o[..len].copy_from_slice(&SCORES[..len]);
        measure(|| {
            core_attn::softmax::softmax_scores_in_place_generic(
                black_box(&mut r[..len]),
                black_box(SCORE_TO_INDEX),
                exp,
            )
            .unwrap()
        });
        b.line("softmax_scores", shape, "generic", 0, len, true);
        measure(|| {
            core_attn::softmax::softmax_scores_in_place(
                black_box(&mut o[..len]),
                // A run-time requantization, as in a model (a constant would fold its setup).
                black_box(SCORE_TO_INDEX),
                exp,
            )
            .unwrap()
        });
        b.line(
            "softmax_scores",
            shape,
            "optimized",
            0,
            len,
            r[..len] == o[..len],
        );
        let x: &[i8] = &X[..len];
        let mut pr = [0u16; 65];
        let mut po = [0u16; 65];
        measure(|| {
            core_attn::softmax::softmax_i8_generic(
                black_box(x),
                black_box(SOFTMAX_I8),
                exp,
                &mut pr[..len],
            )
            .unwrap()
        });
        b.line("softmax_i8", shape, "generic", 0, len, true);
        measure(|| {
            core_attn::softmax::softmax_i8(black_box(x), black_box(SOFTMAX_I8), exp, &mut po[..len])
                .unwrap()
        });
        b.line(
            "softmax_i8",
            shape,
            "optimized",
            0,
            len,
            pr[..len] == po[..len],
        );
    }

    // LayerNorm over 17 rows of 64.
    {
        let ln = LayerNorm {
            width: 64,
            gamma: &LN_GAMMA,
            beta: &LN_BETA,
            epsilon: LN_EPS,
            output_zero_point: LN_ZP,
        };
        ln.validate().unwrap();
        let n = 17 * 64;
        // SAFETY (static mut): as above.
        let y_ref = unsafe { &mut Y_REF[..n] };
        measure(|| black_box(&ln).run(black_box(&X[..n]), y_ref).unwrap());
        b.line("layernorm", "17x64", "generic", 0, n, true);
    }

    // GELU table over the 17x128 MLP hidden activations.
    {
        let lut = Lut::new(&GELU);
        let n = 17 * 128;
        // SAFETY (static mut): as above.
        let y_ref = unsafe { &mut Y_REF[..n] };
        measure(|| black_box(lut).apply(black_box(&X[..n]), y_ref).unwrap());
        b.line("gelu", "17x128", "generic", 0, n, true);
    }
}

/// Layers of the randomized on-device variant check.
const RANDOM_LAYERS: usize = 256;

/// The randomized variant check (not a measured region): [`RANDOM_LAYERS`] seeded random
/// layers (1..=200 inputs and 1..=70 outputs, both skewed small, 1..=5 tokens; weights at any byte
/// alignment; multipliers, shifts, zero points and biases mostly in the fast requantization's
/// range, sometimes anywhere, so that the fallbacks run too; identity or ReLU), `Linear::run`
/// against `Linear::run_generic` byte for byte. One line:
/// `check linear-random layers=<n> macs=<n> mismatches=<n> match=<0|1>`.
#[allow(static_mut_refs)]
fn random_linear_check(b: &mut Bench) {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 16) as u32
    };
    let mut bias = [0i32; 70];
    let mut mult = [0i32; 70];
    let mut shift = [0i8; 70];
    let (mut macs, mut bad) = (0usize, 0usize);
    for _ in 0..RANDOM_LAYERS {
        let inf = 1 + (next() % 200).min(next() % 200).min(next() % 200) as usize;
        let outf = 1 + (next() % 70).min(next() % 70).min(next() % 70) as usize;
        let rows = 1 + (next() % 5) as usize;
        let odd = next() % 8 == 0;
        for o in 0..outf {
            bias[o] = match next() % 8 {
                0 => next() as i32,
                1 => [1 << 30, -(1 << 30)][(next() % 2) as usize],
                _ => (next() % (1 << 21)) as i32 - (1 << 20),
            };
            mult[o] = if odd && next() % 4 == 0 {
                next() as i32
            } else {
                (1 << 30) + (next() % (1 << 30)) as i32
            };
            shift[o] = if odd && next() % 4 == 0 {
                (next() % 62) as i8 - 31
            } else {
                -2 - (next() % 30).min(next() % 30).min(next() % 30) as i8
            };
        }
        let zp = if odd && next() % 2 == 0 {
            (next() % 800) as i32 - 400
        } else {
            (next() % 256) as i32 - 128
        };
        let w0 = (next() as usize) % (ANY_W.0.len() - inf * outf + 1);
        let x0 = (next() as usize) % (X.len() - inf * rows + 1);
        let l = Linear {
            in_features: inf,
            out_features: outf,
            weights: &ANY_W.0[w0..w0 + inf * outf],
            bias: &bias[..outf],
            requant: ChannelRequant {
                multipliers: &mult[..outf],
                shifts: &shift[..outf],
            },
            output_zero_point: zp,
        };
        let act = if next() % 4 == 0 {
            Activation::Relu
        } else {
            Activation::Identity
        };
        let x = &X[x0..x0 + inf * rows];
        let n = rows * outf;
        // SAFETY (static mut): as above.
        let (y_ref, y) = unsafe { (&mut Y_REF[..n], &mut Y[..n]) };
        y.fill(0x55);
        l.run_generic(x, y_ref, act).unwrap();
        l.run(black_box(x), y, act).unwrap();
        bad += (y_ref != y) as usize;
        macs += rows * inf * outf;
    }
    b.failed |= bad != 0;
    let _ = writeln!(
        b.out,
        "check linear-random layers={RANDOM_LAYERS} macs={macs} mismatches={bad} match={}",
        (bad == 0) as u8
    );
}

#[entry]
fn main() -> ! {
    static mut ARENA: models::Arena = models::Arena::new();
    let out = Out(hio::hstdout().unwrap());
    let mut b = Bench { out, failed: false };
    if cfg!(bench_models) {
        // Calibration region, as in the kernel suite.
        measure(|| {});
        b.line("empty", "-", "-", 0, 0, true);
        models::run(&mut b, ARENA);
    } else {
        run(&mut b);
    }
    let _ = writeln!(b.out, "bench done failed={}", b.failed as u8);
    debug::exit(if b.failed {
        debug::EXIT_FAILURE
    } else {
        debug::EXIT_SUCCESS
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if let Ok(out) = hio::hstdout() {
        let _ = writeln!(Out(out), "panic: {info}");
    }
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
