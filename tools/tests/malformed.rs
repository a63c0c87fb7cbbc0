//! Hostile inputs (issue 7): every case runs the built binary and asserts the exact one-line
//! message on stderr, exit status 1, nothing on stdout, and — for commands that write a file
//! (`convert -o`, `simulate --attention-map`) — that no file was created in the output's
//! directory (not even a temporary one) and that an existing file at the output path was left
//! byte-for-byte untouched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tools::checkpoint::npy::{write_npy_f32, write_npy_i64};
use tools::checkpoint::safetensors::{
    read_safetensors, serialize_raw, write_safetensors, Dtype, RawTensor, TensorMap,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn run(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tools"))
        .args(args)
        .output()
        .expect("run tools")
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const PREVIOUS: &[u8] = b"previous contents, must survive";

/// Runs `args` and checks the failure contract. `out`: the file the command would write.
fn fails(args: &[String], out: Option<&Path>, want: &str) {
    let check = |r: &Output| {
        assert_eq!(
            String::from_utf8_lossy(&r.stderr),
            format!("error: {want}\n"),
            "args {args:?}"
        );
        assert_eq!(r.status.code(), Some(1), "args {args:?}");
        assert!(r.stdout.is_empty(), "args {args:?}: stdout not empty");
    };
    match out {
        None => check(&run(args)),
        Some(out) => {
            let dir = out.parent().unwrap();
            let _ = std::fs::remove_file(out);
            let before = listing(dir);
            check(&run(args));
            assert_eq!(listing(dir), before, "args {args:?}: a file was created");
            std::fs::write(out, PREVIOUS).unwrap();
            let before = listing(dir);
            check(&run(args));
            assert_eq!(
                std::fs::read(out).unwrap(),
                PREVIOUS,
                "args {args:?}: output touched"
            );
            assert_eq!(listing(dir), before, "args {args:?}: a file was created");
            std::fs::remove_file(out).unwrap();
        }
    }
}

fn tensors(model: &str) -> TensorMap {
    read_safetensors(&fixture(model).join("model.safetensors")).unwrap()
}

fn config(model: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(model).join("config.json")).unwrap()).unwrap()
}

/// A checkpoint directory with the given config and raw weight bytes.
fn checkpoint_raw(root: &Path, name: &str, config: &Value, weights: &[u8]) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("config.json"), config.to_string()).unwrap();
    std::fs::write(d.join("model.safetensors"), weights).unwrap();
    d
}

fn checkpoint(root: &Path, name: &str, config: &Value, t: &TensorMap) -> PathBuf {
    let d = checkpoint_raw(root, name, config, b"");
    write_safetensors(&d.join("model.safetensors"), t, Dtype::F32).unwrap();
    d
}

fn convert_fails(ck: &Path, out: &Path, want: &str) {
    fails(
        &["convert".into(), s(ck), "-o".into(), s(out)],
        Some(out),
        want,
    );
}

fn raw(t: &TensorMap) -> Vec<RawTensor> {
    t.iter()
        .map(|(n, x)| RawTensor {
            name: n.clone(),
            dtype: "F32".into(),
            shape: x.shape.clone(),
            bytes: Dtype::F32.encode(&x.data),
        })
        .collect()
}

