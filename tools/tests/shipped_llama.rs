//! The shipped Llama, `models/llama-kjv` (trained by `models/train_llama.py`), checked against
//! computations that do not share our code: the logits JAX computed at training time, the token
//! ids `sentencepiece` (the tokenizer's own library) gave for the held-out prompts, and the two
//! independent exports (llama2.c `.bin` with interleaved rotary pairs, Hugging Face directory
//! with `wq`/`wk` rows permuted to the half-split convention) read by the two importers.
//! The blob's re-pack and its int8 perplexity are in `shipped_models.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tools::checkpoint::npy::read_npy_f32;

const BIN: &str = "models/llama-kjv/model.bin";
const HF: &str = "models/llama-kjv";
const BLOB: &str = "models/llama-kjv.tatn";
const PROMPT_IDS: &str = "models/data/llama_prompt_ids.npy";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tools(args: &[&str]) -> Value {
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
    serde_json::from_slice(&out.stdout).expect("tools --json prints JSON")
}

/// `logits` of a `simulate --json` answer, flattened (prompt rows, positions, vocabulary).
fn logits(v: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    for prompt in v["logits"].as_array().expect("logits") {
        for row in prompt.as_array().unwrap() {
            out.extend(row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()));
        }
    }
    out
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("id list")
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "logit counts differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The held-out verse openings and the ids sentencepiece gave them (BOS first), as
/// `train_llama.py` wrote them.
fn prompts() -> Vec<(String, Vec<u64>)> {
    let text = std::fs::read_to_string(root().join("models/data/llama_prompts.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let p = v["prompts"].as_array().unwrap();
    let i = v["ids"].as_array().unwrap();
    assert!(p.len() >= 4 && p.len() == i.len());
    p.iter()
        .zip(i)
        .map(|(p, i)| (p.as_str().unwrap().to_string(), ids(i)))
        .collect()
}

/// Check (1): the llama2.c `.bin` and the HF directory, each through its own importer, give the
/// same f32 logits (within 1e-4) on two held-out token windows, and both equal the logits JAX
/// computed from the trained parameters (`jax_logits_prompt_ids.npy`). Fails on an HF export
/// without the `wq`/`wk` row permutation (rotary pairs mismatched: measured max |diff| 9.6 on
/// this model), and on either importer reading a matrix transposed or a layer out of order.
#[test]
fn both_exports_give_the_jax_logits() {
    let args = |m: &'static str| {
        [
            "simulate",
            m,
            "--input",
            PROMPT_IDS,
            "--max-new-tokens",
            "0",
            "--json",
        ]
    };
    let from_bin = logits(&tools(&args(BIN)));
    let from_hf = logits(&tools(&args(HF)));
    let (shape, jax) = read_npy_f32(&root().join("models/llama-kjv/jax_logits_prompt_ids.npy"))
        .expect("JAX logits");
    assert_eq!(shape.iter().product::<usize>(), from_bin.len());
    assert_eq!(shape[2], 512, "vocabulary");
    let jax: Vec<f64> = jax.into_iter().map(f64::from).collect();
    let d = max_diff(&from_bin, &from_hf);
    assert!(d <= 1e-4, ".bin vs HF logits differ by {d}");
    let d = max_diff(&from_bin, &jax);
    assert!(d <= 1e-4, ".bin vs JAX logits differ by {d}");
    let d = max_diff(&from_hf, &jax);
    assert!(d <= 1e-4, "HF vs JAX logits differ by {d}");
}

/// Check (4): `simulate` encodes each held-out prompt (through the checkpoint's `tokenizer.bin`
/// and through the blob's `.tokenizer.bin` sidecar) to exactly the ids `sentencepiece` gave it at
/// training time. Fails on an encoder without the dummy-prefix space (every prompt's first
/// piece is `▁`-prefixed) and on a `tokenizer.bin` whose scores are not sentencepiece's (merge
/// order decides the pieces).
#[test]
fn prompts_encode_as_sentencepiece_does() {
    for (text, expected) in prompts() {
        for model in [BIN, BLOB] {
            let v = tools(&[
                "simulate",
                model,
                "--prompt",
                &text,
                "--max-new-tokens",
                "0",
                "--json",
            ]);
            assert_eq!(
                ids(&v["generated"][0]),
                expected,
                "{model}: encoding of {text:?}"
            );
        }
    }
}

/// f32's margin between its two largest logits in `row`.
fn top2_margin(row: &[f64]) -> f64 {
    let (mut a, mut b) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for &x in row {
        if x > a {
            (a, b) = (x, a);
        } else if x > b {
            b = x;
        }
    }
    a - b
}

/// Check (2): int8 greedy decoding of the blob equals f32 greedy decoding of the checkpoint for
/// the first 16 new tokens (ids and printed text) on the held-out prompts, except at a near-tie
/// that int8's own error explains. Per prompt, on the rows where both runs saw the same tokens
/// (the parting row excluded): the int8 logits stay within `MAX_LOGIT_ERROR` of f32's, and where
/// the runs part, f32's top-2 margin is below twice int8's largest error on f32's two leading
/// logits of the earlier rows (a prediction from other rows, not the parting row's own error).
/// At least `MIN_EQUAL` prompts must match in full. Measured on the committed blob (packed with
/// `convert --smooth`): 3 of 6 prompts equal for all 16 tokens (2 of 6 without `--smooth`); the
/// others part at new tokens 1, 5 and 9 where f32's margins are 0.098, 0.104 and 0.016 against
/// leading-logit errors 0.45, 0.27 and 1.31 (`--nocapture` prints them). Guards against an int8
/// path that parts from f32 where f32 is confident or drifts in its logits (a mis-scaled or
/// mis-mapped tensor), and against a blob packed without `--smooth` (2 equal).
#[test]
fn int8_greedy_equals_f32_for_16_tokens() {
    /// Largest |int8 − f32| logit allowed on a shared prefix (measured 0.59–1.48 over all 512
    /// logits of logits up to ±16, 0.71–2.55 without `--smooth`; 0.27–1.31 on f32's two
    /// largest).
    const MAX_LOGIT_ERROR: f64 = 2.0;
    /// Prompts that must decode identically for 16 tokens (as measured).
    const MIN_EQUAL: usize = 3;
    let mut equal = 0;
    let all = prompts();
    for (text, expected) in &all {
        let run = |model: &str| {
            tools(&[
                "simulate",
                model,
                "--prompt",
                text,
                "--max-new-tokens",
                "16",
                "--json",
            ])
        };
        let (f, q) = (run(BIN), run(BLOB));
        let (gf, gq) = (ids(&f["generated"][0]), ids(&q["generated"][0]));
        assert!(gf.starts_with(expected), "{text:?}: prompt ids");
        assert!(gf.len() > expected.len(), "{text:?}: f32 generated nothing");
        let row = |v: &Value, t: usize| -> Vec<f64> {
            v["logits"][0][t]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let parted = gf.iter().zip(&gq).position(|(a, b)| a != b);
        // logits row t - 1 predicts the token at t; rows before the parting saw equal inputs
        let shared = parted.unwrap_or(gf.len().min(gq.len()));
        // int8's error: over all logits, and on f32's two largest (the ones greedy decoding
        // compares), measured on the rows before the parting row (that row is what is judged).
        let judged = if parted.is_some() { shared - 1 } else { shared };
        let (mut err_all, mut err_top): (f64, f64) = (0.0, 0.0);
        for t in 0..judged {
            let (rf, rq) = (row(&f, t), row(&q, t));
            err_all = err_all.max(max_diff(&rf, &rq));
            let mut order: Vec<usize> = (0..rf.len()).collect();
            order.sort_by(|&i, &j| rf[j].total_cmp(&rf[i]));
            for &i in &order[..2] {
                err_top = err_top.max((rf[i] - rq[i]).abs());
            }
        }
        assert!(
            err_all <= MAX_LOGIT_ERROR,
            "{text:?}: int8 logits differ from f32 by {err_all} on the shared prefix"
        );
        eprintln!(
            "{text:?}: parted at {parted:?} (prompt {}), f32 margin there {:?}, error on the \
             leading logits {err_top:.3}, on all {err_all:.3}",
            expected.len(),
            parted.map(|_| top2_margin(&row(&f, shared - 1))),
        );
        if parted.is_none() && gf.len() == gq.len() {
            assert_eq!(q["text"], f["text"], "{text:?}: int8 vs f32 text");
            equal += 1;
        } else {
            let m = top2_margin(&row(&f, shared - 1));
            assert!(
                m < 2.0 * err_top,
                "{text:?}: int8 parts from f32 at token {shared} where f32's top-2 margin {m} \
                 is not below twice int8's error on the leading logits {err_top}"
            );
        }
    }
    assert!(
        equal >= MIN_EQUAL,
        "{equal} prompts equal for 16 tokens (of {}), expected at least {MIN_EQUAL}",
        all.len()
    );
}
