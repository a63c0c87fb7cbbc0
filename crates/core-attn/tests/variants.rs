//! One suite, every kernel variant: the optimized paths must give the generic reference
//! kernels' results bit for bit.
//!
//! On the host `Linear::run` & co. run the portable kernels; the DSP algorithm runs here with
//! its instructions emulated (`dsp::linear_dsp_emulated`, `dsp::sxtb16`, `dsp::smlad`), the
//! Armv6-M one with its dot products in Rust (`dsp::linear_m0_emulated`, `dsp::mulhi`), the
//! Helium one with `VMLADAVA` and its vector requantization emulated
//! (`dsp::linear_mve_emulated`, `dsp::vmladava_s8`, `dsp::requant_mve_form`), and the
//! `asm!` itself is cross-checked against the generic kernels on the device by the bench
//! firmware (`bench/`, column `match` of BENCHMARKS.md).

use core_attn::attention::{Attention, AttentionParams, Mask, ATTENTION_VARIANTS};
use core_attn::dsp;
use core_attn::linear::{Activation, Linear};
use core_attn::requant::{ChannelRequant, QParams, Requant};
use core_attn::softmax::{self, ExpTable};
use core_attn::tensor::Rows;
use proptest::prelude::*;

/// Under Miri (every kernel interpreted, each proptest case costs milliseconds to seconds) the
/// property tests run a few dozen cases, the exhaustive loops a sample that keeps their ends and
/// every residue the kernels branch on, and the named linear shapes keep their input widths
/// (every width path: the fixed DSP widths, the looped any-width passes and their byte tails)
/// with fewer rows and outputs (see [`miri_shape`]); shapes that coincide after that run once,
/// each with one of the fills in turn. The native run is unchanged.
const MIRI: bool = cfg!(miri);

/// Proptest cases: `native` natively, `miri` under Miri.
const fn cases(native: u32, miri: u32) -> u32 {
    if MIRI {
        miri
    } else {
        native
    }
}

/// `(rows, out_features)` of a named linear shape under Miri: more than 3 rows become
/// `2 + rows % 2` (a token pair, and the odd last token where there is one: the kernels' only
/// token paths), more than 32 outputs `16 + out % 16` (a whole 16-shift block of
/// `asm_requant_ok`, the same residues mod 16, 4 and 2 for the 4-row blocks, row pairs and
/// tails). Unchanged natively.
fn miri_shape(rows: usize, out_f: usize) -> (usize, usize) {
    if !MIRI {
        return (rows, out_f);
    }
    (
        if rows > 3 { 2 + rows % 2 } else { rows },
        if out_f > 32 { 16 + out_f % 16 } else { out_f },
    )
}

// ---------------------------------------------------------------------------------------------
// Instruction semantics
// ---------------------------------------------------------------------------------------------

#[test]
fn sxtb16_and_smlad_named_cases() {
    assert_eq!(dsp::sxtb16(0x807f_ff01), 0x007f_0001);
    assert_eq!(dsp::sxtb16_ror8(0x807f_ff01), 0xff80_ffff);
    assert_eq!(dsp::sxtb16(0x0000_0000), 0);
    assert_eq!(dsp::sxtb16(0xffff_ffff), 0xffff_ffff);
    // -128·-128 + -128·-128 = 32768
    assert_eq!(dsp::smlad(0xff80_ff80, 0xff80_ff80, 0), 32768);
    assert_eq!(dsp::smlad(0x0002_0003, 0x0005_0007, 10), 10 + 21 + 10);
    assert_eq!(dsp::smlad(0x0001_ffff, 0x0001_0001, 0), 0); // -1·1 + 1·1
                                                            // Wraps like the instruction (which only sets Q).
    for (a, b) in [
        (i32::MIN, i32::MIN),
        (i32::MIN, i32::MAX),
        (i32::MAX, i32::MAX),
        (i32::MIN, 1),
        (-1, -1),
        (0x7fff_ffff, -0x8000_0000),
        (0x0001_0000, -0x0001_0000),
    ] {
        assert_eq!(dsp::mulhi(a, b), ((a as i64 * b as i64) >> 32) as i32);
    }
    assert_eq!(
        dsp::smlad(0x7fff_7fff, 0x7fff_7fff, i32::MAX),
        i32::MAX.wrapping_add(2 * 32767 * 32767)
    );
}