#[test]
fn convert_rejects_broken_safetensors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out_dir = root.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("model.tatn");
    let cfg = config("hf-vit-tiny");
    let good = std::fs::read(fixture("hf-vit-tiny").join("model.safetensors")).unwrap();
    let st = |name: &str| format!("{}/model.safetensors", root.join(name).display());

    let ck = checkpoint_raw(root, "empty", &cfg, b"");
    convert_fails(
        &ck,
        &out,
        &format!(
            "{}: invalid safetensors file: file is 0 bytes, too short for the 8-byte header length",
            st("empty")
        ),
    );

    let ck = checkpoint_raw(root, "short-header", &cfg, &good[..100]);
    let n = u64::from_le_bytes(good[..8].try_into().unwrap());
    convert_fails(
        &ck,
        &out,
        &format!(
            "{}: invalid safetensors file: header length {n} exceeds the 92 bytes after it",
            st("short-header")
        ),
    );

    let ck = checkpoint_raw(root, "truncated", &cfg, &good[..good.len() - 4]);
    let e = convert_err(&ck, &out);
    assert!(
        e.starts_with(&format!(
            "{}: invalid safetensors file: tensor `",
            st("truncated")
        )) && e.contains("out of range (data section is"),
        "{e}"
    );

    let mut bad_json = 16u64.to_le_bytes().to_vec();
    bad_json.extend_from_slice(b"{\"a\": [1, 2,,]} ");
    let ck = checkpoint_raw(root, "bad-json", &cfg, &bad_json);
    convert_fails(
        &ck,
        &out,
        &format!(
            "{}: invalid safetensors file: header is not a JSON object: expected value at line 1 column 13",
            st("bad-json")
        ),
    );

    // data_offsets past the end of the data section.
    let mut t = raw(&tensors("hf-vit-tiny"));
    let mut bytes = serialize_raw(&t);
    let data_len = t.iter().map(|x| x.bytes.len()).sum::<usize>();
    bytes.truncate(bytes.len() - data_len);
    let ck = checkpoint_raw(root, "offsets", &cfg, &bytes);
    convert_fails(
        &ck,
        &out,
        &format!(
            "{}: invalid safetensors file: tensor `classifier.bias`: data_offsets [0, 40] out of range (data section is 0 bytes)",
            st("offsets")
        ),
    );

    // A shape that does not match the byte span.
    t[0].shape = vec![11];
    let ck = checkpoint_raw(root, "span", &cfg, &serialize_raw(&t));
    convert_fails(
        &ck,
        &out,
        &format!(
            "{}: invalid safetensors file: tensor `classifier.bias`: shape [11] of F32 needs 44 bytes but data_offsets [0, 40] span 40",
            st("span")
        ),
    );

    // A shape whose element count overflows.
    t[0].shape = vec![1 << 62, 1 << 62];
    let ck = checkpoint_raw(root, "overflow", &cfg, &serialize_raw(&t));
    convert_fails(
        &ck,
        &out,
        &format!(
            "{}: invalid safetensors file: tensor `classifier.bias`: shape [4611686018427387904, 4611686018427387904] overflows",
            st("overflow")
        ),
    );

    // Unsupported dtypes.
    let mut t = raw(&tensors("hf-vit-tiny"));
    t[0].dtype = "F64".into();
    t[0].bytes = vec![0; 80];
    let ck = checkpoint_raw(root, "f64", &cfg, &serialize_raw(&t));
    convert_fails(
        &ck,
        &out,
        "tensor `classifier.bias`: unsupported dtype F64 (supported: F32, F16, BF16)",
    );
    t[0].dtype = "I32".into();
    t[0].bytes = vec![0; 40];
    let ck = checkpoint_raw(root, "i32", &cfg, &serialize_raw(&t));
    convert_fails(
        &ck,
        &out,
        "tensor `classifier.bias`: unsupported dtype I32 (supported: F32, F16, BF16)",
    );

    // Missing files.
    let ck = root.join("nothing");
    std::fs::create_dir(&ck).unwrap();
    convert_fails(
        &ck,
        &out,
        &format!(
            "{}/config.json: No such file or directory (os error 2)",
            ck.display()
        ),
    );
}

fn convert_err(ck: &Path, out: &Path) -> String {
    let r = run(&["convert".into(), s(ck), "-o".into(), s(out)]);
    assert_eq!(r.status.code(), Some(1));
    assert!(!out.exists());
    let e = String::from_utf8(r.stderr).unwrap();
    assert_eq!(e.lines().count(), 1, "{e}");
    e.trim_end().strip_prefix("error: ").unwrap().to_string()
}

