//! The shipped models as `tools inspect --json` describes them (MACs, flash, RAM, decoder
//! shape), whether one fits a core's chip, and the figures derived from a model's measured
//! regions: its displayed parts and the whole-ViT estimate from CMSIS-NN's figures.

use crate::cores::Core;
use crate::llama;
use crate::measure::CoreResult;
use crate::parse::Row;
use crate::qemu::run;
use std::path::Path;
use std::process::Command;

/// A shipped model as `tools inspect --json` describes it.
pub struct ModelInfo {
    /// Model name (`vit-mnist`, …).
    pub name: String,
    /// `kind` (`vit-classifier`, `encoder-decoder`, `decoder-lm`, `llama`).
    pub kind: String,
    /// Blob bytes (flash).
    pub flash: u64,
    /// Runner buffers (RAM, KV caches included).
    pub ram: u64,
    /// Encoder MACs per image (ViT: classifier included).
    pub enc_macs: u64,
    /// Encoder–decoder: cross K/V projection per image.
    pub cross_macs: u64,
    /// Decoder shape (decoders only).
    pub dec: Option<Dec>,
}

/// Decoder shape, for the MACs of one step at a given position.
#[derive(Clone, Copy)]
pub struct Dec {
    /// Layers.
    pub layers: u64,
    /// Model width.
    pub width: u64,
    /// MLP (Llama: SwiGLU hidden) width.
    pub mlp: u64,
    /// Vocabulary size (classifier rows).
    pub vocab: u64,
    /// Encoder tokens attended to by cross-attention (0: none).
    pub cross_tokens: u64,
    /// Llama: the linear MACs of one step (`tools inspect`'s `macs_per_token_linear`: Q/K/V
    /// with grouped K/V, output, SwiGLU's three, classifier); attention adds `2·(pos+1)·width`
    /// per layer.
    pub llama_linear: Option<u64>,
}

impl Dec {
    /// MACs of one decoder step at position `pos` (`pos + 1` keys), by `tools inspect`'s
    /// formula (which is this at `pos + 1 = max_positions`).
    pub fn step_macs(&self, pos: u64) -> u64 {
        let w = self.width;
        if let Some(lin) = self.llama_linear {
            return lin + self.layers * 2 * (pos + 1) * w;
        }
        let mut per = 4 * w * w + 2 * w * self.mlp + 2 * (pos + 1) * w;
        if self.cross_tokens > 0 {
            per += 2 * w * w + 2 * self.cross_tokens * w;
        }
        self.layers * per + self.vocab * w
    }

    /// MACs of `steps` decoder steps from position `pos`.
    pub fn steps_macs(&self, pos: u64, steps: u64) -> u64 {
        (pos..pos + steps).map(|p| self.step_macs(p)).sum()
    }
}

/// `tools inspect --json models/<name>.tatn` (the CLI's own MAC, flash and RAM figures).
pub fn inspect(root: &Path, name: &str) -> Result<ModelInfo, String> {
    let blob = if name == llama::NAME {
        llama::blob_path(root)
    } else {
        root.join(format!("models/{name}.tatn"))
    };
    let out = run(Command::new("cargo")
        .args(["run", "--quiet", "-p", "tools", "--", "inspect", "--json"])
        .arg(&blob)
        .current_dir(root)
        .env_remove("RUSTFLAGS"))?;
    ModelInfo::from_inspect_json(name, &out)
}

