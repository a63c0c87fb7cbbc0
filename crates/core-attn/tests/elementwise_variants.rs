//! The fast residual add and LayerNorm paths against their reference forms, bit for bit (the
//! elementwise part of the variants suite; `variants.rs` holds the linear/attention/softmax one).
//! Every check runs every entry of the registries ([`RESIDUAL_VARIANTS`],
//! [`LAYER_NORM_VARIANTS`], [`RSQRT_VARIANTS`]: the lists the dispatchers pick from) and the
//! dispatchers themselves.

use core_attn::norm::{
    rsqrt_u128_reference, LayerNorm, RsqrtVariant, LAYER_NORM_VARIANTS, RSQRT_VARIANTS,
};
use core_attn::requant::Requant;
use core_attn::residual::{ResidualAdd, RESIDUAL_VARIANTS};
use core_attn::MAX_WIDTH;
use proptest::prelude::*;

/// A residual add as the tests run it: `out = a ⊕ b` (`out` as long as `a`).
type AddForm = (String, Box<dyn Fn(&ResidualAdd, &[i8], &[i8], &mut [i8])>);

/// Every form to check: each registered kernel out of place and in place (where it declines,
/// the reference is written; [`check_all_pairs`] also requires the native kernel to take
/// every add in its range, so that declining is not a way to pass), the dispatchers (`run`,
/// `run_in_place`, `run_broadcast` with one row) and the generic loop.
fn add_forms() -> Vec<AddForm> {
    let mut forms: Vec<AddForm> = vec![
        (
            "run".into(),
            Box::new(|r, a, b, out| r.run(a, b, out).unwrap()),
        ),
        (
            "run_in_place".into(),
            Box::new(|r, a, b, out| {
                out.copy_from_slice(a);
                r.run_in_place(out, b).unwrap()
            }),
        ),
        (
            "run_in_place_generic".into(),
            Box::new(|r, a, b, out| {
                out.copy_from_slice(a);
                r.run_in_place_generic(out, b).unwrap()
            }),
        ),
        (
            "run_broadcast".into(),
            Box::new(|r, a, b, out| {
                out.copy_from_slice(a);
                if !b.is_empty() {
                    r.run_broadcast(out, b).unwrap()
                }
            }),
        ),
    ];
    for v in RESIDUAL_VARIANTS {
        forms.push((
            v.name.into(),
            Box::new(move |r, a, b, out| {
                if !(v.run)(r, a, b, out) {
                    reference(r, a, b, out)
                }
            }),
        ));
        forms.push((
            format!("{} in place", v.name),
            Box::new(move |r, a, b, out| {
                out.copy_from_slice(a);
                if !(v.run_in_place)(r, out, b) {
                    reference(r, a, b, out)
                }
            }),
        ));
    }
    forms
}

fn reference(r: &ResidualAdd, a: &[i8], b: &[i8], out: &mut [i8]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = r.add_one(x, y);
    }
}

/// Every `(a, b)` pair: every form ([`add_forms`]) against `add_one`, element by element; and
/// the native kernel takes every add in the 32-bit range (module docs of `residual`: right
/// shift minus `PRE_SHIFT` in `9..=31` for both ratios), so that declining is not a way to
/// pass.
fn check_all_pairs(add: &ResidualAdd) -> Result<(), TestCaseError> {
    let step = if cfg!(miri) { 37 } else { 1 };
    let values: Vec<i8> = (-128..=127i32).step_by(step).map(|v| v as i8).collect();
    let in_range = |r: Requant| r.multiplier >= 0 && (9..=31).contains(&(31 - r.shift as i32 - 12));
    if in_range(add.a_scale) && in_range(add.b_scale) {
        for v in RESIDUAL_VARIANTS.iter().filter(|v| v.native) {
            let mut out = vec![0i8; 4];
            prop_assert!(
                (v.run)(add, &[1, 2, 3, 4], &[5, 6, 7, 8], &mut out),
                "{} declined",
                v.name
            );
            let mut acc = [1i8, 2, 3, 4];
            prop_assert!(
                (v.run_in_place)(add, &mut acc, &[5, 6, 7, 8]),
                "{} declined",
                v.name
            );
        }
    }
    for &b in &values {
        let bs = vec![b; values.len()];
        for (name, form) in add_forms() {
            let mut out = vec![0i8; values.len()];
            form(add, &values, &bs, &mut out);
            for (i, &a) in values.iter().enumerate() {
                let want = add.add_one(a, b);
                prop_assert_eq!(out[i], want, "{} a={} b={} {:?}", name, a, b, add);
            }
        }
    }
    Ok(())
}

