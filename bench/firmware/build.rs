//! Generates the benchmark's parameters at the shipped shapes with core-attn's pack-time helpers
//! (deterministic pseudo-random weights), and memory.x for the QEMU machine in BENCH_MACHINE.
//!
//! `BENCH_SUITE=models` (the whole-model firmware): embeds the shipped blobs named in
//! `BENCH_MODELS` (`models/<name>.tatn`, comma-separated) with one held-out input each from
//! `models/data`, quantized and run on the host by `board_common::host` (the same code the
//! boards' tests compare against), and links with the real chip's memory map of that machine
//! (`boards/<machine>/memory.x`), so a model that does not fit fails to link.
use core_attn::attention::AttentionParams;
use core_attn::norm::LayerNormParams;
use core_attn::requant::QParams;
use std::fmt::Write as _;
use std::{env, fs, path::PathBuf};

mod models {
    //! Codegen of the whole-model suite (`OUT_DIR/models.rs`).
    use board_common::host::{load, result_lines, HostInputs};
    use core_attn::blob::BufferSizes;
    use std::fmt::Write as _;
    use std::fs;
    use std::path::{Path, PathBuf};

    /// `models.rs` of the kernel suite.
    pub const EMPTY: &str = "pub static MODELS: &[Model] = &[];\n\
        pub const X: usize = 1; pub const NORMED: usize = 1; pub const WIDE: usize = 1;\n\
        pub const SCORES: usize = 1; pub const PATCH: usize = 1; pub const LOGITS: usize = 1;\n\
        pub const KV: usize = 1; pub const CROSS: usize = 1; pub const IDS: usize = 1;\n\
        pub const LAYERS: usize = 1;\n\
        pub const LLAMA_CONTEXTS: [usize; 2] = [0, 0]; pub const LLAMA_STEPS: usize = 0;\n";

    /// (held-out input file in models/data, new tokens) of each shipped model.
    fn input_of(name: &str) -> (&'static str, usize) {
        match name {
            "vit-mnist" => ("mnist_test_500.npy", 0),
            // One strip, decoded greedily to its end (eos), at most the model's positions.
            "digit-reader" => ("strips_test_100.npy", 16),
            // Prompt 0 (32 characters), then 32 generated characters.
            "char-lm" => ("char_lm_prompts.npy", 32),
            n => panic!("BENCH_MODELS: unknown model {n}"),
        }
    }

    /// The shipped Llama (`models/llama-kjv.tatn`, 256 positions).
    pub const LLAMA: &str = "llama-kjv";
    /// Llama decode schedule (`models.rs` runs the same): greedy from BOS without stopping at
    /// eos, timed steps `[P, P + LLAMA_STEPS)` for each `P` in `LLAMA_CONTEXTS`.
    /// The second context's steps end at position 255, the shipped model's last.
    pub const LLAMA_CONTEXTS: [usize; 2] = [64, 248];
    /// Timed steps per context.
    pub const LLAMA_STEPS: usize = 8;
    /// Ids of the whole sequence (BOS, then one per step).
    pub const LLAMA_IDS: usize = 248 + 8 + 1;

    pub struct Llama {
        pub path: PathBuf,
        pub buffers: BufferSizes,
        pub layers: usize,
        pub bos: u32,
        pub expected: String,
    }

