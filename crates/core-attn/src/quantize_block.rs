//! Pack-time quantization of whole blocks (host only, `std` feature): calibration ranges
//! observed on the f64 reference become the int8 parameters of [`crate::block`].
//!
//! Three modules hold the quantization, by when it runs: [`crate::requant`] applies scales at
//! run time (integer only, on the device); [`crate::quantize_block`] (pack time, host) turns
//! calibration ranges into one block's int8 parameters; [`crate::quantize_model`] (pack time,
//! host) calibrates and quantizes a whole model into the parameters [`crate::blob::write`]
//! packs into a blob.
//!
//! Choices, per tensor kind:
//! - Q, K, V and attention outputs: symmetric (zero point 0), so attention's inner loops need
//!   no zero-point corrections;
//! - LayerNorm, linear, activation and residual outputs: asymmetric over the observed
//!   `[min, max]` (widened to include 0) — GELU outputs and residual streams are lopsided;
//! - weights: symmetric per output channel ([`LinearParams::quantize`]).

use crate::activation::{build_lut, Lut};
use crate::attention::AttentionParams;
use crate::block::{CrossAttention, DecoderBlock, EncoderBlock, Mlp, NormPlacement};
use crate::linear::LinearParams;
use crate::norm::LayerNormParams;
use crate::reference::block::{DecoderBlockF, EncoderBlockF, Gelu, LayerNormF, LinearF, Observer};
use crate::requant::{QParams, Requant};
use crate::residual::ResidualAdd;
use crate::Error;
use std::collections::BTreeMap;
use std::string::String;
use std::vec::Vec;

/// Observed `[min, max]` of every named point over the calibration inputs.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    ranges: BTreeMap<String, (f64, f64)>,
}

impl Observer for Calibration {
    fn observe(&mut self, point: &str, values: &[f64]) {
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let e = self
            .ranges
            .entry(String::from(point))
            .or_insert((f64::INFINITY, f64::NEG_INFINITY));
        e.0 = e.0.min(lo);
        e.1 = e.1.max(hi);
    }
}

impl Calibration {
    /// The observed range of `point`.
    pub fn range(&self, point: &str) -> Result<(f64, f64), Error> {
        self.ranges
            .get(point)
            .copied()
            .filter(|(lo, hi)| lo.is_finite() && hi.is_finite())
            .ok_or(crate::error::bad_blob("calibration point missing"))
    }

    /// Symmetric parameters for `point`.
    pub fn symmetric(&self, point: &str) -> Result<QParams, Error> {
        let (lo, hi) = self.range(point)?;
        Ok(QParams::symmetric(lo.abs().max(hi.abs())))
    }

    /// Asymmetric parameters for `point`.
    pub fn asymmetric(&self, point: &str) -> Result<QParams, Error> {
        let (lo, hi) = self.range(point)?;
        Ok(QParams::asymmetric(lo, hi))
    }

