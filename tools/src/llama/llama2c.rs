//! llama2.c checkpoints: the legacy version-0 float32 `.bin` that `run.c` reads.
//!
//! Layout (little-endian): seven int32 `dim, hidden_dim, n_layers, n_heads, n_kv_heads,
//! vocab_size, seq_len` (a negative `vocab_size` means an unshared classifier follows), then
//! float32 tensors in `run.c`'s order, every matrix `[out][in]` and stacked over layers:
//! `token_embedding_table [vocab, dim]`, `rms_att_weight [L, dim]`, `wq [L, dim, dim]`,
//! `wk [L, kv_dim, dim]`, `wv [L, kv_dim, dim]`, `wo [L, dim, dim]`, `rms_ffn_weight [L, dim]`,
//! `w1 [L, hidden, dim]`, `w2 [L, dim, hidden]`, `w3 [L, hidden, dim]`, `rms_final_weight
//! [dim]`, `freq_cis_real` and `freq_cis_imag [seq_len, head_size / 2]` (legacy, skipped:
//! `run.c` computes the rotation itself), then `wcls [vocab, dim]` if unshared.
//!
//! The file must have exactly the size its header implies; every used weight must be finite.
//! The newer llama2.c formats (version 1 and 2, magic `"ak42"`) are refused by name.

use std::path::Path;

use super::{first_non_finite, linear, LlamaConfig, LlamaLayer, LlamaModel, RopeStyle, StopRule};
use crate::checkpoint::config::MAX_LAYERS;
use crate::error::{Error, Result};
use crate::model::Mat;

/// Bytes of the version-0 header.
pub const HEADER_BYTES: usize = 28;
/// The first word of llama2.c's version-1/2 exports (`"ak42"` little-endian).
const MAGIC_V1: u32 = 0x616b_3432;
/// `run.c`'s RMSNorm epsilon.
pub const NORM_EPS: f64 = 1e-5;
/// `run.c`'s rotary base.
pub const ROPE_THETA: f64 = 10_000.0;
/// `run.c`'s BOS id (also the id that ends generation).
pub const BOS: usize = 1;

/// The seven header words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Model width.
    pub dim: i32,
    /// SwiGLU width.
    pub hidden_dim: i32,
    /// Layers.
    pub n_layers: i32,
    /// Query heads.
    pub n_heads: i32,
    /// Key/value heads.
    pub n_kv_heads: i32,
    /// Vocabulary size; negative: an unshared classifier is stored at the end.
    pub vocab_size: i32,
    /// Maximum sequence length.
    pub seq_len: i32,
}

impl Header {
    fn describe(&self) -> String {
        format!(
            "dim {}, hidden_dim {}, n_layers {}, n_heads {}, n_kv_heads {}, vocab_size {}, seq_len {}",
            self.dim,
            self.hidden_dim,
            self.n_layers,
            self.n_heads,
            self.n_kv_heads,
            self.vocab_size,
            self.seq_len
        )
    }
}

/// Reads and validates a llama2.c checkpoint.
pub fn load(path: &Path) -> Result<LlamaModel> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, path)
}

