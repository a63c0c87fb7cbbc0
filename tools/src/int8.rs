//! The int8 path on the host: HF-loaded f32 models mapped onto core-attn's float reference
//! ([`core_attn::reference::model::ModelF`]), calibrated, quantized and packed into a blob; and
//! blobs loaded and run with core-attn's runners (the same code as on the device).
//!
//! Mapping ([`to_reference`]):
//! - ViT `query`/`key`/`value` `nn.Linear` weights (`[out, in]`) are stacked row-wise into one
//!   `[3D][D]` fused QKV layer (a missing `qkv_bias` becomes zeros); the patch Conv2d
//!   `[D, C, p, p]` is already a Linear over `(channel, row, col)`-flattened patches.
//! - GPT-2 `Conv1D` weights are stored `[in, out]`; [`crate::model`] transposes them on load, so
//!   `c_attn` is already the `[3D][D]` q | k | v layer and the cross `c_attn` the `[2D][D]` k | v.
//! - The tied LM head stays tied (`head: None`): the blob stores the embedding once.
//!
//! Not supported by the int8 path (clear `not implemented` errors): post-norm ViT encoders (no
//! final LayerNorm), non-square patches, `enc_to_dec_proj`, `scale_attn_by_inverse_layer_idx`,
//! `scale_attn_weights: false`. With several eos ids, the first one stops generation.
//!
//! Calibration ([`calibration_inputs`]): the given `.npy` (float32 images `[N, C, H, W]` for
//! ViT and the encoder–decoder, int64 prompts `[N, T]` for GPT-2), or — when none is given — a
//! synthesized, seeded set: 16 images uniform in `[-1, 1)` (the range of HF-normalized pixels)
//! or 8 prompts of 8 uniform ids. Decoder sequences are extended with the **f32 model's own
//! greedy continuation** up to `n_positions`, so every position and the token distribution
//! the decoder will actually see are covered.

use std::path::Path;

use core_attn::blob::{self, Blob};
use core_attn::block::NormPlacement as CoreNorm;
use core_attn::model::host::OwnedBuffers;
use core_attn::model::{self as runner};
use core_attn::quantize_model::{calibrate, quantize_model, CalibrationInput};
use core_attn::reference::block::{
    CrossAttentionF, DecoderBlockF, EncoderBlockF, Gelu, LayerNormF, LinearF,
};
use core_attn::reference::model::{DecoderF, ModelF, VitF};
use core_attn::requant::QParams;

use crate::checkpoint::config::{Activation, NormPlacement, PositionEmbedding};
use crate::checkpoint::npy::{read_npy, NpyData};
use crate::error::{Error, Result};
use crate::float::{encdec, gpt2};
use crate::model::{Gpt2Model, LayerNorm, Linear, Model, VitEncoder};

fn unimpl(what: &str) -> Error {
    Error::Unimplemented(format!("int8 path: {what}"))
}

fn lin(l: &Linear) -> LinearF {
    LinearF {
        w: l.weight.clone(),
        b: l.bias.clone().unwrap_or_else(|| vec![0.0; l.out_dim]),
        in_features: l.in_dim,
    }
}

fn stack(parts: &[&Linear]) -> LinearF {
    let mut w = Vec::new();
    let mut b = Vec::new();
    for p in parts {
        let f = lin(p);
        w.extend_from_slice(&f.w);
        b.extend_from_slice(&f.b);
    }
    LinearF {
        w,
        b,
        in_features: parts[0].in_dim,
    }
}

fn norm(l: &LayerNorm) -> LayerNormF {
    LayerNormF {
        gamma: l.gamma.clone(),
        beta: l.beta.clone(),
        eps: l.eps,
    }
}

fn act(a: Activation) -> Gelu {
    match a {
        Activation::GeluErf => Gelu::Erf,
        Activation::GeluTanh => Gelu::Tanh,
        Activation::Relu => Gelu::Relu,
    }
}

