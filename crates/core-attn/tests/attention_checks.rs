//! Attention's parameter and shape checks, one rejected case per rule and the accepted edge
//! next to it (issue #17, the mutants of `attention.rs` that the other suites missed; see
//! `tests/MUTANTS.md`). Expected errors come from the documented contracts (`Attention`'s and
//! `Requant`'s docs, the module's shape rules), not from running the code.

use core_attn::attention::{Attention, AttentionParams};
use core_attn::requant::{QParams, Requant};
use core_attn::softmax::ExpTable;
use core_attn::{Error, MAX_WIDTH};

/// Under Miri (CI runs every suite interpreted, `.ci/miri`) the two kernel comparisons run a
/// subset of their cases (see there); the native run is unchanged.
const MIRI: bool = cfg!(miri);

fn params() -> AttentionParams {
    AttentionParams::quantize(2, 8, 0.05, 0.05, 0.02, QParams::symmetric(1.0)).unwrap()
}

fn bad_dim(what: &'static str, value: usize) -> Result<(), Error> {
    Err(Error::BadDimension { what, value })
}

/// `Attention::validate` rejects each bad field with the error naming it and accepts the
/// limits: `heads · head_dim = MAX_WIDTH`, output zero points −128 and 127.
///
/// Injected (mutants missed before this test): `validate` replaced by `Ok(())`;
/// `head_dim == 0 || width > MAX_WIDTH` → `&&` (a zero head width, or a too-wide layer with a
/// non-zero head width, then passes).
#[test]
fn validate_rejects_each_bad_field() {
    let p = params();
    let base = p.as_attention();
    assert_eq!(base.validate(), Ok(()));

    let with = |heads: usize, head_dim: usize| Attention {
        heads,
        head_dim,
        ..base
    };
    assert_eq!(with(0, 8).validate(), bad_dim("attention heads", 0));
    assert_eq!(with(2, 0).validate(), bad_dim("attention head_dim", 0));
    assert_eq!(
        with(1, MAX_WIDTH + 1).validate(),
        bad_dim("attention head_dim", MAX_WIDTH + 1)
    );
    assert_eq!(
        with(3, MAX_WIDTH / 2).validate(),
        bad_dim("attention head_dim", MAX_WIDTH / 2)
    );
    // Overflowing product: refused, not wrapped.
    assert_eq!(
        with(usize::MAX / 2 + 1, 2).validate(),
        bad_dim("attention head_dim", 2)
    );
    // Exactly MAX_WIDTH wide: accepted.
    assert_eq!(with(1, MAX_WIDTH).validate(), Ok(()));
    assert_eq!(with(2, MAX_WIDTH / 2).validate(), Ok(()));

    // A requantization whose total right shift `31 − shift` leaves 1..=62, or a negative
    // multiplier (`Requant`'s contract), in either of the two requantizations.
    for bad in [
        Requant {
            multiplier: -1,
            shift: 0,
        },
        Requant {
            multiplier: 1 << 30,
            shift: 31,
        },
        Requant {
            multiplier: 1 << 30,
            shift: -32,
        },
    ] {
        let a = Attention {
            score_to_index: bad,
            ..base
        };
        assert_eq!(
            a.validate(),
            Err(Error::BadRequant),
            "score_to_index {bad:?}"
        );
        let a = Attention {
            output: bad,
            ..base
        };
        assert_eq!(a.validate(), Err(Error::BadRequant), "output {bad:?}");
    }

    // Exp tables: entry 0 zero, or an increase, in either half.
    let (hi, lo) = (p.exp_hi, p.exp_lo);
    let mut zero = hi;
    zero[0] = 0;
    let mut rising = lo;
    rising[255] = rising[254] + 1;
    for (h, l) in [(&zero, &lo), (&hi, &zero), (&rising, &lo), (&hi, &rising)] {
        let a = Attention {
            exp: ExpTable { hi: h, lo: l },
            ..base
        };
        assert!(
            matches!(a.validate(), Err(Error::BadBlob(_))),
            "{:?}",
            a.validate()
        );
    }

    // Output zero point: an int8 value.
    for (z, ok) in [(-129, false), (-128, true), (127, true), (128, false)] {
        let a = Attention {
            output_zero_point: z,
            ..base
        };
        let want = if ok { Ok(()) } else { Err(Error::BadRequant) };
        assert_eq!(a.validate(), want, "zero point {z}");
    }
}

