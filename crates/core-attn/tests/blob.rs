//! Model blob: write → parse → run round trips for the three model kinds against the f64
//! reference, determinism, and rejection (never a panic) of truncated, corrupted, misaligned,
//! wrong-magic and future-version blobs.

mod common;

use common::Rng;
use core_attn::blob::{self, Blob, ModelKind};
use core_attn::block::NormPlacement;
use core_attn::model::{self, host::OwnedBuffers};
use core_attn::quantize_model::{calibrate, quantize_model, run_reference, CalibrationInput};
use core_attn::reference::block::{
    CrossAttentionF, DecoderBlockF, EncoderBlockF, Gelu, LayerNormF, LinearF, NoObserver,
};
use core_attn::reference::model::{DecoderF, ModelF, VitF};
use core_attn::requant::QParams;
use core_attn::Error;

const D: usize = 16;
const HEADS: usize = 2;

/// Byte positions tested: every one natively, every 97th under Miri (hours otherwise).
const MIRI_STRIDE: usize = if cfg!(miri) { 97 } else { 1 };

/// Under Miri every f64 reference pass is interpreted (one 24-token calibration pass of the
/// decoder LM takes about 40 s, a whole `build` about 5 minutes), so the models are calibrated
/// on 2 inputs of at most 6 tokens instead of 8 inputs of up to 24, each kind is built once and
/// shared by the tests (`build` ignores the seed), and the runs are shorter. The int8 side
/// (write, parse, every runner, every rejection) still runs for every model kind.
const MIRI: bool = cfg!(miri);
const CALIBRATION_INPUTS: usize = if MIRI { 2 } else { 8 };

/// Calibration sequence length: `n` natively, at most 6 tokens under Miri.
const fn calibration_tokens(n: usize) -> usize {
    if MIRI && n > 6 {
        6
    } else {
        n
    }
}

fn lin(r: &mut Rng, inp: usize, out: usize) -> LinearF {
    let s = 1.0 / (inp as f64).sqrt();
    LinearF {
        w: (0..inp * out).map(|_| (s * r.normal()) as f32).collect(),
        b: (0..out).map(|_| (0.1 * r.normal()) as f32).collect(),
        in_features: inp,
    }
}

fn ln(r: &mut Rng, eps: f64) -> LayerNormF {
    LayerNormF {
        gamma: (0..D).map(|_| (1.0 + 0.1 * r.normal()) as f32).collect(),
        beta: (0..D).map(|_| (0.1 * r.normal()) as f32).collect(),
        eps,
    }
}

fn vec_f32(r: &mut Rng, n: usize, s: f64) -> Vec<f32> {
    (0..n).map(|_| (s * r.normal()) as f32).collect()
}

fn vit(r: &mut Rng, classes: Option<usize>) -> VitF {
    let (c, hw, p) = (1, 8, 4);
    let t = (hw / p) * (hw / p) + 1;
    VitF {
        channels: c,
        height: hw,
        width: hw,
        patch: p,
        projection: lin(r, c * p * p, D),
        class_token: vec_f32(r, D, 0.5),
        positions: vec_f32(r, t * D, 0.5),
        blocks: (0..2)
            .map(|_| EncoderBlockF {
                placement: NormPlacement::Pre,
                heads: HEADS,
                ln1: ln(r, 1e-12),
                qkv: lin(r, D, 3 * D),
                proj: lin(r, D, D),
                ln2: ln(r, 1e-12),
                fc1: lin(r, D, 2 * D),
                act: Gelu::Erf,
                fc2: lin(r, 2 * D, D),
            })
            .collect(),
        final_norm: ln(r, 1e-12),
        classifier: classes.map(|k| lin(r, D, k)),
    }
}

fn decoder(r: &mut Rng, vocab: usize, positions: usize, cross: bool) -> DecoderF {
    DecoderF {
        width: D,
        embedding: vec_f32(r, vocab * D, 0.25),
        positions: vec_f32(r, positions * D, 0.25),
        sinusoidal: false,
        blocks: (0..2)
            .map(|_| DecoderBlockF {
                heads: HEADS,
                ln1: ln(r, 1e-5),
                qkv: lin(r, D, 3 * D),
                proj: lin(r, D, D),
                cross: cross.then(|| CrossAttentionF {
                    ln: ln(r, 1e-5),
                    q: lin(r, D, D),
                    kv: lin(r, D, 2 * D),
                    proj: lin(r, D, D),
                }),
                ln2: ln(r, 1e-5),
                fc1: lin(r, D, 4 * D),
                act: Gelu::Tanh,
                fc2: lin(r, 4 * D, D),
            })
            .collect(),
        final_norm: ln(r, 1e-5),
        head: None,
        start_token: cross.then_some(0),
        eos_token: cross.then_some(2),
        pad_token: cross.then_some(1),
    }
}

