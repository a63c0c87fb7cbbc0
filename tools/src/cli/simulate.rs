//! `tools simulate MODEL (--input FILE | --prompt TEXT) [--vocab FILE] [--json]
//! [--max-new-tokens N] [--attention-map OUT.png [--layer L] [--head H|mean]]`.
//!
//! `--prompt` encodes a text with the character vocabulary ([`crate::vocab`]); with a known
//! vocabulary the JSON also carries `"text"` (decoded sequences). `--attention-map` draws the
//! CLS attention of the first image ([`crate::cli::attention_map`], f32 path only).
//!
//! A Llama checkpoint (a llama2.c `.bin` file or a directory whose config says
//! `"model_type": "llama"`) is handed to [`crate::llama::simulate`] (f32 path, `--tokenizer`).
//!
//! MODEL is a checkpoint directory (`config.json` + `model.safetensors`): the f32 reference
//! runs; or a packed model blob file (from `tools convert`): the int8 path runs through
//! core-attn's runners, bit-exact with the device, and prints dequantized logits in the same
//! JSON shape. A corrupt blob is one `error: BLOB: invalid model blob: REASON` line, exit 1.
//!
//! Inputs and outputs per architecture:
//! - ViT: `.npy` float32 `[N, C, H, W]` (or `[C, H, W]`), used as `pixel_values` unchanged; or a
//!   PGM/PNG image whose pixels `v` in `[0, 1]` become `(v - 0.5) / 0.5` (HF `ViTImageProcessor`
//!   defaults: rescale 1/255, mean = std = 0.5; no resizing). JSON:
//!   `{"logits": [[..] per image], "top1": [..]}`.
//! - GPT-2: `.npy` int64 `[N, T]` (or `[T]`) prompt ids. JSON:
//!   `{"generated": [[prompt + new ids] per row], "logits": [[[..] per position] per row]}`
//!   where `logits` is the teacher-forced pass over the generated sequence (its first `T` rows
//!   are the logits of the prompt).
//! - Encoder-decoder: images as for ViT. JSON: `{"generated": [[start id + new ids] per image],
//!   "logits": ...}`, logits again teacher-forced over the generated sequence (HF
//!   `greedy_logits`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Value};

use crate::checkpoint::config::VitConfig;
use crate::checkpoint::image::{is_image, parse_image};
use crate::checkpoint::npy::{is_npy, parse_npy, NpyData};
use crate::cli::attention_map::{self, Head};
use crate::error::{Error, Result};
use crate::float::{encdec, gpt2, ops, vit};
use crate::int8::{self, AlignedBlob};
use crate::model::{Mat, Model};
use crate::vocab::Vocab;
use core_attn::blob::{Header, ModelKind};

/// Arguments of `simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Checkpoint directory (config.json + model.safetensors) or model blob.
    pub model: PathBuf,
    /// Input: .npy (float32 images (N, C, H, W) or int64 token ids (N, T)) or a PGM/PNG image.
    #[arg(long, required_unless_present = "prompt", conflicts_with = "prompt")]
    pub input: Option<PathBuf>,
    /// Text prompt for a character LM (encoded with its vocabulary) or a Llama model (with its
    /// tokenizer.bin, as llama2.c's run.c encodes it).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Vocabulary (vocab.json); default: next to the checkpoint, or `<blob>.vocab.json`.
    #[arg(long)]
    pub vocab: Option<PathBuf>,
    /// Llama models: llama2.c tokenizer.bin; default: `tokenizer.bin` beside the checkpoint.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// New tokens to generate (GPT-2 and encoder-decoder).
    #[arg(long, default_value_t = 16)]
    pub max_new_tokens: usize,
    /// Write the CLS token's attention over the patches of the first image to this PNG
    /// (ViT and encoder-decoder checkpoints; f32 path).
    #[arg(long)]
    pub attention_map: Option<PathBuf>,
    /// Layer of the attention map (default: the last).
    #[arg(long, requires = "attention_map")]
    pub layer: Option<usize>,
    /// Head of the attention map: an index or `mean` (default).
    #[arg(long, requires = "attention_map", default_value = "mean")]
    pub head: Head,
}

