//! The f32 reference against Hugging Face's outputs in `tests/fixtures`, and checkpoint
//! import errors on deliberately broken copies of those checkpoints.

use std::path::{Path, PathBuf};

use tools::checkpoint::npy::{read_npy_f32, read_npy_i64};
use tools::checkpoint::safetensors::{
    read_safetensors, serialize_raw, write_safetensors, Dtype, RawTensor, TensorMap,
};
use tools::checkpoint::{CONFIG_FILE, WEIGHTS_FILE};
use tools::float::{encdec, gpt2, vit};
use tools::model::{EncoderDecoderModel, Gpt2Model, Model, VitModel};

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn dir(name: &str) -> PathBuf {
    fixtures().join(name)
}

fn f32s(model: &str, file: &str) -> (Vec<usize>, Vec<f32>) {
    read_npy_f32(&dir(model).join(file)).unwrap()
}

fn i64s(model: &str, file: &str) -> (Vec<usize>, Vec<i64>) {
    read_npy_i64(&dir(model).join(file)).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    let d = max_abs_diff(got, want);
    eprintln!("{what}: max abs diff {d:.2e}");
    assert!(d <= TOL, "{what}: max abs diff {d} > {TOL}");
}

fn load_vit(path: &Path) -> VitModel {
    match Model::load(path).unwrap() {
        Model::Vit(m) => m,
        other => panic!("expected vit, got {}", other.kind()),
    }
}

fn load_gpt2(path: &Path) -> Gpt2Model {
    match Model::load(path).unwrap() {
        Model::Gpt2(m) => m,
        other => panic!("expected gpt2, got {}", other.kind()),
    }
}

fn load_encdec(path: &Path) -> EncoderDecoderModel {
    match Model::load(path).unwrap() {
        Model::EncoderDecoder(m) => m,
        other => panic!("expected encoder-decoder, got {}", other.kind()),
    }
}

fn ids(v: &[i64]) -> Vec<usize> {
    v.iter().map(|&i| i as usize).collect()
}

/// ViT logits of every fixture image, concatenated.
fn vit_logits(m: &VitModel, inputs: &[f32]) -> Vec<f32> {
    let per = inputs.len() / 4;
    inputs
        .chunks_exact(per)
        .flat_map(|img| vit::classify(m, img).unwrap())
        .collect()
}

#[test]
fn vit_matches_hf() {
    const M: &str = "hf-vit-tiny";
    let m = load_vit(&dir(M));
    let (ishape, inputs) = f32s(M, "inputs.npy");
    assert_eq!(ishape, [4, 1, 28, 28]);
    let (_, logits) = f32s(M, "logits.npy");
    let (_, hidden) = f32s(M, "hidden_states.npy");
    let (lshape, per_layer) = f32s(M, "hidden_states_per_layer.npy");
    let (_, attn0) = f32s(M, "attentions_layer0.npy");
    let (n, t, d) = (4, 17, 32);
    let mut got_logits = Vec::new();
    for (b, img) in inputs.chunks_exact(28 * 28).enumerate() {
        let (l, out) = vit::classify_traced(&m, img, Some(0)).unwrap();
        got_logits.extend(l);
        assert_close(
            &format!("hidden_states[{b}]"),
            &out.last_hidden.data,
            &hidden[b * t * d..(b + 1) * t * d],
        );
        assert_eq!(out.hidden_states.len(), lshape[0]);
        for (i, hs) in out.hidden_states.iter().enumerate() {
            let off = (i * n + b) * t * d;
            assert_close(
                &format!("hidden_states_per_layer[{i}][{b}]"),
                &hs.data,
                &per_layer[off..off + t * d],
            );
        }
        let a = out.attentions.unwrap();
        assert_close(
            &format!("attentions_layer0[{b}]"),
            &a,
            &attn0[b * 4 * t * t..(b + 1) * 4 * t * t],
        );
    }
    assert_close("logits", &got_logits, &logits);
    assert_eq!(vit_logits(&m, &inputs), got_logits);
}

#[test]
fn gpt2_matches_hf() {
    const M: &str = "hf-gpt2-tiny";
    let m = load_gpt2(&dir(M));
    let (s, input) = i64s(M, "input_ids.npy");
    assert_eq!(s, [2, 12]);
    let (_, logits) = f32s(M, "logits.npy");
    let (_, hidden) = f32s(M, "hidden_states.npy");
    for (b, row) in input.chunks_exact(12).enumerate() {
        let out = gpt2::forward(&m, &ids(row), None).unwrap();
        assert_close(
            &format!("logits[{b}]"),
            &out.logits.data,
            &logits[b * 12 * 64..(b + 1) * 12 * 64],
        );
        assert_eq!(out.hidden_states.len(), 3);
        for (i, hs) in out.hidden_states.iter().enumerate() {
            let off = (i * 2 + b) * 12 * 32;
            assert_close(
                &format!("hidden_states[{i}][{b}]"),
                &hs.data,
                &hidden[off..off + 12 * 32],
            );
        }
    }
    let (gs, greedy) = i64s(M, "greedy.npy");
    assert_eq!(gs, [1, 28]);
    let generated = gpt2::generate(&m, vec![ids(&input[..12])], 16).unwrap();
    assert_eq!(generated, vec![ids(&greedy)]);
    let (_, greedy_logits) = f32s(M, "greedy_logits.npy");
    assert_close(
        "greedy_logits",
        &gpt2::logits(&m, &ids(&greedy)).unwrap().data,
        &greedy_logits,
    );
}