fn requant() -> impl Strategy<Value = Requant> {
    prop_oneof![
        (1i32 << 30..=i32::MAX, -31i8..=8)
            .prop_map(|(multiplier, shift)| Requant { multiplier, shift }),
        (0i32..=i32::MAX, -31i8..=8).prop_map(|(multiplier, shift)| Requant { multiplier, shift }),
        Just(Requant::ZERO),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 2 } else { 300 }, ..ProptestConfig::default() })]

    #[test]
    fn residual_fast_path_equals_add_one(
        a_scale in requant(),
        b_scale in requant(),
        a_zero_point in -128i32..=127,
        b_zero_point in -128i32..=127,
        output_zero_point in -128i32..=127,
    ) {
        let add = ResidualAdd { a_scale, a_zero_point, b_scale, b_zero_point, output_zero_point };
        prop_assume!(add.validate().is_ok());
        check_all_pairs(&add)?;
    }
}

/// The edges of the 32-bit form: the largest ratio (shift 8), `R = 31` (the last fast shift,
/// shift −12) and `R = 32` (the first reference one), the largest multiplier, extreme zero points.
#[test]
fn residual_named_edges() {
    let edges = [
        (i32::MAX, 8),
        (1 << 30, 8),
        (i32::MAX, -12),
        (i32::MAX, -13),
        ((1 << 30) + 12345, 0),
        (0, 0),
        (1, -31),
    ];
    for &(ma, sa) in &edges {
        for &(mb, sb) in &edges {
            for (za, zb, zo) in [(-128, 127, 0), (127, -128, -128), (0, 0, 127)] {
                let add = ResidualAdd {
                    a_scale: Requant {
                        multiplier: ma,
                        shift: sa,
                    },
                    a_zero_point: za,
                    b_scale: Requant {
                        multiplier: mb,
                        shift: sb,
                    },
                    b_zero_point: zb,
                    output_zero_point: zo,
                };
                add.validate().unwrap();
                check_all_pairs(&add).unwrap();
            }
        }
    }
}

/// One LayerNorm case: `rows` rows of `width` int8 values with their parameters.
#[derive(Debug, Clone)]
struct NormCase {
    width: usize,
    data: Vec<i8>,
    gamma: Vec<i32>,
    beta: Vec<i32>,
    epsilon: u64,
    output_zero_point: i32,
}

fn norm_case() -> impl Strategy<Value = NormCase> {
    (1usize..=80, 1usize..=4).prop_flat_map(|(width, rows)| {
        (
            // Full-range rows, narrow rows (small variance: small shifts) and near-constant ones.
            prop_oneof![
                proptest::collection::vec(any::<i8>(), width * rows),
                proptest::collection::vec(-2i8..=2, width * rows),
                proptest::collection::vec(40i8..=41, width * rows),
            ],
            proptest::collection::vec(any::<i32>(), width),
            proptest::collection::vec(any::<i32>(), width),
            // ε from 0 to the full u64 range (large ε: shifts of 32 and more).
            prop_oneof![Just(0u64), 0u64..1 << 40, any::<u64>()],
            -128i32..=127,
        )
            .prop_map(
                move |(data, gamma, beta, epsilon, output_zero_point)| NormCase {
                    width,
                    data,
                    gamma,
                    beta,
                    epsilon,
                    output_zero_point,
                },
            )
    })
}

