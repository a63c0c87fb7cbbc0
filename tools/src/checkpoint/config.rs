//! `config.json` for the supported architectures, with Hugging Face's defaults for missing keys.
//!
//! `transformers` omits every key that has its default value, so each getter here carries the
//! default of the corresponding `PretrainedConfig` subclass (`ViTConfig`, `GPT2Config`).
//! Keys that do nothing at inference (dropouts, `initializer_range`, `summary_*`, `pooler_*`,
//! `encoder_stride`, `use_cache`, label maps other than their length, ...) are ignored.
//! Two extension keys, documented in `tools/README.md`, select architectures HF does not have:
//! `"norm_placement": "post"` (ViT encoder) and `"position_embedding_type": "sinusoidal"` (GPT-2).

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Element-wise activation of the MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (HF `"gelu"`).
    GeluErf,
    /// Tanh-approximated GELU (HF `"gelu_new"`, `"gelu_pytorch_tanh"`, `"gelu_fast"`).
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

impl Activation {
    fn parse(key: &str, v: &str) -> Result<Self> {
        Ok(match v {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            _ => {
                return Err(Error::UnsupportedConfig {
                    key: key.into(),
                    value: format!("\"{v}\""),
                })
            }
        })
    }
}

/// Where an encoder layer puts its LayerNorms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormPlacement {
    /// `x += f(LN(x))` (ViT, GPT-2; HF default).
    Pre,
    /// `x = LN(x + f(x))` (original Transformer, BERT). Extension key `"norm_placement": "post"`.
    Post,
}

/// How a decoder encodes token positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionEmbedding {
    /// Learned table `wpe` (GPT-2; HF default).
    Learned,
    /// Fixed sin/cos table of Vaswani et al., no tensor. Extension key
    /// `"position_embedding_type": "sinusoidal"`.
    Sinusoidal,
}

/// A ViT encoder (`ViTConfig`), plus the classifier size when it is a classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct VitConfig {
    /// `hidden_size` (default 768).
    pub hidden_size: usize,
    /// `num_hidden_layers` (default 12).
    pub num_layers: usize,
    /// `num_attention_heads` (default 12).
    pub num_heads: usize,
    /// `intermediate_size` (default 3072).
    pub intermediate_size: usize,
    /// `hidden_act` (default `"gelu"`, exact erf).
    pub activation: Activation,
    /// `layer_norm_eps` (default 1e-12).
    pub layer_norm_eps: f64,
    /// `image_size` as (height, width) (default 224; an int or a pair).
    pub image_size: (usize, usize),
    /// `patch_size` as (height, width) (default 16; an int or a pair).
    pub patch_size: (usize, usize),
    /// `num_channels` (default 3).
    pub num_channels: usize,
    /// `qkv_bias` (default true).
    pub qkv_bias: bool,
    /// Number of labels: length of `id2label`, else `num_labels`, else 2 (HF default).
    pub num_labels: usize,
    /// Extension `norm_placement` (default pre).
    pub norm_placement: NormPlacement,
}

impl VitConfig {
    /// Patches along (rows, columns).
    pub fn grid(&self) -> (usize, usize) {
        (
            self.image_size.0 / self.patch_size.0,
            self.image_size.1 / self.patch_size.1,
        )
    }

    /// Tokens per image: patches + CLS.
    pub fn seq_len(&self) -> usize {
        let (r, c) = self.grid();
        r * c + 1
    }

    /// Values per patch: `C * ph * pw`.
    pub fn patch_dim(&self) -> usize {
        self.num_channels * self.patch_size.0 * self.patch_size.1
    }
}

