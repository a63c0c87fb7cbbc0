//! Typed f32 models built from a [`Checkpoint`]: every tensor checked for presence, shape and
//! finiteness, and every stored tensor accounted for.
//!
//! Tensor naming follows Hugging Face (`vit.*` + `classifier.*`, `transformer.*`,
//! `encoder.*` + `decoder.transformer.*`); the two extensions are described in `tools/README.md`.
//! All linear weights are kept as `[out, in]` (PyTorch `nn.Linear` layout); GPT-2 `Conv1D`
//! weights (`[in, out]`) are transposed on load.

use std::collections::BTreeSet;
use std::path::Path;

use crate::checkpoint::config::{
    EncoderDecoderConfig, Gpt2Config, ModelConfig, NormPlacement, PositionEmbedding, VitConfig,
};
use crate::checkpoint::{Checkpoint, TensorMap};
use crate::error::{Error, Result};

/// A row-major f32 matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Mat {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows * cols` values, row-major.
    pub data: Vec<f32>,
}

impl Mat {
    /// A zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Mat {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Wraps `data` (must hold `rows * cols` values).
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), rows * cols, "Mat::from_vec size");
        Mat { rows, cols, data }
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Row `r`, mutable.
    pub fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }
}

/// `y = x W^T + b`, weight stored `[out, in]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// Input features.
    pub in_dim: usize,
    /// Output features.
    pub out_dim: usize,
    /// `[out_dim, in_dim]`, row-major.
    pub weight: Vec<f32>,
    /// `[out_dim]`, if the layer has a bias.
    pub bias: Option<Vec<f32>>,
}

/// `LN(x) = (x - mean) / sqrt(var + eps) * gamma + beta` over the last axis.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNorm {
    /// Scale, `[D]`.
    pub gamma: Vec<f32>,
    /// Shift, `[D]`.
    pub beta: Vec<f32>,
    /// Added to the (biased) variance.
    pub eps: f64,
}

/// One ViT encoder layer.
///
/// Pre-norm: `h += attn(ln1(h)); h += mlp(ln2(h))`.
/// Post-norm: `h = ln1(h + attn(h)); h = ln2(h + mlp(h))`.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderLayer {
    /// Before attention (pre) or after the attention residual (post).
    pub ln1: LayerNorm,
    /// Query projection.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Attention output projection.
    pub attn_out: Linear,
    /// Before the MLP (pre) or after the MLP residual (post).
    pub ln2: LayerNorm,
    /// MLP up-projection (`intermediate.dense`).
    pub fc1: Linear,
    /// MLP down-projection (`output.dense`).
    pub fc2: Linear,
}

/// A ViT encoder: patch embedding, CLS token, learned positions, layers, final LayerNorm.
#[derive(Debug, Clone, PartialEq)]
pub struct VitEncoder {
    /// Its config.
    pub config: VitConfig,
    /// Patch projection: the stride-p Conv2d as a Linear `[D, C*p*p]`.
    pub patch: Linear,
    /// CLS token, `[D]`.
    pub cls: Vec<f32>,
    /// Position embeddings, `[N+1, D]`.
    pub pos: Mat,
    /// Encoder layers.
    pub layers: Vec<EncoderLayer>,
    /// Final LayerNorm (`layernorm`); absent for post-norm encoders.
    pub final_ln: Option<LayerNorm>,
}

/// `ViTForImageClassification`.
#[derive(Debug, Clone, PartialEq)]
pub struct VitModel {
    /// The encoder (`vit.*`).
    pub encoder: VitEncoder,
    /// Classifier on the CLS token (`classifier`).
    pub classifier: Linear,
}

/// GPT-2 cross-attention (decoder of an encoder-decoder).
#[derive(Debug, Clone, PartialEq)]
pub struct CrossAttention {
    /// `ln_cross_attn`.
    pub ln: LayerNorm,
    /// `crossattention.q_attn`, `[D, D]`.
    pub q: Linear,
    /// `crossattention.c_attn`, `[2D, D]` (k | v halves), applied to the encoder output.
    pub kv: Linear,
    /// `crossattention.c_proj`.
    pub proj: Linear,
}

/// One GPT-2 block (pre-norm).
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderBlock {
    /// `ln_1`.
    pub ln_1: LayerNorm,
    /// `attn.c_attn`, `[3D, D]` (q | k | v thirds).
    pub c_attn: Linear,
    /// `attn.c_proj`.
    pub c_proj: Linear,
    /// Cross-attention, when `add_cross_attention`.
    pub cross: Option<CrossAttention>,
    /// `ln_2`.
    pub ln_2: LayerNorm,
    /// `mlp.c_fc`, `[inner, D]`.
    pub fc: Linear,
    /// `mlp.c_proj`, `[D, inner]`.
    pub proj: Linear,
}