/// `VMLADAVA.S8` at the extremes: the largest lane sum (16 · 2^14) exact, the accumulator
/// wrapping like the instruction's 32-bit result.
#[test]
fn vmladava_named_cases() {
    let (lo, hi) = ([-128i8; 16], [127i8; 16]);
    assert_eq!(dsp::vmladava_s8(0, &lo, &lo), 16 * 128 * 128);
    assert_eq!(dsp::vmladava_s8(0, &hi, &lo), -16 * 127 * 128);
    assert_eq!(
        dsp::vmladava_s8(i32::MAX, &lo, &lo),
        i32::MIN + (16 * 128 * 128 - 1)
    );
    let mut one = [0i8; 16];
    one[15] = -1;
    assert_eq!(dsp::vmladava_s8(i32::MIN, &one, &hi), i32::MAX - 126);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000, 24), ..ProptestConfig::default() })]

    #[test]
    fn smlad_of_extended_bytes_is_a_4_term_dot(w in any::<u32>(), x in any::<u32>(), acc in any::<i32>()) {
        let b = |v: u32, k: u32| ((v >> (8 * k)) as u8 as i8) as i32;
        let want = (0..4).fold(acc, |a, k| a.wrapping_add(b(w, k) * b(x, k)));
        let got = dsp::smlad(dsp::sxtb16_ror8(x), dsp::sxtb16_ror8(w),
            dsp::smlad(dsp::sxtb16(x), dsp::sxtb16(w), acc));
        prop_assert_eq!(got, want);
    }

    /// The Armv6-M high word (four 16 × 16 products) equals the 64-bit product's.
    #[test]
    fn mulhi_equals_i64_product(
        a in prop_oneof![any::<i32>(), Just(i32::MIN), Just(i32::MAX), Just(-1), Just(0x8000), Just(-0x8000)],
        b in prop_oneof![any::<i32>(), Just(i32::MIN), Just(i32::MAX), Just(-1), Just(0xffff), Just(-0x10000)],
    ) {
        prop_assert_eq!(dsp::mulhi(a, b), ((a as i64 * b as i64) >> 32) as i32);
    }

    /// The 32-bit requantization equals the 64-bit reference on every channel and accumulator.
    #[test]
    fn row_requant_equals_reference(
        acc in prop_oneof![any::<i32>(), -70000i32..70000, Just(i32::MIN), Just(i32::MAX)],
        multiplier in prop_oneof![(1i32 << 30)..=i32::MAX, any::<i32>(), Just(0)],
        shift in -40i8..=40,
        zp in prop_oneof![-128i32..=127, any::<i32>()],
    ) {
        let r = Requant { multiplier, shift };
        prop_assert_eq!(dsp::requant_i8(acc, multiplier, shift, zp), r.to_i8(acc, zp));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(4000, 24), ..ProptestConfig::default() })]

    /// The `asm!` kernels' 4-instruction requantization equals the reference on its domain.
    #[test]
    fn asm_requant_form_equals_reference(
        acc in prop_oneof![any::<i32>(), -70000i32..70000, Just(i32::MIN), Just(i32::MAX)],
        multiplier in prop_oneof![(1i32 << 30)..=i32::MAX, any::<i32>(), Just(i32::MIN), Just(0)],
        shift in -31i8..=-2,
        zp in -128i32..=127,
    ) {
        let r = Requant { multiplier, shift };
        prop_assert_eq!(dsp::requant_asm_form(acc, multiplier, shift, zp), r.to_i8(acc, zp));
    }

    /// The Helium vector requantization (`VMULH`, `VSHL` by `shift + 2`, `VADD` of `2·zp + 1`,
    /// `VQSHRNB #1`, `VQMOVNB`) equals the reference on the kernels' domain, and the scalar
    /// `asm!` form. Injected and caught: `shift + 1` instead of `shift + 2` (the rounding bit
    /// lost), the `VQSHRNB` shift dropped (twice the value), `c = 2·zp` (no rounding half).
    #[test]
    fn mve_requant_form_equals_reference(
        acc in prop_oneof![any::<i32>(), -70000i32..70000, Just(i32::MIN), Just(i32::MAX)],
        multiplier in prop_oneof![(1i32 << 30)..=i32::MAX, any::<i32>(), Just(i32::MIN), Just(0)],
        shift in -31i8..=-2,
        zp in -128i32..=127,
    ) {
        let r = Requant { multiplier, shift };
        let got = dsp::requant_mve_form(acc, multiplier, shift, zp);
        prop_assert_eq!(got, r.to_i8(acc, zp));
        prop_assert_eq!(got, dsp::requant_asm_form(acc, multiplier, shift, zp));
    }

    /// `VMLADAVA.S8`: the accumulator plus the 16 lane products, modulo 2^32 (computed here in
    /// i64 and truncated). Injected and caught: a lane dropped, the accumulator saturating.
    #[test]
    fn vmladava_is_a_16_term_dot(
        x in prop::array::uniform16(prop_oneof![any::<i8>(), Just(-128i8), Just(127i8)]),
        w in prop::array::uniform16(prop_oneof![any::<i8>(), Just(-128i8), Just(127i8)]),
        acc in prop_oneof![any::<i32>(), Just(i32::MIN), Just(i32::MAX)],
    ) {
        let wide = acc as i64 + x.iter().zip(&w).map(|(&a, &b)| a as i64 * b as i64).sum::<i64>();
        prop_assert_eq!(dsp::vmladava_s8(acc, &x, &w), wide as i32);
    }

    /// The SWAR range check of the shifts equals the plain one, for every length and position.
    #[test]
    fn asm_requant_ok_equals_plain_check(
        shifts in prop::collection::vec(prop_oneof![4 => -31i8..=-2, 1 => any::<i8>()], 1..40),
        zp in prop_oneof![-128i32..=127, any::<i32>()],
    ) {
        let n = shifts.len();
        let (w, b, m) = (vec![0i8; n], vec![0i32; n], vec![1i32 << 30; n]);
        let l = Linear {
            in_features: 1,
            out_features: n,
            weights: &w,
            bias: &b,
            requant: ChannelRequant { multipliers: &m, shifts: &shifts },
            output_zero_point: zp,
        };
        let want = shifts.iter().all(|&s| (-31..=-2).contains(&s)) && (-128..=127).contains(&zp);
        prop_assert_eq!(dsp::asm_requant_ok(&l), want);
    }
}