fn input(args: &SimulateArgs) -> Result<&Path> {
    match (&args.input, &args.prompt) {
        (Some(p), _) => Ok(p),
        (None, _) => Err(Error::Input(
            "--prompt is for language models; this model takes --input FILE".into(),
        )),
    }
}

/// Prompt ids: `--prompt` through the vocabulary, or `--input` ids.
fn prompts(args: &SimulateArgs, vocab: Option<&Vocab>) -> Result<Vec<Vec<usize>>> {
    match (&args.prompt, &args.input) {
        (Some(text), _) => {
            let v = vocab.ok_or_else(|| {
                Error::Input(
                    "--prompt needs a vocabulary: vocab.json next to the checkpoint, <blob>.vocab.json, or --vocab FILE"
                        .into(),
                )
            })?;
            if text.is_empty() {
                return Err(Error::Input("empty prompt".into()));
            }
            Ok(vec![v.encode(text)?])
        }
        (None, Some(p)) => read_ids(p),
        (None, None) => Err(Error::Input("give --input FILE or --prompt TEXT".into())),
    }
}

/// Adds `"text"` (decoded sequences) when a vocabulary is known.
pub(crate) fn add_text(result: &mut Value, vocab: Option<&Vocab>) {
    if let (Some(v), Some(g)) = (vocab, result.get("generated").cloned()) {
        let texts: Vec<String> = g
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| {
                let ids: Vec<usize> = row
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_u64().map(|x| x as usize))
                    .collect();
                v.decode(&ids)
            })
            .collect();
        result["text"] = json!(texts);
    }
}

/// Runs `simulate`.
pub fn run(args: &SimulateArgs, out: &mut dyn Write) -> Result<()> {
    if let Some(format) = crate::llama::detect(&args.model) {
        return crate::llama::simulate::run(args, format, out);
    }
    if args.model.is_file() {
        return run_blob(args, out);
    }
    refuse_tokenizer(args)?;
    let model = Model::load(&args.model)?;
    let vocab_size = match &model {
        Model::Vit(_) => None,
        Model::Gpt2(m) => Some(m.config.vocab_size),
        Model::EncoderDecoder(m) => Some(m.decoder.config.vocab_size),
    };
    let vocab = match (vocab_size, &args.vocab) {
        (Some(v), Some(p)) => Some(Vocab::read(p, v)?),
        (Some(v), None) => Vocab::for_checkpoint(&args.model, v)?,
        (None, _) => None,
    };
    if args.attention_map.is_some() && matches!(model, Model::Gpt2(_)) {
        return Err(Error::Input(
            "--attention-map needs an image model (ViT or encoder-decoder)".into(),
        ));
    }
    let mut result = match &model {
        Model::Vit(m) => {
            let images = read_images(input(args)?, &m.encoder.config)?;
            let mut logits = Vec::new();
            let mut top1 = Vec::new();
            for img in &images {
                let l = vit::classify(m, img)?;
                top1.push(ops::argmax(&l));
                logits.push(l);
            }
            if let Some(p) = &args.attention_map {
                attention_map::write(p, &m.encoder, &images[0], args.layer, args.head)?;
            }
            json!({"logits": logits, "top1": top1})
        }
        Model::Gpt2(m) => {
            let prompts = prompts(args, vocab.as_ref())?;
            let generated = gpt2::generate(m, prompts, args.max_new_tokens)?;
            let logits = generated
                .iter()
                .map(|s| {
                    Ok(rows(&gpt2::logits(
                        m,
                        &s[..s.len().min(m.config.n_positions)],
                    )?))
                })
                .collect::<Result<Vec<_>>>()?;
            json!({"logits": logits, "generated": generated})
        }
        Model::EncoderDecoder(m) => {
            let images = read_images(input(args)?, &m.encoder.config)?;
            let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
            let generated = encdec::generate(m, &refs, args.max_new_tokens)?;
            let logits = images
                .iter()
                .zip(&generated)
                .map(|(img, s)| {
                    // The last generated id is never fed: it may sit at position n_positions.
                    let s = &s[..s.len().min(m.decoder.config.n_positions)];
                    Ok(rows(&encdec::logits(m, &encdec::encode(m, img)?, s)?))
                })
                .collect::<Result<Vec<_>>>()?;
            if let Some(p) = &args.attention_map {
                attention_map::write(p, &m.encoder, &images[0], args.layer, args.head)?;
            }
            json!({"logits": logits, "generated": generated})
        }
    };
    add_text(&mut result, vocab.as_ref());
    let text = if args.json {
        result.to_string()
    } else {
        human(&result)
    };
    writeln!(out, "{text}").map_err(|e| Error::io("<stdout>", e))
}

