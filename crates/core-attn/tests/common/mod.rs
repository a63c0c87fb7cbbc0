//! Shared helpers for the integration tests: a tiny deterministic RNG and quantization glue.
#![allow(dead_code)]

/// xorshift64* — deterministic, dependency-free.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    pub fn i8(&mut self) -> i8 {
        self.next_u64() as i8
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Quantize a real vector symmetrically to int8, returning the values and the scale.
pub fn quantize_symmetric(x: &[f64]) -> (Vec<i8>, f64) {
    let m = x.iter().fold(0.0f64, |a, &v| a.max(v.abs())).max(1e-9);
    let s = m / 127.0;
    (
        x.iter()
            .map(|&v| (v / s).round().clamp(-128.0, 127.0) as i8)
            .collect(),
        s,
    )
}

pub fn dequantize(q: &[i8], scale: f64, zero_point: i32) -> Vec<f64> {
    q.iter()
        .map(|&v| scale * (v as i32 - zero_point) as f64)
        .collect()
}
