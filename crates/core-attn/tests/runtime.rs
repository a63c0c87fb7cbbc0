//! The device runtime (`core_attn::device`, `include_model!`) against the existing runners
//! (`model::vit_classify`, `model::greedy`, `model::encode_for_decoder`) on the shipped blobs,
//! its integer input/output conversions against f64 computations, and its rejections.

mod common;

use common::Rng;
use core_attn::blob::{Blob, ModelKind};
use core_attn::device::{Dequant, Lm, Memory, ModelInfo, Reader, Sampler, Vit};
use core_attn::model::{self, host::OwnedBuffers};
use core_attn::requant::QParams;
use core_attn::{BlobError, Error};

core_attn::include_model!(MNIST: Vit = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/vit-mnist.tatn"));
core_attn::include_model!(VIT_TINY: Vit = concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards/common/models/vit-tiny.tatn"));
core_attn::include_model!(CHAR_LM: Lm = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/char-lm.tatn"));
core_attn::include_model!(GPT2_TINY: Lm = concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards/common/models/gpt2-tiny.tatn"));
core_attn::include_model!(DIGITS: Reader = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/digit-reader.tatn"));
core_attn::include_model!(LLAMA2C_TINY: Llama = concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards/common/models/llama2c-tiny.tatn"));
core_attn::include_model!(ENCDEC_TINY: Reader = concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards/common/models/encdec-tiny.tatn"));

/// Every embedded blob with its compile-time info.
fn all() -> [(&'static str, &'static [u8], ModelInfo); 7] {
    [
        ("vit-mnist", &MNIST::BLOB.0, MNIST::INFO),
        ("vit-tiny", &VIT_TINY::BLOB.0, VIT_TINY::INFO),
        ("char-lm", &CHAR_LM::BLOB.0, CHAR_LM::INFO),
        ("gpt2-tiny", &GPT2_TINY::BLOB.0, GPT2_TINY::INFO),
        ("digit-reader", &DIGITS::BLOB.0, DIGITS::INFO),
        ("encdec-tiny", &ENCDEC_TINY::BLOB.0, ENCDEC_TINY::INFO),
        ("llama2c-tiny", &LLAMA2C_TINY::BLOB.0, LLAMA2C_TINY::INFO),
    ]
}

fn image_i8(r: &mut Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| r.i8()).collect()
}

#[test]
// Whole shipped models: minutes under Miri (no unsafe here; the kernels have their own
// Miri-sized suites).
#[cfg_attr(miri, ignore)]
fn compile_time_info_matches_the_parser() {
    for (name, bytes, info) in all() {
        assert_eq!(
            bytes.as_ptr() as usize % 16,
            0,
            "{name}: blob not 16-byte aligned"
        );
        let blob = Blob::parse(bytes).unwrap();
        let h = blob.header();
        assert_eq!(info.kind, blob.kind() as u16, "{name}");
        assert_eq!(info.buffers, blob.buffers(), "{name}");
        // Decoder layers counted by reading the blocks the blob holds (GPT-2-style or Llama),
        // not from the header word the runtime reads (bug it guards: a Llama's layers read as 0).
        let layers = (0..64)
            .take_while(|&i| blob.decoder_block(i).is_ok() || blob.llama_block(i).is_ok())
            .count();
        assert_eq!(info.layers, layers, "{name}");
        let e = h.encoder;
        let image = if blob.kind().has_encoder() {
            e.channels * e.height * e.image_width
        } else {
            0
        };
        assert_eq!(info.image, image, "{name}");
        assert_eq!(info.input_scale_bits, h.input_scale_bits, "{name}");
        assert_eq!(info.input_zero_point, h.input_zero_point, "{name}");
        let b = blob.buffers();
        assert_eq!(
            info.i8_bytes(),
            b.x + b.normed + b.wide + b.patch + b.logits + b.kv + b.cross_kv + image,
            "{name}"
        );
        assert_eq!(info.i32_entries(), b.scores, "{name}");
    }
    // The memory type is exactly that large (plus the i32 scores).
    assert_eq!(
        std::mem::size_of::<MNIST::Memory>(),
        MNIST::INFO.i8_bytes().next_multiple_of(4) + 4 * MNIST::INFO.i32_entries()
    );
}

fn vit_matches_runner(bytes: &[u8], mut vit: Vit<'_>, seed: u64) {
    let blob = Blob::parse(bytes).unwrap();
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let (mut bufs, _, _) = owned.split(&blob).unwrap();
    let e = blob.header().encoder;
    let mut r = Rng::new(seed);
    for _ in 0..3 {
        let img = image_i8(&mut r, e.channels * e.height * e.image_width);
        let want = model::vit_classify(&blob, &img, &mut bufs, &mut |_, _| {})
            .unwrap()
            .to_vec();
        let class = vit.classify(&img).unwrap();
        assert_eq!(vit.logits(), &want[..]);
        assert_eq!(class, model::argmax_i8(&want));
    }
}

/// FNV-1a 32 written here from its definition (offset basis 2166136261, prime 16777619), the
/// fingerprint the boot check compares.
fn fnv_reference(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    })
}

/// The boot check of an embedded ViT (`include_model!(…: Vit …)`: the compiler checked the
/// blob, `load` only compares its fingerprint): a copy of the blob with any one byte changed
/// — sampled over the whole blob, header, table and weights, first and last byte included —
/// is refused with a checksum error whose values are the compile-time fingerprint of the
/// intact bytes and the fingerprint of the changed ones (both from the reference FNV above),
/// a truncated copy as truncated; the intact copy loads and classifies as the runtime parser's
/// blob does. Guards against a boot check that compares only part of the blob (e.g. from
/// byte 12 on, as the header checksum does: the changed magic, version, kind and checksum
/// bytes would load).
#[test]
#[cfg_attr(miri, ignore = "fingerprints of an 86 KB blob: minutes under Miri")]
fn embedded_vit_refuses_a_changed_byte_at_boot() {
    let intact = &MNIST::BLOB.0[..];
    let good = fnv_reference(intact);
    let mut copy = Box::new(core_attn::device::Align16(MNIST::BLOB.0));
    let mut m = MNIST::Memory::new();
    let positions = (0..intact.len())
        .step_by(997)
        .chain(0..16)
        .chain([intact.len() - 1]);
    let mut tried = 0;
    for at in positions {
        for flip in [0x01u8, 0x80] {
            copy.0[at] ^= flip;
            let found = fnv_reference(&copy.0);
            match Vit::embedded(&copy.0, &MNIST::CHECKED, &MNIST::INFO, &mut m) {
                Err(Error::BadBlob(BlobError::Checksum { expected, found: f })) => {
                    assert_eq!((expected, f), (good, found), "byte {at} ^ {flip:#x}");
                }
                other => panic!("byte {at} ^ {flip:#x}: {other:?}"),
            }
            copy.0[at] ^= flip;
            tried += 1;
        }
    }
    assert!(tried > 170, "{tried} bytes tried");
    assert!(matches!(
        Vit::embedded(
            &copy.0[..intact.len() - 1],
            &MNIST::CHECKED,
            &MNIST::INFO,
            &mut m
        ),
        Err(Error::BadBlob(BlobError::Truncated { .. }))
    ));
    let vit = Vit::embedded(&copy.0, &MNIST::CHECKED, &MNIST::INFO, &mut m).unwrap();
    vit_matches_runner(intact, vit, 3);
}

#[test]
// Whole shipped models: minutes under Miri (no unsafe here; the kernels have their own
// Miri-sized suites).
#[cfg_attr(miri, ignore)]
fn vit_gives_the_runners_logits() {
    let mut m = MNIST::Memory::new();
    vit_matches_runner(&MNIST::BLOB.0, MNIST::load(&mut m).unwrap(), 1);
    let mut m = VIT_TINY::Memory::new();
    vit_matches_runner(&VIT_TINY::BLOB.0, VIT_TINY::load(&mut m).unwrap(), 2);
}

#[test]
// Whole shipped models: minutes under Miri (no unsafe here; the kernels have their own
// Miri-sized suites).
#[cfg_attr(miri, ignore)]
fn pixel_map_is_the_f64_quantization_of_the_normalized_pixel() {
    const PIXELS: core_attn::device::PixelMap = MNIST::pixel_map(0.5, 0.5);
    let h = *Blob::parse(&MNIST::BLOB.0).unwrap().header();
    let q = QParams {
        scale: h.input_scale() as f64,
        zero_point: h.input_zero_point,
    };
    for p in 0..=255u8 {
        let real = (p as f64 / 255.0 - 0.5) / 0.5;
        let want = q.quantize(real);
        // f32 in the compiler vs f64 here: at most one step apart at an exact .5 tie.
        let got = PIXELS.table[p as usize];
        assert!(
            (got as i32 - want as i32).abs() <= 1,
            "pixel {p}: {got} vs {want}"
        );
    }
    // And it is what classify_u8 feeds the model.
    let mut r = Rng::new(7);
    let img: Vec<u8> = (0..784).map(|_| r.next_u64() as u8).collect();
    let quantized: Vec<i8> = img.iter().map(|&p| PIXELS.table[p as usize]).collect();
    let mut m = MNIST::Memory::new();
    let mut vit = MNIST::load(&mut m).unwrap();
    let a = vit.classify_u8(&img, &PIXELS).unwrap();
    let la = vit.logits().to_vec();
    let b = vit.classify(&quantized).unwrap();
    assert_eq!((a, &la[..]), (b, vit.logits()));
    // The f32 path: values on the quantization grid come back as exactly their integers.
    let grid: Vec<i8> = (0..784).map(|_| r.i8()).collect();
    let real: Vec<f32> = grid
        .iter()
        .map(|&g| ((g as i32 - q.zero_point) as f64 * q.scale) as f32)
        .collect();
    vit.classify_f32(&real).unwrap();
    let lf = vit.logits().to_vec();
    vit.classify(&grid).unwrap();
    assert_eq!(lf, vit.logits());
}

#[test]
// Whole shipped models: minutes under Miri (no unsafe here; the kernels have their own
// Miri-sized suites).
#[cfg_attr(miri, ignore)]
fn dequant_is_the_rounded_real_value_in_q16() {
    for (name, bytes, _) in all() {
        let h = *Blob::parse(bytes).unwrap().header();
        let d = Dequant::new(h.logits_scale_bits, h.logits_zero_point);
        for q in -128..=127i8 {
            let real = (q as i32 - h.logits_zero_point) as f64 * h.logits_scale() as f64;
            let want = (real * 65536.0).round();
            let got = d.q16(q) as f64;
            assert!((got - want).abs() <= 1.0, "{name} q {q}: {got} vs {want}");
        }
    }
    // Degenerate scales dequantize to 0 instead of misbehaving.
    for bits in [
        0u32,
        f32::NAN.to_bits(),
        f32::INFINITY.to_bits(),
        (-1.0f32).to_bits(),
    ] {
        assert_eq!(Dequant::new(bits, 3).q16(100), 0);
    }
}

fn lm_matches_greedy<const L: usize>(bytes: &[u8], mut lm: Lm<'_, L>, prompts: &[Vec<u32>]) {
    let blob = Blob::parse(bytes).unwrap();
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let (mut bufs, mut caches, _) = owned.split(&blob).unwrap();
    let max_new = 12;
    for p in prompts {
        let mut out = vec![0u32; p.len() + max_new];
        let n = model::greedy(
            &blob,
            p,
            max_new,
            &mut out,
            &mut caches,
            None,
            &mut bufs,
            &mut |_, _| {},
        )
        .unwrap();
        let mut got = Vec::new();
        let k = lm
            .generate(p, max_new, &mut Sampler::Greedy, |t| got.push(t))
            .unwrap();
        assert_eq!(k, got.len());
        assert_eq!(&got[..], &out[p.len()..n]);
        assert_eq!(lm.position(), p.len() + k - 1);
        // prefill + step give the same logits as the runner's step by step.
        let logits = lm.prefill(p).unwrap().to_vec();
        assert_eq!(model::argmax_i8(&logits) as u32, got[0]);
        if got.len() > 1 {
            let next = lm.step(got[0]).unwrap();
            assert_eq!(model::argmax_i8(next) as u32, got[1]);
        }
    }
}

#[test]
// Whole shipped models: minutes under Miri (no unsafe here; the kernels have their own
// Miri-sized suites).
#[cfg_attr(miri, ignore)]
fn lm_generates_the_greedy_ids() {
    let mut r = Rng::new(3);
    let h = *Blob::parse(&GPT2_TINY::BLOB.0).unwrap().header();
    let prompts: Vec<Vec<u32>> = (1..4)
        .map(|n| (0..n).map(|_| r.below(h.decoder.vocab) as u32).collect())
        .collect();
    let mut m = GPT2_TINY::Memory::new();
    lm_matches_greedy(
        &GPT2_TINY::BLOB.0,
        GPT2_TINY::load(&mut m).unwrap(),
        &prompts,
    );

    let mut m = Box::new(CHAR_LM::Memory::new());
    let lm = CHAR_LM::load(&mut m).unwrap();
    // "And God said" in the char vocabulary (ids of its sidecar's characters).
    let vocab: std::collections::BTreeMap<String, String> = serde_free_json(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/char-lm.tatn.vocab.json"
        ))
        .unwrap(),
    );
    let id = |c: char| -> u32 {
        vocab
            .iter()
            .find(|(_, v)| v.chars().eq([c]))
            .map(|(k, _)| k.parse().unwrap())
            .unwrap()
    };
    let prompt: Vec<u32> = "And God said".chars().map(id).collect();
    // The blob's own vocabulary is the sidecar's, and encodes text the same way.
    let v = lm.vocab().expect("char-lm carries its vocabulary");
    assert_eq!(v.len(), vocab.len());
    for (k, text) in &vocab {
        assert_eq!(v.text(k.parse().unwrap()), Some(text.as_str()));
    }
    let mut ids = [0u32; 32];
    let n = v.encode("And God said", &mut ids).unwrap();
    assert_eq!(&ids[..n], &prompt[..]);
    assert!(matches!(
        v.encode("And God said", &mut ids[..3]),
        Err(Error::BufferTooSmall { .. })
    ));
    assert!(matches!(
        v.encode("And God said \u{1F600}", &mut ids),
        Err(Error::BadDimension { value: 13, .. })
    ));
    lm_matches_greedy(&CHAR_LM::BLOB.0, lm, &[prompt]);
}

#[test]
// Whole shipped models: minutes under Miri (no unsafe here; the kernels have their own
// Miri-sized suites).
#[cfg_attr(miri, ignore)]
fn vocabulary_sections() {
    // Blobs without a vocabulary (written before it existed, or by `write`) still load.
    assert!(Blob::parse(&MNIST::BLOB.0).unwrap().vocab().is_none());
    assert!(Blob::parse(&GPT2_TINY::BLOB.0).unwrap().vocab().is_none());
    let b = Blob::parse(&DIGITS::BLOB.0).unwrap();
    let v = b.vocab().expect("digit-reader carries its vocabulary");
    let d = b.header().decoder;
    assert_eq!(v.len(), d.vocab);
    assert_eq!(v.text(d.eos_token), Some("<eos>"));
    assert_eq!(v.text(d.vocab as u32), None);
    // `<eos>` is one entry, longest match first.
    let mut ids = [0u32; 8];
    let n = v.encode("12<eos>", &mut ids).unwrap();
    assert_eq!(&ids[..n], &[4, 5, d.eos_token]);

    // Corrupt the offsets (then fix the checksum): rejected with the check that failed.
    let bytes = CHAR_LM::BLOB.0.to_vec();
    let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let table = 16 + 4 * core_attn::blob::HEADER_WORDS;
    let count = word(&bytes, table) as usize;
    let entry = |i: usize| table + 4 + 12 * i;
    // The offsets section is the second to last.
    let off_entry = entry(count - 2);
    assert_eq!(word(&bytes, off_entry) & 0xffff, 0x80);
    let offsets_at = word(&bytes, off_entry + 4) as usize;
    let reject = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        patch(&mut b);
        let sum = core_attn::blob::fnv1a32(&b[12..]);
        b[8..12].copy_from_slice(&sum.to_le_bytes());
        let words: Vec<u32> = b.chunks(4).map(|c| word(c, 0)).collect();
        match Blob::parse(bytemuck::cast_slice(&words)) {
            Err(Error::BadBlob(why)) => why,
            other => panic!("expected BadBlob, got {other:?}"),
        }
    };
    assert_eq!(
        reject(&|b| b[offsets_at + 8..offsets_at + 12].copy_from_slice(&0i32.to_le_bytes())),
        "vocabulary offsets decrease"
    );
    assert_eq!(
        reject(&|b| b[offsets_at + 4..offsets_at + 8].copy_from_slice(&1000i32.to_le_bytes())),
        "vocabulary offsets past the text"
    );
    assert_eq!(
        reject(&|b| b[offsets_at..offsets_at + 4].copy_from_slice(&1i32.to_le_bytes())),
        "vocabulary offsets do not start at 0"
    );
    let text_at = word(&bytes, entry(count - 1) + 4) as usize;
    assert_eq!(
        reject(&|b| b[text_at] = 0xff),
        "vocabulary entry is not UTF-8"
    );
    // Drop the last vocabulary section from the table: the offsets alone are not a vocabulary.
    assert_eq!(
        reject(&|b| b[table..table + 4].copy_from_slice(&(count as u32 - 1).to_le_bytes())),
        "fewer sections than the model needs"
    );
}

/// Minimal parser for the flat `{"id": "text", ...}` sidecar (no serde in core-attn's tests).
fn serde_free_json(s: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut strings = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            let mut cur = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next().unwrap() {
                        'n' => cur.push('\n'),
                        't' => cur.push('\t'),
                        'u' => {
                            let hex: String = (0..4).map(|_| chars.next().unwrap()).collect();
                            cur.push(
                                char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap(),
                            );
                        }
                        other => cur.push(other),
                    },
                    c => cur.push(c),
                }
            }
            strings.push(cur);
        }
    }
    for kv in strings.chunks(2) {
        out.insert(kv[0].clone(), kv[1].clone());
    }
    out
}

