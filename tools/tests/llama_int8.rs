//! Llama int8 path (issue 14, stage 2) on the vendored random-weight fixtures: `convert` →
//! blob → core-attn's int8 runner against the f32 reference (`llama::forward`, itself checked
//! against `run.c` / `transformers` in `llama.rs`), on held-out prompts (the fixtures' own
//! prompts and seeded random ones, never the calibration set: `convert`'s synthetic set); the
//! CLI (`convert`, `inspect`, `simulate`, `eval`) and its error messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tools::checkpoint::npy::{read_npy_i64, write_npy_i64};
use tools::float::ops::argmax;
use tools::int8::AlignedBlob;
use tools::llama::forward::{generate, logits};
use tools::llama::{int8, load, Format, LlamaModel};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn ids(path: &Path) -> Vec<usize> {
    read_npy_i64(path)
        .unwrap()
        .1
        .iter()
        .map(|&x| x as usize)
        .collect()
}

fn models() -> Vec<(&'static str, LlamaModel, PathBuf)> {
    let l2c = fixture("llama2c-tiny");
    let hf = fixture("hf-llama-tiny");
    vec![
        (
            "llama2c-tiny",
            load(&l2c.join("model.bin"), Format::Llama2c).unwrap(),
            l2c.join("model.bin"),
        ),
        (
            "hf-llama-tiny",
            load(&hf, Format::HuggingFace).unwrap(),
            hf.clone(),
        ),
    ]
}

/// Held-out prompts: the fixture's prompt, and 3 seeded random ones (BOS first) of 12 ids.
fn held_out(name: &str, m: &LlamaModel) -> Vec<Vec<usize>> {
    let mut v = vec![match name {
        "llama2c-tiny" => ids(&fixture("llama2c-tiny").join("prompt_ids.npy")),
        _ => ids(&fixture("hf-llama-tiny").join("input_ids.npy"))[..12].to_vec(),
    }];
    let mut state = 0xDEAD_BEEF_u64;
    for _ in 0..3 {
        let mut p = vec![1usize];
        while p.len() < 12 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            p.push((state % m.config.vocab_size as u64) as usize);
        }
        v.push(p);
    }
    v
}

fn sqnr_db(reference: &[f32], test: &[f32]) -> f64 {
    let s: f64 = reference.iter().map(|&x| (x as f64).powi(2)).sum();
    let n: f64 = reference
        .iter()
        .zip(test)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    10.0 * (s / n).log10()
}

/// Logits SQNR floor (dB), int8 against f32, over every position of the held-out prompts.
/// Measured: llama2c-tiny 25.1 dB, hf-llama-tiny 24.0 dB; the floor sits 2 dB under the lower.
const LOGITS_SQNR_DB: f64 = 22.0;

/// int8 logits of the converted blob against the f32 reference on held-out prompts.
///
/// Injected: the blob's RoPE pairs of the other convention (the `style` values swapped in
/// `write_llama`) → fails (llama2c-tiny 7.0 dB).
#[test]
fn int8_logits_track_f32_on_held_out_prompts() {
    for (name, m, _) in models() {
        let bytes = int8::convert(&m, None, None).unwrap();
        let blob = AlignedBlob::from_bytes(&bytes);
        let blob = blob.parse(Path::new(name)).unwrap();
        let (mut f, mut q) = (Vec::new(), Vec::new());
        for p in held_out(name, &m) {
            f.extend(logits(&m, &p).unwrap().into_iter().flatten());
            q.extend(int8::logits(&blob, &p).unwrap().into_iter().flatten());
        }
        let db = sqnr_db(&f, &q);
        eprintln!("{name}: logits SQNR {db:.2} dB");
        assert!(
            db >= LOGITS_SQNR_DB,
            "{name}: {db:.2} dB < {LOGITS_SQNR_DB}"
        );
    }
}

