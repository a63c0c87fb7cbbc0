//! The int8 path end to end through the `tools` binary: convert each HF fixture (calibrating on
//! the fixture's own inputs — acceptable for these random-weight models, whose only purpose is
//! to test arithmetic; real models must calibrate on held-out data), simulate the blob, and
//! compare with the fixture's float outputs (computed by Hugging Face, not by this project).
//! Also: determinism, `inspect`, and corrupt blobs rejected with one exact line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tools::checkpoint::npy::{read_npy_f32, read_npy_i64};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn tools(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tools"))
        .args(args)
        .output()
        .expect("run tools")
}

fn ok(out: &Output) -> &[u8] {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    &out.stdout
}

fn json_ok(out: &Output) -> Value {
    serde_json::from_slice(ok(out)).expect("stdout is one JSON value")
}

/// Convert `name` calibrating on `calib` (a file of the fixture) into `dir/out`.
fn convert(name: &str, calib: &str, dir: &Path, out: &str) -> PathBuf {
    let fx = fixture(name);
    let blob = dir.join(out);
    ok(&tools(&[
        "convert",
        fx.to_str().unwrap(),
        "-o",
        blob.to_str().unwrap(),
        "--calibration",
        fx.join(calib).to_str().unwrap(),
    ]));
    blob
}

fn simulate(blob: &Path, input: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "simulate",
        blob.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    json_ok(&tools(&args))
}

fn floats(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        x => vec![x.as_f64().expect("number") as f32],
    }
}

fn ids(v: &Value) -> Vec<Vec<i64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect()
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// (argmax, top1 − top2).
fn top(v: &[f32]) -> (usize, f32) {
    let mut i = 0;
    for (j, &x) in v.iter().enumerate() {
        if x > v[i] {
            i = j;
        }
    }
    let second = v
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .map(|(_, &x)| x)
        .fold(f32::NEG_INFINITY, f32::max);
    (i, v[i] - second)
}

/// Top-1 must agree wherever the float margin exceeds this (logit units). The int8 logits'
/// LSB is about max|logit|/127 ≈ 0.02–0.04 here; 0.1 leaves room for a few LSBs of error.
const MARGIN: f32 = 0.1;

#[test]
fn vit_int8_logits_match_hf_float() {
    let dir = tempfile::tempdir().unwrap();
    let blob = convert("hf-vit-tiny", "inputs.npy", dir.path(), "vit.blob");
    let fx = fixture("hf-vit-tiny");
    let v = simulate(&blob, &fx.join("inputs.npy"), &[]);
    let got = floats(&v["logits"]);
    let (shape, want) = read_npy_f32(&fx.join("logits.npy")).unwrap();
    let c = cosine(&got, &want);
    eprintln!("vit: logits cosine {c:.5}");
    assert!(c >= 0.99, "cosine {c}");
    let k = shape[1];
    for (i, (g, w)) in got.chunks(k).zip(want.chunks(k)).enumerate() {
        let (t, margin) = top(w);
        if margin > MARGIN {
            assert_eq!(top(g).0, t, "image {i}: float margin {margin}");
        }
        assert_eq!(v["top1"][i].as_u64().unwrap() as usize, top(g).0);
    }
}