fn reader_matches_runner<const L: usize>(bytes: &[u8], mut reader: Reader<'_, L>, seed: u64) {
    let blob = Blob::parse(bytes).unwrap();
    let h = *blob.header();
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let (mut bufs, mut caches, mut cross) = owned.split(&blob).unwrap();
    let e = h.encoder;
    let max_new = h.decoder.max_positions.min(6);
    let mut r = Rng::new(seed);
    for _ in 0..2 {
        let img = image_i8(&mut r, e.channels * e.height * e.image_width);
        model::encode_for_decoder(&blob, &img, &mut cross, &mut bufs, &mut |_, _| {}).unwrap();
        let mut out = vec![0u32; 1 + max_new];
        let mut rows: Vec<Vec<i8>> = Vec::new();
        let n = model::greedy(
            &blob,
            &[h.decoder.start_token],
            max_new,
            &mut out,
            &mut caches,
            Some(&cross),
            &mut bufs,
            &mut |_, l| rows.push(l.to_vec()),
        )
        .unwrap();
        let mut got = Vec::new();
        let k = reader.read(&img, max_new, |t| got.push(t)).unwrap();
        assert_eq!(k, got.len());
        assert_eq!(&got[..], &out[1..n]);
        // Step by step (`encode`, then `step` from the start token): every step's logits are
        // the runner's, and the argmax chain gives the same ids.
        reader.encode(&img).unwrap();
        assert_eq!(reader.position(), 0);
        let mut token = h.decoder.start_token;
        for (i, want) in rows.iter().enumerate() {
            assert_eq!(out[i], token);
            let l = reader.step(token).unwrap();
            assert_eq!(l, &want[..], "step {i}");
            token = model::argmax_i8(l) as u32;
        }
        assert_eq!(reader.position(), rows.len());
    }
}