/// Greedy decoding, int8 against f32, 20 new tokens from each held-out prompt. These fixtures
/// have random weights, so their top logits are often nearly tied and greedy paths part early
/// even at 24 dB (measured new tokens equal: llama2c-tiny 9, 16, 3, 20; hf-llama-tiny 20, 0,
/// 9, 15). What must hold: the paths part only at a near-tie — where int8 picks another id
/// than f32, that id's f32 logit is within a quarter of the f32 logits' RMS of the f32 best
/// (the int8 logits' error RMS is about 6 % of it at 24 dB) — and over all prompts most new
/// tokens agree (measured 92 of 160; bound 60).
///
/// Injected: int8 generation with argmax replaced by the second-best id → fails (the margin
/// at the first token is not a near-tie).
#[test]
fn int8_greedy_parts_from_f32_only_at_near_ties() {
    let mut total = 0;
    for (name, m, _) in models() {
        let bytes = int8::convert(&m, None, None).unwrap();
        let blob = AlignedBlob::from_bytes(&bytes);
        let blob = blob.parse(Path::new(name)).unwrap();
        let mut same = Vec::new();
        for p in held_out(name, &m) {
            let f = generate(&m, &p, 20).unwrap().ids;
            let q = int8::generate(&blob, &p, 20).unwrap().ids;
            let n = f[p.len()..]
                .iter()
                .zip(&q[p.len()..])
                .take_while(|(a, b)| a == b)
                .count();
            same.push(n);
            total += n;
            let shared = &q[..p.len() + n];
            if f.len() != q.len() || n < f.len() - p.len() {
                // Both paths share `shared`; each picks its next id (or its stop) from its own
                // logits there: the argmax of each.
                let row = logits(&m, shared).unwrap().pop().unwrap();
                let qrow = int8::logits(&blob, shared).unwrap().pop().unwrap();
                let (fi, qi) = (argmax(&row), argmax(&qrow));
                assert_ne!(fi, qi, "{name}: paths part where both pick the same id");
                let (best, picked) = (row[fi], row[qi]);
                let rms = (row.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / row.len() as f64)
                    .sqrt();
                let margin = (best - picked) as f64;
                eprintln!("{name}: parts after {n}: f32 margin {margin:.4}, logits RMS {rms:.3}");
                assert!(
                    margin <= 0.25 * rms,
                    "{name}: int8 chose an id {margin:.4} below the f32 best (RMS {rms:.3})"
                );
            }
        }
        eprintln!("{name}: new tokens equal {same:?}");
    }
    assert!(total >= 60, "{total} of 160 new tokens equal");
}

// ---------------------------------------------------------------------------------------------
// CLI.

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tools"))
        .args(args)
        .output()
        .expect("run tools")
}