    /// The host's result line of the Llama schedule: the same core-attn steps on the host.
    fn llama(root: &Path) -> Llama {
        use core_attn::llama::{llama_step, LlamaModel};
        use core_attn::model::{argmax_i8, kv_caches, ModelBuffers};
        let path = root.join("models").join(format!("{LLAMA}.tatn"));
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (the shipped model)", path.display()));
        let aligned = board_common::host::Aligned::new(&bytes);
        let blob = aligned.parse().expect("llama blob");
        let d = blob.llama_dims();
        let b = blob.buffers();
        let total = LLAMA_CONTEXTS[1] + LLAMA_STEPS;
        assert!(
            d.max_positions >= total,
            "{LLAMA}: {} positions < {total}",
            d.max_positions
        );
        let (mut x, mut normed, mut wide) =
            (vec![0i8; b.x], vec![0i8; b.normed], vec![0i8; b.wide]);
        let (mut scores, mut patch, mut logits) = (
            vec![0i32; b.scores],
            vec![0i8; b.patch],
            vec![0i8; b.logits],
        );
        let mut kv = vec![0i8; b.kv];
        let mut bufs = ModelBuffers {
            x: &mut x,
            normed: &mut normed,
            wide: &mut wide,
            scores: &mut scores,
            patch: &mut patch,
            logits: &mut logits,
        };
        let mut caches: Vec<_> = kv_caches(&mut kv, d.layers, d.max_positions, d.kv_width())
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let bos = blob.llama_bos();
        let mut out = vec![bos];
        let mut hash = board_common::format::LogitsFnv::new();
        for pos in 0..total {
            let l = llama_step(&blob, out[pos], &mut caches, &mut bufs, &mut |_, _| {}).unwrap();
            hash.update(l);
            out.push(argmax_i8(l) as u32);
        }
        let mut expected = String::new();
        board_common::format::ids_line(&mut expected, LLAMA, "prompt", 0, hash.value(), &out)
            .unwrap();
        Llama {
            path: fs::canonicalize(&path).unwrap(),
            buffers: b,
            layers: d.layers,
            bos,
            expected: expected.trim_end().to_string(),
        }
    }

    pub fn generate(out: &Path, machine: &str, list: &str) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mem = root.join("boards").join(machine).join("memory.x");
        println!("cargo:rerun-if-changed={}", mem.display());
        fs::copy(&mem, out.join("memory.x")).expect("boards/<machine>/memory.x");
        let mut s = String::new();
        let mut max = BufferSizes::default();
        let (mut ids, mut layers) = (1usize, 1usize);
        s.push_str("pub static MODELS: &[Model] = &[\n");
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == LLAMA {
                let l = llama(&root);
                max.x = max.x.max(l.buffers.x);
                max.normed = max.normed.max(l.buffers.normed);
                max.wide = max.wide.max(l.buffers.wide);
                max.scores = max.scores.max(l.buffers.scores);
                max.logits = max.logits.max(l.buffers.logits);
                max.kv = max.kv.max(l.buffers.kv);
                layers = layers.max(l.layers);
                ids = ids.max(LLAMA_IDS);
                writeln!(
                    s,
                    "    Model {{ name: {name:?}, blob: &board_common::Align16(*include_bytes!({:?})), \
                     image: &[], prompt: &[{}], max_new: 0, expected: {:?} }},",
                    l.path.display(),
                    l.bos,
                    l.expected
                )
                .unwrap();
                continue;
            }
            let (inputs, max_new) = input_of(name);
            let path = root.join("models").join(format!("{name}.tatn"));
            let inp = root.join("models/data").join(inputs);
            println!("cargo:rerun-if-changed={}", path.display());
            println!("cargo:rerun-if-changed={}", inp.display());
            let m = load(&path, Some(&inp), Some(1), max_new.max(1)).unwrap();
            assert!(m.parse_error.is_none(), "{name}: {:?}", m.parse_error);
            let expected = result_lines(&m).unwrap().join("\n");
            let b = &m.buffers;
            max.x = max.x.max(b.x);
            max.normed = max.normed.max(b.normed);
            max.wide = max.wide.max(b.wide);
            max.scores = max.scores.max(b.scores);
            max.patch = max.patch.max(b.patch);
            max.logits = max.logits.max(b.logits);
            max.kv = max.kv.max(b.kv);
            max.cross_kv = max.cross_kv.max(b.cross_kv);
            layers = layers.max(m.layers);
            let (image, prompt) = match &m.inputs {
                HostInputs::Images(v) => (format!("{:?}", v[0]), "[]".to_string()),
                HostInputs::Prompts(v) => ("[]".to_string(), format!("{:?}", v[0])),
            };
            if let HostInputs::Prompts(v) = &m.inputs {
                ids = ids.max(v[0].len() + m.max_new);
            } else {
                ids = ids.max(1 + m.max_new);
            }
            let p = fs::canonicalize(&path).unwrap();
            writeln!(
                s,
                "    Model {{ name: {name:?}, blob: &board_common::Align16(*include_bytes!({:?})), \
                 image: &{image}, prompt: &{prompt}, max_new: {}, expected: {expected:?} }},",
                p.display(),
                m.max_new
            )
            .unwrap();
        }
        s.push_str("];\n");
        writeln!(
            s,
            "pub const LLAMA_CONTEXTS: [usize; 2] = {LLAMA_CONTEXTS:?};\n\
             pub const LLAMA_STEPS: usize = {LLAMA_STEPS};"
        )
        .unwrap();
        for (k, v) in [
            ("X", max.x),
            ("NORMED", max.normed),
            ("WIDE", max.wide),
            ("SCORES", max.scores),
            ("PATCH", max.patch),
            ("LOGITS", max.logits),
            ("KV", max.kv),
            ("CROSS", max.cross_kv),
            ("IDS", ids),
            ("LAYERS", layers),
        ] {
            writeln!(s, "pub const {k}: usize = {};", v.max(1)).unwrap();
        }
        fs::write(out.join("models.rs"), s).unwrap();
    }
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn i8(&mut self) -> i8 {
        (self.next() >> 8) as u8 as i8
    }
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u32) as i32
    }
}