/// `GPT2LMHeadModel` (also the decoder of the encoder-decoder).
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2Model {
    /// Its config.
    pub config: Gpt2Config,
    /// Token embeddings `wte`, `[V, D]`.
    pub wte: Mat,
    /// Position table `[n_positions, D]`: `wpe`, or the sinusoidal table.
    pub positions: Mat,
    /// Blocks `h.{i}`.
    pub blocks: Vec<DecoderBlock>,
    /// `ln_f`.
    pub ln_f: LayerNorm,
    /// Untied LM head `[V, D]` (`lm_head.weight`); `None` when tied to `wte`.
    pub lm_head: Option<Mat>,
}

/// `VisionEncoderDecoderModel` with a ViT encoder and a GPT-2 decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderDecoderModel {
    /// Its config (special token ids for generation).
    pub config: EncoderDecoderConfig,
    /// The encoder (`encoder.*`), with its final LayerNorm.
    pub encoder: VitEncoder,
    /// `enc_to_dec_proj`, present when encoder and decoder widths differ.
    pub enc_to_dec: Option<Linear>,
    /// The decoder (`decoder.*`).
    pub decoder: Gpt2Model,
}

/// Any supported model.
// One per process, loaded once: the variant size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Image classifier.
    Vit(VitModel),
    /// Decoder-only LM.
    Gpt2(Gpt2Model),
    /// Image-to-text encoder-decoder.
    EncoderDecoder(EncoderDecoderModel),
}

impl Model {
    /// Loads `dir/config.json` + `dir/model.safetensors` into a typed model.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::from_checkpoint(Checkpoint::load(dir)?)
    }

    /// Builds the typed model from a parsed checkpoint.
    pub fn from_checkpoint(ck: Checkpoint) -> Result<Self> {
        let mut l = Loader::new(ck.tensors);
        let model = match ck.config {
            ModelConfig::Vit(cfg) => {
                let encoder = l.vit_encoder("vit.", cfg)?;
                let d = encoder.config.hidden_size;
                let classifier = l.linear("classifier", d, encoder.config.num_labels, true)?;
                l.finish(&[(
                    "vit.encoder.layer.",
                    encoder.layers.len(),
                    "num_hidden_layers",
                )])?;
                Model::Vit(VitModel {
                    encoder,
                    classifier,
                })
            }
            ModelConfig::Gpt2(cfg) => {
                if cfg.add_cross_attention {
                    return Err(Error::UnsupportedConfig {
                        key: "add_cross_attention".into(),
                        value: "true (cross-attention needs an encoder-decoder checkpoint)".into(),
                    });
                }
                let m = l.gpt2("", cfg)?;
                l.finish(&[("transformer.h.", m.blocks.len(), "n_layer")])?;
                Model::Gpt2(m)
            }
            ModelConfig::EncoderDecoder(cfg) => {
                let encoder = l.vit_encoder("encoder.", cfg.encoder.clone())?;
                let decoder = l.gpt2("decoder.", cfg.decoder.clone())?;
                let (de, dd) = (cfg.encoder.hidden_size, cfg.decoder.n_embd);
                let enc_to_dec = if de != dd {
                    Some(l.linear("enc_to_dec_proj", de, dd, true)?)
                } else {
                    None
                };
                l.finish(&[
                    (
                        "encoder.encoder.layer.",
                        encoder.layers.len(),
                        "encoder.num_hidden_layers",
                    ),
                    (
                        "decoder.transformer.h.",
                        decoder.blocks.len(),
                        "decoder.n_layer",
                    ),
                ])?;
                Model::EncoderDecoder(EncoderDecoderModel {
                    config: cfg,
                    encoder,
                    enc_to_dec,
                    decoder,
                })
            }
        };
        Ok(model)
    }

    /// Short architecture name for messages (`vit`, `gpt2`, `vision-encoder-decoder`).
    pub fn kind(&self) -> &'static str {
        match self {
            Model::Vit(_) => "vit",
            Model::Gpt2(_) => "gpt2",
            Model::EncoderDecoder(_) => "vision-encoder-decoder",
        }
    }
}

/// Hands out tensors by name with shape and finiteness checks, and remembers what was used.
struct Loader {
    tensors: TensorMap,
    /// Names that may be present and are ignored (e.g. a tied `lm_head.weight`).
    ignorable: BTreeSet<String>,
}