/// Parses the bytes of a llama2.c checkpoint (`path` is only used in messages).
pub fn parse(bytes: &[u8], path: &Path) -> Result<LlamaModel> {
    let bad = |reason: String| Error::Llama2c {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < HEADER_BYTES {
        return Err(bad(format!(
            "file is {} bytes, too short for the {HEADER_BYTES}-byte header",
            bytes.len()
        )));
    }
    let word = |i: usize| i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    if word(0) as u32 == MAGIC_V1 {
        return Err(bad(format!(
            "version-{} llama2.c export (magic \"ak42\") is not supported: export with the legacy version-0 float32 format",
            word(1)
        )));
    }
    let h = Header {
        dim: word(0),
        hidden_dim: word(1),
        n_layers: word(2),
        n_heads: word(3),
        n_kv_heads: word(4),
        vocab_size: word(5),
        seq_len: word(6),
    };
    let cfg = config(&h).map_err(|r| bad(format!("header ({}): {r}", h.describe())))?;
    let shared = cfg.tie_word_embeddings;

    // Sizes in f32 values, in file order; u128 cannot overflow for i32 dimensions.
    let (d, hd, l, kv, v) = (
        cfg.dim as u128,
        cfg.hidden_dim as u128,
        cfg.n_layers as u128,
        cfg.kv_dim() as u128,
        cfg.vocab_size as u128,
    );
    let freq = cfg.seq_len as u128 * (cfg.head_dim as u128 / 2);
    let values = v * d
        + l * d
        + l * d * d
        + 2 * l * kv * d
        + l * d * d
        + l * d
        + 3 * l * hd * d
        + d
        + 2 * freq
        + if shared { 0 } else { v * d };
    let expected = HEADER_BYTES as u128 + 4 * values;
    let found = bytes.len() as u128;
    if found < expected {
        return Err(bad(format!(
            "truncated: file is {found} bytes, its header ({}) implies {expected}",
            h.describe()
        )));
    }
    if found > expected {
        return Err(bad(format!(
            "file is {found} bytes, its header ({}) implies {expected} ({} unexpected trailing bytes)",
            h.describe(),
            found - expected
        )));
    }

    let mut r = Reader {
        bytes: &bytes[HEADER_BYTES..],
        path,
    };
    let (d, hd, l, kv, v) = (
        cfg.dim,
        cfg.hidden_dim,
        cfg.n_layers,
        cfg.kv_dim(),
        cfg.vocab_size,
    );
    let embed = r.tensor("token_embedding_table", None, v * d)?;
    let rms_att = r.layers("rms_att_weight", l, d)?;
    let mut wq = r.layers("wq", l, d * d)?;
    let mut wk = r.layers("wk", l, kv * d)?;
    let mut wv = r.layers("wv", l, kv * d)?;
    let mut wo = r.layers("wo", l, d * d)?;
    let mut rms_ffn = r.layers("rms_ffn_weight", l, d)?;
    let mut w1 = r.layers("w1", l, hd * d)?;
    let mut w2 = r.layers("w2", l, d * hd)?;
    let mut w3 = r.layers("w3", l, hd * d)?;
    let rms_final = r.tensor("rms_final_weight", None, d)?;
    r.skip(2 * cfg.seq_len * (cfg.head_dim / 2));
    let classifier = if shared {
        None
    } else {
        Some(Mat::from_vec(v, d, r.tensor("wcls", None, v * d)?))
    };
    let take = |x: &mut Vec<Vec<f32>>, i: usize| std::mem::take(&mut x[i]);
    let layers = rms_att
        .into_iter()
        .enumerate()
        .map(|(i, rms_att)| LlamaLayer {
            rms_att,
            wq: linear(take(&mut wq, i), d, d),
            wk: linear(take(&mut wk, i), kv, d),
            wv: linear(take(&mut wv, i), kv, d),
            wo: linear(take(&mut wo, i), d, d),
            rms_ffn: take(&mut rms_ffn, i),
            w1: linear(take(&mut w1, i), hd, d),
            w2: linear(take(&mut w2, i), d, hd),
            w3: linear(take(&mut w3, i), hd, d),
        })
        .collect();
    Ok(LlamaModel {
        config: cfg,
        embed: Mat::from_vec(v, d, embed),
        layers,
        rms_final,
        classifier,
    })
}

/// The model config a valid header describes, or why the header is invalid.
fn config(h: &Header) -> std::result::Result<LlamaConfig, String> {
    let fields = [
        ("dim", h.dim),
        ("hidden_dim", h.hidden_dim),
        ("n_layers", h.n_layers),
        ("n_heads", h.n_heads),
        ("n_kv_heads", h.n_kv_heads),
        ("seq_len", h.seq_len),
    ];
    for (name, v) in fields {
        if v < 1 {
            return Err(format!("{name} must be at least 1"));
        }
    }
    if h.vocab_size == 0 {
        return Err("vocab_size must not be 0".into());
    }
    let n_layers = h.n_layers as usize;
    if n_layers > MAX_LAYERS {
        return Err(format!("n_layers exceeds the limit of {MAX_LAYERS} layers"));
    }
    if h.dim % h.n_heads != 0 {
        return Err("dim is not a multiple of n_heads".into());
    }
    if h.n_heads % h.n_kv_heads != 0 {
        return Err("n_heads is not a multiple of n_kv_heads".into());
    }
    let head_dim = (h.dim / h.n_heads) as usize;
    if head_dim % 2 != 0 {
        return Err(format!(
            "head size dim / n_heads = {head_dim} is odd (rotary embedding rotates pairs)"
        ));
    }
    Ok(LlamaConfig {
        dim: h.dim as usize,
        hidden_dim: h.hidden_dim as usize,
        n_layers,
        n_heads: h.n_heads as usize,
        n_kv_heads: h.n_kv_heads as usize,
        head_dim,
        vocab_size: h.vocab_size.unsigned_abs() as usize,
        seq_len: h.seq_len as usize,
        norm_eps: NORM_EPS,
        rope_theta: ROPE_THETA,
        rope: RopeStyle::Interleaved,
        bos_token_id: Some(BOS),
        stop: StopRule::Before(BOS),
        tie_word_embeddings: h.vocab_size > 0,
    })
}

/// Sequential f32 reader over the weights (the size was checked up front).
struct Reader<'a> {
    bytes: &'a [u8],
    path: &'a Path,
}

impl Reader<'_> {
    /// One tensor of `len` values (of layer `layer` of a stacked tensor), checked for
    /// finiteness.
    fn tensor(&mut self, name: &str, layer: Option<usize>, len: usize) -> Result<Vec<f32>> {
        let (head, rest) = self.bytes.split_at(4 * len);
        self.bytes = rest;
        let data: Vec<f32> = head
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        if let Some((index, value)) = first_non_finite(&data) {
            let tensor = match layer {
                Some(l) => format!("{name}` of layer {l}"),
                None => format!("{name}`"),
            };
            return Err(Error::Llama2c {
                path: self.path.to_path_buf(),
                reason: format!("`{tensor} contains {value} at flat index {index}"),
            });
        }
        Ok(data)
    }

    /// A tensor stacked over `n` layers, `len` values per layer.
    fn layers(&mut self, name: &str, n: usize, len: usize) -> Result<Vec<Vec<f32>>> {
        (0..n).map(|l| self.tensor(name, Some(l), len)).collect()
    }

    fn skip(&mut self, values: usize) {
        self.bytes = &self.bytes[4 * values..];
    }
}