/// Every LayerNorm form on `data`: each registered row kernel on every row, and the
/// dispatchers `run` and `run_in_place`.
fn norm_forms(ln: &LayerNorm<'_>, data: &[i8]) -> Vec<(&'static str, Vec<i8>)> {
    let mut forms = Vec::new();
    for v in LAYER_NORM_VARIANTS {
        let mut out = vec![0i8; data.len()];
        for (x, y) in data
            .chunks_exact(ln.width)
            .zip(out.chunks_exact_mut(ln.width))
        {
            (v.row)(ln, x, y);
        }
        forms.push((v.name, out));
        let mut out = data.to_vec();
        for row in out.chunks_exact_mut(ln.width) {
            (v.row_in_place)(ln, row);
        }
        forms.push((v.name, out));
    }
    let mut out = vec![0i8; data.len()];
    ln.run(data, &mut out).unwrap();
    forms.push(("run", out));
    let mut out = data.to_vec();
    ln.run_in_place(&mut out).unwrap();
    forms.push(("run_in_place", out));
    forms
}

fn check_norm(c: &NormCase) -> Result<(), TestCaseError> {
    let ln = LayerNorm {
        width: c.width,
        gamma: &c.gamma,
        beta: &c.beta,
        epsilon: c.epsilon,
        output_zero_point: c.output_zero_point,
    };
    let mut generic = c.data.clone();
    ln.run_in_place_generic(&mut generic).unwrap();
    for (name, out) in norm_forms(&ln, &c.data) {
        prop_assert_eq!(&out, &generic, "{} {:?}", name, c);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 3000 }, ..ProptestConfig::default() })]

    #[test]
    fn layer_norm_fast_path_equals_reference(c in norm_case()) {
        check_norm(&c)?;
    }
}

/// Rows that reach the ends of the shift range `8..=34`: the smallest variance with no ε
/// (shift 8) and, at widths of 4096 and more, `D²·ε` large enough for shifts of 32 and above
/// (the high-word branch, which the width-64 shapes of the shipped models never take).
#[test]
fn layer_norm_named_shift_extremes() {
    for width in [2usize, 64, 4096, 16384] {
        norm_extremes(width);
    }
}

fn norm_extremes(width: usize) {
    let rows: [Vec<i8>; 4] = [
        (0..width).map(|i| if i == 0 { 1 } else { 0 }).collect(),
        (0..width)
            .map(|i| if i % 2 == 0 { -128 } else { 127 })
            .collect(),
        vec![-128; width],
        (0..width).map(|i| (i as i32 * 4 - 128) as i8).collect(),
    ];
    // Under Miri the wide rows (4096 and 16384 values, three LayerNorm passes each, all
    // interpreted) take one ε that reaches shifts of 32 and more (the high-word branch): 2^40
    // at 4096, u64::MAX at 16384, with the extreme γ/β pair at 16384 and a small one at 4096,
    // on the alternating ±127/−128 row and the constant −128 one; the narrow widths keep every
    // combination.
    let wide = cfg!(miri) && width >= 4096;
    let epsilons: &[u64] = if wide && width >= 16384 {
        &[u64::MAX]
    } else if wide {
        &[1 << 40]
    } else {
        &[0, 1, 1 << 40, u64::MAX]
    };
    let gamma_beta: &[(i32, i32)] = if wide && width >= 16384 {
        &[(i32::MAX, i32::MIN)]
    } else if wide {
        &[(-3, 5)]
    } else {
        &[
            (i32::MAX, i32::MIN),
            (i32::MIN, i32::MAX),
            (1 << 16, 0),
            (-3, 5),
        ]
    };
    let rows = if wide { &rows[1..3] } else { &rows[..] };
    for &eps in epsilons {
        for row in rows {
            for &(g, b) in gamma_beta {
                check_norm(&NormCase {
                    width,
                    data: row.clone(),
                    gamma: vec![g; width],
                    beta: vec![b; width],
                    epsilon: eps,
                    output_zero_point: 0,
                })
                .unwrap();
            }
        }
    }
}

// ---- Integer reciprocal square root: the Newton form against the reference, every `(r, k)`.

fn check_rsqrt(t: u128) {
    for &RsqrtVariant {
        name, run: rsqrt, ..
    } in RSQRT_VARIANTS
    {
        assert_eq!(rsqrt(t), rsqrt_u128_reference(t), "{name}: t = {t}");
    }
}