#[test]
fn asm_requant_named_cases() {
    // Every shift byte value at every position of a 4-byte word and in the tail (under Miri:
    // the values around both ends of the range -31..=-2, both ends of i8 and a stride).
    let values: Vec<i8> = if MIRI {
        let edges = [-128i8, -127, -33, -32, -31, -30, -3, -2, -1, 0, 1, 126, 127];
        let mut v: Vec<i8> = edges
            .into_iter()
            .chain((i8::MIN..=i8::MAX).step_by(23))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    } else {
        (i8::MIN..=i8::MAX).collect()
    };
    for len in [4usize, 5, 7, 8] {
        for pos in 0..len {
            for &v in &values {
                let mut shifts = vec![-10i8; len];
                shifts[pos] = v;
                let (w, b, m) = (vec![0i8; len], vec![0i32; len], vec![1i32 << 30; len]);
                let l = Linear {
                    in_features: 1,
                    out_features: len,
                    weights: &w,
                    bias: &b,
                    requant: ChannelRequant {
                        multipliers: &m,
                        shifts: &shifts,
                    },
                    output_zero_point: 0,
                };
                assert_eq!(
                    dsp::asm_requant_ok(&l),
                    (-31..=-2).contains(&v),
                    "{len} {pos} {v}"
                );
            }
        }
    }
    // Extremes of the requantization: largest |hi|, rounding ties, saturation both ways.
    for &(acc, m) in &[
        (i32::MIN, i32::MIN),
        (i32::MAX, i32::MAX),
        (i32::MIN, i32::MAX),
        (1, 1),
    ] {
        for shift in -31i8..=-2 {
            for zp in [-128, -1, 0, 127] {
                let r = Requant {
                    multiplier: m,
                    shift,
                };
                assert_eq!(dsp::requant_asm_form(acc, m, shift, zp), r.to_i8(acc, zp));
                assert_eq!(dsp::requant_mve_form(acc, m, shift, zp), r.to_i8(acc, zp));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Linear
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct LinearCase {
    in_f: usize,
    out_f: usize,
    rows: usize,
    input: Vec<i8>,
    weights: Vec<i8>,
    bias: Vec<i32>,
    mult: Vec<i32>,
    shift: Vec<i8>,
    zp: i32,
}

fn linear_case() -> BoxedStrategy<LinearCase> {
    // Under Miri (proptest draws every byte through its strategies, interpreted) small random
    // layers only: the named shapes below cover the wide ones.
    if MIRI {
        return (
            prop_oneof![Just(16usize), Just(49), 1usize..70],
            1usize..=9,
            1usize..=3,
        )
            .prop_flat_map(linear_case_of)
            .boxed();
    }
    let in_f = prop_oneof![
        Just(16usize),
        Just(32),
        Just(64),
        Just(128),
        Just(96),
        Just(384),
        Just(49),
        1usize..70,
        1usize..=400,
    ];
    let out_f = prop_oneof![1usize..=9, Just(16), Just(64)];
    (in_f, out_f, 1usize..=5)
        .prop_flat_map(linear_case_of)
        .boxed()
}

fn linear_case_of((in_f, out_f, rows): (usize, usize, usize)) -> impl Strategy<Value = LinearCase> {
    let byte = prop_oneof![any::<i8>(), Just(-128i8), Just(127i8)];
    (
        prop::collection::vec(byte.clone(), rows * in_f),
        prop::collection::vec(byte, in_f * out_f),
        prop::collection::vec(prop_oneof![-(1i32 << 20)..(1 << 20), any::<i32>()], out_f),
        prop::collection::vec((1i32 << 30)..=i32::MAX, out_f),
        // Mostly the 32-bit path (right shift 33..=62), sometimes the 64-bit one.
        prop::collection::vec(prop_oneof![4 => -20i8..=-2, 1 => -31i8..=30], out_f),
        prop_oneof![-128i32..=127, -400i32..400],
    )
        .prop_map(move |(input, weights, bias, mult, shift, zp)| LinearCase {
            in_f,
            out_f,
            rows,
            input,
            weights,
            bias,
            mult,
            shift,
            zp,
        })
}

impl LinearCase {
    fn layer(&self) -> Linear<'_> {
        Linear {
            in_features: self.in_f,
            out_features: self.out_f,
            weights: &self.weights,
            bias: &self.bias,
            requant: ChannelRequant {
                multipliers: &self.mult,
                shifts: &self.shift,
            },
            output_zero_point: self.zp,
        }
    }
}

/// Every linear variant against `run_generic`.
fn check_linear(c: &LinearCase) -> Result<(), TestCaseError> {
    let l = c.layer();
    let n = c.rows * c.out_f;
    let mut want = vec![0i8; n];
    l.run_generic(&c.input, &mut want, Activation::Identity)
        .unwrap();
    let mut got = vec![0i8; n];
    l.run(&c.input, &mut got, Activation::Identity).unwrap();
    prop_assert_eq!(&got, &want, "Linear::run");
    let mut got = vec![0i8; n];
    dsp::linear_portable(&l, &c.input, &mut got, c.rows);
    prop_assert_eq!(&got, &want, "dsp::linear_portable");
    let mut got = vec![0i8; n];
    if dsp::linear_dsp_emulated(&l, &c.input, &mut got, c.rows) {
        prop_assert_eq!(&got, &want, "dsp::linear_dsp_emulated");
    } else {
        prop_assert!(!(4..=dsp::MAX_ANY_WIDTH).contains(&c.in_f) || !dsp::asm_requant_ok(&l));
    }
    let mut got = vec![0i8; n];
    if dsp::linear_mve_emulated(&l, &c.input, &mut got, c.rows) {
        prop_assert_eq!(&got, &want, "dsp::linear_mve_emulated");
    } else {
        prop_assert!(!(1..=dsp::MAX_ANY_WIDTH).contains(&c.in_f) || !dsp::asm_requant_ok(&l));
    }
    let mut got = vec![0i8; n];
    if dsp::linear_m0_emulated(&l, &c.input, &mut got, c.rows) {
        prop_assert_eq!(&got, &want, "dsp::linear_m0_emulated");
    } else {
        prop_assert!(!(-128..=127).contains(&c.zp));
    }
    // Every registered variant that runs in this build (the host twins here, the `asm!` ones
    // too on a device): what the registry lists is what gets checked.
    let args = dsp::LinearArgs::of(&l);
    for v in dsp::LINEAR_VARIANTS.iter().filter(|v| v.available) {
        let mut got = vec![0i8; n];
        if (v.run)(&args, &c.input, &mut got, c.rows) {
            prop_assert_eq!(&got, &want, "registered variant {}", v.name);
        }
    }
    // Fused activations too.
    let mut a = vec![0i8; n];
    let mut b = vec![0i8; n];
    l.run_generic(&c.input, &mut a, Activation::Relu).unwrap();
    l.run(&c.input, &mut b, Activation::Relu).unwrap();
    prop_assert_eq!(a, b, "relu");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400, 4), ..ProptestConfig::default() })]

    #[test]
    fn linear_variants_are_bit_identical(c in linear_case()) {
        check_linear(&c)?;
    }
}

