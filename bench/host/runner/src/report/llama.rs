//! The Llama speed section of BENCHMARKS.md (issue 14).

use super::thousands;
use crate::llama;
use crate::measure::CoreResult;
use crate::models::ModelInfo;
use crate::parse::Row;
use std::fmt::Write as _;

/// Published float ports of llama2.c's stories260K: (what, tokens/s, MHz).
const FLOAT_PORTS: [(&str, f64, f64); 2] = [
    (
        "llama2.c float port, ESP32-S3 (Xtensa LX7, published)",
        19.0,
        240.0,
    ),
    (
        "llama2.c float port, RP2350 (Cortex-M33, published)",
        19.0,
        150.0,
    ),
];

/// Issue 14's speed targets at context 64: (core, tokens/s at 100 MHz from est. M4 cycles).
const LLAMA_TARGETS: [(&str, f64); 2] = [("m4", 200.0), ("m55", 600.0)];

/// The Llama speed section: per-token estimated cycles at contexts 64 and 256, tokens/s at
/// 100 MHz and per MHz, beside the float ports, and the targets.
pub fn llama_markdown(md: &mut String, results: &[CoreResult], info: &ModelInfo) {
    let Some(d) = info.dec else { return };
    writeln!(
        md,
        "### Llama speed (issue 14)\n\n\
         `{}`: llama2.c stories260K's exact shape (dim {}, hidden {}, {} layers, 8 query heads, \
         4 KV heads, vocab {}), the shipped model (`models/llama-kjv.tatn`, {} positions). One \
         greedy sequence from BOS, never stopping at eos; timed regions: 8 single steps from \
         position {} and 8 from position {} (the last at position {}, the model's last; the \
         rows above); `match` = ids and the FNV-1a of every step's logits \
         equal the host's (the same core-attn code run by `bench/firmware/build.rs`). tok/s = \
         clock / est. cycles per token (M4 timing model; M4-equivalent cycles on the other \
         cores); per MHz = tok/s at 1 MHz.\n",
        info.name,
        d.width,
        d.mlp,
        d.layers,
        d.vocab,
        llama::MAX_POSITIONS,
        llama::CONTEXTS[0],
        llama::CONTEXTS[1],
        llama::CONTEXTS[1] + 7,
    )
    .unwrap();
    md.push_str(
        "| what | context | instructions / token | est. cycles / token | MACs / token | attention MACs share | tok/s at 100 MHz | tok/s per MHz | match |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut per_core: Vec<(&str, u64, f64)> = Vec::new();
    for cr in results {
        let Some(m) = cr.models.iter().find(|m| m.model == info.name) else {
            continue;
        };
        let core = cr.core.name.to_uppercase();
        if let Some(why) = &m.skipped {
            writeln!(md, "| {core} | – | {why} | – | – | – | – | – | – |").unwrap();
            continue;
        }
        for tok in ["token64", "token256"] {
            let Some(t) = m
                .rows
                .iter()
                .find(|r| r.kernel == format!("model:{}", info.name) && r.shape == tok)
            else {
                continue;
            };
            let n = t.elems.max(1);
            let macs = d.steps_macs(t.pos, t.elems) / n;
            let attn = d.layers * 2 * (t.pos + 1) * d.width;
            let cyc = t.cycles / n;
            let per_mhz = 1e6 / cyc as f64;
            per_core.push((cr.core.name, t.pos, 100.0 * per_mhz));
            writeln!(
                md,
                "| int8, {core} | {} | {} | {} | {} | {:.0}% | {:.0} | {:.3} | {} |",
                t.pos,
                thousands(t.insns / n),
                thousands(cyc),
                thousands(macs),
                100.0 * attn as f64 / macs as f64,
                100.0 * per_mhz,
                per_mhz,
                if t.matched { "yes" } else { "**NO**" }
            )
            .unwrap();
        }
    }
    for (what, tps, mhz) in FLOAT_PORTS {
        writeln!(
            md,
            "| {what}: {tps} tok/s at {mhz} MHz | – | – | – | – | – | {:.1} | {:.3} | – |",
            tps * 100.0 / mhz,
            tps / mhz
        )
        .unwrap();
    }
    // The profiled step (position 72, kernel by kernel).
    const GROUPS: [(&str, &[&str]); 8] = [
        ("linear: Q/K/V (fused, grouped K/V)", &["qkv"]),
        ("linear: output projection", &["proj"]),
        ("linear: SwiGLU w1 + w3 + w2", &["w1", "w3", "w2"]),
        ("linear: classifier (tied, vocab 512)", &["head"]),
        (
            "attention (8 query heads in 4 pairs, KV-cache append)",
            &["attention"],
        ),
        ("RoPE (Q and K)", &["rope"]),
        ("RMSNorm (2 per layer + final)", &["rmsnorm"]),
        (
            "SwiGLU activation, residual adds, embedding",
            &["swiglu", "residual", "embed"],
        ),
    ];
    let cores: Vec<(&CoreResult, Vec<&Row>)> = results
        .iter()
        .filter_map(|cr| {
            let m = cr.models.iter().find(|m| m.model == info.name)?;
            let rows: Vec<&Row> = m.rows.iter().filter(|r| r.kernel == "llama-part").collect();
            (!rows.is_empty()).then_some((cr, rows))
        })
        .collect();
    if !cores.is_empty() {
        md.push_str(
            "\n#### One step at position 72 by kernel (est. cycles)\n\n\
             A profiled step of the same sequence (after the context-64 steps) runs \
             `LlamaBlock::run`'s kernels one by one, each its own region; its logits continue the \
             sequence, so the host comparison covers them. The total leaves out what a plain step \
             also does between the kernels (reading each block from the blob, shape checks, \
             hashing the logits), hence a few percent under the per-token rows above.\n\n| part | MACs |",
        );
        for (c, _) in &cores {
            write!(md, " {} |", c.core.name.to_uppercase()).unwrap();
        }
        md.push_str(" share (first core) | cycles/MAC (first core) |\n|---|---:|");
        for _ in &cores {
            md.push_str("---:|");
        }
        md.push_str("---:|---:|\n");
        let sum = |rows: &[&Row], names: &[&str]| -> (u64, u64) {
            rows.iter()
                .filter(|r| names.contains(&r.shape.as_str()))
                .fold((0, 0), |(c, m), r| (c + r.cycles, m + r.macs))
        };
        let total0: u64 = cores[0].1.iter().map(|r| r.cycles).sum();
        for (label, names) in GROUPS {
            let (c0, macs) = sum(&cores[0].1, names);
            write!(md, "| {label} | {} |", thousands(macs)).unwrap();
            for (_, rows) in &cores {
                write!(md, " {} |", thousands(sum(rows, names).0)).unwrap();
            }
            writeln!(
                md,
                " {:.0}% | {} |",
                100.0 * c0 as f64 / total0.max(1) as f64,
                if macs > 0 {
                    format!("{:.2}", c0 as f64 / macs as f64)
                } else {
                    "–".into()
                }
            )
            .unwrap();
        }
        write!(md, "| **total** | |").unwrap();
        for (_, rows) in &cores {
            write!(md, " {} |", thousands(rows.iter().map(|r| r.cycles).sum())).unwrap();
        }
        md.push_str(" 100% | |\n");
    }
    // What bounds it, from the figures above (per core that has both).
    let mut bounds = String::new();
    for (cr, rows) in &cores {
        let lin_rows = || {
            rows.iter()
                .filter(|r| ["qkv", "proj", "w1", "w3", "w2", "head"].contains(&r.shape.as_str()))
        };
        let linear: u64 = lin_rows().map(|r| r.cycles).sum();
        let linear_macs: u64 = lin_rows().map(|r| r.macs).sum();
        let attn: u64 = rows
            .iter()
            .filter(|r| r.shape == "attention")
            .map(|r| r.cycles)
            .sum();
        let total: u64 = rows.iter().map(|r| r.cycles).sum();
        let per = |p: u64| {
            per_core
                .iter()
                .find(|(c, q, _)| *c == cr.core.name && *q == p)
                .map(|&(_, _, t)| 1e8 / t)
        };
        let [c0, c1] = llama::CONTEXTS;
        let growth = match (per(c0), per(c1)) {
            (Some(a), Some(b)) => format!(
                "; from context {c0} to {c1} a token costs {} more est. cycles, {:.0} per extra \
                 key (all layers and heads): attention alone (growing with the context) bounds \
                 context {c1}",
                thousands((b - a) as u64),
                (b - a) / (c1 - c0) as f64
            ),
            _ => String::new(),
        };
        writeln!(
            bounds,
            "- {}: the linear layers ({} MACs, each weight read once per token) take {} est. \
             cycles of the profiled step ({:.0}%): with free attention and elementwise work the \
             step would still run at most {:.0} tok/s at 100 MHz; attention takes {} ({:.0}%){growth}.",
            cr.core.name.to_uppercase(),
            thousands(linear_macs),
            thousands(linear),
            100.0 * linear as f64 / total.max(1) as f64,
            1e8 / linear.max(1) as f64,
            thousands(attn),
            100.0 * attn as f64 / total.max(1) as f64,
        )
        .unwrap();
    }
    if !bounds.is_empty() {
        md.push_str("\nWhat bounds it (from the profiled step and the per-token rows):\n\n");
        md.push_str(&bounds);
    }
    md.push_str("\n| core | target at context 64 | measured | met |\n|---|---:|---:|---|\n");
    for (core, want) in LLAMA_TARGETS {
        if let Some(&(_, _, got)) = per_core.iter().find(|(c, p, _)| *c == core && *p == 64) {
            writeln!(
                md,
                "| {} | ≥ {want} tok/s at 100 MHz | {got:.0} | {} |",
                core.to_uppercase(),
                if got >= want {
                    "yes".to_string()
                } else {
                    format!("**no** ({:.0}% of it)", 100.0 * got / want)
                }
            )
            .unwrap();
        }
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cores;
    use crate::measure::ModelRun;
    use crate::report::tests::{commas, row};

    /// Per-token rows at contexts 64 and 256 and the targets: figures are the 8-step totals
    /// divided by 8, MACs the mean over positions 64–71 of the linear MACs plus 2·(p+1)·width
    /// per layer, tok/s = 100 MHz ÷ cycles per token, computed here in integers. Catches
    /// totals shown undivided, tok/s from instructions instead of cycles, and a target's
    /// verdict inverted.
    #[test]
    fn per_token_rows_and_targets() {
        let js = include_str!("../../tests/data/inspect-llama-kjv.json");
        let info = ModelInfo::from_inspect_json(llama::NAME, js).unwrap();
        let d = info.dec.unwrap();
        let kernel = format!("model:{}", llama::NAME);
        let mut t64 = row(&kernel, "token64", "ours", 8 * 200_000, 0, 8 * 250_000);
        (t64.pos, t64.elems) = (64, 8);
        let mut t256 = row(&kernel, "token256", "ours", 8 * 300_000, 0, 8 * 400_000);
        (t256.pos, t256.elems) = (248, 8);
        let m4 = CoreResult {
            core: cores::m4(),
            rows: Vec::new(),
            error: None,
            models: vec![ModelRun {
                model: llama::NAME.into(),
                rows: vec![t64, t256],
                skipped: None,
            }],
        };
        let mut md = String::new();
        llama_markdown(&mut md, &[m4], &info);
        let lin = d.llama_linear.unwrap();
        let keys: u64 = (65..=72).sum();
        let macs = (8 * lin + d.layers * 2 * d.width * keys) / 8;
        let share = 100.0 * (d.layers * 2 * 65 * d.width) as f64 / macs as f64;
        let want = format!(
            "| int8, M4 | 64 | 200,000 | 250,000 | {} | {share:.0}% | 400 | 4.000 | yes |",
            commas(macs)
        );
        assert!(md.lines().any(|l| l == want), "want {want} in\n{md}");
        assert!(md
            .lines()
            .any(|l| l.starts_with("| int8, M4 | 248 | 300,000 | 400,000 |")
                && l.ends_with("| 250 | 2.500 | yes |")));
        assert!(
            md.contains("| M4 | ≥ 200 tok/s at 100 MHz | 400 | yes |"),
            "{md}"
        );
    }
}
