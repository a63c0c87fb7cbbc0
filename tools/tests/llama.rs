//! Llama f32 path (issue 14, stage 1) against the vendored references: `llama2c-tiny` (what
//! llama2.c's `run.c` computed and printed) and `hf-llama-tiny` (`transformers`
//! `LlamaForCausalLM` with grouped-query attention), plus malformed-input messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tools::checkpoint::npy::{read_npy_f32, read_npy_i64, write_npy_i64};
use tools::checkpoint::safetensors::{read_safetensors, write_safetensors, Dtype};
use tools::llama::forward::{generate, logits};
use tools::llama::tokenizer::Tokenizer;
use tools::llama::{hf, llama2c, RopeStyle};

const TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn l2c(file: &str) -> PathBuf {
    fixture("llama2c-tiny").join(file)
}

fn ids(path: &Path) -> (Vec<usize>, Vec<usize>) {
    let (shape, v) = read_npy_i64(path).unwrap();
    (shape, v.iter().map(|&x| x as usize).collect())
}

/// Max |a - b| over two `[T][V]` logit sets, the second flat.
fn max_abs_diff(got: &[Vec<f32>], want: &[f32]) -> f32 {
    let flat: Vec<f32> = got.iter().flatten().copied().collect();
    assert_eq!(flat.len(), want.len(), "logit count");
    flat.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn expected_text() -> String {
    let v: Value = serde_json::from_slice(&std::fs::read(l2c("expected.json")).unwrap()).unwrap();
    v["text"].as_str().unwrap().to_string()
}

fn prompt() -> String {
    let v: Value = serde_json::from_slice(&std::fs::read(l2c("expected.json")).unwrap()).unwrap();
    v["prompt"].as_str().unwrap().to_string()
}

#[test]
fn llama2c_prompt_encoding_equals_run_c() {
    let m = llama2c::load(&l2c("model.bin")).unwrap();
    let t = Tokenizer::read(&l2c("tokenizer.bin"), m.config.vocab_size).unwrap();
    let (_, want) = ids(&l2c("prompt_ids.npy"));
    assert_eq!(t.encode(&prompt()).unwrap(), want);
}

#[test]
fn llama2c_logits_greedy_ids_and_text_equal_run_c() {
    let m = llama2c::load(&l2c("model.bin")).unwrap();
    let c = &m.config;
    assert_eq!(
        (c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads),
        (48, 128, 2, 6, 2)
    );
    assert_eq!(
        (c.vocab_size, c.seq_len, c.rope),
        (512, 64, RopeStyle::Interleaved)
    );
    assert!(
        m.classifier.is_some(),
        "negative vocab_size: unshared classifier"
    );

    // Teacher-forced logits over run.c's 40 positions.
    let (shape, greedy) = ids(&l2c("greedy_ids.npy"));
    assert_eq!(shape, vec![1, 40]);
    let (lshape, want) = read_npy_f32(&l2c("logits.npy")).unwrap();
    assert_eq!(lshape, vec![1, 40, 512]);
    let got = logits(&m, &greedy).unwrap();
    let d = max_abs_diff(&got, &want);
    eprintln!("llama2c-tiny: max abs logits diff {d:.2e}");
    assert!(d <= TOL, "max abs diff {d} > {TOL}");

    // Greedy decoding from the prompt: run.c with -n 40 feeds 40 positions and prints the
    // token chosen at each, i.e. 31 new tokens after the 10-token prompt.
    let (_, p) = ids(&l2c("prompt_ids.npy"));
    let g = generate(&m, &p, 40 + 1 - p.len()).unwrap();
    assert_eq!(&g.ids[..40], greedy.as_slice());
    assert_eq!(g.ids.len(), 41);
    assert_eq!(g.logits.len(), 41);
    assert!(max_abs_diff(&g.logits[..40], &want) <= TOL);
    let t = Tokenizer::read(&l2c("tokenizer.bin"), 512).unwrap();
    // run.c prints a newline after the last token.
    assert_eq!(t.decode(&g.ids) + "\n", expected_text());
}

#[test]
fn hf_llama_gqa_logits_and_greedy_equal_transformers() {
    let dir = fixture("hf-llama-tiny");
    let m = hf::load(&dir).unwrap();
    let c = &m.config;
    assert_eq!((c.n_heads, c.n_kv_heads, c.head_dim), (6, 2, 8));
    assert_eq!(c.rope, RopeStyle::HalfSplit);
    let (shape, input) = ids(&dir.join("input_ids.npy"));
    assert_eq!(shape, vec![2, 12]);
    let (lshape, want) = read_npy_f32(&dir.join("logits.npy")).unwrap();
    assert_eq!(lshape, vec![2, 12, 96]);
    let got: Vec<Vec<f32>> = input
        .chunks(12)
        .flat_map(|row| logits(&m, row).unwrap())
        .collect();
    let d = max_abs_diff(&got, &want);
    eprintln!("hf-llama-tiny: max abs logits diff {d:.2e}");
    assert!(d <= TOL, "max abs diff {d} > {TOL}");

    let (gshape, greedy) = ids(&dir.join("greedy.npy"));
    assert_eq!(gshape, vec![1, 28]);
    let g = generate(&m, &input[..12], 16).unwrap();
    assert_eq!(g.ids, greedy);
    // The prompt positions of a generation are the teacher-forced pass, bit for bit.
    assert_eq!(g.logits[..12], got[..12]);
}

/// The two rotary conventions are the same rotation on permuted coordinates: permuting each
/// head's q/k rows from interleaved to half-split order (what Hugging Face's llama conversion
/// script does) and switching the convention gives the same logits.
#[test]
fn interleaved_and_half_split_rope_agree_under_the_hf_permutation() {
    let m = llama2c::load(&l2c("model.bin")).unwrap();
    let mut p = m.clone();
    let hd = m.config.head_dim;
    let permute = |w: &mut tools::model::Linear| {
        let old = w.weight.clone();
        for head in 0..w.out_dim / hd {
            for i in 0..hd / 2 {
                for (half, src) in [(0, 2 * i), (1, 2 * i + 1)] {
                    let dst = head * hd + half * hd / 2 + i;
                    let src = head * hd + src;
                    w.weight[dst * w.in_dim..(dst + 1) * w.in_dim]
                        .copy_from_slice(&old[src * w.in_dim..(src + 1) * w.in_dim]);
                }
            }
        }
    };
    for l in &mut p.layers {
        permute(&mut l.wq);
        permute(&mut l.wk);
    }
    p.config.rope = RopeStyle::HalfSplit;
    let (_, seq) = ids(&l2c("greedy_ids.npy"));
    let a = logits(&m, &seq).unwrap();
    let b = logits(&p, &seq).unwrap();
    let flat: Vec<f32> = b.iter().flatten().copied().collect();
    assert!(max_abs_diff(&a, &flat) < 1e-5);
    // And the convention matters: without the permutation the logits differ.
    let mut wrong = m.clone();
    wrong.config.rope = RopeStyle::HalfSplit;
    assert!(max_abs_diff(&logits(&wrong, &seq).unwrap(), &flat) > 1e-2);
}

/// A shared classifier (positive vocab_size, no `wcls`) is the embedding matrix.
#[test]
fn llama2c_shared_classifier_reads_the_embeddings() {
    let bytes = std::fs::read(l2c("model.bin")).unwrap();
    let untied = llama2c::parse(&bytes, Path::new("model.bin")).unwrap();
    let (v, d) = (untied.config.vocab_size, untied.config.dim);
    let mut tied_bytes = bytes[..bytes.len() - 4 * v * d].to_vec();
    tied_bytes[20..24].copy_from_slice(&(v as i32).to_le_bytes());
    let tied = llama2c::parse(&tied_bytes, Path::new("tied.bin")).unwrap();
    assert!(tied.classifier.is_none());
    let mut expect = untied.clone();
    expect.classifier = Some(untied.embed.clone());
    expect.config.tie_word_embeddings = true;
    let seq = [1, 305, 447, 261];
    assert_eq!(logits(&tied, &seq).unwrap(), logits(&expect, &seq).unwrap());
    assert_ne!(logits(&tied, &seq).unwrap(), logits(&untied, &seq).unwrap());
}

// ---------------------------------------------------------------------------------------------
// CLI.

fn run(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tools"))
        .args(args)
        .output()
        .expect("run tools")
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

fn ok_json(a: &[String]) -> Value {
    let r = run(a);
    assert!(
        r.status.success(),
        "{a:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    serde_json::from_slice(&r.stdout).unwrap()
}

/// Exit 1, nothing on stdout, exactly `error: {want}` on stderr.
fn fails(a: &[String], want: &str) {
    let r = run(a);
    assert_eq!(
        String::from_utf8_lossy(&r.stderr),
        format!("error: {want}\n"),
        "{a:?}"
    );
    assert_eq!(r.status.code(), Some(1), "{a:?}");
    assert!(r.stdout.is_empty(), "{a:?}");
}

fn json_logits(v: &Value) -> Vec<Vec<f32>> {
    v["logits"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn json_ids(v: &Value) -> Vec<usize> {
    v["generated"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn cli_simulate_llama2c_prints_run_c_text() {
    let model = s(&l2c("model.bin"));
    let p = prompt();
    // Text output: exactly what run.c printed (tokenizer.bin found beside the model).
    let r = run(&args(&[
        "simulate",
        &model,
        "--prompt",
        &p,
        "--max-new-tokens",
        "31",
    ]));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(String::from_utf8(r.stdout).unwrap(), expected_text());

    let tok = s(&l2c("tokenizer.bin"));
    let v = ok_json(&args(&[
        "simulate",
        &model,
        "--tokenizer",
        &tok,
        "--prompt",
        &p,
        "--max-new-tokens",
        "31",
        "--json",
    ]));
    let (_, greedy) = ids(&l2c("greedy_ids.npy"));
    let g = json_ids(&v);
    assert_eq!(&g[..40], greedy.as_slice());
    assert_eq!(
        v["text"][0].as_str().unwrap().to_string() + "\n",
        expected_text()
    );
    let l = json_logits(&v);
    assert_eq!(l.len(), 41, "10 prompt positions + 31 new tokens");
    let (_, want) = read_npy_f32(&l2c("logits.npy")).unwrap();
    assert!(max_abs_diff(&l[..40], &want) <= TOL);

    // --max-new-tokens 0: the prompt's logits only.
    let v = ok_json(&args(&[
        "simulate",
        &model,
        "--prompt",
        &p,
        "--max-new-tokens",
        "0",
        "--json",
    ]));
    assert_eq!(json_ids(&v), greedy[..10].to_vec());
    assert!(max_abs_diff(&json_logits(&v), &want[..10 * 512]) <= TOL);
}

#[test]
fn cli_simulate_hf_llama_from_ids() {
    let dir = fixture("hf-llama-tiny");
    let tmp = tempfile::tempdir().unwrap();
    let (_, input) = ids(&dir.join("input_ids.npy"));
    let row0: Vec<i64> = input[..12].iter().map(|&x| x as i64).collect();
    let p = tmp.path().join("prompt.npy");
    write_npy_i64(&p, &[1, 12], &row0).unwrap();
    let v = ok_json(&args(&[
        "simulate",
        &s(&dir),
        "--input",
        &s(&p),
        "--max-new-tokens",
        "16",
        "--json",
    ]));
    let (_, greedy) = ids(&dir.join("greedy.npy"));
    assert_eq!(json_ids(&v), greedy);
    assert!(v.get("text").is_none(), "no tokenizer, no text");
    let l = json_logits(&v);
    assert_eq!(l.len(), 28);
    let (_, want) = read_npy_f32(&dir.join("logits.npy")).unwrap();
    assert!(max_abs_diff(&l[..12], &want[..12 * 96]) <= TOL);
}

#[test]
fn cli_llama_malformed_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let good = std::fs::read(l2c("model.bin")).unwrap();
    let header =
        "dim 48, hidden_dim 128, n_layers 2, n_heads 6, n_kv_heads 2, vocab_size -512, seq_len 64";
    let sim = |model: &Path, extra: &[&str]| {
        let mut a = args(&["simulate", &s(model), "--max-new-tokens", "4"]);
        a.extend(args(extra));
        if !extra.contains(&"--input") {
            a.extend(args(&["--prompt", "In"]));
        }
        a
    };
    let write = |name: &str, bytes: &[u8]| {
        let p = root.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let tok = s(&l2c("tokenizer.bin"));

    let missing = root.join("missing.bin");
    fails(
        &sim(&missing, &["--tokenizer", &tok]),
        &format!("{}: No such file or directory (os error 2)", s(&missing)),
    );
    let p = write("short.bin", &good[..10]);
    fails(
        &sim(&p, &["--tokenizer", &tok]),
        &format!(
            "{}: invalid llama2.c checkpoint: file is 10 bytes, too short for the 28-byte header",
            s(&p)
        ),
    );
    let n = good.len();
    let p = write("truncated.bin", &good[..n - 4]);
    fails(
        &sim(&p, &["--tokenizer", &tok]),
        &format!(
            "{}: invalid llama2.c checkpoint: truncated: file is {} bytes, its header ({header}) implies {n}",
            s(&p),
            n - 4
        ),
    );
    let mut long = good.clone();
    long.extend([0u8; 8]);
    let p = write("long.bin", &long);
    fails(
        &sim(&p, &["--tokenizer", &tok]),
        &format!(
            "{}: invalid llama2.c checkpoint: file is {} bytes, its header ({header}) implies {n} (8 unexpected trailing bytes)",
            s(&p),
            n + 8
        ),
    );
    let mut kv4 = good.clone();
    kv4[16..20].copy_from_slice(&4i32.to_le_bytes());
    let p = write("kv4.bin", &kv4);
    fails(
        &sim(&p, &["--tokenizer", &tok]),
        &format!(
            "{}: invalid llama2.c checkpoint: header ({}): n_heads is not a multiple of n_kv_heads",
            s(&p),
            header.replace("n_kv_heads 2", "n_kv_heads 4")
        ),
    );
    let mut v1 = good.clone();
    v1[..4].copy_from_slice(&0x616b_3432u32.to_le_bytes());
    v1[4..8].copy_from_slice(&2i32.to_le_bytes());
    let p = write("v2.bin", &v1);
    fails(
        &sim(&p, &["--tokenizer", &tok]),
        &format!(
            "{}: invalid llama2.c checkpoint: version-2 llama2.c export (magic \"ak42\") is not supported: export with the legacy version-0 float32 format",
            s(&p)
        ),
    );
    // NaN at flat index 5 of layer 1's wq: after the embeddings (512 x 48), rms_att (2 x 48)
    // and layer 0's wq (48 x 48).
    let mut nan = good.clone();
    let at = 28 + 4 * (512 * 48 + 2 * 48 + 48 * 48 + 5);
    nan[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let p = write("nan.bin", &nan);
    fails(
        &sim(&p, &["--tokenizer", &tok]),
        &format!(
            "{}: invalid llama2.c checkpoint: `wq` of layer 1 contains NaN at flat index 5",
            s(&p)
        ),
    );

    // Tokenizers.
    let model = l2c("model.bin");
    let t = write("short-tok.bin", &[1, 0]);
    fails(
        &sim(&model, &["--tokenizer", &s(&t)]),
        &format!(
            "{}: invalid tokenizer: truncated at byte 0 (file is 2 bytes): expected max_token_length",
            s(&t)
        ),
    );
    let mut extra = std::fs::read(l2c("tokenizer.bin")).unwrap();
    extra.extend([0u8; 3]);
    let t = write("extra-tok.bin", &extra);
    fails(
        &sim(&model, &["--tokenizer", &s(&t)]),
        &format!(
            "{}: invalid tokenizer: 3 unexpected bytes after the 512 tokens of the model's vocabulary",
            s(&t)
        ),
    );

    // Usage.
    fails(
        &args(&[
            "simulate",
            &s(&model),
            "--prompt",
            "In the beginning God",
            "--max-new-tokens",
            "60",
        ]),
        "invalid input: prompt of 10 tokens + 60 new tokens needs 70 positions, the model has 64",
    );
    fails(
        &sim(&model, &["--vocab", &tok]),
        "invalid input: --vocab is for character LMs; a Llama model takes --tokenizer FILE (llama2.c tokenizer.bin)",
    );
    let hf_dir = fixture("hf-llama-tiny");
    fails(
        &sim(&hf_dir, &[]),
        "invalid input: --prompt needs a tokenizer: --tokenizer FILE (llama2.c tokenizer.bin) or tokenizer.bin beside the checkpoint",
    );
    fails(
        &sim(&fixture("hf-gpt2-tiny"), &["--tokenizer", &tok]),
        "invalid input: --tokenizer is for Llama models (a llama2.c .bin, a Hugging Face Llama directory or a Llama blob)",
    );
}

/// A copy of `hf-llama-tiny` with `edit` applied to its config and `tensors` to its weights.
fn hf_copy(
    root: &Path,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
    tensors: impl FnOnce(&mut tools::checkpoint::TensorMap),
) -> PathBuf {
    let src = fixture("hf-llama-tiny");
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    edit(cfg.as_object_mut().unwrap());
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    let mut t = read_safetensors(&src.join("model.safetensors")).unwrap();
    tensors(&mut t);
    write_safetensors(&d.join("model.safetensors"), &t, Dtype::F32).unwrap();
    d
}

#[test]
fn hf_llama_malformed_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let ids_file = root.join("ids.npy");
    write_npy_i64(&ids_file, &[1, 2], &[1, 2]).unwrap();
    let check = |name: &str,
                 edit: &dyn Fn(&mut serde_json::Map<String, Value>),
                 tensors: &dyn Fn(&mut tools::checkpoint::TensorMap),
                 want: &str| {
        let d = hf_copy(root, name, edit, tensors);
        fails(&args(&["simulate", &s(&d), "--input", &s(&ids_file)]), want);
    };
    let none = |_: &mut tools::checkpoint::TensorMap| {};
    check(
        "rope-scaling",
        &|c| {
            c.insert(
                "rope_scaling".into(),
                serde_json::json!({"type": "linear", "factor": 2.0}),
            );
        },
        &none,
        r#"config.json: unsupported value for `rope_scaling`: {"factor":2.0,"type":"linear"} (only unscaled rotary embeddings are supported)"#,
    );
    check(
        "attention-bias",
        &|c| {
            c.insert("attention_bias".into(), Value::Bool(true));
        },
        &none,
        "config.json: unsupported value for `attention_bias`: true (only bias-free Llama layers are supported)",
    );
    check(
        "gelu",
        &|c| {
            c.insert("hidden_act".into(), "gelu".into());
        },
        &none,
        r#"config.json: unsupported value for `hidden_act`: "gelu" (only "silu" is supported)"#,
    );
    check(
        "kv4",
        &|c| {
            c.insert("num_key_value_heads".into(), 4.into());
        },
        &none,
        "config.json: invalid `num_key_value_heads`: 4 does not divide num_attention_heads 6",
    );
    // num_key_value_heads missing: HF's default is num_attention_heads (6), so k_proj must be
    // [48, 48].
    check(
        "kv-default",
        &|c| {
            c.remove("num_key_value_heads");
        },
        &none,
        "tensor `model.layers.0.self_attn.k_proj.weight` has shape [16, 48], expected [48, 48]",
    );
    // tie_word_embeddings missing: HF's Llama default is false, so lm_head is required.
    check(
        "no-head",
        &|c| {
            c.remove("tie_word_embeddings");
        },
        &|t| {
            t.remove("lm_head.weight");
        },
        "missing tensor `lm_head.weight`",
    );
    check(
        "extra-layer",
        &|_| {},
        &|t| {
            let w = t["model.layers.1.mlp.up_proj.weight"].clone();
            t.insert("model.layers.2.mlp.up_proj.weight".into(), w);
        },
        "config disagrees with tensors: tensor `model.layers.2.mlp.up_proj.weight` belongs to layer 2 but num_hidden_layers is 2",
    );
    check(
        "nan",
        &|_| {},
        &|t| {
            t.get_mut("model.layers.0.self_attn.k_proj.weight")
                .unwrap()
                .data[3] = f32::NAN;
        },
        "tensor `model.layers.0.self_attn.k_proj.weight` contains NaN at flat index 3",
    );

    // Tied: lm_head is ignored and the embeddings classify.
    let d = hf_copy(
        root,
        "tied",
        |c| {
            c.insert("tie_word_embeddings".into(), Value::Bool(true));
        },
        |_| {},
    );
    let m = hf::load(&d).unwrap();
    assert!(m.classifier.is_none());
    let mut expect = hf::load(&fixture("hf-llama-tiny")).unwrap();
    expect.classifier = Some(expect.embed.clone());
    let seq = [3, 1, 4, 1, 5];
    assert_eq!(logits(&m, &seq).unwrap(), logits(&expect, &seq).unwrap());
}