fn vit(enc: &VitEncoder, classifier: Option<&Linear>) -> Result<VitF> {
    let c = &enc.config;
    if c.patch_size.0 != c.patch_size.1 {
        return Err(unimpl("non-square patches"));
    }
    let final_ln = enc
        .final_ln
        .as_ref()
        .ok_or_else(|| unimpl("post-norm ViT encoders (no final LayerNorm)"))?;
    let placement = match c.norm_placement {
        NormPlacement::Pre => CoreNorm::Pre,
        NormPlacement::Post => CoreNorm::Post,
    };
    Ok(VitF {
        channels: c.num_channels,
        height: c.image_size.0,
        width: c.image_size.1,
        patch: c.patch_size.0,
        projection: lin(&enc.patch),
        class_token: enc.cls.clone(),
        positions: enc.pos.data.clone(),
        blocks: enc
            .layers
            .iter()
            .map(|l| EncoderBlockF {
                placement,
                heads: c.num_heads,
                ln1: norm(&l.ln1),
                qkv: stack(&[&l.query, &l.key, &l.value]),
                proj: lin(&l.attn_out),
                ln2: norm(&l.ln2),
                fc1: lin(&l.fc1),
                act: act(c.activation),
                fc2: lin(&l.fc2),
            })
            .collect(),
        final_norm: norm(final_ln),
        classifier: classifier.map(lin),
    })
}

fn decoder(
    m: &Gpt2Model,
    start: Option<usize>,
    eos: &[usize],
    pad: Option<usize>,
) -> Result<DecoderF> {
    let c = &m.config;
    if c.scale_attn_by_inverse_layer_idx || !c.scale_attn_weights {
        return Err(unimpl("attention scaling other than 1/sqrt(head_dim)"));
    }
    let id = |v: Option<usize>| v.map(|x| x as u32);
    Ok(DecoderF {
        width: c.n_embd,
        embedding: m.wte.data.clone(),
        positions: m.positions.data.clone(),
        sinusoidal: c.position_embedding == PositionEmbedding::Sinusoidal,
        blocks: m
            .blocks
            .iter()
            .map(|b| DecoderBlockF {
                heads: c.n_head,
                ln1: norm(&b.ln_1),
                qkv: lin(&b.c_attn),
                proj: lin(&b.c_proj),
                cross: b.cross.as_ref().map(|x| CrossAttentionF {
                    ln: norm(&x.ln),
                    q: lin(&x.q),
                    kv: lin(&x.kv),
                    proj: lin(&x.proj),
                }),
                ln2: norm(&b.ln_2),
                fc1: lin(&b.fc),
                act: act(c.activation),
                fc2: lin(&b.proj),
            })
            .collect(),
        final_norm: norm(&m.ln_f),
        head: m.lm_head.as_ref().map(|h| h.data.clone()),
        start_token: id(start),
        eos_token: id(eos.first().copied()),
        pad_token: id(pad),
    })
}

/// Map an HF-loaded model onto core-attn's f64 reference model.
pub fn to_reference(model: &Model) -> Result<ModelF> {
    Ok(match model {
        Model::Vit(m) => ModelF {
            encoder: Some(vit(&m.encoder, Some(&m.classifier))?),
            decoder: None,
        },
        Model::Gpt2(m) => ModelF {
            encoder: None,
            decoder: Some(decoder(
                m,
                m.config.decoder_start_token_id,
                &m.config.eos_token_ids,
                m.config.pad_token_id,
            )?),
        },
        Model::EncoderDecoder(m) => {
            if m.enc_to_dec.is_some() {
                return Err(unimpl(
                    "enc_to_dec_proj (encoder and decoder widths differ)",
                ));
            }
            let c = &m.config;
            ModelF {
                encoder: Some(vit(&m.encoder, None)?),
                decoder: Some(decoder(
                    &m.decoder,
                    Some(c.decoder_start_token_id),
                    &c.eos_token_ids,
                    c.pad_token_id,
                )?),
            }
        }
    })
}

