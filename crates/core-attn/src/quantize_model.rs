//! Whole-model calibration and quantization (host only, `std` feature): a float
//! [`ModelF`] plus calibration inputs become the owned [`ModelParams`] that
//! [`crate::blob::write`] packs.
//!
//! Three modules hold the quantization, by when it runs: [`crate::requant`] applies scales at
//! run time (integer only, on the device); [`crate::quantize_block`] (pack time, host) turns
//! calibration ranges into one block's int8 parameters; [`crate::quantize_model`] (pack time,
//! host) calibrates and quantizes a whole model into the parameters [`crate::blob::write`]
//! packs into a blob.
//!
//! Quantization choices on top of [`crate::quantize_block`]'s per-block ones:
//! - input image: asymmetric over the calibration pixels;
//! - patch projection output / class token: asymmetric over the observed `embed` range;
//! - token embedding and learned positions: symmetric per tensor over the table itself (the
//!   embedding rows are copied as they are, so one scale); sinusoidal positions use the
//!   fixed-point table of [`crate::position::fill_sinusoidal`] (scale 1/127), bit-identical to
//!   what a device would compute;
//! - decoder final LayerNorm output: **symmetric**, so the tied LM head (the int8 embedding
//!   table used as a `Linear`) has an exactly zero bias;
//! - logits: symmetric over the calibration logits.

use crate::blob::{DecoderParams, ModelParams, VitParams, NO_TOKEN};
use crate::linear::LinearParams;
use crate::norm::LayerNormParams;
use crate::quantize_block::{residual_add, Calibration, DecoderBlockParams, EncoderBlockParams};
use crate::reference::block::{LinearF, Observer};
use crate::reference::model::{DecoderF, ModelF, VitF};
use crate::requant::{QParams, Requant};
use crate::Error;
use std::format;
use std::vec;
use std::vec::Vec;

/// One calibration example.
#[derive(Debug, Clone, PartialEq)]
pub enum CalibrationInput {
    /// An image `[C][H][W]` (ViT classifier).
    Image(std::vec::Vec<f64>),
    /// Token ids (decoder LM), run teacher-forced.
    Tokens(std::vec::Vec<u32>),
    /// An image and decoder ids (encoder–decoder), run teacher-forced.
    ImageTokens(std::vec::Vec<f64>, std::vec::Vec<u32>),
}

/// Run every input through the f64 reference, observing every quantization point.
pub fn calibrate(model: &ModelF, inputs: &[CalibrationInput]) -> Result<Calibration, Error> {
    let mut c = Calibration::default();
    for input in inputs {
        run_reference(model, input, &mut c)?;
    }
    Ok(c)
}

/// The f64 reference output of one input: ViT logits, or teacher-forced decoder logits
/// `[T][V]` flattened.
pub fn run_reference(
    model: &ModelF,
    input: &CalibrationInput,
    obs: &mut dyn Observer,
) -> Result<Vec<f64>, Error> {
    let bad = Error::BadDimension {
        what: "calibration input for this model kind",
        value: 0,
    };
    match (input, &model.encoder, &model.decoder) {
        (CalibrationInput::Image(img), Some(e), None) => Ok(e.classify(img, obs)),
        (CalibrationInput::Tokens(ids), None, Some(d)) => Ok(d.forward(ids, None, obs)),
        (CalibrationInput::ImageTokens(img, ids), Some(e), Some(d)) => {
            let enc = e.encode(img, obs);
            Ok(d.forward(ids, Some(&enc), obs))
        }
        _ => Err(bad),
    }
}

fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs()))
}

fn quantize_all(v: &[f32], q: QParams) -> Vec<i8> {
    v.iter().map(|&x| q.quantize(x as f64)).collect()
}

fn linear(f: &LinearF, input: QParams, output: QParams) -> Result<LinearParams, Error> {
    LinearParams::quantize(
        &f.w,
        &f.b,
        f.in_features,
        input,
        &[output.scale],
        output.zero_point,
    )
}

fn vit(
    f: &VitF,
    calib: &Calibration,
    logits: QParams,
) -> Result<(VitParams, QParams, QParams), Error> {
    let q_in = calib.asymmetric("input")?;
    let q_emb = calib.asymmetric("embed")?;
    let q_pos = QParams::symmetric(max_abs(&f.positions));
    let q_x0 = calib.asymmetric("x0")?;
    let mut input = q_x0;
    let mut blocks = Vec::with_capacity(f.blocks.len());
    for (i, b) in f.blocks.iter().enumerate() {
        let (p, q) = EncoderBlockParams::quantize(b, calib, &format!("enc{i}."), input)?;
        blocks.push(p);
        input = q;
    }
    let q_fin = calib.asymmetric("enc_final")?;
    let fnorm = &f.final_norm;
    let final_norm = LayerNormParams::quantize(&fnorm.gamma, &fnorm.beta, fnorm.eps, input, q_fin)?;
    let classifier = match &f.classifier {
        Some(c) => Some(linear(c, q_fin, logits)?),
        None => None,
    };
    Ok((
        VitParams {
            channels: f.channels,
            height: f.height,
            width: f.width,
            patch: f.patch,
            projection: linear(&f.projection, q_in, q_emb)?,
            class_token: quantize_all(&f.class_token, q_emb),
            positions: quantize_all(&f.positions, q_pos),
            position_add: residual_add(q_emb, q_pos, q_x0)?,
            blocks,
            final_norm,
            classifier,
        },
        q_in,
        q_fin,
    ))
}

