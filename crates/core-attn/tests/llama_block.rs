//! Llama block and model runner (issue #14, the int8 path): int8 against the f64 reference
//! (`reference::llama::LlamaF`, written from the definitions) on held-out sequences, KV-cache
//! decoding against a full causal pass, grouped-query attention, both RoPE conventions, tied and
//! untied classifiers, and bad dimensions refused with errors.

mod common;

use common::{dequantize, Rng};
use core_attn::attention::KvCache;
use core_attn::blob::{self, Blob, ModelKind};
use core_attn::block::BlockScratch;
use core_attn::llama::{
    calibrate_llama, llama_greedy, llama_step, LlamaDims, LlamaModel, LlamaParams,
};
use core_attn::model::host::OwnedBuffers;
use core_attn::model::{kv_caches, ModelBuffers};
use core_attn::reference::block::{LinearF, NoObserver, Observer};
use core_attn::reference::kernels::sqnr_db;
use core_attn::reference::llama::{LlamaBlockF, LlamaF, RmsNormF};
use core_attn::rope::RopeStyle;
use core_attn::{BlobError, Error};

/// Under Miri every f64 pass is interpreted: fewer seeds, calibration sequences and tokens.
const MIRI: bool = cfg!(miri);
const SEEDS: u64 = if MIRI { 1 } else { 8 };
const CALIBRATION: u64 = if MIRI { 2 } else { 48 };
const TOKENS: usize = if MIRI { 4 } else { 12 };
/// Model width, SwiGLU hidden width and vocabulary: under Miri a quarter of the work per
/// token (every kernel shape class still runs: head width 4, GQA 4→2), 1 layer where the
/// native tests use 2.
const WIDTH: usize = if MIRI { 16 } else { 32 };
const HIDDEN: usize = if MIRI { 24 } else { 48 };
const VOCAB: usize = if MIRI { 16 } else { 40 };
const LAYERS: usize = if MIRI { 1 } else { 2 };

fn lin(rng: &mut Rng, inp: usize, out: usize) -> LinearF {
    let s = 1.0 / (inp as f64).sqrt();
    LinearF {
        w: (0..inp * out).map(|_| (s * rng.normal()) as f32).collect(),
        b: vec![0.0; out],
        in_features: inp,
    }
}

fn rms(rng: &mut Rng, d: usize) -> RmsNormF {
    RmsNormF {
        gamma: (0..d).map(|_| (1.0 + 0.1 * rng.normal()) as f32).collect(),
        eps: 1e-5,
    }
}

/// A random Llama: width [`WIDTH`] in `heads` heads, `kv_heads` key/value heads, hidden
/// [`HIDDEN`], vocabulary [`VOCAB`], 16 positions.
#[allow(clippy::too_many_arguments)]
fn model(
    seed: u64,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    style: RopeStyle,
    tied: bool,
) -> LlamaF {
    let (d, hidden, vocab) = (WIDTH, HIDDEN, VOCAB);
    let dh = d / heads;
    let mut r = Rng::new(seed);
    let blocks = (0..layers)
        .map(|_| LlamaBlockF {
            rms1: rms(&mut r, d),
            qkv: lin(&mut r, d, d + 2 * kv_heads * dh),
            wo: lin(&mut r, d, d),
            rms2: rms(&mut r, d),
            w1: lin(&mut r, d, hidden),
            w3: lin(&mut r, d, hidden),
            w2: lin(&mut r, hidden, d),
        })
        .collect();
    LlamaF {
        width: d,
        heads,
        kv_heads,
        theta: 10000.0,
        style,
        max_positions: 16,
        embedding: (0..vocab * d).map(|_| r.normal() as f32).collect(),
        blocks,
        final_norm: rms(&mut r, d),
        head: (!tied).then(|| {
            (0..vocab * d)
                .map(|_| (r.normal() / (d as f64).sqrt()) as f32)
                .collect()
        }),
        bos: Some(1),
        eos: None,
    }
}

fn ids(seed: u64, n: usize, vocab: usize) -> Vec<u32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.below(vocab) as u32).collect()
}

