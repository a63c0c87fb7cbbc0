//! `tools eval MODEL (--data FILE.npy --labels FILE | --text FILE) [--reference DIR]
//! [--calibration FILE.npy] [--stride N] [--vocab FILE] [--json]`.
//!
//! Evaluates the int8 model **and** its f32 reference side by side on held-out data.
//!
//! MODEL is either
//! - a blob (from `tools convert`): `--reference CHECKPOINT_DIR` (the checkpoint it was
//!   converted from) is required; or
//! - a checkpoint directory: it is converted in memory exactly as `tools convert` would (with
//!   `--calibration` if given) and that blob is evaluated.
//!
//! Per-layer SQNR compares, at every block output and at the final LayerNorm output, the int8
//! activations (seen through the runners' observe hooks) dequantized with their calibration
//! scales against the f32 reference's activations: `10·log10(Σ ref² / Σ (ref − deq)²)` summed
//! over every sample, token and feature. The blob stores only integer requantization constants,
//! so the scales are recomputed the way `convert` computes them (from the checkpoint and the
//! `--calibration` file, or the synthetic set); for a blob MODEL the recomputed blob must be
//! byte-identical to MODEL, otherwise the scales are not the blob's: a warning is printed on
//! stderr and `layer_sqnr_db` is `null` (pass the `--calibration` file used by `convert`).
//!
//! Tasks:
//! - ViT classifier: `--data` float32 `[N, C, H, W]`, `--labels` int64 `[N]` class ids.
//!   Reports accuracy and mean cross-entropy (nats) for each path and top-1 agreement.
//! - Decoder LM: `--text FILE` (UTF-8), encoded with the character vocabulary (`vocab.json`
//!   next to the checkpoint; for a blob `--vocab FILE`, `<blob>.vocab.json`, or the
//!   reference checkpoint's). Windows of `n_positions` characters start every `--stride`
//!   characters (default `n_positions`: non-overlapping); window `[b, e)` scores the targets
//!   `t` with `max(b + 1, e_prev) ≤ t < e` (`e_prev` = end of the previous window), each from
//!   the logits at `t − 1` — so every character after the first is scored exactly once, with
//!   the most context its window gives, and with non-overlapping windows the first character
//!   of each window is not scored. Reports per-character loss in nats and bits, perplexity
//!   (`exp(nats)`) and next-character accuracy for each path, and top-1 agreement.
//! - Encoder–decoder: `--data` images as for ViT; `--labels` the target sequences (what follows
//!   `decoder_start_token_id`): an int64 `.npy` `[N, L]` (each row ends at its first eos,
//!   inclusive; anything after it is ignored; without an eos id the whole row counts), or a
//!   UTF-8 text file with one string per line, encoded with the vocabulary and followed by the
//!   eos id (if the model has one). Teacher-forced token accuracy, loss and perplexity, plus
//!   exact match of greedy decoding (up to `L` new tokens, stopped at eos) against the target.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use core_attn::blob::{Blob, ModelKind};
use core_attn::model::FINAL_NORM;
use core_attn::requant::QParams;
use serde_json::{json, Value};

use crate::checkpoint::npy::{is_npy, parse_npy, NpyData};
use crate::cli::simulate::read_images;
use crate::error::{Error, Result};
use crate::float::{encdec, gpt2, ops, vit};
use crate::int8::{self, AlignedBlob, LayerScales};
use crate::model::{Mat, Model};
use crate::vocab::Vocab;

/// Arguments of `eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Model blob (needs --reference) or checkpoint directory (converted in memory).
    pub model: PathBuf,
    /// The checkpoint directory a blob MODEL was converted from (the f32 reference).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Calibration .npy given to `convert` (to reproduce the blob's activation scales).
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Images: float32 .npy (N, C, H, W) (ViT, encoder-decoder).
    #[arg(long, conflicts_with = "text")]
    pub data: Option<PathBuf>,
    /// Labels: int64 .npy class ids (N) for ViT; target sequences for the encoder-decoder
    /// (int64 .npy (N, L) or a text file, one string per line).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// UTF-8 text for a character LM.
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// Window stride in characters for --text (default: n_positions, non-overlapping).
    #[arg(long, requires = "text")]
    pub stride: Option<usize>,
    /// Vocabulary (vocab.json) for a blob MODEL.
    #[arg(long)]
    pub vocab: Option<PathBuf>,
    /// Llama models: llama2.c tokenizer.bin for --text (default: `<blob>.tokenizer.bin`, or
    /// `tokenizer.bin` beside the checkpoint).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A progress line on stderr, drawn only when stderr is a terminal.
