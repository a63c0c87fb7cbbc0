//! The linear (fully connected) layer, batched over tokens.
//!
//! `y[t][o] = requant_o( bias[o] + Σ_i x[t][i] · w[o][i] ) + z_out`
//!
//! - weights: int8, symmetric, one scale per output channel, row-major `[out][in]`;
//! - bias: i32 in accumulator units (`s_x · s_w[o]`), with the input zero point already folded
//!   in at pack time (`bias[o] − z_x · Σ_i w[o][i]`), so the inner loop is a plain int8 dot
//!   product;
//! - requantization: per output channel Q31 multiplier and shift
//!   (`s_x · s_w[o] / s_y`, see [`crate::requant`]).
//!
//! # Overflow
//! Each product is at most `128 · 128 = 2^14` in magnitude and at most [`crate::MAX_WIDTH`]
//! (`2^14`) are summed, so the dot product stays within `2^28`; [`Linear::validate`] bounds
//! `|bias| ≤ 2^30`, so `bias + dot` stays below `2^31`.

use crate::activation::Lut;
use crate::error::check_len;
use crate::requant::ChannelRequant;
use crate::{Error, MAX_WIDTH};

/// Largest bias magnitude accepted (see the module's overflow argument).
pub const MAX_BIAS: i32 = 1 << 30;

/// Activation fused into the linear layer's output.
#[derive(Debug, Clone, Copy)]
pub enum Activation<'a> {
    /// None: requantized value as it is.
    Identity,
    /// `max(y, z_out)`.
    Relu,
    /// Any function of one int8 value (GELU, …) applied to the requantized output.
    Table(Lut<'a>),
}

impl Activation<'_> {
    /// Apply the activation in place to outputs with zero point `zero_point`.
    #[inline]
    pub fn apply_in_place(self, y: &mut [i8], zero_point: i32) {
        match self {
            Activation::Identity => {}
            Activation::Relu => crate::activation::relu_in_place(y, zero_point as i8),
            Activation::Table(lut) => lut.apply_in_place(y),
        }
    }
}

/// Parameters of one linear layer, borrowed (zero-copy from a model blob or from statics).
#[derive(Debug, Clone, Copy)]
pub struct Linear<'a> {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// `[out_features][in_features]` row-major int8 weights.
    pub weights: &'a [i8],
    /// `out_features` biases in accumulator units, input zero point folded in.
    pub bias: &'a [i32],
    /// Per-output-channel requantization to the output scale.
    pub requant: ChannelRequant<'a>,
    /// Output zero point.
    pub output_zero_point: i32,
}

impl<'a> Linear<'a> {
    /// Check shapes, bias bounds and requantization ranges.
    #[inline(never)] // load-time check: one copy, not inlined into each caller
    pub fn validate(&self) -> Result<(), Error> {
        if self.in_features == 0 || self.in_features > MAX_WIDTH {
            return Err(Error::BadDimension {
                what: "linear in_features",
                value: self.in_features,
            });
        }
        if self.out_features == 0 {
            return Err(Error::BadDimension {
                what: "linear out_features",
                value: 0,
            });
        }
        let n = self
            .in_features
            .checked_mul(self.out_features)
            .ok_or(Error::BadDimension {
                what: "linear size",
                value: usize::MAX,
            })?;
        check_len("linear weights", n, self.weights.len())?;
        check_len("linear bias", self.out_features, self.bias.len())?;
        check_len(
            "linear requant",
            self.out_features,
            self.requant.validate()?,
        )?;
        if self.bias.iter().any(|b| b.unsigned_abs() > MAX_BIAS as u32) {
            return Err(Error::BadDimension {
                what: "linear bias magnitude",
                value: MAX_BIAS as usize,
            });
        }
        if !(-128..=127).contains(&self.output_zero_point) {
            return Err(Error::BadDimension {
                what: "linear output zero point",
                value: self.output_zero_point.unsigned_abs() as usize,
            });
        }
        Ok(())
    }

    /// Number of input rows `input` holds, after checking `input` and `output` agree.
    fn rows(&self, input: &[i8], output: &[i8]) -> Result<usize, Error> {
        if self.in_features == 0 {
            return Err(Error::BadDimension {
                what: "linear in_features",
                value: 0,
            });
        }
        if input.len() % self.in_features != 0 {
            return Err(Error::ShapeMismatch {
                what: "linear input",
                expected: input.len() / self.in_features * self.in_features,
                found: input.len(),
            });
        }
        let rows = input.len() / self.in_features;
        check_len(
            "linear output",
            rows.saturating_mul(self.out_features),
            output.len(),
        )?;
        Ok(rows)
    }

    /// Run the layer over every row of `input` (`[rows][in_features]`), writing
    /// `[rows][out_features]` to `output`, then apply `activation`.
    ///
    /// Shapes are checked; parameter ranges are not (call [`Linear::validate`] once when the
    /// parameters are loaded: the blob reader does).
    pub fn run(
        &self,
        input: &[i8],
        output: &mut [i8],
        activation: Activation<'_>,
    ) -> Result<(), Error> {
        let rows = self.check_run(input, output)?;
        crate::dsp::linear(self, input, output, rows);
        activation.apply_in_place(output, self.output_zero_point);
        Ok(())
    }