/// `t` from 0 to `2^16` (or a sample under Miri): every `k` below the normalized range, where
/// `t` is shifted left.
#[test]
fn rsqrt_small_t_exhaustive() {
    let step = if cfg!(miri) { 4099 } else { 1 };
    for t in (0u128..=1 << 16).step_by(step) {
        check_rsqrt(t);
    }
}

/// Every power of two and of four up to the largest `T < 2^93` (and `u128::MAX`'s neighbourhood
/// of the normalization: 64-bit word edges), each ±3; `2^60 ± 1`, `2^62 ± 1`.
#[test]
fn rsqrt_powers_and_word_edges() {
    for e in 0..128u32 {
        for d in -3i128..=3 {
            if let Some(t) = (1u128 << e).checked_add_signed(d) {
                check_rsqrt(t);
            }
        }
    }
    for t in [
        (1u128 << 60) - 1,
        1 << 60,
        (1 << 60) + 1,
        (1 << 62) - 1,
        1 << 62,
        (1 << 62) + 1,
        (1 << 93) - 1,
        u64::MAX as u128,
        u128::MAX >> 35,
    ] {
        check_rsqrt(t);
    }
}

/// Perfect squares ±1 (where `⌊√tn⌋` steps) for a stride of roots over `[2^30, 2^31)` (the
/// normalized roots), the first and last 4096 roots (`r` clamped at `s = 2^30`), each also
/// scaled by `4^j` so that the normalization shifts them back (and truncates `+1` away).
#[test]
fn rsqrt_around_perfect_squares() {
    let stride = if cfg!(miri) { 1 << 26 } else { 257 };
    let first = (1u64 << 30)..(1 << 30) + 4096;
    let last = (1u64 << 31) - 4096..1 << 31;
    let strided = ((1u64 << 30)..1 << 31).step_by(stride);
    let roots: Vec<u64> = if cfg!(miri) {
        strided.chain([1 << 30, (1 << 31) - 1]).collect()
    } else {
        first.chain(last).chain(strided).collect()
    };
    for s in roots {
        let sq = (s * s) as u128;
        for t in [sq - 1, sq, sq + 1, sq + 2 * s as u128] {
            check_rsqrt(t);
        }
        for j in [1u32, 15] {
            check_rsqrt(sq << (2 * j));
            check_rsqrt((sq << (2 * j)) - 1);
            check_rsqrt((sq << (2 * j)) + 1);
        }
        // A small root: the square and its neighbours before normalization.
        let small = (s >> 16) as u128;
        check_rsqrt(small * small);
        check_rsqrt(small * small - 1);
    }
}

/// Each seed interval of the Newton form (`2^24` values of `x = ⌊tn/2^30⌋`) at its ends and
/// middle.
#[test]
fn rsqrt_seed_interval_edges() {
    for i in 64u64..256 {
        for x in [i << 24, (i << 24) + (1 << 23), ((i + 1) << 24) - 1] {
            let tn = (x as u128) << 30;
            for t in [tn, tn + (1 << 30) - 1] {
                check_rsqrt(t);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 8 } else { 100_000 }, ..ProptestConfig::default() })]

    #[test]
    fn rsqrt_equals_reference(
        t in prop_oneof![
            1u128..1 << 20,
            1u128..1 << 64,
            (1u128 << 60)..1 << 62,
            1u128..1 << 93,
            any::<u128>(),
        ],
    ) {
        for &RsqrtVariant { name, run: rsqrt, .. } in RSQRT_VARIANTS {
            prop_assert_eq!(rsqrt(t), rsqrt_u128_reference(t), "{}: t = {}", name, t);
        }
    }

    #[test]
    fn rsqrt_equals_reference_near_squares(s in 1u64..1 << 46, d in -2i64..=2) {
        let t = (s as u128 * s as u128) as i128 + d as i128;
        prop_assume!(t >= 0);
        for &RsqrtVariant { name, run: rsqrt, .. } in RSQRT_VARIANTS {
            prop_assert_eq!(rsqrt(t as u128), rsqrt_u128_reference(t as u128), "{}: t = {}", name, t);
        }
    }
}

