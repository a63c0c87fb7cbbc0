//! Hugging Face `LlamaForCausalLM` checkpoints: `config.json` + `model.safetensors`.
//!
//! Config keys and the defaults `transformers`' `LlamaConfig` applies when a key is missing
//! (`save_pretrained` omits keys that have their default value): `hidden_size` 4096,
//! `intermediate_size` 11008, `num_hidden_layers` 32, `num_attention_heads` 32,
//! `num_key_value_heads` = `num_attention_heads`, `head_dim` = `hidden_size /
//! num_attention_heads`, `vocab_size` 32000, `max_position_embeddings` 2048, `rms_norm_eps`
//! 1e-6, `rope_theta` 10000 (or `rope_parameters.rope_theta` with `rope_type` `"default"`),
//! `tie_word_embeddings` false, `hidden_act` `"silu"`, `bos_token_id` 1, `eos_token_id` 2.
//!
//! Refused with a message naming the key: `hidden_act` other than `silu`, `rope_scaling` set,
//! `attention_bias` or `mlp_bias` true, a `num_key_value_heads` that does not divide
//! `num_attention_heads`, an odd `head_dim`. Ignored (no effect at inference): dropout,
//! `initializer_range`, `pretraining_tp` (a training-time split of the same matmuls),
//! `use_cache`.
//!
//! Tensors (`nn.Linear`, `[out, in]`): `model.embed_tokens.weight`, per layer
//! `model.layers.{i}.self_attn.{q,k,v,o}_proj.weight`, `mlp.{gate,up,down}_proj.weight`,
//! `input_layernorm.weight`, `post_attention_layernorm.weight`; `model.norm.weight`;
//! `lm_head.weight` unless tied (a tied checkpoint that stores it anyway has it ignored). Old
//! checkpoints' `self_attn.rotary_emb.inv_freq` buffers are ignored; any other tensor is an error.

use std::path::Path;

use serde_json::{Map, Value};

use super::{first_non_finite, linear, LlamaConfig, LlamaLayer, LlamaModel, RopeStyle, StopRule};
use crate::checkpoint::config::{MAX_ELEMENTS, MAX_LAYERS};
use crate::checkpoint::{read_safetensors, TensorMap, CONFIG_FILE, WEIGHTS_FILE};
use crate::error::{Error, Result};
use crate::model::Mat;

/// Loads `dir/config.json` and `dir/model.safetensors`.
pub fn load(dir: &Path) -> Result<LlamaModel> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let config = parse_config(&text)?;
    let tensors = read_safetensors(&dir.join(WEIGHTS_FILE))?;
    from_tensors(config, tensors)
}