pub struct Progress {
    label: &'static str,
    total: usize,
    done: usize,
    enabled: bool,
    shown: usize,
}

impl Progress {
    /// A progress counter of `total` steps.
    pub fn new(label: &'static str, total: usize) -> Self {
        Progress {
            label,
            total,
            done: 0,
            enabled: std::io::stderr().is_terminal() && total > 1,
            shown: usize::MAX,
        }
    }

    /// One more step done.
    pub fn tick(&mut self) {
        self.done += 1;
        if !self.enabled {
            return;
        }
        let pct = self.done * 100 / self.total.max(1);
        if pct != self.shown {
            self.shown = pct;
            let width = 30;
            let filled = self.done * width / self.total.max(1);
            eprint!(
                "\r{} [{}{}] {}/{} ({pct}%)",
                self.label,
                "#".repeat(filled),
                " ".repeat(width - filled),
                self.done,
                self.total
            );
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.enabled && self.shown != usize::MAX {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Per-layer signal and noise energies.
struct Sqnr {
    names: Vec<String>,
    scales: Vec<QParams>,
    signal: Vec<f64>,
    noise: Vec<f64>,
    enabled: bool,
}

impl Sqnr {
    fn new(scales: Option<&LayerScales>) -> Self {
        let mut s = Sqnr {
            names: Vec::new(),
            scales: Vec::new(),
            signal: Vec::new(),
            noise: Vec::new(),
            enabled: scales.is_some(),
        };
        if let Some(sc) = scales {
            for (stage, v) in [("encoder", &sc.encoder), ("decoder", &sc.decoder)] {
                for (i, q) in v.iter().enumerate() {
                    s.names.push(if i + 1 == v.len() {
                        format!("{stage}.final_norm")
                    } else {
                        format!("{stage}.{i}")
                    });
                    s.scales.push(*q);
                }
            }
            s.signal = vec![0.0; s.names.len()];
            s.noise = vec![0.0; s.names.len()];
        }
        s
    }

    /// Index of (stage 0 = encoder / 1 = decoder, runner layer id).
    fn index(&self, sc: &LayerScales, stage: usize, layer: usize) -> usize {
        let n = if stage == 0 {
            sc.encoder.len()
        } else {
            sc.decoder.len()
        };
        let i = if layer == FINAL_NORM { n - 1 } else { layer };
        if stage == 0 {
            i
        } else {
            sc.encoder.len() + i
        }
    }

    fn add(&mut self, k: usize, reference: &[f32], q: &[i8]) {
        if !self.enabled {
            return;
        }
        let qp = self.scales[k];
        for (&r, &v) in reference.iter().zip(q) {
            let r = r as f64;
            let d = r - qp.dequantize(v);
            self.signal[k] += r * r;
            self.noise[k] += d * d;
        }
    }

    fn report(&self) -> Value {
        if !self.enabled {
            return Value::Null;
        }
        Value::Array(
            self.names
                .iter()
                .enumerate()
                .map(|(k, n)| {
                    let db = if self.noise[k] == 0.0 {
                        Value::Null
                    } else {
                        json!(10.0 * (self.signal[k] / self.noise[k]).log10())
                    };
                    json!({"layer": n, "sqnr_db": db})
                })
                .collect(),
        )
    }
}

/// Cross-entropy (nats) of `target` under `logits`.
pub(crate) fn nll(logits: &[f32], target: usize) -> f64 {
    let m = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
    let lse = m + logits
        .iter()
        .map(|&x| (x as f64 - m).exp())
        .sum::<f64>()
        .ln();
    lse - logits[target] as f64
}

/// Running loss / accuracy of one path.
#[derive(Default)]
struct Score {
    n: usize,
    correct: usize,
    loss: f64,
    exact: usize,
}

impl Score {
    fn add(&mut self, logits: &[f32], target: usize) -> usize {
        let top = ops::argmax(logits);
        self.n += 1;
        self.correct += usize::from(top == target);
        self.loss += nll(logits, target);
        top
    }

    fn nats(&self) -> f64 {
        self.loss / self.n.max(1) as f64
    }

    fn accuracy(&self) -> f64 {
        self.correct as f64 / self.n.max(1) as f64
    }
}

fn kind_name(k: ModelKind) -> &'static str {
    match k {
        ModelKind::VitClassifier => "vit-classifier",
        ModelKind::DecoderLm => "decoder-lm",
        ModelKind::EncoderDecoder => "encoder-decoder",
        ModelKind::Llama => "llama",
    }
}

/// Checks that the blob and the checkpoint describe the same architecture.
fn check_same(blob: &Blob<'_>, model: &Model, blob_path: &Path, ck: &Path) -> Result<()> {
    let h = blob.header();
    let want = match model {
        Model::Vit(_) => ModelKind::VitClassifier,
        Model::Gpt2(_) => ModelKind::DecoderLm,
        Model::EncoderDecoder(_) => ModelKind::EncoderDecoder,
    };
    let mismatch = |what: String| {
        Err(Error::Input(format!(
            "{} and reference {} differ: {what}",
            blob_path.display(),
            ck.display()
        )))
    };
    if h.kind != want {
        return mismatch(format!(
            "blob is a {}, checkpoint is a {}",
            kind_name(h.kind),
            model.kind()
        ));
    }
    let enc = match model {
        Model::Vit(m) => Some(&m.encoder.config),
        Model::EncoderDecoder(m) => Some(&m.encoder.config),
        Model::Gpt2(_) => None,
    };
    if let Some(c) = enc {
        let e = h.encoder;
        let pairs = [
            ("encoder layers", e.layers, c.num_layers),
            ("encoder width", e.width, c.hidden_size),
            ("image height", e.height, c.image_size.0),
            ("image width", e.image_width, c.image_size.1),
            ("channels", e.channels, c.num_channels),
        ];
        for (what, b, m) in pairs {
            if b != m {
                return mismatch(format!("{what} {b} vs {m}"));
            }
        }
    }
    let dec = match model {
        Model::Gpt2(m) => Some(&m.config),
        Model::EncoderDecoder(m) => Some(&m.decoder.config),
        Model::Vit(_) => None,
    };
    if let Some(c) = dec {
        let d = h.decoder;
        let pairs = [
            ("decoder layers", d.layers, c.n_layer),
            ("decoder width", d.width, c.n_embd),
            ("vocab", d.vocab, c.vocab_size),
            ("positions", d.max_positions, c.n_positions),
        ];
        for (what, b, m) in pairs {
            if b != m {
                return mismatch(format!("{what} {b} vs {m}"));
            }
        }
    }
    if let Model::Vit(m) = model {
        if h.encoder.classes != m.encoder.config.num_labels {
            return mismatch(format!(
                "classes {} vs {}",
                h.encoder.classes, m.encoder.config.num_labels
            ));
        }
    }
    Ok(())
}

/// Everything an evaluation needs.
struct Setup {
    model: Model,
    /// Checkpoint directory (for `vocab.json`).
    checkpoint: PathBuf,
    blob: AlignedBlob,
    blob_path: PathBuf,
    scales: Option<LayerScales>,
}

fn setup(args: &EvalArgs) -> Result<Setup> {
    let calib = args.calibration.as_deref();
    if args.model.is_dir() {
        if args.reference.is_some() {
            return Err(Error::Input(
                "--reference is only for a blob MODEL (MODEL is a checkpoint directory)".into(),
            ));
        }
        let model = Model::load(&args.model)?;
        let vocab = int8::checkpoint_vocab(&model, &args.model)?;
        let (bytes, scales) = int8::convert_with_scales(&model, calib, vocab.as_ref())?;
        return Ok(Setup {
            model,
            checkpoint: args.model.clone(),
            blob: AlignedBlob::from_bytes(&bytes),
            blob_path: args.model.clone(),
            scales: Some(scales),
        });
    }
    let blob = AlignedBlob::read(&args.model)?;
    blob.parse(&args.model)?;
    let reference = args.reference.clone().ok_or_else(|| {
        Error::Input(
            "eval of a blob needs --reference CHECKPOINT_DIR (the checkpoint it was converted from)"
                .into(),
        )
    })?;
    let model = Model::load(&reference)?;
    check_same(&blob.parse(&args.model)?, &model, &args.model, &reference)?;
    let vocab = int8::checkpoint_vocab(&model, &reference)?;
    let (fresh, scales) = int8::convert_with_scales(&model, calib, vocab.as_ref())?;
    let scales = if fresh == blob.bytes() {
        Some(scales)
    } else {
        eprintln!(
            "warning: {} is not what converting {} with {} gives: its activation scales are unknown, per-layer SQNR omitted (pass the --calibration file used by convert)",
            args.model.display(),
            reference.display(),
            match calib {
                Some(p) => p.display().to_string(),
                None => "the synthetic calibration set".into(),
            }
        );
        None
    };
    Ok(Setup {
        model,
        checkpoint: reference,
        blob,
        blob_path: args.model.clone(),
        scales,
    })
}

/// Reads class labels: int64 `[N]` (or `[N, 1]`), each `< classes`.
fn read_class_labels(path: &Path, classes: usize) -> Result<Vec<usize>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let a = parse_npy(&bytes, path)?;
    let NpyData::I64(v) = a.data else {
        return Err(Error::Input(format!(
            "{}: labels must be int64, found float32",
            path.display()
        )));
    };
    match a.shape.as_slice() {
        [_] | [_, 1] => {}
        s => {
            return Err(Error::Input(format!(
                "labels have shape {s:?}, expected [N] class ids"
            )))
        }
    }
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            usize::try_from(x)
                .ok()
                .filter(|&x| x < classes)
                .ok_or_else(|| {
                    Error::Input(format!(
                        "label {i} is {x}, model has {classes} classes (0..{})",
                        classes - 1
                    ))
                })
        })
        .collect()
}