impl ModelInfo {
    /// The figures of model `name` from `tools inspect --json` output `out`; the per-step MAC
    /// formula of [`Dec::step_macs`] must give inspect's own full-context figure.
    pub fn from_inspect_json(name: &str, out: &str) -> Result<ModelInfo, String> {
        let v: serde_json::Value =
            serde_json::from_str(out.trim()).map_err(|e| format!("inspect {name}: {e}"))?;
        let n = |x: &serde_json::Value| x.as_u64().unwrap_or(0);
        let e = &v["encoder"];
        let is_llama = v["llama"].is_object();
        let d = if is_llama { &v["llama"] } else { &v["decoder"] };
        let dec = d.is_object().then(|| Dec {
            layers: n(&d["layers"]),
            width: n(&d["width"]),
            mlp: n(&d[if is_llama { "hidden" } else { "mlp" }]),
            vocab: n(&d["vocab"]),
            cross_tokens: if n(&d["macs_cross_kv_per_image"]) > 0 {
                n(&e["tokens"])
            } else {
                0
            },
            llama_linear: is_llama.then(|| n(&d["macs_per_token_linear"])),
        });
        if let Some(dc) = dec {
            let full = n(&d["macs_per_token_full_context"]);
            let last = n(&d["max_positions"])
                .checked_sub(1)
                .ok_or_else(|| format!("{name}: inspect gives no max_positions"))?;
            let mine = dc.step_macs(last);
            if mine != full {
                return Err(format!(
                    "{name}: per-step MACs {mine} differ from inspect's full-context {full}"
                ));
            }
        }
        Ok(ModelInfo {
            name: name.into(),
            kind: v["kind"].as_str().unwrap_or("?").into(),
            flash: n(&v["flash_bytes"]),
            ram: n(&v["ram_bytes"]["total"]),
            enc_macs: n(&e["macs_per_image"]),
            cross_macs: n(&d["macs_cross_kv_per_image"]),
            dec,
        })
    }
}

/// Why `info` cannot run on `core`'s chip, judged from its blob and buffer sizes (the link
/// against the chip's memory map is the final word).
pub fn fits(core: &Core, info: &ModelInfo) -> Option<String> {
    if info.flash > core.flash_kib * 1024 {
        Some(format!(
            "does not fit: blob {} B > {} KiB flash",
            info.flash, core.flash_kib
        ))
    } else if info.ram > core.ram_kib * 1024 {
        Some(format!(
            "does not fit: runner buffers {} B > {} KiB RAM",
            info.ram, core.ram_kib
        ))
    } else {
        None
    }
}

/// One displayed row of a whole model: totals over `div` (an average when `div > 1`).
pub struct Part {
    /// What the row is.
    pub label: String,
    /// Instructions (total over the `div` steps).
    pub insns: u64,
    /// Estimated cycles (total).
    pub cycles: u64,
    /// MACs (total).
    pub macs: u64,
    /// Divisor of the displayed figures (steps averaged over; 1: a total).
    pub div: u64,
    /// Stack high-water mark, bytes.
    pub stack: Option<u64>,
    /// The device's result equals the host's.
    pub matched: bool,
}