/// Parses a Llama `config.json`.
pub fn parse_config(text: &str) -> Result<LlamaConfig> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error::InvalidConfig {
        key: "<root>".into(),
        reason: format!("not valid JSON: {e}"),
    })?;
    let obj = v.as_object().ok_or_else(|| Error::InvalidConfig {
        key: "<root>".into(),
        reason: "not a JSON object".into(),
    })?;
    let c = Cfg(obj);
    let model_type = c.string("model_type", "")?;
    if model_type != "llama" {
        return Err(Error::UnsupportedConfig {
            key: "model_type".into(),
            value: format!("\"{model_type}\" (expected \"llama\")"),
        });
    }
    let act = c.string("hidden_act", "silu")?;
    if act != "silu" {
        return Err(Error::UnsupportedConfig {
            key: "hidden_act".into(),
            value: format!("\"{act}\" (only \"silu\" is supported)"),
        });
    }
    for key in ["attention_bias", "mlp_bias"] {
        if c.bool(key, false)? {
            return Err(Error::UnsupportedConfig {
                key: key.into(),
                value: "true (only bias-free Llama layers are supported)".into(),
            });
        }
    }
    if let Some(v) = c.get("rope_scaling") {
        return Err(Error::UnsupportedConfig {
            key: "rope_scaling".into(),
            value: format!("{v} (only unscaled rotary embeddings are supported)"),
        });
    }
    let mut rope_theta = c.f64("rope_theta", 10_000.0)?;
    if let Some(p) = c.get("rope_parameters") {
        let p = p.as_object().ok_or_else(|| Error::InvalidConfig {
            key: "rope_parameters".into(),
            reason: format!("expected an object, found {p}"),
        })?;
        let rope_type = p
            .get("rope_type")
            .and_then(Value::as_str)
            .unwrap_or("default");
        if rope_type != "default" {
            return Err(Error::UnsupportedConfig {
                key: "rope_parameters.rope_type".into(),
                value: format!("\"{rope_type}\" (only \"default\" is supported)"),
            });
        }
        if let Some(t) = p.get("rope_theta") {
            rope_theta = Cfg(p)
                .f64("rope_theta", 10_000.0)
                .map_err(|_| Error::InvalidConfig {
                    key: "rope_parameters.rope_theta".into(),
                    reason: format!("expected a positive number, found {t}"),
                })?;
        }
    }

    let dim = c.positive("hidden_size", 4096)?;
    let hidden_dim = c.positive("intermediate_size", 11008)?;
    let n_layers = c.positive("num_hidden_layers", 32)?;
    let n_heads = c.positive("num_attention_heads", 32)?;
    let n_kv_heads = c.positive("num_key_value_heads", n_heads)?;
    let vocab_size = c.positive("vocab_size", 32000)?;
    let seq_len = c.positive("max_position_embeddings", 2048)?;
    if n_layers > MAX_LAYERS {
        return Err(c.invalid(
            "num_hidden_layers",
            &format!("{n_layers} exceeds the limit of {MAX_LAYERS} layers"),
        ));
    }
    if n_heads % n_kv_heads != 0 {
        return Err(c.invalid(
            "num_key_value_heads",
            &format!("{n_kv_heads} does not divide num_attention_heads {n_heads}"),
        ));
    }
    let head_dim = match c.get("head_dim") {
        Some(_) => c.positive("head_dim", 1)?,
        None => {
            if dim % n_heads != 0 {
                return Err(c.invalid(
                    "hidden_size",
                    &format!("{dim} is not a multiple of num_attention_heads {n_heads} (and no head_dim is given)"),
                ));
            }
            dim / n_heads
        }
    };
    if head_dim % 2 != 0 {
        return Err(c.invalid(
            "head_dim",
            &format!("{head_dim} is odd (rotary embedding rotates pairs)"),
        ));
    }
    for (key, dims) in [
        ("vocab_size", [vocab_size as u128, dim as u128]),
        ("intermediate_size", [hidden_dim as u128, dim as u128]),
        ("head_dim", [(n_heads * head_dim) as u128, dim as u128]),
        ("max_position_embeddings", [seq_len as u128, dim as u128]),
    ] {
        if dims[0] * dims[1] > MAX_ELEMENTS {
            return Err(c.invalid(key, "too large: a tensor exceeds 2^32 elements"));
        }
    }
    let norm_eps = c.f64("rms_norm_eps", 1e-6)?;
    let tie = c.bool("tie_word_embeddings", false)?;
    let bos_token_id = c.id_list("bos_token_id", vec![1])?.first().copied();
    let eos = c.id_list("eos_token_id", vec![2])?;
    let cfg = LlamaConfig {
        dim,
        hidden_dim,
        n_layers,
        n_heads,
        n_kv_heads,
        head_dim,
        vocab_size,
        seq_len,
        norm_eps,
        rope_theta,
        rope: RopeStyle::HalfSplit,
        bos_token_id,
        stop: StopRule::After(eos),
        tie_word_embeddings: tie,
    };
    Ok(cfg)
}

