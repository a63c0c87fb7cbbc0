//! A deterministic, integer-only exercise of every core-attn kernel and block, built from a seed
//! without any float, so that the host and a Cortex-M core must produce the same bytes.
//!
//! The firmware prints one line per case ([`format_line`]); the workspace test runs the same
//! function on the host and compares the lines byte for byte with the firmware's output under
//! QEMU. Parameters are pseudo-random but shaped like a real model's (weights over the full int8
//! range, requantization that keeps activations in range), so overflow, rounding and
//! saturation paths all run.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core_attn::activation::Lut;
use core_attn::attention::{Attention, KvCache, Mask};
use core_attn::block::{
    BlockScratch, CrossAttention, DecoderBlock, EncoderBlock, Mlp, NormPlacement,
};
use core_attn::linear::{Activation, Linear};
use core_attn::norm::LayerNorm;
use core_attn::residual::ResidualAdd;
use core_attn::softmax::{softmax_i8, ExpTable};
use core_attn::{ChannelRequant, Error, Requant};

/// Model width of the self-check.
pub const D: usize = 32;
/// Heads.
pub const HEADS: usize = 4;
/// MLP width.
pub const F: usize = 64;
/// Encoder tokens (a 28×28 image in 7×7 patches plus the class token).
pub const N: usize = 17;
/// Decoder tokens.
pub const T: usize = 6;

/// xorshift32: deterministic parameters.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
    fn fill_i8(&mut self, out: &mut [i8]) {
        for v in out {
            *v = self.next() as i8;
        }
    }
    fn fill_i32(&mut self, out: &mut [i32], range: u32, offset: i32) {
        for v in out {
            *v = (self.next() % range) as i32 - offset;
        }
    }
}

/// `exp(−d·step)` tables built with integer arithmetic only (repeated Q32 multiplication by
/// `r = exp(−step)`), so that host and device agree bit for bit.
fn exp_tables(hi: &mut [u16; 256], lo: &mut [u16; 256]) {
    // r ≈ exp(−17·ln2/65535) in Q32.
    const R_Q32: u64 = 4_294_194_851;
    let mut e: u64 = 65535 << 32;
    for v in lo.iter_mut() {
        *v = ((e + (1 << 31)) >> 32) as u16;
        e = ((e >> 16) * R_Q32) >> 16;
    }
    // R = r^256 by eight squarings.
    let mut big = R_Q32;
    for _ in 0..8 {
        big = (big * big) >> 32;
    }
    let mut e: u64 = 65535 << 32;
    for v in hi.iter_mut() {
        *v = ((e + (1 << 31)) >> 32) as u16;
        e = ((e >> 16) * big) >> 16;
    }
}

/// Linear-layer storage.
struct Lin<const IN: usize, const OUT: usize, const N_W: usize> {
    w: [i8; N_W],
    b: [i32; OUT],
    m: [i32; OUT],
    s: [i8; OUT],
}

impl<const IN: usize, const OUT: usize, const N_W: usize> Lin<IN, OUT, N_W> {
    const ZERO: Self = Lin {
        w: [0; N_W],
        b: [0; OUT],
        m: [0; OUT],
        s: [0; OUT],
    };

    fn fill(&mut self, rng: &mut Rng, shift: i8) {
        self.s = [shift; OUT];
        rng.fill_i8(&mut self.w);
        rng.fill_i32(&mut self.b, 20_000, 10_000);
        for m in self.m.iter_mut() {
            *m = (1 << 30) + (rng.next() % (1 << 29)) as i32;
        }
    }
    fn linear(&self, zero_point: i32) -> Linear<'_> {
        Linear {
            in_features: IN,
            out_features: OUT,
            weights: &self.w,
            bias: &self.b,
            requant: ChannelRequant {
                multipliers: &self.m,
                shifts: &self.s,
            },
            output_zero_point: zero_point,
        }
    }
}

struct Norm {
    gamma: [i32; D],
    beta: [i32; D],
}

impl Norm {
    const ZERO: Self = Norm {
        gamma: [0; D],
        beta: [0; D],
    };

    fn fill(&mut self, rng: &mut Rng) {
        // γ/s_out ≈ 24 ± 4 output LSBs per unit, β within ±8 LSBs (Q16).
        for g in self.gamma.iter_mut() {
            *g = (20 << 16) + (rng.next() % (8 << 16)) as i32;
        }
        rng.fill_i32(&mut self.beta, 16 << 16, 8 << 16);
    }
    fn layer_norm(&self) -> LayerNorm<'_> {
        LayerNorm {
            width: D,
            gamma: &self.gamma,
            beta: &self.beta,
            epsilon: 1 << 40,
            output_zero_point: -3,
        }
    }
}