#[test]
fn convert_rejects_tensors_that_do_not_fit_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out_dir = root.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("model.tatn");
    let cfg = config("hf-vit-tiny");
    let base = tensors("hf-vit-tiny");

    let mut t = base.clone();
    t.remove("vit.encoder.layer.1.output.dense.bias");
    let ck = checkpoint(root, "missing", &cfg, &t);
    convert_fails(
        &ck,
        &out,
        "missing tensor `vit.encoder.layer.1.output.dense.bias`",
    );

    let mut t = base.clone();
    t.insert("vit.extra.weight".into(), t["classifier.bias"].clone());
    let ck = checkpoint(root, "unexpected", &cfg, &t);
    convert_fails(&ck, &out, "unexpected tensor `vit.extra.weight`");

    let mut t = base.clone();
    let w = t.get_mut("classifier.weight").unwrap();
    w.shape = vec![32, 10];
    let ck = checkpoint(root, "misshaped", &cfg, &t);
    convert_fails(
        &ck,
        &out,
        "tensor `classifier.weight` has shape [32, 10], expected [10, 32]",
    );

    for (name, v, shown) in [
        ("nan", f32::NAN, "NaN"),
        ("inf", f32::INFINITY, "inf"),
        ("-inf", f32::NEG_INFINITY, "-inf"),
    ] {
        let mut t = base.clone();
        t.get_mut("vit.embeddings.cls_token").unwrap().data[5] = v;
        let ck = checkpoint(root, name, &cfg, &t);
        convert_fails(
            &ck,
            &out,
            &format!("tensor `vit.embeddings.cls_token` contains {shown} at flat index 5"),
        );
    }

    // Config and tensors disagree: one layer fewer in the config.
    let mut c = cfg.clone();
    c["num_hidden_layers"] = 1.into();
    let ck = checkpoint(root, "layers", &c, &base);
    convert_fails(
        &ck,
        &out,
        "config disagrees with tensors: `num_hidden_layers` is 1 but tensor `vit.encoder.layer.1.attention.attention.key.bias` exists",
    );
    // Wider config than tensors.
    let mut c = cfg.clone();
    c["intermediate_size"] = 48.into();
    let ck = checkpoint(root, "mlp", &c, &base);
    convert_fails(
        &ck,
        &out,
        "tensor `vit.encoder.layer.0.intermediate.dense.weight` has shape [64, 32], expected [48, 32]",
    );
    // A zero-sized tensor dimension.
    let mut t = base.clone();
    let w = t.get_mut("classifier.weight").unwrap();
    w.shape = vec![0, 32];
    w.data.clear();
    let ck = checkpoint(root, "zero-tensor", &cfg, &t);
    convert_fails(
        &ck,
        &out,
        "tensor `classifier.weight` has shape [0, 32], expected [10, 32]",
    );
}

#[test]
fn convert_rejects_bad_configs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out_dir = root.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("model.tatn");
    let vit = tensors("hf-vit-tiny");
    let gpt = tensors("hf-gpt2-tiny");
    let cases: Vec<(&str, &str, serde_json::Value, &str)> = vec![
        (
            "hf-vit-tiny",
            "zero-width",
            serde_json::json!({"hidden_size": 0}),
            "config.json: invalid `hidden_size`: must be at least 1",
        ),
        (
            "hf-vit-tiny",
            "heads",
            serde_json::json!({"num_attention_heads": 5}),
            "config.json: invalid `num_attention_heads`: 5 does not divide hidden_size 32",
        ),
        (
            "hf-gpt2-tiny",
            "gpt-heads",
            serde_json::json!({"n_head": 3}),
            "config.json: invalid `n_head`: 3 does not divide n_embd 32",
        ),
        (
            "hf-vit-tiny",
            "huge-width",
            serde_json::json!({"hidden_size": 1u64 << 62, "num_attention_heads": 1}),
            "config.json: invalid `hidden_size`: too large: hidden_size × hidden_size exceeds 2^32 elements",
        ),
        (
            "hf-vit-tiny",
            "huge-image",
            serde_json::json!({"image_size": 1u64 << 40, "patch_size": 1}),
            "config.json: invalid `image_size`: too large: tokens × tokens × hidden_size exceeds 2^32 elements",
        ),
        (
            "hf-vit-tiny",
            "huge-layers",
            serde_json::json!({"num_hidden_layers": u64::MAX}),
            "config.json: invalid `num_hidden_layers`: 18446744073709551615 exceeds the limit of 4096 layers",
        ),
        (
            "hf-gpt2-tiny",
            "huge-embd",
            serde_json::json!({"n_embd": 1u64 << 62, "n_head": 1}),
            "config.json: invalid `n_embd`: too large: n_embd × n_embd × 4 exceeds 2^32 elements",
        ),
        (
            "hf-gpt2-tiny",
            "huge-vocab",
            serde_json::json!({"vocab_size": 1u64 << 60}),
            "config.json: invalid `vocab_size`: too large: vocab_size × n_embd exceeds 2^32 elements",
        ),
        (
            "hf-gpt2-tiny",
            "huge-positions",
            serde_json::json!({"n_positions": 1u64 << 40}),
            "config.json: invalid `n_positions`: too large: n_positions × n_positions × n_embd exceeds 2^32 elements",
        ),
        (
            "hf-gpt2-tiny",
            "huge-inner",
            serde_json::json!({"n_inner": u64::MAX}),
            "config.json: invalid `n_inner`: too large: n_inner × n_embd exceeds 2^32 elements",
        ),
        (
            "hf-gpt2-tiny",
            "gpt-zero-vocab",
            serde_json::json!({"vocab_size": 0}),
            "config.json: invalid `vocab_size`: must be at least 1",
        ),
        (
            "hf-gpt2-tiny",
            "gpt-layers",
            serde_json::json!({"n_layer": 3}),
            "missing tensor `transformer.h.2.ln_1.weight`",
        ),
    ];
    for (model, name, edit, want) in cases {
        let mut c = config(model);
        for (k, v) in edit.as_object().unwrap() {
            c[k] = v.clone();
        }
        let t = if model == "hf-vit-tiny" { &vit } else { &gpt };
        let ck = checkpoint(root, name, &c, t);
        convert_fails(&ck, &out, want);
    }
    let ck = checkpoint_raw(root, "bad-config", &Value::Null, b"");
    std::fs::write(ck.join("config.json"), "{\"model_type\": ").unwrap();
    convert_fails(
        &ck,
        &out,
        "config.json: invalid `<root>`: not valid JSON: EOF while parsing a value at line 1 column 15",
    );
}

