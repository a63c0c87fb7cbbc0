//! Vision encoder-decoder (ViT encoder, GPT-2 decoder with cross-attention) in f32.

use crate::error::Result;
use crate::float::{gpt2, ops, vit};
use crate::model::{EncoderDecoderModel, Mat};

/// Encoder output of one image `[C, H, W]`: `[T, D_enc]`, after the encoder's final LayerNorm
/// (HF `encoder_hidden_states` / `encoder_last_hidden_state`).
pub fn encode(model: &EncoderDecoderModel, image: &[f32]) -> Result<Mat> {
    Ok(vit::encode(&model.encoder, image, None)?.last_hidden)
}

/// What cross-attention reads: the encoder output, through `enc_to_dec_proj` if present.
pub fn memory(model: &EncoderDecoderModel, encoder_out: &Mat) -> Mat {
    match &model.enc_to_dec {
        Some(p) => ops::linear(encoder_out, p),
        None => encoder_out.clone(),
    }
}

/// Teacher-forced decoder logits `[T, vocab]` for `decoder_ids` given an encoder output.
pub fn logits(
    model: &EncoderDecoderModel,
    encoder_out: &Mat,
    decoder_ids: &[usize],
) -> Result<Mat> {
    let mem = memory(model, encoder_out);
    Ok(gpt2::forward(&model.decoder, decoder_ids, Some(&mem))?.logits)
}

/// Greedy decoding for a batch of images with HF's rule: every row starts with
/// `decoder_start_token_id`, a row that emits eos is padded with `pad_token_id` from then on,
/// and decoding stops after `max_new_tokens` or when every row has emitted eos.
/// Returns the sequences including the start id.
pub fn generate(
    model: &EncoderDecoderModel,
    images: &[&[f32]],
    max_new_tokens: usize,
) -> Result<Vec<Vec<usize>>> {
    let cfg = &model.config;
    gpt2::check_room(1, max_new_tokens, cfg.decoder.n_positions)?;
    let memories = images
        .iter()
        .map(|img| Ok(memory(model, &encode(model, img)?)))
        .collect::<Result<Vec<Mat>>>()?;
    let prompts = vec![vec![cfg.decoder_start_token_id]; images.len()];
    super::greedy_batch(
        prompts,
        max_new_tokens,
        &cfg.eos_token_ids,
        cfg.pad_token_id,
        |r, seq| {
            let l = gpt2::forward(&model.decoder, seq, Some(&memories[r]))?.logits;
            Ok(l.row(l.rows - 1).to_vec())
        },
    )
}