const HALF: Requant = Requant {
    multiplier: 1 << 30,
    shift: 0,
};
const ONE: Requant = Requant {
    multiplier: 1 << 30,
    shift: 1,
};

fn add() -> ResidualAdd {
    ResidualAdd {
        a_scale: ONE,
        a_zero_point: 0,
        b_scale: HALF,
        b_zero_point: -3,
        output_zero_point: 0,
    }
}

fn attention<'a>(hi: &'a [u16; 256], lo: &'a [u16; 256]) -> Attention<'a> {
    Attention {
        heads: HEADS,
        head_dim: D / HEADS,
        // Raw q·k differences of ~10^4 spread over ~10^4 table steps.
        score_to_index: Requant {
            multiplier: 1_492_501_135,
            shift: -1,
        },
        exp: ExpTable { hi, lo },
        // Q15 probabilities · v back to v's scale.
        output: Requant {
            multiplier: 1 << 30,
            shift: -14,
        },
        output_zero_point: 0,
    }
}

/// Every parameter of the self-check, owned (about 30 KiB).
pub struct Params {
    hi: [u16; 256],
    lo: [u16; 256],
    gelu: [i8; 256],
    enc: [Layer; 2],
    cross_ln: Norm,
    cross_q: Lin<D, D, { D * D }>,
    cross_kv: Lin<D, { 2 * D }, { 2 * D * D }>,
    cross_proj: Lin<D, D, { D * D }>,
}

struct Layer {
    ln1: Norm,
    qkv: Lin<D, { 3 * D }, { 3 * D * D }>,
    proj: Lin<D, D, { D * D }>,
    ln2: Norm,
    fc1: Lin<D, F, { F * D }>,
    fc2: Lin<F, D, { F * D }>,
}

impl Layer {
    const ZERO: Self = Layer {
        ln1: Norm::ZERO,
        qkv: Lin::ZERO,
        proj: Lin::ZERO,
        ln2: Norm::ZERO,
        fc1: Lin::ZERO,
        fc2: Lin::ZERO,
    };

    fn fill(&mut self, rng: &mut Rng) {
        self.ln1.fill(rng);
        self.qkv.fill(rng, -9);
        self.proj.fill(rng, -9);
        self.ln2.fill(rng);
        self.fc1.fill(rng, -9);
        self.fc2.fill(rng, -10);
    }
}

impl Params {
    /// All-zero parameters, for a `static` that [`Params::init`] fills in place (the struct is
    /// ~30 KiB: building it on a Cortex-M stack would cost that much stack).
    pub const fn zeroed() -> Self {
        Params {
            hi: [0; 256],
            lo: [0; 256],
            gelu: [0; 256],
            enc: [Layer::ZERO, Layer::ZERO],
            cross_ln: Norm::ZERO,
            cross_q: Lin::ZERO,
            cross_kv: Lin::ZERO,
            cross_proj: Lin::ZERO,
        }
    }

    /// Fill every parameter from `seed` (non-zero), in place.
    pub fn init(&mut self, seed: u32) {
        let mut rng = Rng(seed | 1);
        exp_tables(&mut self.hi, &mut self.lo);
        for (i, g) in self.gelu.iter_mut().enumerate() {
            // A GELU-like shape on integers: negative inputs shrink towards a small dip.
            let x = i as i32 - 128;
            *g = if x >= 0 { x as i8 } else { (x / 8) as i8 };
        }
        for l in self.enc.iter_mut() {
            l.fill(&mut rng);
        }
        self.cross_ln.fill(&mut rng);
        self.cross_q.fill(&mut rng, -9);
        self.cross_kv.fill(&mut rng, -9);
        self.cross_proj.fill(&mut rng, -9);
    }

    /// Parameters from `seed` (non-zero), by value (host).
    pub fn new(seed: u32) -> Self {
        let mut p = Self::zeroed();
        p.init(seed);
        p
    }

    fn mlp<'a>(&'a self, l: &'a Layer) -> Mlp<'a> {
        Mlp {
            fc1: l.fc1.linear(0),
            activation: Lut::new(&self.gelu),
            fc2: l.fc2.linear(-3),
        }
    }

    fn encoder(&self, l: usize, placement: NormPlacement) -> EncoderBlock<'_> {
        let l = &self.enc[l];
        EncoderBlock {
            placement,
            ln1: l.ln1.layer_norm(),
            qkv: l.qkv.linear(0),
            attention: attention(&self.hi, &self.lo),
            proj: l.proj.linear(-3),
            add1: add(),
            ln2: l.ln2.layer_norm(),
            mlp: self.mlp(l),
            add2: add(),
        }
    }

    fn decoder(&self) -> DecoderBlock<'_> {
        let l = &self.enc[1];
        DecoderBlock {
            ln1: l.ln1.layer_norm(),
            qkv: l.qkv.linear(0),
            attention: attention(&self.hi, &self.lo),
            proj: l.proj.linear(-3),
            add1: add(),
            cross: Some(CrossAttention {
                ln: self.cross_ln.layer_norm(),
                q: self.cross_q.linear(0),
                kv: self.cross_kv.linear(0),
                attention: attention(&self.hi, &self.lo),
                proj: self.cross_proj.linear(-3),
                add: add(),
            }),
            ln2: l.ln2.layer_norm(),
            mlp: self.mlp(l),
            add2: add(),
        }
    }
}