#[test]
fn encoder_decoder_matches_hf() {
    const M: &str = "hf-vision-encoder-decoder-tiny";
    let m = load_encdec(&dir(M));
    let (_, inputs) = f32s(M, "inputs.npy");
    let images: Vec<&[f32]> = inputs.chunks_exact(28 * 28).collect();
    let (_, enc_want) = f32s(M, "encoder_hidden_states.npy");
    let (_, dec_ids) = i64s(M, "decoder_input_ids.npy");
    let (_, logits) = f32s(M, "logits.npy");
    let (gs, greedy) = i64s(M, "greedy.npy");
    let (_, greedy_logits) = f32s(M, "greedy_logits.npy");
    assert_eq!(gs, [2, 9]);
    for (b, img) in images.iter().enumerate() {
        let enc = encdec::encode(&m, img).unwrap();
        assert_close(
            &format!("encoder_hidden_states[{b}]"),
            &enc.data,
            &enc_want[b * 17 * 32..(b + 1) * 17 * 32],
        );
        let l = encdec::logits(&m, &enc, &ids(&dec_ids[b * 8..(b + 1) * 8])).unwrap();
        assert_close(
            &format!("logits[{b}]"),
            &l.data,
            &logits[b * 8 * 16..(b + 1) * 8 * 16],
        );
        let l = encdec::logits(&m, &enc, &ids(&greedy[b * 9..(b + 1) * 9])).unwrap();
        assert_close(
            &format!("greedy_logits[{b}]"),
            &l.data,
            &greedy_logits[b * 9 * 16..(b + 1) * 9 * 16],
        );
    }
    let generated = encdec::generate(&m, &images, 8).unwrap();
    let want: Vec<Vec<usize>> = greedy.chunks_exact(9).map(ids).collect();
    assert_eq!(generated, want);
    // Row 1 stops at eos (2) and is padded with pad (1); row 0 never stops.
    assert_eq!(want[1], [0, 9, 9, 9, 9, 2, 1, 1, 1]);
}

// ---------------------------------------------------------------------------------------------
// Broken checkpoints.

/// Copies a fixture's config into a temp dir and writes `tensors` (after `edit`) as F32.
fn broken_checkpoint(
    model: &str,
    edit: impl FnOnce(&mut TensorMap),
) -> (tempfile::TempDir, String) {
    let src = dir(model);
    let mut tensors = read_safetensors(&src.join(WEIGHTS_FILE)).unwrap();
    edit(&mut tensors);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(src.join(CONFIG_FILE), tmp.path().join(CONFIG_FILE)).unwrap();
    write_safetensors(&tmp.path().join(WEIGHTS_FILE), &tensors, Dtype::F32).unwrap();
    let err = Model::load(tmp.path()).map(|_| ()).unwrap_err().to_string();
    (tmp, err)
}

#[test]
fn missing_tensor_is_named() {
    let (_t, err) = broken_checkpoint("hf-vit-tiny", |t| {
        t.remove("vit.encoder.layer.1.attention.attention.key.bias");
    });
    assert_eq!(
        err,
        "missing tensor `vit.encoder.layer.1.attention.attention.key.bias`"
    );
}

#[test]
fn misshaped_tensor_is_named_with_both_shapes() {
    let (_t, err) = broken_checkpoint("hf-gpt2-tiny", |t| {
        let w = t.get_mut("transformer.h.0.attn.c_attn.weight").unwrap();
        // A Linear-layout [out, in] weight where GPT-2 stores Conv1D [in, out].
        w.shape = vec![96, 32];
    });
    assert_eq!(
        err,
        "tensor `transformer.h.0.attn.c_attn.weight` has shape [96, 32], expected [32, 96]"
    );
}

#[test]
fn nan_weight_is_named() {
    let (_t, err) = broken_checkpoint("hf-vision-encoder-decoder-tiny", |t| {
        t.get_mut("decoder.transformer.h.1.crossattention.q_attn.weight")
            .unwrap()
            .data[5] = f32::NAN;
    });
    assert_eq!(
        err,
        "tensor `decoder.transformer.h.1.crossattention.q_attn.weight` contains NaN at flat index 5"
    );
}