/// Converted fixture blobs shared by the simulate/eval cases.
struct Blobs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    vit: PathBuf,
    gpt: PathBuf,
    lm: PathBuf,
}

fn blobs() -> Blobs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let conv = |name: &str, out: &str| {
        let p = root.join(out);
        let r = run(&["convert".into(), s(&fixture(name)), "-o".into(), s(&p)]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        p
    };
    let vit = conv("hf-vit-tiny", "vit.tatn");
    let gpt = conv("hf-gpt2-tiny", "gpt.tatn");
    // A character LM: the GPT-2 fixture with a 64-character vocabulary.
    let lm = root.join("lm");
    std::fs::create_dir(&lm).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("hf-gpt2-tiny").join(f), lm.join(f)).unwrap();
    }
    let chars: Vec<String> = " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?\n0123"
        .chars()
        .map(String::from)
        .collect();
    assert_eq!(chars.len(), 64);
    std::fs::write(
        lm.join("vocab.json"),
        serde_json::to_string(&chars).unwrap(),
    )
    .unwrap();
    Blobs {
        _tmp: tmp,
        root,
        vit,
        gpt,
        lm,
    }
}

#[test]
fn simulate_rejects_corrupt_blobs() {
    let b = blobs();
    let good = std::fs::read(&b.vit).unwrap();
    let input = s(&fixture("hf-vit-tiny").join("inputs.npy"));
    let bad = b.root.join("bad.tatn");
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    let mut magic = good.clone();
    magic[..4].copy_from_slice(b"NOPE");
    let mut future = good.clone();
    future[4..6].copy_from_slice(&2u16.to_le_bytes());
    let mut kind = good.clone();
    kind[6..8].copy_from_slice(&9u16.to_le_bytes());
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "file is empty (0 bytes)"),
        (&good[..10], "blob truncated inside the header"),
        (
            &good[..good.len() - 1],
            "blob shorter than its header says (truncated)",
        ),
        (&magic, "bad magic (not a TATN model blob)"),
        (&future, "format version newer than this reader"),
        (&flipped, "checksum mismatch (corrupt blob)"),
        (&kind, "unknown model kind"),
    ];
    for (bytes, reason) in cases {
        std::fs::write(&bad, bytes).unwrap();
        let want = format!("{}: invalid model blob: {reason}", bad.display());
        fails(
            &["simulate".into(), s(&bad), "--input".into(), input.clone()],
            None,
            &want,
        );
        fails(&["inspect".into(), s(&bad)], None, &want);
        fails(
            &[
                "eval".into(),
                s(&bad),
                "--reference".into(),
                s(&fixture("hf-vit-tiny")),
                "--data".into(),
                input.clone(),
                "--labels".into(),
                input.clone(),
            ],
            None,
            &want,
        );
    }
}