    /// Shape checks shared by every variant; returns the number of input rows.
    fn check_run(&self, input: &[i8], output: &[i8]) -> Result<usize, Error> {
        let rows = self.rows(input, output)?;
        check_len(
            "linear weights",
            self.in_features.saturating_mul(self.out_features),
            self.weights.len(),
        )?;
        check_len("linear bias", self.out_features, self.bias.len())?;
        check_len(
            "linear requant",
            self.out_features,
            self.requant.multipliers.len(),
        )?;
        check_len(
            "linear requant",
            self.out_features,
            self.requant.shifts.len(),
        )?;
        Ok(rows)
    }

    /// [`Linear::run`] with the generic reference kernel (one plain dot product per output):
    /// the variant every optimized kernel is tested against, bit for bit.
    pub fn run_generic(
        &self,
        input: &[i8],
        output: &mut [i8],
        activation: Activation<'_>,
    ) -> Result<(), Error> {
        let rows = self.check_run(input, output)?;
        for t in 0..rows {
            let x = &input[t * self.in_features..(t + 1) * self.in_features];
            let y = &mut output[t * self.out_features..(t + 1) * self.out_features];
            for (o, (yo, w)) in y
                .iter_mut()
                .zip(self.weights.chunks_exact(self.in_features))
                .enumerate()
            {
                let acc = self.bias[o].wrapping_add(dot_i8(x, w));
                *yo = self.requant.get(o).to_i8(acc, self.output_zero_point);
            }
            activation.apply_in_place(y, self.output_zero_point);
        }
        Ok(())
    }

    /// Multiply–accumulates per input row.
    pub fn macs_per_row(&self) -> usize {
        self.in_features * self.out_features
    }
}

/// Plain int8 dot product with i32 accumulation: the generic reference kernel that optimized
/// variants ([`crate::dsp::DOT_I8_VARIANTS`]) must match bit for bit. Defined with the
/// portable kernels (`dsp/portable.rs`) so that the instruction-set code below this module
/// never calls up into it.
pub use crate::dsp::portable::dot_i8;

/// Owned, quantized linear-layer parameters (pack time, host only).
#[cfg(feature = "std")]
#[derive(Debug, Clone, PartialEq)]
pub struct LinearParams {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// `[out][in]` int8 weights.
    pub weights: std::vec::Vec<i8>,
    /// Biases in accumulator units, input zero point folded in.
    pub bias: std::vec::Vec<i32>,
    /// Per-channel multipliers.
    pub multipliers: std::vec::Vec<i32>,
    /// Per-channel shifts.
    pub shifts: std::vec::Vec<i8>,
    /// Output zero point.
    pub output_zero_point: i32,
    /// Per-channel weight scales (diagnostics).
    pub weight_scales: std::vec::Vec<f64>,
}

#[cfg(feature = "std")]
impl LinearParams {
    /// Quantize `w` (`[out][in]` row-major) and `b` with symmetric per-output-channel weight
    /// scales, for an input quantized with `input` and outputs with scale `output_scales[o]`
    /// (one per channel, or a single one for all) and zero point `output_zero_point`.
    pub fn quantize(
        w: &[f32],
        b: &[f32],
        in_features: usize,
        input: crate::requant::QParams,
        output_scales: &[f64],
        output_zero_point: i32,
    ) -> Result<Self, Error> {
        use std::vec::Vec;
        let out_features = b.len();
        check_len("linear weights", in_features * out_features, w.len())?;
        if output_scales.len() != 1 {
            check_len("linear output scales", out_features, output_scales.len())?;
        }
        let mut p = LinearParams {
            in_features,
            out_features,
            weights: Vec::with_capacity(w.len()),
            bias: Vec::with_capacity(out_features),
            multipliers: Vec::with_capacity(out_features),
            shifts: Vec::with_capacity(out_features),
            output_zero_point,
            weight_scales: Vec::with_capacity(out_features),
        };
        for (o, row) in w.chunks_exact(in_features).enumerate() {
            let max = row.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
            let sw = if max > 0.0 { max / 127.0 } else { 1.0 };
            let q: Vec<i8> = row
                .iter()
                .map(|&v| (v as f64 / sw).round().clamp(-127.0, 127.0) as i8)
                .collect();
            let qsum: i64 = q.iter().map(|&v| v as i64).sum();
            let acc_scale = input.scale * sw;
            let bias = (b[o] as f64 / acc_scale).round() as i64 - input.zero_point as i64 * qsum;
            if bias.unsigned_abs() > MAX_BIAS as u64 {
                return Err(Error::BadDimension {
                    what: "linear bias magnitude",
                    value: bias.unsigned_abs() as usize,
                });
            }
            let out_scale = output_scales[if output_scales.len() == 1 { 0 } else { o }];
            let r = crate::requant::Requant::from_real(acc_scale / out_scale)?;
            p.weights.extend_from_slice(&q);
            p.bias.push(bias as i32);
            p.multipliers.push(r.multiplier);
            p.shifts.push(r.shift);
            p.weight_scales.push(sw);
        }
        Ok(p)
    }

    /// Borrow as the kernel's parameter struct.
    pub fn as_linear(&self) -> Linear<'_> {
        Linear {
            in_features: self.in_features,
            out_features: self.out_features,
            weights: &self.weights,
            bias: &self.bias,
            requant: ChannelRequant {
                multipliers: &self.multipliers,
                shifts: &self.shifts,
            },
            output_zero_point: self.output_zero_point,
        }
    }
}
