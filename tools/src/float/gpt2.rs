//! GPT-2 decoder in f32 (optionally with cross-attention over an encoder output).

use crate::checkpoint::config::Gpt2Config;
use crate::error::{Error, Result};
use crate::float::ops;
use crate::model::{Gpt2Model, Mat};

/// What a decoder pass returns.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderOutput {
    /// `[T, vocab]`; row `t` predicts token `t + 1`.
    pub logits: Mat,
    /// HF `output_hidden_states` order: `[0]` token + position embeddings, `[i+1]` output of
    /// block `i`, except that the last entry is taken **after** `ln_f` (as HF's GPT-2 does).
    pub hidden_states: Vec<Mat>,
    /// Output of the last block **before** `ln_f` (`[T, D]`): what `hidden_states` replaces by
    /// the `ln_f` output, kept for per-layer comparisons.
    pub last_block: Mat,
}

fn attn_scale(cfg: &Gpt2Config, layer: usize) -> f64 {
    let mut s = 1.0;
    if cfg.scale_attn_weights {
        s /= ((cfg.n_embd / cfg.n_head) as f64).sqrt();
    }
    if cfg.scale_attn_by_inverse_layer_idx {
        s /= (layer + 1) as f64;
    }
    s
}

/// Splits the columns of `x` into `n` equal consecutive parts.
fn split_cols(x: &Mat, n: usize) -> Vec<Mat> {
    let w = x.cols / n;
    (0..n)
        .map(|p| {
            let mut m = Mat::zeros(x.rows, w);
            for r in 0..x.rows {
                m.row_mut(r).copy_from_slice(&x.row(r)[p * w..(p + 1) * w]);
            }
            m
        })
        .collect()
}

/// Teacher-forced pass over `ids` (causal). `memory` is the encoder output `[S, D]` every
/// cross-attention reads; required iff the model has cross-attention.
pub fn forward(model: &Gpt2Model, ids: &[usize], memory: Option<&Mat>) -> Result<DecoderOutput> {
    let cfg = &model.config;
    let (d, t) = (cfg.n_embd, ids.len());
    if t == 0 {
        return Err(Error::Input("empty token sequence".into()));
    }
    if t > cfg.n_positions {
        return Err(Error::Input(format!(
            "sequence of {t} tokens exceeds n_positions {}",
            cfg.n_positions
        )));
    }
    if let Some(&bad) = ids.iter().find(|&&i| i >= cfg.vocab_size) {
        return Err(Error::Input(format!(
            "token id {bad} out of range (vocab_size {})",
            cfg.vocab_size
        )));
    }
    let has_cross = model.blocks.iter().any(|b| b.cross.is_some());
    match (has_cross, memory) {
        (true, None) => {
            return Err(Error::Input(
                "decoder has cross-attention but no encoder output was given".into(),
            ))
        }
        (false, Some(_)) => {
            return Err(Error::Input(
                "decoder has no cross-attention but an encoder output was given".into(),
            ))
        }
        (_, Some(m)) if m.cols != d => {
            return Err(Error::Input(format!(
                "encoder output width {} differs from decoder width {d}",
                m.cols
            )))
        }
        _ => {}
    }

    let mut h = Mat::zeros(t, d);
    for (p, &id) in ids.iter().enumerate() {
        let row = h.row_mut(p);
        for ((o, &e), &q) in row
            .iter_mut()
            .zip(model.wte.row(id))
            .zip(model.positions.row(p))
        {
            *o = e + q;
        }
    }
    let mut hidden_states = vec![h.clone()];
    for (li, b) in model.blocks.iter().enumerate() {
        let scale = attn_scale(cfg, li);
        let qkv = ops::linear(&ops::layer_norm(&h, &b.ln_1), &b.c_attn);
        let parts = split_cols(&qkv, 3);
        let (ctx, _) = ops::attention(
            &parts[0], &parts[1], &parts[2], cfg.n_head, scale, true, false,
        );
        ops::add_assign(&mut h, &ops::linear(&ctx, &b.c_proj));
        if let (Some(x), Some(mem)) = (&b.cross, memory) {
            let q = ops::linear(&ops::layer_norm(&h, &x.ln), &x.q);
            let kv = split_cols(&ops::linear(mem, &x.kv), 2);
            let (ctx, _) = ops::attention(&q, &kv[0], &kv[1], cfg.n_head, scale, false, false);
            ops::add_assign(&mut h, &ops::linear(&ctx, &x.proj));
        }
        let mut m = ops::linear(&ops::layer_norm(&h, &b.ln_2), &b.fc);
        ops::activate(&mut m, cfg.activation);
        ops::add_assign(&mut h, &ops::linear(&m, &b.proj));
        hidden_states.push(h.clone());
    }
    let hf = ops::layer_norm(&h, &model.ln_f);
    *hidden_states.last_mut().expect("at least the embeddings") = hf.clone();
    let last_block = h;
    let logits = ops::matmul_t(&hf, model.lm_head.as_ref().unwrap_or(&model.wte));
    Ok(DecoderOutput {
        logits,
        hidden_states,
        last_block,
    })
}

/// Logits `[T, vocab]` of a teacher-forced pass.
pub fn logits(model: &Gpt2Model, ids: &[usize]) -> Result<Mat> {
    Ok(forward(model, ids, None)?.logits)
}

/// Greedy continuation of each prompt by `max_new_tokens` (prompts must have equal length).
/// Stops rows at the config's `eos_token_id` and pads them with `pad_token_id` (HF rule, see
/// [`crate::float::greedy_batch`]); with no eos id (as in the fixture) it never stops early.
pub fn generate(
    model: &Gpt2Model,
    prompts: Vec<Vec<usize>>,
    max_new_tokens: usize,
) -> Result<Vec<Vec<usize>>> {
    let cfg = &model.config;
    check_room(
        prompts.iter().map(Vec::len).max().unwrap_or(0),
        max_new_tokens,
        cfg.n_positions,
    )?;
    super::greedy_batch(
        prompts,
        max_new_tokens,
        &cfg.eos_token_ids,
        cfg.pad_token_id,
        |_, seq| {
            let l = forward(model, seq, None)?.logits;
            Ok(l.row(l.rows - 1).to_vec())
        },
    )
}

/// Checks up front that `prompt_len + max_new - 1` positions fit (the last token is never fed).
pub fn check_room(prompt_len: usize, max_new: usize, n_positions: usize) -> Result<()> {
    if prompt_len == 0 {
        return Err(Error::Input("empty prompt".into()));
    }
    let need = prompt_len + max_new.saturating_sub(1);
    if need > n_positions {
        return Err(Error::Input(format!(
            "prompt of {prompt_len} tokens + {max_new} new tokens needs {need} positions, model has n_positions {n_positions}"
        )));
    }
    Ok(())
}
