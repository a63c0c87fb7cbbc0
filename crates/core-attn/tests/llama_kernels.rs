//! The Llama int8 kernels (RMSNorm, RoPE, SwiGLU) against the independent f64 references in
//! `core_attn::reference::llama`: every output within the documented bound (1 LSB) of the
//! reference rounded to the output grid, and exactly the rounded reference wherever the real
//! value is farther from a rounding boundary than the kernel's documented pre-rounding error.

use core_attn::reference::llama::{rms_norm_i8, rope_f64, swiglu_i8};
use core_attn::requant::QParams;
use core_attn::rmsnorm::{RmsNormParams, RMS_NORM_MAX_LSB_ERROR};
use core_attn::rope::{Rope, RopeStyle, RopeTableParams, ROPE_MAX_LSB_ERROR};
use core_attn::swiglu::{SwiGluParams, SWIGLU_MAX_LSB_ERROR};
use core_attn::{Error, MAX_WIDTH};
use proptest::prelude::*;

/// Log-uniform positive value in `[lo, hi]`.
fn log_uniform(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    (0.0f64..1.0).prop_map(move |u| lo * (hi / lo).powf(u))
}

/// Compares int8 outputs with real references in output LSBs; `margin`: the distance from a
/// rounding boundary beyond which the output must be exact. Returns the inexact count.
fn compare(what: &str, got: &[i8], real: &[f64], out_q: QParams, bound: u32, margin: f64) -> usize {
    assert_eq!(got.len(), real.len());
    let mut inexact = 0;
    for (i, (&o, &y)) in got.iter().zip(real).enumerate() {
        let want = out_q.quantize(y);
        let diff = (o as i32 - want as i32).unsigned_abs();
        let lsb = y / out_q.scale + out_q.zero_point as f64;
        assert!(
            diff <= bound,
            "{what} element {i}: got {o}, reference {want} (real {lsb} LSB)"
        );
        let frac = lsb - lsb.floor();
        if (-127.5..126.5).contains(&lsb) && (frac - 0.5).abs() > margin {
            assert_eq!(o, want, "{what} element {i}: not exact (real {lsb} LSB)");
        }
        inexact += (o != want) as usize;
    }
    inexact
}

// ---------------------------------------------------------------------------------------------
// RMSNorm

#[derive(Debug, Clone)]
struct NormCase {
    rows: Vec<i8>,
    gamma: Vec<f32>,
    eps: f64,
    input_q: QParams,
    out_scale_factor: f64,
    out_zero: i32,
}

fn norm_case() -> impl Strategy<Value = NormCase> {
    let width = prop_oneof![
        Just(1usize),
        Just(2),
        Just(7),
        Just(64),
        Just(172),
        2usize..200
    ];
    (width, 1usize..4).prop_flat_map(|(w, rows)| {
        let row = prop_oneof![
            3 => prop::collection::vec(any::<i8>(), w),
            1 => any::<i8>().prop_map(move |c| vec![c; w]),
            1 => (any::<i8>(), any::<i8>(), 0..w).prop_map(move |(c, o, at)| {
                let mut v = vec![c; w];
                v[at] = o;
                v
            }),
            1 => (-4i8..=4, prop::collection::vec(-2i8..=2, w))
                .prop_map(|(c, d)| d.into_iter().map(|x| c + x).collect()),
        ];
        (
            prop::collection::vec(row, rows).prop_map(|r| r.concat()),
            prop::collection::vec(-3.0f32..3.0, w),
            prop_oneof![Just(0.0), Just(1e-6), Just(1e-5), log_uniform(1e-8, 1.0)],
            (
                log_uniform(1e-3, 10.0),
                prop_oneof![Just(0i32), -128i32..=127],
            ),
            log_uniform(0.5, 2.0),
            -10i32..=10,
        )
            .prop_map(|(rows, gamma, eps, (s, z), f, oz)| NormCase {
                rows,
                gamma,
                eps,
                input_q: QParams {
                    scale: s,
                    zero_point: z,
                },
                out_scale_factor: f,
                out_zero: oz,
            })
    })
}