/// The displayed rows of model `info` from its measured regions (`model:<name>` rows), with
/// the MACs of what each row covers.
pub fn model_parts(info: &ModelInfo, rows: &[Row]) -> Vec<Part> {
    let find = |part: &str| {
        rows.iter()
            .find(|r| r.kernel == format!("model:{}", info.name) && r.shape == part)
    };
    let part = |label: String, r: &Row, macs: u64, div: u64| Part {
        label,
        insns: r.insns,
        cycles: r.cycles,
        macs,
        div,
        stack: r.stack,
        matched: r.matched,
    };
    let mut v = Vec::new();
    match (info.kind.as_str(), info.dec) {
        ("vit-classifier", _) => {
            if let Some(r) = find("image") {
                v.push(part("inference, 1 image".into(), r, info.enc_macs, 1));
            }
        }
        ("encoder-decoder", Some(d)) => {
            if let (Some(e), Some(g)) = (find("encode"), find("decode")) {
                let enc = info.enc_macs + info.cross_macs;
                let dm = d.steps_macs(g.pos, g.elems);
                v.push(part("encoder + cross K/V, 1 strip".into(), e, enc, 1));
                v.push(part(
                    format!("greedy decode, {} steps (to eos)", g.elems),
                    g,
                    dm,
                    1,
                ));
                v.push(Part {
                    label: "**whole strip** (encode + decode)".into(),
                    insns: e.insns + g.insns,
                    cycles: e.cycles + g.cycles,
                    macs: enc + dm,
                    div: 1,
                    stack: e.stack,
                    matched: e.matched && g.matched,
                });
                v.push(part(
                    format!("per decoder step (avg of {})", g.elems),
                    g,
                    dm,
                    g.elems.max(1),
                ));
            }
        }
        ("decoder-lm", Some(d)) => {
            if let (Some(p), Some(t)) = (find("prefill"), find("token")) {
                v.push(part(
                    format!("prefill, {} prompt tokens", p.elems),
                    p,
                    d.steps_macs(p.pos, p.elems),
                    1,
                ));
                v.push(part(
                    format!(
                        "**per generated token** (avg of {}, KV cache, positions {}–{})",
                        t.elems,
                        t.pos,
                        t.pos + t.elems - 1
                    ),
                    t,
                    d.steps_macs(t.pos, t.elems),
                    t.elems.max(1),
                ));
            }
        }
        ("llama", Some(d)) => {
            for (pre, tok) in [("prefill64", "token64"), ("prefill256", "token256")] {
                if let (Some(p), Some(t)) = (find(pre), find(tok)) {
                    v.push(part(
                        format!(
                            "prefill (greedy), positions {}–{}",
                            p.pos,
                            p.pos + p.elems - 1
                        ),
                        p,
                        d.steps_macs(p.pos, p.elems),
                        1,
                    ));
                    v.push(part(
                        format!(
                            "**per token at context {}** (avg of {}, KV cache, positions {}–{})",
                            t.pos,
                            t.elems,
                            t.pos,
                            t.pos + t.elems - 1
                        ),
                        t,
                        d.steps_macs(t.pos, t.elems),
                        t.elems.max(1),
                    ));
                }
            }
        }
        _ => {}
    }
    v
}

/// The ViT's rows on `cr` when it ran with its profiled parts (`vit-part` regions).
pub fn vit_parts(cr: &CoreResult) -> Option<&[Row]> {
    cr.models
        .iter()
        .find(|m| m.model == "vit-mnist" && m.skipped.is_none())
        .map(|m| &m.rows[..])
        .filter(|r| r.iter().any(|r| r.kernel == "vit-part"))
}

/// The whole ViT with CMSIS-NN's reference figures (issue 6) for what it has figures for.
pub struct Estimate {
    /// Linear MACs (patch embedding, QKV, proj, fc1, fc2, classifier).
    pub linear_macs: u64,
    /// Attention layers.
    pub attention_layers: u64,
    /// Our measured instructions for the parts CMSIS-NN has no figure for.
    pub rest: u64,
    /// Estimated instructions with linear layers at 2.30 instructions/MAC.
    pub est_230: f64,
    /// The same at 2.66.
    pub est_266: f64,
    /// Our measured whole run.
    pub ours: u64,
}

/// CMSIS-NN's instructions for one attention layer (17 tokens × 4 heads × 16; issue 6).
pub const CMSIS_ATTENTION: u64 = 820_521;