/// `ModelInfo::of_blob` (run time, parsed blob) is what `ModelInfo::of` reads at compile time,
/// and `Memory::parts` hands out exactly the sizes it describes.
#[test]
fn run_time_info_and_parts_match_compile_time() {
    for (name, bytes, info) in all() {
        let blob = Blob::parse(bytes).unwrap();
        assert_eq!(ModelInfo::of_blob(&blob), info, "{name}");
    }
    let mut m = Box::new(DIGITS::Memory::new());
    let p = m.parts(&DIGITS::INFO).unwrap();
    let b = DIGITS::INFO.buffers;
    assert_eq!(
        (
            p.buffers.x.len(),
            p.buffers.wide.len(),
            p.buffers.scores.len()
        ),
        (b.x, b.wide, b.scores)
    );
    assert_eq!((p.kv.len(), p.cross.len()), (b.kv, b.cross_kv));
    assert_eq!(p.image.len(), 28 * 112);
    // A memory one byte short is refused, not split.
    let mut small = Box::new(Memory::<{ DIGITS::INFO.i8_bytes() - 1 }, 65>::new());
    assert!(matches!(
        small.parts(&DIGITS::INFO),
        Err(Error::BufferTooSmall { .. })
    ));
}

#[test]
// Whole shipped models: minutes under Miri (no unsafe here; the kernels have their own
// Miri-sized suites).
#[cfg_attr(miri, ignore)]
fn reader_gives_the_runners_ids() {
    let mut m = Box::new(DIGITS::Memory::new());
    reader_matches_runner(&DIGITS::BLOB.0, DIGITS::load(&mut m).unwrap(), 4);
    let mut m = ENCDEC_TINY::Memory::new();
    reader_matches_runner(&ENCDEC_TINY::BLOB.0, ENCDEC_TINY::load(&mut m).unwrap(), 5);
}