#[test]
fn gpt2_int8_greedy_and_logits_match_hf_float() {
    let dir = tempfile::tempdir().unwrap();
    let blob = convert("hf-gpt2-tiny", "input_ids.npy", dir.path(), "g.blob");
    let fx = fixture("hf-gpt2-tiny");
    let v = simulate(&blob, &fx.join("input_ids.npy"), &[]);
    // Prompt logits (teacher-forced over the prompt, both rows) vs logits.npy.
    let (shape, want) = read_npy_f32(&fx.join("logits.npy")).unwrap();
    let (t, vocab) = (shape[1], shape[2]);
    let rows = v["logits"].as_array().unwrap();
    let mut got = Vec::new();
    for r in rows {
        got.extend(floats(&Value::Array(r.as_array().unwrap()[..t].to_vec())));
    }
    let c = cosine(&got, &want);
    eprintln!("gpt2: prompt logits cosine {c:.5}");
    assert!(c >= 0.99, "prompt logits cosine {c}");
    // Greedy continuation of row 0 vs greedy.npy: every step whose float margin (from
    // greedy_logits.npy) exceeds MARGIN must agree; on these fixtures all 16 do.
    let (_, greedy) = read_npy_i64(&fx.join("greedy.npy")).unwrap();
    let (_, glogits) = read_npy_f32(&fx.join("greedy_logits.npy")).unwrap();
    let gen = &ids(&v["generated"])[0];
    assert_eq!(gen.len(), greedy.len());
    for p in t..greedy.len() {
        let (_, margin) = top(&glogits[(p - 1) * vocab..p * vocab]);
        if gen[..p] == greedy[..p] && margin > MARGIN {
            assert_eq!(gen[p], greedy[p], "position {p}, float margin {margin}");
        }
    }
    assert_eq!(gen, &greedy, "whole greedy sequence");
    let row0 = floats(&Value::Array(rows[0].as_array().unwrap().clone()));
    let c = cosine(&row0, &glogits);
    eprintln!("gpt2: greedy logits cosine {c:.5}");
    assert!(c >= 0.99, "greedy logits cosine {c}");
}

#[test]
fn encoder_decoder_int8_generates_like_hf() {
    let dir = tempfile::tempdir().unwrap();
    let name = "hf-vision-encoder-decoder-tiny";
    let blob = convert(name, "inputs.npy", dir.path(), "e.blob");
    let fx = fixture(name);
    let v = simulate(&blob, &fx.join("inputs.npy"), &["--max-new-tokens", "8"]);
    // What holds on this fixture: the greedy sequences are identical to HF's (including the
    // eos -> pad rule on row 1), and the teacher-forced logits over them have cosine >= 0.99.
    let (_, greedy) = read_npy_i64(&fx.join("greedy.npy")).unwrap();
    let gen: Vec<i64> = ids(&v["generated"]).concat();
    assert_eq!(gen, greedy);
    let (_, want) = read_npy_f32(&fx.join("greedy_logits.npy")).unwrap();
    let got = floats(&v["logits"]);
    let c = cosine(&got, &want);
    eprintln!("encoder-decoder: greedy logits cosine {c:.5}");
    assert!(c >= 0.99, "greedy logits cosine {c}");
}

#[test]
fn convert_is_deterministic_and_inspect_reports() {
    let dir = tempfile::tempdir().unwrap();
    for (name, calib) in [
        ("hf-vit-tiny", "inputs.npy"),
        ("hf-gpt2-tiny", "input_ids.npy"),
        ("hf-vision-encoder-decoder-tiny", "inputs.npy"),
    ] {
        let a = convert(name, calib, dir.path(), "a.blob");
        let b = convert(name, calib, dir.path(), "b.blob");
        let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        assert_eq!(a, b, "{name}");
    }
    // Without --calibration: synthesized inputs, still deterministic.
    let fx = fixture("hf-gpt2-tiny");
    let mut blobs = Vec::new();
    for out in ["s1.blob", "s2.blob"] {
        let p = dir.path().join(out);
        ok(&tools(&[
            "convert",
            fx.to_str().unwrap(),
            "-o",
            p.to_str().unwrap(),
        ]));
        blobs.push(std::fs::read(&p).unwrap());
    }
    assert_eq!(blobs[0], blobs[1]);
    let p = dir.path().join("s1.blob");
    let v = json_ok(&tools(&["inspect", p.to_str().unwrap(), "--json"]));
    assert_eq!(v["kind"], "decoder-lm");
    assert_eq!(v["flash_bytes"].as_u64().unwrap() as usize, blobs[0].len());
    assert_eq!(v["decoder"]["lm_head"], "tied");
    // KV cache: 2 layers x (keys + values) x 32 positions x 32 features.
    assert_eq!(v["ram_bytes"]["kv_cache"], 2 * 2 * 32 * 32);
    // Per token at full context: 2 layers x (4·32² + 2·32·128 + 2·32·32) + head 64·32.
    assert_eq!(
        v["decoder"]["macs_per_token_full_context"],
        2 * (4 * 1024 + 2 * 32 * 128 + 2 * 32 * 32) + 64 * 32
    );
}