/// Runs `eval`.
pub fn run(args: &EvalArgs, out: &mut dyn Write) -> Result<()> {
    if let Some(v) = crate::llama::eval::dispatch(args)? {
        let text = if args.json { v.to_string() } else { human(&v) };
        return writeln!(out, "{text}").map_err(|e| Error::io("<stdout>", e));
    }
    if args.tokenizer.is_some() {
        return Err(Error::Input(
            "--tokenizer is for Llama models (llama2.c tokenizer.bin)".into(),
        ));
    }
    let s = setup(args)?;
    let blob = s.blob.parse(&s.blob_path)?;
    let images_and_labels = || -> Result<(&PathBuf, &PathBuf)> {
        if args.text.is_some() {
            return Err(Error::Input(format!(
                "--text is for language models; a {} is evaluated with --data FILE.npy --labels FILE",
                s.model.kind()
            )));
        }
        match (&args.data, &args.labels) {
            (Some(d), Some(l)) => Ok((d, l)),
            _ => Err(Error::Input(format!(
                "a {} is evaluated with --data FILE.npy --labels FILE",
                s.model.kind()
            ))),
        }
    };
    let result = match &s.model {
        Model::Vit(m) => {
            let (data, labels) = images_and_labels()?;
            eval_vit(&s, &blob, m, data, labels)?
        }
        Model::EncoderDecoder(m) => {
            let (data, labels) = images_and_labels()?;
            eval_encdec(&s, &blob, m, data, labels, args)?
        }
        Model::Gpt2(m) => {
            if args.data.is_some() || args.labels.is_some() {
                return Err(Error::Input(
                    "a language model is evaluated with --text FILE, not --data/--labels".into(),
                ));
            }
            let text = args.text.as_ref().ok_or_else(|| {
                Error::Input("a language model is evaluated with --text FILE".into())
            })?;
            eval_text(&s, &blob, m, text, args)?
        }
    };
    let text = if args.json {
        result.to_string()
    } else {
        human(&result)
    };
    writeln!(out, "{text}").map_err(|e| Error::io("<stdout>", e))
}