#[test]
fn simulate_and_eval_reject_bad_inputs() {
    let b = blobs();
    let root = &b.root;
    let vit_ck = s(&fixture("hf-vit-tiny"));
    let gpt_ck = s(&fixture("hf-gpt2-tiny"));
    let images = s(&fixture("hf-vit-tiny").join("inputs.npy"));
    let ids = s(&fixture("hf-gpt2-tiny").join("input_ids.npy"));
    let map = root.join("maps").join("att.png");
    std::fs::create_dir(map.parent().unwrap()).unwrap();
    let with_map = |mut a: Vec<String>| {
        a.extend(["--attention-map".into(), s(&map)]);
        a
    };
    let sim = |m: &str, input: &str| {
        vec![
            "simulate".to_string(),
            m.to_string(),
            "--input".into(),
            input.to_string(),
        ]
    };

    // Wrong shape.
    let small = root.join("small.npy");
    write_npy_f32(&small, &[2, 1, 27, 27], &vec![0.0; 2 * 27 * 27]).unwrap();
    let want = "invalid input: images have shape [2, 1, 27, 27], model expects [N, 1, 28, 28]";
    fails(&with_map(sim(&vit_ck, &s(&small))), Some(&map), want);
    fails(&sim(&s(&b.vit), &s(&small)), None, want);

    // Image files: a PGM header with absurd dimensions, a truncated PNG.
    let pgm = root.join("huge.pgm");
    std::fs::write(&pgm, b"P5 99999999999 99999999999 255\n\x00").unwrap();
    fails(
        &with_map(sim(&vit_ck, &s(&pgm))),
        Some(&map),
        &format!(
            "{}: invalid image: PGM dimensions 99999999999x99999999999 are too large",
            pgm.display()
        ),
    );
    let png_file = root.join("cut.png");
    std::fs::write(&png_file, b"\x89PNG\r\n\x1a\n\x00\x00").unwrap();
    let r = run(&sim(&s(&b.vit), &s(&png_file)));
    assert_eq!(r.status.code(), Some(1));
    let e = String::from_utf8(r.stderr).unwrap();
    assert!(
        e.starts_with(&format!("error: {}: invalid image: ", png_file.display()))
            && e.lines().count() == 1,
        "{e}"
    );

    // Token ids given to an image model; images given to an LM.
    let want = format!("invalid input: {ids}: images must be float32, found int64");
    fails(&with_map(sim(&vit_ck, &ids)), Some(&map), &want);
    fails(&sim(&s(&b.vit), &ids), None, &want);
    let want = format!("invalid input: {images}: token ids must be int64, found float32");
    fails(&sim(&gpt_ck, &images), None, &want);
    fails(&sim(&s(&b.gpt), &images), None, &want);

    // NaN / infinite pixels.
    let mut px = vec![0.25f32; 2 * 28 * 28];
    px[28 * 28 + 30] = f32::NAN;
    let nan = root.join("nan.npy");
    write_npy_f32(&nan, &[2, 1, 28, 28], &px).unwrap();
    let want = "invalid input: image 1 has a non-finite pixel (NaN) at flat index 30";
    fails(&with_map(sim(&vit_ck, &s(&nan))), Some(&map), want);
    fails(&sim(&s(&b.vit), &s(&nan)), None, want);
    px[28 * 28 + 30] = f32::INFINITY;
    write_npy_f32(&nan, &[2, 1, 28, 28], &px).unwrap();
    fails(
        &sim(&s(&b.vit), &s(&nan)),
        None,
        "invalid input: image 1 has a non-finite pixel (inf) at flat index 30",
    );

    // Token ids >= vocab, and negative ids.
    let big = root.join("big.npy");
    write_npy_i64(&big, &[1, 3], &[1, 64, 2]).unwrap();
    let want = "invalid input: token id 64 out of range (vocab_size 64)";
    fails(&sim(&gpt_ck, &s(&big)), None, want);
    fails(&sim(&s(&b.gpt), &s(&big)), None, want);
    write_npy_i64(&big, &[1, 3], &[1, -5, 2]).unwrap();
    fails(
        &sim(&s(&b.gpt), &s(&big)),
        None,
        "invalid input: negative token id -5",
    );

    // Prompt longer than the context.
    write_npy_i64(&big, &[1, 40], &[1; 40]).unwrap();
    fails(
        &sim(&s(&b.gpt), &s(&big)),
        None,
        "invalid input: prompt of 40 tokens + 16 new tokens needs 55 positions, model has 32",
    );

    // Text prompts.
    let lm = s(&b.lm);
    let prompt = |m: &str, p: &str| {
        vec![
            "simulate".to_string(),
            m.to_string(),
            "--prompt".into(),
            p.to_string(),
        ]
    };
    fails(
        &prompt(&lm, "hello_world"),
        None,
        &format!(
            "invalid input: character '_' at position 5 is not in the vocabulary ({}/vocab.json)",
            lm
        ),
    );
    fails(
        &prompt(&lm, "naïve"),
        None,
        &format!(
            "invalid input: character 'ï' at position 2 is not in the vocabulary ({}/vocab.json)",
            lm
        ),
    );
    fails(
        &prompt(&gpt_ck, "hello"),
        None,
        "invalid input: --prompt needs a vocabulary: vocab.json next to the checkpoint, <blob>.vocab.json, or --vocab FILE",
    );
    fails(
        &prompt(&vit_ck, "hello"),
        None,
        "invalid input: --prompt is for language models; this model takes --input FILE",
    );
    // A broken vocabulary next to a blob.
    let lm_blob = root.join("lm.tatn");
    let r = run(&["convert".into(), lm.clone(), "-o".into(), s(&lm_blob)]);
    assert!(r.status.success());
    let sidecar = root.join("lm.tatn.vocab.json");
    assert!(
        sidecar.is_file(),
        "convert copies vocab.json next to the blob"
    );
    fails(
        &prompt(&s(&lm_blob), "hello_world"),
        None,
        &format!(
            "invalid input: character '_' at position 5 is not in the vocabulary ({})",
            sidecar.display()
        ),
    );
    std::fs::write(&sidecar, r#"["a", "a"]"#).unwrap();
    fails(
        &prompt(&s(&lm_blob), "a"),
        None,
        &format!(
            "{}: invalid vocabulary: character 'a' is both id 0 and id 1",
            sidecar.display()
        ),
    );

    // Attention maps: a blob, an LM, an out-of-range layer.
    fails(
        &with_map(sim(&s(&b.vit), &images)),
        Some(&map),
        "invalid input: --attention-map needs a checkpoint directory (the int8 runners do not expose attention probabilities)",
    );
    fails(
        &with_map(sim(&gpt_ck, &ids)),
        Some(&map),
        "invalid input: --attention-map needs an image model (ViT or encoder-decoder)",
    );
    let mut a = with_map(sim(&vit_ck, &images));
    a.extend(["--layer".into(), "2".into()]);
    fails(
        &a,
        Some(&map),
        "invalid input: --layer 2 out of range (model has 2 layers)",
    );
}

#[test]
fn eval_rejects_bad_inputs() {
    let b = blobs();
    let root = &b.root;
    let vit_ck = s(&fixture("hf-vit-tiny"));
    let images = s(&fixture("hf-vit-tiny").join("inputs.npy"));
    let labels = root.join("labels.npy");
    write_npy_i64(&labels, &[4], &[7, 0, 7, 7]).unwrap();
    let ev = |m: &str, extra: &[&str]| {
        let mut a = vec!["eval".to_string(), m.to_string()];
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    fails(
        &ev(&s(&b.vit), &["--data", &images, "--labels", &s(&labels)]),
        None,
        "invalid input: eval of a blob needs --reference CHECKPOINT_DIR (the checkpoint it was converted from)",
    );
    fails(
        &ev(
            &s(&b.vit),
            &[
                "--reference",
                &s(&fixture("hf-gpt2-tiny")),
                "--data",
                &images,
                "--labels",
                &s(&labels),
            ],
        ),
        None,
        &format!(
            "invalid input: {} and reference {} differ: blob is a vit-classifier, checkpoint is a gpt2",
            b.vit.display(),
            fixture("hf-gpt2-tiny").display()
        ),
    );
    let three = root.join("three.npy");
    write_npy_i64(&three, &[3], &[7, 0, 7]).unwrap();
    fails(
        &ev(&vit_ck, &["--data", &images, "--labels", &s(&three)]),
        None,
        "invalid input: 4 images but 3 labels",
    );
    write_npy_i64(&three, &[4], &[7, 0, 10, 7]).unwrap();
    fails(
        &ev(&vit_ck, &["--data", &images, "--labels", &s(&three)]),
        None,
        "invalid input: label 2 is 10, model has 10 classes (0..9)",
    );
    fails(
        &ev(&vit_ck, &["--data", &images, "--labels", &images]),
        None,
        &format!("invalid input: {images}: labels must be int64, found float32"),
    );
    // Encoder-decoder target ids out of range, wrong label shape.
    let ed = s(&fixture("hf-vision-encoder-decoder-tiny"));
    let ed_images = s(&fixture("hf-vision-encoder-decoder-tiny").join("inputs.npy"));
    let seq = root.join("seq.npy");
    write_npy_i64(&seq, &[2, 3], &[5, 5, 2, 9, 16, 2]).unwrap();
    fails(
        &ev(&ed, &["--data", &ed_images, "--labels", &s(&seq)]),
        None,
        "invalid input: label 1 position 1: token id 16 out of range (vocab_size 16)",
    );
    write_npy_i64(&seq, &[6], &[5, 5, 2, 9, 9, 2]).unwrap();
    fails(
        &ev(&ed, &["--data", &ed_images, "--labels", &s(&seq)]),
        None,
        "invalid input: label sequences have shape [6], expected [N, L] with L > 0",
    );
    let text = root.join("t.txt");
    std::fs::write(&text, "hello world\n").unwrap();
    fails(
        &ev(&vit_ck, &["--text", &s(&text)]),
        None,
        "invalid input: --text is for language models; a vit is evaluated with --data FILE.npy --labels FILE",
    );
    let lm = s(&b.lm);
    fails(
        &ev(&lm, &["--data", &images, "--labels", &s(&labels)]),
        None,
        "invalid input: a language model is evaluated with --text FILE, not --data/--labels",
    );
    std::fs::write(&text, "hello\tworld").unwrap();
    fails(
        &ev(&lm, &["--text", &s(&text)]),
        None,
        &format!("invalid input: character '\\t' at position 5 is not in the vocabulary ({lm}/vocab.json)"),
    );
    std::fs::write(&text, b"ab\xffcd").unwrap();
    fails(
        &ev(&lm, &["--text", &s(&text)]),
        None,
        &format!("invalid input: {}: not UTF-8 (byte 2)", text.display()),
    );
    std::fs::write(&text, "hello").unwrap();
    fails(
        &ev(&lm, &["--text", &s(&text), "--stride", "33"]),
        None,
        "invalid input: --stride 33 must be between 1 and n_positions 32",
    );
}

// ---------------------------------------------------------------------------------------------
// Failures late in `convert` (issue #17 item 8): after the checkpoint loaded and passed every
// check, at calibration / quantization, at write time, and into a folder that cannot take the
// output. The contract is the same as above: one line, status 1, and nothing new or changed in
// the output's folder — in particular the blob and its vocabulary sidecar are written together
// or not at all.

/// Every entry of `dir` (recursively one level) with its bytes (`None` for a directory).
fn snapshot(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut v: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            v.push((name.clone() + "/", None));
            for (n, b) in snapshot(&p) {
                v.push((format!("{name}/{n}"), b));
            }
        } else {
            v.push((name, Some(std::fs::read(&p).unwrap())));
        }
    }
    v.sort();
    v
}

