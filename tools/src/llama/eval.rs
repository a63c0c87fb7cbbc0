//! `tools eval` on Llama models: perplexity of the int8 blob (core-attn's runner) against the
//! f32 reference ([`super::forward`]) on the same token windows.
//!
//! `MODEL` is a Llama blob with `--reference CHECKPOINT` (the llama2.c `.bin` or HF directory it
//! was converted from), or the checkpoint itself (converted in memory as `convert` would, with
//! `--calibration`). Data: `--text FILE` (encoded once as `run.c` encodes a prompt: BOS, dummy
//! prefix, BPE merges, with `--tokenizer FILE`, else `<blob>.tokenizer.bin`, else the
//! checkpoint's `tokenizer.bin`), windows of `seq_len` tokens every `--stride` tokens (default
//! `seq_len`), each token after the first scored once, as for character LMs; or `--data
//! ids.npy` (int64 `[N, T]`, each row a window, every token after the first scored).
//! A blob converted with `--max-positions N` is compared with the checkpoint run at the same
//! context `N`. Reported: `loss_nats`, `loss_bits`, `perplexity`, next-token `accuracy` for both paths,
//! `top1_agreement`, and `perplexity_ratio` (int8 / f32).

use std::path::Path;

use serde_json::{json, Value};

use super::tokenizer::Tokenizer;
use super::{detect, load, Format, LlamaModel};
use crate::cli::eval::{nll, EvalArgs};
use crate::error::{Error, Result};
use crate::float::ops::argmax;
use crate::int8::AlignedBlob;
use core_attn::blob::ModelKind;

/// Loss and accuracy of one path.
#[derive(Default)]
struct Score {
    n: usize,
    correct: usize,
    loss: f64,
}

impl Score {
    fn add(&mut self, logits: &[f32], target: usize) -> usize {
        let top = argmax(logits);
        self.n += 1;
        self.correct += usize::from(top == target);
        self.loss += nll(logits, target);
        top
    }

    fn report(&self) -> Value {
        let nats = self.loss / self.n.max(1) as f64;
        json!({
            "accuracy": self.correct as f64 / self.n.max(1) as f64,
            "loss_nats": nats,
            "loss_bits": nats / std::f64::consts::LN_2,
            "perplexity": nats.exp(),
        })
    }
}

fn is_llama_blob(path: &Path) -> bool {
    AlignedBlob::read(path)
        .ok()
        .is_some_and(|b| b.parse(path).is_ok_and(|p| p.kind() == ModelKind::Llama))
}