/// A GPT-2 decoder (`GPT2Config`).
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2Config {
    /// `vocab_size` (default 50257).
    pub vocab_size: usize,
    /// `n_positions` (default 1024): the longest sequence.
    pub n_positions: usize,
    /// `n_embd` (default 768).
    pub n_embd: usize,
    /// `n_layer` (default 12).
    pub n_layer: usize,
    /// `n_head` (default 12).
    pub n_head: usize,
    /// `n_inner`, `null` or missing = 4 * `n_embd`.
    pub n_inner: usize,
    /// `activation_function` (default `"gelu_new"`, tanh).
    pub activation: Activation,
    /// `layer_norm_epsilon` (default 1e-5).
    pub layer_norm_epsilon: f64,
    /// `scale_attn_weights` (default true): divide scores by sqrt(head dim).
    pub scale_attn_weights: bool,
    /// `scale_attn_by_inverse_layer_idx` (default false): also divide by layer index + 1.
    pub scale_attn_by_inverse_layer_idx: bool,
    /// `add_cross_attention` (default false).
    pub add_cross_attention: bool,
    /// `tie_word_embeddings` (default true): LM head = `wte`, not stored.
    pub tie_word_embeddings: bool,
    /// Extension `position_embedding_type` (default learned).
    pub position_embedding: PositionEmbedding,
    /// `bos_token_id` (default 50256; `null` = none).
    pub bos_token_id: Option<usize>,
    /// `eos_token_id` (default 50256; `null` = none; a list = any of them).
    pub eos_token_ids: Vec<usize>,
    /// `pad_token_id` (default none).
    pub pad_token_id: Option<usize>,
    /// `decoder_start_token_id` (default none).
    pub decoder_start_token_id: Option<usize>,
}

/// A `VisionEncoderDecoderModel`: ViT encoder, GPT-2 decoder with cross-attention.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderDecoderConfig {
    /// `encoder` (model_type `vit`).
    pub encoder: VitConfig,
    /// `decoder` (model_type `gpt2`, `add_cross_attention` true).
    pub decoder: Gpt2Config,
    /// Top-level `decoder_start_token_id`, else the decoder's, else its `bos_token_id`.
    pub decoder_start_token_id: usize,
    /// Top-level `eos_token_id`, else the decoder's.
    pub eos_token_ids: Vec<usize>,
    /// Top-level `pad_token_id`, else the decoder's.
    pub pad_token_id: Option<usize>,
}

/// A parsed `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    /// `ViTForImageClassification` (`model_type` `"vit"`).
    Vit(VitConfig),
    /// `GPT2LMHeadModel` (`model_type` `"gpt2"`).
    Gpt2(Gpt2Config),
    /// `VisionEncoderDecoderModel` (`model_type` `"vision-encoder-decoder"`).
    EncoderDecoder(EncoderDecoderConfig),
}

/// Reads and parses `config.json`.
pub fn read_config(path: &Path) -> Result<ModelConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_config(&text)
}

/// Parses the text of a `config.json`.
pub fn parse_config(text: &str) -> Result<ModelConfig> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error::InvalidConfig {
        key: "<root>".into(),
        reason: format!("not valid JSON: {e}"),
    })?;
    let obj = v.as_object().ok_or_else(|| Error::InvalidConfig {
        key: "<root>".into(),
        reason: "not a JSON object".into(),
    })?;
    let c = Cfg { obj, prefix: "" };
    match c.string("model_type", None)?.as_str() {
        "vit" => Ok(ModelConfig::Vit(vit(&c)?)),
        "gpt2" => Ok(ModelConfig::Gpt2(gpt2(&c)?)),
        "vision-encoder-decoder" => Ok(ModelConfig::EncoderDecoder(enc_dec(&c)?)),
        other => Err(Error::UnsupportedConfig {
            key: "model_type".into(),
            value: format!("\"{other}\""),
        }),
    }
}

/// A JSON object with the key path prefix used in error messages.
struct Cfg<'a> {
    obj: &'a Map<String, Value>,
    prefix: &'a str,
}

impl<'a> Cfg<'a> {
    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    fn invalid(&self, k: &str, reason: &str) -> Error {
        Error::InvalidConfig {
            key: self.key(k),
            reason: reason.into(),
        }
    }