/// The CMSIS-NN estimate of the whole ViT on `cr` (when its parts were profiled there).
pub fn cmsis_estimate(cr: &CoreResult) -> Option<Estimate> {
    let rows = vit_parts(cr)?;
    let ours = rows
        .iter()
        .find(|r| r.kernel == "model:vit-mnist" && r.shape == "image")?
        .insns;
    let parts = rows.iter().filter(|r| r.kernel == "vit-part");
    let mut e = Estimate {
        linear_macs: 0,
        attention_layers: 0,
        rest: 0,
        est_230: 0.0,
        est_266: 0.0,
        ours,
    };
    for r in parts {
        match r.shape.as_str() {
            // The patch embedding counts as its linear MACs only (patch extraction, class
            // token and positions not counted: in CMSIS-NN's favour).
            "embed" | "qkv" | "proj" | "fc1" | "fc2" | "classifier" => e.linear_macs += r.macs,
            "attention" => e.attention_layers += 1,
            _ => e.rest += r.insns,
        }
    }
    let fixed = (e.attention_layers * CMSIS_ATTENTION + e.rest) as f64;
    e.est_230 = e.linear_macs as f64 * 2.30 + fixed;
    e.est_266 = e.linear_macs as f64 * 2.66 + fixed;
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cores;

    // `tools inspect --json` of the shipped blobs, captured.
    const INSPECT: [(&str, &str); 4] = [
        (
            "vit-mnist",
            include_str!("../tests/data/inspect-vit-mnist.json"),
        ),
        (
            "digit-reader",
            include_str!("../tests/data/inspect-digit-reader.json"),
        ),
        (
            "char-lm",
            include_str!("../tests/data/inspect-char-lm.json"),
        ),
        (
            llama::NAME,
            include_str!("../tests/data/inspect-llama-kjv.json"),
        ),
    ];

    /// The number after `"key":` (first occurrence) in raw JSON text.
    fn raw(js: &str, key: &str) -> u64 {
        let rest = js.split(&format!("\"{key}\":")).nth(1).unwrap();
        rest.split([',', '}']).next().unwrap().parse().unwrap()
    }

    /// Each model's per-step MAC formula agrees with `tools inspect`'s own full-context figure
    /// (another program's count: the parse fails otherwise), for all four decoder kinds
    /// (none, GPT-2 style, with cross-attention, Llama); flash and RAM are the blob's. Catches
    /// a step formula without the cross-attention or the attention term, or off by one key.
    #[test]
    fn step_macs_agree_with_inspect() {
        for (name, js) in INSPECT {
            let info = ModelInfo::from_inspect_json(name, js).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(info.flash, raw(js, "flash_bytes"), "{name}");
            assert_eq!(info.ram, raw(js, "total"), "{name}");
            assert_eq!(info.dec.is_some(), name != "vit-mnist", "{name}");
            if let Some(d) = info.dec {
                let last = raw(js, "max_positions") - 1;
                let full = raw(js, "macs_per_token_full_context");
                assert_eq!(d.step_macs(last), full, "{name}");
                // One key fewer: less by one key's scores and weighted sum in every layer.
                assert_eq!(
                    full - d.step_macs(last - 1),
                    d.layers * 2 * d.width,
                    "{name}"
                );
                assert_eq!(
                    d.steps_macs(last - 1, 2),
                    d.step_macs(last - 1) + full,
                    "{name}"
                );
            }
            // A figure that disagrees is an error naming the model.
            if info.dec.is_some() {
                let full = raw(js, "macs_per_token_full_context");
                let off = js.replace(
                    &format!("\"macs_per_token_full_context\":{full}"),
                    &format!("\"macs_per_token_full_context\":{}", full + 1),
                );
                let e = ModelInfo::from_inspect_json(name, &off).err().unwrap();
                assert!(e.starts_with(&format!("{name}: per-step MACs")), "{e}");
            }
        }
    }

    /// Whether a model fits a core's chip: by its blob against flash, then its buffers
    /// against RAM, with the figures in the reason.
    #[test]
    fn fits_by_flash_then_ram() {
        let info = |name: &str| {
            let js = INSPECT.iter().find(|(n, _)| *n == name).unwrap().1;
            ModelInfo::from_inspect_json(name, js).unwrap()
        };
        let m0 = cores::by_name("m0").unwrap();
        let (vit, reader, lm) = (info("vit-mnist"), info("digit-reader"), info("char-lm"));
        assert_eq!(fits(m0, &vit), None);
        assert_eq!(fits(cores::m4(), &lm), None);
        assert_eq!(
            fits(m0, &reader),
            Some(format!(
                "does not fit: runner buffers {} B > 16 KiB RAM",
                reader.ram
            ))
        );
        assert!(reader.flash <= 256 * 1024 && reader.ram > 16 * 1024);
        assert_eq!(
            fits(m0, &lm),
            Some(format!("does not fit: blob {} B > 256 KiB flash", lm.flash))
        );
    }
}