/// Builds the model from its tensors, checking every name, shape and value.
pub fn from_tensors(config: LlamaConfig, mut tensors: TensorMap) -> Result<LlamaModel> {
    let tied = config.tie_word_embeddings;
    let (d, hd, q, kv, v) = (
        config.dim,
        config.hidden_dim,
        config.q_dim(),
        config.kv_dim(),
        config.vocab_size,
    );
    let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let t = tensors
            .remove(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        if t.shape != shape {
            return Err(Error::ShapeMismatch {
                tensor: name.to_string(),
                expected: shape.to_vec(),
                found: t.shape,
            });
        }
        if let Some((index, value)) = first_non_finite(&t.data) {
            return Err(Error::NonFinite {
                tensor: name.to_string(),
                value,
                index,
            });
        }
        Ok(t.data)
    };
    let embed = take("model.embed_tokens.weight", &[v, d])?;
    let mut layers = Vec::with_capacity(config.n_layers);
    for i in 0..config.n_layers {
        let p = format!("model.layers.{i}.");
        let mut lin = |name: &str, out_dim: usize, in_dim: usize| -> Result<_> {
            Ok(linear(
                take(&format!("{p}{name}.weight"), &[out_dim, in_dim])?,
                out_dim,
                in_dim,
            ))
        };
        let wq = lin("self_attn.q_proj", q, d)?;
        let wk = lin("self_attn.k_proj", kv, d)?;
        let wv = lin("self_attn.v_proj", kv, d)?;
        let wo = lin("self_attn.o_proj", d, q)?;
        let w1 = lin("mlp.gate_proj", hd, d)?;
        let w3 = lin("mlp.up_proj", hd, d)?;
        let w2 = lin("mlp.down_proj", d, hd)?;
        layers.push(LlamaLayer {
            rms_att: take(&format!("{p}input_layernorm.weight"), &[d])?,
            wq,
            wk,
            wv,
            wo,
            rms_ffn: take(&format!("{p}post_attention_layernorm.weight"), &[d])?,
            w1,
            w2,
            w3,
        });
    }
    let rms_final = take("model.norm.weight", &[d])?;
    let classifier = if tied {
        None
    } else {
        Some(Mat::from_vec(v, d, take("lm_head.weight", &[v, d])?))
    };
    for name in tensors.keys() {
        let ignorable = (tied && name == "lm_head.weight")
            || (name.starts_with("model.layers.")
                && name.ends_with(".self_attn.rotary_emb.inv_freq"));
        if !ignorable {
            let layer_index = name
                .strip_prefix("model.layers.")
                .and_then(|r| r.split('.').next())
                .and_then(|i| i.parse::<usize>().ok());
            return Err(match layer_index {
                Some(i) if i >= config.n_layers => Error::ConfigMismatch(format!(
                    "tensor `{name}` belongs to layer {i} but num_hidden_layers is {}",
                    config.n_layers
                )),
                _ => Error::UnexpectedTensor(name.clone()),
            });
        }
    }
    Ok(LlamaModel {
        config,
        embed: Mat::from_vec(v, d, embed),
        layers,
        rms_final,
        classifier,
    })
}

/// The JSON object of a config, with typed getters that name the key in their errors.
struct Cfg<'a>(&'a Map<String, Value>);

impl<'a> Cfg<'a> {
    fn invalid(&self, k: &str, reason: &str) -> Error {
        Error::InvalidConfig {
            key: k.into(),
            reason: reason.into(),
        }
    }

    /// Present and not `null`.
    fn get(&self, k: &str) -> Option<&'a Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    fn positive(&self, k: &str, default: usize) -> Result<usize> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|x| usize::try_from(x).ok())
                .filter(|&x| x >= 1 && (x as u128) <= MAX_ELEMENTS)
                .ok_or_else(|| self.invalid(k, &format!("expected a positive integer, found {v}"))),
        }
    }

    fn f64(&self, k: &str, default: f64) -> Result<f64> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| self.invalid(k, &format!("expected a positive number, found {v}"))),
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

    fn string(&self, k: &str, default: &str) -> Result<String> {
        match self.get(k) {
            None => Ok(default.to_string()),
            Some(v) => v
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| self.invalid(k, &format!("expected a string, found {v}"))),
        }
    }

    /// An id, a list of ids, `null` (none) or missing (`default`).
    fn id_list(&self, k: &str, default: Vec<usize>) -> Result<Vec<usize>> {
        if !self.0.contains_key(k) {
            return Ok(default);
        }
        let bad = |v: &Value| {
            self.invalid(
                k,
                &format!("expected a token id or a list of them, found {v}"),
            )
        };
        let id = |v: &Value| {
            v.as_u64()
                .and_then(|x| usize::try_from(x).ok())
                .ok_or_else(|| bad(v))
        };
        match self.get(k) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a.iter().map(id).collect(),
            Some(v) => Ok(vec![id(v)?]),
        }
    }
}