/// Output zero points outside int8 (rejected by `validate`, still run): the fast path falls
/// back to the reference per-element formula, so the bits still agree.
#[test]
fn layer_norm_out_of_range_zero_point() {
    let width = 64;
    let data: Vec<i8> = (0..3 * width).map(|i| (i * 37 % 251) as i8).collect();
    for zp in [i32::MIN, -(1 << 23), -129, 128, 1 << 23, i32::MAX] {
        for (g, b) in [(i32::MAX, i32::MIN), (1 << 16, 0), (-3, 5)] {
            check_norm(&NormCase {
                width,
                data: data.clone(),
                gamma: vec![g; width],
                beta: vec![b; width],
                epsilon: 1 << 20,
                output_zero_point: zp,
            })
            .unwrap();
        }
    }
}

/// The rounding of the normalized value `ñ` (Q24) in the fast path, made visible: with
/// `γ = i32::MIN` (`−2^31`) and `β = 128·m`, `y = ⌊(m + 256 − ñ) / 512⌋`, so one unit of `ñ`
/// moves the output exactly when `m + 256 − ñ` is at a multiple of 512. Each of 32 input values
/// (ε at its largest keeps `|ñ| < 2^16`, unsaturated) meets every `m` in `0..512`, so the outputs
/// differ from the reference formula's whenever `ñ` is rounded differently. Mutation testing
/// (issue #17) found `1 << (shift − 1)` → `1 >> (shift − 1)` (`norm.rs` 370:24, `ñ` truncated)
/// and `shift − 1` → `shift / 1` (370:37, rounded up a whole unit) passing every other test:
/// with random γ the one-unit difference almost never reaches an output. At the full width
/// `D²·ε` makes the shift 32 or more, so this is also the test of the high-word branch with
/// unsaturated outputs (the extremes above saturate or round to β there): it catches `shift − 32`
/// → `shift / 32` (385:30), `d * v` → `d + v` (387:28), `c · r` → `c + r` / `c / r` (388:35),
/// `>> s` → `<< s` (389:44) and `q >> 32` → `q << 32` (389:29), all missed before; and the
/// reference formula's own `1 << (shift − 1)` → `>>` (482:53, `output_one`).
#[test]
fn layer_norm_fast_path_rounds_the_normalized_value() {
    // Under Miri 8 input values (4096 elements), natively 32 (the maximum width).
    let values = if cfg!(miri) { 8 } else { 32 };
    let width = 512 * values;
    let data: Vec<i8> = (0..width).map(|i| (i / 512) as i8).collect();
    let beta: Vec<i32> = (0..width).map(|i| 128 * (i % 512) as i32).collect();
    check_norm(&NormCase {
        width,
        data,
        gamma: vec![i32::MIN; width],
        beta,
        epsilon: u64::MAX,
        output_zero_point: 0,
    })
    .unwrap();
}

/// Moderate γ and β (a few output LSBs, unsaturated) with every low bit of β used, at the full
/// width: the fast path's word-split `β·2^24` must keep β's low byte, which moves the sum by up
/// to `255·2^24` (`2^-8` of an output LSB) and so changes an output only near a rounding
/// boundary: about one element in 500 here. Mutation testing (issue #17) found
/// `(β as u32) << 24` → `>> 24` (`norm.rs` 402:32, the low byte dropped) passing every other
/// test (random γ saturate).
#[test]
fn layer_norm_fast_path_keeps_the_low_bits_of_beta() {
    let width = if cfg!(miri) { 1024 } else { MAX_WIDTH };
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let data: Vec<i8> = (0..width).map(|_| next() as i8).collect();
    // |γ| < 2^20 (16 output LSBs per unit), |β| < 2^22 (64 LSBs).
    let gamma: Vec<i32> = (0..width).map(|_| (next() as i32) >> 11).collect();
    let beta: Vec<i32> = (0..width).map(|_| (next() as i32) >> 9).collect();
    for epsilon in [0, 1 << 40] {
        check_norm(&NormCase {
            width,
            data: data.clone(),
            gamma: gamma.clone(),
            beta: beta.clone(),
            epsilon,
            output_zero_point: -3,
        })
        .unwrap();
    }
}

