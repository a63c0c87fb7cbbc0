//! The f32 reference forward passes: what quantization error and accuracy are measured against.
//!
//! - [`vit`]: ViT encoder and classifier (logits, per-layer hidden states, attention maps).
//! - [`gpt2`]: GPT-2 decoder (teacher-forced logits, greedy generation).
//! - [`encdec`]: ViT encoder + GPT-2 decoder with cross-attention.
//! - [`ops`]: the shared matmul / LayerNorm / softmax / attention helpers.
//!
//! Every function works on one sequence (one image, one row of token ids) at a time.

pub mod encdec;
pub mod gpt2;
pub mod ops;
pub mod vit;

use crate::error::Result;

/// Greedy decoding with Hugging Face's batch rule, shared by the decoder-only and
/// encoder-decoder paths.
///
/// Every row starts from its prompt. Each step appends, to every unfinished row, the argmax of
/// `next_logits(row, sequence)` (logits of the next token, recomputed from the whole sequence:
/// no KV cache, so each step is exactly a teacher-forced pass). A row finishes when it emits
/// one of `eos`; from then on it is padded with `pad` (HF's default: the first eos id when no
/// pad id is set). Stops after `max_new_tokens` steps or once every row has finished, so all
/// rows come back with the same length.
pub fn greedy_batch<F>(
    prompts: Vec<Vec<usize>>,
    max_new_tokens: usize,
    eos: &[usize],
    pad: Option<usize>,
    mut next_logits: F,
) -> Result<Vec<Vec<usize>>>
where
    F: FnMut(usize, &[usize]) -> Result<Vec<f32>>,
{
    let pad = pad.or(eos.first().copied()).unwrap_or(0);
    let mut seqs = prompts;
    let mut done = vec![false; seqs.len()];
    for _ in 0..max_new_tokens {
        if done.iter().all(|&d| d) {
            break;
        }
        for (r, seq) in seqs.iter_mut().enumerate() {
            if done[r] {
                seq.push(pad);
                continue;
            }
            let logits = next_logits(r, seq)?;
            let next = ops::argmax(&logits);
            seq.push(next);
            if eos.contains(&next) {
                done[r] = true;
            }
        }
    }
    Ok(seqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_pads_after_eos_and_stops_when_all_done() {
        // Row 0 emits 2 (eos) at its second step; row 1 at its third.
        let out = greedy_batch(vec![vec![0], vec![0]], 10, &[2], Some(1), |r, s| {
            let next = if s.len() == 2 + r { 2 } else { 5 };
            let mut l = vec![0.0; 6];
            l[next] = 1.0;
            Ok(l)
        })
        .unwrap();
        assert_eq!(out, vec![vec![0, 5, 2, 1], vec![0, 5, 5, 2]]);
    }
}