/// The registry ([`dsp::LINEAR_VARIANTS`]) the dispatcher and [`check_linear`] share: names
/// unique, on the host no native (`asm!`) variant available (so `Linear::run` is the portable
/// kernel and every twin runs here), and every available variant takes an ordinary layer (64
/// inputs, 4-byte aligned, packer-range requantization) and gives the generic kernel's bits —
/// a variant registered as a stub that always declines fails here. Guards against: a variant
/// entry whose `run` is wired to a function that returns `false` (it would never be compared).
#[test]
fn linear_registry_runs_every_variant() {
    let names: Vec<&str> = dsp::LINEAR_VARIANTS.iter().map(|v| v.name).collect();
    for (i, a) in names.iter().enumerate() {
        assert!(!names[i + 1..].contains(a), "duplicate variant {a}");
    }
    let c = LinearCase {
        in_f: 64,
        out_f: 6,
        rows: 3,
        weights: (0..64 * 6)
            .map(|i| ((i * 37 + 11) % 256) as u8 as i8)
            .collect(),
        bias: (0..6).map(|o| o * 1000 - 2500).collect(),
        mult: vec![1 << 30; 6],
        shift: vec![-8; 6],
        zp: -3,
        input: (0..3 * 64)
            .map(|i| ((i * 91 + 5) % 256) as u8 as i8)
            .collect(),
    };
    let l = c.layer();
    let mut want = vec![0i8; c.rows * c.out_f];
    l.run_generic(&c.input, &mut want, Activation::Identity)
        .unwrap();
    let args = dsp::LinearArgs::of(&l);
    let mut ran = 0;
    for v in dsp::LINEAR_VARIANTS {
        if cfg!(target_arch = "arm") {
            continue;
        }
        assert_eq!(v.available, !v.native, "{}: available on the host", v.name);
        let mut got = vec![0i8; want.len()];
        let took = (v.run)(&args, &c.input, &mut got, c.rows);
        assert_eq!(took, v.available, "{}: takes a 64-wide layer", v.name);
        if took {
            assert_eq!(got, want, "{}", v.name);
            ran += 1;
        }
    }
    // portable + the three host twins.
    assert!(cfg!(target_arch = "arm") || ran == 4, "{ran} variants ran");
}

/// `Σ a[i]·b[i]` over the common length, summed in i64 and wrapped once at the end: an
/// independent form of the wrapping i32 dot product (wrapping addition is associative, so the
/// sum modulo 2^32 is the same however it is ordered).
fn dot_wide(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| x as i64 * y as i64)
        .sum::<i64>() as i32
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000, 16), ..ProptestConfig::default() })]

    /// Every registered dot-product variant ([`dsp::DOT_I8_VARIANTS`]), the dispatcher
    /// ([`dsp::dot_i8`]) and the reference ([`core_attn::linear::dot_i8`]) against [`dot_wide`],
    /// any lengths (also unequal: the common length counts).
    #[test]
    fn dot_i8_variants_are_bit_identical(
        a in prop::collection::vec(any::<i8>(), 0..300),
        b in prop::collection::vec(any::<i8>(), 0..300),
    ) {
        let want = dot_wide(&a, &b);
        prop_assert_eq!(core_attn::linear::dot_i8(&a, &b), want, "linear::dot_i8");
        prop_assert_eq!(dsp::dot_i8(&a, &b), want, "dsp::dot_i8");
        for v in dsp::DOT_I8_VARIANTS {
            prop_assert_eq!((v.run)(&a, &b), want, "registered variant {}", v.name);
        }
    }
}

/// The dot-product registry ([`dsp::DOT_I8_VARIANTS`]) the dispatcher and the suite above share:
/// names unique, exactly one native entry (the one [`dsp::dot_i8`] runs: `armv7em_dsp` on DSP
/// targets, `portable` elsewhere), and every entry gives [`dot_wide`]'s value on lengths with
/// every residue mod 4 (the 4-byte chunks and the byte tail), including extreme products whose
/// sum wraps. Guards against (checked: each injected, this test fails): an entry
/// wired to a wrong function (`armv7em_dsp`'s `run` → a stub returning 0, or the tail dropped),
/// and `native` set on two entries or none.
#[test]
fn dot_i8_registry_runs_every_variant() {
    let names: Vec<&str> = dsp::DOT_I8_VARIANTS.iter().map(|v| v.name).collect();
    for (i, a) in names.iter().enumerate() {
        assert!(!names[i + 1..].contains(a), "duplicate variant {a}");
    }
    let native: Vec<&str> = dsp::DOT_I8_VARIANTS
        .iter()
        .filter(|v| v.native)
        .map(|v| v.name)
        .collect();
    assert_eq!(native.len(), 1, "native dot-product variants {native:?}");
    if !cfg!(target_arch = "arm") {
        assert_eq!(
            native,
            ["portable"],
            "native dot-product variant on the host"
        );
    }
    let mut x = 0x2545_f491u32;
    let mut byte = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as i8
    };
    let mut cases: Vec<(Vec<i8>, Vec<i8>)> = (0..=13)
        .map(|n| {
            (
                (0..n).map(|_| byte()).collect(),
                (0..n).map(|_| byte()).collect(),
            )
        })
        .collect();
    // 140,000 products of 2^14: the sum passes 2^31 and wraps.
    cases.push((vec![-128; 140_000], vec![-128; 140_000]));
    cases.push((vec![-128; 7], vec![127; 9]));
    for (a, b) in &cases {
        let want = dot_wide(a, b);
        assert_eq!(dsp::dot_i8(a, b), want, "dsp::dot_i8, length {}", a.len());
        for v in dsp::DOT_I8_VARIANTS {
            assert_eq!((v.run)(a, b), want, "{}, length {}", v.name, a.len());
        }
    }
}

