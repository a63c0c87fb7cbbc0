//! Transformer blocks: int8 against the f64 reference (SQNR), KV-cache decoding against a full
//! causal pass, post-norm and cross-attention.

mod common;

use common::{dequantize, Rng};
use core_attn::attention::KvCache;
use core_attn::block::{BlockScratch, NormPlacement};
use core_attn::quantize_block::{Calibration, DecoderBlockParams, EncoderBlockParams};
use core_attn::reference::block::{
    CrossAttentionF, DecoderBlockF, EncoderBlockF, Gelu, LayerNormF, LinearF, NoObserver,
};
use core_attn::reference::kernels::sqnr_db;
use core_attn::requant::QParams;

/// Under Miri every f64 reference pass is interpreted (one pass of a width-64 block over 17
/// tokens takes minutes), so the blocks are calibrated on the test input alone instead of 128
/// others (one f64 pass, which is also the expected output; with so few samples a held-out
/// input would be clipped), run on at most 3 tokens (a token pair and an odd one: every row
/// path of the kernels; 1 token where the native test has 1) and with the first seed only.
/// Widths, head counts and MLP sizes are the native ones, so every int8 kernel shape still runs.
const MIRI: bool = cfg!(miri);
const SEEDS: u64 = if MIRI { 1 } else { 16 };

/// Per-seed floor of every block test (dB).
const FLOOR_DB: f64 = 30.0;

/// Mean bounds: measured 33.16 (pre-norm), 32.28 (post-norm), 32.82 (decoder), 31.93 (cross)
/// dB over the 16 seeds, less 0.5 dB.
const PRE_MEAN: f64 = 32.65;
/// See [`PRE_MEAN`].
const POST_MEAN: f64 = 31.78;
/// See [`PRE_MEAN`].
const DEC_MEAN: f64 = 32.3;
/// See [`PRE_MEAN`].
const CROSS_MEAN: f64 = 31.4;

/// Issue #17 item 9: the block tests used to check 3–4 seeds against a 30 dB floor that the
/// worst seed cleared by 1.6 dB, and a 3 % attention output-scale error or a 5 % softmax
/// temperature error left the encoder blocks above it. Now each test runs 16 seeds and checks
/// two things: every seed ≥ [`FLOOR_DB`] (worst measured 31.2 dB: ≥ 1.2 dB of margin), and the
/// mean over the seeds ≥ `mean_min`, set 0.5 dB below the measured mean. The mean of 16 seeds
/// is ~4× steadier than one seed, so it can sit close: the two injections above move the
/// encoder means by 0.8–1.5 dB. Under Miri (one seed) only the floor is checked.
fn check_seeds(what: &str, sqnrs: &[f64], mean_min: f64) {
    for (seed, &db) in sqnrs.iter().enumerate() {
        assert!(
            db >= FLOOR_DB,
            "{what} seed {seed}: {db:.2} dB < {FLOOR_DB}"
        );
    }
    let mean = sqnrs.iter().sum::<f64>() / sqnrs.len() as f64;
    eprintln!("{what}: mean {mean:.2} dB over {} seeds", sqnrs.len());
    if !MIRI {
        assert!(
            mean >= mean_min,
            "{what}: mean {mean:.2} dB over {} seeds < {mean_min}",
            sqnrs.len()
        );
    }
}

/// Input seeds of the calibration set: `first..first + 128` natively; under Miri the test
/// input's seed `held_out` only.
fn calibration_seeds(first: u64, held_out: u64) -> Vec<u64> {
    if MIRI {
        vec![held_out]
    } else {
        (first..first + 128).collect()
    }
}

/// Token count: `n` natively, at most 3 under Miri.
fn tokens(n: usize) -> usize {
    if MIRI {
        n.min(3)
    } else {
        n
    }
}

fn lin(rng: &mut Rng, inp: usize, out: usize) -> LinearF {
    let s = 1.0 / (inp as f64).sqrt();
    LinearF {
        w: (0..inp * out).map(|_| (s * rng.normal()) as f32).collect(),
        b: (0..out).map(|_| (0.1 * rng.normal()) as f32).collect(),
        in_features: inp,
    }
}

fn ln(rng: &mut Rng, d: usize, eps: f64) -> LayerNormF {
    LayerNormF {
        gamma: (0..d).map(|_| (1.0 + 0.1 * rng.normal()) as f32).collect(),
        beta: (0..d).map(|_| (0.1 * rng.normal()) as f32).collect(),
        eps,
    }
}

