//! Generates the benchmark's parameters at the shipped shapes with core-attn's pack-time helpers
//! (deterministic pseudo-random weights), and memory.x for the QEMU machine in BENCH_MACHINE.
use core_attn::attention::AttentionParams;
use core_attn::norm::LayerNormParams;
use core_attn::quant::QParams;
use std::fmt::Write as _;
use std::{env, fs, path::PathBuf};

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

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let machine = env::var("BENCH_MACHINE").unwrap_or_else(|_| "mps2-an386".into());
    println!("cargo:rerun-if-env-changed=BENCH_MACHINE");
    println!("cargo:rerun-if-changed=build.rs");
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
    fs::write(out.join("memory.x"), memory).unwrap();
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
    fs::write(out.join("params.rs"), src).unwrap();
}
