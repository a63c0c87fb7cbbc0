//! The int8 path of Llama models (issue 14, stage 2): checkpoint → core-attn's f64 reference
//! (`core_attn::reference::llama::LlamaF`) → calibration → quantization
//! (`core_attn::llama::LlamaParams`) → blob (`core_attn::blob::write_llama`, model kind 4), and
//! the blob run on the host by core-attn's runner (`core_attn::llama::llama_step`, the code a
//! device runs).
//!
//! - Calibration: `--calibration ids.npy` (int64 `[N, T]`, ids `< vocab_size`, rows cut to
//!   `seq_len`), or a seeded synthetic set of 8 prompts (BOS, then 7 uniform ids); every prompt
//!   is extended by the f32 model's own greedy continuation up to `seq_len` (or its stop rule).
//!   Take calibration prompts from training text, never from what you evaluate on.
//! - Stop rule in the blob: llama2.c (`run.c` stops *before* emitting BOS) stores eos = BOS;
//!   Hugging Face stores its first `eos_token_id` (stop *after* it). A blob whose eos equals its
//!   BOS stops before it, any other eos after it ([`stop_rule`]).
//! - Vocabulary: the tokenizer's pieces are embedded in the blob's vocabulary sections (an id
//!   whose piece is not UTF-8 has no entry), so a device can print text; the `tokenizer.bin`
//!   itself (scores, needed to encode prompts as `run.c` does) goes beside the blob as
//!   `<blob>.tokenizer.bin`, written with the blob as one step.

use std::io::Write;
use std::path::{Path, PathBuf};

use core_attn::attention::KvCache;
use core_attn::blob::{Blob, NO_TOKEN};
use core_attn::llama::{calibrate_llama, llama_step, LlamaModel as _, LlamaParams};
use core_attn::model::host::OwnedBuffers;
use core_attn::model::{kv_caches, ModelBuffers};
use core_attn::quantize_block::Calibration;
use core_attn::reference::block::LinearF;
use core_attn::reference::llama::{LlamaBlockF, LlamaF, RmsNormF};
use core_attn::rope::RopeStyle as CoreRope;

use super::forward::Generation;
use super::tokenizer::Tokenizer;
use super::{LlamaModel, RopeStyle, StopRule};
use crate::cli::simulate::SimulateArgs;
use crate::error::{Error, Result};
use crate::float::ops::argmax;

fn core(e: core_attn::Error) -> Error {
    Error::Int8(e.to_string())
}

fn linear(l: &crate::model::Linear) -> LinearF {
    LinearF {
        w: l.weight.clone(),
        b: l.bias.clone().unwrap_or_else(|| vec![0.0; l.out_dim]),
        in_features: l.in_dim,
    }
}

/// The f64 reference of a loaded Llama (q | k | v fused into one `[q_dim + 2·kv_dim][dim]`
/// projection, as the int8 block computes it).
pub fn to_reference(m: &LlamaModel) -> Result<LlamaF> {
    let c = &m.config;
    if c.q_dim() != c.dim {
        return Err(Error::Input(format!(
            "n_heads · head_dim = {} differs from dim {}: the int8 path needs them equal",
            c.q_dim(),
            c.dim
        )));
    }
    let rms = |g: &[f32]| RmsNormF {
        gamma: g.to_vec(),
        eps: c.norm_eps,
    };
    let blocks = m
        .layers
        .iter()
        .map(|l| {
            let mut qkv = linear(&l.wq);
            for part in [&l.wk, &l.wv] {
                let p = linear(part);
                qkv.w.extend(p.w);
                qkv.b.extend(p.b);
            }
            LlamaBlockF {
                rms1: rms(&l.rms_att),
                qkv,
                wo: linear(&l.wo),
                rms2: rms(&l.rms_ffn),
                w1: linear(&l.w1),
                w3: linear(&l.w3),
                w2: linear(&l.w2),
            }
        })
        .collect();
    let (bos, eos) = stop_ids(m);
    Ok(LlamaF {
        width: c.dim,
        heads: c.n_heads,
        kv_heads: c.n_kv_heads,
        theta: c.rope_theta,
        style: match c.rope {
            RopeStyle::Interleaved => CoreRope::Interleaved,
            RopeStyle::HalfSplit => CoreRope::HalfSplit,
        },
        max_positions: c.seq_len,
        embedding: m.embed.data.clone(),
        blocks,
        final_norm: rms(&m.rms_final),
        head: m.classifier.as_ref().map(|h| h.data.clone()),
        bos,
        eos,
    })
}