/// Calibration sequences: seeds `1000..`, never the held-out ones (`5000..`).
fn quantized(f: &LlamaF) -> LlamaParams {
    let inputs: Vec<Vec<u32>> = (1000..1000 + CALIBRATION)
        .map(|s| ids(s, TOKENS, f.vocab()))
        .collect();
    let calib = calibrate_llama(f, &inputs).unwrap();
    LlamaParams::quantize(f, &calib).unwrap()
}

/// Teacher-forced int8 logits of `seq` (one token per step through the KV caches).
fn int8_logits(p: &LlamaParams, seq: &[u32]) -> Vec<f64> {
    let mut owned = OwnedBuffers::new(&p.dims.buffers().unwrap());
    let d = p.dims;
    let mut caches: Vec<KvCache> =
        kv_caches(&mut owned.kv, d.layers, d.max_positions, d.kv_width())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let mut buffers = ModelBuffers {
        x: &mut owned.x,
        normed: &mut owned.normed,
        wide: &mut owned.wide,
        scores: &mut owned.scores,
        patch: &mut owned.patch,
        logits: &mut owned.logits,
    };
    let mut out = Vec::new();
    for &t in seq {
        let l = llama_step(p, t, &mut caches, &mut buffers, &mut |_, _| {}).unwrap();
        out.extend(dequantize(l, p.logits.scale, p.logits.zero_point));
    }
    out
}

/// Logits SQNR (dB) over held-out sequences.
fn held_out_sqnr(f: &LlamaF, p: &LlamaParams) -> f64 {
    let (mut reference, mut test) = (Vec::new(), Vec::new());
    for s in 5000..5000 + if MIRI { 1 } else { 4 } {
        let seq = ids(s, TOKENS, f.vocab());
        reference.extend(f.forward(&seq, &mut NoObserver).unwrap());
        test.extend(int8_logits(p, &seq));
    }
    sqnr_db(&reference, &test)
}

/// Per-seed floor of the logits SQNR on held-out sequences (dB). Measured (8 seeds, 2 layers,
/// the four configurations of `logits_sqnr_per_configuration`): worst seed 25.5 dB, means
/// 27.1–28.4 dB. The floor sits 2 dB under the worst seed.
///
/// Under Miri (one seed, the first configuration, width 16, 1 layer, 2 calibration sequences
/// of 4 tokens: the held-out one is clipped) measured 23.9 dB (run natively with the Miri
/// settings); the floor there is 12 dB, still far above the injected bugs below (2.9 dB).
const LOGITS_FLOOR_DB: f64 = if MIRI { 12.0 } else { 23.5 };
/// Mean floor over the seeds, 1.1 dB below the lowest measured mean (27.1 dB).
const LOGITS_MEAN_DB: f64 = 26.0;

fn check(what: &str, sqnrs: &[f64]) {
    for (seed, &db) in sqnrs.iter().enumerate() {
        assert!(
            db >= LOGITS_FLOOR_DB,
            "{what} seed {seed}: {db:.2} dB < {LOGITS_FLOOR_DB}"
        );
    }
    let mean = sqnrs.iter().sum::<f64>() / sqnrs.len() as f64;
    let worst = sqnrs.iter().cloned().fold(f64::INFINITY, f64::min);
    eprintln!(
        "{what}: mean {mean:.2} dB, worst {worst:.2} over {} seeds",
        sqnrs.len()
    );
    if !MIRI {
        assert!(mean >= LOGITS_MEAN_DB, "{what}: mean {mean:.2} dB");
    }
}

/// Whole 2-layer models, int8 logits against the f64 reference on held-out sequences, for
/// grouped-query (4 query heads on 2 and on 1 key/value head) and plain multi-head attention,
/// both RoPE conventions, tied and untied classifiers.
///
/// Injected, each fails this test: query head `h` reading key/value head `h % kv_heads`
/// instead of `h / (heads / kv_heads)` (seed 0 of GQA 4→2: 2.9 dB); RoPE at position 0 for every
/// token (queries and keys unrotated); interleaved pairs used for a half-split model.
#[test]
fn logits_sqnr_per_configuration() {
    for (heads, kv, style, tied) in [
        (4, 2, RopeStyle::Interleaved, true),
        (4, 1, RopeStyle::HalfSplit, false),
        (4, 4, RopeStyle::Interleaved, false),
        (8, 2, RopeStyle::HalfSplit, true),
    ]
    .into_iter()
    .take(if MIRI { 1 } else { 4 })
    {
        let s: Vec<f64> = (0..SEEDS)
            .map(|seed| {
                let f = model(seed, LAYERS, heads, kv, style, tied);
                held_out_sqnr(&f, &quantized(&f))
            })
            .collect();
        check(&format!("heads {heads} kv {kv} {style:?} tied {tied}"), &s);
    }
}