/// Runs `args`, expects the one-line error `want` (status 1, empty stdout) and `dir` exactly
/// as it was before.
fn fails_leaving(args: &[String], dir: &Path, want: &str) {
    let before = snapshot(dir);
    let r = run(args);
    assert_eq!(
        String::from_utf8_lossy(&r.stderr),
        format!("error: {want}\n"),
        "args {args:?}"
    );
    assert_eq!(r.status.code(), Some(1), "args {args:?}");
    assert!(r.stdout.is_empty(), "args {args:?}: stdout not empty");
    let after = snapshot(dir);
    let names = |s: &[(String, Option<Vec<u8>>)]| -> Vec<String> {
        s.iter().map(|(n, _)| n.clone()).collect()
    };
    assert_eq!(
        names(&after),
        names(&before),
        "args {args:?}: files changed"
    );
    assert!(after == before, "args {args:?}: contents changed");
}

/// The GPT-2 fixture as a character LM (with `vocab.json`), in `root/lm`.
fn char_lm(root: &Path) -> PathBuf {
    let lm = root.join("lm");
    std::fs::create_dir(&lm).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("hf-gpt2-tiny").join(f), lm.join(f)).unwrap();
    }
    let chars: Vec<String> = " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?\n0123"
        .chars()
        .map(String::from)
        .collect();
    std::fs::write(
        lm.join("vocab.json"),
        serde_json::to_string(&chars).unwrap(),
    )
    .unwrap();
    lm
}