#[test]
// Whole shipped models: minutes under Miri (no unsafe here; the kernels have their own
// Miri-sized suites).
#[cfg_attr(miri, ignore)]
fn sampler_frequencies_follow_the_softmax() {
    // Four logits with scale 1/16 and zero point 0: softmax at temperature 0.5.
    let scale = 1.0f32 / 16.0;
    let dq = Dequant::new(scale.to_bits(), 0);
    let logits = [0i8, -8, -16, 8];
    let t = 0.5f64;
    let w: Vec<f64> = logits
        .iter()
        .map(|&q| (q as f64 * scale as f64 / t).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    let mut s = Sampler::temperature(500, 42);
    let n = 40_000;
    let mut counts = [0usize; 4];
    for _ in 0..n {
        counts[s.pick(&logits, &dq) as usize] += 1;
    }
    for i in 0..4 {
        let p = w[i] / sum;
        let f = counts[i] as f64 / n as f64;
        // Binomial standard deviation ≤ 0.0025 at n = 40,000; the integer exp is within 0.5%.
        assert!(
            (f - p).abs() < 0.012,
            "logit {i}: frequency {f} vs probability {p}"
        );
    }
    // Same seed, same tokens; temperature 0 is greedy.
    let mut a = Sampler::temperature(800, 9);
    let mut b = Sampler::temperature(800, 9);
    for _ in 0..100 {
        assert_eq!(a.pick(&logits, &dq), b.pick(&logits, &dq));
    }
    assert_eq!(Sampler::temperature(0, 1).pick(&logits, &dq), 3);
}

#[test]
fn sampled_generation_is_reproducible_and_stays_in_the_vocabulary() {
    let mut m = GPT2_TINY::Memory::new();
    let mut lm = GPT2_TINY::load(&mut m).unwrap();
    let vocab = lm.blob().header().decoder.vocab as u32;
    let run = |lm: &mut GPT2_TINY::Model<'_>| {
        let mut ids = Vec::new();
        lm.generate(&[1, 2], 10, &mut Sampler::temperature(1000, 1234), |t| {
            ids.push(t)
        })
        .unwrap();
        ids
    };
    let a = run(&mut lm);
    assert_eq!(a, run(&mut lm));
    assert!(!a.is_empty() && a.iter().all(|&t| t < vocab));
}