    /// Every point and its range, sorted by name.
    pub fn points(&self) -> impl Iterator<Item = (&str, (f64, f64))> {
        self.ranges.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

fn p(prefix: &str, point: &str) -> String {
    let mut s = String::from(prefix);
    s.push_str(point);
    s
}

/// Residual-add parameters for `a` (`qa`) + `b` (`qb`) → output `qy`.
pub fn residual_add(qa: QParams, qb: QParams, qy: QParams) -> Result<ResidualAdd, Error> {
    let r = ResidualAdd {
        a_scale: Requant::from_real(qa.scale / qy.scale)?,
        a_zero_point: qa.zero_point,
        b_scale: Requant::from_real(qb.scale / qy.scale)?,
        b_zero_point: qb.zero_point,
        output_zero_point: qy.zero_point,
    };
    r.validate()?;
    Ok(r)
}

/// Quantize a LayerNorm from `input` to the calibrated output at `point`.
fn layer_norm(f: &LayerNormF, input: QParams, output: QParams) -> Result<LayerNormParams, Error> {
    LayerNormParams::quantize(&f.gamma, &f.beta, f.eps, input, output)
}

fn linear(f: &LinearF, input: QParams, output: QParams) -> Result<LinearParams, Error> {
    LinearParams::quantize(
        &f.w,
        &f.b,
        f.in_features,
        input,
        &[output.scale],
        output.zero_point,
    )
}

/// A linear layer whose output is split into equal parts, each symmetric with its own scale.
fn linear_parts(f: &LinearF, input: QParams, parts: &[QParams]) -> Result<LinearParams, Error> {
    let per = f.out_features() / parts.len();
    let scales: Vec<f64> = (0..f.out_features())
        .map(|o| parts[o / per].scale)
        .collect();
    LinearParams::quantize(&f.w, &f.b, f.in_features, input, &scales, 0)
}

/// The self-attention sublayer's quantized parts, shared by encoder and decoder blocks.
struct SelfAttentionParts {
    qkv: LinearParams,
    attention: AttentionParams,
    proj: LinearParams,
    add1: ResidualAdd,
    /// Quantization of the residual stream after `add1`.
    q_add1: QParams,
}

/// Quantize QKV → attention → projection → residual add, with QKV reading `qkv_in` and the
/// residual stream entering as `residual`.
#[allow(clippy::too_many_arguments)]
fn self_attention_parts(
    qkv: &LinearF,
    proj: &LinearF,
    heads: usize,
    width: usize,
    calib: &Calibration,
    prefix: &str,
    qkv_in: QParams,
    residual: QParams,
) -> Result<SelfAttentionParts, Error> {
    if heads == 0 || width % heads != 0 {
        return Err(Error::BadDimension {
            what: "heads (must divide width)",
            value: heads,
        });
    }
    let (qq, qk, qv) = (
        calib.symmetric(&p(prefix, "q"))?,
        calib.symmetric(&p(prefix, "k"))?,
        calib.symmetric(&p(prefix, "v"))?,
    );
    let q_attn = calib.symmetric(&p(prefix, "attn"))?;
    let q_proj = calib.asymmetric(&p(prefix, "proj"))?;
    let q_add1 = calib.asymmetric(&p(prefix, "add1"))?;
    Ok(SelfAttentionParts {
        qkv: linear_parts(qkv, qkv_in, &[qq, qk, qv])?,
        attention: AttentionParams::quantize(
            heads,
            width / heads,
            qq.scale,
            qk.scale,
            qv.scale,
            q_attn,
        )?,
        proj: linear(proj, q_attn, q_proj)?,
        add1: residual_add(residual, q_proj, q_add1)?,
        q_add1,
    })
}

/// Owned int8 MLP.
#[derive(Debug, Clone)]
pub struct MlpParams {
    /// Up-projection.
    pub fc1: LinearParams,
    /// Activation table.
    pub act: [i8; 256],
    /// Down-projection.
    pub fc2: LinearParams,
}

impl MlpParams {
    fn quantize(
        fc1: &LinearF,
        act: Gelu,
        fc2: &LinearF,
        calib: &Calibration,
        prefix: &str,
        input: QParams,
    ) -> Result<(Self, QParams), Error> {
        let q1 = calib.asymmetric(&p(prefix, "fc1"))?;
        let qa = calib.asymmetric(&p(prefix, "act"))?;
        let q2 = calib.asymmetric(&p(prefix, "fc2"))?;
        Ok((
            MlpParams {
                fc1: linear(fc1, input, q1)?,
                act: build_lut(q1, qa, |x| act.eval(x)),
                fc2: linear(fc2, qa, q2)?,
            },
            q2,
        ))
    }

    /// Borrow as the kernel struct.
    pub fn as_mlp(&self) -> Mlp<'_> {
        Mlp {
            fc1: self.fc1.as_linear(),
            activation: Lut::new(&self.act),
            fc2: self.fc2.as_linear(),
        }
    }
}

/// Owned int8 encoder block.
#[derive(Debug, Clone)]
pub struct EncoderBlockParams {
    /// Pre- or post-norm.
    pub placement: NormPlacement,
    /// First LayerNorm.
    pub ln1: LayerNormParams,
    /// Fused QKV.
    pub qkv: LinearParams,
    /// Attention.
    pub attention: AttentionParams,
    /// Output projection.
    pub proj: LinearParams,
    /// First residual add.
    pub add1: ResidualAdd,
    /// Second LayerNorm.
    pub ln2: LayerNormParams,
    /// MLP.
    pub mlp: MlpParams,
    /// Second residual add.
    pub add2: ResidualAdd,
}

impl EncoderBlockParams {
    /// Quantize `f` for an input quantized with `input`, with the ranges `calib` observed under
    /// `prefix`; returns the block and its output quantization.
    pub fn quantize(
        f: &EncoderBlockF,
        calib: &Calibration,
        prefix: &str,
        input: QParams,
    ) -> Result<(Self, QParams), Error> {
        let pre = f.placement == NormPlacement::Pre;
        let q_ln1 = calib.asymmetric(&p(prefix, "ln1"))?;
        let q_ln2 = calib.asymmetric(&p(prefix, "ln2"))?;
        let q_add2 = calib.asymmetric(&p(prefix, "add2"))?;
        let qkv_in = if pre { q_ln1 } else { input };
        let sa = self_attention_parts(
            &f.qkv,
            &f.proj,
            f.heads,
            f.width(),
            calib,
            prefix,
            qkv_in,
            input,
        )?;
        let (ln1, x1) = if pre {
            (layer_norm(&f.ln1, input, q_ln1)?, sa.q_add1)
        } else {
            (layer_norm(&f.ln1, sa.q_add1, q_ln1)?, q_ln1)
        };
        let (mlp_in, ln2) = if pre {
            (q_ln2, layer_norm(&f.ln2, x1, q_ln2)?)
        } else {
            (x1, layer_norm(&f.ln2, q_add2, q_ln2)?)
        };
        let (mlp, q_fc2) = MlpParams::quantize(&f.fc1, f.act, &f.fc2, calib, prefix, mlp_in)?;
        let out = if pre { q_add2 } else { q_ln2 };
        Ok((
            EncoderBlockParams {
                placement: f.placement,
                ln1,
                qkv: sa.qkv,
                attention: sa.attention,
                proj: sa.proj,
                add1: sa.add1,
                ln2,
                mlp,
                add2: residual_add(x1, q_fc2, q_add2)?,
            },
            out,
        ))
    }