    /// Present and not `null`.
    fn get(&self, k: &str) -> Option<&'a Value> {
        self.obj.get(k).filter(|v| !v.is_null())
    }

    fn opt_usize(&self, k: &str) -> Result<Option<usize>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|x| usize::try_from(x).ok())
                .map(Some)
                .ok_or_else(|| {
                    self.invalid(k, &format!("expected a non-negative integer, found {v}"))
                }),
        }
    }

    fn usize(&self, k: &str, default: usize) -> Result<usize> {
        Ok(self.opt_usize(k)?.unwrap_or(default))
    }

    /// Like `usize` but must be at least 1.
    fn positive(&self, k: &str, default: usize) -> Result<usize> {
        let v = self.usize(k, default)?;
        if v == 0 {
            return Err(self.invalid(k, "must be at least 1"));
        }
        Ok(v)
    }

    fn f64(&self, k: &str, default: f64) -> Result<f64> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    self.invalid(k, &format!("expected a non-negative number, found {v}"))
                }),
        }
    }

    fn bool(&self, k: &str, default: bool) -> Result<bool> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.invalid(k, &format!("expected true or false, found {v}"))),
        }
    }

    fn string(&self, k: &str, default: Option<&str>) -> Result<String> {
        match self.get(k) {
            None => default
                .map(str::to_string)
                .ok_or_else(|| self.invalid(k, "missing")),
            Some(v) => v
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| self.invalid(k, &format!("expected a string, found {v}"))),
        }
    }

    /// An int or a `[h, w]` pair.
    fn pair(&self, k: &str, default: usize) -> Result<(usize, usize)> {
        match self.get(k) {
            Some(Value::Array(a)) => {
                let xs: Option<Vec<usize>> = a
                    .iter()
                    .map(|x| x.as_u64().and_then(|x| usize::try_from(x).ok()))
                    .collect();
                match xs.as_deref() {
                    Some(&[h, w]) if h > 0 && w > 0 => Ok((h, w)),
                    _ => Err(self.invalid(k, "expected a positive integer or a pair of them")),
                }
            }
            _ => {
                let v = self.positive(k, default)?;
                Ok((v, v))
            }
        }
    }

    /// An int, a list of ints, or `null`/missing (= `default`).
    fn id_list(&self, k: &str, default: Vec<usize>) -> Result<Vec<usize>> {
        if !self.obj.contains_key(k) {
            return Ok(default);
        }
        match self.get(k) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_u64().and_then(|x| usize::try_from(x).ok()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.invalid(k, "expected token ids")),
            Some(_) => Ok(vec![self.opt_usize(k)?.expect("present")]),
        }
    }

    /// An id that is `null` when explicitly null, `default` when missing.
    fn id(&self, k: &str, default: Option<usize>) -> Result<Option<usize>> {
        if !self.obj.contains_key(k) {
            return Ok(default);
        }
        self.opt_usize(k)
    }

    fn sub(&self, k: &'a str, prefix: &'a str) -> Result<Cfg<'a>> {
        let obj = self
            .get(k)
            .and_then(Value::as_object)
            .ok_or_else(|| self.invalid(k, "missing or not an object"))?;
        Ok(Cfg { obj, prefix })
    }

    fn expect_model_type(&self, want: &str) -> Result<()> {
        let got = self.string("model_type", None)?;
        if got != want {
            return Err(Error::UnsupportedConfig {
                key: self.key("model_type"),
                value: format!("\"{got}\" (expected \"{want}\")"),
            });
        }
        Ok(())
    }

    fn unsupported(&self, k: &str) -> Error {
        Error::UnsupportedConfig {
            key: self.key(k),
            value: self.get(k).map_or("null".into(), Value::to_string),
        }
    }
}

/// Largest element count a config may imply for any tensor or working buffer (2^32): far
/// beyond any model for a microcontroller, and small enough that no size computation of the
/// importer, the f32 reference or the packer can overflow.
pub const MAX_ELEMENTS: u128 = 1 << 32;

/// Largest layer count accepted.
pub const MAX_LAYERS: usize = 1 << 12;

fn check_size(c: &Cfg, key: &str, what: &str, dims: &[u128]) -> Result<()> {
    let p = dims.iter().try_fold(1u128, |a, &d| a.checked_mul(d));
    match p {
        Some(p) if p <= MAX_ELEMENTS => Ok(()),
        _ => Err(c.invalid(key, &format!("too large: {what} exceeds 2^32 elements"))),
    }
}

fn check_layers(c: &Cfg, key: &str, n: usize) -> Result<()> {
    if n > MAX_LAYERS {
        return Err(c.invalid(
            key,
            &format!("{n} exceeds the limit of {MAX_LAYERS} layers"),
        ));
    }
    Ok(())
}