#[test]
fn linear_variants_named_shapes() {
    // The shipped shapes, odd token counts, saturating values, wrapping bias.
    let mut seed = 0x1234_5678u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut seen = std::collections::HashSet::new();
    for (shape, &(rows, in_f, out_f)) in [
        (17usize, 64usize, 192usize),
        (17, 64, 64),
        (17, 64, 128),
        (17, 128, 64),
        (1, 64, 192),
        // char-lm's per-token shapes (width 96, MLP 384, tied 63-row head), its prefill, and
        // the ViT's batched patch embedding (49 inputs).
        (1, 96, 288),
        (1, 96, 96),
        (1, 96, 384),
        (1, 384, 96),
        (1, 96, 63),
        (31, 96, 288),
        (3, 384, 96),
        (16, 49, 64),
        (1, 49, 64),
        (2, 16, 3),
        (3, 32, 5),
        (1, 12, 7),
        (3, 24, 70),
        (2, 8, 133),
    ]
    .iter()
    .enumerate()
    {
        let (rows, out_f) = miri_shape(rows, out_f);
        if MIRI && !seen.insert((rows, in_f, out_f)) {
            continue;
        }
        let fills = [None, Some(-128i8), Some(127i8)];
        let fills = if MIRI {
            &fills[shape % 3..][..1]
        } else {
            &fills[..]
        };
        for &fill in fills {
            let byte = |r: u64| fill.unwrap_or(r as i8);
            let c = LinearCase {
                in_f,
                out_f,
                rows,
                input: (0..rows * in_f).map(|_| byte(next())).collect(),
                weights: (0..in_f * out_f)
                    .map(|_| fill.map_or(next() as i8, |_| -128))
                    .collect(),
                bias: (0..out_f)
                    .map(|o| {
                        if o == 0 {
                            i32::MAX
                        } else {
                            (next() % 8192) as i32 - 4096
                        }
                    })
                    .collect(),
                mult: (0..out_f)
                    .map(|_| (1 << 30) + (next() % (1 << 30)) as i32)
                    .collect(),
                shift: (0..out_f)
                    .map(|o| {
                        if o == 1 {
                            3
                        } else {
                            -((next() % 12) as i8) - 2
                        }
                    })
                    .collect(),
                zp: 3,
            };
            check_linear(&c).unwrap();
        }
    }
}

/// The `asm!` paths' shapes with every channel on the fast requantization (so that
/// `linear_dsp_emulated` and `linear_mve_emulated` run, asserted): token pairs and an odd last
/// token, 4-row decode blocks and the 1–3 rows after them, an odd output count after the row
/// pairs, every supported width; extreme zero points, biases and multipliers. Then the
/// fallbacks: zero point out of range, one slow shift.
///
/// Injected into the Helium twin and caught here (and by `linear_variants_are_bit_identical`):
/// the last chunk's weight loads unpredicated (reading the next row) together with the odd
/// token's buffer padding not cleared (either alone leaves the sum unchanged: one factor of
/// each extra lane is zero); token t + 1's accumulators all started from the block's first
/// bias; the odd token's 4th row started from the 3rd row's bias; the two tokens' input
/// chunks swapped.
#[test]
fn linear_asm_paths_named_shapes() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let shapes = [
        (1usize, 16usize, 4usize), // one decode block, nothing after it
        (1, 16, 5),                // + 1 tail row
        (1, 32, 7),                // + 3 tail rows
        (1, 64, 3),                // no 4-row block at all
        (1, 128, 12),              // widest input, 3 blocks
        (2, 128, 1),               // a token pair, a single (odd) output row
        (3, 64, 9),                // pair + odd token, odd output count
        (4, 32, 2),                // two pairs
        (5, 16, 6),                // two pairs + odd token with a 2-row tail
        (17, 64, 20),              // the prefill token count
        // The looped passes (any width): 4-input chunks with 0..=3 byte tails for pairs,
        // 8-input steps with 0..=7 for one token, loop entered part-way or not.
        (3, 96, 9),
        (3, 384, 6),
        (17, 49, 10),
        (1, 49, 8),
        (3, 4, 5),
        (3, 7, 6),
        (3, 8, 7),
        (5, 12, 9),
        (3, 33, 13),
        (3, 63, 4),
        (3, 100, 5),
        (2, 255, 6),
        (3, 260, 4),
        (1, 511, 4),
        (3, 512, 4),
        // Helium only (the DSP passes start at 4 inputs): widths 1..=3, a lone predicated
        // chunk; 17 = one whole chunk + 1 lane.
        (3, 1, 5),
        (2, 3, 8),
        (3, 15, 4),
        (3, 17, 9),
    ];
    let mut seen = std::collections::HashSet::new();
    for (shape, &(rows, in_f, out_f)) in shapes.iter().enumerate() {
        let (rows, out_f) = miri_shape(rows, out_f);
        if MIRI && !seen.insert((rows, in_f, out_f)) {
            continue;
        }
        let fills = [
            (3, None),
            (-128, Some(-128i8)),
            (127, Some(127i8)),
            (0, None),
        ];
        let fills = if MIRI {
            &fills[shape % 4..][..1]
        } else {
            &fills[..]
        };
        for &(zp, fill) in fills {
            let byte = |r: u64| fill.unwrap_or(r as i8);
            let c = LinearCase {
                in_f,
                out_f,
                rows,
                input: (0..rows * in_f).map(|_| byte(next())).collect(),
                weights: (0..in_f * out_f).map(|_| byte(next())).collect(),
                bias: (0..out_f)
                    .map(|o| match o % 3 {
                        0 => 1 << 30,
                        1 => -(1 << 30),
                        _ => (next() % 8192) as i32 - 4096,
                    })
                    .collect(),
                mult: (0..out_f)
                    .map(|o| {
                        if o % 2 == 0 {
                            i32::MAX
                        } else {
                            (1 << 30) + (next() % (1 << 30)) as i32
                        }
                    })
                    .collect(),
                shift: (0..out_f).map(|o| -2 - (o % 30) as i8).collect(),
                zp,
            };
            let l = c.layer();
            assert!(dsp::asm_requant_ok(&l), "{rows}x{in_f}x{out_f}");
            let mut got = vec![0i8; rows * out_f];
            if in_f >= 4 {
                assert!(dsp::linear_dsp_emulated(&l, &c.input, &mut got, rows));
            }
            assert!(dsp::linear_mve_emulated(&l, &c.input, &mut got, rows));
            check_linear(&c).unwrap();
            // Fallbacks: an output zero point outside int8, one shift off the fast path.
            let mut slow = c.clone();
            slow.zp = 200;
            assert!(!dsp::asm_requant_ok(&slow.layer()));
            check_linear(&slow).unwrap();
            let mut slow = c.clone();
            slow.shift[out_f / 2] = 0;
            assert!(!dsp::asm_requant_ok(&slow.layer()));
            check_linear(&slow).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Softmax and attention
// ---------------------------------------------------------------------------------------------

fn exp_tables() -> ([u16; 256], [u16; 256]) {
    ExpTable::build(ExpTable::default_step())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(500, 8), ..ProptestConfig::default() })]

    #[test]
    fn softmax_variants_are_bit_identical(
        scores in prop::collection::vec(prop_oneof![-(1i32 << 28)..(1 << 28), -6000i32..6000], 1..80),
        bytes in prop::collection::vec(any::<i8>(), 1..80),
        scale in prop_oneof![1e-6f64..1e-3, 1e-3f64..10.0],
    ) {
        let (hi, lo) = exp_tables();
        let exp = ExpTable::new(&hi, &lo).unwrap();
        let r = Requant::from_real(scale).unwrap();
        let mut a = scores.clone();
        softmax::softmax_scores_in_place_generic(&mut a, r, exp).unwrap();
        let mut pa = vec![0u16; bytes.len()];
        softmax::softmax_i8_generic(&bytes, r, exp, &mut pa).unwrap();
        for var in softmax::SOFTMAX_VARIANTS.iter().filter(|v| v.available) {
            let mut b = scores.clone();
            (var.scores)(&mut b, r, exp).unwrap();
            prop_assert_eq!(&a, &b, "{} scores", var.name);
            let mut pb = vec![0u16; bytes.len()];
            (var.i8)(&bytes, r, exp, &mut pb).unwrap();
            prop_assert_eq!(&pa, &pb, "{} i8", var.name);
        }
    }

    #[test]
    fn attention_variants_are_bit_identical(
        heads in 1usize..=4,
        head_dim in prop_oneof![Just(16usize), Just(8), Just(32), 1usize..=20],
        n in 1usize..=if MIRI { 9 } else { 20 },
        m in 1usize..=if MIRI { 9 } else { 20 },
        causal in any::<bool>(),
        first in 0usize..4,
        s in 0.01f64..0.2,
        seed in any::<u64>(),
    ) {
        let w = heads * head_dim;
        let mut x = seed | 1;
        let mut byte = move || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x as i8 };
        let q: Vec<i8> = (0..n * w).map(|_| byte()).collect();
        let k: Vec<i8> = (0..m * w).map(|_| byte()).collect();
        let v: Vec<i8> = (0..m * w).map(|_| byte()).collect();
        let p = AttentionParams::quantize(heads, head_dim, s, s, s,
            QParams { scale: 0.02, zero_point: 1 }).unwrap();
        let att: Attention<'_> = p.as_attention();
        let mask = if causal { Mask::Causal { first_position: first } } else { Mask::None };
        let mut a = vec![0i8; n * w];
        let mut sa = vec![0i32; m];
        let mut sb = vec![0i32; m];
        att.run_generic(Rows::contiguous(&q, w).unwrap(), Rows::contiguous(&k, w).unwrap(), Rows::contiguous(&v, w).unwrap(), mask, &mut a, &mut sa).unwrap();
        for var in ATTENTION_VARIANTS.iter().filter(|v| v.available) {
            let mut b = vec![0i8; n * w];
            (var.run)(&att, Rows::contiguous(&q, w).unwrap(), Rows::contiguous(&k, w).unwrap(), Rows::contiguous(&v, w).unwrap(), mask, &mut b, &mut sb).unwrap();
            prop_assert_eq!(&a, &b, "{}", var.name);
        }
    }
}