/// Captures one observation point of the reference.
struct Capture(&'static str, Vec<f64>);

impl Observer for Capture {
    fn observe(&mut self, point: &str, values: &[f64]) {
        if point == self.0 {
            self.1 = values.to_vec();
        }
    }
}

/// One block on a whole held-out sequence at once and token by token: the same bytes (the
/// KV cache and per-token RoPE positions are exact), and within the block SQNR floor of the
/// f64 block output. Injected: `first_position + t` replaced by `first_position` in the
/// block's RoPE → the all-at-once pass differs from the token-by-token one.
#[test]
fn block_all_at_once_equals_token_by_token() {
    for seed in 0..SEEDS {
        let f = model(seed, 1, 4, 2, RopeStyle::Interleaved, false);
        let p = quantized(&f);
        let block = p.blocks[0].as_block(&p.rope, p.style);
        block.validate().unwrap();
        let seq = ids(5000 + seed, TOKENS, f.vocab());
        let d = f.width;
        let x0: Vec<i8> = seq
            .iter()
            .flat_map(|&t| p.embedding[t as usize * d..][..d].to_vec())
            .collect();
        let kvw = block.kv_width();
        let n = seq.len();
        let (mut kb, mut vb) = (vec![0i8; n * kvw], vec![0i8; n * kvw]);
        let mut normed = vec![0i8; n * d];
        let mut wide = vec![0i8; n * block.wide_per_token()];
        let mut scores = vec![0i32; n];
        let mut run = |per_step: usize| -> Vec<i8> {
            let mut cache = KvCache::new(&mut kb, &mut vb, kvw).unwrap();
            let mut x = x0.clone();
            for chunk in x.chunks_mut(per_step * d) {
                let mut scratch = BlockScratch {
                    normed: &mut normed,
                    wide: &mut wide,
                    scores: &mut scores,
                };
                block.run(chunk, &mut cache, &mut scratch).unwrap();
            }
            x
        };
        let all = run(n);
        let one = run(1);
        assert_eq!(
            all, one,
            "seed {seed}: token-by-token differs from all at once"
        );
        let mut cap = Capture("l0.add2", Vec::new());
        f.forward(&seq, &mut cap).unwrap();
        let calib_inputs: Vec<Vec<u32>> = (1000..1000 + CALIBRATION)
            .map(|s| ids(s, TOKENS, f.vocab()))
            .collect();
        let calib = calibrate_llama(&f, &calib_inputs).unwrap();
        let q = calib.asymmetric("l0.add2").unwrap();
        let db = sqnr_db(&cap.1, &dequantize(&all, q.scale, q.zero_point));
        eprintln!("block seed {seed}: {db:.2} dB");
        // Measured 31.1–32.1 dB over the 8 seeds; with the Miri settings (width 16, 2
        // calibration sequences of 4 tokens) 19.3 dB.
        let floor = if MIRI { 16.0 } else { 29.0 };
        assert!(
            db >= floor,
            "seed {seed}: block output {db:.2} dB < {floor}"
        );
    }
}

/// Greedy decoding through `llama_greedy` reproduces the teacher-forced logits of its own
/// output (the runner feeds exactly the ids it reports, at the positions it reports).
#[test]
fn greedy_matches_teacher_forcing() {
    let f = model(3, LAYERS, 4, 2, RopeStyle::HalfSplit, true);
    let p = quantized(&f);
    let mut owned = OwnedBuffers::new(&p.dims.buffers().unwrap());
    let d = p.dims;
    let mut caches: Vec<KvCache> =
        kv_caches(&mut owned.kv, d.layers, d.max_positions, d.kv_width())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let mut buffers = ModelBuffers {
        x: &mut owned.x,
        normed: &mut owned.normed,
        wide: &mut owned.wide,
        scores: &mut owned.scores,
        patch: &mut owned.patch,
        logits: &mut owned.logits,
    };
    let prompt = [1u32, 7, 9];
    let mut out = [0u32; 10];
    let mut seen = Vec::new();
    let n = llama_greedy(
        &p,
        &prompt,
        7,
        &mut out,
        &mut caches,
        &mut buffers,
        &mut |pos, l| seen.push((pos, dequantize(l, p.logits.scale, p.logits.zero_point))),
    )
    .unwrap();
    assert_eq!(n, 10);
    assert_eq!(&out[..3], &prompt);
    let tf = int8_logits(&p, &out[..9]);
    for (pos, l) in &seen {
        assert_eq!(
            &tf[pos * f.vocab()..][..f.vocab()],
            &l[..],
            "position {pos}"
        );
        let best = l
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > l[b] { i } else { b });
        if *pos >= prompt.len() - 1 {
            assert_eq!(out[pos + 1] as usize, best, "position {pos}");
        }
    }
    // The caches hold exactly the fed tokens (the last generated id is never fed).
    assert_eq!(caches[0].len(), 9);
}