fn vit(c: &Cfg) -> Result<VitConfig> {
    let hidden_size = c.positive("hidden_size", 768)?;
    let num_heads = c.positive("num_attention_heads", 12)?;
    if hidden_size % num_heads != 0 {
        return Err(c.invalid(
            "num_attention_heads",
            &format!("{num_heads} does not divide hidden_size {hidden_size}"),
        ));
    }
    let image_size = c.pair("image_size", 224)?;
    let patch_size = c.pair("patch_size", 16)?;
    if image_size.0 % patch_size.0 != 0 || image_size.1 % patch_size.1 != 0 {
        return Err(c.invalid(
            "patch_size",
            &format!("{patch_size:?} does not divide image_size {image_size:?}"),
        ));
    }
    let num_labels = match c.get("id2label").and_then(Value::as_object) {
        Some(m) => m.len(),
        None => c.usize("num_labels", 2)?,
    };
    let norm_placement = match c.string("norm_placement", Some("pre"))?.as_str() {
        "pre" => NormPlacement::Pre,
        "post" => NormPlacement::Post,
        _ => return Err(c.unsupported("norm_placement")),
    };
    let num_layers = c.positive("num_hidden_layers", 12)?;
    let num_channels = c.positive("num_channels", 3)?;
    let intermediate_size = c.positive("intermediate_size", 3072)?;
    check_layers(c, "num_hidden_layers", num_layers)?;
    let tokens = (image_size.0 / patch_size.0) as u128 * (image_size.1 / patch_size.1) as u128 + 1;
    let h = hidden_size as u128;
    check_size(c, "hidden_size", "hidden_size × hidden_size", &[h, h])?;
    check_size(
        c,
        "intermediate_size",
        "intermediate_size × hidden_size",
        &[intermediate_size as u128, h],
    )?;
    check_size(
        c,
        "image_size",
        "tokens × tokens × hidden_size",
        &[tokens, tokens, h],
    )?;
    check_size(
        c,
        "patch_size",
        "num_channels × patch area × hidden_size",
        &[
            num_channels as u128,
            patch_size.0 as u128,
            patch_size.1 as u128,
            h,
        ],
    )?;
    check_size(
        c,
        "num_labels",
        "num_labels × hidden_size",
        &[num_labels as u128, h],
    )?;
    Ok(VitConfig {
        hidden_size,
        num_layers,
        num_heads,
        intermediate_size,
        activation: Activation::parse(
            &c.key("hidden_act"),
            &c.string("hidden_act", Some("gelu"))?,
        )?,
        layer_norm_eps: c.f64("layer_norm_eps", 1e-12)?,
        image_size,
        patch_size,
        num_channels,
        qkv_bias: c.bool("qkv_bias", true)?,
        num_labels,
        norm_placement,
    })
}

fn gpt2(c: &Cfg) -> Result<Gpt2Config> {
    let n_embd = c.positive("n_embd", 768)?;
    let n_head = c.positive("n_head", 12)?;
    if n_embd % n_head != 0 {
        return Err(c.invalid(
            "n_head",
            &format!("{n_head} does not divide n_embd {n_embd}"),
        ));
    }
    let position_embedding = match c
        .string("position_embedding_type", Some("learned"))?
        .as_str()
    {
        "learned" | "absolute" => PositionEmbedding::Learned,
        "sinusoidal" => PositionEmbedding::Sinusoidal,
        _ => return Err(c.unsupported("position_embedding_type")),
    };
    if position_embedding == PositionEmbedding::Sinusoidal && n_embd % 2 != 0 {
        return Err(c.invalid("n_embd", "must be even for sinusoidal position embeddings"));
    }
    let e = n_embd as u128;
    check_size(c, "n_embd", "n_embd × n_embd × 4", &[e, e, 4])?;
    let n_inner = match c.opt_usize("n_inner")? {
        Some(0) => return Err(c.invalid("n_inner", "must be at least 1")),
        Some(n) => n,
        None => 4 * n_embd,
    };
    let vocab_size = c.positive("vocab_size", 50257)?;
    let n_positions = c.positive("n_positions", 1024)?;
    let n_layer = c.positive("n_layer", 12)?;
    check_layers(c, "n_layer", n_layer)?;
    check_size(c, "n_inner", "n_inner × n_embd", &[n_inner as u128, e])?;
    check_size(
        c,
        "vocab_size",
        "vocab_size × n_embd",
        &[vocab_size as u128, e],
    )?;
    check_size(
        c,
        "n_positions",
        "n_positions × n_positions × n_embd",
        &[n_positions as u128, n_positions as u128, e],
    )?;
    Ok(Gpt2Config {
        vocab_size,
        n_positions,
        n_embd,
        n_layer,
        n_head,
        n_inner,
        activation: Activation::parse(
            &c.key("activation_function"),
            &c.string("activation_function", Some("gelu_new"))?,
        )?,
        layer_norm_epsilon: c.f64("layer_norm_epsilon", 1e-5)?,
        scale_attn_weights: c.bool("scale_attn_weights", true)?,
        scale_attn_by_inverse_layer_idx: c.bool("scale_attn_by_inverse_layer_idx", false)?,
        add_cross_attention: c.bool("add_cross_attention", false)?,
        tie_word_embeddings: c.bool("tie_word_embeddings", true)?,
        position_embedding,
        bos_token_id: c.id("bos_token_id", Some(50256))?,
        eos_token_ids: c.id_list("eos_token_id", vec![50256])?,
        pad_token_id: c.id("pad_token_id", None)?,
        decoder_start_token_id: c.id("decoder_start_token_id", None)?,
    })
}

