//! Sinusoidal and learned positional encodings against independent f64 computations.

use core_attn::position::{
    add_learned, add_sinusoidal, fill_sinusoidal, frequency, sinusoid, sinusoid_i8, SinusoidalTable,
};
use core_attn::reference::position as reference;
use core_attn::requant::{QParams, Requant};
use core_attn::residual::ResidualAdd;
use core_attn::Error;

/// Positions the contract covers.
const POSITIONS: u32 = 8192;

/// The contract's bound on the fixed-point sinusoid.
const CONTRACT: f64 = 1.0 / 1024.0;

/// The bound the module documents (2^-30 for the fixed-point value, plus 2^-36 for the f64
/// reference's own error at angles up to 8192).
const DOCUMENTED: f64 = 1.0 / (1u64 << 30) as f64 + 1.0 / (1u64 << 36) as f64;

/// Under Miri one fixed-point sinusoid takes milliseconds (the `fixed` arithmetic is
/// interpreted), so the exhaustive sweeps become samples that keep both ends: see [`sample`].
/// The arithmetic is the same `const fn` code for every argument (no unsafe anywhere in reach),
/// and the native run keeps every position and index.
const MIRI: bool = cfg!(miri);

/// `0..n` natively; under Miri the first three, the last two, the middle and a stride of
/// about `n / 5`.
fn sample(n: u32) -> Vec<u32> {
    if !MIRI {
        return (0..n).collect();
    }
    let mut v: Vec<u32> = [0, 1, 2, n / 2, n.saturating_sub(2), n.saturating_sub(1)]
        .into_iter()
        .chain((0..n).step_by((n as usize / 5).max(1)))
        .filter(|&x| x < n)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Max |sinusoid − f64| over every position < 8192 and every index of `width` (a sample of
/// both under Miri).
fn max_error(width: u32) -> f64 {
    let mut worst = 0.0f64;
    let positions = sample(POSITIONS);
    for index in sample(width) {
        for &pos in &positions {
            let v = sinusoid(pos, index, width).unwrap();
            let v = v.to_num::<f64>();
            assert!(
                (-1.0..=1.0).contains(&v),
                "pos {pos} index {index} width {width}: {v}"
            );
            let e = (v - reference::sinusoid(pos, index, width)).abs();
            worst = worst.max(e);
        }
    }
    worst
}

#[test]
fn sinusoid_width_1024_every_position_every_index() {
    let worst = max_error(1024);
    println!(
        "width 1024: max abs error {worst:e} = 2^{:.1}",
        worst.log2()
    );
    assert!(worst <= CONTRACT);
    assert!(worst <= DOCUMENTED, "{worst:e}");
}

#[test]
fn sinusoid_representative_widths_every_position() {
    // Split over two threads: the machine has two cores.
    let widths = [
        1u32, 2, 3, 4, 5, 7, 16, 63, 64, 65, 127, 128, 255, 256, 384, 512, 768, 1000, 1023,
    ];
    let (a, b): (Vec<u32>, Vec<u32>) = widths.iter().partition(|&&w| w % 2 == 0);
    let results: Vec<(u32, f64)> = std::thread::scope(|s| {
        let ha = s.spawn(|| a.iter().map(|&w| (w, max_error(w))).collect::<Vec<_>>());
        let hb = s.spawn(|| b.iter().map(|&w| (w, max_error(w))).collect::<Vec<_>>());
        let mut r = ha.join().unwrap();
        r.extend(hb.join().unwrap());
        r
    });
    for (w, worst) in results {
        println!("width {w}: max abs error {worst:e}");
        assert!(worst <= CONTRACT, "width {w}: {worst:e}");
        assert!(worst <= DOCUMENTED, "width {w}: {worst:e}");
    }
}

#[test]
fn sinusoid_exact_points_and_odd_indices() {
    // Position 0: sin 0 = 0 on even columns, cos 0 = 1 on odd ones, exactly.
    for width in [1u32, 2, 3, 64, 1024] {
        for index in sample(width) {
            let v = sinusoid(0, index, width).unwrap().to_num::<f64>();
            assert_eq!(v, if index % 2 == 0 { 0.0 } else { 1.0 });
        }
    }
    // Columns 2k and 2k+1 share the frequency ω_k = 10000^(-2k/d), ω_0 = 1.
    for width in [2u32, 3, 7, 64, 1024] {
        for index in sample(width) {
            let w = frequency(index, width).unwrap().to_num::<f64>();
            let k = (index / 2) as f64;
            let expected = 10000f64.powf(-2.0 * k / width as f64);
            assert!(
                (w - expected).abs() <= 1e-15 * expected.max(1e-300) + 1e-18,
                "{w} {expected}"
            );
            assert_eq!(frequency(index, width), frequency(index & !1, width));
        }
    }
    // An odd width ends on a sine column.
    let v = sinusoid(3, 2, 3).unwrap().to_num::<f64>();
    let expected = (3.0 * 10000f64.powf(-2.0 / 3.0)).sin();
    assert!((v - expected).abs() < 1e-8);
    // Bad arguments are errors, not panics.
    assert!(matches!(sinusoid(0, 4, 4), Err(Error::BadDimension { .. })));
    assert!(matches!(sinusoid(0, 0, 0), Err(Error::BadDimension { .. })));
    assert!(matches!(
        sinusoid_i8(0, 9, 2),
        Err(Error::BadDimension { .. })
    ));
}

#[test]
fn sinusoid_large_positions_stay_accurate() {
    for pos in [8192u32, 65_535, 1 << 20, u32::MAX] {
        for index in [0u32, 1, 2, 3, 100, 511, 1022, 1023] {
            let v = sinusoid(pos, index, 1024).unwrap().to_num::<f64>();
            let e = (v - reference::sinusoid(pos, index, 1024)).abs();
            // f64's own angle error at 2^32 is about 2^-20.
            assert!(e <= 1e-5, "pos {pos} index {index}: {e:e}");
        }
    }
}

/// int8 table vs round(127·f64): within 0.5 LSB + 2^-10·127.
fn check_int8_table(table: &[i8], width: usize, first: usize) {
    let bound = 0.5 + 127.0 / 1024.0;
    let mut worst = 0.0f64;
    for (r, row) in table.chunks_exact(width).enumerate() {
        for (i, &q) in row.iter().enumerate() {
            assert!((-127..=127).contains(&q));
            let exact = 127.0 * reference::sinusoid((first + r) as u32, i as u32, width as u32);
            let e = (q as f64 - exact).abs();
            worst = worst.max(e);
            assert!(e <= bound, "pos {} index {i}: {q} vs {exact}", first + r);
            // Away from rounding ties the fixed-point table is exactly round(127·PE).
            if (exact - exact.floor() - 0.5).abs() > 1e-6 {
                assert_eq!(q as f64, exact.round(), "pos {} index {i}", first + r);
            }
        }
    }
    assert!(worst <= 0.5 + 1e-6, "{worst}");
}

#[test]
fn int8_table_matches_rounded_f64() {
    for width in [1usize, 2, 3, 64, 65, 128, 1024] {
        // Natively the whole table; under Miri the rows of the spot checks below, each filled
        // on its own from its position (`fill_sinusoidal`'s `first_position`), at width 1024
        // the first and the last row only.
        let rows: Vec<(usize, usize)> = if MIRI && width >= 1024 {
            vec![(0, 1), (8191, 1)]
        } else if MIRI {
            vec![(0, 2), (17, 1), (4095, 1), (8191, 1)]
        } else {
            vec![(0, POSITIONS as usize)]
        };
        let mut table = vec![0i8; POSITIONS as usize * width];
        for (first, count) in rows {
            let part = &mut table[first * width..(first + count) * width];
            fill_sinusoidal(part, width, first).unwrap();
            check_int8_table(part, width, first);
        }
        // The single-entry function agrees with the table.
        let spots: &[usize] = if MIRI && width >= 1024 {
            &[0, 8191]
        } else {
            &[0, 1, 17, 4095, 8191]
        };
        for &pos in spots {
            for i in sample(width as u32) {
                assert_eq!(
                    sinusoid_i8(pos as u32, i, width as u32).unwrap(),
                    table[pos * width + i as usize]
                );
            }
        }
    }
}

#[test]
fn rows_are_unique() {
    // Under Miri: widths 64 and 65, the first and the last 8 positions.
    let widths: &[usize] = if MIRI { &[64, 65] } else { &[64, 65, 128, 512] };
    for &width in widths {
        let table = if MIRI {
            let mut t = vec![0i8; 16 * width];
            let (head, tail) = t.split_at_mut(8 * width);
            fill_sinusoidal(head, width, 0).unwrap();
            fill_sinusoidal(tail, width, POSITIONS as usize - 8).unwrap();
            t
        } else {
            let mut t = vec![0i8; POSITIONS as usize * width];
            fill_sinusoidal(&mut t, width, 0).unwrap();
            t
        };
        let mut rows: Vec<&[i8]> = table.chunks_exact(width).collect();
        rows.sort_unstable();
        for pair in rows.windows(2) {
            assert_ne!(pair[0], pair[1], "width {width}: two positions share a row");
        }
    }
}

#[test]
fn deterministic_and_independent_of_sequence_length() {
    // Short and long tables, width, and an offset fill (`OFF`.. `OFF + MID`): a tenth of the
    // native sizes and width 16 under Miri (about 4 ms per entry there).
    const SHORT: usize = if MIRI { 5 } else { 50 };
    const LONG: usize = if MIRI { 50 } else { 500 };
    const W: usize = if MIRI { 16 } else { 64 };
    const OFF: usize = if MIRI { 10 } else { 100 };
    const MID: usize = if MIRI { 20 } else { 200 };
    let short = SinusoidalTable::<SHORT, W>::new();
    let long = Box::new(SinusoidalTable::<LONG, W>::new());
    for p in 0..SHORT {
        assert_eq!(short.row(p).unwrap(), long.row(p).unwrap());
    }
    assert_eq!(short.as_flat(), &long.as_flat()[..SHORT * W]);
    assert_eq!(short, SinusoidalTable::<SHORT, W>::new());
    // Filling from an offset gives the same rows as filling from 0.
    let mut from0 = vec![0i8; LONG * W];
    fill_sinusoidal(&mut from0, W, 0).unwrap();
    assert_eq!(from0.as_slice(), long.as_flat());
    let mut from_off = vec![0i8; MID * W];
    fill_sinusoidal(&mut from_off, W, OFF).unwrap();
    assert_eq!(from_off.as_slice(), &from0[OFF * W..(OFF + MID) * W]);
    // Bit-for-bit repeatable fixed-point values.
    for pos in [0u32, 5, 8191] {
        for i in sample(64) {
            assert_eq!(
                sinusoid(pos, i, 64).unwrap().to_bits(),
                sinusoid(pos, i, 64).unwrap().to_bits()
            );
        }
    }
    assert!(matches!(
        short.row(SHORT),
        Err(Error::BufferTooSmall { .. })
    ));
}

/// Computed by the compiler.
static STATIC_TABLE: SinusoidalTable<16, 8> = SinusoidalTable::new();

#[test]
fn const_table_equals_runtime_fill() {
    let mut t = vec![0i8; 16 * 8];
    fill_sinusoidal(&mut t, 8, 0).unwrap();
    assert_eq!(STATIC_TABLE.as_flat(), t.as_slice());
    check_int8_table(STATIC_TABLE.as_flat(), 8, 0);
}

#[test]
fn fill_rejects_bad_shapes() {
    let mut t = vec![0i8; 10];
    assert!(matches!(
        fill_sinusoidal(&mut t, 3, 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        fill_sinusoidal(&mut t, 0, 0),
        Err(Error::BadDimension { .. })
    ));
    assert!(matches!(
        fill_sinusoidal(&mut t, 5, u32::MAX as usize),
        Err(Error::BadDimension { .. })
    ));
    fill_sinusoidal(&mut t, 5, u32::MAX as usize - 1).unwrap();
}

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
}

fn residual(sa: f64, za: i32, sb: f64, zb: i32, sy: f64, zy: i32) -> ResidualAdd {
    let add = ResidualAdd {
        a_scale: Requant::from_real(sa / sy).unwrap(),
        a_zero_point: za,
        b_scale: Requant::from_real(sb / sy).unwrap(),
        b_zero_point: zb,
        output_zero_point: zy,
    };
    add.validate().unwrap();
    add
}

#[test]
fn add_sinusoidal_matches_f64() {
    let (width, tokens, first) = (48usize, 20usize, 7usize);
    let table = SinusoidalTable::<64, 48>::new();
    let (sx, zx) = (0.03, -5);
    let (sy, zy) = (0.05, 3);
    let add = residual(sx, zx, 1.0 / 127.0, 0, sy, zy);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let x0: Vec<i8> = (0..tokens * width).map(|_| rng.i8()).collect();
    let mut x = x0.clone();
    add_sinusoidal(&mut x, width, first, table.as_flat(), &add).unwrap();
    let mut y2 = x0.clone();
    table.add_to(&mut y2, first, &add).unwrap();
    assert_eq!(x, y2);
    for t in 0..tokens {
        for i in 0..width {
            let pe = reference::sinusoid((first + t) as u32, i as u32, width as u32);
            let q_pe = table.row(first + t).unwrap()[i] as f64 / 127.0;
            let real = sx * (x0[t * width + i] as i32 - zx) as f64;
            // Exactly rounded sum of the two int8 inputs: the kernel is within 1 LSB of it.
            let expect = ((real + q_pe) / sy).round() + zy as f64;
            let expect = expect.clamp(-128.0, 127.0);
            let got = x[t * width + i] as f64;
            assert!(
                (got - expect).abs() <= 1.0,
                "t {t} i {i}: {got} vs {expect}"
            );
            // And within 1 LSB + the table's quantization of the true encoding.
            let ideal = (((real + pe) / sy) + zy as f64).clamp(-128.0, 127.0);
            assert!((got - ideal).abs() <= 1.5 + 0.5 / 127.0 / sy, "t {t} i {i}");
        }
    }
    // Positions past the table, and shape errors.
    let mut x = x0.clone();
    assert_eq!(
        add_sinusoidal(&mut x, width, 45, table.as_flat(), &add),
        Err(Error::BufferTooSmall {
            what: "sinusoid table",
            needed: 65,
            available: 64
        })
    );
    assert_eq!(x, x0, "nothing written on error");
    assert!(matches!(
        add_sinusoidal(&mut x[..47], width, 0, table.as_flat(), &add),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        add_sinusoidal(&mut x, 0, 0, table.as_flat(), &add),
        Err(Error::BadDimension { .. })
    ));
    assert!(matches!(
        add_sinusoidal(&mut x, width, 0, &table.as_flat()[..100], &add),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn add_learned_matches_f64() {
    let (width, positions, tokens) = (32usize, 40usize, 12usize);
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let table: Vec<i8> = (0..positions * width).map(|_| rng.i8()).collect();
    let table_q = QParams {
        scale: 0.011,
        zero_point: 2,
    };
    let x_q = QParams {
        scale: 0.02,
        zero_point: -3,
    };
    let y_q = QParams {
        scale: 0.025,
        zero_point: 1,
    };
    let add = residual(
        x_q.scale,
        x_q.zero_point,
        table_q.scale,
        table_q.zero_point,
        y_q.scale,
        y_q.zero_point,
    );
    for first in [0usize, 5, positions - tokens] {
        let x0: Vec<i8> = (0..tokens * width).map(|_| rng.i8()).collect();
        let mut x = x0.clone();
        add_learned(&mut x, width, first, &table, &add).unwrap();
        for t in 0..tokens {
            for i in 0..width {
                let real = x_q.dequantize(x0[t * width + i])
                    + table_q.dequantize(table[(first + t) * width + i]);
                let expect = y_q.quantize(real) as f64;
                let got = x[t * width + i] as f64;
                assert!((got - expect).abs() <= 1.0, "{got} vs {expect}");
            }
        }
    }
    let mut x = vec![0i8; tokens * width];
    assert!(matches!(
        add_learned(&mut x, width, positions - tokens + 1, &table, &add),
        Err(Error::BufferTooSmall { .. })
    ));
    assert!(matches!(
        add_learned(&mut x, width, usize::MAX, &table, &add),
        Err(Error::BufferTooSmall { .. })
    ));
    assert!(matches!(
        add_learned(&mut x, width, 0, &table[1..], &add),
        Err(Error::ShapeMismatch { .. })
    ));
    // Exactly filling the table is fine.
    let mut all = vec![0i8; positions * width];
    add_learned(&mut all, width, 0, &table, &add).unwrap();
}