/// A fused `q | k | v` buffer whose length is not a whole number of `3 · width` rows is
/// refused, the error giving the largest whole length and the length found.
///
/// Injected: the `expected` field of that error computed as `n + stride` / `n / stride`
/// instead of `n · stride`.
#[test]
fn split_qkv_rejects_a_partial_row() {
    let p = params();
    let att = p.as_attention();
    let width = 16;
    let mut out = vec![0i8; 2 * width];
    let mut scratch = vec![0i32; 2];
    for extra in [1, width, 3 * width - 1] {
        let qkv = vec![0i8; 2 * 3 * width + extra];
        let want = Err(Error::ShapeMismatch {
            what: "attention qkv",
            expected: 2 * 3 * width,
            found: 2 * 3 * width + extra,
        });
        assert_eq!(
            att.self_attention(
                &qkv,
                &mut out,
                &mut scratch,
                core_attn::attention::Mask::None
            ),
            want
        );
        assert_eq!(
            att.self_attention_generic(
                &qkv,
                &mut out,
                &mut scratch,
                core_attn::attention::Mask::None
            ),
            want
        );
    }
}

/// `KvCache` against its contract: construction errors (zero width, unequal buffers, a
/// length that is not whole rows), `capacity = keys.len() / width`, `len` / `is_empty` after
/// each append, the rows read back equal to the rows appended, wrong row widths named, a full
/// cache reporting its capacity, `clear`, and `append_rows` from strided views.
///
/// Injected (mutants missed before this test, `tests/MUTANTS.md`): `capacity`, `len`,
/// `is_empty`, `clear`, `keys`, `values`, `append_rows` replaced by constants / no-ops; the
/// `expected` of the not-whole-rows error computed with `+` / `/` / `%`.
#[test]
fn kv_cache_contract() {
    use core_attn::attention::KvCache;
    use core_attn::tensor::Rows;

    let (mut k, mut v) = (vec![0i8; 12], vec![0i8; 12]);
    assert_eq!(
        KvCache::new(&mut k, &mut v, 0).map(|_| ()),
        bad_dim("kv cache width", 0)
    );
    let mut v11 = vec![0i8; 11];
    assert_eq!(
        KvCache::new(&mut k, &mut v11, 4).map(|_| ()),
        Err(Error::ShapeMismatch {
            what: "kv cache values",
            expected: 12,
            found: 11
        })
    );
    let (mut k14, mut v14) = (vec![0i8; 14], vec![0i8; 14]);
    assert_eq!(
        KvCache::new(&mut k14, &mut v14, 4).map(|_| ()),
        Err(Error::ShapeMismatch {
            what: "kv cache keys",
            expected: 12,
            found: 14
        })
    );

    // Three tokens of width 4.
    let rows_k: Vec<[i8; 4]> = (0..3).map(|t| [t, t + 10, -t, 7 * t]).collect();
    let rows_v: Vec<[i8; 4]> = (0..3).map(|t| [-t - 1, 2 * t, 100 - t, t - 50]).collect();
    let mut c = KvCache::new(&mut k, &mut v, 4).unwrap();
    assert_eq!(c.capacity(), 3);
    assert!(c.is_empty());
    assert_eq!(c.len(), 0);
    assert_eq!(c.keys().rows(), 0);
    for t in 0..3 {
        assert_eq!(
            c.append(&rows_k[t][..3], &rows_v[t]),
            Err(Error::ShapeMismatch {
                what: "kv cache key row",
                expected: 4,
                found: 3
            })
        );
        assert_eq!(
            c.append(&rows_k[t], &[0; 5]),
            Err(Error::ShapeMismatch {
                what: "kv cache value row",
                expected: 4,
                found: 5
            })
        );
        c.append(&rows_k[t], &rows_v[t]).unwrap();
        assert_eq!(c.len(), t + 1);
        assert!(!c.is_empty());
        let (ks, vs) = (c.keys(), c.values());
        assert_eq!(
            (ks.rows(), ks.width(), vs.rows(), vs.width()),
            (t + 1, 4, t + 1, 4)
        );
        for j in 0..=t {
            assert_eq!(ks.row(j), rows_k[j]);
            assert_eq!(vs.row(j), rows_v[j]);
        }
    }
    assert_eq!(
        c.append(&rows_k[0], &rows_v[0]),
        Err(Error::CacheFull { capacity: 3 })
    );
    assert_eq!(c.len(), 3);
    c.clear();
    assert!(c.is_empty());
    assert_eq!((c.len(), c.keys().rows(), c.values().rows()), (0, 0, 0));

    // append_rows: the K and V thirds of a fused [2][3·4] buffer.
    let fused: Vec<i8> = (0..24).map(|i| i as i8 - 12).collect();
    let kk = Rows::strided(&fused, 4, 2, 4, 12).unwrap();
    let vv = Rows::strided(&fused, 8, 2, 4, 12).unwrap();
    c.append_rows(kk, vv).unwrap();
    assert_eq!(c.len(), 2);
    for t in 0..2 {
        assert_eq!(c.keys().row(t), &fused[12 * t + 4..12 * t + 8]);
        assert_eq!(c.values().row(t), &fused[12 * t + 8..12 * t + 12]);
    }
    let one = Rows::strided(&fused, 8, 1, 4, 12).unwrap();
    assert_eq!(
        c.append_rows(kk, one),
        Err(Error::ShapeMismatch {
            what: "kv cache values",
            expected: 2,
            found: 1
        })
    );
    // One row left: the second of two is refused as a full cache, the first is kept.
    assert_eq!(c.append_rows(kk, vv), Err(Error::CacheFull { capacity: 3 }));
    assert_eq!(c.len(), 3);
    assert_eq!(c.keys().row(2), &fused[4..8]);
}