fn check_norm(c: &NormCase) -> usize {
    let real = rms_norm_i8(&c.rows, &c.gamma, c.eps, c.input_q).unwrap();
    let max = real.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let out_q = QParams {
        scale: (max / 120.0).max(1e-3) * c.out_scale_factor,
        zero_point: c.out_zero,
    };
    let p = RmsNormParams::quantize(&c.gamma, c.eps, c.input_q, out_q).unwrap();
    let n = p.as_rms_norm();
    n.validate().unwrap();
    let mut out = vec![0i8; c.rows.len()];
    n.run(&c.rows, &mut out).unwrap();
    let mut inplace = c.rows.clone();
    n.run_in_place(&mut inplace).unwrap();
    assert_eq!(inplace, out, "run_in_place differs from run");
    compare(
        "rmsnorm",
        &out,
        &real,
        out_q,
        RMS_NORM_MAX_LSB_ERROR,
        1.0 / 32.0,
    )
}

proptest! {
    // Under Miri (CI runs every core-attn test there) a handful of cases: each is slow there.
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 3 } else { 400 }))]

    #[test]
    fn rms_norm_within_one_lsb_of_f64(c in norm_case()) {
        check_norm(&c);
    }
}

/// The widest row with one non-zero element: `|n| = √D = 128`, the overflow argument's edge.
#[test]
fn rms_norm_max_width_single_outlier() {
    // Under Miri one 16384-wide row (the largest magnitude), where each takes minutes.
    let cases: &[(i8, f32)] = if cfg!(miri) {
        &[(-128, -1.0)]
    } else {
        &[(127, 1.0), (-128, -1.0), (1, 0.5)]
    };
    for &(x, g) in cases {
        let mut rows = vec![0i8; MAX_WIDTH];
        rows[MAX_WIDTH / 3] = x;
        let c = NormCase {
            rows,
            gamma: vec![g; MAX_WIDTH],
            eps: 0.0,
            input_q: QParams {
                scale: 0.05,
                zero_point: 0,
            },
            out_scale_factor: 1.0,
            out_zero: 0,
        };
        assert_eq!(check_norm(&c), 0);
    }
}

#[test]
fn rms_norm_zero_row_without_epsilon_is_the_zero_point() {
    let q = QParams {
        scale: 0.1,
        zero_point: 3,
    };
    let out_q = QParams {
        scale: 0.02,
        zero_point: -7,
    };
    let p = RmsNormParams::quantize(&[1.0; 5], 0.0, q, out_q).unwrap();
    let mut out = [0i8; 5];
    p.as_rms_norm().run(&[3; 5], &mut out).unwrap();
    assert_eq!(out, [-7; 5]);
}