fn image(r: &mut Rng) -> Vec<f64> {
    (0..64).map(|_| 2.0 * r.uniform() - 1.0).collect()
}

fn ids(r: &mut Rng, vocab: usize, n: usize) -> Vec<u32> {
    (0..n).map(|_| r.below(vocab) as u32).collect()
}

type Built = (ModelF, Vec<CalibrationInput>, Vec<u8>);

/// A model, its calibration inputs, and the packed blob. Under Miri: one shared build per kind
/// (the seed of that kind's round-trip test), see [`MIRI`].
fn build(kind: ModelKind, seed: u64) -> Built {
    if !MIRI {
        return build_fresh(kind, seed);
    }
    static CACHE: [std::sync::OnceLock<Built>; 3] = [const { std::sync::OnceLock::new() }; 3];
    let (slot, seed) = match kind {
        ModelKind::VitClassifier => (0, 1),
        ModelKind::DecoderLm => (1, 2),
        ModelKind::EncoderDecoder => (2, 3),
        other => panic!("no {other:?} model in this suite (see tests/llama_block.rs)"),
    };
    CACHE[slot].get_or_init(|| build_fresh(kind, seed)).clone()
}

fn build_fresh(kind: ModelKind, seed: u64) -> Built {
    let mut r = Rng::new(seed);
    let (model, inputs) = match kind {
        ModelKind::VitClassifier => (
            ModelF {
                encoder: Some(vit(&mut r, Some(10))),
                decoder: None,
            },
            (0..CALIBRATION_INPUTS)
                .map(|_| CalibrationInput::Image(image(&mut r)))
                .collect::<Vec<_>>(),
        ),
        ModelKind::DecoderLm => (
            ModelF {
                encoder: None,
                decoder: Some(decoder(&mut r, 32, 24, false)),
            },
            (0..CALIBRATION_INPUTS)
                .map(|_| CalibrationInput::Tokens(ids(&mut r, 32, calibration_tokens(24))))
                .collect(),
        ),
        ModelKind::EncoderDecoder => (
            ModelF {
                encoder: Some(vit(&mut r, None)),
                decoder: Some(decoder(&mut r, 16, 12, true)),
            },
            (0..CALIBRATION_INPUTS)
                .map(|_| {
                    CalibrationInput::ImageTokens(
                        image(&mut r),
                        ids(&mut r, 16, calibration_tokens(12)),
                    )
                })
                .collect(),
        ),
        other => panic!("no {other:?} model in this suite (see tests/llama_block.rs)"),
    };
    let calib = calibrate(&model, &inputs).unwrap();
    let params = quantize_model(&model, &calib).unwrap();
    let bytes = blob::write(&params).unwrap();
    (model, inputs, bytes)
}

/// Copy into 4-byte aligned storage.
fn aligned(bytes: &[u8]) -> Vec<u32> {
    let mut w = vec![0u32; bytes.len().div_ceil(4) + 1];
    bytemuck::cast_slice_mut::<u32, u8>(&mut w)[..bytes.len()].copy_from_slice(bytes);
    w
}

