//! Transformer blocks built from the kernels: the encoder block (pre-norm as in ViT, or
//! post-norm as in the original Transformer) and the decoder block (masked self-attention with a
//! KV cache, optional cross-attention over encoder outputs, MLP).
//!
//! Pre-norm (ViT, GPT-2): `x ← x + Attn(LN₁(x))`, `x ← x + MLP(LN₂(x))`.
//! Post-norm (Vaswani et al.): `x ← LN₁(x + Attn(x))`, `x ← LN₂(x + MLP(x))`.
//! `MLP(a) = W₂ · GELU(W₁ a + b₁) + b₂`, GELU fused into `W₁`'s output as a table.
//!
//! The residual stream `x` is updated in place. Every block needs the same two scratch buffers
//! ([`BlockScratch`]): `normed` (`tokens · width`) and `wide` (`tokens · max(3·width, mlp)`),
//! plus one `i32` per key for attention. Buffers are reused across steps:
//! `normed` holds LN output, then the attention context, then the MLP output; `wide` holds the
//! fused QKV, then the attention projection, then the MLP hidden layer.

use crate::activation::Lut;
use crate::attention::{Attention, KvCache, Mask};
use crate::linear::{Activation, Linear};
use crate::norm::LayerNorm;
use crate::residual::ResidualAdd;
use crate::tensor::Rows;
use crate::Error;

/// Where the LayerNorms sit in an encoder block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NormPlacement {
    /// `x + f(LN(x))` (ViT, GPT-2).
    Pre,
    /// `LN(x + f(x))` (original Transformer).
    Post,
}

/// Caller-provided working memory for one block.
#[derive(Debug)]
pub struct BlockScratch<'b> {
    /// `tokens · width` int8.
    pub normed: &'b mut [i8],
    /// `tokens · max(3·width, mlp_width)` int8.
    pub wide: &'b mut [i8],
    /// One `i32` per attended key.
    pub scores: &'b mut [i32],
}

/// The feed-forward sublayer.
#[derive(Debug, Clone, Copy)]
pub struct Mlp<'a> {
    /// `width → mlp_width`.
    pub fc1: Linear<'a>,
    /// Activation table applied to `fc1`'s output (GELU).
    pub activation: Lut<'a>,
    /// `mlp_width → width`.
    pub fc2: Linear<'a>,
}

impl<'a> Mlp<'a> {
    #[inline(never)] // load-time check: one copy, not inlined into each caller
    fn validate(&self, width: usize) -> Result<(), Error> {
        self.fc1.validate()?;
        self.fc2.validate()?;
        crate::error::check_len("mlp fc1 input", width, self.fc1.in_features)?;
        crate::error::check_len("mlp fc2 input", self.fc1.out_features, self.fc2.in_features)?;
        crate::error::check_len("mlp fc2 output", width, self.fc2.out_features)
    }
}

/// `(width, tokens)` of a block input of `len` bytes: `len` must be a non-zero multiple of the
/// (non-zero) width.
fn token_rows(what: &'static str, w: usize, len: usize) -> Result<(usize, usize), Error> {
    match (len.checked_div(w), len.checked_rem(w)) {
        (Some(n), Some(0)) if n > 0 => Ok((w, n)),
        _ => Err(Error::ShapeMismatch {
            what,
            expected: len.checked_div(w).unwrap_or(0).max(1) * w,
            found: len,
        }),
    }
}

/// The parts every block has, for shared validation.
struct Common<'r, 'a> {
    ln1: &'r LayerNorm<'a>,
    qkv: &'r Linear<'a>,
    attention: &'r Attention<'a>,
    proj: &'r Linear<'a>,
    add1: &'r ResidualAdd,
    ln2: &'r LayerNorm<'a>,
    mlp: &'r Mlp<'a>,
    add2: &'r ResidualAdd,
}