    /// Borrow as the kernel struct.
    pub fn as_block(&self) -> EncoderBlock<'_> {
        EncoderBlock {
            placement: self.placement,
            ln1: self.ln1.as_layer_norm(),
            qkv: self.qkv.as_linear(),
            attention: self.attention.as_attention(),
            proj: self.proj.as_linear(),
            add1: self.add1,
            ln2: self.ln2.as_layer_norm(),
            mlp: self.mlp.as_mlp(),
            add2: self.add2,
        }
    }
}

/// Owned int8 cross-attention sublayer.
#[derive(Debug, Clone)]
pub struct CrossAttentionParams {
    /// LayerNorm.
    pub ln: LayerNormParams,
    /// Query projection.
    pub q: LinearParams,
    /// Key/value projection of the encoder output.
    pub kv: LinearParams,
    /// Attention.
    pub attention: AttentionParams,
    /// Output projection.
    pub proj: LinearParams,
    /// Residual add.
    pub add: ResidualAdd,
}

/// Owned int8 decoder block.
#[derive(Debug, Clone)]
pub struct DecoderBlockParams {
    /// LayerNorm before self-attention.
    pub ln1: LayerNormParams,
    /// Fused QKV.
    pub qkv: LinearParams,
    /// Self-attention.
    pub attention: AttentionParams,
    /// Output projection.
    pub proj: LinearParams,
    /// Residual add after self-attention.
    pub add1: ResidualAdd,
    /// Cross-attention.
    pub cross: Option<CrossAttentionParams>,
    /// LayerNorm before the MLP.
    pub ln2: LayerNormParams,
    /// MLP.
    pub mlp: MlpParams,
    /// Residual add after the MLP.
    pub add2: ResidualAdd,
}

