//! The whole-model sections of BENCHMARKS.md: every shipped model per core, the ViT by part,
//! the whole ViT against CMSIS-NN's figures, and the `embedded-nn` side-by-side table.

use super::{f2, ratio, thousands};
use crate::measure::{CoreResult, F32Row};
use crate::models::{cmsis_estimate, model_parts, vit_parts, ModelInfo, CMSIS_ATTENTION};
use std::fmt::Write as _;

/// The ViT's parts (`vit-part` regions) grouped by kind: (label, parts).
const VIT_GROUPS: &[(&str, &[&str])] = &[
    (
        "patch embedding (im2col + 16×49→64 linear) + class token + positions",
        &["embed"],
    ),
    (
        "LayerNorm (2 per layer + final)",
        &["ln1", "ln2", "final_norm"],
    ),
    ("linear QKV, proj, fc1, fc2", &["qkv", "proj", "fc1", "fc2"]),
    ("attention (17 tokens × 4 heads × 16)", &["attention"]),
    ("GELU table", &["gelu"]),
    ("residual adds", &["add1", "add2"]),
    ("classifier (64→10)", &["classifier"]),
];

/// BENCHMARKS.md sections of the whole models, the ViT by part, the CMSIS-NN estimate and the
/// embedded-nn side-by-side table.
pub fn models_markdown(
    md: &mut String,
    results: &[CoreResult],
    infos: &[ModelInfo],
    f32_vit: Option<&F32Row>,
) {
    md.push_str(WHOLE_MODELS_INTRO);
    md.push_str(
        "| model | core | what | instructions | MACs | instr/MAC | est. cycles | cycles/MAC | \
         flash (B) | RAM (B) | stack (B) | match |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for info in infos {
        for cr in results {
            let Some(m) = cr.models.iter().find(|m| m.model == info.name) else {
                continue;
            };
            let core = cr.core.name.to_uppercase();
            if let Some(why) = &m.skipped {
                writeln!(
                    md,
                    "| {} | {core} | {why} ({} KiB flash / {} KiB RAM) | – | – | – | – | – | {} | {} | – | – |",
                    info.name, cr.core.flash_kib, cr.core.ram_kib, info.flash, info.ram
                )
                .unwrap();
                continue;
            }
            for p in model_parts(info, &m.rows) {
                writeln!(
                    md,
                    "| {} | {core} | {} | {} | {} | {:.2} | {} | {:.2} | {} | {} | {} | {} |",
                    info.name,
                    p.label,
                    thousands(p.insns / p.div),
                    thousands(p.macs / p.div),
                    p.insns as f64 / p.macs as f64,
                    thousands(p.cycles / p.div),
                    p.cycles as f64 / p.macs as f64,
                    info.flash,
                    info.ram,
                    p.stack.map_or("–".into(), |s| s.to_string()),
                    if p.matched { "yes" } else { "**NO**" }
                )
                .unwrap();
            }
            if let (Some(f), "vit-mnist", "m4") = (f32_vit, info.name.as_str(), cr.core.name) {
                writeln!(
                    md,
                    "| {} | {core} | f32 baseline (`bench/firmware-f32`, micromath, FPU), 1 image | {} | {} | {:.2} | {} | {:.2} | {} | {} | {} | {} |",
                    info.name,
                    thousands(f.instructions),
                    thousands(info.enc_macs),
                    f.instructions as f64 / info.enc_macs as f64,
                    thousands(f.est_cycles),
                    f.est_cycles as f64 / info.enc_macs as f64,
                    f.flash,
                    f.ram,
                    f.stack,
                    if f.matched {
                        format!("≈ f32 reference (max abs diff {:.1e})", f.max_abs_diff)
                    } else {
                        format!("**NO** (max abs diff {:.1e})", f.max_abs_diff)
                    }
                )
                .unwrap();
            }
        }
    }
    md.push('\n');
    if f32_vit.is_some() {
        md.push_str(
            "The f32 row: the same ViT in f32 on the M4's FPU (`bench/firmware-f32`, weights as f32 \
             in flash, `micromath` exp/sqrt/erf), compared with the host's f32 reference on the same \
             image (not byte-equal: approximations); flash = its whole image, RAM = its statics. \
             Its est. cycles use the plugin's FPU classes.\n\n",
        );
    }

    // The ViT by part.
    let cores: Vec<&CoreResult> = results.iter().filter(|c| vit_parts(c).is_some()).collect();
    if !cores.is_empty() {
        md.push_str(
            "### vit-mnist inference by part (instructions)\n\n\
             A second, profiled run of the same image executes the runner's kernels one by one \
             (the order of `model::vit_classify` and `EncoderBlock::run`; fc1's GELU table applied \
             as a separate pass), each its own region; its logits equal the whole run's on every \
             core (else the firmware fails). The sum exceeds the whole run by the per-region call \
             overhead.\n\n| part | MACs |",
        );
        for c in &cores {
            write!(md, " {} |", c.core.name.to_uppercase()).unwrap();
        }
        md.push_str(" M4 instr/MAC |\n|---|---:|");
        for _ in &cores {
            md.push_str("---:|");
        }
        md.push_str("---:|\n");
        let sum = |c: &CoreResult, names: &[&str]| -> (u64, u64) {
            vit_parts(c)
                .unwrap()
                .iter()
                .filter(|r| r.kernel == "vit-part" && names.contains(&r.shape.as_str()))
                .fold((0, 0), |(i, m), r| (i + r.insns, m + r.macs))
        };
        let mut rows: Vec<(String, Vec<&str>)> = VIT_GROUPS
            .iter()
            .map(|(l, n)| (l.to_string(), n.to_vec()))
            .collect();
        rows.push((
            "**sum of parts**".into(),
            VIT_GROUPS
                .iter()
                .flat_map(|(_, n)| n.iter().copied())
                .collect(),
        ));
        for (label, names) in &rows {
            let macs = sum(cores[0], names).1;
            write!(md, "| {label} | {} |", thousands(macs)).unwrap();
            for c in &cores {
                write!(md, " {} |", thousands(sum(c, names).0)).unwrap();
            }
            let m4 = cores.iter().find(|c| c.core.name == "m4");
            match m4 {
                Some(c) if macs > 0 => {
                    writeln!(md, " {:.2} |", sum(c, names).0 as f64 / macs as f64).unwrap()
                }
                _ => md.push_str(" – |\n"),
            }
        }
        md.push_str("| **whole run** | 1 image |");
        for c in &cores {
            let w = vit_parts(c)
                .unwrap()
                .iter()
                .find(|r| r.kernel == "model:vit-mnist")
                .map_or(0, |r| r.insns);
            write!(md, " {} |", thousands(w)).unwrap();
        }
        md.push_str(" |\n\n");
    }

    // Whole ViT vs CMSIS-NN.
    if let Some(e) = results
        .iter()
        .find(|c| c.core.name == "m4")
        .and_then(cmsis_estimate)
    {
        writeln!(
            md,
            "### Whole ViT vs CMSIS-NN (M4)\n\n\
             The ViT's layers priced with the CMSIS-NN reference figures of issue 6 (QEMU 7.2, M4): \
             linear layers at 2.30 instructions/MAC (batched `arm_nn_mat_mult_nt_t_s8`) or 2.66 \
             (`arm_fully_connected_s8`), each attention layer (17 tokens × 4 heads × 16) at \
             {} instructions (CMSIS-NN pieces); CMSIS-NN has no LayerNorm, GELU table or residual \
             add, so those are **our measured** instructions (profiled run above). The patch \
             embedding counts as its 50,176 linear MACs only (patch extraction, class token and \
             positions left out, in CMSIS-NN's favour).\n\n\
             | component | count | CMSIS-NN figure | instructions (2.30) | instructions (2.66) |\n\
             |---|---:|---|---:|---:|\n\
             | linear (patch embedding, QKV, proj, fc1, fc2, classifier) | {} MACs | 2.30 / 2.66 instr/MAC | {} | {} |\n\
             | attention layers | {} | {} each | {} | {} |\n\
             | LayerNorm ×5, GELU ×2, residual adds ×4 (ours, measured) | – | – | {} | {} |\n\
             | **CMSIS-NN estimate** | | | **{}** | **{}** |\n\
             | **ours, measured whole run** | 1 image | | **{}** | **{}** |\n\
             | estimate ÷ ours | | | **{:.2}×** | **{:.2}×** |\n",
            thousands(CMSIS_ATTENTION),
            thousands(e.linear_macs),
            thousands((e.linear_macs as f64 * 2.30).round() as u64),
            thousands((e.linear_macs as f64 * 2.66).round() as u64),
            e.attention_layers,
            thousands(CMSIS_ATTENTION),
            thousands(e.attention_layers * CMSIS_ATTENTION),
            thousands(e.attention_layers * CMSIS_ATTENTION),
            thousands(e.rest),
            thousands(e.rest),
            thousands(e.est_230.round() as u64),
            thousands(e.est_266.round() as u64),
            thousands(e.ours),
            thousands(e.ours),
            e.est_230 / e.ours as f64,
            e.est_266 / e.ours as f64,
        )
        .unwrap();
        md.push_str("\nTarget (Targets table): ours at least 2× fewer instructions than the 2.30 estimate.\n\n");
    }

    // embedded-nn side by side.
    let with: Vec<&CoreResult> = results
        .iter()
        .filter(|c| c.rows.iter().any(|r| r.variant == "embedded-nn"))
        .collect();
    if !with.is_empty() {
        md.push_str(EMBEDDED_NN_INTRO);
        md.push_str(
            "| core | kernel | shape | ours (optimized) | embedded-nn | embedded-nn ÷ ours | \
             ours instr/MAC | embedded-nn instr/MAC | embedded-nn est. cycles/MAC | max abs diff (LSB) |\n\
             |---|---|---|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for c in with {
            for e in c.rows.iter().filter(|r| r.variant == "embedded-nn") {
                let Some(o) = c.rows.iter().find(|r| {
                    r.kernel == e.kernel && r.shape == e.shape && r.variant == "optimized"
                }) else {
                    continue;
                };
                writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {:.2}× | {} | {} | {} | {} (tolerance {}) |",
                    c.core.name.to_uppercase(),
                    e.kernel,
                    e.shape,
                    o.insns,
                    e.insns,
                    e.insns as f64 / o.insns as f64,
                    f2(ratio(o.insns, o.macs)),
                    f2(ratio(e.insns, e.macs)),
                    f2(ratio(e.cycles, e.macs)),
                    e.maxdiff.unwrap_or(0),
                    e.tol.unwrap_or(0)
                )
                .unwrap();
            }
        }
        md.push('\n');
    }
}

