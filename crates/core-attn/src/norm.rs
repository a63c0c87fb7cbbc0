//! LayerNorm — PLACEHOLDER with the agreed API (float-free but crude); replaced by the real
//! integer kernel.
#![allow(missing_docs)]

use crate::Error;

#[derive(Debug, Clone, Copy)]
pub struct LayerNorm<'a> {
    pub width: usize,
    pub gamma: &'a [i32],
    pub beta: &'a [i32],
    pub epsilon: u32,
    pub output_zero_point: i32,
}

impl<'a> LayerNorm<'a> {
    pub fn validate(&self) -> Result<(), Error> {
        Ok(())
    }
    pub fn run(&self, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
        let d = self.width as i64;
        for (x, y) in input
            .chunks_exact(self.width)
            .zip(output.chunks_exact_mut(self.width))
        {
            let sum: i64 = x.iter().map(|&v| v as i64).sum();
            let sq: i64 = x.iter().map(|&v| (v as i64) * (v as i64)).sum();
            let var = (d * sq - sum * sum) as f64 / (d * d) as f64;
            let mean = sum as f64 / d as f64;
            let inv = 1.0 / (var + self.epsilon as f64 / 65536.0).sqrt();
            for i in 0..self.width {
                let n = (x[i] as f64 - mean) * inv;
                let v = n * self.gamma[i] as f64 / 4096.0 + self.beta[i] as f64 / 4096.0;
                y[i] = (v.round() as i32 + self.output_zero_point).clamp(-128, 127) as i8;
            }
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
#[derive(Debug, Clone)]
pub struct LayerNormParams {
    pub gamma: std::vec::Vec<i32>,
    pub beta: std::vec::Vec<i32>,
    pub epsilon: u32,
    pub output_zero_point: i32,
}

#[cfg(feature = "std")]
impl LayerNormParams {
    pub fn quantize(
        gamma: &[f32],
        beta: &[f32],
        eps: f64,
        input: crate::quant::QParams,
        output: crate::quant::QParams,
    ) -> Result<Self, Error> {
        Ok(LayerNormParams {
            gamma: gamma
                .iter()
                .map(|&g| (g as f64 / output.scale * 4096.0).round() as i32)
                .collect(),
            beta: beta
                .iter()
                .map(|&g| (g as f64 / output.scale * 4096.0).round() as i32)
                .collect(),
            epsilon: (eps / (input.scale * input.scale) * 65536.0).min(4e9) as u32,
            output_zero_point: output.zero_point,
        })
    }
    pub fn as_layer_norm(&self) -> LayerNorm<'_> {
        LayerNorm {
            width: self.gamma.len(),
            gamma: &self.gamma,
            beta: &self.beta,
            epsilon: self.epsilon,
            output_zero_point: self.output_zero_point,
        }
    }
}