/// `run_packed` with two or more query rows packs each head's V into `PACK_WORDS` words when
/// `⌈nk/2⌉ · head_dim` fits and the head width is a multiple of 4 up to `PACK_MAX_HEAD_DIM`,
/// and otherwise takes another path; either way its outputs equal `run_generic`'s bit for bit.
/// Cases on both sides of each limit: `⌈nk/2⌉ · head_dim` = 544 (fits) and 560 / 576 (does
/// not), head widths 64 (fits) and 68 (a multiple of 4 past the limit), and 6 (not a multiple
/// of 4), 3 (below 4).
///
/// Injected (mutants missed before this test): `packed_fits` → `true`, its `&&` → `||`, its
/// `<=` → `>`, its `*` → `+` / `/`; `dsp_fits` → `true`, its `&&` → `||`, `%` → `/` / `+`,
/// `<=` → `>`: a layer that does not fit reaches the packed kernel, whose bounds checks stop
/// it (a debug assertion, or the output left unwritten in release builds).
#[test]
fn run_packed_at_the_packing_limits() {
    use core_attn::attention::{Mask, PACK_MAX_HEAD_DIM, PACK_WORDS};
    use core_attn::tensor::Rows;
    assert_eq!((PACK_WORDS, PACK_MAX_HEAD_DIM), (544, 64));
    let mut x = 0x9e37_79b9u32;
    let mut byte = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x >> 8) as i8
    };
    // Under Miri (about 4 ms per key·column here, 72 s for every case): one case on each side
    // of the `PACK_WORDS` limit (544 fits, 576 does not) and every head-width case.
    let cases: &[(usize, usize)] = if MIRI {
        &[(32, 34), (64, 17), (68, 4), (6, 5), (3, 5)]
    } else {
        &[
            (16, 67),
            (16, 68),
            (16, 69),
            (16, 70),
            (32, 34),
            (32, 35),
            (64, 16),
            (64, 17),
            (68, 4),
            (6, 5),
            (3, 5),
        ]
    };
    for &(head_dim, nk) in cases {
        let heads = 2;
        let w = heads * head_dim;
        let nq = 3;
        let p = AttentionParams::quantize(
            heads,
            head_dim,
            0.04,
            0.04,
            0.05,
            QParams {
                scale: 0.02,
                zero_point: 3,
            },
        )
        .unwrap();
        let att = p.as_attention();
        let q: Vec<i8> = (0..nq * w).map(|_| byte()).collect();
        let k: Vec<i8> = (0..nk * w).map(|_| byte()).collect();
        let v: Vec<i8> = (0..nk * w).map(|_| byte()).collect();
        fn rows(d: &[i8], w: usize) -> Rows<'_> {
            Rows::contiguous(d, w).unwrap()
        }
        for mask in [
            Mask::None,
            Mask::Causal {
                first_position: nk - nq,
            },
        ] {
            let mut want = vec![0i8; nq * w];
            let mut got = vec![0x55i8; nq * w];
            let mut s = vec![0i32; nk];
            att.run_generic(
                rows(&q, w),
                rows(&k, w),
                rows(&v, w),
                mask,
                &mut want,
                &mut s,
            )
            .unwrap();
            att.run_packed(
                rows(&q, w),
                rows(&k, w),
                rows(&v, w),
                mask,
                &mut got,
                &mut s,
            )
            .unwrap();
            assert_eq!(got, want, "head_dim {head_dim}, {nk} keys, {mask:?}");
        }
    }
}