/// Run every case, handing each case's name and output bytes to `emit`.
pub fn run(params: &Params, seed: u32, emit: &mut dyn FnMut(&str, &[i8])) -> Result<(), Error> {
    let mut rng = Rng(seed.wrapping_mul(2_654_435_761) | 1);
    let mut x = [0i8; N * D];
    rng.fill_i8(&mut x);

    // Kernels one by one.
    let mut y = [0i8; N * D];
    params.enc[0]
        .proj
        .linear(-3)
        .run(&x, &mut y, Activation::Identity)?;
    emit("linear", &y);
    params.enc[0].ln1.layer_norm().run(&x, &mut y)?;
    emit("layer_norm", &y);
    let mut probs = [0u16; N];
    let exp = ExpTable::new(&params.hi, &params.lo)?;
    // Every bit of every probability (u16, little-endian byte pairs): a difference in the low
    // byte must show (this case once compared only `p >> 8`).
    let mut p_bytes = [0i8; 2 * N];
    softmax_i8(
        &x[..N],
        Requant {
            multiplier: 1 << 30,
            shift: 8,
        },
        exp,
        &mut probs,
    )?;
    for (o, &p) in p_bytes.chunks_exact_mut(2).zip(&probs) {
        for (b, v) in o.iter_mut().zip(p.to_le_bytes()) {
            *b = v as i8;
        }
    }
    emit("softmax", &p_bytes);
    let mut qkv = [0i8; N * 3 * D];
    params.enc[0]
        .qkv
        .linear(0)
        .run(&x, &mut qkv, Activation::Identity)?;
    let mut scores = [0i32; N];
    let att = attention(&params.hi, &params.lo);
    att.self_attention(&qkv, &mut y, &mut scores, Mask::None)?;
    emit("attention", &y);
    att.self_attention(
        &qkv,
        &mut y,
        &mut scores,
        Mask::Causal { first_position: 0 },
    )?;
    emit("causal_attention", &y);

    // Blocks.
    let mut normed = [0i8; N * D];
    let mut wide = [0i8; N * 3 * D];
    let mut enc = x;
    for (l, placement) in [(0, NormPlacement::Pre), (1, NormPlacement::Post)] {
        let mut scratch = BlockScratch {
            normed: &mut normed,
            wide: &mut wide,
            scores: &mut scores,
        };
        params.encoder(l, placement).run(&mut enc, &mut scratch)?;
    }
    emit("encoder_blocks", &enc);

    let dec = params.decoder();
    let (mut kb, mut vb) = ([0i8; T * D], [0i8; T * D]);
    let (mut ckb, mut cvb) = ([0i8; N * D], [0i8; N * D]);
    let mut cache = KvCache::new(&mut kb, &mut vb, D)?;
    let mut cross = KvCache::new(&mut ckb, &mut cvb, D)?;
    if let Some(c) = &dec.cross {
        c.fill_cache(&enc, &mut wide, &mut cross)?;
    }
    let mut tokens = [0i8; T * D];
    rng.fill_i8(&mut tokens);
    for t in 0..T {
        let mut scratch = BlockScratch {
            normed: &mut normed,
            wide: &mut wide,
            scores: &mut scores,
        };
        dec.run(
            &mut tokens[t * D..(t + 1) * D],
            &mut cache,
            Some(&cross),
            &mut scratch,
        )?;
    }
    emit("decoder_kv_cache", &tokens);
    Ok(())
}

/// FNV-1a over the bytes.
pub fn fnv1a(data: &[i8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ b as u8 as u32).wrapping_mul(0x0100_0193)
    })
}

/// The line printed for one case: `selftest <name> len=<n> fnv=<hash> head=<first 8 bytes>`.
pub fn format_line<W: core::fmt::Write>(out: &mut W, name: &str, data: &[i8]) -> core::fmt::Result {
    write!(
        out,
        "selftest {name} len={} fnv={:08x} head=",
        data.len(),
        fnv1a(data)
    )?;
    for b in data.iter().take(8) {
        write!(out, "{:02x}", *b as u8)?;
    }
    Ok(())
}

/// The seed both the host test and the firmware use.
pub const SEED: u32 = 0x5eed_a77e;