const WHOLE_MODELS_INTRO: &str = "## Whole models\n\n\
The shipped blobs (`models/*.tatn`) run through core-attn's runners (`core_attn::model`: \
`vit_classify`, `encode_for_decoder` + `greedy`, `decoder_step`), embedded in `bench/firmware` \
by its `build.rs` (`BENCH_SUITE=models`, one firmware per model and core, linked with the real \
chip's memory map from `boards/<machine>/memory.x`: a model that does not fit does not link), on \
one held-out input each from `models/data`: `vit-mnist` the first test image of \
`mnist_test_500.npy`; `digit-reader` the first strip of `strips_test_100.npy`, encoded and \
decoded greedily to its eos; `char-lm` prompt 0 of `char_lm_prompts.npy` (32 characters), then 32 \
generated characters, each one decoder step over the KV cache. Inputs are quantized and the \
expected result line computed on the host by `board_common::host` (the boards' host reference); \
`match` = the device's result line equals it byte for byte. MACs: from `tools inspect --json` \
(ViT and encoder per image, cross K/V per image), decoder steps by the same per-token formula at \
the positions actually run (checked equal to inspect's full-context figure at the last \
position). Flash = blob bytes, RAM = the runner's buffers incl. KV caches (both from the blob \
header, as `tools inspect`); stack = painted high-water mark of that model's run (from the top \
of the stack, including `main`'s frame). Chips (flash / RAM): M4 STM32F411-class 512 KiB / \
128 KiB, M7 STM32F746-class 1 MiB / 320 KiB, M33 STM32L552-class 512 KiB / 256 KiB, M55 SSE-300 \
TCMs 512 KiB / 512 KiB, M0 nRF51822 (micro:bit) 256 KiB / 16 KiB. Cycles: the M4 model above \
(M4-equivalent on the other cores).\n\n";