/// Check each part of a block and that their shapes chain.
fn validate_common(b: &Common<'_, '_>) -> Result<(), Error> {
    let w = b.attention.width();
    b.attention.validate()?;
    b.ln1.validate()?;
    b.ln2.validate()?;
    crate::error::check_len("ln1 width", w, b.ln1.width)?;
    crate::error::check_len("ln2 width", w, b.ln2.width)?;
    b.qkv.validate()?;
    crate::error::check_len("qkv input", w, b.qkv.in_features)?;
    crate::error::check_len("qkv output", 3 * w, b.qkv.out_features)?;
    if b.qkv.output_zero_point != 0 {
        return Err(Error::BadRequant);
    }
    b.proj.validate()?;
    crate::error::check_len("proj input", w, b.proj.in_features)?;
    crate::error::check_len("proj output", w, b.proj.out_features)?;
    b.add1.validate()?;
    b.add2.validate()?;
    b.mlp.validate(w)
}

/// An encoder block (bidirectional self-attention + MLP).
#[derive(Debug, Clone, Copy)]
pub struct EncoderBlock<'a> {
    /// Pre- or post-norm.
    pub placement: NormPlacement,
    /// LayerNorm before (pre) or after (post) the attention sublayer.
    pub ln1: LayerNorm<'a>,
    /// Fused `width → 3·width` projection, output `q | k | v`, symmetric.
    pub qkv: Linear<'a>,
    /// Multi-head attention.
    pub attention: Attention<'a>,
    /// Output projection `width → width`.
    pub proj: Linear<'a>,
    /// `x + proj`.
    pub add1: ResidualAdd,
    /// LayerNorm before (pre) or after (post) the MLP sublayer.
    pub ln2: LayerNorm<'a>,
    /// Feed-forward sublayer.
    pub mlp: Mlp<'a>,
    /// `x + mlp`.
    pub add2: ResidualAdd,
}

impl<'a> EncoderBlock<'a> {
    /// Model width.
    pub fn width(&self) -> usize {
        self.attention.width()
    }

    /// Width of the `wide` scratch buffer per token.
    pub fn wide_per_token(&self) -> usize {
        (3 * self.width()).max(self.mlp.fc1.out_features)
    }

    /// Check every part and that their shapes chain.
    #[inline(never)] // load-time check: one copy, not inlined into each caller
    pub fn validate(&self) -> Result<(), Error> {
        validate_common(&Common {
            ln1: &self.ln1,
            qkv: &self.qkv,
            attention: &self.attention,
            proj: &self.proj,
            add1: &self.add1,
            ln2: &self.ln2,
            mlp: &self.mlp,
            add2: &self.add2,
        })
    }

    /// Run the block on `x` (`[tokens][width]`) in place.
    pub fn run(&self, x: &mut [i8], scratch: &mut BlockScratch<'_>) -> Result<(), Error> {
        let (w, n) = token_rows("encoder block input", self.width(), x.len())?;
        let len = x.len();
        let normed = crate::error::prefix(scratch.normed, len, "block normed buffer")?;
        let wide =
            crate::error::prefix(scratch.wide, n * self.wide_per_token(), "block wide buffer")?;

        // Attention sublayer.
        let qkv = crate::error::prefix(wide, n * 3 * w, "block wide buffer")?;
        match self.placement {
            NormPlacement::Pre => {
                self.ln1.run(x, normed)?;
                self.qkv.run(normed, qkv, Activation::Identity)?;
            }
            NormPlacement::Post => self.qkv.run(x, qkv, Activation::Identity)?,
        }
        self.attention
            .self_attention(qkv, normed, scratch.scores, Mask::None)?;
        let proj = crate::error::prefix(wide, len, "block wide buffer")?;
        self.proj.run(normed, proj, Activation::Identity)?;
        self.add1.run_in_place(x, proj)?;
        if self.placement == NormPlacement::Post {
            self.ln1.run(x, normed)?;
            x.copy_from_slice(normed);
        }

        // MLP sublayer.
        let mlp_in: &[i8] = match self.placement {
            NormPlacement::Pre => {
                self.ln2.run(x, normed)?;
                normed
            }
            NormPlacement::Post => x,
        };
        // `normed` may be the MLP input: fc1 consumes it into `wide`, then fc2 overwrites it.
        let hidden_len = n * self.mlp.fc1.out_features;
        let hidden = crate::error::prefix(wide, hidden_len, "block wide buffer")?;
        self.mlp
            .fc1
            .run(mlp_in, hidden, Activation::Table(self.mlp.activation))?;
        self.mlp.fc2.run(hidden, normed, Activation::Identity)?;
        self.add2.run_in_place(x, normed)?;
        if self.placement == NormPlacement::Post {
            let dst = crate::error::prefix(wide, len, "block wide buffer")?;
            self.ln2.run(x, dst)?;
            x.copy_from_slice(dst);
        }
        Ok(())
    }
}