/// Attention with exp tables whose row sums stay under 2^15 (a blob may carry any positive,
/// non-increasing tables: here flat ones, every exponential the same `c`), so that the
/// reciprocal does not fit 32 bits and the packed kernel's probabilities take the 64-bit
/// branch of `probs_to_pairs`: `run` and `run_packed` against `run_generic`, odd and even key
/// counts. Injected (cargo-mutants, issue #17) in that branch, each → fails: `2 * k` → `2 + k` /
/// `2 / k`, `2 * k + 1` → `2 * k − 1` / `2 * k * 1` / `2 + k + 1` / `2 / k + 1`, `or |= p0 | p1`
/// → `or &= …` / `or |= p0 & p1` (the `p = 32768` flag lost for a single key), the pair
/// `p0 | (p1 << 16)` → `p0 & (p1 << 16)`.
#[test]
fn attention_small_row_sums_are_bit_identical() {
    let (heads, head_dim) = (2usize, 8usize);
    let w = heads * head_dim;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut byte = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as i8
    };
    let p = AttentionParams::quantize(
        heads,
        head_dim,
        0.05,
        0.05,
        0.05,
        QParams {
            scale: 0.02,
            zero_point: 1,
        },
    )
    .unwrap();
    let tables = [[256u16; 256], [2000; 256], [20000; 256]];
    for t in &tables {
        let v = t[0];
        let mut att: Attention<'_> = p.as_attention();
        att.exp = ExpTable::new(t, t).unwrap();
        for (n, m) in [(1usize, 1usize), (3, 5), (4, 8), (2, 17)] {
            let q: Vec<i8> = (0..n * w).map(|_| byte()).collect();
            let k: Vec<i8> = (0..m * w).map(|_| byte()).collect();
            let vv: Vec<i8> = (0..m * w).map(|_| byte()).collect();
            fn rows(d: &[i8], w: usize) -> Rows<'_> {
                Rows::contiguous(d, w).unwrap()
            }
            for mask in [
                Mask::None,
                Mask::Causal {
                    first_position: m - 1,
                },
            ] {
                let mut a = vec![0i8; n * w];
                let mut s = vec![0i32; m];
                att.run_generic(rows(&q, w), rows(&k, w), rows(&vv, w), mask, &mut a, &mut s)
                    .unwrap();
                for var in ATTENTION_VARIANTS.iter().filter(|v| v.available) {
                    let mut b = vec![0i8; n * w];
                    (var.run)(
                        &att,
                        rows(&q, w),
                        rows(&k, w),
                        rows(&vv, w),
                        mask,
                        &mut b,
                        &mut s,
                    )
                    .unwrap();
                    assert_eq!(a, b, "{}, table {v}, {n}x{m}", var.name);
                }
            }
        }
    }
}

