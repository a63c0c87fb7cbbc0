//! The two architectures Hugging Face does not cover (naming in tools/README.md):
//! a GPT-2 decoder with sinusoidal positions and a post-norm ViT encoder.
//! Built from the HF fixtures by renaming / dropping tensors and editing config.json.

use std::path::{Path, PathBuf};

use tools::checkpoint::npy::read_npy_f32;
use tools::checkpoint::safetensors::{
    read_safetensors, write_safetensors, Dtype, Tensor, TensorMap,
};
use tools::checkpoint::{CONFIG_FILE, WEIGHTS_FILE};
use tools::float::{gpt2, ops, vit};
use tools::model::{Model, VitModel};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// Writes `config` (the fixture's with `extra` JSON keys merged in) and `tensors`.
fn write_checkpoint(dir: &Path, fixture_name: &str, extra: &str, tensors: &TensorMap) {
    let text = std::fs::read_to_string(fixture(fixture_name).join(CONFIG_FILE)).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    let extra: serde_json::Value = serde_json::from_str(extra).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    std::fs::write(dir.join(CONFIG_FILE), cfg.to_string()).unwrap();
    write_safetensors(&dir.join(WEIGHTS_FILE), tensors, Dtype::F32).unwrap();
}

fn load_err(dir: &Path) -> String {
    Model::load(dir).map(|_| ()).unwrap_err().to_string()
}

