//! The portable linear kernel: plain Rust, the same blocking idea as the `asm!` kernels (2 rows ×
//! 2 tokens per step), for targets without an optimized variant (Cortex-M0 fallback, host).

use super::{requant_i8, LinearArgs, Params, Parts};

/// Plain int8 dot product with i32 accumulation (`Σ a[i]·b[i]` over the common length,
/// wrapping): the generic reference kernel that optimized variants must match bit for bit,
/// exported as [`crate::linear::dot_i8`].
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .fold(0i32, |acc, (&x, &y)| acc.wrapping_add(x as i32 * y as i32))
}

/// Portable blocked linear kernel (2 output rows × 2 tokens per step, each loaded input and
/// weight used twice): plain Rust for targets without the DSP extension (Cortex-M0, host).
/// Shapes as [`Linear::run`] checks them (`input`: `rows·in`, `output`: `rows·out`); with
/// shorter slices it writes nothing (a `debug_assert!` in debug builds).
pub(crate) fn linear(l: &LinearArgs<'_>, input: &[i8], output: &mut [i8], rows: usize) {
    let Some(Parts { x, y, p }) = Parts::new(l, input, output, rows) else {
        debug_assert!(false, "linear_portable: shapes not checked");
        return;
    };
    let zp = l.output_zero_point;
    let inf = p.inf;
    let mut xs = x.chunks_exact(p.inf2.get());
    let mut ys = y.chunks_exact_mut(p.outf2.get());
    for (x01, y01) in (&mut xs).zip(&mut ys) {
        let Some((x0, x1)) = x01.split_at_checked(inf) else {
            return;
        };
        let Some((y0, y1)) = y01.split_at_mut_checked(p.outf) else {
            return;
        };
        portable_pair(&p, x0, x1, y0, y1, zp);
    }
    // An odd last token: the remainders are its inputs and outputs (or both empty).
    let x = xs.remainder();
    for ((((y, w), &b), &m), &s) in ys
        .into_remainder()
        .iter_mut()
        .zip(p.w.chunks_exact(inf))
        .zip(p.bias)
        .zip(p.mult)
        .zip(p.shift)
    {
        *y = requant_i8(b.wrapping_add(dot_i8(x, w)), m, s, zp);
    }
}

/// Every output of [`linear_portable`] for one token pair (inputs `x0`, `x1`, outputs `y0`,
/// `y1`), two rows at a time. Out of line: the inner loop then has the registers to itself.
#[inline(never)]
fn portable_pair(p: &Params<'_>, x0: &[i8], x1: &[i8], y0: &mut [i8], y1: &mut [i8], zp: i32) {
    let inf = p.inf;
    {
        let mut ws = p.w.chunks_exact(p.inf2.get());
        let mut bs = p.bias.chunks_exact(2);
        let mut ms = p.mult.chunks_exact(2);
        let mut ss = p.shift.chunks_exact(2);
        let mut y0s = y0.chunks_exact_mut(2);
        let mut y1s = y1.chunks_exact_mut(2);
        for (((w01, b), (m, s)), (ya, yb)) in (&mut ws)
            .zip(&mut bs)
            .zip((&mut ms).zip(&mut ss))
            .zip((&mut y0s).zip(&mut y1s))
        {
            let Some((w0, w1)) = w01.split_at_checked(inf) else {
                return;
            };
            let [a00, a01, a10, a11] = dot_2x2(x0, x1, w0, w1, [b[0], b[0], b[1], b[1]]);
            ya[0] = requant_i8(a00, m[0], s[0], zp);
            yb[0] = requant_i8(a01, m[0], s[0], zp);
            ya[1] = requant_i8(a10, m[1], s[1], zp);
            yb[1] = requant_i8(a11, m[1], s[1], zp);
        }
        // An odd last output row: the remainders are that one row (or all empty).
        if let ([ya], [yb], [b], [m], [s]) = (
            y0s.into_remainder(),
            y1s.into_remainder(),
            bs.remainder(),
            ms.remainder(),
            ss.remainder(),
        ) {
            let w = ws.remainder();
            *ya = requant_i8(b.wrapping_add(dot_i8(x0, w)), *m, *s, zp);
            *yb = requant_i8(b.wrapping_add(dot_i8(x1, w)), *m, *s, zp);
        }
    }
}

/// `acc + [x0·w0, x1·w0, x0·w1, x1·w1]` (wrapping), over the shortest of the four slices: the
/// inner loop of [`linear_portable`].
#[inline(always)]
fn dot_2x2(x0: &[i8], x1: &[i8], w0: &[i8], w1: &[i8], acc: [i32; 4]) -> [i32; 4] {
    let [mut a00, mut a01, mut a10, mut a11] = acc;
    let n = x0.len().min(x1.len()).min(w0.len()).min(w1.len());
    let (Some(x0), Some(x1), Some(w0), Some(w1)) =
        (x0.get(..n), x1.get(..n), w0.get(..n), w1.get(..n))
    else {
        return acc;
    };
    for i in 0..n {
        let (p, q) = (x0[i] as i32, x1[i] as i32);
        let (u, v) = (w0[i] as i32, w1[i] as i32);
        a00 = a00.wrapping_add(p * u);
        a01 = a01.wrapping_add(q * u);
        a10 = a10.wrapping_add(p * v);
        a11 = a11.wrapping_add(q * v);
    }
    [a00, a01, a10, a11]
}

/// [`linear`] as a registered variant: takes every layer.
pub(crate) fn linear_variant(
    l: &LinearArgs<'_>,
    input: &[i8],
    output: &mut [i8],
    rows: usize,
) -> bool {
    linear(l, input, output, rows);
    true
}