#[test]
fn unexpected_and_extra_layer_tensors() {
    let (_t, err) = broken_checkpoint("hf-vit-tiny", |t| {
        let x = t["classifier.bias"].clone();
        t.insert("vit.embeddings.mask_token".into(), x);
    });
    assert_eq!(err, "unexpected tensor `vit.embeddings.mask_token`");
    let (_t, err) = broken_checkpoint("hf-gpt2-tiny", |t| {
        let x = t["transformer.h.1.ln_1.weight"].clone();
        t.insert("transformer.h.2.ln_1.weight".into(), x);
    });
    assert_eq!(
        err,
        "config disagrees with tensors: `n_layer` is 2 but tensor `transformer.h.2.ln_1.weight` exists"
    );
}

#[test]
fn known_unused_tensors_are_ignored() {
    let src = dir("hf-vision-encoder-decoder-tiny");
    let mut tensors = read_safetensors(&src.join(WEIGHTS_FILE)).unwrap();
    let w = tensors["encoder.layernorm.weight"].clone();
    tensors.insert("encoder.pooler.dense.bias".into(), w.clone());
    tensors.insert(
        "decoder.lm_head.weight".into(),
        tensors["decoder.transformer.wte.weight"].clone(),
    );
    tensors.insert("decoder.transformer.h.0.attn.masked_bias".into(), w);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(src.join(CONFIG_FILE), tmp.path().join(CONFIG_FILE)).unwrap();
    write_safetensors(&tmp.path().join(WEIGHTS_FILE), &tensors, Dtype::F32).unwrap();
    assert_eq!(load_encdec(tmp.path()), load_encdec(&src));
}

#[test]
fn unsupported_dtype_is_named() {
    let src = dir("hf-gpt2-tiny");
    let tensors = read_safetensors(&src.join(WEIGHTS_FILE)).unwrap();
    let raw: Vec<RawTensor> = tensors
        .iter()
        .map(|(name, t)| {
            let (dtype, bytes) = if name == "transformer.wpe.weight" {
                (
                    "F64",
                    t.data
                        .iter()
                        .flat_map(|&x| (x as f64).to_le_bytes())
                        .collect(),
                )
            } else {
                ("F32", Dtype::F32.encode(&t.data))
            };
            RawTensor {
                name: name.clone(),
                dtype: dtype.into(),
                shape: t.shape.clone(),
                bytes,
            }
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(src.join(CONFIG_FILE), tmp.path().join(CONFIG_FILE)).unwrap();
    std::fs::write(tmp.path().join(WEIGHTS_FILE), serialize_raw(&raw)).unwrap();
    let err = Model::load(tmp.path()).map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        err,
        "tensor `transformer.wpe.weight`: unsupported dtype F64 (supported: F32, F16, BF16)"
    );
}

#[test]
fn unsupported_config_value_is_named() {
    let src = dir("hf-gpt2-tiny");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = std::fs::read_to_string(src.join(CONFIG_FILE))
        .unwrap()
        .replace("\"gelu_new\"", "\"silu\"");
    std::fs::write(tmp.path().join(CONFIG_FILE), cfg).unwrap();
    std::fs::copy(src.join(WEIGHTS_FILE), tmp.path().join(WEIGHTS_FILE)).unwrap();
    let err = Model::load(tmp.path()).map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        err,
        "config.json: unsupported value for `activation_function`: \"silu\""
    );
}

/// Writes the fixture's weights as F16 / BF16 and checks the logits stay close to the F32 ones.
#[test]
fn f16_and_bf16_round_trip() {
    let src = dir("hf-vit-tiny");
    let tensors = read_safetensors(&src.join(WEIGHTS_FILE)).unwrap();
    let (_, inputs) = f32s("hf-vit-tiny", "inputs.npy");
    let reference = vit_logits(&load_vit(&src), &inputs);
    // Bounds: half-precision weights (11/8 significant bits) on logits of std ~1.1.
    for (dtype, tol) in [(Dtype::F16, 0.02), (Dtype::BF16, 0.15)] {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::copy(src.join(CONFIG_FILE), tmp.path().join(CONFIG_FILE)).unwrap();
        let path = tmp.path().join(WEIGHTS_FILE);
        write_safetensors(&path, &tensors, dtype).unwrap();
        // The file really is half-size, and each value is the f32 rounded to that format.
        let back = read_safetensors(&path).unwrap();
        for (name, t) in &tensors {
            let b = &back[name];
            assert_eq!(b.shape, t.shape);
            let rel = if dtype == Dtype::F16 {
                1.0 / 1024.0
            } else {
                1.0 / 128.0
            };
            for (x, y) in t.data.iter().zip(&b.data) {
                assert!((x - y).abs() <= rel * x.abs() + 1e-7, "{name}: {x} vs {y}");
            }
        }
        let got = vit_logits(&load_vit(tmp.path()), &inputs);
        let d = max_abs_diff(&got, &reference);
        assert!(d > 0.0 && d < tol, "{dtype:?}: max abs diff {d}");
    }
}