fn view(w: &[u32], len: usize) -> &[u8] {
    &bytemuck::cast_slice::<u32, u8>(w)[..len]
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn dequant(q: &[i8], blob: &Blob<'_>) -> Vec<f64> {
    let h = blob.header();
    q.iter()
        .map(|&v| h.logits_scale() as f64 * (v as i32 - h.logits_zero_point) as f64)
        .collect()
}

fn quant_image(img: &[f64], blob: &Blob<'_>) -> Vec<i8> {
    let h = blob.header();
    let q = QParams {
        scale: h.input_scale() as f64,
        zero_point: h.input_zero_point,
    };
    img.iter().map(|&v| q.quantize(v)).collect()
}

#[test]
fn vit_classifier_round_trip_matches_reference() {
    let (model, inputs, bytes) = build(ModelKind::VitClassifier, 1);
    let w = aligned(&bytes);
    let blob = Blob::parse(view(&w, bytes.len())).unwrap();
    assert_eq!(blob.kind(), ModelKind::VitClassifier);
    assert_eq!(blob.header().encoder.tokens(), 5);
    let mut owned = OwnedBuffers::new(&blob.buffers());
    for input in &inputs {
        let CalibrationInput::Image(img) = input else {
            unreachable!()
        };
        let want = run_reference(&model, input, &mut NoObserver).unwrap();
        let (mut bufs, _, _) = owned.split(&blob).unwrap();
        let mut layers = 0;
        let q = model::vit_classify(&blob, &quant_image(img, &blob), &mut bufs, &mut |l, _| {
            if l != model::FINAL_NORM {
                layers += 1
            }
        })
        .unwrap();
        assert_eq!(layers, 2);
        let got = dequant(q, &blob);
        let c = cosine(&want, &got);
        assert!(c > 0.98, "cosine {c}");
    }
}

#[test]
fn decoder_greedy_with_kv_cache_matches_teacher_forced_reference() {
    let (model, inputs, bytes) = build(ModelKind::DecoderLm, 2);
    let w = aligned(&bytes);
    let blob = Blob::parse(view(&w, bytes.len())).unwrap();
    assert!(blob.header().decoder.tied_head);
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let CalibrationInput::Tokens(prompt) = &inputs[0] else {
        unreachable!()
    };
    // Under Miri a 2-token prompt and 6 tokens in all (the reference pass is interpreted).
    let (prompt_len, total) = if MIRI { (2, 6) } else { (6, 16) };
    let prompt = &prompt[..prompt_len];
    let (mut bufs, mut caches, _) = owned.split(&blob).unwrap();
    let mut out = vec![0u32; total];
    let mut step_logits = Vec::new();
    let n = model::greedy(
        &blob,
        prompt,
        total - prompt_len,
        &mut out,
        &mut caches,
        None,
        &mut bufs,
        &mut |p, l| step_logits.push((p, dequant(l, &blob))),
    )
    .unwrap();
    assert_eq!(n, total);
    assert_eq!(&out[..prompt_len], prompt);
    // Every step's int8 logits against a full teacher-forced f64 pass over the same sequence.
    let want = model
        .decoder
        .as_ref()
        .unwrap()
        .forward(&out[..total - 1], None, &mut NoObserver);
    assert_eq!(step_logits.len(), total - 1);
    for (p, got) in &step_logits {
        let c = cosine(&want[p * 32..(p + 1) * 32], got);
        assert!(c > 0.98, "position {p}: cosine {c}");
    }
}

#[test]
fn encoder_decoder_cross_caches_match_reference() {
    let (model, inputs, bytes) = build(ModelKind::EncoderDecoder, 3);
    let w = aligned(&bytes);
    let blob = Blob::parse(view(&w, bytes.len())).unwrap();
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let CalibrationInput::ImageTokens(img, _) = &inputs[0] else {
        unreachable!()
    };
    let (mut bufs, mut caches, mut cross) = owned.split(&blob).unwrap();
    model::encode_for_decoder(
        &blob,
        &quant_image(img, &blob),
        &mut cross,
        &mut bufs,
        &mut |_, _| {},
    )
    .unwrap();
    // Up to 8 generated tokens (4 under Miri).
    let steps = if MIRI { 4 } else { 8 };
    let mut out = vec![0u32; steps + 1];
    let mut step_logits = Vec::new();
    let n = model::greedy(
        &blob,
        &[0],
        steps,
        &mut out,
        &mut caches,
        Some(&cross),
        &mut bufs,
        &mut |p, l| step_logits.push((p, dequant(l, &blob))),
    )
    .unwrap();
    assert!((2..=steps + 1).contains(&n));
    let m = model.encoder.as_ref().unwrap().encode(img, &mut NoObserver);
    let want = model.decoder.as_ref().unwrap().forward(
        &out[..step_logits.len()],
        Some(&m),
        &mut NoObserver,
    );
    for (p, got) in &step_logits {
        let c = cosine(&want[p * 16..(p + 1) * 16], got);
        assert!(c > 0.95, "position {p}: cosine {c}");
    }
}

/// Dequantized int8 logits of each model kind against the f64 reference in absolute terms
/// (SQNR), on inputs calibration never saw (issue #17 item 1: the round-trip tests above use
/// cosine on the calibration inputs themselves, blind to a wrong output scale).
///
/// Bounds: measured 21.6 (ViT), 24.2 (decoder LM), 26.7 (encoder–decoder) dB over 12
/// held-out inputs each (2 under Miri); the bounds sit 4.6–5.7 dB below. A wrong logits scale
/// `e` alone caps SQNR at `−20·log10|e − 1|`: 6 dB at 1.5×, 20 dB at 1.1×.
///
/// Injected: the blob header's logits scale × 1.5 (`blob::write`, `logits_scale_bits`) →
/// fails with `vit: logits SQNR 6.07 dB < 17`.
#[test]
fn dequantized_logits_sqnr_on_held_out_inputs() {
    use core_attn::reference::kernels::sqnr_db;
    let held_out = if MIRI { 2 } else { 12 };
    // Under Miri the models are calibrated on fewer inputs and judged on 2: measured 22.6 (ViT)
    // and 18.1 (decoder LM) dB there, so the bounds drop by 5 dB — still far above the 6 dB
    // that a 1.5× logits scale allows.
    let relax = if MIRI { 5.0 } else { 0.0 };
    let check = |what: &str, want: &[f64], got: &[f64], min_db: f64| {
        let min_db = min_db - relax;
        assert_eq!(want.len(), got.len(), "{what}");
        let db = sqnr_db(want, got);
        eprintln!("{what}: logits SQNR {db:.2} dB (held-out inputs)");
        assert!(db >= min_db, "{what}: logits SQNR {db:.2} dB < {min_db}");
    };

    // ViT classifier: fresh images.
    let (model, _, bytes) = build(ModelKind::VitClassifier, 1);
    let w = aligned(&bytes);
    let blob = Blob::parse(view(&w, bytes.len())).unwrap();
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let mut r = Rng::new(0x17_0001);
    let (mut want, mut got) = (Vec::new(), Vec::new());
    for _ in 0..held_out {
        let img = image(&mut r);
        want.extend(
            run_reference(
                &model,
                &CalibrationInput::Image(img.clone()),
                &mut NoObserver,
            )
            .unwrap(),
        );
        let (mut bufs, _, _) = owned.split(&blob).unwrap();
        let q = model::vit_classify(&blob, &quant_image(&img, &blob), &mut bufs, &mut |_, _| {})
            .unwrap();
        got.extend(dequant(q, &blob));
    }
    check("vit", &want, &got, 17.0);

    // Decoder LM: fresh prompts; every position's logits (greedy feeds the whole prompt).
    let (model, _, bytes) = build(ModelKind::DecoderLm, 2);
    let w = aligned(&bytes);
    let blob = Blob::parse(view(&w, bytes.len())).unwrap();
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let len = calibration_tokens(16);
    let (mut want, mut got) = (Vec::new(), Vec::new());
    for _ in 0..held_out {
        let prompt = ids(&mut r, 32, len);
        want.extend(
            model
                .decoder
                .as_ref()
                .unwrap()
                .forward(&prompt, None, &mut NoObserver),
        );
        let (mut bufs, mut caches, _) = owned.split(&blob).unwrap();
        let mut out = vec![0u32; len + 1];
        let mut rows = Vec::new();
        model::greedy(
            &blob,
            &prompt,
            1,
            &mut out,
            &mut caches,
            None,
            &mut bufs,
            &mut |_, l| rows.push(dequant(l, &blob)),
        )
        .unwrap();
        assert_eq!(rows.len(), len);
        got.extend(rows.concat());
    }
    check("decoder LM", &want, &got, 19.0);

    // Encoder-decoder: fresh images and decoder inputs.
    let (model, _, bytes) = build(ModelKind::EncoderDecoder, 3);
    let w = aligned(&bytes);
    let blob = Blob::parse(view(&w, bytes.len())).unwrap();
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let len = calibration_tokens(10);
    let (mut want, mut got) = (Vec::new(), Vec::new());
    for _ in 0..held_out {
        let img = image(&mut r);
        let prompt = ids(&mut r, 16, len);
        let m = model
            .encoder
            .as_ref()
            .unwrap()
            .encode(&img, &mut NoObserver);
        want.extend(
            model
                .decoder
                .as_ref()
                .unwrap()
                .forward(&prompt, Some(&m), &mut NoObserver),
        );
        let (mut bufs, mut caches, mut cross) = owned.split(&blob).unwrap();
        model::encode_for_decoder(
            &blob,
            &quant_image(&img, &blob),
            &mut cross,
            &mut bufs,
            &mut |_, _| {},
        )
        .unwrap();
        let mut out = vec![0u32; len + 1];
        let mut rows = Vec::new();
        model::greedy(
            &blob,
            &prompt,
            1,
            &mut out,
            &mut caches,
            Some(&cross),
            &mut bufs,
            &mut |_, l| rows.push(dequant(l, &blob)),
        )
        .unwrap();
        assert_eq!(rows.len(), len);
        got.extend(rows.concat());
    }
    check("encoder-decoder", &want, &got, 21.0);
}

#[test]
fn writing_is_deterministic() {
    if MIRI {
        // One fresh build against the shared one: the writer is common to the three kinds,
        // each of which the other tests write and parse; a fresh decoder build costs minutes.
        assert_eq!(
            build_fresh(ModelKind::VitClassifier, 1).2,
            build(ModelKind::VitClassifier, 1).2
        );
        return;
    }
    for kind in [
        ModelKind::VitClassifier,
        ModelKind::DecoderLm,
        ModelKind::EncoderDecoder,
    ] {
        assert_eq!(build(kind, 7).2, build(kind, 7).2);
    }
}

#[test]
fn tied_head_is_stored_once() {
    let (_, _, bytes) = build(ModelKind::DecoderLm, 2);
    let w = aligned(&bytes);
    let blob = Blob::parse(view(&w, bytes.len())).unwrap();
    let emb = blob.token_embedding().unwrap().table;
    let head = blob.lm_head().unwrap().weights;
    assert_eq!(emb.as_ptr(), head.as_ptr());
}

#[test]
fn every_truncation_is_an_error() {
    for kind in [
        ModelKind::VitClassifier,
        ModelKind::DecoderLm,
        ModelKind::EncoderDecoder,
    ] {
        let (_, _, bytes) = build(kind, 4);
        let w = aligned(&bytes);
        // Under Miri (each parse checksums the whole blob) a sample of lengths, incl. the last.
        for len in (0..bytes.len())
            .step_by(MIRI_STRIDE)
            .chain([bytes.len() - 1])
        {
            assert!(
                matches!(Blob::parse(view(&w, len)), Err(Error::BadBlob(_))),
                "length {len}"
            );
        }
        assert!(Blob::parse(view(&w, bytes.len())).is_ok());
    }
}

#[test]
fn every_flipped_byte_is_an_error() {
    let (_, _, bytes) = build(ModelKind::DecoderLm, 5);
    let mut w = aligned(&bytes);
    // Under Miri (each parse checksums the whole blob, ~3 s): a byte of each preamble field
    // (magic, version, kind, checksum, total length), the first header word, the middle and the
    // last byte.
    let positions: Vec<usize> = if MIRI {
        vec![0, 4, 6, 8, 12, 13, 16, bytes.len() / 2, bytes.len() - 1]
    } else {
        (0..bytes.len()).collect()
    };
    for i in positions {
        bytemuck::cast_slice_mut::<u32, u8>(&mut w)[i] ^= 0x40;
        assert!(Blob::parse(view(&w, bytes.len())).is_err(), "byte {i}");
        bytemuck::cast_slice_mut::<u32, u8>(&mut w)[i] ^= 0x40;
    }
}

/// Set a header field and fix the checksum, so that the check under test is reached.
fn patched(bytes: &[u8], at: usize, value: &[u8]) -> Vec<u32> {
    let mut b = bytes.to_vec();
    b[at..at + value.len()].copy_from_slice(value);
    let sum = blob::fnv1a32(&b[12..]);
    b[8..12].copy_from_slice(&sum.to_le_bytes());
    aligned(&b)
}

#[test]
fn specific_rejections() {
    let (_, _, bytes) = build(ModelKind::VitClassifier, 6);
    let n = bytes.len();
    let err = |w: &[u32]| match Blob::parse(view(w, n)) {
        Err(Error::BadBlob(why)) => why,
        other => panic!("expected BadBlob, got {other:?}"),
    };
    assert_eq!(
        err(&patched(&bytes, 0, b"TATX")),
        "bad magic (not a TATN model blob)"
    );
    assert_eq!(
        err(&patched(&bytes, 4, &2u16.to_le_bytes())),
        "format version newer than this reader"
    );
    assert_eq!(
        err(&patched(&bytes, 6, &9u16.to_le_bytes())),
        "unknown model kind"
    );
    // A wrong dimension with a valid checksum: the buffer sizes no longer agree.
    assert_eq!(
        err(&patched(&bytes, 16 + 4, &24u32.to_le_bytes())),
        "buffer sizes disagree with the dimensions"
    );
    let mut flipped = aligned(&bytes);
    bytemuck::cast_slice_mut::<u32, u8>(&mut flipped)[n - 20] ^= 1;
    assert_eq!(err(&flipped), "checksum mismatch (corrupt blob)");
    // Misaligned in memory: the i32 views cannot be formed.
    let w = aligned(&[&[0u8][..], &bytes].concat());
    let shifted = &bytemuck::cast_slice::<u32, u8>(&w)[1..n + 1];
    assert!(matches!(
        Blob::parse(shifted),
        Err(Error::BadBlob(why)) if why == "blob not 4-byte aligned in memory"
    ));
}

#[test]
fn buffers_that_are_too_small_are_rejected() {
    let (_, inputs, bytes) = build(ModelKind::VitClassifier, 8);
    let w = aligned(&bytes);
    let blob = Blob::parse(view(&w, bytes.len())).unwrap();
    let mut sizes = blob.buffers();
    sizes.wide -= 1;
    assert!(!blob.buffers().fits_in(&sizes));
    let mut owned = OwnedBuffers::new(&sizes);
    let (mut bufs, _, _) = owned.split(&blob).unwrap();
    let CalibrationInput::Image(img) = &inputs[0] else {
        unreachable!()
    };
    let e = model::vit_classify(&blob, &quant_image(img, &blob), &mut bufs, &mut |_, _| {});
    assert!(matches!(e, Err(Error::BufferTooSmall { .. })));
}

/// Mutated blobs per model kind (each parse checksums the blob, each run is interpreted under
/// Miri: 3 there, one of them in the weights, which parses and runs).
const MUTATIONS: usize = if MIRI { 3 } else { 1500 };

/// Random mutations with the checksum recomputed (so the structural checks are what is tested):
/// parsing and then running whatever parses must return errors, never panic.
#[test]
fn mutated_blobs_with_valid_checksums_never_panic() {
    let mut r = Rng::new(99);
    for kind in [
        ModelKind::VitClassifier,
        ModelKind::DecoderLm,
        ModelKind::EncoderDecoder,
    ] {
        let (_, inputs, bytes) = build(kind, 10);
        // Header + section table: where structure lives.
        let at = 16 + 4 * blob::HEADER_WORDS; // section count, then 12-byte entries
        let count = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let structure = at + 4 + 12 * count;
        let mut parsed = 0;
        for m in 0..MUTATIONS {
            let mut b = bytes.clone();
            for _ in 0..1 + r.below(3) {
                // Under Miri every third blob is mutated anywhere (mostly weights, which still
                // parse and run), the others in the structure (natively: each byte 1 in 4).
                let anywhere = if MIRI { m % 3 == 0 } else { r.below(4) == 0 };
                let i = if anywhere {
                    r.below(b.len())
                } else {
                    12 + r.below(structure - 12)
                };
                b[i] = match r.below(3) {
                    0 => r.i8() as u8,
                    1 => b[i] ^ (1 << r.below(8)),
                    _ => 0xff,
                };
            }
            let sum = blob::fnv1a32(&b[12..]);
            b[8..12].copy_from_slice(&sum.to_le_bytes());
            let w = aligned(&b);
            let Ok(blob) = Blob::parse(view(&w, b.len())) else {
                continue;
            };
            parsed += 1;
            let mut owned = OwnedBuffers::new(&blob.buffers());
            let Ok((mut bufs, mut caches, mut cross)) = owned.split(&blob) else {
                continue;
            };
            match &inputs[0] {
                CalibrationInput::Image(img) => {
                    let q = vec![0i8; img.len()];
                    let _ = model::vit_classify(&blob, &q, &mut bufs, &mut |_, _| {});
                }
                CalibrationInput::Tokens(ids) => {
                    let mut out = vec![0u32; 12];
                    // Under Miri a 2-token prompt and 2 steps.
                    let (prompt, steps) = if MIRI { (2, 2) } else { (4, 8) };
                    let _ = model::greedy(
                        &blob,
                        &ids[..prompt],
                        steps,
                        &mut out,
                        &mut caches,
                        None,
                        &mut bufs,
                        &mut |_, _| {},
                    );
                }
                CalibrationInput::ImageTokens(img, _) => {
                    let q = vec![0i8; img.len()];
                    if model::encode_for_decoder(&blob, &q, &mut cross, &mut bufs, &mut |_, _| {})
                        .is_ok()
                    {
                        let mut out = vec![0u32; 6];
                        let _ = model::greedy(
                            &blob,
                            &[0],
                            if MIRI { 2 } else { 5 },
                            &mut out,
                            &mut caches,
                            Some(&cross),
                            &mut bufs,
                            &mut |_, _| {},
                        );
                    }
                }
            }
        }
        // Mutations of weights and constants within range still parse; the rest must not.
        assert!(
            parsed > 0 && parsed < MUTATIONS,
            "{kind:?}: {parsed} parsed"
        );
    }
}

/// The runners' `observe` hook gives per-layer int8 outputs; dequantized with the calibrated
/// output quantization of each layer they track the f64 reference layer by layer.
#[test]
fn per_layer_outputs_track_the_reference() {
    use core_attn::reference::kernels::sqnr_db;
    let (model, inputs, bytes) = build(ModelKind::VitClassifier, 11);
    let calib = calibrate(&model, &inputs).unwrap();
    let w = aligned(&bytes);
    let blob = Blob::parse(view(&w, bytes.len())).unwrap();
    let CalibrationInput::Image(img) = &inputs[1] else {
        unreachable!()
    };
    struct Points(Vec<(String, Vec<f64>)>);
    impl core_attn::reference::block::Observer for Points {
        fn observe(&mut self, point: &str, values: &[f64]) {
            self.0.push((point.to_string(), values.to_vec()));
        }
    }
    let mut reference = Points(Vec::new());
    model
        .encoder
        .as_ref()
        .unwrap()
        .classify(img, &mut reference);
    let mut layers: Vec<(usize, Vec<i8>)> = Vec::new();
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let (mut bufs, _, _) = owned.split(&blob).unwrap();
    model::vit_classify(&blob, &quant_image(img, &blob), &mut bufs, &mut |l, x| {
        layers.push((l, x.to_vec()))
    })
    .unwrap();
    for (l, x) in &layers {
        let point = if *l == model::FINAL_NORM {
            "enc_final".to_string()
        } else {
            format!("enc{l}.add2")
        };
        let q = calib.asymmetric(&point).unwrap();
        let got: Vec<f64> = x.iter().map(|&v| q.dequantize(v)).collect();
        let want = &reference.0.iter().find(|(p, _)| *p == point).unwrap().1;
        let db = sqnr_db(want, &got);
        assert!(db > 20.0, "{point}: {db:.1} dB");
    }
    assert_eq!(layers.len(), 3);
}

/// A decoder with sinusoidal positions: the blob carries the fixed-point table (scale 1/127,
/// the bits `position::fill_sinusoidal` gives on any target) and tracks the f64 reference.
#[test]
fn sinusoidal_decoder_round_trip() {
    // Positions (and calibration length): 6 under Miri, with one calibration input.
    const P: usize = if MIRI { 6 } else { 24 };
    let mut r = Rng::new(12);
    let mut dec = decoder(&mut r, 32, P, false);
    dec.sinusoidal = true;
    dec.positions = core_attn::reference::position::sinusoid_table(P, D)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let model = ModelF {
        encoder: None,
        decoder: Some(dec),
    };
    let inputs: Vec<_> = (0..if MIRI { 1 } else { 8 })
        .map(|_| CalibrationInput::Tokens(ids(&mut r, 32, P)))
        .collect();
    let calib = calibrate(&model, &inputs).unwrap();
    let bytes = blob::write(&quantize_model(&model, &calib).unwrap()).unwrap();
    let w = aligned(&bytes);
    let blob = Blob::parse(view(&w, bytes.len())).unwrap();
    assert!(blob.header().decoder.sinusoidal);
    let mut table = vec![0i8; P * D];
    core_attn::position::fill_sinusoidal(&mut table, D, 0).unwrap();
    assert_eq!(blob.token_embedding().unwrap().positions, &table[..]);
    let CalibrationInput::Tokens(seq) = &inputs[0] else {
        unreachable!()
    };
    let want = run_reference(&model, &inputs[0], &mut NoObserver).unwrap();
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let (mut bufs, mut caches, _) = owned.split(&blob).unwrap();
    for (p, &t) in seq.iter().enumerate() {
        let l =
            model::decoder_step(&blob, t, &mut caches, None, &mut bufs, &mut |_, _| {}).unwrap();
        let c = cosine(&want[p * 32..(p + 1) * 32], &dequant(l, &blob));
        assert!(c > 0.98, "position {p}: cosine {c}");
    }
    // The cache is full now: one more token is an error value, not a panic.
    assert_eq!(
        model::decoder_step(&blob, 0, &mut caches, None, &mut bufs, &mut |_, _| {}).unwrap_err(),
        Error::BufferTooSmall {
            what: "learned position table",
            needed: P + 1,
            available: P
        }
    );
}

/// A LayerNorm epsilon that needs both of its 32-bit words (Q24.40: at least 2^-8) survives
/// the blob: the encoder's final LayerNorm read back from a written ViT blob carries the
/// written epsilon bit for bit (the models' epsilons fit the low word, so a lost high word
/// shows nowhere else).
///
/// Guards against the writer's high word `epsilon >> 32` → `epsilon << 32` (mutant
/// `blob/writer.rs:244:24` in `write_layer_norm`: the high word written as 0), and against
/// the match guard `e.classifier.is_some()` → `true` (`282:28` in `write_with_vocab`: an
/// encoder alone, without its classifier, then written as a ViT classifier).
#[test]
fn vit_blob_keeps_a_two_word_layer_norm_epsilon() {
    let mut r = Rng::new(1);
    let model = ModelF {
        encoder: Some(vit(&mut r, Some(10))),
        decoder: None,
    };
    let inputs: Vec<_> = (0..CALIBRATION_INPUTS)
        .map(|_| CalibrationInput::Image(image(&mut r)))
        .collect();
    let mut params = quantize_model(&model, &calibrate(&model, &inputs).unwrap()).unwrap();
    let eps = (3u64 << 32) | 5;
    params.encoder.as_mut().unwrap().final_norm.epsilon = eps;
    let bytes = blob::write(&params).unwrap();
    let words = aligned(&bytes);
    let b = Blob::parse(view(&words, bytes.len())).unwrap();
    assert_eq!(b.encoder_final_norm().unwrap().epsilon, eps);
    // An encoder without a classifier and without a decoder is no model kind.
    params.encoder.as_mut().unwrap().classifier = None;
    assert_eq!(
        blob::write(&params),
        Err(Error::BadBlob(core_attn::BlobError::Invalid(
            "unsupported combination of model parts"
        )))
    );
}

/// The writer refuses parameters it cannot write as one model kind, naming why: a decoder
/// whose token table is not a whole number of rows of the width, and a ViT classifier (with
/// its classifier) together with a decoder.
///
/// Guards against `width == 0 || embedding % width != 0 || positions % width != 0` with
/// either `||` → `&&` (mutants `blob/writer.rs:344:23`, `344:57` in `write_with_vocab`: the
/// ragged table passes that check) and the match guard `e.classifier.is_none()` → `true`
/// (`284:31`: the pair written as an encoder-decoder, the classifier dropped).
#[test]
fn writer_refuses_ragged_tables_and_mixed_parts() {
    let mut r = Rng::new(2);
    let model = ModelF {
        encoder: None,
        decoder: Some(decoder(&mut r, 32, 24, false)),
    };
    let inputs: Vec<_> = (0..CALIBRATION_INPUTS)
        .map(|_| CalibrationInput::Tokens(ids(&mut r, 32, calibration_tokens(24))))
        .collect();
    let dec = quantize_model(&model, &calibrate(&model, &inputs).unwrap()).unwrap();
    assert!(blob::write(&dec).is_ok());
    let mut ragged = dec.clone();
    ragged.decoder.as_mut().unwrap().embedding.push(0);
    assert_eq!(
        blob::write(&ragged),
        Err(Error::BadBlob(core_attn::BlobError::Invalid(
            "decoder tables do not match the width"
        )))
    );
    let mut r = Rng::new(1);
    let model = ModelF {
        encoder: Some(vit(&mut r, Some(10))),
        decoder: None,
    };
    let inputs: Vec<_> = (0..CALIBRATION_INPUTS)
        .map(|_| CalibrationInput::Image(image(&mut r)))
        .collect();
    let mut both = quantize_model(&model, &calibrate(&model, &inputs).unwrap()).unwrap();
    assert!(both.encoder.as_ref().unwrap().classifier.is_some());
    both.decoder = dec.decoder.clone();
    assert_eq!(
        blob::write(&both),
        Err(Error::BadBlob(core_attn::BlobError::Invalid(
            "unsupported combination of model parts"
        )))
    );
}