#[test]
fn convert_errors_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.blob");
    let fx = fixture("hf-vit-tiny");
    // Token ids are not images: error, and neither the blob nor a temporary file remains.
    let calib = fixture("hf-gpt2-tiny").join("input_ids.npy");
    let r = tools(&[
        "convert",
        fx.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--calibration",
        calib.to_str().unwrap(),
    ]);
    assert!(!r.status.success());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn corrupt_blobs_are_rejected_with_one_exact_line() {
    let dir = tempfile::tempdir().unwrap();
    let blob = convert("hf-vit-tiny", "inputs.npy", dir.path(), "vit.blob");
    let good = std::fs::read(&blob).unwrap();
    let input = fixture("hf-vit-tiny").join("inputs.npy");
    let bad = dir.path().join("bad.blob");
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    let mut magic = good.clone();
    magic[..4].copy_from_slice(b"NOPE");
    let mut future = good.clone();
    future[4..6].copy_from_slice(&2u16.to_le_bytes());
    let cases: [(&[u8], &str); 4] = [
        (&flipped, "checksum mismatch (corrupt blob)"),
        (
            &good[..good.len() - 1],
            "blob shorter than its header says (truncated)",
        ),
        (&magic, "bad magic (not a TATN model blob)"),
        (&future, "format version newer than this reader"),
    ];
    for (bytes, reason) in cases {
        std::fs::write(&bad, bytes).unwrap();
        let r = tools(&[
            "simulate",
            bad.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(1));
        assert!(r.stdout.is_empty());
        assert_eq!(
            String::from_utf8(r.stderr).unwrap(),
            format!("error: {}: invalid model blob: {reason}\n", bad.display())
        );
    }
}

/// Held-out check: calibrate on the synthesized set (no `--calibration`), evaluate on the
/// fixture inputs the converter never saw.
#[test]
fn synthetic_calibration_generalizes_to_fixture_inputs() {
    let dir = tempfile::tempdir().unwrap();
    for (name, input, want_file, extra) in [
        ("hf-vit-tiny", "inputs.npy", "logits.npy", &[][..]),
        (
            "hf-gpt2-tiny",
            "input_ids.npy",
            "greedy_logits.npy",
            &[][..],
        ),
        (
            "hf-vision-encoder-decoder-tiny",
            "inputs.npy",
            "greedy_logits.npy",
            &["--max-new-tokens", "8"][..],
        ),
    ] {
        let fx = fixture(name);
        let blob = dir.path().join(format!("{name}.blob"));
        ok(&tools(&[
            "convert",
            fx.to_str().unwrap(),
            "-o",
            blob.to_str().unwrap(),
        ]));
        let v = simulate(&blob, &fx.join(input), extra);
        let (_, want) = read_npy_f32(&fx.join(want_file)).unwrap();
        let got = if name == "hf-gpt2-tiny" {
            // Row 0's teacher-forced logits over its generated sequence vs greedy_logits.npy
            // (only comparable when the int8 greedy path equals HF's, which it must here).
            let (_, greedy) = read_npy_i64(&fx.join("greedy.npy")).unwrap();
            assert_eq!(ids(&v["generated"])[0], greedy, "{name}");
            floats(&v["logits"][0])
        } else if name == "hf-vit-tiny" {
            floats(&v["logits"])
        } else {
            let (_, greedy) = read_npy_i64(&fx.join("greedy.npy")).unwrap();
            assert_eq!(ids(&v["generated"]).concat(), greedy, "{name}");
            floats(&v["logits"])
        };
        let c = cosine(&got, &want);
        eprintln!("{name} (synthetic calibration): cosine {c:.5}");
        assert!(c >= 0.98, "{name}: cosine {c}");
    }
}

/// `10·log10(Σ want² / Σ (got − want)²)` in dB.
fn sqnr_db(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let s: f64 = want.iter().map(|&w| (w as f64).powi(2)).sum();
    let n: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w as f64).powi(2))
        .sum();
    10.0 * (s / n).log10()
}