/// Bad dimensions are errors naming what is wrong, never panics.
#[test]
fn bad_dimensions_are_errors() {
    let mut d = LlamaDims {
        layers: 1,
        width: 32,
        heads: 4,
        kv_heads: 3,
        hidden: 48,
        vocab: 40,
        max_positions: 16,
    };
    assert_eq!(
        d.validate(),
        Err(Error::BadDimension {
            what: "llama kv heads (must divide the query heads)",
            value: 3
        })
    );
    d.kv_heads = 0;
    assert!(matches!(
        d.validate(),
        Err(Error::BadDimension {
            what: "llama kv heads",
            value: 0
        })
    ));
    d.kv_heads = 2;
    d.heads = 5;
    assert!(matches!(
        d.validate(),
        Err(Error::BadDimension {
            what: "llama heads (must divide the width)",
            ..
        })
    ));
    // The f64 reference refuses the same model, and a mis-shaped tensor.
    let mut f = model(0, 1, 4, 2, RopeStyle::Interleaved, true);
    f.kv_heads = 3;
    assert!(matches!(
        f.forward(&[1, 2], &mut NoObserver),
        Err(Error::BadDimension {
            what: "llama kv heads (must divide the query heads)",
            ..
        })
    ));
    f.kv_heads = 2;
    f.blocks[0].w3.w.pop();
    assert!(matches!(
        f.forward(&[1, 2], &mut NoObserver),
        Err(Error::ShapeMismatch {
            what: "llama w3 weights",
            ..
        })
    ));
    // A block whose kv heads do not divide its heads does not validate.
    let f = model(0, 1, 4, 2, RopeStyle::Interleaved, true);
    let p = quantized(&f);
    let mut b = p.blocks[0].as_block(&p.rope, p.style);
    b.kv_heads = 3;
    assert!(matches!(
        b.validate(),
        Err(Error::BadDimension {
            what: "llama kv heads (must divide the query heads)",
            ..
        })
    ));
}

/// `bytes` copied into 4-byte-aligned storage.
fn aligned(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut a = [0u8; 4];
            a[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(a)
        })
        .collect()
}

/// `bytes` with `value` written at `at` and the checksum repaired (aligned).
fn patched(bytes: &[u8], at: usize, value: &[u8]) -> Vec<u32> {
    let mut b = bytes.to_vec();
    b[at..at + value.len()].copy_from_slice(value);
    let sum = blob::fnv1a32(&b[12..]);
    b[8..12].copy_from_slice(&sum.to_le_bytes());
    aligned(&b)
}

fn as_bytes(words: &[u32], len: usize) -> &[u8] {
    &bytemuck::cast_slice::<u32, u8>(words)[..len]
}