/// Calibration data that reads fine but fails later: all-zero images pass every shape and
/// value check, and fail at quantization (the input range is empty, so the patch bias cannot
/// be represented); a NaN pixel is refused by name (it used to vanish from the calibrated
/// ranges: `convert` wrote a blob).
///
/// Injected: no finite check on calibration images (`npy_images`) → fails with `error: ` vs
/// an empty stderr (convert succeeded and wrote `vit.tatn`).
#[test]
fn convert_fails_at_calibration_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("vit.tatn");
    let ck = fixture("hf-vit-tiny");
    let zeros = tmp.path().join("zeros.npy");
    write_npy_f32(&zeros, &[2, 1, 28, 28], &[0.0; 2 * 784]).unwrap();
    let mut pixels: Vec<f32> = (0..2 * 784)
        .map(|i| ((i % 17) as f32) / 8.0 - 1.0)
        .collect();
    pixels[784 + 30] = f32::NAN;
    let nan = tmp.path().join("nan.npy");
    write_npy_f32(&nan, &[2, 1, 28, 28], &pixels).unwrap();
    let args = |calib: &Path| -> Vec<String> {
        vec![
            "convert".into(),
            s(&ck),
            "-o".into(),
            s(&out),
            "--calibration".into(),
            s(calib),
        ]
    };
    // Late: the message comes from quantization; the exact figure is data-dependent, so this
    // one is checked by its stable part.
    for existing in [false, true] {
        if existing {
            std::fs::write(&out, PREVIOUS).unwrap();
        }
        let before = snapshot(&out_dir);
        let r = run(&args(&zeros));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            err.starts_with("error: int8: unsupported linear bias magnitude: ")
                && err.ends_with('\n')
                && err.lines().count() == 1,
            "{err}"
        );
        assert_eq!(r.status.code(), Some(1));
        assert!(snapshot(&out_dir) == before, "zeros: output folder changed");
        fails_leaving(
            &args(&nan),
            &out_dir,
            &format!(
                "invalid input: {}: calibration image 1 has a non-finite pixel (NaN) at flat index 30",
                nan.display()
            ),
        );
    }
}