/// (BOS, eos) as the blob stores them (see the module docs).
fn stop_ids(m: &LlamaModel) -> (Option<u32>, Option<u32>) {
    let bos = m.config.bos_token_id.map(|b| b as u32);
    let eos = match &m.config.stop {
        StopRule::Before(id) => Some(*id as u32),
        StopRule::After(ids) => ids.first().map(|&i| i as u32),
    };
    (bos, eos)
}

/// The stop rule a Llama blob's header describes.
pub fn stop_rule(blob: &Blob<'_>) -> StopRule {
    let d = blob.header().decoder;
    match (d.start_token, d.eos_token) {
        (_, NO_TOKEN) => StopRule::After(Vec::new()),
        (b, e) if b == e => StopRule::Before(e as usize),
        (_, e) => StopRule::After(vec![e as usize]),
    }
}

/// Calibration sequences (see the module docs).
pub fn calibration_ids(m: &LlamaModel, file: Option<&Path>) -> Result<Vec<Vec<u32>>> {
    let c = &m.config;
    let prompts: Vec<Vec<usize>> = match file {
        Some(p) => crate::int8::npy_ids(p, c.vocab_size)?,
        None => {
            let mut state = 0x1234_5678_9abc_def1u64;
            let mut next = move || {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                state.wrapping_mul(0x2545_F491_4F6C_DD1D)
            };
            (0..8)
                .map(|_| {
                    let mut p: Vec<usize> = c.bos_token_id.into_iter().collect();
                    while p.len() < 8.min(c.seq_len) {
                        p.push((next() % c.vocab_size as u64) as usize);
                    }
                    p
                })
                .collect()
        }
    };
    let mut out = Vec::with_capacity(prompts.len());
    for mut p in prompts {
        p.truncate(c.seq_len);
        let extra = c.seq_len - p.len();
        let g = super::forward::generate(m, &p, extra)?;
        out.push(g.ids.iter().map(|&i| i as u32).collect());
    }
    Ok(out)
}

/// Pack-time transforms of the f64 reference before it is quantized (see [`super::migrate`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PackTransform {
    /// SmoothQuant strength of the SwiGLU product's migration into W2 (`None`: none).
    pub swiglu_alpha: Option<f64>,
    /// Points (by kind, e.g. `swiglu`) whose calibration range is the least-square-error clip
    /// of the observed one ([`super::ranges`]); the others keep `[min, max]`.
    pub clip: &'static [&'static str],
}

/// Points `LlamaParams::quantize` quantizes symmetrically (the others asymmetrically).
pub const SYMMETRIC_POINTS: &[&str] =
    &["q", "k", "v", "q_rope", "k_rope", "attn", "final", "logits"];

impl PackTransform {
    /// No transform: the observed ranges, the checkpoint's weights (`convert` by default).
    pub const NONE: PackTransform = PackTransform {
        swiglu_alpha: None,
        clip: &[],
    };

    /// `convert --smooth`: SwiGLU migration at the SmoothQuant default α = 0.5 and
    /// least-square-error ranges at every point but the logits (clipping the logits would
    /// saturate the leading ones, the ones greedy decoding compares). Measured on
    /// `models/llama-kjv` with `examples/llama_error_budget.rs` (6 validation windows):
    /// RMS logit error 0.28 → 0.24, mean error on f32's two leading logits 0.24 → 0.19.
    pub const SMOOTH: PackTransform = PackTransform {
        swiglu_alpha: Some(0.5),
        clip: &[
            "rms1", "q", "k", "v", "q_rope", "k_rope", "attn", "proj", "add1", "rms2", "w1", "w3",
            "swiglu", "w2", "add2", "final",
        ],
    };
}

/// The f64 reference `convert` quantizes (a loaded Llama, see [`to_reference`]) and its
/// calibration ranges over [`calibration_ids`].
pub fn reference_calibration(
    m: &LlamaModel,
    calibration: Option<&Path>,
) -> Result<(LlamaF, Calibration)> {
    reference_calibration_with(m, calibration, PackTransform::NONE)
}

