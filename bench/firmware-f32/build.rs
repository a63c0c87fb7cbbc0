//! Imports the f32 vit-mnist checkpoint (`models/vit-mnist`: config.json + model.safetensors)
//! with the `tools` importer (the same loader as the host f32 reference, with its strict name
//! and shape checks) and writes `OUT_DIR/model.rs`: the dimensions as constants and every
//! tensor as a `static [f32; N]` (flash, like the int8 blob), plus one held-out input image
//! (`models/data/mnist_test_500.npy`, index `BENCH_F32_IMAGE`, default 0) and its label.
//! Also writes memory.x for the QEMU machine in `BENCH_MACHINE`.
//!
//! Pack-time layout changes (no arithmetic): the query, key and value projections are
//! concatenated into one `[3·D, D]` weight (rows q | k | v), as the int8 blob does; every linear
//! weight is stored in blocks of 4 outputs, input-major inside a block ([`interleave4`]).
use std::fmt::Write as _;
use std::{env, fs, path::PathBuf};
use tools::checkpoint::config::{Activation, NormPlacement};
use tools::model::{LayerNorm, Linear, Model};

fn arr(src: &mut String, name: &str, v: &[f32]) {
    write!(src, "pub static {name}: [f32; {}] = [", v.len()).unwrap();
    for x in v {
        assert!(x.is_finite(), "{name}: non-finite value");
        // `{:?}` prints the shortest text that parses back to the same f32.
        write!(src, "{x:?},").unwrap();
    }
    src.push_str("];\n");
}

/// Pack-time weight layout of the f32 kernel (a reordering, no arithmetic): outputs in blocks
/// of 4, each block stored input-major (`w[o][i], w[o+1][i], w[o+2][i], w[o+3][i]` for
/// `i = 0..in`), so that the kernel loads the 4 weights of one input index from consecutive
/// addresses; the `out % 4` last rows stay row-major after the blocks.
fn interleave4(w: &[f32], out_dim: usize, in_dim: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(w.len());
    let blocks = out_dim / 4;
    for b in 0..blocks {
        for i in 0..in_dim {
            for k in 0..4 {
                v.push(w[(4 * b + k) * in_dim + i]);
            }
        }
    }
    v.extend_from_slice(&w[blocks * 4 * in_dim..]);
    v
}

fn linear(src: &mut String, name: &str, l: &Linear) {
    arr(
        src,
        &format!("{name}_W"),
        &interleave4(&l.weight, l.out_dim, l.in_dim),
    );
    arr(src, &format!("{name}_B"), l.bias.as_ref().expect("bias"));
}