fn ok(args: &[&str]) -> String {
    let r = run(args);
    assert!(
        r.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8(r.stdout).unwrap()
}

/// Exit 1, nothing on stdout, exactly `error: {want}` on stderr.
fn fails(args: &[&str], want: &str) {
    let r = run(args);
    assert_eq!(
        String::from_utf8_lossy(&r.stderr),
        format!("error: {want}\n"),
        "{args:?}"
    );
    assert_eq!(r.status.code(), Some(1), "{args:?}");
    assert!(r.stdout.is_empty(), "{args:?}");
}

/// `convert` writes the blob and its tokenizer sidecar (same bytes on a second run);
/// `simulate` on the blob prints the int8 runner's greedy ids, logits and text (equal to the
/// library's `int8::generate` and the tokenizer's decoding), `inspect` its dimensions and
/// memory, `eval` int8 against f32 perplexity.
#[test]
fn cli_convert_simulate_inspect_eval_llama2c() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("l2c.tatn");
    let o = out.to_str().unwrap();
    let bin = fixture("llama2c-tiny").join("model.bin");
    let b = bin.to_str().unwrap();
    let said = ok(&["convert", b, "-o", o]);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(said, format!("wrote {o} ({} bytes, llama)\n", bytes.len()));
    assert_eq!(
        std::fs::read(tmp.path().join("l2c.tatn.tokenizer.bin")).unwrap(),
        std::fs::read(fixture("llama2c-tiny").join("tokenizer.bin")).unwrap()
    );
    ok(&["convert", b, "-o", o]);
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "deterministic");

    let m = load(&bin, Format::Llama2c).unwrap();
    let aligned = AlignedBlob::from_bytes(&bytes);
    let blob = aligned.parse(&out).unwrap();
    let prompt = "In the beginning God";
    let v: Value = serde_json::from_str(&ok(&[
        "simulate",
        o,
        "--prompt",
        prompt,
        "--max-new-tokens",
        "8",
        "--json",
    ]))
    .unwrap();
    let tok = tools::llama::tokenizer::Tokenizer::read(
        &fixture("llama2c-tiny").join("tokenizer.bin"),
        m.config.vocab_size,
    )
    .unwrap();
    let p = tok.encode(prompt).unwrap();
    let g = int8::generate(&blob, &p, 8).unwrap();
    let got: Vec<usize> = v["generated"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(got, g.ids);
    assert_eq!(v["logits"][0].as_array().unwrap().len(), g.logits.len());
    assert_eq!(v["text"][0].as_str().unwrap(), tok.decode(&g.ids));
    // `--tokenizer FILE` on a blob is read instead of the sidecar (bug it guards: the option
    // refused for blobs, as it once was, or silently ignored).
    let tok_path = fixture("llama2c-tiny").join("tokenizer.bin");
    let with_tokenizer = ok(&[
        "simulate",
        o,
        "--prompt",
        prompt,
        "--max-new-tokens",
        "8",
        "--json",
        "--tokenizer",
        tok_path.to_str().unwrap(),
    ]);
    assert_eq!(serde_json::from_str::<Value>(&with_tokenizer).unwrap(), v);
    let missing = tmp.path().join("missing-tokenizer.bin");
    let r = run(&[
        "simulate",
        o,
        "--prompt",
        prompt,
        "--tokenizer",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("missing-tokenizer.bin"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    // The blob carries the pieces: a device can print the text.
    let vocab = blob.vocab().unwrap();
    assert_eq!(
        vocab.text(p[2] as u32).unwrap().as_bytes(),
        &tok.pieces[p[2]][..]
    );

    let i: Value = serde_json::from_str(&ok(&["inspect", o, "--json"])).unwrap();
    assert_eq!(i["kind"], "llama");
    let l = &i["llama"];
    assert_eq!(
        (l["heads"].as_u64(), l["kv_heads"].as_u64()),
        (Some(6), Some(2))
    );
    // KV cache: 2 (k, v) · 2 layers · 64 positions · 2 kv heads · 8.
    assert_eq!(i["ram_bytes"]["kv_cache"], 2 * 2 * 64 * 2 * 8);
    assert_eq!(i["flash_bytes"].as_u64(), Some(bytes.len() as u64));

    let text = tmp.path().join("text.txt");
    std::fs::write(
        &text,
        "In the beginning God created the heaven and the earth. ".repeat(4),
    )
    .unwrap();
    let e: Value = serde_json::from_str(&ok(&[
        "eval",
        o,
        "--reference",
        b,
        "--text",
        text.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    let n = tok
        .encode(&std::fs::read_to_string(&text).unwrap())
        .unwrap()
        .len();
    assert_eq!(
        e["tokens"].as_u64(),
        Some(n as u64 - 1 - (e["windows"].as_u64().unwrap() - 1))
    );
    let ratio = e["perplexity_ratio"].as_f64().unwrap();
    // Measured 1.01 on this random model; a 5 % bound as issue 14 sets for trained models.
    assert!((ratio - 1.0).abs() < 0.05, "perplexity ratio {ratio}");
}

/// `convert --max-positions N` cuts the context (RoPE table, KV cache) and `eval` runs the
/// reference at the same context; out-of-range values are refused.
#[test]
fn cli_max_positions() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("hf16.tatn");
    let o = out.to_str().unwrap();
    let h = s(&fixture("hf-llama-tiny"));
    ok(&["convert", &h, "-o", o, "--max-positions", "16"]);
    let i: Value = serde_json::from_str(&ok(&["inspect", o, "--json"])).unwrap();
    assert_eq!(i["llama"]["max_positions"], 16);
    // 2 (k, v) · 2 layers · 16 positions · 2 kv heads · 8.
    assert_eq!(i["ram_bytes"]["kv_cache"], 2 * 2 * 16 * 2 * 8);
    let e: Value = serde_json::from_str(&ok(&[
        "eval",
        o,
        "--reference",
        &h,
        "--data",
        &s(&fixture("hf-llama-tiny").join("input_ids.npy")),
        "--json",
    ]))
    .unwrap();
    assert_eq!(e["tokens"], 22);
    fails(
        &["convert", &h, "-o", o, "--max-positions", "65"],
        "invalid input: --max-positions 65 outside 1..=64 (the checkpoint's sequence length)",
    );
    fails(
        &[
            "simulate",
            o,
            "--input",
            &s(&fixture("hf-llama-tiny").join("input_ids.npy")),
        ],
        "invalid input: prompt of 12 tokens + 16 new tokens needs 28 positions, the model has 16",
    );
}

/// Llama-specific errors of the CLI, each one line naming what is wrong.
#[test]
fn cli_llama_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("hf.tatn");
    let o = out.to_str().unwrap();
    let hf = fixture("hf-llama-tiny");
    let h = hf.to_str().unwrap();
    ok(&["convert", h, "-o", o]);
    assert!(!tmp.path().join("hf.tatn.tokenizer.bin").exists());
    fails(
        &["simulate", o, "--prompt", "hi"],
        &format!("invalid input: --prompt needs a tokenizer: --tokenizer FILE (llama2.c tokenizer.bin) or {o}.tokenizer.bin (written by convert --tokenizer)"),
    );
    fails(
        &["simulate", o, "--prompt", "hi", "--vocab", "x.json"],
        "invalid input: --vocab is for character LMs; a Llama model takes --tokenizer FILE (llama2.c tokenizer.bin)",
    );
    let ids_file = tmp.path().join("ids.npy");
    write_npy_i64(&ids_file, &[1, 3], &[1, 200, 3]).unwrap();
    let i = ids_file.to_str().unwrap();
    fails(
        &["simulate", o, "--input", i],
        "invalid input: token id 200 out of range (vocab_size 96)",
    );
    fails(
        &[
            "simulate",
            o,
            "--input",
            &s(&hf.join("input_ids.npy")),
            "--max-new-tokens",
            "60",
        ],
        "invalid input: prompt of 12 tokens + 60 new tokens needs 72 positions, the model has 64",
    );
    fails(
        &["eval", o, "--data", i],
        "invalid input: eval of a blob needs --reference CHECKPOINT (the Llama checkpoint it was converted from)",
    );
    let gpt2 = fixture("hf-gpt2-tiny");
    fails(
        &["eval", o, "--reference", &s(&gpt2), "--data", i],
        &format!("invalid input: {}: not a Llama checkpoint (llama2.c .bin or LlamaForCausalLM directory), but {o} is a Llama blob", gpt2.display()),
    );
    let g = s(&gpt2);
    for flag in [&["--tokenizer", "t.bin"][..], &["--smooth"]] {
        let mut args = vec!["convert", &g, "-o", o];
        args.extend(flag);
        fails(
            &args,
            "invalid input: --tokenizer, --max-positions and --smooth are for Llama checkpoints (llama2.c .bin or a Hugging Face Llama directory)",
        );
    }
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}