/// Cross-attention sublayer of a decoder block.
#[derive(Debug, Clone, Copy)]
pub struct CrossAttention<'a> {
    /// LayerNorm before the sublayer.
    pub ln: LayerNorm<'a>,
    /// Query projection `width → width` (symmetric output).
    pub q: Linear<'a>,
    /// Key/value projection of the encoder output `enc_width → 2·width`, output `k | v`.
    pub kv: Linear<'a>,
    /// Multi-head attention over the encoder tokens.
    pub attention: Attention<'a>,
    /// Output projection.
    pub proj: Linear<'a>,
    /// `x + proj`.
    pub add: ResidualAdd,
}

impl<'a> CrossAttention<'a> {
    /// Project the encoder output once into the cross-attention K/V cache (`wide` must hold
    /// `enc_tokens · 2·width`).
    pub fn fill_cache(
        &self,
        encoder_out: &[i8],
        wide: &mut [i8],
        cache: &mut KvCache<'_>,
    ) -> Result<(), Error> {
        let w = self.attention.width();
        let n = encoder_out.len() / self.kv.in_features.max(1);
        let kv = crate::error::prefix(wide, n * 2 * w, "cross kv buffer")?;
        self.kv.run(encoder_out, kv, Activation::Identity)?;
        cache.clear();
        cache.append_rows(
            Rows::strided(kv, 0, n, w, 2 * w)?,
            Rows::strided(kv, w, n, w, 2 * w)?,
        )
    }

    #[inline(never)] // load-time check: one copy, not inlined into each caller
    fn validate(&self, width: usize) -> Result<(), Error> {
        self.ln.validate()?;
        crate::error::check_len("cross ln width", width, self.ln.width)?;
        self.q.validate()?;
        self.kv.validate()?;
        self.proj.validate()?;
        self.attention.validate()?;
        crate::error::check_len("cross attention width", width, self.attention.width())?;
        crate::error::check_len("cross q output", width, self.q.out_features)?;
        crate::error::check_len("cross kv output", 2 * width, self.kv.out_features)?;
        crate::error::check_len("cross proj output", width, self.proj.out_features)?;
        if self.q.output_zero_point != 0 || self.kv.output_zero_point != 0 {
            return Err(Error::BadRequant);
        }
        self.add.validate()
    }
}

/// A pre-norm decoder block (GPT-2 layout): masked self-attention over a KV cache, optional
/// cross-attention over encoder outputs, MLP.
#[derive(Debug, Clone, Copy)]
pub struct DecoderBlock<'a> {
    /// LayerNorm before self-attention.
    pub ln1: LayerNorm<'a>,
    /// Fused `width → 3·width` projection (`q | k | v`, symmetric).
    pub qkv: Linear<'a>,
    /// Causal multi-head self-attention.
    pub attention: Attention<'a>,
    /// Output projection.
    pub proj: Linear<'a>,
    /// `x + proj`.
    pub add1: ResidualAdd,
    /// Cross-attention (encoder–decoder models only).
    pub cross: Option<CrossAttention<'a>>,
    /// LayerNorm before the MLP.
    pub ln2: LayerNorm<'a>,
    /// Feed-forward sublayer.
    pub mlp: Mlp<'a>,
    /// `x + mlp`.
    pub add2: ResidualAdd,
}

