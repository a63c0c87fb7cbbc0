//! f64 reference implementations (host only, `std` feature) that the int8 kernels are tested
//! against.

/// Error function (Abramowitz–Stegun 7.1.26 is too coarse; this uses a series / continued
/// fraction accurate to ~1e-15).
pub fn erf(x: f64) -> f64 {
    libm_erf(x)
}

fn libm_erf(x: f64) -> f64 {
    // erf via the complementary function for |x| large, Taylor series for small |x|.
    let ax = x.abs();
    let r = if ax < 2.5 {
        // Taylor: erf(x) = 2/sqrt(pi) Σ (-1)^n x^(2n+1) / (n! (2n+1))
        let mut sum = 0.0;
        let mut term = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        loop {
            let t = term / (2.0 * n + 1.0);
            sum += t;
            if t.abs() <= 1e-17 * sum.abs() || n > 200.0 {
                break;
            }
            n += 1.0;
            term *= -x2 / n;
        }
        sum * 2.0 / core::f64::consts::PI.sqrt()
    } else {
        // Continued fraction for erfc (Lentz), converges quickly for x ≥ 2.5.
        let mut f = ax;
        let mut c = ax;
        let mut d = 0.0;
        for k in 1..200 {
            let a = k as f64 / 2.0;
            d = ax + a * d;
            d = 1.0 / d;
            c = ax + a / c;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        1.0 - libm::exp(-ax * ax) / (f * core::f64::consts::PI.sqrt())
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

pub mod block;
pub mod kernels;
pub mod llama;
pub mod model;
pub mod norm;
pub mod position;