#[test]
fn rms_norm_rejects_bad_shapes() {
    let q = QParams::symmetric(1.0);
    let p = RmsNormParams::quantize(&[1.0; 4], 1e-5, q, q).unwrap();
    let mut out = [0i8; 6];
    assert!(matches!(
        p.as_rms_norm().run(&[0; 6], &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        p.as_rms_norm().run(&[0; 8], &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(RmsNormParams::quantize(&[], 1e-5, q, q).is_err());
    assert_eq!(
        RmsNormParams::quantize(&[1.0], f64::NAN, q, q),
        Err(Error::BadRequant)
    );
}

// ---------------------------------------------------------------------------------------------
// RoPE

#[derive(Debug, Clone)]
struct RopeCase {
    head_dim: usize,
    row: Vec<i8>,
    pos: usize,
    theta: f64,
    style: RopeStyle,
    in_scale: f64,
    ratio: f64,
}

const POSITIONS: usize = 300;

fn rope_case() -> impl Strategy<Value = RopeCase> {
    let hd = prop_oneof![Just(2usize), Just(4), Just(8), Just(16), Just(64)];
    (hd, 1usize..4).prop_flat_map(|(hd, heads)| {
        (
            prop::collection::vec(any::<i8>(), hd * heads),
            0..POSITIONS,
            prop_oneof![Just(10_000.0), Just(500_000.0), log_uniform(2.0, 1e6)],
            prop_oneof![Just(RopeStyle::Interleaved), Just(RopeStyle::HalfSplit)],
            log_uniform(1e-3, 1.0),
            prop_oneof![3 => log_uniform(0.25, 4.0), 1 => log_uniform(4.0, 32.0)],
        )
            .prop_map(move |(row, pos, theta, style, in_scale, ratio)| RopeCase {
                head_dim: hd,
                row,
                pos,
                theta,
                style,
                in_scale,
                ratio,
            })
    })
}

fn run_rope(c: &RopeCase) -> (Vec<i8>, Vec<f64>, QParams) {
    let t = RopeTableParams::build(c.head_dim, POSITIONS, c.theta).unwrap();
    let out_scale = c.in_scale / c.ratio;
    let rope = Rope {
        table: t.as_table(),
        style: c.style,
        requant: RopeTableParams::requant(c.in_scale, out_scale).unwrap(),
    };
    rope.validate().unwrap();
    let mut out = c.row.clone();
    rope.run_in_place(&mut out, c.pos).unwrap();
    let x: Vec<f64> = c.row.iter().map(|&q| q as f64 * c.in_scale).collect();
    let real = rope_f64(&x, c.head_dim, c.pos, c.theta, c.style).unwrap();
    (
        out,
        real,
        QParams {
            scale: out_scale,
            zero_point: 0,
        },
    )
}

proptest! {
    // Under Miri (CI runs every core-attn test there) a handful of cases: each is slow there.
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 3 } else { 400 }))]

    #[test]
    fn rope_within_one_lsb_of_f64(c in rope_case()) {
        let (out, real, out_q) = run_rope(&c);
        compare("rope", &out, &real, out_q, ROPE_MAX_LSB_ERROR, c.ratio / 128.0 + 1e-6);
    }

    /// Half-split on a head whose elements were reordered `(0, 2, 4, …, 1, 3, 5, …)` is the
    /// interleaved rotation reordered the same way, bit for bit.
    #[test]
    fn rope_conventions_agree_under_the_pair_permutation(c in rope_case()) {
        let hd = c.head_dim;
        let perm = |row: &[i8]| -> Vec<i8> {
            row.chunks(hd)
                .flat_map(|h| (0..hd).map(move |j| if j < hd / 2 { h[2 * j] } else { h[2 * (j - hd / 2) + 1] }))
                .collect()
        };
        let inter = RopeCase { style: RopeStyle::Interleaved, ..c.clone() };
        let half = RopeCase { style: RopeStyle::HalfSplit, row: perm(&c.row), ..c.clone() };
        let (a, _, _) = run_rope(&inter);
        let (b, _, _) = run_rope(&half);
        prop_assert_eq!(perm(&a), b);
    }
}

#[test]
fn rope_position_zero_is_identity_at_equal_scales() {
    let t = RopeTableParams::build(8, 4, 10_000.0).unwrap();
    let rope = Rope {
        table: t.as_table(),
        style: RopeStyle::HalfSplit,
        requant: RopeTableParams::requant(0.1, 0.1).unwrap(),
    };
    let row: Vec<i8> = (-8..8).map(|v| (v * 15) as i8).collect();
    let mut out = row.clone();
    rope.run_in_place(&mut out, 0).unwrap();
    assert_eq!(out, row);
}

