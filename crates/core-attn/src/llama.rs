//! Llama-family decoder block and model runner, integer-only, in static memory.
//!
//! One block (pre-norm, as in llama2.c `run.c` and Hugging Face `LlamaDecoderLayer`):
//!
//! ```text
//! a = RMSNorm₁(x)
//! q | k | v = Wqkv · a                (one fused linear, q, k, v each symmetric with its own scale)
//! q, k ← RoPE(q, pos), RoPE(k, pos)    (requantized to their own symmetric scales)
//! K/V cache ← k, v                     (n_kv_heads · head_dim wide: grouped-query attention)
//! o_h = softmax(q_h · K_g / √d) · V_g  for every query head h, g = h / (n_heads / n_kv_heads)
//! x ← x + Wo · o
//! b = RMSNorm₂(x)
//! x ← x + W2 · (silu(W1 · b) ⊙ (W3 · b))
//! ```
//!
//! then a final RMSNorm and the classifier (tied to the token embedding or not). Llama has no
//! position table: positions enter only through RoPE, and the first residual stream is the
//! token embedding itself.
//!
//! Every step reuses an existing kernel: [`RmsNorm`], [`Linear`] (with its DSP/MVE variants),
//! [`Rope`], [`Attention`] ([`Attention::run_grouped`]: query head `h` over the columns
//! `g·head_dim .. (g+1)·head_dim` of the cache, the two query heads of a pair sharing a
//! key/value head in one pass over its K/V rows), [`ResidualAdd`], [`SwiGlu`].
//!
//! # Memory (per model, from [`LlamaDims::buffers`])
//! - `x`, `normed`: `width` bytes each (one token per step);
//! - `wide`: `max(width + 2·kv_width, 2·hidden)` bytes (fused QKV, then gate | up);
//! - `scores`: `max_positions` `i32`;
//! - KV caches: `2 · layers · max_positions · kv_width` bytes (`kv_width = n_kv_heads ·
//!   head_dim`: grouped-query attention shrinks the cache by `n_heads / n_kv_heads`).
//!
//! The runners take any [`LlamaModel`]: a parsed blob ([`crate::blob::Blob`]) on the device,
//! or the owned parameters (`LlamaParams`, `std` feature) in tests.

use crate::attention::{Attention, KvCache, Mask};
use crate::blob::{BufferSizes, NO_TOKEN};
use crate::block::BlockScratch;
use crate::embed::embed_tokens;
use crate::error::{check_len, prefix};
use crate::linear::{Activation, Linear};
use crate::model::{argmax_i8, greedy_ids, ModelBuffers, FINAL_NORM};
use crate::residual::ResidualAdd;
use crate::rmsnorm::RmsNorm;
use crate::rope::Rope;
use crate::swiglu::SwiGlu;
use crate::tensor::Rows;
use crate::Error;

/// Dimensions of a Llama model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LlamaDims {
    /// Layers.
    pub layers: usize,
    /// Model width `D = heads · head_dim`.
    pub width: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// SwiGLU hidden width.
    pub hidden: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Longest sequence (RoPE table rows, KV cache capacity).
    pub max_positions: usize,
}

impl LlamaDims {
    /// Width of one head (`width / heads`; 0 for zero heads).
    pub fn head_dim(&self) -> usize {
        self.width.checked_div(self.heads).unwrap_or(0)
    }

    /// Width of a key/value row: `kv_heads · head_dim`.
    pub fn kv_width(&self) -> usize {
        self.kv_heads.saturating_mul(self.head_dim())
    }

