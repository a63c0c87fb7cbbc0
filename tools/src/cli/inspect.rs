//! `tools inspect BLOB [--json]`: architecture, parameter count, MACs, flash and RAM.
//!
//! - params: int8 weights (linear weights, embedding, class token and position tables; a tied LM
//!   head counted once) — the `i32` biases and requantization constants are in the flash figure;
//! - MACs: ViT per image (patch embedding, every linear layer, `2·T²·D` per layer for
//!   attention, classifier); decoder per token at full context (`max_positions` keys) including
//!   the LM head; the encoder–decoder also reports the one-off cross K/V projection per image;
//! - flash: the blob's size; RAM: every runner buffer from the header (scores are `i32`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use core_attn::blob::{Blob, ModelKind};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::int8::AlignedBlob;

/// Arguments of `inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Model blob file.
    pub blob: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn report(blob: &Blob<'_>) -> Value {
    let h = blob.header();
    let e = h.encoder;
    let d = h.decoder;
    let mut params = 0usize;
    let mut arch = json!({"kind": match h.kind {
        ModelKind::VitClassifier => "vit-classifier",
        ModelKind::DecoderLm => "decoder-lm",
        ModelKind::EncoderDecoder => "encoder-decoder",
        ModelKind::Llama => "llama",
    }});
    if h.kind.has_encoder() {
        let t = e.tokens();
        let (w, m) = (e.width, e.mlp);
        let per_layer = 4 * w * w + 2 * w * m;
        let patch = e.channels * e.patch * e.patch;
        params += patch * w + w + t * w + e.layers * per_layer + w * e.classes;
        let macs = (t - 1) * patch * w + e.layers * (t * per_layer + 2 * t * t * w) + w * e.classes;
        arch["encoder"] = json!({
            "layers": e.layers, "width": w, "heads": e.heads, "mlp": m,
            "image": [e.channels, e.height, e.image_width], "patch": e.patch, "tokens": t,
            "classes": e.classes, "norm": if e.post_norm {"post"} else {"pre"},
            "input_scale": h.input_scale(), "input_zero_point": h.input_zero_point,
            "macs_per_image": macs,
        });
    }
    if h.kind.has_decoder() {
        let (w, m, p) = (d.width, d.mlp, d.max_positions);
        let cross = h.kind == ModelKind::EncoderDecoder;
        let self_linear = 4 * w * w + 2 * w * m;
        let layer_params = self_linear + if cross { 4 * w * w } else { 0 };
        params += d.vocab * w + p * w + d.layers * layer_params;
        if !d.tied_head {
            params += d.vocab * w;
        }
        let t_enc = e.tokens();
        let per_layer_token =
            self_linear + 2 * p * w + if cross { 2 * w * w + 2 * t_enc * w } else { 0 };
        let tok = |x: u32| {
            if x == core_attn::blob::NO_TOKEN {
                Value::Null
            } else {
                json!(x)
            }
        };
        arch["decoder"] = json!({
            "layers": d.layers, "width": w, "heads": d.heads, "mlp": m, "vocab": d.vocab,
            "max_positions": p, "positions": if d.sinusoidal {"sinusoidal"} else {"learned"},
            "lm_head": if d.tied_head {"tied"} else {"separate"},
            "start_token": tok(d.start_token), "eos_token": tok(d.eos_token), "pad_token": tok(d.pad_token),
            "macs_per_token_full_context": d.layers * per_layer_token + d.vocab * w,
            "macs_cross_kv_per_image": if cross { d.layers * t_enc * 2 * w * w } else { 0 },
        });
    }
    if h.kind == ModelKind::Llama {
        let l = d.llama();
        let (w, kv, hid, p) = (l.width, l.kv_width(), l.hidden, l.max_positions);
        // q|k|v, Wo, W1, W3, W2 per layer; attention: one score and one weighted value per
        // cached key and query feature.
        let linear = w * (w + 2 * kv) + w * w + 3 * w * hid;
        params += l.vocab * w + l.layers * linear;
        if !d.tied_head {
            params += l.vocab * w;
        }
        let tok = |x: u32| {
            if x == core_attn::blob::NO_TOKEN {
                Value::Null
            } else {
                json!(x)
            }
        };
        let at = |c: usize| l.layers * (linear + 2 * c * w) + l.vocab * w;
        arch["llama"] = json!({
            "layers": l.layers, "width": w, "heads": l.heads, "kv_heads": l.kv_heads,
            "head_dim": l.head_dim(), "hidden": hid, "vocab": l.vocab, "max_positions": p,
            "classifier": if d.tied_head {"tied"} else {"separate"},
            "bos_token": tok(d.start_token), "eos_token": tok(d.eos_token),
            "macs_per_token_linear": l.layers * linear + l.vocab * w,
            "macs_per_token_full_context": at(p),
        });
    }
    let b = blob.buffers();
    arch["logits_scale"] = json!(h.logits_scale());
    arch["logits_zero_point"] = json!(h.logits_zero_point);
    arch["params_int8"] = json!(params);
    arch["flash_bytes"] = json!(blob.len());
    arch["ram_bytes"] = json!({
        "x": b.x, "normed": b.normed, "wide": b.wide, "scores": 4 * b.scores,
        "patch": b.patch, "logits": b.logits, "kv_cache": b.kv, "cross_kv_cache": b.cross_kv,
        "total": b.total_bytes(),
    });
    arch
}

fn human(v: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "kind: {}", v["kind"].as_str().unwrap_or("?"))?;
    for part in ["encoder", "decoder", "llama"] {
        if let Some(o) = v.get(part).and_then(Value::as_object) {
            writeln!(out, "{part}:")?;
            for (k, x) in o {
                writeln!(out, "  {k}: {x}")?;
            }
        }
    }
    writeln!(out, "params (int8 weights): {}", v["params_int8"])?;
    writeln!(out, "flash: {} bytes", v["flash_bytes"])?;
    writeln!(out, "ram:")?;
    if let Some(o) = v["ram_bytes"].as_object() {
        for (k, x) in o {
            writeln!(out, "  {k}: {x} bytes")?;
        }
    }
    Ok(())
}

/// Runs `inspect`.
pub fn run(args: &InspectArgs, out: &mut dyn Write) -> Result<()> {
    let aligned = AlignedBlob::read(&args.blob)?;
    let blob = aligned.parse(&args.blob)?;
    let v = report(&blob);
    let r = if args.json {
        writeln!(out, "{v}")
    } else {
        human(&v, out)
    };
    r.map_err(|e| Error::io("<stdout>", e))
}