/// The ViT config a blob's encoder header describes (what input images must look like).
pub(crate) fn blob_vit_config(h: &Header) -> VitConfig {
    let e = h.encoder;
    VitConfig {
        hidden_size: e.width,
        num_layers: e.layers,
        num_heads: e.heads,
        intermediate_size: e.mlp,
        activation: crate::checkpoint::config::Activation::GeluErf,
        layer_norm_eps: 0.0,
        image_size: (e.height, e.image_width),
        patch_size: (e.patch, e.patch),
        num_channels: e.channels,
        qkv_bias: true,
        num_labels: e.classes,
        norm_placement: crate::checkpoint::config::NormPlacement::Pre,
    }
}

/// `--tokenizer` names a llama2.c `tokenizer.bin`: refused for the other model kinds.
fn refuse_tokenizer(args: &SimulateArgs) -> Result<()> {
    if args.tokenizer.is_some() {
        return Err(Error::Input(
            "--tokenizer is for Llama models (a llama2.c .bin, a Hugging Face Llama directory or a Llama blob)"
                .into(),
        ));
    }
    Ok(())
}

/// The int8 path: the blob runs through core-attn's runners (bit-exact with the device).
fn run_blob(args: &SimulateArgs, out: &mut dyn Write) -> Result<()> {
    let aligned = AlignedBlob::read(&args.model)?;
    let blob = aligned.parse(&args.model)?;
    let h = *blob.header();
    if h.kind != ModelKind::Llama {
        refuse_tokenizer(args)?;
    }
    if args.attention_map.is_some() {
        return Err(Error::Input(
            "--attention-map needs a checkpoint directory (the int8 runners do not expose attention probabilities)".into(),
        ));
    }
    let vocab = if h.kind.has_decoder() {
        Vocab::for_blob(&args.model, args.vocab.as_deref(), h.decoder.vocab)?
    } else {
        None
    };
    let mut result = match h.kind {
        ModelKind::Llama => return crate::llama::int8::simulate(args, &blob, out),
        ModelKind::VitClassifier => {
            let images = read_images(input(args)?, &blob_vit_config(&h))?;
            let mut logits = Vec::new();
            let mut top1 = Vec::new();
            for img in &images {
                let l = int8::classify(&blob, img)?;
                top1.push(ops::argmax(&l));
                logits.push(l);
            }
            json!({"logits": logits, "top1": top1})
        }
        ModelKind::DecoderLm => {
            let prompts = prompts(args, vocab.as_ref())?;
            for p in &prompts {
                int8::check_ids(&blob, p)?;
            }
            let (generated, logits) = int8::generate(&blob, &prompts, None, args.max_new_tokens)?;
            json!({"logits": logits, "generated": generated})
        }
        ModelKind::EncoderDecoder => {
            let images = read_images(input(args)?, &blob_vit_config(&h))?;
            let start = h.decoder.start_token as usize;
            let prompts = vec![vec![start]; images.len()];
            let (generated, logits) =
                int8::generate(&blob, &prompts, Some(&images), args.max_new_tokens)?;
            json!({"logits": logits, "generated": generated})
        }
    };
    add_text(&mut result, vocab.as_ref());
    let text = if args.json {
        result.to_string()
    } else {
        human(&result)
    };
    writeln!(out, "{text}").map_err(|e| Error::io("<stdout>", e))
}