/// Any multiplier and shift the fast softmax accepts, any scores (also differences that wrap),
/// and rows built around the exact index-saturation threshold `T` (the first difference whose
/// index reaches 65535), where the fast path's bounds must hand over to 0.
fn check_softmax_requant(r: Requant, scores: &[i32], bytes: &[i8]) -> Result<(), TestCaseError> {
    let (hi, lo) = exp_tables();
    let exp = ExpTable::new(&hi, &lo).unwrap();
    let mut a = scores.to_vec();
    softmax::softmax_scores_in_place_generic(&mut a, r, exp).unwrap();
    let mut pa = vec![0u16; bytes.len()];
    softmax::softmax_i8_generic(bytes, r, exp, &mut pa).unwrap();
    for var in softmax::SOFTMAX_VARIANTS.iter().filter(|v| v.available) {
        let mut b = scores.to_vec();
        (var.scores)(&mut b, r, exp).unwrap();
        prop_assert_eq!(&a, &b, "{} scores {:?} {:?}", var.name, r, scores);
        let mut pb = vec![0u16; bytes.len()];
        (var.i8)(bytes, r, exp, &mut pb).unwrap();
        prop_assert_eq!(&pa, &pb, "{} bytes {:?}", var.name, r);
    }
    Ok(())
}

/// Smallest difference whose generic index is 65535 (`None` past `i32::MAX`).
fn threshold(r: Requant) -> Option<i64> {
    let (mut lo, mut hi) = (0i64, i32::MAX as i64 + 1);
    let idx = |d: i64| r.apply(d as i32) >= softmax::MAX_INDEX;
    if !idx(i32::MAX as i64) {
        return None;
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if idx(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1500, 12), ..ProptestConfig::default() })]

    #[test]
    fn softmax_any_requant_is_bit_identical(
        multiplier in prop_oneof![(1i32 << 30)..=i32::MAX, 0i32..70000, Just(0), any::<i32>()],
        shift in -31i8..=30,
        scores in prop::collection::vec(prop_oneof![any::<i32>(), -(1i32 << 20)..(1 << 20), -300i32..300], 1..70),
        bytes in prop::collection::vec(any::<i8>(), 1..70),
        near in prop::collection::vec(-3i64..=3, 1..20),
    ) {
        let r = Requant { multiplier, shift };
        check_softmax_requant(r, &scores, &bytes)?;
        if multiplier > 0 {
            if let Some(t) = threshold(r) {
                let row: Vec<i32> = core::iter::once(0)
                    .chain(near.iter().map(|&o| (-(t + o)).clamp(i32::MIN as i64, 0) as i32))
                    .collect();
                check_softmax_requant(r, &row, &bytes)?;
                // The same differences shifted up (the row maximum is not 0).
                let up: Vec<i32> = row.iter().map(|&x| x.saturating_add(1 << 20)).collect();
                check_softmax_requant(r, &up, &bytes)?;
            }
        }
    }
}

/// One query row against a KV cache (the decoder's per-token path and the encoder–decoder's
/// cross-attention): every KV length 1..=65, causal with any first position (also past the
/// cache: all keys visible), head widths 4..=32, against `run_generic`, for `run` (row path on
/// the host, direct-V `SMLAD` kernel on DSP cores) and `run_packed` (the DSP algorithm with the
/// instructions emulated).
#[test]
fn single_query_rows_every_kv_length() {
    let mut x = 0x2545_f491u32;
    let mut byte = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as i8
    };
    // Under Miri: head widths with every residue mod 4, both sides of the switch to one head
    // (16, 17) and the widest; KV lengths 1..=10 (every residue mod 2, 4 and 8, two dominant-key
    // cases) and both sides of 32 and 64.
    let head_dims: Vec<usize> = if MIRI {
        vec![4, 5, 6, 7, 8, 16, 17, 32]
    } else {
        (4..=32).collect()
    };
    let kv_lengths: Vec<usize> = if MIRI {
        (1..=10).chain([17, 31, 32, 33, 64, 65]).collect()
    } else {
        (1..=65).collect()
    };
    for head_dim in head_dims {
        let heads = if head_dim <= 16 { 2 } else { 1 };
        let w = heads * head_dim;
        let p = AttentionParams::quantize(
            heads,
            head_dim,
            0.05,
            0.05,
            0.05,
            QParams {
                scale: 0.02,
                zero_point: -2,
            },
        )
        .unwrap();
        let att = p.as_attention();
        for &nk in &kv_lengths {
            let q: Vec<i8> = (0..w).map(|_| byte()).collect();
            let mut k: Vec<i8> = (0..nk * w).map(|_| byte()).collect();
            let v: Vec<i8> = (0..nk * w).map(|_| byte()).collect();
            if nk % 7 == 3 {
                // One dominant key: a probability of exactly 1.0.
                k[..w]
                    .iter_mut()
                    .zip(&q)
                    .for_each(|(k, &q)| *k = q.signum() * 127);
            }
            let masks = [
                Mask::None,
                Mask::Causal {
                    first_position: nk - 1,
                },
                Mask::Causal {
                    first_position: (nk * 5) % (nk + 3),
                },
                Mask::Causal { first_position: 0 },
            ];
            for mask in masks {
                fn rows(d: &[i8], w: usize) -> Rows<'_> {
                    Rows::contiguous(d, w).unwrap()
                }
                let mut a = vec![0i8; w];
                let mut s = vec![0i32; nk];
                att.run_generic(rows(&q, w), rows(&k, w), rows(&v, w), mask, &mut a, &mut s)
                    .unwrap();
                for var in ATTENTION_VARIANTS.iter().filter(|v| v.available) {
                    let mut b = vec![0i8; w];
                    (var.run)(
                        &att,
                        rows(&q, w),
                        rows(&k, w),
                        rows(&v, w),
                        mask,
                        &mut b,
                        &mut s,
                    )
                    .unwrap();
                    assert_eq!(a, b, "{}: head_dim {head_dim} keys {nk} {mask:?}", var.name);
                }
            }
        }
    }
}