    /// Check every dimension is non-zero, `heads` divides `width` and `kv_heads` divides
    /// `heads` (errors name the dimension).
    pub fn validate(&self) -> Result<(), Error> {
        for (what, v) in [
            ("llama layers", self.layers),
            ("llama width", self.width),
            ("llama heads", self.heads),
            ("llama kv heads", self.kv_heads),
            ("llama hidden width", self.hidden),
            ("llama vocabulary", self.vocab),
            ("llama positions", self.max_positions),
        ] {
            if v == 0 {
                return Err(Error::BadDimension { what, value: 0 });
            }
        }
        if self.width.checked_rem(self.heads) != Some(0) {
            return Err(Error::BadDimension {
                what: "llama heads (must divide the width)",
                value: self.heads,
            });
        }
        if self.heads.checked_rem(self.kv_heads) != Some(0) {
            return Err(Error::BadDimension {
                what: "llama kv heads (must divide the query heads)",
                value: self.kv_heads,
            });
        }
        if self.width > crate::MAX_WIDTH
            || self.hidden > crate::MAX_WIDTH
            || self.max_positions > crate::MAX_SEQ_LEN
        {
            return Err(Error::BadDimension {
                what: "llama width, hidden width or positions too large",
                value: self.width.max(self.hidden).max(self.max_positions),
            });
        }
        Ok(())
    }

    /// Buffer sizes a runner needs (one token per step).
    pub fn buffers(&self) -> Result<BufferSizes, Error> {
        let ov = Error::BadDimension {
            what: "llama buffer size overflow",
            value: self.width,
        };
        let m = |a: usize, b: usize| a.checked_mul(b).ok_or(ov);
        let kv = self.kv_width();
        let qkv = self.width.checked_add(m(2, kv)?).ok_or(ov)?;
        Ok(BufferSizes {
            x: self.width,
            normed: self.width,
            wide: qkv.max(m(2, self.hidden)?),
            scores: self.max_positions,
            patch: 0,
            logits: self.vocab,
            kv: m(m(2, self.layers)?, m(self.max_positions, kv)?)?,
            cross_kv: 0,
        })
    }
}

/// One Llama decoder block, borrowed (zero-copy from a blob or from owned parameters).
#[derive(Debug, Clone, Copy)]
pub struct LlamaBlock<'a> {
    /// RMSNorm before attention.
    pub rms1: RmsNorm<'a>,
    /// Fused `width → width + 2·kv_width` projection (`q | k | v`, symmetric, one scale each).
    pub qkv: Linear<'a>,
    /// RoPE on the queries (to their own symmetric scale).
    pub rope_q: Rope<'a>,
    /// RoPE on the keys (to their own symmetric scale).
    pub rope_k: Rope<'a>,
    /// Key/value heads.
    pub kv_heads: usize,
    /// The query heads' attention (`heads`, `head_dim`; run one head at a time).
    pub attention: Attention<'a>,
    /// Output projection `width → width`.
    pub proj: Linear<'a>,
    /// `x + proj`.
    pub add1: ResidualAdd,
    /// RMSNorm before the MLP.
    pub rms2: RmsNorm<'a>,
    /// Gate projection `width → hidden`.
    pub w1: Linear<'a>,
    /// Up projection `width → hidden`.
    pub w3: Linear<'a>,
    /// `silu(gate) ⊙ up`.
    pub swiglu: SwiGlu<'a>,
    /// Down projection `hidden → width`.
    pub w2: Linear<'a>,
    /// `x + w2`.
    pub add2: ResidualAdd,
}

impl<'a> LlamaBlock<'a> {
    /// Model width (`heads · head_dim`).
    pub fn width(&self) -> usize {
        self.attention.width()
    }

    /// Width of a key/value row (`kv_heads · head_dim`, saturating).
    pub fn kv_width(&self) -> usize {
        self.kv_heads.saturating_mul(self.attention.head_dim)
    }

    /// SwiGLU hidden width.
    pub fn hidden(&self) -> usize {
        self.w1.out_features
    }

    fn qkv_width(&self) -> usize {
        self.width()
            .saturating_add(self.kv_width().saturating_mul(2))
    }

    /// Width of the `wide` scratch buffer per token.
    pub fn wide_per_token(&self) -> usize {
        self.qkv_width().max(self.hidden().saturating_mul(2))
    }