const EMBEDDED_NN_INTRO: &str = "### Side by side: `embedded-nn` 0.2.3\n\n\
[`embedded-nn`](https://crates.io/crates/embedded-nn) 0.2.3 (crates.io; `no_std` int8, \
\"inspired by CMSIS-NN\"; license MIT OR Apache-2.0, the same as this project's, so compatible), \
built with `default-features = false` into the same kernel firmware for every core (so it builds \
for `thumbv6m-none-eabi`, `thumbv7em-none-eabihf` and `thumbv8m.main-none-eabihf`), on the same \
data: `fully_connected_per_channel_s8` with our layers' weights, biases, multipliers and shifts \
(its fully connected layer is scalar Rust, a 4× unrolled dot product with zero-point offsets; its \
SMLAD path `vec_dot_s8` is used only by its recurrent layers), and \
`scaled_dot_product_attention_s8` on the same Q/K/V (int8 logits of scale 1/8, its CMSIS-style \
int8 softmax, P·V requantized to our output scale; Q, K, V copied out of our fused rows before \
the region). Not bit-equal by design: its requantization rounds twice (±1 LSB on the linear \
layers) and its probabilities are int8 (ours 16-bit); `max abs diff` is against our generic \
output and must stay within the stated tolerance (else the firmware fails).\n\n";