/// Deterministic xorshift for synthesized calibration data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Images `[C*H*W]` (f32) from a `.npy` `[N, C, H, W]`.
fn npy_images(path: &Path, chw: (usize, usize, usize)) -> Result<Vec<Vec<f32>>> {
    let a = read_npy(path)?;
    let NpyData::F32(data) = a.data else {
        return Err(Error::Input(format!(
            "{}: calibration images must be float32",
            path.display()
        )));
    };
    let (c, h, w) = chw;
    match a.shape.as_slice() {
        [n, cc, hh, ww] if (*cc, *hh, *ww) == (c, h, w) && *n > 0 => {}
        s => {
            return Err(Error::Input(format!(
                "calibration images have shape {s:?}, model expects [N, {c}, {h}, {w}]"
            )))
        }
    }
    // A NaN pixel would vanish from the calibrated ranges (min/max ignore it) and give a blob
    // silently; an infinite one fails later with an unrelated message.
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        let chw = c * h * w;
        return Err(Error::Input(format!(
            "{}: calibration image {} has a non-finite pixel ({}) at flat index {}",
            path.display(),
            i / chw,
            data[i],
            i % chw
        )));
    }
    Ok(data.chunks_exact(c * h * w).map(<[f32]>::to_vec).collect())
}

/// Int64 token-id rows of a `.npy` file (`[N, T]` or `[T]`), every id checked `< vocab`.
pub fn npy_ids(path: &Path, vocab: usize) -> Result<Vec<Vec<usize>>> {
    let a = read_npy(path)?;
    let NpyData::I64(data) = a.data else {
        return Err(Error::Input(format!(
            "{}: calibration token ids must be int64",
            path.display()
        )));
    };
    let t = match a.shape.as_slice() {
        [n, t] if *n > 0 && *t > 0 => *t,
        s => {
            return Err(Error::Input(format!(
                "calibration ids have shape {s:?}, expected [N, T]"
            )))
        }
    };
    data.chunks_exact(t)
        .map(|r| {
            r.iter()
                .map(|&i| {
                    usize::try_from(i)
                        .ok()
                        .filter(|&i| i < vocab)
                        .ok_or_else(|| {
                            Error::Input(format!("calibration token id {i} out of range"))
                        })
                })
                .collect()
        })
        .collect()
}

/// Calibration inputs for `model` (see the module docs).
pub fn calibration_inputs(model: &Model, file: Option<&Path>) -> Result<Vec<CalibrationInput>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut synth_images = |n: usize, len: usize| -> Vec<Vec<f32>> {
        (0..n)
            .map(|_| {
                (0..len)
                    .map(|_| (2.0 * rng.uniform() - 1.0) as f32)
                    .collect()
            })
            .collect()
    };
    let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let u32s = |v: &[usize]| v.iter().map(|&x| x as u32).collect::<Vec<u32>>();
    match model {
        Model::Vit(m) => {
            let c = &m.encoder.config;
            let chw = (c.num_channels, c.image_size.0, c.image_size.1);
            let images = match file {
                Some(p) => npy_images(p, chw)?,
                None => synth_images(16, chw.0 * chw.1 * chw.2),
            };
            Ok(images
                .iter()
                .map(|i| CalibrationInput::Image(f64s(i)))
                .collect())
        }
        Model::Gpt2(m) => {
            let c = &m.config;
            let prompts = match file {
                Some(p) => npy_ids(p, c.vocab_size)?,
                None => {
                    let mut r = Rng(0x1234_5678_9abc_def1);
                    (0..8)
                        .map(|_| {
                            (0..8.min(c.n_positions))
                                .map(|_| (r.next() % c.vocab_size as u64) as usize)
                                .collect()
                        })
                        .collect()
                }
            };
            let mut out = Vec::new();
            for p in prompts {
                let p: Vec<usize> = p.into_iter().take(c.n_positions).collect();
                let extra = c.n_positions - p.len();
                let mut seq = gpt2::generate(m, vec![p], extra)?.remove(0);
                seq.truncate(c.n_positions);
                out.push(CalibrationInput::Tokens(u32s(&seq)));
            }
            Ok(out)
        }
        Model::EncoderDecoder(m) => {
            let c = &m.encoder.config;
            let chw = (c.num_channels, c.image_size.0, c.image_size.1);
            let images = match file {
                Some(p) => npy_images(p, chw)?,
                None => synth_images(8, chw.0 * chw.1 * chw.2),
            };
            let max_new = m.decoder.config.n_positions - 1;
            let mut out = Vec::new();
            for img in images {
                let seq = encdec::generate(m, &[&img], max_new)?.remove(0);
                out.push(CalibrationInput::ImageTokens(f64s(&img), u32s(&seq)));
            }
            Ok(out)
        }
    }
}

