//! `rsqrt_u128` (the LayerNorm's integer reciprocal square root) against an independent oracle,
//! over a deterministic sweep that reaches every part of it: every seed-table interval, every
//! normalization shift (both 64-bit words, left and right shifts), perfect squares and their
//! neighbours, and a pseudo-random sample. It runs in well under a second, so that mutation
//! testing can use it alone with a short timeout (`tests/MUTANTS.md`, *`norm.rs`*): a mutant
//! of the seed table, `rsqrt_newton`, `normalize_even`, `rsqrt_u128` or `rsqrt_normalized`
//! that changes a result fails here, and one that makes the `±1` correction loops run
//! (nearly) forever runs into the timeout.
//!
//! The oracle does not use `rsqrt_u128_reference` or `isqrt_u64`: it finds the shift by
//! trying every `k`, takes the square root by an `f64` estimate corrected in `u128`, and the
//! reciprocal by a `u128` division, from the documented definition:
//! `tn = ⌊t / 4^k⌋ ∈ [2^60, 2^62)`, `s = ⌊√tn⌋`, `r = min(⌊(2^62 + ⌊s/2⌋) / s⌋, 2^32 − 1)`,
//! `(0, 0)` for `t = 0`.

use core_attn::norm::rsqrt_u128;

/// `⌊√n⌋` for `n < 2^64`: the `f64` root, then corrected by `±1` steps in `u128`.
fn floor_sqrt(n: u64) -> u64 {
    let n = n as u128;
    let mut s = (n as f64).sqrt() as u128;
    while s * s > n {
        s -= 1;
    }
    while (s + 1) * (s + 1) <= n {
        s += 1;
    }
    s as u64
}

/// The documented `(r, k)` of `t`, computed independently (see the module doc).
fn oracle(t: u128) -> (u32, i32) {
    if t == 0 {
        return (0, 0);
    }
    // The one k with ⌊t / 4^k⌋ ∈ [2^60, 2^62); for k < 0 the scaling is an exact multiplication.
    let (tn, k) = (-31i32..=34)
        .find_map(|k| {
            let tn = if k >= 0 {
                t.checked_div(1u128.checked_shl(2 * k as u32)?)?
            } else {
                t.checked_mul(1u128 << (-2 * k) as u32)?
            };
            ((1u128 << 60)..(1u128 << 62))
                .contains(&tn)
                .then_some((tn as u64, k))
        })
        .expect("every t ≥ 1 has a normalization shift");
    let s = floor_sqrt(tn) as u128;
    assert!(((1 << 30)..(1 << 31)).contains(&s), "oracle: s = {s}");
    let r = ((1u128 << 62) + s / 2) / s;
    (r.min(u32::MAX as u128) as u32, k)
}

fn check(t: u128) {
    assert_eq!(rsqrt_u128(t), oracle(t), "rsqrt_u128({t})");
}

/// The oracle itself, on values whose `(r, k)` is known by hand (`t = 4^j`: `tn = 2^60`,
/// `s = 2^30`, `r = 2^32` clamped to `2^32 − 1`) or from Python's `math.isqrt` (`t = 2^61`),
/// and within `2^-29` of `1/√t` in `f64`.
#[test]
fn oracle_sanity() {
    assert_eq!(oracle(0), (0, 0));
    // t = 1 = 2^60 · 4^-30: tn = 2^60, s = 2^30, r = 2^32 → clamped.
    assert_eq!(oracle(1), (u32::MAX, -30));
    assert_eq!(oracle(1 << 60), (u32::MAX, 0));
    assert_eq!(oracle(1 << 62), (u32::MAX, 1));
    // t = 2^61 (Python: s = math.isqrt(2**61), (2**62 + s//2)//s).
    assert_eq!(floor_sqrt(1 << 61), 1_518_500_249);
    assert_eq!(oracle(1 << 61), (3_037_000_502, 0));
    // The relative error of r·2^(−62−k) against 1/√t, in f64, over a few magnitudes.
    for t in [3u128, 1000, 1 << 40, 12_345_678_901_234_567, 1 << 100] {
        let (r, k) = oracle(t);
        let approx = r as f64 * 2f64.powi(-62 - k);
        let exact = 1.0 / (t as f64).sqrt();
        assert!(((approx - exact) / exact).abs() < 2f64.powi(-29), "t = {t}");
    }
}

/// `t` from 0 to 4096: every left shift of the normalization (`k` from −30 up). (Under Miri,
/// `.ci/miri`, a sample; the same for the seed intervals.)
#[test]
fn small_t() {
    let step = if cfg!(miri) { 97 } else { 1 };
    for t in (0u128..=4096).step_by(step) {
        check(t);
    }
}

/// Every power of two up to `2^127` and `u128::MAX`, each ±3: every normalization shift, in the
/// low word, across the word boundary and in the high word.
#[test]
fn powers_of_two_and_neighbours() {
    for e in 0..128u32 {
        for d in -3i128..=3 {
            if let Some(t) = (1u128 << e).checked_add_signed(d) {
                check(t);
            }
        }
    }
    check(u128::MAX);
    check(u128::MAX - 1);
    check(u64::MAX as u128 + 1);
}