fn decoder(
    f: &DecoderF,
    calib: &Calibration,
    encoder: Option<QParams>,
    logits: QParams,
) -> Result<DecoderParams, Error> {
    let d = f.width;
    let q_emb = QParams::symmetric(max_abs(&f.embedding));
    let embedding = quantize_all(&f.embedding, q_emb);
    let (q_pos, positions) = if f.sinusoidal {
        let mut t = vec![0i8; f.positions.len()];
        crate::position::fill_sinusoidal(&mut t, d, 0)?;
        (
            QParams {
                scale: 1.0 / crate::position::TABLE_SCALE_DENOMINATOR as f64,
                zero_point: 0,
            },
            t,
        )
    } else {
        let q = QParams::symmetric(max_abs(&f.positions));
        (q, quantize_all(&f.positions, q))
    };
    let q_x0 = calib.asymmetric("dec_x0")?;
    let mut input = q_x0;
    let mut blocks = Vec::with_capacity(f.blocks.len());
    for (i, b) in f.blocks.iter().enumerate() {
        let (p, q) = DecoderBlockParams::quantize(b, calib, &format!("dec{i}."), input, encoder)?;
        blocks.push(p);
        input = q;
    }
    let q_fin = calib.symmetric("dec_final")?;
    let fnorm = &f.final_norm;
    let final_norm = LayerNormParams::quantize(&fnorm.gamma, &fnorm.beta, fnorm.eps, input, q_fin)?;
    let v = f.vocab();
    let head = lm_head(f.head.as_deref(), &embedding, d, v, q_emb, q_fin, logits)?;
    Ok(DecoderParams {
        embedding,
        positions,
        sinusoidal: f.sinusoidal,
        position_add: residual_add(q_emb, q_pos, q_x0)?,
        blocks,
        final_norm,
        head,
        tied: f.head.is_none(),
        start_token: f.start_token.unwrap_or(NO_TOKEN),
        eos_token: f.eos_token.unwrap_or(NO_TOKEN),
        pad_token: f.pad_token.unwrap_or(NO_TOKEN),
    })
}

/// The LM head of a decoder (GPT-2 or Llama): tied — the int8 embedding table (`q_emb`)
/// reused with one requantization for every row — or its own `head` weights, quantized
/// per row. Input: the final norm's output (`q_fin`); output: the logits (`logits`).
pub(crate) fn lm_head(
    head: Option<&[f32]>,
    embedding: &[i8],
    width: usize,
    vocab: usize,
    q_emb: QParams,
    q_fin: QParams,
    logits: QParams,
) -> Result<LinearParams, Error> {
    match head {
        None => {
            let r = Requant::from_real(q_fin.scale * q_emb.scale / logits.scale)?;
            Ok(LinearParams {
                in_features: width,
                out_features: vocab,
                weights: embedding.to_vec(),
                bias: vec![0; vocab],
                multipliers: vec![r.multiplier; vocab],
                shifts: vec![r.shift; vocab],
                output_zero_point: logits.zero_point,
                weight_scales: vec![q_emb.scale; vocab],
            })
        }
        Some(w) => LinearParams::quantize(
            w,
            &vec![0.0; vocab],
            width,
            q_fin,
            &[logits.scale],
            logits.zero_point,
        ),
    }
}

/// Quantize a whole model with the ranges in `calib` (from [`calibrate`]).
pub fn quantize_model(model: &ModelF, calib: &Calibration) -> Result<ModelParams, Error> {
    let logits = calib.symmetric("logits")?;
    let (encoder, input, enc_out) = match &model.encoder {
        Some(e) => {
            let (p, q_in, q_fin) = vit(e, calib, logits)?;
            (Some(p), q_in, Some(q_fin))
        }
        None => (None, QParams::symmetric(1.0), None),
    };
    let decoder = match &model.decoder {
        Some(d) => Some(decoder(d, calib, enc_out, logits)?),
        None => None,
    };
    Ok(ModelParams {
        encoder,
        decoder,
        input,
        logits,
    })
}
