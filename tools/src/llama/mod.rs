//! Llama-family decoders (issue 14, first stage: the f32 path).
//!
//! - [`llama2c`]: Karpathy's llama2.c legacy version-0 float32 `.bin` checkpoints.
//! - [`hf`]: Hugging Face `LlamaForCausalLM` directories (`config.json` + `model.safetensors`).
//! - [`tokenizer`]: llama2.c's `tokenizer.bin` with `run.c`'s encoder and decoder.
//! - [`forward`]: the f32 reference (RMSNorm, rotary positions in both conventions, SwiGLU,
//!   grouped-query attention, tied or untied classifier) with a KV cache and greedy decoding.
//! - [`simulate`]: `tools simulate` on a Llama checkpoint.
//!
//! Both importers produce the same [`LlamaModel`]: every matrix `[out, in]`, the rotary
//! convention recorded in [`RopeStyle`] (llama2.c rotates interleaved pairs, Hugging Face the two
//! halves of each head: the checkpoints' q/k rows are permuted accordingly, so the importer
//! never reorders weights).

pub mod eval;
pub mod forward;
pub mod hf;
pub mod int8;
pub mod llama2c;
pub mod migrate;
pub mod ranges;
pub mod simulate;
pub mod tokenizer;

use std::path::Path;

use crate::model::{Linear, Mat};

/// Which elements of a head rotary embedding rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// llama2.c `run.c`: pairs `(2i, 2i + 1)`, angle `pos / theta^(2i / head_dim)`.
    Interleaved,
    /// Hugging Face Llama (`rotate_half`): pairs `(i, i + head_dim / 2)`, angle
    /// `pos / theta^(2i / head_dim)`.
    HalfSplit,
}

/// Shape and hyper-parameters of a Llama decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Model width (`dim`, `hidden_size`).
    pub dim: usize,
    /// SwiGLU width (`hidden_dim`, `intermediate_size`).
    pub hidden_dim: usize,
    /// Number of decoder layers.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (divides `n_heads`); query head `h` reads key/value head
    /// `h / (n_heads / n_kv_heads)`.
    pub n_kv_heads: usize,
    /// Width of one head (even).
    pub head_dim: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Longest sequence (`seq_len`, `max_position_embeddings`); the KV cache holds this many.
    pub seq_len: usize,
    /// RMSNorm epsilon (llama2.c: 1e-5).
    pub norm_eps: f64,
    /// Rotary base (10000).
    pub rope_theta: f64,
    /// Rotary pairing convention.
    pub rope: RopeStyle,
    /// Beginning-of-sequence id (llama2.c: 1).
    pub bos_token_id: Option<usize>,
    /// Ids that end greedy generation. llama2.c `run.c` stops *before* a BOS (1) and does not
    /// print it; Hugging Face stops *after* emitting an `eos_token_id` (kept in the output).
    pub stop: StopRule,
    /// The classifier is the token embedding matrix (llama2.c: a positive `vocab_size`).
    pub tie_word_embeddings: bool,
}

/// When greedy decoding ends early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopRule {
    /// `run.c`: the sequence ends before this id (it is not emitted).
    Before(usize),
    /// Hugging Face `generate`: the sequence ends after any of these ids (emitted).
    After(Vec<usize>),
}

impl LlamaConfig {
    /// `n_heads * head_dim`: width of the queries and of the attention output.
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// `n_kv_heads * head_dim`: width of keys and values (one KV cache row).
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }
}

/// One decoder layer: `x += wo · attn(rope(wq·n), rope(wk·n), wv·n)` with `n = rmsnorm(x) ⊙
/// rms_att`, then `x += w2 · (silu(w1·n') ⊙ (w3·n'))` with `n' = rmsnorm(x) ⊙ rms_ffn`.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaLayer {
    /// RMSNorm weight before attention (`input_layernorm`), `[dim]`.
    pub rms_att: Vec<f32>,
    /// Query projection `[q_dim, dim]`.
    pub wq: Linear,
    /// Key projection `[kv_dim, dim]`.
    pub wk: Linear,
    /// Value projection `[kv_dim, dim]`.
    pub wv: Linear,
    /// Attention output projection `[dim, q_dim]`.
    pub wo: Linear,
    /// RMSNorm weight before the MLP (`post_attention_layernorm`), `[dim]`.
    pub rms_ffn: Vec<f32>,
    /// Gate projection (`gate_proj`), `[hidden_dim, dim]`.
    pub w1: Linear,
    /// Down projection (`down_proj`), `[dim, hidden_dim]`.
    pub w2: Linear,
    /// Up projection (`up_proj`), `[hidden_dim, dim]`.
    pub w3: Linear,
}

/// A Llama decoder in f32.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaModel {
    /// Its shape and hyper-parameters.
    pub config: LlamaConfig,
    /// Token embeddings `[vocab, dim]`.
    pub embed: Mat,
    /// Decoder layers.
    pub layers: Vec<LlamaLayer>,
    /// Final RMSNorm weight `[dim]`.
    pub rms_final: Vec<f32>,
    /// Untied classifier `[vocab, dim]`; `None`: tied to `embed`.
    pub classifier: Option<Mat>,
}

impl LlamaModel {
    /// The classifier matrix `[vocab, dim]` (the embeddings when tied).
    pub fn classifier(&self) -> &Mat {
        self.classifier.as_ref().unwrap_or(&self.embed)
    }
}

/// Where a Llama checkpoint lives and in which format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A llama2.c `.bin` file.
    Llama2c,
    /// A Hugging Face directory whose `config.json` says `"model_type": "llama"`.
    HuggingFace,
}

/// Recognizes a Llama checkpoint: a path named `*.bin` that is not a directory and does not
/// start with the TATN blob magic (llama2.c; a missing file too, so that the error names it),
/// or a directory whose `config.json` has `"model_type": "llama"`. Anything else (including an
/// unreadable config) is `None`, left to the other importers and their error messages.
pub fn detect(path: &Path) -> Option<Format> {
    if path.is_dir() {
        let text = std::fs::read_to_string(path.join(crate::checkpoint::CONFIG_FILE)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        return (v.get("model_type")?.as_str()? == "llama").then_some(Format::HuggingFace);
    }
    if path.extension().is_none_or(|e| e != "bin") {
        return None;
    }
    let mut magic = [0u8; 4];
    let is_blob = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == core_attn::blob::MAGIC;
    (!is_blob).then_some(Format::Llama2c)
}

/// Loads a Llama checkpoint of either format (see [`detect`]).
pub fn load(path: &Path, format: Format) -> crate::Result<LlamaModel> {
    match format {
        Format::Llama2c => llama2c::load(path),
        Format::HuggingFace => hf::load(path),
    }
}

/// A bias-free linear layer from an `[out, in]` weight.
pub(crate) fn linear(weight: Vec<f32>, out_dim: usize, in_dim: usize) -> Linear {
    debug_assert_eq!(weight.len(), out_dim * in_dim);
    Linear {
        in_dim,
        out_dim,
        weight,
        bias: None,
    }
}

/// Index and kind of the first non-finite value.
pub(crate) fn first_non_finite(data: &[f32]) -> Option<(usize, &'static str)> {
    let i = data.iter().position(|x| !x.is_finite())?;
    let x = data[i];
    Some((
        i,
        if x.is_nan() {
            "NaN"
        } else if x > 0.0 {
            "inf"
        } else {
            "-inf"
        },
    ))
}