fn rows(m: &Mat) -> Vec<Vec<f32>> {
    (0..m.rows).map(|r| m.row(r).to_vec()).collect()
}

/// Text output: one line per image or sequence.
fn human(v: &Value) -> String {
    let mut lines = Vec::new();
    if let Some(top1) = v.get("top1").and_then(Value::as_array) {
        for (i, t) in top1.iter().enumerate() {
            let logit = &v["logits"][i][t.as_u64().unwrap_or(0) as usize];
            lines.push(format!("image {i}: top1 {t} (logit {logit})"));
        }
    }
    if let Some(g) = v.get("generated").and_then(Value::as_array) {
        for (i, s) in g.iter().enumerate() {
            lines.push(format!("sequence {i}: {s}"));
            if let Some(t) = v.get("text").and_then(|t| t.get(i)) {
                lines.push(format!("text {i}: {t}"));
            }
        }
    }
    lines.join("\n")
}

/// Reads images for a ViT encoder: `[C*H*W]` f32 per image.
pub(crate) fn read_images(path: &Path, cfg: &VitConfig) -> Result<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (c, (h, w)) = (cfg.num_channels, cfg.image_size);
    if is_image(&bytes) {
        let img = parse_image(&bytes, path)?;
        if (img.channels, img.height, img.width) != (c, h, w) {
            return Err(Error::Input(format!(
                "image is {}x{} with {} channel(s), model expects {h}x{w} with {c} channel(s)",
                img.width, img.height, img.channels
            )));
        }
        return Ok(vec![img.data.iter().map(|v| (v - 0.5) / 0.5).collect()]);
    }
    if !is_npy(&bytes) {
        return Err(Error::Input(format!(
            "{}: not a .npy, PGM or PNG file",
            path.display()
        )));
    }
    let a = parse_npy(&bytes, path)?;
    let NpyData::F32(data) = a.data else {
        return Err(Error::Input(format!(
            "{}: images must be float32, found int64",
            path.display()
        )));
    };
    let n = match a.shape.as_slice() {
        [n, cc, hh, ww] if (*cc, *hh, *ww) == (c, h, w) => *n,
        [cc, hh, ww] if (*cc, *hh, *ww) == (c, h, w) => 1,
        s => {
            return Err(Error::Input(format!(
                "images have shape {s:?}, model expects [N, {c}, {h}, {w}]"
            )))
        }
    };
    if n == 0 {
        return Err(Error::Input("no images in input".into()));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        let chw = c * h * w;
        return Err(Error::Input(format!(
            "image {} has a non-finite pixel ({}) at flat index {}",
            i / chw,
            data[i],
            i % chw
        )));
    }
    Ok(data.chunks_exact(c * h * w).map(<[f32]>::to_vec).collect())
}

/// Reads prompt ids: int64 `[N, T]` or `[T]`.
pub(crate) fn read_ids(path: &Path) -> Result<Vec<Vec<usize>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let a = parse_npy(&bytes, path)?;
    let NpyData::I64(ids) = a.data else {
        return Err(Error::Input(format!(
            "{}: token ids must be int64, found float32",
            path.display()
        )));
    };
    let t = match a.shape.as_slice() {
        [_, t] | [t] if *t > 0 => *t,
        s => {
            return Err(Error::Input(format!(
                "token ids have shape {s:?}, expected [N, T] with T > 0"
            )))
        }
    };
    ids.chunks_exact(t)
        .map(|row| {
            row.iter()
                .map(|&i| {
                    usize::try_from(i).map_err(|_| Error::Input(format!("negative token id {i}")))
                })
                .collect()
        })
        .collect()
}