/// Write-time failures, after conversion succeeded: the sidecar's name is taken by a
/// directory (the blob must not be left alone, and an existing blob keeps its bytes), the
/// output is a directory, the output's folder does not exist, or is a regular file. (Tests
/// run as root, so a read-only folder would not stop the write; these paths fail for root too.)
///
/// Injected: `convert` writing the blob and the sidecar as two `write_atomic` calls (as it
/// used to) → fails with `files changed` (`lm.tatn` left behind without its sidecar) and, with
/// an existing `lm.tatn`, `contents changed`.
#[test]
fn convert_fails_at_write_time_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lm = char_lm(tmp.path());
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("lm.tatn");
    let conv = |o: &Path| -> Vec<String> { vec!["convert".into(), s(&lm), "-o".into(), s(o)] };

    // 1. The sidecar name is a (non-empty) directory: the blob's rename has to be undone.
    let sidecar = out_dir.join("lm.tatn.vocab.json");
    std::fs::create_dir(&sidecar).unwrap();
    std::fs::write(sidecar.join("keep"), b"keep").unwrap();
    let want = format!("{}: Is a directory (os error 21)", sidecar.display());
    fails_leaving(&conv(&out), &out_dir, &want);
    std::fs::write(&out, PREVIOUS).unwrap();
    fails_leaving(&conv(&out), &out_dir, &want);
    assert_eq!(std::fs::read(&out).unwrap(), PREVIOUS);
    std::fs::remove_dir_all(&sidecar).unwrap();
    std::fs::remove_file(&out).unwrap();

    // 2. The output itself is a directory.
    let as_dir = out_dir.join("taken.tatn");
    std::fs::create_dir(&as_dir).unwrap();
    fails_leaving(
        &conv(&as_dir),
        &out_dir,
        &format!("{}: Is a directory (os error 21)", as_dir.display()),
    );
    std::fs::remove_dir(&as_dir).unwrap();

    // 3. A missing folder (not created), and a folder that is a regular file.
    let missing = out_dir.join("missing").join("lm.tatn");
    fails_leaving(
        &conv(&missing),
        &out_dir,
        &format!(
            "{}: No such file or directory (os error 2)",
            missing.display()
        ),
    );
    let file = out_dir.join("file.txt");
    std::fs::write(&file, b"a file").unwrap();
    let under_file = file.join("lm.tatn");
    fails_leaving(
        &conv(&under_file),
        &out_dir,
        &format!("{}: Not a directory (os error 20)", under_file.display()),
    );

    // And with nothing in the way, both files are written, the sidecar equal to vocab.json.
    let r = run(&conv(&out));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        std::fs::read(&sidecar).unwrap(),
        std::fs::read(lm.join("vocab.json")).unwrap()
    );
    let mut names: Vec<String> = snapshot(&out_dir).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(names, ["file.txt", "lm.tatn", "lm.tatn.vocab.json"]);
}