fn core(e: core_attn::Error) -> Error {
    Error::Int8(e.to_string())
}

/// Convert a loaded model into blob bytes (deterministic).
pub fn convert(model: &Model, calibration: Option<&Path>) -> Result<Vec<u8>> {
    convert_with_vocab(model, calibration, None)
}

/// The vocabulary `tools convert` embeds for a language model loaded from `dir`
/// (`dir/vocab.json`, checked against the model's vocabulary size); `None` for a classifier
/// or without the file.
pub fn checkpoint_vocab(model: &Model, dir: &Path) -> Result<Option<crate::vocab::Vocab>> {
    let size = match model {
        Model::Vit(_) => return Ok(None),
        Model::Gpt2(m) => m.config.vocab_size,
        Model::EncoderDecoder(m) => m.decoder.config.vocab_size,
    };
    crate::vocab::Vocab::for_checkpoint(dir, size)
}

/// [`convert`], embedding `vocab` (the text of each id) in the blob's optional vocabulary
/// sections, so that a device can turn ids into text.
pub fn convert_with_vocab(
    model: &Model,
    calibration: Option<&Path>,
    vocab: Option<&crate::vocab::Vocab>,
) -> Result<Vec<u8>> {
    let reference = to_reference(model)?;
    let inputs = calibration_inputs(model, calibration)?;
    let calib = calibrate(&reference, &inputs).map_err(core)?;
    let params = quantize_model(&reference, &calib).map_err(core)?;
    let entries: Option<Vec<Option<&str>>> = vocab.map(|v| v.entries().collect());
    blob::write_with_vocab(&params, entries.as_deref()).map_err(core)
}

/// Blob bytes in 4-byte aligned storage (what the zero-copy reader needs).
#[derive(Debug, Clone)]
pub struct AlignedBlob {
    words: Vec<u32>,
    len: usize,
}