fn metrics(sc: &Score, with_bits: bool, exact: Option<usize>) -> Value {
    let nats = sc.nats();
    let mut v = json!({"accuracy": sc.accuracy(), "loss_nats": nats});
    if with_bits {
        v["loss_bits"] = json!(nats / std::f64::consts::LN_2);
        v["perplexity"] = json!(nats.exp());
    }
    if let Some(n) = exact {
        v["exact_match"] = json!(sc.exact as f64 / n.max(1) as f64);
    }
    v
}

fn eval_vit(
    s: &Setup,
    blob: &Blob<'_>,
    m: &crate::model::VitModel,
    data: &Path,
    labels: &Path,
) -> Result<Value> {
    let images = read_images(data, &m.encoder.config)?;
    let labels = read_class_labels(labels, m.encoder.config.num_labels)?;
    if labels.len() != images.len() {
        return Err(Error::Input(format!(
            "{} images but {} labels",
            images.len(),
            labels.len()
        )));
    }
    let mut sqnr = Sqnr::new(s.scales.as_ref());
    let (mut f, mut q) = (Score::default(), Score::default());
    let mut agree = 0;
    let mut progress = Progress::new("eval", images.len());
    for (img, &label) in images.iter().zip(&labels) {
        let (fl, trace) = vit::classify_traced(m, img, None)?;
        let ql = int8::classify_observed(blob, img, &mut |layer, x| {
            if let Some(sc) = &s.scales {
                let k = sqnr.index(sc, 0, layer);
                let r = if layer == FINAL_NORM {
                    &trace.last_hidden
                } else {
                    &trace.hidden_states[layer + 1]
                };
                sqnr.add(k, &r.data, x);
            }
        })?;
        agree += usize::from(f.add(&fl, label) == q.add(&ql, label));
        progress.tick();
    }
    Ok(json!({
        "task": "classification",
        "samples": images.len(),
        "int8": metrics(&q, false, None),
        "f32": metrics(&f, false, None),
        "top1_agreement": agree as f64 / images.len() as f64,
        "layer_sqnr_db": sqnr.report(),
    }))
}