/// Both fused-buffer entry points equal their separate-view kernels on the `q | k | v` thirds
/// of the rows, also for a layer exactly `MAX_WIDTH` wide (the largest width the split
/// accepts).
///
/// Injected (mutants missed before this test): `self_attention_generic` replaced by `Ok(())`
/// (output left unwritten); the split's `w > MAX_WIDTH` → `w >= MAX_WIDTH` (a `MAX_WIDTH`
/// layer refused).
#[test]
fn fused_entry_points_equal_the_view_kernels() {
    use core_attn::attention::Mask;
    use core_attn::tensor::Rows;
    let mut x = 0x1234_5678u32;
    let mut byte = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x >> 8) as i8
    };
    // Under Miri the `MAX_WIDTH` layer (about 2 minutes interpreted) is left out: its split
    // and kernels are the code the small layer runs; the native run checks the limit.
    let layers: &[(usize, usize, usize)] = if MIRI {
        &[(2, 8, 5)]
    } else {
        &[(2, 8, 5), (1, MAX_WIDTH, 1)]
    };
    for &(heads, head_dim, n) in layers {
        let w = heads * head_dim;
        let p =
            AttentionParams::quantize(heads, head_dim, 0.03, 0.03, 0.04, QParams::symmetric(1.5))
                .unwrap();
        let att = p.as_attention();
        let qkv: Vec<i8> = (0..n * 3 * w).map(|_| byte()).collect();
        let third = |t: usize| Rows::strided(&qkv, t * w, n, w, 3 * w).unwrap();
        for mask in [Mask::None, Mask::Causal { first_position: 0 }] {
            let mut want = vec![0i8; n * w];
            let mut s = vec![0i32; n];
            att.run_generic(third(0), third(1), third(2), mask, &mut want, &mut s)
                .unwrap();
            let mut got = vec![0x55i8; n * w];
            att.self_attention_generic(&qkv, &mut got, &mut s, mask)
                .unwrap();
            assert_eq!(
                got, want,
                "self_attention_generic {heads}x{head_dim} {mask:?}"
            );
            let mut got = vec![0x55i8; n * w];
            att.self_attention(&qkv, &mut got, &mut s, mask).unwrap();
            assert_eq!(got, want, "self_attention {heads}x{head_dim} {mask:?}");
        }
    }
}