/// PE[pos, 2k] = sin(pos / 10000^(2k/d)), PE[pos, 2k+1] = cos(same), written independently.
fn sinusoid(n: usize, d: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(n * d);
    for pos in 0..n {
        for i in 0..d {
            let k = (i / 2) as f64;
            let angle = pos as f64 / 10000f64.powf(2.0 * k / d as f64);
            v.push(if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    v
}

#[test]
fn sinusoidal_decoder() {
    let src = fixture("hf-gpt2-tiny");
    let mut tensors = read_safetensors(&src.join(WEIGHTS_FILE)).unwrap();
    let sin_dir = tempfile::tempdir().unwrap();
    let sin_cfg = r#"{"position_embedding_type": "sinusoidal"}"#;

    // wpe must not be stored for a sinusoidal decoder.
    write_checkpoint(sin_dir.path(), "hf-gpt2-tiny", sin_cfg, &tensors);
    assert_eq!(
        load_err(sin_dir.path()),
        "unexpected tensor `transformer.wpe.weight`"
    );

    tensors.remove("transformer.wpe.weight");
    write_checkpoint(sin_dir.path(), "hf-gpt2-tiny", sin_cfg, &tensors);
    let Model::Gpt2(sin) = Model::load(sin_dir.path()).unwrap() else {
        panic!("gpt2")
    };

    // Same weights with the sinusoid stored as a learned table: identical logits.
    let learned_dir = tempfile::tempdir().unwrap();
    tensors.insert(
        "transformer.wpe.weight".into(),
        Tensor::new(vec![32, 32], sinusoid(32, 32)).unwrap(),
    );
    write_checkpoint(learned_dir.path(), "hf-gpt2-tiny", "{}", &tensors);
    let Model::Gpt2(learned) = Model::load(learned_dir.path()).unwrap() else {
        panic!("gpt2")
    };
    let ids: Vec<usize> = (0..20).map(|i| (i * 7 + 3) % 64).collect();
    let a = gpt2::logits(&sin, &ids).unwrap();
    let b = gpt2::logits(&learned, &ids).unwrap();
    let d = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(d <= 1e-6, "max abs diff {d}");

    // Greedy generation is token-by-token consistent with teacher forcing.
    let g = gpt2::generate(&sin, vec![ids[..5].to_vec()], 10)
        .unwrap()
        .remove(0);
    assert_eq!(g.len(), 15);
    let l = gpt2::logits(&sin, &g).unwrap();
    for (t, &id) in g.iter().enumerate().skip(5) {
        assert_eq!(id, ops::argmax(l.row(t - 1)), "position {t}");
    }

    // Too long for n_positions (the table has n_positions rows).
    let err = gpt2::generate(&sin, vec![ids[..5].to_vec()], 29)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid input: prompt of 5 tokens + 29 new tokens needs 33 positions, model has n_positions 32"
    );
}

/// Post-norm ViT from the fixture's weights: `layernorm_before` → `attention.output.LayerNorm`,
/// `layernorm_after` → `output.LayerNorm`, no final `vit.layernorm`.
fn post_norm_tensors() -> TensorMap {
    let t = read_safetensors(&fixture("hf-vit-tiny").join(WEIGHTS_FILE)).unwrap();
    t.into_iter()
        .filter(|(n, _)| !n.starts_with("vit.layernorm."))
        .map(|(n, v)| {
            let n = n
                .replace("layernorm_before", "attention.output.LayerNorm")
                .replace("layernorm_after", "output.LayerNorm");
            (n, v)
        })
        .collect()
}

/// Straightforward f64 post-norm layer stack, written from the math, for one image.
fn naive_post_norm(t: &TensorMap, emb: &[f32], layers: usize, d: usize, heads: usize) -> Vec<f64> {
    let n = emb.len() / d;
    let get = |name: &str| -> Vec<f64> { t[name].data.iter().map(|&x| x as f64).collect() };
    let lin = |x: &[f64], p: &str, i: usize, o: usize| -> Vec<f64> {
        let (w, b) = (get(&format!("{p}.weight")), get(&format!("{p}.bias")));
        let rows = x.len() / i;
        let mut y = vec![0.0; rows * o];
        for r in 0..rows {
            for c in 0..o {
                y[r * o + c] = b[c] + (0..i).map(|k| x[r * i + k] * w[c * i + k]).sum::<f64>();
            }
        }
        y
    };
    let ln = |x: &[f64], p: &str| -> Vec<f64> {
        let (g, b) = (get(&format!("{p}.weight")), get(&format!("{p}.bias")));
        x.chunks(d)
            .flat_map(|r| {
                let m = r.iter().sum::<f64>() / d as f64;
                let v = r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / d as f64;
                (0..d)
                    .map(|i| (r[i] - m) / (v + 1e-12).sqrt() * g[i] + b[i])
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let hd = d / heads;
    let mut h: Vec<f64> = emb.iter().map(|&x| x as f64).collect();
    for l in 0..layers {
        let p = format!("vit.encoder.layer.{l}.");
        let q = lin(&h, &format!("{p}attention.attention.query"), d, d);
        let k = lin(&h, &format!("{p}attention.attention.key"), d, d);
        let v = lin(&h, &format!("{p}attention.attention.value"), d, d);
        let mut ctx = vec![0.0; n * d];
        for hh in 0..heads {
            for i in 0..n {
                let s: Vec<f64> = (0..n)
                    .map(|j| {
                        (0..hd)
                            .map(|c| q[i * d + hh * hd + c] * k[j * d + hh * hd + c])
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..hd {
                    ctx[i * d + hh * hd + c] =
                        (0..n).map(|j| e[j] / z * v[j * d + hh * hd + c]).sum();
                }
            }
        }
        let a = lin(&ctx, &format!("{p}attention.output.dense"), d, d);
        let x1: Vec<f64> = h.iter().zip(&a).map(|(x, y)| x + y).collect();
        let h1 = ln(&x1, &format!("{p}attention.output.LayerNorm"));
        let f = lin(&h1, &format!("{p}intermediate.dense"), d, 64)
            .into_iter()
            .map(|x| 0.5 * x * (1.0 + erf_simpson(x / std::f64::consts::SQRT_2)))
            .collect::<Vec<_>>();
        let o = lin(&f, &format!("{p}output.dense"), 64, d);
        let x2: Vec<f64> = h1.iter().zip(&o).map(|(x, y)| x + y).collect();
        h = ln(&x2, &format!("{p}output.LayerNorm"));
    }
    lin(&h[..d], "classifier", d, 10)
}

/// erf by numerical integration, independent of the `libm` erf the crate uses.
fn erf_simpson(x: f64) -> f64 {
    // Simpson's rule on 2/sqrt(pi) * exp(-t^2) over [0, x]; 2000 intervals is ~1e-12 here.
    let n = 2000;
    let h = x / n as f64;
    let f = |t: f64| (-t * t).exp();
    let mut s = f(0.0) + f(x);
    for i in 1..n {
        s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn post_norm_encoder() {
    let tensors = post_norm_tensors();
    let dir = tempfile::tempdir().unwrap();
    let post = r#"{"norm_placement": "post"}"#;
    write_checkpoint(dir.path(), "hf-vit-tiny", post, &tensors);
    let Model::Vit(m): Model = Model::load(dir.path()).unwrap() else {
        panic!("vit")
    };
    let m: VitModel = m;
    assert!(m.encoder.final_ln.is_none());
    let (_, inputs) = read_npy_f32(&fixture("hf-vit-tiny").join("inputs.npy")).unwrap();
    for img in inputs.chunks_exact(28 * 28) {
        let (logits, trace) = vit::classify_traced(&m, img, None).unwrap();
        let want = naive_post_norm(&tensors, &trace.hidden_states[0].data, 2, 32, 4);
        for (a, b) in logits.iter().zip(&want) {
            assert!((*a as f64 - b).abs() <= 1e-4, "{a} vs {b}");
        }
    }

    // Pre-norm names in a post-norm config, and a stray final LayerNorm, are reported.
    let pre = read_safetensors(&fixture("hf-vit-tiny").join(WEIGHTS_FILE)).unwrap();
    write_checkpoint(dir.path(), "hf-vit-tiny", post, &pre);
    assert_eq!(
        load_err(dir.path()),
        "missing tensor `vit.encoder.layer.0.attention.output.LayerNorm.weight`"
    );
    let mut extra = tensors.clone();
    extra.insert(
        "vit.layernorm.weight".into(),
        pre["vit.layernorm.weight"].clone(),
    );
    write_checkpoint(dir.path(), "hf-vit-tiny", post, &extra);
    assert_eq!(
        load_err(dir.path()),
        "unexpected tensor `vit.layernorm.weight`"
    );
}