/// The elementwise registries the suite above iterates and the dispatchers pick from: names
/// unique per registry, each holding the kernels it documents with exactly one native entry,
/// and every entry and every dispatcher giving its reference's bits on one ordinary case each
/// (a residual add with the fast 32-bit terms, which the kernel must take, a 64-wide LayerNorm
/// of 3 rows, a spread of `t`). Guards against (checked: each injected, this test fails): an
/// entry wired to a wrong function (the residual's in-place form → one that leaves `acc` as it
/// is; the LayerNorm row kernel → one that leaves the row as it is; the rsqrt entry →
/// `|t| (t as u32, 0)`), a kernel that declines what it should take (`term32` → `|_, _, _, _|
/// false`), and an entry dropped from a registry.
#[test]
fn elementwise_registry_runs_every_variant() {
    fn names<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
        let v: Vec<&str> = it.collect();
        for (i, a) in v.iter().enumerate() {
            assert!(!v[i + 1..].contains(a), "duplicate variant {a}");
        }
        v
    }
    let r = names(RESIDUAL_VARIANTS.iter().map(|v| v.name));
    assert_eq!(r, ["term32"]);
    let n = names(LAYER_NORM_VARIANTS.iter().map(|v| v.name));
    assert_eq!(n, ["fast"]);
    let q = names(RSQRT_VARIANTS.iter().map(|v| v.name));
    assert_eq!(q, ["newton"]);
    // Exactly one native entry each (the build fails otherwise): the one the dispatchers run.
    assert_eq!(RESIDUAL_VARIANTS.iter().filter(|v| v.native).count(), 1);
    assert_eq!(LAYER_NORM_VARIANTS.iter().filter(|v| v.native).count(), 1);
    assert_eq!(RSQRT_VARIANTS.iter().filter(|v| v.native).count(), 1);

    let add = ResidualAdd {
        a_scale: Requant {
            multiplier: 1 << 30,
            shift: 0,
        },
        a_zero_point: 3,
        b_scale: Requant {
            multiplier: 1_500_000_000,
            shift: -1,
        },
        b_zero_point: -7,
        output_zero_point: 2,
    };
    add.validate().unwrap();
    let a: Vec<i8> = (0..200).map(|i| (i * 37 % 256) as u8 as i8).collect();
    let b: Vec<i8> = (0..200).map(|i| (i * 91 % 256) as u8 as i8).collect();
    let want: Vec<i8> = a.iter().zip(&b).map(|(&x, &y)| add.add_one(x, y)).collect();
    // The case is not trivial: the add changes the input.
    assert_ne!(want, a);
    for v in RESIDUAL_VARIANTS {
        let mut out = vec![0i8; a.len()];
        assert!((v.run)(&add, &a, &b, &mut out), "{} declined", v.name);
        assert_eq!(out, want, "residual {}", v.name);
        let mut acc = a.clone();
        assert!((v.run_in_place)(&add, &mut acc, &b), "{} declined", v.name);
        assert_eq!(acc, want, "residual {} in place", v.name);
    }
    for (name, form) in add_forms() {
        let mut out = vec![0i8; a.len()];
        form(&add, &a, &b, &mut out);
        assert_eq!(out, want, "residual {name}");
    }

    let width = 64;
    let data: Vec<i8> = (0..3 * width).map(|i| (i * 53 % 251) as u8 as i8).collect();
    let gamma: Vec<i32> = (0..width as i32).map(|i| (i - 20) << 14).collect();
    let beta: Vec<i32> = (0..width as i32).map(|i| i * 1000 - 30_000).collect();
    let ln = LayerNorm {
        width,
        gamma: &gamma,
        beta: &beta,
        epsilon: 1 << 20,
        output_zero_point: -1,
    };
    let mut want = data.clone();
    ln.run_in_place_generic(&mut want).unwrap();
    assert_ne!(want, data);
    for (name, out) in norm_forms(&ln, &data) {
        assert_eq!(out, want, "layer norm {name}");
    }

    for &RsqrtVariant {
        name, run: rsqrt, ..
    } in RSQRT_VARIANTS
    {
        for t in [1u128, 2, 3, 1 << 40, (1 << 62) + 12345, u128::MAX] {
            assert_eq!(rsqrt(t), rsqrt_u128_reference(t), "{name}: t = {t}");
        }
    }
}
