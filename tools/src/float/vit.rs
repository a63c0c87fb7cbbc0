//! ViT encoder and classifier in f32.

use crate::checkpoint::config::NormPlacement;
use crate::error::{Error, Result};
use crate::float::ops;
use crate::model::{EncoderLayer, Mat, VitEncoder, VitModel};

/// What an encoder pass returns.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderOutput {
    /// Output after the final LayerNorm (for post-norm encoders: the last layer's output),
    /// `[T, D]`. HF: `last_hidden_state`.
    pub last_hidden: Mat,
    /// HF `output_hidden_states` order: `[0]` embeddings, `[i+1]` output of layer `i`
    /// (the last one before the final LayerNorm). Each `[T, D]`.
    pub hidden_states: Vec<Mat>,
    /// Attention probabilities `[heads, T, T]` of the layer asked for, if any.
    pub attentions: Option<Vec<f32>>,
}

/// Patch + CLS + position embeddings of one image `[C, H, W]` (channel-major), `[T, D]`.
pub fn embed(enc: &VitEncoder, image: &[f32]) -> Result<Mat> {
    let cfg = &enc.config;
    let (h, w) = cfg.image_size;
    let (ph, pw) = cfg.patch_size;
    let c = cfg.num_channels;
    if image.len() != c * h * w {
        return Err(Error::Input(format!(
            "image has {} values, model expects {c}x{h}x{w} = {}",
            image.len(),
            c * h * w
        )));
    }
    let (gr, gc) = cfg.grid();
    let mut patches = Mat::zeros(gr * gc, c * ph * pw);
    for pr in 0..gr {
        for pc in 0..gc {
            let row = patches.row_mut(pr * gc + pc);
            let mut k = 0;
            for ch in 0..c {
                for i in 0..ph {
                    let src = (ch * h + pr * ph + i) * w + pc * pw;
                    row[k..k + pw].copy_from_slice(&image[src..src + pw]);
                    k += pw;
                }
            }
        }
    }
    let proj = ops::linear(&patches, &enc.patch);
    let d = cfg.hidden_size;
    let mut x = Mat::zeros(gr * gc + 1, d);
    x.row_mut(0).copy_from_slice(&enc.cls);
    x.data[d..].copy_from_slice(&proj.data);
    ops::add_assign(&mut x, &enc.pos);
    Ok(x)
}

/// One encoder layer; returns the new hidden state and, if asked, the attention probabilities.
pub fn layer_forward(
    layer: &EncoderLayer,
    x: &Mat,
    enc: &VitEncoder,
    want_probs: bool,
) -> (Mat, Option<Vec<f32>>) {
    let cfg = &enc.config;
    let heads = cfg.num_heads;
    let scale = 1.0 / ((cfg.hidden_size / heads) as f64).sqrt();
    let attn = |a: &Mat| {
        let q = ops::linear(a, &layer.query);
        let k = ops::linear(a, &layer.key);
        let v = ops::linear(a, &layer.value);
        let (ctx, p) = ops::attention(&q, &k, &v, heads, scale, false, want_probs);
        (ops::linear(&ctx, &layer.attn_out), p)
    };
    let mlp = |a: &Mat| {
        let mut hdn = ops::linear(a, &layer.fc1);
        ops::activate(&mut hdn, cfg.activation);
        ops::linear(&hdn, &layer.fc2)
    };
    match cfg.norm_placement {
        NormPlacement::Pre => {
            let mut h = x.clone();
            let (a, p) = attn(&ops::layer_norm(&h, &layer.ln1));
            ops::add_assign(&mut h, &a);
            let m = mlp(&ops::layer_norm(&h, &layer.ln2));
            ops::add_assign(&mut h, &m);
            (h, p)
        }
        NormPlacement::Post => {
            let (mut a, p) = attn(x);
            ops::add_assign(&mut a, x);
            let h = ops::layer_norm(&a, &layer.ln1);
            let mut m = mlp(&h);
            ops::add_assign(&mut m, &h);
            (ops::layer_norm(&m, &layer.ln2), p)
        }
    }
}

/// Runs the encoder on one image `[C, H, W]`; `attention_layer` selects the layer whose
/// attention probabilities are returned.
pub fn encode(
    enc: &VitEncoder,
    image: &[f32],
    attention_layer: Option<usize>,
) -> Result<EncoderOutput> {
    if let Some(l) = attention_layer.filter(|&l| l >= enc.layers.len()) {
        return Err(Error::Input(format!(
            "attention layer {l} out of range (model has {} layers)",
            enc.layers.len()
        )));
    }
    let mut x = embed(enc, image)?;
    let mut hidden_states = vec![x.clone()];
    let mut attentions = None;
    for (i, layer) in enc.layers.iter().enumerate() {
        let want = attention_layer == Some(i);
        let (h, p) = layer_forward(layer, &x, enc, want);
        if want {
            attentions = p;
        }
        hidden_states.push(h.clone());
        x = h;
    }
    let last_hidden = match &enc.final_ln {
        Some(ln) => ops::layer_norm(&x, ln),
        None => x,
    };
    Ok(EncoderOutput {
        last_hidden,
        hidden_states,
        attentions,
    })
}

/// Classifier logits `[num_labels]` of one image, with the encoder trace.
pub fn classify_traced(
    model: &VitModel,
    image: &[f32],
    attention_layer: Option<usize>,
) -> Result<(Vec<f32>, EncoderOutput)> {
    let out = encode(&model.encoder, image, attention_layer)?;
    let d = model.encoder.config.hidden_size;
    let cls = Mat::from_vec(1, d, out.last_hidden.row(0).to_vec());
    Ok((ops::linear(&cls, &model.classifier).data, out))
}

/// Classifier logits `[num_labels]` of one image `[C, H, W]`.
pub fn classify(model: &VitModel, image: &[f32]) -> Result<Vec<f32>> {
    Ok(classify_traced(model, image, None)?.0)
}