/// `eval` when MODEL (or its `--reference`) is a Llama; `None` for the other kinds.
pub fn dispatch(args: &EvalArgs) -> Result<Option<Value>> {
    let model_format = detect(&args.model);
    let blob_llama = model_format.is_none() && args.model.is_file() && is_llama_blob(&args.model);
    if model_format.is_none() && !blob_llama {
        return Ok(None);
    }
    if args.labels.is_some() || args.vocab.is_some() {
        return Err(Error::Input(
            "a Llama model is evaluated with --text FILE [--tokenizer FILE] or --data ids.npy (no --labels, --vocab)".into(),
        ));
    }
    let (model, ck_path, format, blob) = match model_format {
        Some(f) => {
            if args.reference.is_some() {
                return Err(Error::Input(
                    "--reference is only for a blob MODEL (MODEL is a Llama checkpoint)".into(),
                ));
            }
            let m = load(&args.model, f)?;
            let bytes = super::int8::convert(&m, args.calibration.as_deref(), None)?;
            (m, args.model.clone(), f, AlignedBlob::from_bytes(&bytes))
        }
        None => {
            let r = args.reference.clone().ok_or_else(|| {
                Error::Input(
                    "eval of a blob needs --reference CHECKPOINT (the Llama checkpoint it was converted from)".into(),
                )
            })?;
            let f = detect(&r).ok_or_else(|| {
                Error::Input(format!(
                    "{}: not a Llama checkpoint (llama2.c .bin or LlamaForCausalLM directory), but {} is a Llama blob",
                    r.display(),
                    args.model.display()
                ))
            })?;
            let mut m = load(&r, f)?;
            let blob = AlignedBlob::read(&args.model)?;
            // A blob converted with --max-positions N: the reference runs the same context.
            let positions = blob.parse(&args.model)?.header().decoder.max_positions;
            if positions < m.config.seq_len {
                m.config.seq_len = positions;
            }
            (m, r, f, blob)
        }
    };
    let blob_path = if blob_llama {
        args.model.clone()
    } else {
        ck_path.clone()
    };
    let parsed = blob.parse(&blob_path)?;
    check_same(&parsed, &model, &blob_path, &ck_path)?;
    let c = &model.config;
    let windows: Vec<(Vec<usize>, usize)> = match (&args.text, &args.data) {
        (Some(text), None) => {
            let tok = tokenizer(args, &blob_path, blob_llama, &ck_path, format, c.vocab_size)?;
            let s = std::fs::read_to_string(text).map_err(|e| Error::io(text, e))?;
            let ids = tok.encode(&s)?;
            if ids.len() < 2 {
                return Err(Error::Input(format!(
                    "{}: needs at least 2 tokens, found {}",
                    text.display(),
                    ids.len()
                )));
            }
            let stride = args.stride.unwrap_or(c.seq_len);
            if stride == 0 || stride > c.seq_len {
                return Err(Error::Input(format!(
                    "--stride {stride} outside 1..={}",
                    c.seq_len
                )));
            }
            text_windows(&ids, c.seq_len, stride)
        }
        (None, Some(data)) => {
            let rows = crate::int8::npy_ids(data, c.vocab_size)?;
            let mut w = Vec::new();
            for (i, r) in rows.into_iter().enumerate() {
                if r.len() < 2 || r.len() > c.seq_len {
                    return Err(Error::Input(format!(
                        "{}: row {i} has {} ids, needs 2..={}",
                        data.display(),
                        r.len(),
                        c.seq_len
                    )));
                }
                w.push((r, 1));
            }
            w
        }
        _ => {
            return Err(Error::Input(
                "a Llama model is evaluated with --text FILE or --data ids.npy (one of them)"
                    .into(),
            ))
        }
    };
    let (mut f, mut q, mut agree) = (Score::default(), Score::default(), 0usize);
    for (ids, first) in &windows {
        let lf = super::forward::logits(&model, ids)?;
        let lq = super::int8::logits(&parsed, ids)?;
        for t in *first..ids.len() {
            let a = f.add(&lf[t - 1], ids[t]);
            let b = q.add(&lq[t - 1], ids[t]);
            agree += usize::from(a == b);
        }
    }
    let (fr, qr) = (f.report(), q.report());
    let ratio = qr["perplexity"].as_f64().unwrap_or(f64::NAN)
        / fr["perplexity"].as_f64().unwrap_or(f64::NAN);
    Ok(Some(json!({
        "task": "llama",
        "windows": windows.len(),
        "tokens": f.n,
        "f32": fr,
        "int8": qr,
        "top1_agreement": agree as f64 / f.n.max(1) as f64,
        "perplexity_ratio": ratio,
    })))
}

/// Windows `[b, e)` of at most `len` ids every `stride` until one reaches the end; each paired
/// with the first index it scores (`max(b + 1, e_prev) − b`), so each id after the first is
/// scored once.
fn text_windows(ids: &[usize], len: usize, stride: usize) -> Vec<(Vec<usize>, usize)> {
    let mut out = Vec::new();
    let (mut b, mut e_prev) = (0usize, 0usize);
    loop {
        let e = (b + len).min(ids.len());
        let first = (b + 1).max(e_prev) - b;
        if first < e - b {
            out.push((ids[b..e].to_vec(), first));
        }
        if e == ids.len() {
            return out;
        }
        e_prev = e;
        b += stride;
    }
}

fn tokenizer(
    args: &EvalArgs,
    blob_path: &Path,
    blob_given: bool,
    ck: &Path,
    format: Format,
    vocab: usize,
) -> Result<Tokenizer> {
    if let Some(p) = &args.tokenizer {
        return Tokenizer::read(p, vocab);
    }
    let mut candidates = Vec::new();
    if blob_given {
        candidates.push(super::int8::tokenizer_sidecar(blob_path));
    }
    candidates.push(super::simulate::default_tokenizer(ck, format));
    for p in &candidates {
        if p.is_file() {
            return Tokenizer::read(p, vocab);
        }
    }
    Err(Error::Input(format!(
        "--text needs a tokenizer: --tokenizer FILE, or one of {}",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The blob and the checkpoint must describe the same architecture.
fn check_same(
    blob: &core_attn::blob::Blob<'_>,
    m: &LlamaModel,
    blob_path: &Path,
    ck: &Path,
) -> Result<()> {
    let d = blob.header().decoder.llama();
    let c = &m.config;
    let pairs = [
        ("layers", d.layers, c.n_layers),
        ("dim", d.width, c.dim),
        ("heads", d.heads, c.n_heads),
        ("kv heads", d.kv_heads, c.n_kv_heads),
        ("hidden", d.hidden, c.hidden_dim),
        ("vocab", d.vocab, c.vocab_size),
        ("positions", d.max_positions, c.seq_len),
    ];
    for (what, a, b) in pairs {
        if a != b {
            return Err(Error::Input(format!(
                "{} and {} differ: {what} {a} vs {b}",
                blob_path.display(),
                ck.display()
            )));
        }
    }
    Ok(())
}