    /// Check every part and that their shapes chain.
    pub fn validate(&self) -> Result<(), Error> {
        self.attention.validate()?;
        let (w, dh, heads) = (self.width(), self.attention.head_dim, self.attention.heads);
        if heads.checked_rem(self.kv_heads) != Some(0) {
            return Err(Error::BadDimension {
                what: "llama kv heads (must divide the query heads)",
                value: self.kv_heads,
            });
        }
        self.rms1.validate()?;
        self.rms2.validate()?;
        check_len("llama rms1 width", w, self.rms1.width)?;
        check_len("llama rms2 width", w, self.rms2.width)?;
        self.qkv.validate()?;
        check_len("llama qkv input", w, self.qkv.in_features)?;
        check_len("llama qkv output", self.qkv_width(), self.qkv.out_features)?;
        if self.qkv.output_zero_point != 0 || self.attention.output_zero_point != 0 {
            return Err(Error::BadRequant);
        }
        for r in [&self.rope_q, &self.rope_k] {
            r.validate()?;
            check_len("llama rope head width", dh, r.table.head_dim)?;
        }
        self.proj.validate()?;
        check_len("llama proj input", w, self.proj.in_features)?;
        check_len("llama proj output", w, self.proj.out_features)?;
        self.add1.validate()?;
        self.add2.validate()?;
        self.w1.validate()?;
        self.w3.validate()?;
        self.w2.validate()?;
        check_len("llama w1 input", w, self.w1.in_features)?;
        check_len("llama w3 input", w, self.w3.in_features)?;
        check_len("llama w3 output", self.hidden(), self.w3.out_features)?;
        check_len("llama w2 input", self.hidden(), self.w2.in_features)?;
        check_len("llama w2 output", w, self.w2.out_features)?;
        self.swiglu.validate()
    }

    /// Run the block on the new tokens `x` (`[tokens][width]`, in place), which sit at positions
    /// `cache.len()..` of the sequence. Their rotated keys and values are appended to `cache`
    /// (`kv_width` wide).
    pub fn run(
        &self,
        x: &mut [i8],
        cache: &mut KvCache<'_>,
        scratch: &mut BlockScratch<'_>,
    ) -> Result<(), Error> {
        let w = self.width();
        let (n, rem) = (x.len().checked_div(w), x.len().checked_rem(w));
        let n = match (n, rem) {
            (Some(n), Some(0)) if n > 0 => n,
            _ => {
                return Err(Error::ShapeMismatch {
                    what: "llama block input",
                    expected: x.len().checked_div(w).unwrap_or(0).max(1) * w,
                    found: x.len(),
                })
            }
        };
        let (kv, stride, dh) = (self.kv_width(), self.qkv_width(), self.attention.head_dim);
        let len = x.len();
        let normed = prefix(scratch.normed, len, "llama normed buffer")?;
        let wide = prefix(
            scratch.wide,
            n.saturating_mul(self.wide_per_token()),
            "llama wide buffer",
        )?;

        // Attention sublayer.
        self.rms1.run(x, normed)?;
        let qkv = prefix(wide, n * stride, "llama wide buffer")?;
        self.qkv.run(normed, qkv, Activation::Identity)?;
        let first_position = cache.len();
        for (t, row) in qkv.chunks_exact_mut(stride).enumerate() {
            let (q, rest) = row.split_at_mut_checked(w).ok_or(Error::ShapeMismatch {
                what: "llama qkv row",
                expected: stride,
                found: w,
            })?;
            self.rope_q.run_in_place(q, first_position + t)?;
            self.rope_k
                .run_in_place(prefix(rest, kv, "llama qkv row")?, first_position + t)?;
        }
        cache.append_rows(
            Rows::strided(qkv, w, n, kv, stride)?,
            Rows::strided(qkv, w + kv, n, kv, stride)?,
        )?;
        if dh == 0 {
            return Err(Error::BadDimension {
                what: "llama head width",
                value: 0,
            });
        }
        // Grouped-query attention: the query heads sharing a key/value head go through its
        // K/V rows together (`Attention::run_grouped`).
        self.attention.run_grouped(
            self.kv_heads,
            Rows::strided(qkv, 0, n, w, stride)?,
            cache.keys(),
            cache.values(),
            Mask::Causal { first_position },
            normed,
            scratch.scores,
        )?;
        let proj = prefix(wide, len, "llama wide buffer")?;
        self.proj.run(normed, proj, Activation::Identity)?;
        self.add1.run_in_place(x, proj)?;

        // SwiGLU MLP.
        self.rms2.run(x, normed)?;
        let h = n * self.hidden();
        let (gate, up) = prefix(wide, 2 * h, "llama wide buffer")?
            .split_at_mut_checked(h)
            .ok_or(Error::ShapeMismatch {
                what: "llama wide buffer",
                expected: 2 * h,
                found: h,
            })?;
        self.w1.run(normed, gate, Activation::Identity)?;
        self.w3.run(normed, up, Activation::Identity)?;
        self.swiglu.run_in_place(gate, up)?;
        self.w2.run(gate, normed, Activation::Identity)?;
        self.add2.run_in_place(x, normed)
    }
}

