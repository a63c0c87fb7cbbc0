//! Grouped-query attention (`Attention::run_grouped`, issue 14): against the generic one-head
//! kernel (`Attention::run_generic` with `heads = 1`) run head by head on the key/value head's
//! columns — an independent computation of the same definition — on random shapes, groups,
//! masks and key counts, including rows past the paired kernel's stack buffer.
//!
//! Bugs this catches (each injected by hand and seen to fail, 2026-12): the second head of a
//! pair extended from the first head's query (`extend(qa, qeb)`), a pair whose heads sit in
//! different key/value groups (partner test `(h + 1) / group == h / group` → `true`, group
//! 3), the two heads' outputs swapped, the paired scores' odd and even key halves swapped in
//! the portable twin (`dsp/gqa.rs`), the second head's scores placed after the first's when
//! `scratch` holds only one row (`2 * visible` → `visible`). The `asm!` form of the paired
//! scores is checked on the device (bench firmware and `tests/qemu_models.rs`: logits equal
//! the host's).

use core_attn::attention::{Attention, AttentionParams, Mask, GQA_PAIR_MAX_KEYS};
use core_attn::requant::QParams;
use core_attn::softmax::ExpTable;
use core_attn::tensor::Rows;
use proptest::prelude::*;

/// xorshift bytes.
fn bytes(seed: u64, n: usize) -> Vec<i8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as i8
        })
        .collect()
}

/// The reference: every query head `h` through the generic one-head kernel over the
/// columns of key/value head `h / (heads / kv_heads)`.
#[allow(clippy::too_many_arguments)]
fn reference(
    att: &Attention<'_>,
    kv_heads: usize,
    q: &[i8],
    k: &[i8],
    v: &[i8],
    n: usize,
    m: usize,
    mask: Mask,
) -> Vec<i8> {
    let (dh, heads) = (att.head_dim, att.heads);
    let (w, kvw) = (heads * dh, kv_heads * dh);
    let group = heads / kv_heads;
    let one = Attention { heads: 1, ..*att };
    let mut out = vec![0i8; n * w];
    let mut scratch = vec![0i32; m];
    for i in 0..n {
        let row_mask = match mask {
            Mask::None => Mask::None,
            Mask::Causal { first_position } => Mask::Causal {
                first_position: first_position + i,
            },
        };
        for h in 0..heads {
            let c = (h / group) * dh;
            let kh = Rows::contiguous(k, kvw).unwrap().columns(c, dh).unwrap();
            let vh = Rows::contiguous(v, kvw).unwrap().columns(c, dh).unwrap();
            let qh = Rows::strided(q, i * w + h * dh, 1, dh, w).unwrap();
            let o = &mut out[i * w + h * dh..i * w + (h + 1) * dh];
            one.run_generic(qh, kh, vh, row_mask, o, &mut scratch)
                .unwrap();
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn grouped(
    att: &Attention<'_>,
    kv_heads: usize,
    q: &[i8],
    k: &[i8],
    v: &[i8],
    n: usize,
    m: usize,
    mask: Mask,
) -> Vec<i8> {
    let (w, kvw) = (att.heads * att.head_dim, kv_heads * att.head_dim);
    let mut out = vec![0i8; n * w];
    let mut scratch = vec![0i32; m];
    att.run_grouped(
        kv_heads,
        Rows::contiguous(q, w).unwrap(),
        Rows::contiguous(k, kvw).unwrap(),
        Rows::contiguous(v, kvw).unwrap(),
        mask,
        &mut out,
        &mut scratch,
    )
    .unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 256 }))]

    #[test]
    fn grouped_equals_generic_head_by_head(
        kv_heads in 1usize..=3,
        group in 1usize..=4,
        head_dim in prop_oneof![Just(8usize), Just(16), Just(4), Just(12), Just(32), 1usize..=10],
        n in 1usize..=3,
        m in 1usize..=if cfg!(miri) { 9 } else { 70 },
        causal in any::<bool>(),
        first in 0usize..80,
        s in 0.01f64..0.2,
        seed in any::<u64>(),
    ) {
        let heads = kv_heads * group;
        let (w, kvw) = (heads * head_dim, kv_heads * head_dim);
        let q = bytes(seed, n * w);
        let k = bytes(seed ^ 0x9e37_79b9, m * kvw);
        let v = bytes(seed ^ 0x7f4a_7c15, m * kvw);
        let p = AttentionParams::quantize(heads, head_dim, s, s, s,
            QParams { scale: 0.02, zero_point: 1 }).unwrap();
        let att = p.as_attention();
        let mask = if causal { Mask::Causal { first_position: first } } else { Mask::None };
        prop_assert_eq!(
            grouped(&att, kv_heads, &q, &k, &v, n, m, mask),
            reference(&att, kv_heads, &q, &k, &v, n, m, mask)
        );
    }
}