fn encoder(
    seed: u64,
    d: usize,
    heads: usize,
    mlp: usize,
    placement: NormPlacement,
) -> EncoderBlockF {
    let mut r = Rng::new(seed);
    EncoderBlockF {
        placement,
        heads,
        ln1: ln(&mut r, d, 1e-12),
        qkv: lin(&mut r, d, 3 * d),
        proj: lin(&mut r, d, d),
        ln2: ln(&mut r, d, 1e-12),
        fc1: lin(&mut r, d, mlp),
        act: Gelu::Erf,
        fc2: lin(&mut r, mlp, d),
    }
}

fn decoder(seed: u64, d: usize, heads: usize, cross: bool) -> DecoderBlockF {
    let mut r = Rng::new(seed);
    DecoderBlockF {
        heads,
        ln1: ln(&mut r, d, 1e-5),
        qkv: lin(&mut r, d, 3 * d),
        proj: lin(&mut r, d, d),
        cross: cross.then(|| CrossAttentionF {
            ln: ln(&mut r, d, 1e-5),
            q: lin(&mut r, d, d),
            kv: lin(&mut r, d, 2 * d),
            proj: lin(&mut r, d, d),
        }),
        ln2: ln(&mut r, d, 1e-5),
        fc1: lin(&mut r, d, 4 * d),
        act: Gelu::Tanh,
        fc2: lin(&mut r, 4 * d, d),
    }
}

fn input(seed: u64, n: usize, d: usize) -> Vec<f64> {
    let mut r = Rng::new(seed);
    (0..n * d).map(|_| r.normal()).collect()
}

fn quantize_input(x: &[f64], q: QParams) -> (Vec<i8>, Vec<f64>) {
    let xq: Vec<i8> = x.iter().map(|&v| q.quantize(v)).collect();
    let back = dequantize(&xq, q.scale, q.zero_point);
    (xq, back)
}

fn run_encoder(f: &EncoderBlockF, n: usize) -> f64 {
    let n = tokens(n);
    let d = f.width();
    let mut calib = Calibration::default();
    let in_q = QParams::asymmetric(-4.5, 4.5);
    let mut held_out = None;
    for s in calibration_seeds(100, 999) {
        let (_, x) = quantize_input(&input(s, n, d), in_q);
        let y = f.forward(&x, "", &mut calib);
        if s == 999 {
            held_out = Some(y);
        }
    }
    let (params, out_q) = EncoderBlockParams::quantize(f, &calib, "", in_q).unwrap();
    let block = params.as_block();
    block.validate().unwrap();
    // Held-out input (not used for calibration, except under Miri).
    let (mut xq, x) = quantize_input(&input(999, n, d), in_q);
    let expected = held_out.unwrap_or_else(|| f.forward(&x, "", &mut NoObserver));
    let mut normed = vec![0i8; n * d];
    let mut wide = vec![0i8; n * block.wide_per_token()];
    let mut scores = vec![0i32; n];
    let mut scratch = BlockScratch {
        normed: &mut normed,
        wide: &mut wide,
        scores: &mut scores,
    };
    block.run(&mut xq, &mut scratch).unwrap();
    sqnr_db(&expected, &dequantize(&xq, out_q.scale, out_q.zero_point))
}

/// Injected (see [`check_seeds`]): attention output requantization × 1.03
/// (`AttentionParams::quantize`) → fails with `pre-norm: mean 32.16 dB over 16 seeds < 32.65`;
/// score-to-index × 1.05 (softmax temperature) → `pre-norm: mean 31.60 dB …`. Both injections
/// fail all four seeded block tests (post-norm 31.46 / 31.47 < 31.78; decoder seed 2 29.85 dB,
/// mean 31.84 < 32.3; cross seed 1 29.58 / 29.77 dB).
#[test]
fn pre_norm_encoder_block_vit_shapes() {
    let s: Vec<f64> = (0..SEEDS)
        .map(|seed| run_encoder(&encoder(seed, 64, 4, 128, NormPlacement::Pre), 17))
        .collect();
    check_seeds("pre-norm", &s, PRE_MEAN);
}

/// Injected: as for the pre-norm block → fails with `post-norm: mean … < MEAN`.
#[test]
fn post_norm_encoder_block() {
    let s: Vec<f64> = (0..SEEDS)
        .map(|seed| run_encoder(&encoder(seed, 32, 4, 64, NormPlacement::Post), 12))
        .collect();
    check_seeds("post-norm", &s, POST_MEAN);
}

#[test]
fn awkward_encoder_shapes() {
    // Width not a multiple of 4, one head, eight heads, width = 3 · head, one token.
    for (d, heads, mlp, n) in [
        (6, 1, 10, 5),
        (48, 8, 96, 9),
        (24, 3, 40, 7),
        (16, 2, 32, 1),
    ] {
        let sqnr = run_encoder(&encoder(d as u64, d, heads, mlp, NormPlacement::Pre), n);
        assert!(sqnr >= FLOOR_DB, "d {d} heads {heads} n {n}: {sqnr:.1} dB");
    }
}