/// [`reference_calibration`] with the given transforms.
pub fn reference_calibration_with(
    m: &LlamaModel,
    calibration: Option<&Path>,
    t: PackTransform,
) -> Result<(LlamaF, Calibration)> {
    let mut reference = to_reference(m)?;
    let inputs = calibration_ids(m, calibration)?;
    if let Some(alpha) = t.swiglu_alpha {
        let mut stats = super::migrate::ChannelMax::default();
        for i in 0..reference.blocks.len() {
            stats.watch(&format!("l{i}.swiglu"), m.config.hidden_dim);
        }
        for ids in &inputs {
            reference.forward(ids, &mut stats).map_err(core)?;
        }
        super::migrate::migrate_swiglu(&mut reference, &stats, alpha)?;
    }
    let calib = calibrate_llama(&reference, &inputs).map_err(core)?;
    if t.clip.is_empty() {
        return Ok((reference, calib));
    }
    let mut values = super::ranges::Values::new(t.clip);
    for ids in &inputs {
        reference.forward(ids, &mut values).map_err(core)?;
    }
    let symmetric = |p: &str| SYMMETRIC_POINTS.contains(&super::ranges::kind(p));
    let (calib, _) = super::ranges::clipped(&calib, &values, &symmetric);
    Ok((reference, calib))
}

/// Quantize an f64 reference with its calibration ranges.
pub fn quantize_reference(f: &LlamaF, calib: &Calibration) -> Result<LlamaParams> {
    LlamaParams::quantize(f, calib).map_err(core)
}

/// Calibrate and quantize a loaded Llama.
pub fn quantize(m: &LlamaModel, calibration: Option<&Path>) -> Result<LlamaParams> {
    let (reference, calib) = reference_calibration(m, calibration)?;
    quantize_reference(&reference, &calib)
}

/// Blob bytes of a loaded Llama, with the tokenizer's pieces as the blob's vocabulary.
pub fn convert(
    m: &LlamaModel,
    calibration: Option<&Path>,
    tokenizer: Option<&Tokenizer>,
) -> Result<Vec<u8>> {
    convert_with(m, calibration, tokenizer, PackTransform::NONE)
}

/// [`convert`] with pack-time transforms (`convert --smooth`: [`PackTransform::SMOOTH`]).
pub fn convert_with(
    m: &LlamaModel,
    calibration: Option<&Path>,
    tokenizer: Option<&Tokenizer>,
    t: PackTransform,
) -> Result<Vec<u8>> {
    let (reference, calib) = reference_calibration_with(m, calibration, t)?;
    let params = quantize_reference(&reference, &calib)?;
    let entries: Option<Vec<Option<&str>>> = tokenizer.map(|t| {
        t.pieces
            .iter()
            .map(|p| std::str::from_utf8(p).ok().filter(|s| !s.is_empty()))
            .collect()
    });
    core_attn::blob::write_llama(&params, entries.as_deref()).map_err(core)
}

/// Where `convert` puts the tokenizer beside a blob: `<blob>.tokenizer.bin`.
pub fn tokenizer_sidecar(blob: &Path) -> PathBuf {
    let mut s = blob.as_os_str().to_owned();
    s.push(".tokenizer.bin");
    PathBuf::from(s)
}

/// Host buffers and KV caches for a Llama blob.
struct Runner {
    owned: OwnedBuffers,
    layers: usize,
    positions: usize,
    kv_width: usize,
}

impl Runner {
    fn new(blob: &Blob<'_>) -> Result<Self> {
        let d = blob.llama_dims();
        Ok(Runner {
            owned: OwnedBuffers::new(&d.buffers().map_err(core)?),
            layers: d.layers,
            positions: d.max_positions,
            kv_width: d.kv_width(),
        })
    }