fn enc_dec(c: &Cfg) -> Result<EncoderDecoderConfig> {
    let e = c.sub("encoder", "encoder.")?;
    e.expect_model_type("vit")?;
    let d = c.sub("decoder", "decoder.")?;
    d.expect_model_type("gpt2")?;
    let encoder = vit(&e)?;
    let decoder = gpt2(&d)?;
    if !decoder.add_cross_attention {
        return Err(Error::UnsupportedConfig {
            key: "decoder.add_cross_attention".into(),
            value: "false (the decoder must have cross-attention)".into(),
        });
    }
    if d.get("cross_attention_hidden_size").is_some() {
        return Err(d.unsupported("cross_attention_hidden_size"));
    }
    let decoder_start_token_id = c
        .id("decoder_start_token_id", None)?
        .or(decoder.decoder_start_token_id)
        .or(decoder.bos_token_id)
        .ok_or_else(|| c.invalid("decoder_start_token_id", "missing (needed for generation)"))?;
    let eos_token_ids = if c.obj.contains_key("eos_token_id") {
        c.id_list("eos_token_id", Vec::new())?
    } else {
        decoder.eos_token_ids.clone()
    };
    let pad_token_id = c.id("pad_token_id", None)?.or(decoder.pad_token_id);
    Ok(EncoderDecoderConfig {
        encoder,
        decoder,
        decoder_start_token_id,
        eos_token_ids,
        pad_token_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply() {
        let ModelConfig::Gpt2(g) =
            parse_config(r#"{"model_type": "gpt2", "n_inner": null}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!((g.n_embd, g.n_inner, g.vocab_size), (768, 3072, 50257));
        assert_eq!(g.eos_token_ids, vec![50256]);
        assert!(g.tie_word_embeddings);
        assert_eq!(g.activation, Activation::GeluTanh);
        let ModelConfig::Vit(v) = parse_config(r#"{"model_type": "vit"}"#).unwrap() else {
            panic!()
        };
        assert_eq!(
            (v.image_size, v.patch_size, v.num_labels),
            ((224, 224), (16, 16), 2)
        );
        assert_eq!(v.activation, Activation::GeluErf);
        assert_eq!(v.layer_norm_eps, 1e-12);
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse_config(r#"{"model_type": "gpt2", "activation_function": "swish"}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config.json: unsupported value for `activation_function`: \"swish\""
        );
        let e = parse_config(r#"{"model_type": "bert"}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config.json: unsupported value for `model_type`: \"bert\""
        );
        let e = parse_config(r#"{"model_type": "vit", "hidden_size": "x"}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config.json: invalid `hidden_size`: expected a non-negative integer, found \"x\""
        );
        let e = parse_config(r#"{"model_type": "vit", "norm_placement": "middle"}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config.json: unsupported value for `norm_placement`: \"middle\""
        );
    }
}