fn ln(src: &mut String, name: &str, l: &LayerNorm) {
    arr(src, &format!("{name}_G"), &l.gamma);
    arr(src, &format!("{name}_B"), &l.beta);
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../..");
    let ckpt = root.join("models/vit-mnist");
    let images = root.join("models/data/mnist_test_500.npy");
    let labels = root.join("models/data/mnist_test_500_labels.npy");
    println!("cargo:rerun-if-changed=build.rs");
    for p in [
        ckpt.join("config.json"),
        ckpt.join("model.safetensors"),
        images.clone(),
        labels.clone(),
    ] {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rerun-if-env-changed=BENCH_MACHINE");
    println!("cargo:rerun-if-env-changed=BENCH_F32_IMAGE");

    // memory.x, as bench/firmware does.
    let machine = env::var("BENCH_MACHINE").unwrap_or_else(|_| "mps2-an386".into());
    let memory = match machine.as_str() {
        "mps2-an386" | "mps2-an500" => {
            "MEMORY { FLASH : ORIGIN = 0x00000000, LENGTH = 4M\n RAM : ORIGIN = 0x20000000, LENGTH = 4M }\n"
        }
        "mps2-an505" => {
            "MEMORY { FLASH : ORIGIN = 0x10000000, LENGTH = 4M\n RAM : ORIGIN = 0x38000000, LENGTH = 2M }\n"
        }
        m => panic!("unsupported BENCH_MACHINE {m} (the f32 baseline needs an FPU core)"),
    };
    fs::write(out.join("memory.x"), memory).unwrap();
    println!("cargo:rustc-link-search={}", out.display());

    let model = match Model::load(&ckpt).unwrap_or_else(|e| panic!("{}: {e}", ckpt.display())) {
        Model::Vit(m) => m,
        other => panic!("expected a ViT classifier, got {}", other.kind()),
    };
    let enc = &model.encoder;
    let cfg = &enc.config;
    assert_eq!(cfg.norm_placement, NormPlacement::Pre, "pre-norm only");
    assert_eq!(cfg.activation, Activation::GeluErf, "exact-erf GELU only");
    assert_eq!(cfg.num_channels, 1, "one channel only");
    let d = cfg.hidden_size;
    let (h, w) = cfg.image_size;
    let (ph, pw) = cfg.patch_size;
    let (gr, gc) = cfg.grid();
    let t = cfg.seq_len();
    let final_ln = enc.final_ln.as_ref().expect("final LayerNorm");

    let mut src = String::new();
    writeln!(src, "pub const D: usize = {d};").unwrap();
    writeln!(src, "pub const HEADS: usize = {};", cfg.num_heads).unwrap();
    writeln!(src, "pub const MLP: usize = {};", cfg.intermediate_size).unwrap();
    writeln!(src, "pub const LAYERS: usize = {};", enc.layers.len()).unwrap();
    writeln!(src, "pub const T: usize = {t};").unwrap();
    writeln!(src, "pub const IMG_H: usize = {h};").unwrap();
    writeln!(src, "pub const IMG_W: usize = {w};").unwrap();
    writeln!(src, "pub const PATCH_H: usize = {ph};").unwrap();
    writeln!(src, "pub const PATCH_W: usize = {pw};").unwrap();
    writeln!(src, "pub const GRID_R: usize = {gr};").unwrap();
    writeln!(src, "pub const GRID_C: usize = {gc};").unwrap();
    writeln!(src, "pub const LABELS: usize = {};", cfg.num_labels).unwrap();
    writeln!(
        src,
        "pub const LN_EPS: f32 = {:?};",
        cfg.layer_norm_eps as f32
    )
    .unwrap();
    // 1/sqrt(head dim), rounded once (the reference scales by the f64 value).
    let hd = d / cfg.num_heads;
    writeln!(
        src,
        "pub const ATT_SCALE: f32 = {:?};",
        (1.0 / (hd as f64).sqrt()) as f32
    )
    .unwrap();
    for l in enc.layers.iter().map(|l| &l.ln1).chain([final_ln]) {
        assert_eq!(l.eps, cfg.layer_norm_eps, "one LayerNorm epsilon");
    }

    linear(&mut src, "PATCH_PROJ", &enc.patch);
    arr(&mut src, "CLS", &enc.cls);
    arr(&mut src, "POS", &enc.pos.data);
    let mut n_params = enc.patch.weight.len() + d + enc.cls.len() + enc.pos.data.len();
    let mut layers = String::from("pub static LAYER: [Layer; LAYERS] = [");
    for (i, l) in enc.layers.iter().enumerate() {
        ln(&mut src, &format!("L{i}_LN1"), &l.ln1);
        ln(&mut src, &format!("L{i}_LN2"), &l.ln2);
        let mut qkv_w = l.query.weight.clone();
        qkv_w.extend_from_slice(&l.key.weight);
        qkv_w.extend_from_slice(&l.value.weight);
        let mut qkv_b = l.query.bias.clone().expect("qkv_bias");
        qkv_b.extend_from_slice(l.key.bias.as_ref().expect("qkv_bias"));
        qkv_b.extend_from_slice(l.value.bias.as_ref().expect("qkv_bias"));
        arr(
            &mut src,
            &format!("L{i}_QKV_W"),
            &interleave4(&qkv_w, 3 * d, d),
        );
        arr(&mut src, &format!("L{i}_QKV_B"), &qkv_b);
        linear(&mut src, &format!("L{i}_ATT_OUT"), &l.attn_out);
        linear(&mut src, &format!("L{i}_FC1"), &l.fc1);
        linear(&mut src, &format!("L{i}_FC2"), &l.fc2);
        n_params += 4 * d + qkv_w.len() + qkv_b.len();
        for lin in [&l.attn_out, &l.fc1, &l.fc2] {
            n_params += lin.weight.len() + lin.out_dim;
        }
        write!(
            layers,
            "Layer {{ ln1_g: &L{i}_LN1_G, ln1_b: &L{i}_LN1_B, qkv_w: &L{i}_QKV_W, qkv_b: &L{i}_QKV_B, \
             out_w: &L{i}_ATT_OUT_W, out_b: &L{i}_ATT_OUT_B, ln2_g: &L{i}_LN2_G, ln2_b: &L{i}_LN2_B, \
             fc1_w: &L{i}_FC1_W, fc1_b: &L{i}_FC1_B, fc2_w: &L{i}_FC2_W, fc2_b: &L{i}_FC2_B }},"
        )
        .unwrap();
    }
    layers.push_str("];\n");
    src.push_str(&layers);
    ln(&mut src, "FINAL_LN", final_ln);
    linear(&mut src, "CLASSIFIER", &model.classifier);
    n_params += 2 * d + model.classifier.weight.len() + model.classifier.out_dim;
    writeln!(src, "pub const PARAMS: usize = {n_params};").unwrap();

    // One held-out image (test split), used as pixel_values unchanged.
    let idx: usize = env::var("BENCH_F32_IMAGE")
        .ok()
        .map(|v| v.parse().expect("BENCH_F32_IMAGE: an index"))
        .unwrap_or(0);
    let (shape, px) = tools::checkpoint::npy::read_npy_f32(&images).unwrap();
    assert_eq!(&shape[1..], &[1, h, w], "image shape");
    assert!(idx < shape[0], "BENCH_F32_IMAGE {idx} out of range");
    let (_, lab) = tools::checkpoint::npy::read_npy_i64(&labels).unwrap();
    arr(&mut src, "IMAGE", &px[idx * h * w..(idx + 1) * h * w]);
    writeln!(src, "pub const IMAGE_INDEX: usize = {idx};").unwrap();
    writeln!(src, "pub const LABEL: i64 = {};", lab[idx]).unwrap();
    fs::write(out.join("model.rs"), src).unwrap();
}