/// xorshift64*: held-out calibration data drawn here, not from the fixture files.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Dequantized int8 logits compared in absolute terms with Hugging Face's float logits, on
/// inputs that calibration never saw (issue #17 item 1): cosine and top-1 are blind to a
/// wrong output scale, SQNR is not. Calibration: 16 fresh uniform [-1, 1) images (the
/// fixtures' input distribution, another seed) or 8 × 28 fresh random ids; evaluation: the
/// fixtures' own inputs and HF's logits.
///
/// Bound: measured 28.5 (ViT), 27.0 (GPT-2), 27.3 (encoder–decoder) dB here; 22 dB leaves
/// 5 dB of margin below the lowest and catches any output-scale error beyond ±8 %
/// (a scale error `e` alone caps SQNR at `−20·log10|e|`: 6.0 dB at 1.5×, 21.9 dB at 1.08×).
///
/// Injected: the blob header's logits scale × 1.5 (`blob/header.rs`, `logits_scale_bits`) → fails
/// with `hf-vit-tiny: int8 logits SQNR 5.86 dB < 22 dB`.
#[test]
fn int8_logits_sqnr_on_held_out_inputs() {
    const MIN_SQNR_DB: f64 = 22.0;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5EED_0017_0000_0001);
    let images = dir.path().join("calib_images.npy");
    let n_img = 16;
    let pixels: Vec<f32> = (0..n_img * 28 * 28).map(|_| rng.uniform()).collect();
    tools::checkpoint::npy::write_npy_f32(&images, &[n_img, 1, 28, 28], &pixels).unwrap();
    let id_file = dir.path().join("calib_ids.npy");
    let ids_data: Vec<i64> = (0..8 * 28).map(|_| (rng.next() % 64) as i64).collect();
    tools::checkpoint::npy::write_npy_i64(&id_file, &[8, 28], &ids_data).unwrap();
    for (name, calib, input, want_file, extra) in [
        ("hf-vit-tiny", &images, "inputs.npy", "logits.npy", &[][..]),
        (
            "hf-gpt2-tiny",
            &id_file,
            "input_ids.npy",
            "greedy_logits.npy",
            &[][..],
        ),
        (
            "hf-vision-encoder-decoder-tiny",
            &images,
            "inputs.npy",
            "greedy_logits.npy",
            &["--max-new-tokens", "8"][..],
        ),
    ] {
        let fx = fixture(name);
        let blob = dir.path().join(format!("{name}.blob"));
        ok(&tools(&[
            "convert",
            fx.to_str().unwrap(),
            "-o",
            blob.to_str().unwrap(),
            "--calibration",
            calib.to_str().unwrap(),
        ]));
        let v = simulate(&blob, &fx.join(input), extra);
        let (_, want) = read_npy_f32(&fx.join(want_file)).unwrap();
        let got = match name {
            "hf-vit-tiny" => floats(&v["logits"]),
            // Teacher-forced logits over the generated sequences: comparable with HF's
            // greedy_logits only where the sequences are HF's (asserted).
            "hf-gpt2-tiny" => {
                let (_, greedy) = read_npy_i64(&fx.join("greedy.npy")).unwrap();
                assert_eq!(ids(&v["generated"])[0], greedy, "{name}");
                floats(&v["logits"][0])
            }
            _ => {
                let (_, greedy) = read_npy_i64(&fx.join("greedy.npy")).unwrap();
                assert_eq!(ids(&v["generated"]).concat(), greedy, "{name}");
                floats(&v["logits"])
            }
        };
        let db = sqnr_db(&got, &want);
        eprintln!("{name}: int8 logits SQNR {db:.2} dB (held-out calibration)");
        assert!(
            db >= MIN_SQNR_DB,
            "{name}: int8 logits SQNR {db:.2} dB < {MIN_SQNR_DB} dB"
        );
    }
}