fn arr<T: std::fmt::Display>(src: &mut String, name: &str, ty: &str, v: &[T]) {
    write!(src, "pub static {name}: [{ty}; {}] = [", v.len()).unwrap();
    for x in v {
        write!(src, "{x},").unwrap();
    }
    src.push_str("];\n");
}

/// `r = m · 2^(s-31)` with `m` in `[2^30, 2^31)` (CMSIS-NN's multiplier and shift).
fn q31(r: f64) -> (i32, i32) {
    let mut e = 0i32;
    let mut f = r;
    while f >= 1.0 {
        f /= 2.0;
        e += 1;
    }
    while f < 0.5 {
        f *= 2.0;
        e -= 1;
    }
    let mut m = (f * 2f64.powi(31)).round() as i64;
    if m == 1 << 31 {
        m /= 2;
        e += 1;
    }
    (m as i32, e)
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let machine = env::var("BENCH_MACHINE").unwrap_or_else(|_| "mps2-an386".into());
    println!("cargo:rerun-if-env-changed=BENCH_MACHINE");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BENCH_SUITE");
    println!("cargo:rerun-if-env-changed=BENCH_MODELS");
    let suite = env::var("BENCH_SUITE").unwrap_or_else(|_| "kernels".into());
    println!("cargo:rustc-check-cfg=cfg(bench_models)");
    if suite == "models" {
        println!("cargo:rustc-cfg=bench_models");
        let models = env::var("BENCH_MODELS").unwrap_or_else(|_| "vit-mnist".into());
        models::generate(&out, &machine, &models);
    } else {
        // The models module is compiled in both suites; give it an empty table.
        fs::write(out.join("models.rs"), models::EMPTY).unwrap();
    }
    let memory = match machine.as_str() {
        // mps2-an386/an500: 4 MiB SSRAM1 at 0 (code), 4 MiB SSRAM2/3 at 0x20000000.
        "mps2-an386" | "mps2-an500" | "mps2-an385" => {
            "MEMORY { FLASH : ORIGIN = 0x00000000, LENGTH = 4M\n RAM : ORIGIN = 0x20000000, LENGTH = 4M }\n"
        }
        // an505 (M33): code in SSRAM1 at 0x10000000 (secure alias), data at 0x38000000.
        "mps2-an505" => {
            "MEMORY { FLASH : ORIGIN = 0x10000000, LENGTH = 4M\n RAM : ORIGIN = 0x38000000, LENGTH = 2M }\n"
        }
        // an547 (M55): ITCM at 0, DTCM at 0x20000000.
        "mps3-an547" => {
            "MEMORY { FLASH : ORIGIN = 0x00000000, LENGTH = 512K\n RAM : ORIGIN = 0x20000000, LENGTH = 512K }\n"
        }
        // micro:bit (nRF51, M0): 256 KiB flash, 16 KiB RAM.
        "microbit" => {
            "MEMORY { FLASH : ORIGIN = 0x00000000, LENGTH = 256K\n RAM : ORIGIN = 0x20000000, LENGTH = 16K }\n"
        }
        m => panic!("unknown BENCH_MACHINE {m}"),
    };
    if suite != "models" {
        fs::write(out.join("memory.x"), memory).unwrap();
    }
    println!("cargo:rustc-link-search={}", out.display());

    let mut rng = Lcg(0x5eed_1234);
    let mut src = String::new();
    // Linear layers: (name, in, out).
    for (name, inf, outf) in [
        ("L64X192", 64usize, 192usize),
        ("L64X64", 64, 64),
        ("L64X128", 64, 128),
        ("L128X64", 128, 64),
    ] {
        let w: Vec<i8> = (0..inf * outf).map(|_| rng.i8()).collect();
        let b: Vec<i32> = (0..outf).map(|_| rng.range(-4096, 4096)).collect();
        let m: Vec<i32> = (0..outf).map(|_| rng.range(1 << 30, i32::MAX)).collect();
        // acc ~ ±2^17 for random int8: shift so outputs span int8 (right shift 31 - s ≈ 40).
        let s: Vec<i8> = (0..outf).map(|_| rng.range(-11, -8) as i8).collect();
        arr(&mut src, &format!("{name}_W"), "i8", &w);
        arr(&mut src, &format!("{name}_B"), "i32", &b);
        arr(&mut src, &format!("{name}_M"), "i32", &m);
        arr(&mut src, &format!("{name}_S"), "i8", &s);
        // embedded-nn takes the shifts as i32 (same convention: factor = m · 2^(s-31)).
        let s32: Vec<i32> = s.iter().map(|&v| v as i32).collect();
        arr(&mut src, &format!("{name}_S32"), "i32", &s32);
    }
    let x: Vec<i8> = (0..17 * 128).map(|_| rng.i8()).collect();
    arr(&mut src, "X", "i8", &x);
    // Q/K/V of one layer: 17 tokens, fused q|k|v rows of 3·64, moderate magnitudes.
    let qkv: Vec<i8> = (0..17 * 192).map(|_| (rng.i8() as i32 / 2) as i8).collect();
    arr(&mut src, "QKV", "i8", &qkv);
    let a = AttentionParams::quantize(
        4,
        16,
        0.05,
        0.05,
        0.05,
        QParams {
            scale: 0.02,
            zero_point: 0,
        },
    )
    .unwrap();
    arr(&mut src, "EXP_HI", "u16", &a.exp_hi);
    arr(&mut src, "EXP_LO", "u16", &a.exp_lo);
    writeln!(
        src,
        "pub const SCORE_TO_INDEX: core_attn::Requant = core_attn::Requant {{ multiplier: {}, shift: {} }};",
        a.score_to_index.multiplier, a.score_to_index.shift
    )
    .unwrap();
    writeln!(
        src,
        "pub const ATT_OUT: core_attn::Requant = core_attn::Requant {{ multiplier: {}, shift: {} }};",
        a.output.multiplier, a.output.shift
    )
    .unwrap();
    // embedded-nn's attention (CMSIS-NN conventions) on the same Q/K/V (scales 0.05, zero
    // points 0) and output scale (0.02): QKᵀ/√16 requantized to int8 logits of scale 1/8, an
    // int8 softmax (probabilities of scale 1/256, zero point -128), P·V requantized to 0.02.
    let logit_scale = 0.125f64;
    let (m, s) = q31(0.05 * 0.05 / 4.0 / logit_scale);
    writeln!(src, "pub const ENN_LOGITS: (i32, i32) = ({m}, {s});").unwrap();
    // TFLite PreprocessSoftmaxScaling (beta 1, 5 integer bits) and CalculateInputRadius.
    let (m, s) = q31(logit_scale * (1u64 << 26) as f64);
    let diff_min = -((31.0 * (1u64 << 26) as f64 / 2f64.powi(s)).floor() as i32);
    writeln!(
        src,
        "pub const ENN_SOFTMAX: (i32, i32, i32) = ({m}, {s}, {diff_min});"
    )
    .unwrap();
    let (m, s) = q31(0.05 / 256.0 / 0.02);
    writeln!(src, "pub const ENN_OUT: (i32, i32) = ({m}, {s});").unwrap();
    // int8 softmax input scale: one LSB = 0.1.
    let r =
        core_attn::Requant::from_real(0.1 / core_attn::softmax::ExpTable::default_step()).unwrap();
    writeln!(
        src,
        "pub const SOFTMAX_I8: core_attn::Requant = core_attn::Requant {{ multiplier: {}, shift: {} }};",
        r.multiplier, r.shift
    )
    .unwrap();
    // Softmax scores: attention-like i32 scores.
    let sc: Vec<i32> = (0..65).map(|_| rng.range(-6000, 6000)).collect();
    arr(&mut src, "SCORES", "i32", &sc);
    // LayerNorm over 64.
    let gamma: Vec<f32> = (0..64).map(|i| 0.8 + (i % 7) as f32 * 0.05).collect();
    let beta: Vec<f32> = (0..64).map(|i| (i % 5) as f32 * 0.02 - 0.04).collect();
    let ln = LayerNormParams::quantize(
        &gamma,
        &beta,
        1e-5,
        QParams {
            scale: 0.05,
            zero_point: 3,
        },
        QParams {
            scale: 0.03,
            zero_point: -2,
        },
    )
    .unwrap();
    arr(&mut src, "LN_GAMMA", "i32", &ln.gamma);
    arr(&mut src, "LN_BETA", "i32", &ln.beta);
    writeln!(src, "pub const LN_EPS: u64 = {};", ln.epsilon).unwrap();
    writeln!(src, "pub const LN_ZP: i32 = {};", ln.output_zero_point).unwrap();
    let gelu = core_attn::activation::build_lut(
        QParams {
            scale: 0.05,
            zero_point: 0,
        },
        QParams {
            scale: 0.04,
            zero_point: -10,
        },
        core_attn::activation::gelu_erf,
    );
    arr(&mut src, "GELU", "i8", &gelu);

    // Any-width layers (char-lm's per-token shapes, the ViT's 49-input patch embedding) and
    // the randomized variant check: one weight array shared as prefixes (96×384 and 384×96 are
    // the same bytes), with its own generator so that the data above does not change.
    let mut rng = Lcg(0x0a11_3d7b);
    let w: Vec<i8> = (0..384 * 96).map(|_| rng.i8()).collect();
    let b: Vec<i32> = (0..384).map(|_| rng.range(-4096, 4096)).collect();
    let m: Vec<i32> = (0..384).map(|_| rng.range(1 << 30, i32::MAX)).collect();
    let s: Vec<i8> = (0..384).map(|_| rng.range(-11, -8) as i8).collect();
    src.push_str("#[repr(C, align(4))]\npub struct Align4<T>(pub T);\n");
    write!(
        src,
        "pub static ANY_W: Align4<[i8; {}]> = Align4([",
        w.len()
    )
    .unwrap();
    for v in &w {
        write!(src, "{v},").unwrap();
    }
    src.push_str("]);\n");
    arr(&mut src, "ANY_B", "i32", &b);
    arr(&mut src, "ANY_M", "i32", &m);
    arr(&mut src, "ANY_S", "i8", &s);
    fs::write(out.join("params.rs"), src).unwrap();
}