/// Each of the 192 seed intervals (`2^24` values of `x = ⌊tn/2^30⌋`, `x ∈ [2^30, 2^32)`) at
/// its two ends, its middle and a pseudo-random point, with the low 30 bits of `tn` at both
/// ends, then shifted by `4^j` into other normalization shifts (left and right, both words).
#[test]
fn every_seed_interval() {
    let mut rng = SplitMix(7);
    for i in (64u64..256).step_by(if cfg!(miri) { 37 } else { 1 }) {
        let xs = [
            i << 24,
            (i << 24) + (1 << 23),
            ((i + 1) << 24) - 1,
            (i << 24) + rng.next() % (1 << 24),
        ];
        for x in xs {
            let tn = (x as u128) << 30;
            for t in [tn, tn + (1 << 30) - 1, tn + rng.next() as u128 % (1 << 30)] {
                check(t);
                for j in [1u32, 2, 17, 32, 33] {
                    check(t << (2 * j));
                    check((t << (2 * j)) + ((1 << (2 * j)) - 1));
                }
                check(t >> 40);
                check(t >> 60);
            }
        }
    }
}

/// Perfect squares and their neighbours (where `⌊√tn⌋` steps) for normalized roots: the first
/// and last 2048 roots of `[2^30, 2^31)` (where `r` is clamped, resp. smallest) and a stride.
#[test]
fn around_perfect_squares() {
    let stride = if cfg!(miri) { 1 << 26 } else { 65_537 };
    let roots = ((1u64 << 30)..(1 << 30) + 2048)
        .chain((1u64 << 31) - 2048..1 << 31)
        .chain(((1u64 << 30)..1 << 31).step_by(stride));
    for s in roots {
        let sq = s as u128 * s as u128;
        for t in [
            sq - 1,
            sq,
            sq + 1,
            sq + 2 * s as u128,
            sq + 2 * s as u128 + 1,
        ] {
            check(t);
        }
    }
}

/// A pseudo-random sample: normalized `tn` directly, and `t` of every bit length.
#[test]
fn pseudo_random_sample() {
    let n = if cfg!(miri) { 200 } else { 100_000 };
    let mut rng = SplitMix(0x5eed);
    for _ in 0..n {
        let tn = (1u128 << 60) + (rng.next() as u128 % (3 << 60));
        check(tn);
        let bits = rng.next() % 128 + 1;
        let t = ((rng.next() as u128) << 64 | rng.next() as u128) >> (128 - bits);
        check(t);
    }
}

/// Normalized `tn` where the Newton estimate of `r` is one unit off, so that one of the two
/// `±1` correction loops of `r` runs (a step down for the first list, up for the second). The
/// sweeps above never reach them: of the 4 294 934 528 pairs `(x = ⌊tn/2^30⌋, ⌊√tn⌋)` the
/// loop steps down for 252 and up for 440 (an exhaustive search with a copy of
/// `rsqrt_normalized`'s estimate, `tests/MUTANTS.md`); these are the first 12 of each, as
/// `tn = max(s², x·2^30)`. Their expected values come from the oracle, not from the search.
///
/// Guards against the correction loops of `r` broken (mutants `norm.rs:238:11` `r -= 1` →
/// `r += 1` / `r /= 1`, `241:11` `r += 1` → `r -= 1` / `r *= 1`, `237:17` `r·s > num` →
/// `r·s == num`, `237:13` `r * s` → `r + s` / `r / s`): each changes `r` for some of them.
#[test]
fn r_correction_loops_run() {
    for tn in R_STEPS_DOWN.iter().chain(R_STEPS_UP) {
        for j in [0u32, 5, 31] {
            check((*tn as u128) << (2 * j));
        }
    }
}

const R_STEPS_DOWN: &[u64] = &[
    1_173_249_120_806_397_504,
    1_245_949_704_821_053_584,
    1_259_507_684_828_410_000,
    1_289_739_416_779_634_704,
    1_301_331_189_623_239_681,
    1_301_331_189_679_783_936,
    1_306_432_063_080_893_281,
    1_306_432_063_565_463_552,
    1_362_914_885_760_454_849,
    1_399_778_670_171_635_776,
    1_433_419_365_014_795_041,
    1_494_287_586_978_798_096,
];

const R_STEPS_UP: &[u64] = &[
    1_182_406_925_392_805_888,
    1_187_566_716_315_090_409,
    1_187_566_716_566_110_208,
    1_187_566_717_639_852_032,
    1_194_073_976_419_123_200,
    1_194_073_977_492_865_024,
    1_204_687_915_423_105_024,
    1_204_687_916_496_846_848,
    1_205_138_757_066_424_320,
    1_205_138_758_140_166_144,
    1_208_075_414_111_518_720,
    1_208_075_415_185_260_544,
];

/// SplitMix64, a small deterministic generator (no dependency, same values under Miri).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