/// The decoder's per-layer f32 activations of one teacher-forced pass: block `i` output rows
/// (`i < layers`), then the final LayerNorm output.
fn decoder_trace(o: &gpt2::DecoderOutput) -> Vec<&Mat> {
    let n = o.hidden_states.len() - 1;
    let mut v: Vec<&Mat> = o.hidden_states[1..n].iter().collect();
    v.push(&o.last_block);
    v.push(&o.hidden_states[n]);
    v
}

fn find_vocab(s: &Setup, args: &EvalArgs, vocab_size: usize) -> Result<Option<Vocab>> {
    if s.blob_path.is_dir() {
        return match &args.vocab {
            Some(p) => Ok(Some(Vocab::read(p, vocab_size)?)),
            None => Vocab::for_checkpoint(&s.checkpoint, vocab_size),
        };
    }
    match Vocab::for_blob(&s.blob_path, args.vocab.as_deref(), vocab_size)? {
        Some(v) => Ok(Some(v)),
        None => Vocab::for_checkpoint(&s.checkpoint, vocab_size),
    }
}

fn eval_text(
    s: &Setup,
    blob: &Blob<'_>,
    m: &crate::model::Gpt2Model,
    text_path: &Path,
    args: &EvalArgs,
) -> Result<Value> {
    let c = &m.config;
    let vocab = find_vocab(s, args, c.vocab_size)?.ok_or_else(|| {
        Error::Input(format!(
            "no vocabulary: --text needs vocab.json next to the checkpoint, {}, or --vocab FILE",
            Vocab::blob_sidecar(&s.blob_path).display()
        ))
    })?;
    let bytes = std::fs::read(text_path).map_err(|e| Error::io(text_path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::Input(format!(
            "{}: not UTF-8 (byte {})",
            text_path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    let ids = vocab.encode(&text)?;
    if ids.len() < 2 {
        return Err(Error::Input(format!(
            "{}: needs at least 2 characters, found {}",
            text_path.display(),
            ids.len()
        )));
    }
    let n = c.n_positions;
    let stride = args.stride.unwrap_or(n);
    if stride == 0 || stride > n {
        return Err(Error::Input(format!(
            "--stride {stride} must be between 1 and n_positions {n}"
        )));
    }
    let mut starts = vec![0usize];
    let mut b = 0;
    while b + n < ids.len() {
        b += stride;
        starts.push(b);
    }
    let mut sqnr = Sqnr::new(s.scales.as_ref());
    let (mut f, mut q) = (Score::default(), Score::default());
    let mut agree = 0;
    let mut prev_end = 0;
    let mut progress = Progress::new("eval", starts.len());
    for &b in &starts {
        let e = (b + n).min(ids.len());
        let window = &ids[b..e];
        let fo = gpt2::forward(m, window, None)?;
        let trace = decoder_trace(&fo);
        let ql = int8::teacher_forced(blob, window, None, &mut |_, pos, layer, x| {
            if let Some(sc) = &s.scales {
                let k = sqnr.index(sc, 1, layer);
                let l = if layer == FINAL_NORM {
                    trace.len() - 1
                } else {
                    layer
                };
                sqnr.add(k, trace[l].row(pos), x);
            }
        })?;
        let first = prev_end.max(b + 1);
        for (t, &target) in ids[first..e].iter().enumerate() {
            let r = first + t - 1 - b;
            agree += usize::from(f.add(fo.logits.row(r), target) == q.add(&ql[r], target));
        }
        prev_end = e;
        progress.tick();
    }
    Ok(json!({
        "task": "language-model",
        "characters": ids.len(),
        "predicted": f.n,
        "windows": starts.len(),
        "window": n,
        "stride": stride,
        "int8": metrics(&q, true, None),
        "f32": metrics(&f, true, None),
        "top1_agreement": agree as f64 / f.n as f64,
        "layer_sqnr_db": sqnr.report(),
    }))
}

/// Target sequences of the encoder–decoder (see the module docs).
fn read_sequence_labels(
    path: &Path,
    m: &crate::model::EncoderDecoderModel,
    vocab: Option<&Vocab>,
) -> Result<Vec<Vec<usize>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let c = &m.decoder.config;
    let eos = m.config.eos_token_ids.first().copied();
    let rows: Vec<Vec<usize>> = if is_npy(&bytes) {
        let a = parse_npy(&bytes, path)?;
        let NpyData::I64(v) = a.data else {
            return Err(Error::Input(format!(
                "{}: label sequences must be int64, found float32",
                path.display()
            )));
        };
        let l = match a.shape.as_slice() {
            [_, l] if *l > 0 => *l,
            s => {
                return Err(Error::Input(format!(
                    "label sequences have shape {s:?}, expected [N, L] with L > 0"
                )))
            }
        };
        let mut rows = Vec::new();
        for (r, row) in v.chunks_exact(l).enumerate() {
            let mut out = Vec::new();
            for (j, &x) in row.iter().enumerate() {
                let id = usize::try_from(x)
                    .ok()
                    .filter(|&i| i < c.vocab_size)
                    .ok_or_else(|| {
                        Error::Input(format!(
                            "label {r} position {j}: token id {x} out of range (vocab_size {})",
                            c.vocab_size
                        ))
                    })?;
                out.push(id);
                if m.config.eos_token_ids.contains(&id) {
                    break;
                }
            }
            rows.push(out);
        }
        rows
    } else {
        let vocab = vocab.ok_or_else(|| {
            Error::Input(format!(
                "{}: text labels need a vocabulary (vocab.json or --vocab)",
                path.display()
            ))
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::Input(format!("{}: not .npy and not UTF-8", path.display())))?;
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let mut ids = vocab
                .encode(line)
                .map_err(|e| Error::Input(format!("{} line {}: {e}", path.display(), i + 1)))?;
            ids.extend(eos);
            rows.push(ids);
        }
        rows
    };
    for (r, row) in rows.iter().enumerate() {
        if row.is_empty() || row.len() > c.n_positions {
            return Err(Error::Input(format!(
                "label {r} has {} tokens, must be 1..={} (n_positions)",
                row.len(),
                c.n_positions
            )));
        }
    }
    Ok(rows)
}

fn eval_encdec(
    s: &Setup,
    blob: &Blob<'_>,
    m: &crate::model::EncoderDecoderModel,
    data: &Path,
    labels: &Path,
    args: &EvalArgs,
) -> Result<Value> {
    let images = read_images(data, &m.encoder.config)?;
    let vocab = find_vocab(s, args, m.decoder.config.vocab_size)?;
    let targets = read_sequence_labels(labels, m, vocab.as_ref())?;
    if targets.len() != images.len() {
        return Err(Error::Input(format!(
            "{} images but {} label sequences",
            images.len(),
            targets.len()
        )));
    }
    let start = m.config.decoder_start_token_id;
    let eos = &m.config.eos_token_ids;
    let mut sqnr = Sqnr::new(s.scales.as_ref());
    let (mut f, mut q) = (Score::default(), Score::default());
    let mut agree = 0;
    let mut progress = Progress::new("eval", images.len());
    let cut = |seq: &[usize]| -> Vec<usize> {
        let mut out = Vec::new();
        for &t in seq {
            out.push(t);
            if eos.contains(&t) {
                break;
            }
        }
        out
    };
    for (img, target) in images.iter().zip(&targets) {
        let input: Vec<usize> = std::iter::once(start)
            .chain(target[..target.len() - 1].iter().copied())
            .collect();
        let enc = vit::encode(&m.encoder, img, None)?;
        let mem = encdec::memory(m, &enc.last_hidden);
        let fo = gpt2::forward(&m.decoder, &input, Some(&mem))?;
        let trace = decoder_trace(&fo);
        let ql = int8::teacher_forced(blob, &input, Some(img), &mut |stage, pos, layer, x| {
            if let Some(sc) = &s.scales {
                let k = sqnr.index(sc, stage, layer);
                if stage == 0 {
                    let r = if layer == FINAL_NORM {
                        &enc.last_hidden
                    } else {
                        &enc.hidden_states[layer + 1]
                    };
                    sqnr.add(k, &r.data, x);
                } else {
                    let l = if layer == FINAL_NORM {
                        trace.len() - 1
                    } else {
                        layer
                    };
                    sqnr.add(k, trace[l].row(pos), x);
                }
            }
        })?;
        for (r, &t) in target.iter().enumerate() {
            agree += usize::from(f.add(fo.logits.row(r), t) == q.add(&ql[r], t));
        }
        let l = target.len();
        let fg = encdec::generate(m, &[img], l)?.remove(0);
        let (qg, _) = int8::generate(blob, &[vec![start]], Some(std::slice::from_ref(img)), l)?;
        f.exact += usize::from(cut(&fg[1..]) == *target);
        q.exact += usize::from(cut(&qg[0][1..]) == *target);
        progress.tick();
    }
    let n = images.len();
    Ok(json!({
        "task": "sequence",
        "samples": n,
        "tokens": f.n,
        "int8": metrics(&q, true, Some(n)),
        "f32": metrics(&f, true, Some(n)),
        "top1_agreement": agree as f64 / f.n as f64,
        "layer_sqnr_db": sqnr.report(),
    }))
}

/// Text report.
fn human(v: &Value) -> String {
    let mut lines = vec![format!("task: {}", v["task"].as_str().unwrap_or("?"))];
    for k in [
        "samples",
        "tokens",
        "characters",
        "predicted",
        "windows",
        "window",
        "stride",
    ] {
        if let Some(x) = v.get(k) {
            lines.push(format!("{k}: {x}"));
        }
    }
    for path in ["f32", "int8"] {
        if let Some(o) = v[path].as_object() {
            let parts: Vec<String> = o.iter().map(|(k, x)| format!("{k} {x}")).collect();
            lines.push(format!("{path}: {}", parts.join(", ")));
        }
    }
    lines.push(format!("top-1 agreement: {}", v["top1_agreement"]));
    match v["layer_sqnr_db"].as_array() {
        Some(a) => {
            lines.push("per-layer SQNR (dB):".into());
            for x in a {
                lines.push(format!(
                    "  {}: {}",
                    x["layer"].as_str().unwrap_or("?"),
                    x["sqnr_db"]
                ));
            }
        }
        None => lines.push("per-layer SQNR: unknown (activation scales not reproduced)".into()),
    }
    lines.join("\n")
}