#[test]
// Whole shipped models: minutes under Miri (no unsafe here; the kernels have their own
// Miri-sized suites).
#[cfg_attr(miri, ignore)]
fn rejections() {
    // A blob of another kind than the runtime type.
    let mut m = Memory::<{ MNIST::INFO.i8_bytes() }, { MNIST::INFO.i32_entries() }>::new();
    assert!(matches!(
        Lm::<1>::new(&MNIST::BLOB.0, &MNIST::INFO, &mut m),
        Err(Error::BadBlob(_))
    ));
    // Info of another blob.
    assert!(matches!(
        Vit::new(&MNIST::BLOB.0, &VIT_TINY::INFO, &mut m),
        Err(Error::BadBlob(_))
    ));
    // Memory too small for the blob.
    let mut small = VIT_TINY::Memory::new();
    assert!(matches!(
        Vit::new(&MNIST::BLOB.0, &MNIST::INFO, &mut small),
        Err(Error::BufferTooSmall { .. })
    ));
    // Wrong layer count for the caches.
    let mut m = GPT2_TINY::Memory::new();
    assert!(matches!(
        Lm::<7>::new(&GPT2_TINY::BLOB.0, &GPT2_TINY::INFO, &mut m),
        Err(Error::ShapeMismatch { .. })
    ));
    // A corrupt byte: the checksum (checked at load time).
    let mut words: Vec<u32> = MNIST::BLOB
        .0
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let last = words.len() - 1;
    words[last / 2] ^= 0x100;
    let corrupt: &[u8] = bytemuck::cast_slice(&words);
    let mut m = MNIST::Memory::new();
    let err = Vit::new(corrupt, &MNIST::INFO, &mut m).unwrap_err();
    assert_eq!(
        err,
        Error::BadBlob(BlobError::Checksum {
            expected: words[2],
            found: core_attn::blob::fnv1a32(&corrupt[12..]),
        })
    );
    // The message is the one it always was.
    assert_eq!(
        err.to_string(),
        "invalid model blob: checksum mismatch (corrupt blob)"
    );
    // Wrong image size, empty prompt, positions exceeded.
    let mut vit = MNIST::load(&mut m).unwrap();
    assert!(matches!(
        vit.classify(&[0; 10]),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut m = GPT2_TINY::Memory::new();
    let mut lm = GPT2_TINY::load(&mut m).unwrap();
    assert!(matches!(
        lm.generate(&[], 3, &mut Sampler::Greedy, |_| {}),
        Err(Error::BadDimension { .. })
    ));
    let positions = lm.blob().header().decoder.max_positions;
    let long: Vec<u32> = vec![1; positions + 1];
    assert!(matches!(
        lm.generate(&long, 1, &mut Sampler::Greedy, |_| {}),
        Err(Error::CacheFull { .. })
    ));
}

#[test]
// Whole shipped models: minutes under Miri (no unsafe here; the kernels have their own
// Miri-sized suites).
#[cfg_attr(miri, ignore)]
fn blob_errors_carry_what_was_expected_and_found() {
    let bytes = MNIST::BLOB.0.to_vec();
    let parse = |b: &[u8]| {
        let words: Vec<u32> = b
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        match Blob::parse(bytemuck::cast_slice(&words)) {
            Err(Error::BadBlob(e)) => e,
            other => panic!("expected BadBlob, got {other:?}"),
        }
    };
    let fix_sum = |b: &mut Vec<u8>| {
        let sum = core_attn::blob::fnv1a32(&b[12..]);
        b[8..12].copy_from_slice(&sum.to_le_bytes());
    };
    let mut v = bytes.clone();
    v[4] = 7;
    assert_eq!(
        parse(&v),
        BlobError::Version {
            supported: 1,
            found: 7
        }
    );
    assert_eq!(
        parse(&v).to_string(),
        "format version newer than this reader"
    );
    let mut v = bytes.clone();
    v[6] = 9;
    assert_eq!(parse(&v), BlobError::UnknownKind { found: 9 });
    let mut v = bytes.clone();
    v[..4].copy_from_slice(b"NOPE");
    assert_eq!(parse(&v), BlobError::BadMagic);
    // Total length word past the end.
    let mut v = bytes.clone();
    let total = bytes.len() + 16;
    v[12..16].copy_from_slice(&(total as u32).to_le_bytes());
    assert_eq!(
        parse(&v),
        BlobError::Truncated {
            what: "blob shorter than its header says (truncated)",
            needed: total,
            available: bytes.len(),
        }
    );
    // The first section's tag changed: index 0, the layout's tag (linear shape 0x20) vs found.
    let table = 16 + 4 * core_attn::blob::HEADER_WORDS + 4;
    let mut v = bytes.clone();
    let tag = u16::from_le_bytes([v[table], v[table + 1]]);
    v[table] = 0x7f;
    fix_sum(&mut v);
    assert_eq!(
        parse(&v),
        BlobError::SectionTag {
            index: 0,
            expected: tag,
            found: 0x7f,
        }
    );
    // A header dimension changed: the first buffer size that disagrees, header vs computed.
    let mut v = bytes.clone();
    let classes_word = 16 + 4 * 8;
    v[classes_word] = 11; // 10 classes -> 11: the logits buffer must be 11
    fix_sum(&mut v);
    assert_eq!(
        parse(&v),
        BlobError::Mismatch {
            what: "buffer sizes disagree with the dimensions",
            expected: 11,
            found: 10,
        }
    );
}

#[test]
fn header_checks_at_compile_time_name_the_problem() {
    // `ModelInfo::of` is a const fn that panics; called at run time its messages show.
    let msg = |bytes: Vec<u8>| {
        std::panic::catch_unwind(|| ModelInfo::of(&bytes))
            .err()
            .and_then(|e| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap()
    };
    assert_eq!(
        msg(b"not a model".to_vec()),
        "model blob: truncated inside the header (not a TATN model blob?)"
    );
    let mut bad_magic = MNIST::BLOB.0.to_vec();
    bad_magic[0] = b'X';
    assert_eq!(
        msg(bad_magic),
        "model blob: bad magic (not a TATN model blob)"
    );
    let mut bad_kind = MNIST::BLOB.0.to_vec();
    bad_kind[6] = 9;
    assert_eq!(msg(bad_kind), "model blob: unknown model kind");
    let mut bad_size = MNIST::BLOB.0.to_vec();
    // Header word 25 (x buffer size) off by one.
    bad_size[16 + 4 * 25] ^= 1;
    assert_eq!(
        msg(bad_size),
        "model blob: buffer sizes disagree with the dimensions"
    );
    let _ = ModelKind::VitClassifier;
}