impl Loader {
    fn new(tensors: TensorMap) -> Self {
        Loader {
            tensors,
            ignorable: BTreeSet::new(),
        }
    }

    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        if t.shape != shape {
            return Err(Error::ShapeMismatch {
                tensor: name.to_string(),
                expected: shape.to_vec(),
                found: t.shape,
            });
        }
        if let Some(index) = t.data.iter().position(|x| !x.is_finite()) {
            let x = t.data[index];
            return Err(Error::NonFinite {
                tensor: name.to_string(),
                value: if x.is_nan() {
                    "NaN"
                } else if x > 0.0 {
                    "inf"
                } else {
                    "-inf"
                },
                index,
            });
        }
        Ok(t.data)
    }

    /// PyTorch `nn.Linear`: `{prefix}.weight` `[out, in]`, `{prefix}.bias` `[out]`.
    fn linear(
        &mut self,
        prefix: &str,
        in_dim: usize,
        out_dim: usize,
        bias: bool,
    ) -> Result<Linear> {
        let weight = self.take(&format!("{prefix}.weight"), &[out_dim, in_dim])?;
        let bias = if bias {
            Some(self.take(&format!("{prefix}.bias"), &[out_dim])?)
        } else {
            None
        };
        Ok(Linear {
            in_dim,
            out_dim,
            weight,
            bias,
        })
    }

    /// GPT-2 `Conv1D`: weight stored `[in, out]`; transposed to `[out, in]`.
    fn conv1d(&mut self, prefix: &str, in_dim: usize, out_dim: usize) -> Result<Linear> {
        let w = self.take(&format!("{prefix}.weight"), &[in_dim, out_dim])?;
        let mut weight = vec![0.0; in_dim * out_dim];
        for i in 0..in_dim {
            for o in 0..out_dim {
                weight[o * in_dim + i] = w[i * out_dim + o];
            }
        }
        let bias = Some(self.take(&format!("{prefix}.bias"), &[out_dim])?);
        Ok(Linear {
            in_dim,
            out_dim,
            weight,
            bias,
        })
    }

    fn layer_norm(&mut self, prefix: &str, d: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            gamma: self.take(&format!("{prefix}.weight"), &[d])?,
            beta: self.take(&format!("{prefix}.bias"), &[d])?,
            eps,
        })
    }

    fn vit_encoder(&mut self, p: &str, cfg: VitConfig) -> Result<VitEncoder> {
        let d = cfg.hidden_size;
        let (c, (ph, pw)) = (cfg.num_channels, cfg.patch_size);
        let t = cfg.seq_len();
        let eps = cfg.layer_norm_eps;
        let pname = format!("{p}embeddings.patch_embeddings.projection");
        let weight = self.take(&format!("{pname}.weight"), &[d, c, ph, pw])?;
        let bias = Some(self.take(&format!("{pname}.bias"), &[d])?);
        let patch = Linear {
            in_dim: c * ph * pw,
            out_dim: d,
            weight,
            bias,
        };
        let cls = self.take(&format!("{p}embeddings.cls_token"), &[1, 1, d])?;
        let pos = Mat::from_vec(
            t,
            d,
            self.take(&format!("{p}embeddings.position_embeddings"), &[1, t, d])?,
        );
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let lp = format!("{p}encoder.layer.{i}.");
            let (ln1, ln2) = match cfg.norm_placement {
                NormPlacement::Pre => ("layernorm_before", "layernorm_after"),
                NormPlacement::Post => ("attention.output.LayerNorm", "output.LayerNorm"),
            };
            let qkv = cfg.qkv_bias;
            layers.push(EncoderLayer {
                ln1: self.layer_norm(&format!("{lp}{ln1}"), d, eps)?,
                query: self.linear(&format!("{lp}attention.attention.query"), d, d, qkv)?,
                key: self.linear(&format!("{lp}attention.attention.key"), d, d, qkv)?,
                value: self.linear(&format!("{lp}attention.attention.value"), d, d, qkv)?,
                attn_out: self.linear(&format!("{lp}attention.output.dense"), d, d, true)?,
                ln2: self.layer_norm(&format!("{lp}{ln2}"), d, eps)?,
                fc1: self.linear(
                    &format!("{lp}intermediate.dense"),
                    d,
                    cfg.intermediate_size,
                    true,
                )?,
                fc2: self.linear(&format!("{lp}output.dense"), cfg.intermediate_size, d, true)?,
            });
        }
        let final_ln = match cfg.norm_placement {
            NormPlacement::Pre => Some(self.layer_norm(&format!("{p}layernorm"), d, eps)?),
            NormPlacement::Post => None,
        };
        Ok(VitEncoder {
            config: cfg,
            patch,
            cls,
            pos,
            layers,
            final_ln,
        })
    }

    fn gpt2(&mut self, p: &str, cfg: Gpt2Config) -> Result<Gpt2Model> {
        let (d, v, n, inner) = (cfg.n_embd, cfg.vocab_size, cfg.n_positions, cfg.n_inner);
        let eps = cfg.layer_norm_epsilon;
        let tp = format!("{p}transformer.");
        let wte = Mat::from_vec(v, d, self.take(&format!("{tp}wte.weight"), &[v, d])?);
        let positions = match cfg.position_embedding {
            PositionEmbedding::Learned => {
                Mat::from_vec(n, d, self.take(&format!("{tp}wpe.weight"), &[n, d])?)
            }
            PositionEmbedding::Sinusoidal => sinusoidal_table(n, d),
        };
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let bp = format!("{tp}h.{i}.");
            let cross = if cfg.add_cross_attention {
                Some(CrossAttention {
                    ln: self.layer_norm(&format!("{bp}ln_cross_attn"), d, eps)?,
                    q: self.conv1d(&format!("{bp}crossattention.q_attn"), d, d)?,
                    kv: self.conv1d(&format!("{bp}crossattention.c_attn"), d, 2 * d)?,
                    proj: self.conv1d(&format!("{bp}crossattention.c_proj"), d, d)?,
                })
            } else {
                None
            };
            blocks.push(DecoderBlock {
                ln_1: self.layer_norm(&format!("{bp}ln_1"), d, eps)?,
                c_attn: self.conv1d(&format!("{bp}attn.c_attn"), d, 3 * d)?,
                c_proj: self.conv1d(&format!("{bp}attn.c_proj"), d, d)?,
                cross,
                ln_2: self.layer_norm(&format!("{bp}ln_2"), d, eps)?,
                fc: self.conv1d(&format!("{bp}mlp.c_fc"), d, inner)?,
                proj: self.conv1d(&format!("{bp}mlp.c_proj"), inner, d)?,
            });
        }
        let ln_f = self.layer_norm(&format!("{tp}ln_f"), d, eps)?;
        let head = format!("{p}lm_head.weight");
        let lm_head = if cfg.tie_word_embeddings {
            // Some checkpoints store the tied copy anyway; HF overwrites it with wte.
            self.ignorable.insert(head);
            None
        } else {
            Some(Mat::from_vec(v, d, self.take(&head, &[v, d])?))
        };
        Ok(Gpt2Model {
            config: cfg,
            wte,
            positions,
            blocks,
            ln_f,
            lm_head,
        })
    }

    /// Fails on the first leftover tensor that is not known to be unused.
    /// `layers`: (name prefix, layer count, config key) to report extra layers as a config
    /// mismatch rather than an unexpected tensor.
    fn finish(self, layers: &[(&str, usize, &str)]) -> Result<()> {
        for name in self.tensors.keys() {
            if self.ignorable.contains(name) || is_known_unused(name) {
                continue;
            }
            for &(prefix, n, key) in layers {
                if let Some(rest) = name.strip_prefix(prefix) {
                    if let Some(i) = rest.split('.').next().and_then(|s| s.parse::<usize>().ok()) {
                        if i >= n {
                            return Err(Error::ConfigMismatch(format!(
                                "`{key}` is {n} but tensor `{name}` exists"
                            )));
                        }
                    }
                }
            }
            return Err(Error::UnexpectedTensor(name.clone()));
        }
        Ok(())
    }
}

/// Tensors real checkpoints carry that inference never reads: ViT poolers and the causal-mask
/// buffers old GPT-2 checkpoints persisted.
fn is_known_unused(name: &str) -> bool {
    name.starts_with("pooler.")
        || name.contains(".pooler.")
        || [
            ".attn.bias",
            ".attn.masked_bias",
            ".crossattention.bias",
            ".crossattention.masked_bias",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

/// The sinusoidal table of Vaswani et al.: row `pos`, columns `2k` = `sin(pos * w_k)`,
/// `2k+1` = `cos(pos * w_k)`, `w_k = 1 / 10000^(2k/d)` (`d` even). Computed in f64.
pub fn sinusoidal_table(n: usize, d: usize) -> Mat {
    let mut m = Mat::zeros(n, d);
    for pos in 0..n {
        for k in 0..d / 2 {
            let w = 1.0 / libm::pow(10000.0, 2.0 * k as f64 / d as f64);
            let a = pos as f64 * w;
            m.data[pos * d + 2 * k] = libm::sin(a) as f32;
            m.data[pos * d + 2 * k + 1] = libm::cos(a) as f32;
        }
    }
    m
}