/// The softmax and attention registries ([`softmax::SOFTMAX_VARIANTS`],
/// [`ATTENTION_VARIANTS`]) the suites above iterate and the dispatchers
/// ([`softmax::softmax_scores_in_place`], [`softmax::softmax_i8`], [`Attention::run`]) pick
/// from: the entries each registry documents, exactly one native entry (the build fails
/// otherwise; this checks it is the one for this build's target), the host twins available
/// everywhere, and every available entry and every dispatcher giving the generic reference's
/// bits on one ordinary case (a softmax row of 20 scores and of 20 bytes; 2 heads of 16, 5
/// queries over 7 keys, causal, where the DSP form takes its packed path). Guards against
/// (checked: each injected, this test fails): an entry wired to a wrong function (`run_packed`'s
/// entry → `|_, _, _, _, _, _, _| Ok(())`, writing nothing; the softmax `i8` form → one that
/// leaves the probabilities at 0), and an entry dropped from a registry.
#[test]
fn softmax_and_attention_registries_run_every_variant() {
    let names: Vec<&str> = softmax::SOFTMAX_VARIANTS.iter().map(|v| v.name).collect();
    assert_eq!(names, ["armv7em_dsp", "portable", "armv7em_dsp_emulated"]);
    let names: Vec<&str> = ATTENTION_VARIANTS.iter().map(|v| v.name).collect();
    assert_eq!(
        names,
        [
            "armv7em_dsp",
            "portable",
            "armv7em_dsp_emulated",
            "run_packed"
        ]
    );
    // This suite runs on the host: the portable entries are native, the `asm!` ones absent,
    // the twins there.
    let native = |n: &[(&str, bool, bool)]| -> Vec<String> {
        n.iter().filter(|v| v.1).map(|v| v.0.to_string()).collect()
    };
    let s: Vec<_> = softmax::SOFTMAX_VARIANTS
        .iter()
        .map(|v| (v.name, v.native, v.available))
        .collect();
    let a: Vec<_> = ATTENTION_VARIANTS
        .iter()
        .map(|v| (v.name, v.native, v.available))
        .collect();
    assert_eq!(native(&s), ["portable"]);
    assert_eq!(native(&a), ["portable"]);
    for (name, _, available) in s.iter().chain(&a) {
        assert_eq!(*available, *name != "armv7em_dsp", "{name}");
    }

    let (hi, lo) = exp_tables();
    let exp = ExpTable::new(&hi, &lo).unwrap();
    let r = Requant::from_real(0.01).unwrap();
    let scores: Vec<i32> = (0..20).map(|i| (i * 7919 % 600) - 300).collect();
    let bytes: Vec<i8> = (0..20).map(|i| ((i * 37) % 256) as u8 as i8).collect();
    let mut want = scores.clone();
    softmax::softmax_scores_in_place_generic(&mut want, r, exp).unwrap();
    let mut want8 = vec![0u16; bytes.len()];
    softmax::softmax_i8_generic(&bytes, r, exp, &mut want8).unwrap();
    // Not trivial: several nonzero probabilities in each row.
    assert!(want.iter().filter(|&&p| p > 0).count() > 1);
    assert!(want8.iter().filter(|&&p| p > 0).count() > 1);
    for var in softmax::SOFTMAX_VARIANTS.iter().filter(|v| v.available) {
        let mut got = scores.clone();
        (var.scores)(&mut got, r, exp).unwrap();
        assert_eq!(got, want, "{} scores", var.name);
        let mut got8 = vec![0u16; bytes.len()];
        (var.i8)(&bytes, r, exp, &mut got8).unwrap();
        assert_eq!(got8, want8, "{} i8", var.name);
    }
    let mut got = scores.clone();
    softmax::softmax_scores_in_place(&mut got, r, exp).unwrap();
    assert_eq!(got, want, "dispatched scores");
    let mut got8 = vec![0u16; bytes.len()];
    softmax::softmax_i8(&bytes, r, exp, &mut got8).unwrap();
    assert_eq!(got8, want8, "dispatched i8");

    let (heads, head_dim, n, m) = (2usize, 16usize, 5usize, 7usize);
    let w = heads * head_dim;
    let p = AttentionParams::quantize(
        heads,
        head_dim,
        0.05,
        0.05,
        0.05,
        QParams {
            scale: 0.02,
            zero_point: 1,
        },
    )
    .unwrap();
    let att = p.as_attention();
    let byte = |i: usize| ((i * 91 + 5) % 256) as u8 as i8;
    let q: Vec<i8> = (0..n * w).map(byte).collect();
    let k: Vec<i8> = (0..m * w).map(|i| byte(i + 1000)).collect();
    let v: Vec<i8> = (0..m * w).map(|i| byte(i + 5000)).collect();
    let mask = Mask::Causal { first_position: 2 };
    let mut want = vec![0i8; n * w];
    let mut s = vec![0i32; m];
    att.run_generic(
        Rows::contiguous(&q, w).unwrap(),
        Rows::contiguous(&k, w).unwrap(),
        Rows::contiguous(&v, w).unwrap(),
        mask,
        &mut want,
        &mut s,
    )
    .unwrap();
    assert!(want.iter().any(|&x| x != want[0]), "a constant output");
    for var in ATTENTION_VARIANTS.iter().filter(|v| v.available) {
        let mut got = vec![0i8; n * w];
        (var.run)(
            &att,
            Rows::contiguous(&q, w).unwrap(),
            Rows::contiguous(&k, w).unwrap(),
            Rows::contiguous(&v, w).unwrap(),
            mask,
            &mut got,
            &mut s,
        )
        .unwrap();
        assert_eq!(got, want, "{}", var.name);
    }
    let mut got = vec![0i8; n * w];
    att.run(
        Rows::contiguous(&q, w).unwrap(),
        Rows::contiguous(&k, w).unwrap(),
        Rows::contiguous(&v, w).unwrap(),
        mask,
        &mut got,
        &mut s,
    )
    .unwrap();
    assert_eq!(got, want, "dispatched");
}