/// Where a runner finds a Llama model's parts: a parsed blob, or owned parameters on the host.
pub trait LlamaModel {
    /// The dimensions.
    fn llama_dims(&self) -> LlamaDims;
    /// `[vocab][width]` int8 token embedding (the first residual stream's quantization).
    fn llama_embedding(&self) -> Result<&[i8], Error>;
    /// Block `i`.
    fn llama_block(&self, i: usize) -> Result<LlamaBlock<'_>, Error>;
    /// The final RMSNorm.
    fn llama_final_norm(&self) -> Result<RmsNorm<'_>, Error>;
    /// The classifier (`[vocab][width]`; tied: the embedding's bytes).
    fn llama_head(&self) -> Result<Linear<'_>, Error>;
    /// Begin-of-sequence id ([`NO_TOKEN`] if none).
    fn llama_bos(&self) -> u32 {
        NO_TOKEN
    }
    /// End-of-sequence id ([`NO_TOKEN`] if none).
    fn llama_eos(&self) -> u32 {
        NO_TOKEN
    }
}

/// Feed one token at position `caches[0].len()` through the model; returns the int8 logits of
/// the next token. `observe(layer, x)` sees the residual stream after each block and the final
/// RMSNorm's output ([`FINAL_NORM`]).
pub fn llama_step<'r>(
    model: &dyn LlamaModel,
    token: u32,
    caches: &mut [KvCache<'_>],
    buffers: &'r mut ModelBuffers<'_>,
    observe: &mut dyn FnMut(usize, &[i8]),
) -> Result<&'r [i8], Error> {
    let d = model.llama_dims();
    d.validate()?;
    buffers.check(&d.buffers()?)?;
    check_len("kv caches", d.layers, caches.len())?;
    let w = d.width;
    let x = prefix(buffers.x, w, "x buffer")?;
    embed_tokens(&[token], model.llama_embedding()?, w, x)?;
    let mut scratch = BlockScratch {
        normed: buffers.normed,
        wide: buffers.wide,
        scores: buffers.scores,
    };
    for (i, cache) in caches.iter_mut().enumerate() {
        model.llama_block(i)?.run(x, cache, &mut scratch)?;
        observe(i, x);
    }
    let normed = prefix(scratch.normed, w, "normed buffer")?;
    model.llama_final_norm()?.run(x, normed)?;
    observe(FINAL_NORM, normed);
    let logits = prefix(buffers.logits, d.vocab, "logits buffer")?;
    model
        .llama_head()?
        .run(normed, logits, Activation::Identity)?;
    Ok(logits)
}

