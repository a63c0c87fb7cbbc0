//! f64 reference of whole models (ViT classifier / encoder, decoder LM, encoder–decoder) built
//! from the block references, with observer hooks for calibration.
//!
//! Observation points (besides the blocks' own, prefixed `enc{i}.` / `dec{i}.`):
//! `input` (image pixels), `embed` (class token and patch projections), `x0` (after positions),
//! `enc_final` (encoder final LayerNorm), `dec_x0`, `dec_final`, `logits`.

use super::block::{DecoderBlockF, EncoderBlockF, LayerNormF, LinearF, Observer};
use std::format;
use std::vec::Vec;

/// Float ViT encoder, optionally with a classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct VitF {
    /// Image channels C.
    pub channels: usize,
    /// Image height H.
    pub height: usize,
    /// Image width W.
    pub width: usize,
    /// Patch side P.
    pub patch: usize,
    /// Patch projection `[D][C·P·P]` (the Conv2d kernel flattened).
    pub projection: LinearF,
    /// Class token `[D]`.
    pub class_token: Vec<f32>,
    /// Learned positions `[T][D]`.
    pub positions: Vec<f32>,
    /// Encoder blocks.
    pub blocks: Vec<EncoderBlockF>,
    /// Final LayerNorm.
    pub final_norm: LayerNormF,
    /// Classifier on the class token.
    pub classifier: Option<LinearF>,
}

/// Float decoder (GPT-2 layout).
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderF {
    /// Model width D.
    pub width: usize,
    /// Token embedding `[V][D]`.
    pub embedding: Vec<f32>,
    /// Positions `[P][D]`.
    pub positions: Vec<f32>,
    /// The positions are the sinusoidal table (packed with the fixed-point table, scale 1/127).
    pub sinusoidal: bool,
    /// Blocks.
    pub blocks: Vec<DecoderBlockF>,
    /// Final LayerNorm.
    pub final_norm: LayerNormF,
    /// Untied LM head `[V][D]` (no bias); `None` = tied to `embedding`.
    pub head: Option<Vec<f32>>,
    /// Start token.
    pub start_token: Option<u32>,
    /// End-of-sequence token.
    pub eos_token: Option<u32>,
    /// Pad token.
    pub pad_token: Option<u32>,
}

impl DecoderF {
    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.embedding.len() / self.width
    }

    /// Rows of the position table.
    pub fn max_positions(&self) -> usize {
        self.positions.len() / self.width
    }
}

/// A whole float model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelF {
    /// Encoder.
    pub encoder: Option<VitF>,
    /// Decoder.
    pub decoder: Option<DecoderF>,
}

impl VitF {
    /// Model width.
    pub fn dim(&self) -> usize {
        self.projection.out_features()
    }

    /// Tokens per image.
    pub fn tokens(&self) -> usize {
        (self.height / self.patch) * (self.width / self.patch) + 1
    }

    /// Encoder output after the final LayerNorm, `[T][D]`, for an image `[C][H][W]`.
    pub fn encode(&self, image: &[f64], obs: &mut dyn Observer) -> Vec<f64> {
        obs.observe("input", image);
        let p = self.patch;
        let (gh, gw) = (self.height / p, self.width / p);
        let mut patches = Vec::with_capacity(gh * gw * self.channels * p * p);
        for py in 0..gh {
            for px in 0..gw {
                for c in 0..self.channels {
                    for ky in 0..p {
                        let s = (c * self.height + py * p + ky) * self.width + px * p;
                        patches.extend_from_slice(&image[s..s + p]);
                    }
                }
            }
        }
        let proj = self.projection.forward(&patches);
        let mut x: Vec<f64> = self.class_token.iter().map(|&v| v as f64).collect();
        x.extend_from_slice(&proj);
        obs.observe("embed", &x);
        for (v, &q) in x.iter_mut().zip(&self.positions) {
            *v += q as f64;
        }
        obs.observe("x0", &x);
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.forward(&x, &format!("enc{i}."), obs);
        }
        let y = self.final_norm.forward(&x);
        obs.observe("enc_final", &y);
        y
    }

    /// Classifier logits for an image.
    pub fn classify(&self, image: &[f64], obs: &mut dyn Observer) -> Vec<f64> {
        let y = self.encode(image, obs);
        let logits = match &self.classifier {
            Some(c) => c.forward(&y[..self.dim()]),
            None => Vec::new(),
        };
        obs.observe("logits", &logits);
        logits
    }
}

impl DecoderF {
    /// Teacher-forced logits `[T][V]` of `ids` (causal), attending `encoder` (`[S][D_enc]`)
    /// when the blocks have cross-attention.
    pub fn forward(
        &self,
        ids: &[u32],
        encoder: Option<&[f64]>,
        obs: &mut dyn Observer,
    ) -> Vec<f64> {
        let d = self.width;
        let mut x = Vec::with_capacity(ids.len() * d);
        for (t, &id) in ids.iter().enumerate() {
            let e = &self.embedding[id as usize * d..][..d];
            let p = &self.positions[t * d..][..d];
            x.extend(e.iter().zip(p).map(|(&a, &b)| a as f64 + b as f64));
        }
        obs.observe("dec_x0", &x);
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.forward(&x, encoder, &format!("dec{i}."), obs);
        }
        let y = self.final_norm.forward(&x);
        obs.observe("dec_final", &y);
        let head = self.head.as_ref().unwrap_or(&self.embedding);
        let v = self.vocab();
        let mut logits = Vec::with_capacity(ids.len() * v);
        for row in y.chunks_exact(d) {
            for o in 0..v {
                let w = &head[o * d..][..d];
                logits.push(row.iter().zip(w).map(|(&a, &b)| a * b as f64).sum());
            }
        }
        obs.observe("logits", &logits);
        logits
    }
}