struct Dec {
    params: DecoderBlockParams,
    /// The f64 output for the test input when it was in the calibration set (under Miri).
    held_out: Option<Vec<f64>>,
    out_q: QParams,
    in_q: QParams,
    enc_q: QParams,
}

fn calibrate_decoder(f: &DecoderBlockF, n: usize, m: usize) -> Dec {
    let d = f.width();
    let in_q = QParams::asymmetric(-4.5, 4.5);
    let enc_q = QParams::asymmetric(-4.5, 4.5);
    let mut calib = Calibration::default();
    let mut held_out = None;
    for (sx, se) in calibration_seeds(200, 777)
        .into_iter()
        .zip(calibration_seeds(300, 778))
    {
        let (_, x) = quantize_input(&input(sx, n, d), in_q);
        let (_, e) = quantize_input(&input(se, m, d), enc_q);
        let y = f.forward(&x, f.cross.as_ref().map(|_| e.as_slice()), "", &mut calib);
        if sx == 777 {
            held_out = Some(y);
        }
    }
    let enc = f.cross.as_ref().map(|_| enc_q);
    let (params, out_q) = DecoderBlockParams::quantize(f, &calib, "", in_q, enc).unwrap();
    params.as_block().validate().unwrap();
    Dec {
        params,
        held_out,
        out_q,
        in_q,
        enc_q,
    }
}

/// Runs the int8 decoder block on the whole sequence at once, and token by token through the
/// KV cache; returns (sqnr, all-at-once output, token-by-token output).
fn run_decoder(f: &DecoderBlockF, n: usize, m: usize) -> (f64, Vec<i8>, Vec<i8>) {
    let (n, m) = (tokens(n), tokens(m));
    let d = f.width();
    let dec = calibrate_decoder(f, n, m);
    let block = dec.params.as_block();
    let (xq, x) = quantize_input(&input(777, n, d), dec.in_q);
    let (eq, e) = quantize_input(&input(778, m, d), dec.enc_q);
    let expected = match dec.held_out {
        Some(y) => y,
        None => f.forward(&x, Some(&e), "", &mut NoObserver),
    };

    let cap = n.max(m);
    let (mut kb, mut vb) = (vec![0i8; cap * d], vec![0i8; cap * d]);
    let (mut ckb, mut cvb) = (vec![0i8; m * d], vec![0i8; m * d]);
    let mut normed = vec![0i8; cap * d];
    let mut wide = vec![0i8; cap * block.wide_per_token().max(2 * d)];
    let mut scores = vec![0i32; cap];

    let mut run = |tokens_per_step: usize| -> Vec<i8> {
        let mut cache = KvCache::new(&mut kb, &mut vb, d).unwrap();
        let mut cross = KvCache::new(&mut ckb, &mut cvb, d).unwrap();
        if let Some(c) = &block.cross {
            c.fill_cache(&eq, &mut wide, &mut cross).unwrap();
        }
        let mut x = xq.clone();
        for chunk in x.chunks_mut(tokens_per_step * d) {
            let mut scratch = BlockScratch {
                normed: &mut normed,
                wide: &mut wide,
                scores: &mut scores,
            };
            block
                .run(
                    chunk,
                    &mut cache,
                    block.cross.as_ref().map(|_| &cross),
                    &mut scratch,
                )
                .unwrap();
        }
        x
    };
    let all = run(n);
    let one = run(1);
    let sqnr = sqnr_db(
        &expected,
        &dequantize(&all, dec.out_q.scale, dec.out_q.zero_point),
    );
    (sqnr, all, one)
}

/// Injected: as for the pre-norm block → fails (seed floor or `decoder: mean … < MEAN`).
#[test]
fn decoder_block_matches_reference_and_kv_cache_is_exact() {
    let mut s = Vec::new();
    for seed in 0..SEEDS {
        let f = decoder(seed, 32, 4, false);
        let (sqnr, all, one) = run_decoder(&f, 12, 1);
        s.push(sqnr);
        assert_eq!(
            all, one,
            "token-by-token decoding differs from the full causal pass"
        );
    }
    check_seeds("decoder", &s, DEC_MEAN);
}

/// Injected: as for the pre-norm block → fails (seed floor or `cross: mean … < MEAN`).
#[test]
fn decoder_block_with_cross_attention() {
    let mut s = Vec::new();
    for seed in 0..SEEDS {
        let f = decoder(seed + 10, 32, 4, true);
        let (sqnr, all, one) = run_decoder(&f, 9, 17);
        s.push(sqnr);
        assert_eq!(all, one);
    }
    check_seeds("cross", &s, CROSS_MEAN);
}