/// Greedy decoding: clear the caches, feed `prompt` token by token, then append the argmax
/// token until `max_new` tokens were generated or the model's eos token was emitted (it is
/// kept). Writes prompt + generated ids to `out` and returns how many were written.
/// `on_logits(position, logits)` sees the logits computed after feeding position `position`.
pub fn llama_greedy(
    model: &dyn LlamaModel,
    prompt: &[u32],
    max_new: usize,
    out: &mut [u32],
    caches: &mut [KvCache<'_>],
    buffers: &mut ModelBuffers<'_>,
    on_logits: &mut dyn FnMut(usize, &[i8]),
) -> Result<usize, Error> {
    if prompt.is_empty() {
        return Err(Error::BadDimension {
            what: "prompt length",
            value: 0,
        });
    }
    let eos = model.llama_eos();
    greedy_ids(
        prompt,
        max_new,
        out,
        eos,
        caches,
        |position, token, caches| {
            let logits = llama_step(model, token, caches, buffers, &mut |_, _| {})?;
            on_logits(position, logits);
            Ok(argmax_i8(logits) as u32)
        },
    )
}

#[cfg(feature = "std")]
pub use owned::*;

/// Owned parameters, calibration and quantization (host only, `std` feature).
#[cfg(feature = "std")]
mod owned {
    use super::*;
    use crate::attention::AttentionParams;
    use crate::linear::LinearParams;
    use crate::quantize_block::{residual_add, Calibration};
    use crate::reference::block::LinearF;
    use crate::reference::llama::{LlamaBlockF, LlamaF};
    use crate::requant::QParams;
    use crate::rmsnorm::RmsNormParams;
    use crate::rope::{RopeStyle, RopeTableParams};
    use crate::swiglu::SwiGluParams;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    fn p(prefix: &str, point: &str) -> String {
        format!("{prefix}{point}")
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

    /// Owned int8 Llama block (the RoPE table is the model's, shared by every block).
    #[derive(Debug, Clone)]
    pub struct LlamaBlockParams {
        /// See [`LlamaBlock::rms1`].
        pub rms1: RmsNormParams,
        /// See [`LlamaBlock::qkv`].
        pub qkv: LinearParams,
        /// RoPE requantization of the queries (`s_q / s_q' · 2^-14`).
        pub rope_q: crate::requant::Requant,
        /// RoPE requantization of the keys.
        pub rope_k: crate::requant::Requant,
        /// See [`LlamaBlock::kv_heads`].
        pub kv_heads: usize,
        /// See [`LlamaBlock::attention`].
        pub attention: AttentionParams,
        /// See [`LlamaBlock::proj`].
        pub proj: LinearParams,
        /// See [`LlamaBlock::add1`].
        pub add1: ResidualAdd,
        /// See [`LlamaBlock::rms2`].
        pub rms2: RmsNormParams,
        /// See [`LlamaBlock::w1`].
        pub w1: LinearParams,
        /// See [`LlamaBlock::w3`].
        pub w3: LinearParams,
        /// See [`LlamaBlock::swiglu`].
        pub swiglu: SwiGluParams,
        /// See [`LlamaBlock::w2`].
        pub w2: LinearParams,
        /// See [`LlamaBlock::add2`].
        pub add2: ResidualAdd,
    }

    impl LlamaBlockParams {
        /// Quantize `f` (of a model with `heads` query and `kv_heads` key/value heads) for an
        /// input quantized with `input`, from the ranges `calib` observed under `prefix`
        /// (the `l{i}.` points of [`LlamaF::forward`]); returns the block and its output quantization.
        pub fn quantize(
            f: &LlamaBlockF,
            heads: usize,
            kv_heads: usize,
            calib: &Calibration,
            prefix: &str,
            input: QParams,
        ) -> Result<(Self, QParams), Error> {
            let w = f.width();
            let dh = w.checked_div(heads).unwrap_or(0);
            let c = |pt: &str| calib.asymmetric(&p(prefix, pt));
            let s = |pt: &str| calib.symmetric(&p(prefix, pt));
            let (q_rms1, q_q, q_k, q_v) = (c("rms1")?, s("q")?, s("k")?, s("v")?);
            let (q_qr, q_kr, q_attn) = (s("q_rope")?, s("k_rope")?, s("attn")?);
            let (q_proj, q_add1, q_rms2) = (c("proj")?, c("add1")?, c("rms2")?);
            let (q_w1, q_w3, q_sw, q_w2, q_add2) =
                (c("w1")?, c("w3")?, c("swiglu")?, c("w2")?, c("add2")?);
            let kvw = kv_heads * dh;
            let scales: Vec<f64> = (0..f.qkv.out_features())
                .map(|o| match o {
                    o if o < w => q_q.scale,
                    o if o < w + kvw => q_k.scale,
                    _ => q_v.scale,
                })
                .collect();
            let qkv = LinearParams::quantize(&f.qkv.w, &f.qkv.b, w, q_rms1, &scales, 0)?;
            let params = LlamaBlockParams {
                rms1: RmsNormParams::quantize(&f.rms1.gamma, f.rms1.eps, input, q_rms1)?,
                qkv,
                rope_q: RopeTableParams::requant(q_q.scale, q_qr.scale)?,
                rope_k: RopeTableParams::requant(q_k.scale, q_kr.scale)?,
                kv_heads,
                attention: AttentionParams::quantize(
                    heads, dh, q_qr.scale, q_kr.scale, q_v.scale, q_attn,
                )?,
                proj: linear(&f.wo, q_attn, q_proj)?,
                add1: residual_add(input, q_proj, q_add1)?,
                rms2: RmsNormParams::quantize(&f.rms2.gamma, f.rms2.eps, q_add1, q_rms2)?,
                w1: linear(&f.w1, q_rms2, q_w1)?,
                w3: linear(&f.w3, q_rms2, q_w3)?,
                swiglu: SwiGluParams::quantize(q_w1, q_w3, q_sw)?,
                w2: linear(&f.w2, q_sw, q_w2)?,
                add2: residual_add(q_add1, q_w2, q_add2)?,
            };
            Ok((params, q_add2))
        }

        /// Borrow as the kernel struct, with the model's RoPE table and pairing convention.
        pub fn as_block<'s>(
            &'s self,
            table: &'s RopeTableParams,
            style: RopeStyle,
        ) -> LlamaBlock<'s> {
            LlamaBlock {
                rms1: self.rms1.as_rms_norm(),
                qkv: self.qkv.as_linear(),
                rope_q: Rope {
                    table: table.as_table(),
                    style,
                    requant: self.rope_q,
                },
                rope_k: Rope {
                    table: table.as_table(),
                    style,
                    requant: self.rope_k,
                },
                kv_heads: self.kv_heads,
                attention: self.attention.as_attention(),
                proj: self.proj.as_linear(),
                add1: self.add1,
                rms2: self.rms2.as_rms_norm(),
                w1: self.w1.as_linear(),
                w3: self.w3.as_linear(),
                swiglu: self.swiglu.as_swiglu(),
                w2: self.w2.as_linear(),
                add2: self.add2,
            }
        }
    }

    /// A whole owned int8 Llama model (what the blob writer packs).
    #[derive(Debug, Clone)]
    pub struct LlamaParams {
        /// Dimensions.
        pub dims: LlamaDims,
        /// `[vocab][width]` token embedding, symmetric per tensor.
        pub embedding: Vec<i8>,
        /// RoPE table for `max_positions` positions.
        pub rope: RopeTableParams,
        /// Pairing convention of RoPE.
        pub style: RopeStyle,
        /// Blocks.
        pub blocks: Vec<LlamaBlockParams>,
        /// Final RMSNorm (symmetric output).
        pub final_norm: RmsNormParams,
        /// Classifier; when `tied`, its weights equal `embedding` (stored once in a blob).
        pub head: LinearParams,
        /// Classifier tied to the embedding.
        pub tied: bool,
        /// Begin-of-sequence id ([`NO_TOKEN`] if none).
        pub bos: u32,
        /// End-of-sequence id ([`NO_TOKEN`] if none).
        pub eos: u32,
        /// Logits quantization (symmetric).
        pub logits: QParams,
    }

    /// Run the f64 reference over every calibration sequence with a [`Calibration`] observer.
    pub fn calibrate_llama(model: &LlamaF, inputs: &[Vec<u32>]) -> Result<Calibration, Error> {
        let mut c = Calibration::default();
        for ids in inputs {
            model.forward(ids, &mut c)?;
        }
        Ok(c)
    }

    impl LlamaParams {
        /// Quantize `f` with the ranges in `calib` (from [`calibrate_llama`]).
        ///
        /// Choices: token embedding symmetric per tensor (its rows are the first residual
        /// stream); Q, K, V, rotated Q and K and the attention output symmetric; RMSNorm,
        /// linear, SwiGLU and residual outputs asymmetric; the final RMSNorm output symmetric
        /// (a tied classifier's zero bias is then exact); logits symmetric.
        pub fn quantize(f: &LlamaF, calib: &Calibration) -> Result<Self, Error> {
            let dims = f.dims();
            dims.validate()?;
            let max_abs = |v: &[f32]| v.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs()));
            let q_emb = QParams::symmetric(max_abs(&f.embedding));
            let embedding: Vec<i8> = f
                .embedding
                .iter()
                .map(|&x| q_emb.quantize(x as f64))
                .collect();
            let rope = RopeTableParams::build(dims.head_dim(), dims.max_positions, f.theta)?;
            let mut input = q_emb;
            let mut blocks = Vec::with_capacity(f.blocks.len());
            for (i, b) in f.blocks.iter().enumerate() {
                let (bp, q) = LlamaBlockParams::quantize(
                    b,
                    dims.heads,
                    dims.kv_heads,
                    calib,
                    &format!("l{i}."),
                    input,
                )?;
                blocks.push(bp);
                input = q;
            }
            let q_fin = calib.symmetric("final")?;
            let logits = calib.symmetric("logits")?;
            let final_norm =
                RmsNormParams::quantize(&f.final_norm.gamma, f.final_norm.eps, input, q_fin)?;
            let v = dims.vocab;
            let head = crate::quantize_model::lm_head(
                f.head.as_deref(),
                &embedding,
                dims.width,
                v,
                q_emb,
                q_fin,
                logits,
            )?;
            let params = LlamaParams {
                dims,
                embedding,
                rope,
                style: f.style,
                blocks,
                final_norm,
                head,
                tied: f.head.is_none(),
                bos: f.bos.unwrap_or(NO_TOKEN),
                eos: f.eos.unwrap_or(NO_TOKEN),
                logits,
            };
            for i in 0..params.blocks.len() {
                params.llama_block(i)?.validate()?;
            }
            Ok(params)
        }
    }

    impl LlamaModel for LlamaParams {
        fn llama_dims(&self) -> LlamaDims {
            self.dims
        }
        fn llama_embedding(&self) -> Result<&[i8], Error> {
            Ok(&self.embedding)
        }
        fn llama_block(&self, i: usize) -> Result<LlamaBlock<'_>, Error> {
            self.blocks
                .get(i)
                .map(|b| b.as_block(&self.rope, self.style))
                .ok_or(Error::BadDimension {
                    what: "llama block index",
                    value: i,
                })
        }
        fn llama_final_norm(&self) -> Result<RmsNorm<'_>, Error> {
            Ok(self.final_norm.as_rms_norm())
        }
        fn llama_head(&self) -> Result<Linear<'_>, Error> {
            Ok(self.head.as_linear())
        }
        fn llama_bos(&self) -> u32 {
            self.bos
        }
        fn llama_eos(&self) -> u32 {
            self.eos
        }
    }
}