impl AlignedBlob {
    /// Read a blob file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Copy bytes into aligned storage.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBlob {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.words)[..self.len]
    }

    /// Parse; a bad blob becomes `{path}: invalid model blob: {reason}`.
    pub fn parse(&self, path: &Path) -> Result<Blob<'_>> {
        if self.len == 0 {
            // core-attn would say "bad magic"; an empty file deserves its own words.
            return Err(Error::Blob {
                path: path.to_path_buf(),
                reason: "invalid model blob: file is empty (0 bytes)".into(),
            });
        }
        Blob::parse(self.bytes()).map_err(|e| Error::Blob {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

/// Quantize f32 pixels with the blob's input quantization.
pub fn quantize_image(blob: &Blob<'_>, image: &[f32]) -> Vec<i8> {
    let h = blob.header();
    let q = QParams {
        scale: h.input_scale() as f64,
        zero_point: h.input_zero_point,
    };
    image.iter().map(|&v| q.quantize(v as f64)).collect()
}

fn dequantize(blob: &Blob<'_>, q: &[i8]) -> Vec<f32> {
    let h = blob.header();
    let s = h.logits_scale();
    q.iter()
        .map(|&v| s * (v as i32 - h.logits_zero_point) as f32)
        .collect()
}

/// Dequantized int8 logits of one image (ViT classifier).
pub fn classify(blob: &Blob<'_>, image: &[f32]) -> Result<Vec<f32>> {
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let (mut bufs, _, _) = owned.split(blob).map_err(core)?;
    let q = runner::vit_classify(
        blob,
        &quantize_image(blob, image),
        &mut bufs,
        &mut |_, _| {},
    )
    .map_err(core)?;
    Ok(dequantize(blob, q))
}

/// Generated id sequences (one per row) and their teacher-forced logits `[row][position][vocab]`.
pub type Generated = (Vec<Vec<usize>>, Vec<Vec<Vec<f32>>>);

/// Greedy generation with HF's batch rule (rows that emitted eos are padded to the longest row
/// with the pad id), then the dequantized teacher-forced logits over each generated sequence.
/// `images` is required for encoder–decoder blobs (one prompt `[start]` per image).
pub fn generate(
    blob: &Blob<'_>,
    prompts: &[Vec<usize>],
    images: Option<&[Vec<f32>]>,
    max_new: usize,
) -> Result<Generated> {
    let d = blob.header().decoder;
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let (mut bufs, mut caches, mut cross) = owned.split(blob).map_err(core)?;
    let mut seqs = Vec::new();
    let mut all_logits = Vec::new();
    let mut runs = Vec::new();
    for (r, prompt) in prompts.iter().enumerate() {
        let cross_ref = match images {
            Some(imgs) => {
                let img = quantize_image(blob, &imgs[r]);
                runner::encode_for_decoder(blob, &img, &mut cross, &mut bufs, &mut |_, _| {})
                    .map_err(core)?;
                Some(&cross[..])
            }
            None => None,
        };
        let p: Vec<u32> = prompt.iter().map(|&i| i as u32).collect();
        let need = p.len() + max_new.saturating_sub(1);
        if need > d.max_positions {
            return Err(Error::Input(format!(
                "prompt of {} tokens + {max_new} new tokens needs {need} positions, model has {}",
                p.len(),
                d.max_positions
            )));
        }
        let mut out = vec![0u32; p.len() + max_new];
        let n = runner::greedy(
            blob,
            &p,
            max_new,
            &mut out,
            &mut caches,
            cross_ref,
            &mut bufs,
            &mut |_, _| {},
        )
        .map_err(core)?;
        runs.push(out[..n].to_vec());
    }
    let longest = runs.iter().map(Vec::len).max().unwrap_or(0);
    let pad = if d.pad_token != blob::NO_TOKEN {
        d.pad_token
    } else if d.eos_token != blob::NO_TOKEN {
        d.eos_token
    } else {
        0
    };
    for (r, mut run) in runs.into_iter().enumerate() {
        run.resize(longest, pad);
        // Teacher-forced logits over the whole padded sequence.
        let cross_ref = match images {
            Some(imgs) => {
                let img = quantize_image(blob, &imgs[r]);
                runner::encode_for_decoder(blob, &img, &mut cross, &mut bufs, &mut |_, _| {})
                    .map_err(core)?;
                Some(&cross[..])
            }
            None => None,
        };
        for c in caches.iter_mut() {
            c.clear();
        }
        let mut rows = Vec::new();
        for &t in run.iter().take(d.max_positions) {
            let l =
                runner::decoder_step(blob, t, &mut caches, cross_ref, &mut bufs, &mut |_, _| {})
                    .map_err(core)?;
            rows.push(dequantize(blob, l));
        }
        seqs.push(run.iter().map(|&t| t as usize).collect());
        all_logits.push(rows);
    }
    Ok((seqs, all_logits))
}

/// Checks token ids against the blob's vocabulary.
pub fn check_ids(blob: &Blob<'_>, ids: &[usize]) -> Result<()> {
    let v = blob.header().decoder.vocab;
    match ids.iter().find(|&&i| i >= v) {
        Some(bad) => Err(Error::Input(format!(
            "token id {bad} out of range (vocab_size {v})"
        ))),
        None => Ok(()),
    }
}

/// Dequantized int8 logits of one image (ViT classifier); `observe(layer, x)` sees the residual
/// stream after each block and the final LayerNorm output (`layer` =
/// [`core_attn::model::FINAL_NORM`]).
pub fn classify_observed(
    blob: &Blob<'_>,
    image: &[f32],
    observe: &mut dyn FnMut(usize, &[i8]),
) -> Result<Vec<f32>> {
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let (mut bufs, _, _) = owned.split(blob).map_err(core)?;
    let q = runner::vit_classify(blob, &quantize_image(blob, image), &mut bufs, observe)
        .map_err(core)?;
    Ok(dequantize(blob, q))
}

/// `observe(stage, position, layer, activations)` of [`teacher_forced`].
pub type StepObserver<'a> = dyn FnMut(usize, usize, usize, &[i8]) + 'a;

/// Teacher-forced int8 pass over `ids` (one decoder step per id, KV cached): dequantized logits
/// `[position][vocab]`. `image` is required for encoder–decoder blobs. `observe(stage,
/// position, layer, x)`: `stage` 0 = encoder (position 0), 1 = decoder.
pub fn teacher_forced(
    blob: &Blob<'_>,
    ids: &[usize],
    image: Option<&[f32]>,
    observe: &mut StepObserver<'_>,
) -> Result<Vec<Vec<f32>>> {
    let d = blob.header().decoder;
    check_ids(blob, ids)?;
    if ids.len() > d.max_positions {
        return Err(Error::Input(format!(
            "sequence of {} tokens exceeds the model's {} positions",
            ids.len(),
            d.max_positions
        )));
    }
    let mut owned = OwnedBuffers::new(&blob.buffers());
    let (mut bufs, mut caches, mut cross) = owned.split(blob).map_err(core)?;
    let cross_ref = match (blob.kind(), image) {
        (blob::ModelKind::EncoderDecoder, Some(img)) => {
            let img = quantize_image(blob, img);
            runner::encode_for_decoder(blob, &img, &mut cross, &mut bufs, &mut |l, x| {
                observe(0, 0, l, x)
            })
            .map_err(core)?;
            Some(&cross[..])
        }
        (blob::ModelKind::EncoderDecoder, None) => {
            return Err(Error::Input("an encoder-decoder needs an image".into()))
        }
        _ => None,
    };
    let mut rows = Vec::with_capacity(ids.len());
    for (p, &t) in ids.iter().enumerate() {
        let l = runner::decoder_step(
            blob,
            t as u32,
            &mut caches,
            cross_ref,
            &mut bufs,
            &mut |l, x| observe(1, p, l, x),
        )
        .map_err(core)?;
        rows.push(dequantize(blob, l));
    }
    Ok(rows)
}

/// Real-valued quantization of every block output and of the final LayerNorm output, from the
/// calibration `convert` uses (the blob stores only the integer requantization constants).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerScales {
    /// Encoder block outputs, then the encoder's final LayerNorm (empty without encoder).
    pub encoder: Vec<QParams>,
    /// Decoder block outputs, then the decoder's final LayerNorm (empty without decoder).
    pub decoder: Vec<QParams>,
}

/// `convert` in memory: the blob bytes and the activation scales it was quantized with.
///
/// `vocab` is embedded like `convert` does (see [`checkpoint_vocab`]), so that the bytes equal
/// a converted blob's.
pub fn convert_with_scales(
    model: &Model,
    calibration: Option<&Path>,
    vocab: Option<&crate::vocab::Vocab>,
) -> Result<(Vec<u8>, LayerScales)> {
    let reference = to_reference(model)?;
    let inputs = calibration_inputs(model, calibration)?;
    let calib = calibrate(&reference, &inputs).map_err(core)?;
    let params = quantize_model(&reference, &calib).map_err(core)?;
    let entries: Option<Vec<Option<&str>>> = vocab.map(|v| v.entries().collect());
    let bytes = blob::write_with_vocab(&params, entries.as_deref()).map_err(core)?;
    let mut scales = LayerScales {
        encoder: Vec::new(),
        decoder: Vec::new(),
    };
    if let Some(e) = &reference.encoder {
        for (i, b) in e.blocks.iter().enumerate() {
            // A pre-norm block ends with the second residual add; a post-norm one with LN2.
            let point = match b.placement {
                CoreNorm::Pre => format!("enc{i}.add2"),
                CoreNorm::Post => format!("enc{i}.ln2"),
            };
            scales.encoder.push(calib.asymmetric(&point).map_err(core)?);
        }
        scales
            .encoder
            .push(calib.asymmetric("enc_final").map_err(core)?);
    }
    if let Some(d) = &reference.decoder {
        for i in 0..d.blocks.len() {
            scales
                .decoder
                .push(calib.asymmetric(&format!("dec{i}.add2")).map_err(core)?);
        }
        scales
            .decoder
            .push(calib.symmetric("dec_final").map_err(core)?);
    }
    Ok((bytes, scales))
}