/// Greedy ids and every logits row of `model` (the blob or the owned parameters).
fn greedy_run(model: &dyn LlamaModel, dims: LlamaDims, prompt: &[u32]) -> (Vec<u32>, Vec<i8>) {
    let mut owned = OwnedBuffers::new(&dims.buffers().unwrap());
    let mut caches: Vec<KvCache> = kv_caches(
        &mut owned.kv,
        dims.layers,
        dims.max_positions,
        dims.kv_width(),
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    let mut buffers = ModelBuffers {
        x: &mut owned.x,
        normed: &mut owned.normed,
        wide: &mut owned.wide,
        scores: &mut owned.scores,
        patch: &mut owned.patch,
        logits: &mut owned.logits,
    };
    let mut out = vec![0u32; dims.max_positions];
    let mut logits = Vec::new();
    let n = llama_greedy(
        model,
        prompt,
        dims.max_positions - prompt.len(),
        &mut out,
        &mut caches,
        &mut buffers,
        &mut |_, l| logits.extend_from_slice(l),
    )
    .unwrap();
    out.truncate(n);
    (out, logits)
}

/// A Llama blob parses back into the same model: the same ids and logits bytes through the
/// blob as through the owned parameters it was written from (tied and untied, GQA), its
/// header's dimensions and buffer sizes, its vocabulary; the same parameters give the same
/// bytes; a tied classifier is stored once (the untied blob is larger by at least the
/// classifier's `vocab · width` bytes). Injected: the writer storing the keys' RoPE
/// requantization in the queries' slot → the blob's logits differ.
#[test]
fn llama_blob_round_trip() {
    let vocab_text: Vec<String> = (0..VOCAB).map(|i| format!("<{i}>")).collect();
    let vocab: Vec<Option<&str>> = vocab_text.iter().map(|s| Some(s.as_str())).collect();
    let mut sizes = Vec::new();
    for tied in [true, false] {
        let f = model(11, LAYERS, 4, 2, RopeStyle::HalfSplit, tied);
        let p = quantized(&f);
        let bytes = blob::write_llama(&p, Some(&vocab)).unwrap();
        assert_eq!(bytes, blob::write_llama(&p, Some(&vocab)).unwrap());
        sizes.push(bytes.len());
        let words = aligned(&bytes);
        let b = Blob::parse(as_bytes(&words, bytes.len())).unwrap();
        assert_eq!(b.kind(), ModelKind::Llama);
        let h = b.header();
        assert_eq!(h.decoder.llama(), p.dims);
        assert_eq!(h.decoder.tied_head, tied);
        assert_eq!(h.decoder.start_token, 1);
        assert_eq!(b.buffers(), p.dims.buffers().unwrap());
        assert_eq!(
            b.buffers().kv,
            2 * LAYERS * 16 * (WIDTH / 2),
            "caches sized by the kv heads"
        );
        let v = b.vocab().unwrap();
        assert_eq!(v.text(7), Some("<7>"));
        let prompt = [1u32, 5, 9, 2];
        assert_eq!(
            greedy_run(&b, p.dims, &prompt),
            greedy_run(&p, p.dims, &prompt),
            "tied {tied}"
        );
    }
    assert!(sizes[1] >= sizes[0] + VOCAB * WIDTH, "{sizes:?}");
}

/// Corrupt Llama headers and sections are refused with a typed error naming the check.
#[test]
fn corrupt_llama_blobs_are_refused() {
    let f = model(12, 1, 4, 2, RopeStyle::Interleaved, true);
    let bytes = blob::write_llama(&quantized(&f), None).unwrap();
    let err = |words: Vec<u32>| Blob::parse(as_bytes(&words, bytes.len())).unwrap_err();
    let word = |i: usize| 16 + 4 * i;
    assert_eq!(
        err(patched(&bytes, word(33), &3u32.to_le_bytes())),
        Error::BadBlob(BlobError::Invalid(
            "llama kv heads (must divide the query heads)"
        ))
    );
    assert_eq!(
        err(patched(&bytes, word(33), &0u32.to_le_bytes())),
        Error::BadBlob(BlobError::Invalid("llama kv heads"))
    );
    assert_eq!(
        err(patched(&bytes, word(12), &3u32.to_le_bytes())),
        Error::BadBlob(BlobError::Invalid("llama heads (must divide the width)"))
    );
    assert_eq!(
        err(patched(&bytes, word(34), &1u32.to_le_bytes())),
        Error::BadBlob(BlobError::Invalid("reserved header words not zero"))
    );
    // Section 1 is the RoPE shape (head_dim, positions, style).
    let table = 16 + 4 * blob::HEADER_WORDS + 4;
    let entry = table + 12;
    let offset = u32::from_le_bytes(bytes[entry + 4..entry + 8].try_into().unwrap()) as usize;
    assert_eq!(
        err(patched(&bytes, offset + 8, &7i32.to_le_bytes())),
        Error::BadBlob(BlobError::Invalid("unknown rope pairing convention"))
    );
    assert_eq!(
        err(patched(&bytes, offset, &2i32.to_le_bytes())),
        Error::BadBlob(BlobError::Mismatch {
            what: "rope table head width",
            expected: WIDTH / 4,
            found: 2
        })
    );
}

/// The device runtime (`device::Llama`, what `include_model!(M: Llama = …)` gives): the header
/// read by `ModelInfo::of` sizes the memory exactly as `Blob::parse` does, greedy generation
/// hands over the runner's ids, and the blob's stop rule holds: an eos equal to the BOS stops
/// before it (llama2.c's `run.c`), another eos after it (Hugging Face). Injected: `generate`
/// ignoring the stop-before rule → the llama2.c case hands over one id more.
#[test]
fn device_llama_generates_the_runner_ids() {
    use core_attn::device::{Llama, Lm, Memory, ModelInfo, Sampler};
    let f = model(21, 2, 4, 2, RopeStyle::Interleaved, false);
    let p = quantized(&f);
    let prompt = [1u32, 4, 6];
    let run = |p: &LlamaParams| -> (Vec<u32>, usize) {
        let bytes = blob::write_llama(p, None).unwrap();
        let words = aligned(&bytes);
        let b = as_bytes(&words, bytes.len());
        let info = ModelInfo::of(b);
        assert_eq!(info.kind, ModelKind::Llama as u16);
        assert_eq!(info.layers, 2);
        assert_eq!(info.buffers, Blob::parse(b).unwrap().buffers());
        let mut memory = Box::new(Memory::<4096, 64>::new());
        assert!(
            Lm::<2>::new(b, &info, &mut memory).is_err(),
            "not a GPT-2 LM"
        );
        let mut memory = Box::new(Memory::<4096, 64>::new());
        let mut m = Llama::<2>::new(b, &info, &mut memory).unwrap();
        let mut ids = Vec::new();
        let n = m
            .generate(&prompt, 10, &mut Sampler::Greedy, |t| ids.push(t))
            .unwrap();
        (ids, n)
    };
    // No eos: 10 ids, those of llama_greedy.
    let (ids, n) = run(&p);
    assert_eq!(n, 10);
    let (want, _) = greedy_run(&p, p.dims, &prompt);
    assert_eq!(ids, want[prompt.len()..prompt.len() + 10]);
    // The first id from the fourth on that was not generated before becomes the eos (an
    // untied model: a tied random one repeats its last prompt id).
    let k = (3..9).find(|&k| !ids[..k].contains(&ids[k])).unwrap();
    let mut before = p.clone();
    (before.bos, before.eos) = (ids[k], ids[k]);
    assert_eq!(
        run(&before).0,
        ids[..k],
        "stop before an eos equal to the BOS"
    );
    let mut after = p.clone();
    after.eos = ids[k];
    assert_eq!(run(&after).0, ids[..=k], "stop after any other eos");
}

/// An RMSNorm epsilon that needs both of its 32-bit words (Q24.40: at least 2^-8) survives the
/// blob: the final and the per-block RMSNorms read back from a written Llama blob carry the
/// written epsilons bit for bit (the committed models' epsilons fit the low word, so a lost
/// high word shows nowhere else).
///
/// Guards against the writer's high word `epsilon >> 32` → `epsilon << 32` (mutant
/// `blob/writer.rs:123:28` in `Writer::rms_norm`: the high word written as 0).
#[test]
fn llama_blob_keeps_a_two_word_rms_epsilon() {
    let mut p = quantized(&model(13, 1, 4, 2, RopeStyle::Interleaved, true));
    let eps = [(3u64 << 32) | 5, (1u64 << 40) | 0xffff_ffff, 1 << 32];
    p.final_norm.epsilon = eps[0];
    p.blocks[0].rms1.epsilon = eps[1];
    p.blocks[0].rms2.epsilon = eps[2];
    let bytes = blob::write_llama(&p, None).unwrap();
    let words = aligned(&bytes);
    let b = Blob::parse(as_bytes(&words, bytes.len())).unwrap();
    let block = LlamaModel::llama_block(&b, 0).unwrap();
    assert_eq!(
        [
            LlamaModel::llama_final_norm(&b).unwrap().epsilon,
            block.rms1.epsilon,
            block.rms2.epsilon
        ],
        eps
    );
}