/// Rows with more visible keys than the paired kernel holds (`GQA_PAIR_MAX_KEYS`) go head by
/// head; rows at exactly the limit are paired: both equal the reference (Llama shape: 8 query
/// heads over 4 key/value heads of width 8).
#[test]
fn grouped_around_the_pair_limit() {
    let (heads, kv_heads, dh) = (8usize, 4usize, 8usize);
    let p = AttentionParams::quantize(
        heads,
        dh,
        0.05,
        0.05,
        0.05,
        QParams {
            scale: 0.02,
            zero_point: 0,
        },
    )
    .unwrap();
    let att = p.as_attention();
    let m = GQA_PAIR_MAX_KEYS + 3;
    let (w, kvw) = (heads * dh, kv_heads * dh);
    let q = bytes(11, 4 * w);
    let k = bytes(12, m * kvw);
    let v = bytes(13, m * kvw);
    // Query rows at positions limit − 2 … limit + 1: visible keys limit − 1 … limit + 2.
    let mask = Mask::Causal {
        first_position: GQA_PAIR_MAX_KEYS - 2,
    };
    assert_eq!(
        grouped(&att, kv_heads, &q, &k, &v, 4, m, mask),
        reference(&att, kv_heads, &q, &k, &v, 4, m, mask)
    );
}

/// Flat exp tables: with one visible key its probability is exactly 1.0 (`0x8000`), which
/// `SMLAD` reads as −32768 and `fix_big` corrects, for either head of a pair; with more keys,
/// small row sums.
#[test]
fn grouped_probability_one_is_exact() {
    let (heads, kv_heads, dh) = (4usize, 2usize, 8usize);
    let p = AttentionParams::quantize(
        heads,
        dh,
        0.05,
        0.05,
        0.05,
        QParams {
            scale: 0.02,
            zero_point: 1,
        },
    )
    .unwrap();
    for t in [[256u16; 256], [2000; 256], [20000; 256]] {
        let mut att = p.as_attention();
        att.exp = ExpTable::new(&t, &t).unwrap();
        for (n, m, first) in [(1usize, 1usize, 0usize), (2, 5, 0), (3, 17, 2), (1, 9, 8)] {
            let (w, kvw) = (heads * dh, kv_heads * dh);
            let q = bytes(n as u64 * 31 + m as u64, n * w);
            let k = bytes(m as u64 * 7 + 1, m * kvw);
            let v = bytes(m as u64 * 5 + 3, m * kvw);
            for mask in [
                Mask::None,
                Mask::Causal {
                    first_position: first,
                },
            ] {
                assert_eq!(
                    grouped(&att, kv_heads, &q, &k, &v, n, m, mask),
                    reference(&att, kv_heads, &q, &k, &v, n, m, mask),
                    "table {} n {n} m {m} {mask:?}",
                    t[0]
                );
            }
        }
    }
}

/// Bad shapes are errors naming what is wrong, never panics.
#[test]
fn grouped_rejects_bad_shapes() {
    let p = AttentionParams::quantize(
        4,
        8,
        0.05,
        0.05,
        0.05,
        QParams {
            scale: 0.02,
            zero_point: 0,
        },
    )
    .unwrap();
    let att = p.as_attention();
    let q = vec![0i8; 32];
    let kv = [0i8; 16 * 3];
    let mut out = vec![0i8; 32];
    let mut scratch = vec![0i32; 3];
    fn rows(d: &[i8], w: usize) -> Rows<'_> {
        Rows::contiguous(d, w).unwrap()
    }
    let run = |kv_heads: usize, kvw: usize, out: &mut [i8], scratch: &mut [i32]| {
        let kv = &kv[..3 * kvw];
        att.run_grouped(
            kv_heads,
            rows(&q, 32),
            rows(kv, kvw),
            rows(kv, kvw),
            Mask::None,
            out,
            scratch,
        )
    };
    // 3 key/value heads do not divide 4 query heads; 0 neither.
    for kvh in [0usize, 3] {
        let e = run(kvh, 16, &mut out, &mut scratch).unwrap_err();
        assert!(format!("{e}").contains("kv heads"), "{e}");
    }
    // K/V 16 wide but 4 key/value heads of 8 need 32.
    let e = run(4, 16, &mut out, &mut scratch).unwrap_err();
    assert!(format!("{e}").contains("key width"), "{e}");
    // Scratch shorter than the keys.
    let e = run(2, 16, &mut out, &mut scratch[..2]).unwrap_err();
    assert!(format!("{e}").contains("scratch"), "{e}");
    // Output not one row of the query width.
    let e = run(2, 16, &mut out[..31], &mut scratch).unwrap_err();
    assert!(format!("{e}").contains("output"), "{e}");
}