impl DecoderBlockParams {
    /// Quantize `f` for an input quantized with `input` (and, with cross-attention, an encoder
    /// output quantized with `encoder`); returns the block and its output quantization.
    pub fn quantize(
        f: &DecoderBlockF,
        calib: &Calibration,
        prefix: &str,
        input: QParams,
        encoder: Option<QParams>,
    ) -> Result<(Self, QParams), Error> {
        let w = f.width();
        let heads = f.heads;
        let q_ln1 = calib.asymmetric(&p(prefix, "ln1"))?;
        let sa = self_attention_parts(&f.qkv, &f.proj, heads, w, calib, prefix, q_ln1, input)?;
        let q_add1 = sa.q_add1;
        let mut x = q_add1;
        let cross = match (&f.cross, encoder) {
            (Some(c), Some(qe)) => {
                let q_ln = calib.asymmetric(&p(prefix, "cross_ln"))?;
                let cq = calib.symmetric(&p(prefix, "cross_q"))?;
                let ck = calib.symmetric(&p(prefix, "cross_k"))?;
                let cv = calib.symmetric(&p(prefix, "cross_v"))?;
                let c_attn = calib.symmetric(&p(prefix, "cross_attn"))?;
                let c_proj = calib.asymmetric(&p(prefix, "cross_proj"))?;
                let c_add = calib.asymmetric(&p(prefix, "cross_add"))?;
                let params = CrossAttentionParams {
                    ln: layer_norm(&c.ln, x, q_ln)?,
                    q: linear_parts(&c.q, q_ln, &[cq])?,
                    kv: linear_parts(&c.kv, qe, &[ck, cv])?,
                    attention: AttentionParams::quantize(
                        heads,
                        w / heads,
                        cq.scale,
                        ck.scale,
                        cv.scale,
                        c_attn,
                    )?,
                    proj: linear(&c.proj, c_attn, c_proj)?,
                    add: residual_add(x, c_proj, c_add)?,
                };
                x = c_add;
                Some(params)
            }
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::BadDimension {
                    what: "cross-attention without encoder quantization",
                    value: 0,
                })
            }
        };
        let q_ln2 = calib.asymmetric(&p(prefix, "ln2"))?;
        let q_add2 = calib.asymmetric(&p(prefix, "add2"))?;
        let (mlp, q_fc2) = MlpParams::quantize(&f.fc1, f.act, &f.fc2, calib, prefix, q_ln2)?;
        Ok((
            DecoderBlockParams {
                ln1: layer_norm(&f.ln1, input, q_ln1)?,
                qkv: sa.qkv,
                attention: sa.attention,
                proj: sa.proj,
                add1: sa.add1,
                cross,
                ln2: layer_norm(&f.ln2, x, q_ln2)?,
                mlp,
                add2: residual_add(x, q_fc2, q_add2)?,
            },
            q_add2,
        ))
    }

    /// Borrow as the kernel struct.
    pub fn as_block(&self) -> DecoderBlock<'_> {
        DecoderBlock {
            ln1: self.ln1.as_layer_norm(),
            qkv: self.qkv.as_linear(),
            attention: self.attention.as_attention(),
            proj: self.proj.as_linear(),
            add1: self.add1,
            cross: self.cross.as_ref().map(|c| CrossAttention {
                ln: c.ln.as_layer_norm(),
                q: c.q.as_linear(),
                kv: c.kv.as_linear(),
                attention: c.attention.as_attention(),
                proj: c.proj.as_linear(),
                add: c.add,
            }),
            ln2: self.ln2.as_layer_norm(),
            mlp: self.mlp.as_mlp(),
            add2: self.add2,
        }
    }
}
