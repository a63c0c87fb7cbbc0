//! The four trained models that ship in `models/`: each committed blob re-packs bit-identically
//! from its committed checkpoint and calibration set, and int8 holds its accuracy against the
//! f32 reference on the committed held-out sets (issue thresholds: ViT int8 within 1 point of
//! float and ≥ 97%; digit-strip reader ≥ 90% whole strings in int8; char LM int8 perplexity
//! within 5% of float; Llama int8 perplexity within 5% of float).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tools(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tools"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run tools");
    assert!(
        out.status.success(),
        "tools {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value after `"key":` in the object that follows `"section":` (our JSON is flat enough).
fn number(json: &str, section: &str, key: &str) -> f64 {
    let s = &json[json.find(&format!("\"{section}\":")).expect(section)..];
    let k = &s[s.find(&format!("\"{key}\":")).expect(key) + key.len() + 3..];
    k[..k.find([',', '}']).unwrap()].parse().unwrap()
}

fn repacks_identically(model: &str, calibration: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.tatn");
    tools(&[
        "convert",
        &format!("models/{model}"),
        "-o",
        out.to_str().unwrap(),
        "--calibration",
        calibration,
    ]);
    let fresh = std::fs::read(&out).unwrap();
    let committed = std::fs::read(root().join(format!("models/{model}.tatn"))).unwrap();
    assert!(
        fresh == committed,
        "models/{model}.tatn is not what convert makes (run bash models/report.sh)"
    );
}

#[test]
fn vit_mnist() {
    let cal = "models/data/mnist_calib_64.npy";
    repacks_identically("vit-mnist", cal);
    let j = tools(&[
        "eval",
        "models/vit-mnist.tatn",
        "--reference",
        "models/vit-mnist",
        "--calibration",
        cal,
        "--data",
        "models/data/mnist_test_500.npy",
        "--labels",
        "models/data/mnist_test_500_labels.npy",
        "--json",
    ]);
    let (f, q) = (
        number(&j, "f32", "accuracy"),
        number(&j, "int8", "accuracy"),
    );
    assert!(f >= 0.97, "float accuracy {f}");
    assert!(q >= 0.97 && q >= f - 0.01, "int8 accuracy {q} vs float {f}");
}

#[test]
fn digit_reader() {
    let cal = "models/data/strips_calib_32.npy";
    repacks_identically("digit-reader", cal);
    let j = tools(&[
        "eval",
        "models/digit-reader.tatn",
        "--reference",
        "models/digit-reader",
        "--calibration",
        cal,
        "--data",
        "models/data/strips_test_100.npy",
        "--labels",
        "models/data/strips_test_100_labels.npy",
        "--json",
    ]);
    let q = number(&j, "int8", "exact_match");
    assert!(q >= 0.90, "int8 whole-string accuracy {q}");
}

#[test]
fn char_lm() {
    let cal = "models/data/kjv_calib_8x128.npy";
    repacks_identically("char-lm", cal);
    let j = tools(&[
        "eval",
        "models/char-lm.tatn",
        "--reference",
        "models/char-lm",
        "--calibration",
        cal,
        "--text",
        "models/data/kjv_val_excerpt.txt",
        "--json",
    ]);
    let (f, q) = (
        number(&j, "f32", "perplexity"),
        number(&j, "int8", "perplexity"),
    );
    assert!(q <= f * 1.05, "int8 perplexity {q} vs float {f}");
    // The README's sample command runs and continues the prompt with vocabulary text.
    let s = tools(&[
        "simulate",
        "models/char-lm.tatn",
        "--prompt",
        "And God said, Let there be ",
        "--max-new-tokens",
        "20",
        "--json",
    ]);
    assert!(s.contains("And God said, Let there be "), "{s}");
}

/// `llama-kjv` (issue 14's fourth model): the committed blob and its tokenizer sidecar re-pack
/// bit-identically from the committed llama2.c checkpoint, tokenizer and calibration set (the
/// command in models/README.md, with `--smooth`), and int8 perplexity on 16 held-out windows of 256 tokens
/// (validation text, never seen in training or calibration) is within 5% of the f32 reference.
/// Fails on a blob left from an earlier checkpoint (the 30-step smoke run first committed at
/// this path does not re-pack from the final checkpoint).
#[test]
fn llama_kjv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.tatn");
    let cal = "models/data/llama_calib_8x128.npy";
    tools(&[
        "convert",
        "models/llama-kjv/model.bin",
        "--tokenizer",
        "models/llama-kjv/tokenizer.bin",
        "--max-positions",
        "256",
        "--calibration",
        cal,
        "--smooth",
        "-o",
        out.to_str().unwrap(),
    ]);
    for (fresh, committed) in [
        (out.clone(), "models/llama-kjv.tatn"),
        (
            dir.path().join("m.tatn.tokenizer.bin"),
            "models/llama-kjv.tatn.tokenizer.bin",
        ),
    ] {
        assert!(
            std::fs::read(&fresh).unwrap() == std::fs::read(root().join(committed)).unwrap(),
            "{committed} is not what convert makes (run bash models/report.sh)"
        );
    }
    let j = tools(&[
        "eval",
        "models/llama-kjv.tatn",
        "--reference",
        "models/llama-kjv/model.bin",
        "--data",
        "models/data/llama_val_16x256.npy",
        "--json",
    ]);
    let (f, q) = (
        number(&j, "f32", "perplexity"),
        number(&j, "int8", "perplexity"),
    );
    assert!(f > 1.0 && f < 100.0, "f32 perplexity {f}");
    assert!(q <= f * 1.05, "int8 perplexity {q} vs float {f}");
}