impl<'a> DecoderBlock<'a> {
    /// Model width.
    pub fn width(&self) -> usize {
        self.attention.width()
    }

    /// Width of the `wide` scratch buffer per token.
    pub fn wide_per_token(&self) -> usize {
        (3 * self.width()).max(self.mlp.fc1.out_features)
    }

    /// Check every part and that their shapes chain.
    #[inline(never)] // load-time check: one copy, not inlined into each caller
    pub fn validate(&self) -> Result<(), Error> {
        validate_common(&Common {
            ln1: &self.ln1,
            qkv: &self.qkv,
            attention: &self.attention,
            proj: &self.proj,
            add1: &self.add1,
            ln2: &self.ln2,
            mlp: &self.mlp,
            add2: &self.add2,
        })?;
        match &self.cross {
            Some(c) => c.validate(self.width()),
            None => Ok(()),
        }
    }

    /// Run the block on the new tokens `x` (`[tokens][width]`, in place), which sit at positions
    /// `cache.len()..` of the sequence. Their keys and values are appended to `cache`; with
    /// cross-attention, `cross_cache` must hold the projected encoder keys/values
    /// ([`CrossAttention::fill_cache`]).
    pub fn run(
        &self,
        x: &mut [i8],
        cache: &mut KvCache<'_>,
        cross_cache: Option<&KvCache<'_>>,
        scratch: &mut BlockScratch<'_>,
    ) -> Result<(), Error> {
        let (w, n) = token_rows("decoder block input", self.width(), x.len())?;
        let len = x.len();
        let normed = crate::error::prefix(scratch.normed, len, "block normed buffer")?;
        let wide =
            crate::error::prefix(scratch.wide, n * self.wide_per_token(), "block wide buffer")?;

        // Masked self-attention over the cache.
        self.ln1.run(x, normed)?;
        let qkv = crate::error::prefix(wide, n * 3 * w, "block wide buffer")?;
        self.qkv.run(normed, qkv, Activation::Identity)?;
        let first_position = cache.len();
        cache.append_rows(
            Rows::strided(qkv, w, n, w, 3 * w)?,
            Rows::strided(qkv, 2 * w, n, w, 3 * w)?,
        )?;
        self.attention.run(
            Rows::strided(qkv, 0, n, w, 3 * w)?,
            cache.keys(),
            cache.values(),
            Mask::Causal { first_position },
            normed,
            scratch.scores,
        )?;
        let proj = crate::error::prefix(wide, len, "block wide buffer")?;
        self.proj.run(normed, proj, Activation::Identity)?;
        self.add1.run_in_place(x, proj)?;

        // Cross-attention over the encoder output.
        if let Some(c) = &self.cross {
            let cc = cross_cache.ok_or(Error::BadDimension {
                what: "cross-attention cache (missing)",
                value: 0,
            })?;
            c.ln.run(x, normed)?;
            let q = crate::error::prefix(wide, len, "block wide buffer")?;
            c.q.run(normed, q, Activation::Identity)?;
            c.attention.run(
                Rows::contiguous(q, w)?,
                cc.keys(),
                cc.values(),
                Mask::None,
                normed,
                scratch.scores,
            )?;
            let proj = crate::error::prefix(wide, len, "block wide buffer")?;
            c.proj.run(normed, proj, Activation::Identity)?;
            c.add.run_in_place(x, proj)?;
        }

        // MLP.
        self.ln2.run(x, normed)?;
        let hidden =
            crate::error::prefix(wide, n * self.mlp.fc1.out_features, "block wide buffer")?;
        self.mlp
            .fc1
            .run(normed, hidden, Activation::Table(self.mlp.activation))?;
        self.mlp.fc2.run(hidden, normed, Activation::Identity)?;
        self.add2.run_in_place(x, normed)
    }
}