    /// Dequantized logits of every id of `ids` fed in order from position 0, plus, if
    /// `generate` is `Some((max_new, stop))`, greedy continuation as `forward::generate` does.
    fn run(
        &mut self,
        blob: &Blob<'_>,
        prompt: &[usize],
        generate: Option<(usize, &StopRule)>,
    ) -> Result<Generation> {
        let o = &mut self.owned;
        let mut caches: Vec<KvCache> =
            kv_caches(&mut o.kv, self.layers, self.positions, self.kv_width)
                .map_err(core)?
                .collect::<core::result::Result<_, _>>()
                .map_err(core)?;
        let mut buffers = ModelBuffers {
            x: &mut o.x,
            normed: &mut o.normed,
            wide: &mut o.wide,
            scores: &mut o.scores,
            patch: &mut o.patch,
            logits: &mut o.logits,
        };
        let h = blob.header();
        let (scale, zp) = (h.logits_scale(), h.logits_zero_point);
        let mut step = |t: usize, b: &mut ModelBuffers| -> Result<Vec<f32>> {
            let l = llama_step(blob, t as u32, &mut caches, b, &mut |_, _| {}).map_err(core)?;
            Ok(l.iter().map(|&q| scale * (q as i32 - zp) as f32).collect())
        };
        let mut logits = Vec::new();
        for &t in prompt {
            logits.push(step(t, &mut buffers)?);
        }
        let mut ids = prompt.to_vec();
        if let Some((max_new, stop)) = generate {
            for _ in 0..max_new {
                let Some(last) = logits.last() else { break };
                let next = argmax(last);
                match stop {
                    StopRule::Before(id) if next == *id => break,
                    StopRule::After(eos) if eos.contains(&next) => {
                        ids.push(next);
                        logits.push(step(next, &mut buffers)?);
                        break;
                    }
                    _ => {}
                }
                ids.push(next);
                logits.push(step(next, &mut buffers)?);
            }
        }
        Ok(Generation { ids, logits })
    }
}

/// Checks prompt ids against a Llama blob (non-empty, in the vocabulary, `prompt + max_new`
/// within the positions).
pub(crate) fn check_prompt(blob: &Blob<'_>, ids: &[usize], max_new: usize) -> Result<()> {
    let d = blob.llama_dims();
    if ids.is_empty() {
        return Err(Error::Input("empty prompt".into()));
    }
    if let Some(&bad) = ids.iter().find(|&&i| i >= d.vocab) {
        return Err(Error::Input(format!(
            "token id {bad} out of range (vocab_size {})",
            d.vocab
        )));
    }
    let need = ids.len() + max_new;
    if need > d.max_positions {
        return Err(Error::Input(format!(
            "prompt of {} tokens + {max_new} new tokens needs {need} positions, the model has {}",
            ids.len(),
            d.max_positions
        )));
    }
    Ok(())
}

/// Greedy decoding of a Llama blob with core-attn's int8 runner: the prompt's logits, then one
/// row per new id, stopping by the blob's [`stop_rule`] (what `forward::generate` does in f32).
pub fn generate(blob: &Blob<'_>, prompt: &[usize], max_new_tokens: usize) -> Result<Generation> {
    check_prompt(blob, prompt, max_new_tokens)?;
    let stop = stop_rule(blob);
    Runner::new(blob)?.run(blob, prompt, Some((max_new_tokens, &stop)))
}

/// Teacher-forced int8 logits of every position of `ids` (dequantized).
pub fn logits(blob: &Blob<'_>, ids: &[usize]) -> Result<Vec<Vec<f32>>> {
    check_prompt(blob, ids, 0)?;
    Ok(Runner::new(blob)?.run(blob, ids, None)?.logits)
}

/// The tokenizer for a blob: `--tokenizer FILE`, else `<blob>.tokenizer.bin` if present.
pub fn blob_tokenizer(
    blob_path: &Path,
    given: Option<&Path>,
    vocab: usize,
) -> Result<Option<Tokenizer>> {
    super::simulate::read_tokenizer(given, &tokenizer_sidecar(blob_path), vocab)
}

/// `tools simulate` on a Llama blob: the same prompts, stop rule and output as on the
/// checkpoint (`super::simulate`), computed by the int8 runner.
pub fn simulate(args: &SimulateArgs, blob: &Blob<'_>, out: &mut dyn Write) -> Result<()> {
    if args.vocab.is_some() {
        return Err(Error::Input(
            "--vocab is for character LMs; a Llama model takes --tokenizer FILE (llama2.c tokenizer.bin)"
                .into(),
        ));
    }
    let vocab = blob.llama_dims().vocab;
    let tokenizer = blob_tokenizer(&args.model, args.tokenizer.as_deref(), vocab)?;
    super::simulate::generate_and_print(
        args,
        tokenizer.as_ref(),
        &format!(
            "{} (written by convert --tokenizer)",
            tokenizer_sidecar(&args.model).display()
        ),
        out,
        |prompt, n| generate(blob, prompt, n),
    )
}