#[test]
fn rope_rejects_bad_inputs() {
    let t = RopeTableParams::build(8, 4, 10_000.0).unwrap();
    let rope = Rope {
        table: t.as_table(),
        style: RopeStyle::Interleaved,
        requant: RopeTableParams::requant(0.1, 0.1).unwrap(),
    };
    let mut row = [0i8; 16];
    assert_eq!(
        rope.run_in_place(&mut row, 4),
        Err(Error::BadDimension {
            what: "rope position",
            value: 4
        })
    );
    assert!(matches!(
        rope.run_in_place(&mut row[..12], 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(RopeTableParams::build(7, 4, 10_000.0).is_err());
    assert!(RopeTableParams::build(8, 0, 10_000.0).is_err());
    assert!(RopeTableParams::build(8, 4, f64::NAN).is_err());
    let short = Rope {
        table: core_attn::rope::RopeTable {
            sin: &t.sin[1..],
            ..t.as_table()
        },
        ..rope
    };
    assert!(matches!(
        short.run_in_place(&mut row, 0),
        Err(Error::ShapeMismatch { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// SwiGLU

#[derive(Debug, Clone)]
struct GluCase {
    gate: Vec<i8>,
    up: Vec<i8>,
    gate_q: QParams,
    up_q: QParams,
    out_factor: f64,
    out_zero: i32,
}

fn qparams() -> impl Strategy<Value = QParams> {
    (
        log_uniform(1e-3, 0.5),
        prop_oneof![Just(0i32), -128i32..=127],
    )
        .prop_map(|(s, z)| QParams {
            scale: s,
            zero_point: z,
        })
}

fn glu_case() -> impl Strategy<Value = GluCase> {
    (1usize..300).prop_flat_map(|n| {
        (
            prop::collection::vec(any::<i8>(), n),
            prop::collection::vec(any::<i8>(), n),
            qparams(),
            qparams(),
            log_uniform(1.0 / 64.0, 2.0),
            -20i32..=20,
        )
            .prop_map(|(gate, up, gate_q, up_q, out_factor, out_zero)| GluCase {
                gate,
                up,
                gate_q,
                up_q,
                out_factor,
                out_zero,
            })
    })
}

proptest! {
    // Under Miri (CI runs every core-attn test there) a handful of cases: each is slow there.
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 3 } else { 400 }))]

    #[test]
    fn swiglu_within_one_lsb_of_f64(c in glu_case()) {
        // Output range: a fraction of the largest |silu(g)·u| over the whole int8 grid.
        let grid: Vec<i8> = (-128..=127).map(|v| v as i8).collect();
        let max_silu = grid
            .iter()
            .map(|&g| core_attn::reference::llama::silu(c.gate_q.dequantize(g)).abs())
            .fold(0.0, f64::max);
        let max_up = grid.iter().map(|&u| c.up_q.dequantize(u).abs()).fold(0.0, f64::max);
        let out_q = QParams {
            scale: (max_silu * max_up / 127.0).max(1e-6) * c.out_factor,
            zero_point: c.out_zero,
        };
        let p = SwiGluParams::quantize(c.gate_q, c.up_q, out_q).unwrap();
        let s = p.as_swiglu();
        s.validate().unwrap();
        let mut out = vec![0i8; c.gate.len()];
        s.run(&c.gate, &c.up, &mut out).unwrap();
        let mut inplace = c.gate.clone();
        s.run_in_place(&mut inplace, &c.up).unwrap();
        prop_assert_eq!(&inplace, &out);
        let real = swiglu_i8(&c.gate, &c.up, c.gate_q, c.up_q).unwrap();
        compare("swiglu", &out, &real, out_q, SWIGLU_MAX_LSB_ERROR, 1.0 / 8.0);
    }
}

#[test]
fn swiglu_zero_gate_or_up_gives_the_zero_point() {
    let gate_q = QParams {
        scale: 0.05,
        zero_point: 10,
    };
    let up_q = QParams {
        scale: 0.02,
        zero_point: -4,
    };
    let out_q = QParams {
        scale: 0.01,
        zero_point: 5,
    };
    let p = SwiGluParams::quantize(gate_q, up_q, out_q).unwrap();
    let mut out = [0i8; 4];
    p.as_swiglu()
        .run(&[10, 10, -100, 127], &[50, -128, -4, -4], &mut out)
        .unwrap();
    assert_eq!(out, [5; 4]);
    assert!(matches!(
        p.as_swiglu().run(&[0; 3], &[0; 4], &mut out[..3]),
        Err(Error::ShapeMismatch { .. })
    ));
}
