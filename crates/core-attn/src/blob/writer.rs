//! Host-side writer: owned `*Params` → blob bytes (`std` feature).

use super::reader::Elem;
use super::*;
use crate::attention::AttentionParams;
use crate::linear::LinearParams;
use crate::norm::LayerNormParams;
use crate::quantize_block::{
    CrossAttentionParams, DecoderBlockParams, EncoderBlockParams, MlpParams,
};
use std::vec;
use std::vec::Vec;

/// Owned int8 ViT encoder (with or without classifier).
#[derive(Debug, Clone)]
pub struct VitParams {
    /// Image channels.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Patch side.
    pub patch: usize,
    /// Patch projection `[D][C·P·P]`.
    pub projection: LinearParams,
    /// Class token in the projection's output quantization.
    pub class_token: Vec<i8>,
    /// Learned positions `[tokens][D]`.
    pub positions: Vec<i8>,
    /// `embedding + position`.
    pub position_add: ResidualAdd,
    /// Encoder blocks.
    pub blocks: Vec<EncoderBlockParams>,
    /// Final LayerNorm.
    pub final_norm: LayerNormParams,
    /// Classifier on the class token (ViT classifier only).
    pub classifier: Option<LinearParams>,
}

/// Owned int8 decoder.
#[derive(Debug, Clone)]
pub struct DecoderParams {
    /// `[vocab][D]` token embedding.
    pub embedding: Vec<i8>,
    /// `[max_positions][D]` positions.
    pub positions: Vec<i8>,
    /// True when `positions` is the sinusoidal table.
    pub sinusoidal: bool,
    /// `embedding + position`.
    pub position_add: ResidualAdd,
    /// Decoder blocks.
    pub blocks: Vec<DecoderBlockParams>,
    /// Final LayerNorm.
    pub final_norm: LayerNormParams,
    /// LM head. When `tied`, its weights must equal `embedding` and are stored once.
    pub head: LinearParams,
    /// LM head tied to the embedding.
    pub tied: bool,
    /// Start token ([`NO_TOKEN`] if none).
    pub start_token: u32,
    /// End-of-sequence token ([`NO_TOKEN`] if none).
    pub eos_token: u32,
    /// Pad token ([`NO_TOKEN`] if none).
    pub pad_token: u32,
}

/// A whole owned int8 model plus the quantization of its input and logits.
#[derive(Debug, Clone)]
pub struct ModelParams {
    /// Encoder (ViT classifier, encoder–decoder).
    pub encoder: Option<VitParams>,
    /// Decoder (decoder LM, encoder–decoder).
    pub decoder: Option<DecoderParams>,
    /// Input image quantization (encoder models).
    pub input: crate::requant::QParams,
    /// Logits quantization.
    pub logits: crate::requant::QParams,
}

enum Data {
    Bytes(Vec<u8>),
    Alias(usize),
}

/// Collects sections, then lays out and checksums the blob.
struct Writer {
    entries: Vec<(u16, Elem, usize, Data)>,
}

impl Writer {
    fn push(&mut self, tag: u16, elem: Elem, count: usize, bytes: Vec<u8>) -> usize {
        self.entries.push((tag, elem, count, Data::Bytes(bytes)));
        self.entries.len() - 1
    }
    fn i8s(&mut self, tag: u16, v: &[i8]) -> usize {
        self.push(tag, Elem::I8, v.len(), v.iter().map(|&x| x as u8).collect())
    }
    fn i32s(&mut self, tag: u16, v: &[i32]) -> usize {
        let b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push(tag, Elem::I32, v.len(), b)
    }
    fn u16s(&mut self, tag: u16, v: &[u16]) -> usize {
        let b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push(tag, Elem::U16, v.len(), b)
    }
    fn alias(&mut self, tag: u16, of: usize) {
        let (_, elem, count, _) = self.entries[of];
        self.entries.push((tag, elem, count, Data::Alias(of)));
    }

    fn layer_norm(&mut self, p: &LayerNormParams) {
        write_layer_norm(self, p)
    }

    /// The one place an RMSNorm is written (the reader is `Cursor::rms_norm`).
    fn rms_norm(&mut self, p: &crate::rmsnorm::RmsNormParams) {
        self.i32s(tag::RMS_GAMMA, &p.gamma);
        self.i32s(
            tag::RMS_SCALARS,
            &[
                p.epsilon as u32 as i32,
                (p.epsilon >> 32) as u32 as i32,
                p.input_zero_point,
                p.output_zero_point,
            ],
        );
    }

    /// Returns the index of the weight section.
    fn linear(&mut self, p: &LinearParams) -> usize {
        self.i32s(
            tag::LIN_SHAPE,
            &[
                p.in_features as i32,
                p.out_features as i32,
                p.output_zero_point,
            ],
        );
        let w = self.i8s(tag::LIN_W, &p.weights);
        self.i32s(tag::LIN_B, &p.bias);
        self.i32s(tag::LIN_MUL, &p.multipliers);
        self.i8s(tag::LIN_SHIFT, &p.shifts);
        w
    }

    fn attention(&mut self, p: &AttentionParams) {
        self.i32s(
            tag::ATT_SCALARS,
            &[
                p.heads as i32,
                p.head_dim as i32,
                p.score_to_index.multiplier,
                p.score_to_index.shift as i32,
                p.output.multiplier,
                p.output.shift as i32,
                p.output_zero_point,
            ],
        );
        self.u16s(tag::EXP_HI, &p.exp_hi);
        self.u16s(tag::EXP_LO, &p.exp_lo);
    }

    fn residual(&mut self, r: &ResidualAdd) {
        self.i32s(
            tag::RESIDUAL,
            &[
                r.a_scale.multiplier,
                r.a_scale.shift as i32,
                r.a_zero_point,
                r.b_scale.multiplier,
                r.b_scale.shift as i32,
                r.b_zero_point,
                r.output_zero_point,
            ],
        );
    }

    fn mlp(&mut self, m: &MlpParams) {
        self.linear(&m.fc1);
        self.i8s(tag::LUT, &m.act);
        self.linear(&m.fc2);
    }

    fn cross(&mut self, c: &CrossAttentionParams) {
        self.layer_norm(&c.ln);
        self.linear(&c.q);
        self.linear(&c.kv);
        self.attention(&c.attention);
        self.linear(&c.proj);
        self.residual(&c.add);
    }

    fn finish(self, kind: ModelKind, header_words: [u32; HEADER_WORDS]) -> Result<Vec<u8>, Error> {
        let table = TABLE_COUNT_OFFSET + 4;
        let mut pos = table + self.entries.len() * ENTRY_BYTES;
        let align = |p: usize| p.div_ceil(SECTION_ALIGN) * SECTION_ALIGN;
        let mut offsets = Vec::with_capacity(self.entries.len());
        for (_, _, _, d) in &self.entries {
            match d {
                Data::Bytes(b) => {
                    pos = align(pos);
                    offsets.push(pos);
                    pos += b.len();
                }
                Data::Alias(i) => offsets.push(offsets[*i]),
            }
        }
        let total = align(pos);
        fits_u32(total)?;
        let mut out = vec![0u8; total];
        out[..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&VERSION.to_le_bytes());
        out[6..8].copy_from_slice(&(kind as u16).to_le_bytes());
        out[12..16].copy_from_slice(&(total as u32).to_le_bytes());
        for (i, w) in header_words.iter().enumerate() {
            out[PREAMBLE + 4 * i..][..4].copy_from_slice(&w.to_le_bytes());
        }
        out[TABLE_COUNT_OFFSET..][..4].copy_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for (i, (tag, elem, count, d)) in self.entries.iter().enumerate() {
            let e = table + i * ENTRY_BYTES;
            let te = *tag as u32 | ((*elem as u32) << 16);
            out[e..e + 4].copy_from_slice(&te.to_le_bytes());
            out[e + 4..e + 8].copy_from_slice(&(offsets[i] as u32).to_le_bytes());
            out[e + 8..e + 12].copy_from_slice(&(*count as u32).to_le_bytes());
            if let Data::Bytes(b) = d {
                out[offsets[i]..offsets[i] + b.len()].copy_from_slice(b);
            }
        }
        let sum = fnv1a32(&out[12..]);
        out[8..12].copy_from_slice(&sum.to_le_bytes());
        Ok(out)
    }
}

/// The one place a [`LayerNormParams`] is written (the reader is `Cursor::layer_norm`).
fn write_layer_norm(w: &mut Writer, p: &LayerNormParams) {
    w.i32s(tag::LN_GAMMA, &p.gamma);
    w.i32s(tag::LN_BETA, &p.beta);
    w.i32s(
        tag::LN_SCALARS,
        &[
            p.epsilon as u32 as i32,
            (p.epsilon >> 32) as u32 as i32,
            p.output_zero_point,
        ],
    );
}

fn fits_u32(v: usize) -> Result<(), Error> {
    if v > u32::MAX as usize {
        Err(crate::error::bad_blob("dimension does not fit 32 bits"))
    } else {
        Ok(())
    }
}

/// Serialize `model` into blob bytes (deterministic: same parameters, same bytes), then
/// parse the result as a self-check.
///
/// # Errors
///
/// [`Error::BadBlob`] for an unsupported combination of parts or tables that do not match
/// the dimensions; any error [`Blob::parse`] finds in the result.
pub fn write(model: &ModelParams) -> Result<Vec<u8>, Error> {
    write_with_vocab(model, None)
}

/// [`write()`], plus the optional vocabulary sections: the text of each token id (decoders)
/// or class (classifiers), `None` for an id without text. A blob without a vocabulary is
/// byte for byte what [`write()`] gives.
///
/// # Errors
///
/// As [`write()`]; [`Error::BadBlob`] when the vocabulary's length differs from the model's
/// vocabulary size (or class count).
pub fn write_with_vocab(
    model: &ModelParams,
    vocab: Option<&[Option<&str>]>,
) -> Result<Vec<u8>, Error> {
    let kind = match (&model.encoder, &model.decoder) {
        (Some(e), None) if e.classifier.is_some() => ModelKind::VitClassifier,
        (None, Some(_)) => ModelKind::DecoderLm,
        (Some(e), Some(_)) if e.classifier.is_none() => ModelKind::EncoderDecoder,
        _ => {
            return Err(crate::error::bad_blob(
                "unsupported combination of model parts",
            ))
        }
    };
    let mut enc_dims = EncoderDims::default();
    let mut dec_dims = DecoderDims::default();
    let mut w = Writer {
        entries: Vec::new(),
    };
    let mut logits_zp = model.logits.zero_point;
    if let Some(e) = &model.encoder {
        let b0 = e
            .blocks
            .first()
            .ok_or(crate::error::bad_blob("encoder without blocks"))?;
        enc_dims = EncoderDims {
            layers: e.blocks.len(),
            width: e.projection.out_features,
            heads: b0.attention.heads,
            mlp: b0.mlp.fc1.out_features,
            channels: e.channels,
            height: e.height,
            image_width: e.width,
            patch: e.patch,
            classes: e.classifier.as_ref().map_or(0, |c| c.out_features),
            post_norm: b0.placement == NormPlacement::Post,
        };
        w.linear(&e.projection);
        w.i8s(tag::CLASS_TOKEN, &e.class_token);
        w.i8s(tag::POSITIONS, &e.positions);
        w.residual(&e.position_add);
        for b in &e.blocks {
            w.i32s(
                tag::BLOCK,
                &[(b.placement == NormPlacement::Post) as i32, 0],
            );
            w.layer_norm(&b.ln1);
            w.linear(&b.qkv);
            w.attention(&b.attention);
            w.linear(&b.proj);
            w.residual(&b.add1);
            w.layer_norm(&b.ln2);
            w.mlp(&b.mlp);
            w.residual(&b.add2);
        }
        w.layer_norm(&e.final_norm);
        if let Some(c) = &e.classifier {
            logits_zp = c.output_zero_point;
            w.linear(c);
        }
    }
    if let Some(d) = &model.decoder {
        let b0 = d
            .blocks
            .first()
            .ok_or(crate::error::bad_blob("decoder without blocks"))?;
        let width = d.head.in_features;
        if width == 0 || d.embedding.len() % width != 0 || d.positions.len() % width != 0 {
            return Err(crate::error::bad_blob(
                "decoder tables do not match the width",
            ));
        }
        dec_dims = DecoderDims {
            layers: d.blocks.len(),
            width,
            heads: b0.attention.heads,
            mlp: b0.mlp.fc1.out_features,
            vocab: d.embedding.len() / width,
            max_positions: d.positions.len() / width,
            sinusoidal: d.sinusoidal,
            tied_head: d.tied,
            start_token: d.start_token,
            eos_token: d.eos_token,
            pad_token: d.pad_token,
            kv_heads: 0,
        };
        let emb = w.i8s(tag::TOKEN_EMBED, &d.embedding);
        w.i8s(tag::POSITIONS, &d.positions);
        w.residual(&d.position_add);
        for b in &d.blocks {
            w.i32s(tag::BLOCK, &[0, b.cross.is_some() as i32]);
            w.layer_norm(&b.ln1);
            w.linear(&b.qkv);
            w.attention(&b.attention);
            w.linear(&b.proj);
            w.residual(&b.add1);
            if let Some(c) = &b.cross {
                w.cross(c);
            }
            w.layer_norm(&b.ln2);
            w.mlp(&b.mlp);
            w.residual(&b.add2);
        }
        w.layer_norm(&d.final_norm);
        logits_zp = d.head.output_zero_point;
        if d.tied {
            if d.head.weights != d.embedding {
                return Err(crate::error::bad_blob(
                    "tied LM head differs from the embedding",
                ));
            }
            let h = &d.head;
            w.i32s(
                tag::LIN_SHAPE,
                &[
                    h.in_features as i32,
                    h.out_features as i32,
                    h.output_zero_point,
                ],
            );
            w.alias(tag::LIN_W, emb);
            w.i32s(tag::LIN_B, &h.bias);
            w.i32s(tag::LIN_MUL, &h.multipliers);
            w.i8s(tag::LIN_SHIFT, &h.shifts);
        } else {
            w.linear(&d.head);
        }
    }
    let mut header = Header {
        kind,
        encoder: enc_dims,
        decoder: dec_dims,
        input_scale_bits: if model.encoder.is_some() {
            (model.input.scale as f32).to_bits()
        } else {
            0
        },
        input_zero_point: if model.encoder.is_some() {
            model.input.zero_point
        } else {
            0
        },
        logits_scale_bits: (model.logits.scale as f32).to_bits(),
        logits_zero_point: logits_zp,
        buffers: BufferSizes::default(),
    };
    header.buffers = header.required_buffers()?;
    finish_checked(w, header, vocab)
}

/// The vocabulary sections, the header's buffer sizes checked to fit 32 bits, the layout,
/// and the self-check parse (shared by [`write_with_vocab`] and [`write_llama`]).
fn finish_checked(
    mut w: Writer,
    header: Header,
    vocab: Option<&[Option<&str>]>,
) -> Result<Vec<u8>, Error> {
    let kind = header.kind;
    if let Some(v) = vocab {
        let mut offsets = Vec::with_capacity(v.len() + 1);
        let mut text = Vec::new();
        offsets.push(0i32);
        for e in v {
            text.extend(e.unwrap_or("").bytes().map(|b| b as i8));
            fits_u32(text.len())?;
            offsets.push(
                i32::try_from(text.len())
                    .map_err(|_| crate::error::bad_blob("vocabulary text too long"))?,
            );
        }
        w.i32s(tag::VOCAB_OFFSETS, &offsets);
        w.i8s(tag::VOCAB_BYTES, &text);
    }
    let b = &header.buffers;
    for v in [
        b.x, b.normed, b.wide, b.scores, b.patch, b.logits, b.kv, b.cross_kv,
    ] {
        fits_u32(v)?;
    }
    let bytes = w.finish(kind, header.to_words())?;
    // Self-check: what we write must parse (the blob is copied to aligned storage first).
    let words: Vec<u32> = bytes
        .chunks(4)
        .map(|c| {
            let mut a = [0u8; 4];
            a[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(a)
        })
        .collect();
    Blob::parse(&bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()])?;
    Ok(bytes)
}

/// Serialize a Llama ([`crate::llama::LlamaParams`]) into blob bytes, with the optional
/// vocabulary sections (the text of each token id, `None` for an id without text), then
/// parse the result as a self-check. Deterministic: same parameters, same bytes.
///
/// # Errors
///
/// [`Error::BadBlob`] for a tied classifier whose weights differ from the embedding, a
/// vocabulary of the wrong length; any error [`Blob::parse`] finds in the result.
pub fn write_llama(
    model: &crate::llama::LlamaParams,
    vocab: Option<&[Option<&str>]>,
) -> Result<Vec<u8>, Error> {
    let d = model.dims;
    let mut w = Writer {
        entries: Vec::new(),
    };
    let emb = w.i8s(tag::TOKEN_EMBED, &model.embedding);
    let r = &model.rope;
    let style = match model.style {
        RopeStyle::Interleaved => 0,
        RopeStyle::HalfSplit => 1,
    };
    w.i32s(
        tag::ROPE_SHAPE,
        &[r.head_dim as i32, r.positions as i32, style],
    );
    let as_u16 = |v: &[i16]| v.iter().map(|&x| x as u16).collect::<Vec<u16>>();
    w.u16s(tag::ROPE_COS, &as_u16(&r.cos));
    w.u16s(tag::ROPE_SIN, &as_u16(&r.sin));
    for b in &model.blocks {
        w.i32s(tag::BLOCK, &[LLAMA_BLOCK_MARKER, b.kv_heads as i32]);
        w.rms_norm(&b.rms1);
        w.linear(&b.qkv);
        w.i32s(
            tag::ROPE_REQUANT,
            &[
                b.rope_q.multiplier,
                b.rope_q.shift as i32,
                b.rope_k.multiplier,
                b.rope_k.shift as i32,
            ],
        );
        w.attention(&b.attention);
        w.linear(&b.proj);
        w.residual(&b.add1);
        w.rms_norm(&b.rms2);
        w.linear(&b.w1);
        w.linear(&b.w3);
        w.i32s(tag::SILU, &b.swiglu.silu);
        w.i32s(
            tag::SWIGLU_SCALARS,
            &[
                b.swiglu.up_zero_point,
                b.swiglu.requant.multiplier,
                b.swiglu.requant.shift as i32,
                b.swiglu.output_zero_point,
            ],
        );
        w.linear(&b.w2);
        w.residual(&b.add2);
    }
    w.rms_norm(&model.final_norm);
    let h = &model.head;
    if model.tied {
        if h.weights != model.embedding {
            return Err(crate::error::bad_blob(
                "tied LM head differs from the embedding",
            ));
        }
        w.i32s(
            tag::LIN_SHAPE,
            &[
                h.in_features as i32,
                h.out_features as i32,
                h.output_zero_point,
            ],
        );
        w.alias(tag::LIN_W, emb);
        w.i32s(tag::LIN_B, &h.bias);
        w.i32s(tag::LIN_MUL, &h.multipliers);
        w.i8s(tag::LIN_SHIFT, &h.shifts);
    } else {
        w.linear(h);
    }
    let mut header = Header {
        kind: ModelKind::Llama,
        encoder: EncoderDims::default(),
        decoder: DecoderDims {
            layers: d.layers,
            width: d.width,
            heads: d.heads,
            mlp: d.hidden,
            vocab: d.vocab,
            max_positions: d.max_positions,
            sinusoidal: false,
            tied_head: model.tied,
            start_token: model.bos,
            eos_token: model.eos,
            pad_token: NO_TOKEN,
            kv_heads: d.kv_heads,
        },
        input_scale_bits: 0,
        input_zero_point: 0,
        logits_scale_bits: (model.logits.scale as f32).to_bits(),
        logits_zero_point: h.output_zero_point,
        buffers: BufferSizes::default(),
    };
    header.buffers = header.required_buffers()?;
    finish_checked(w, header, vocab)
}

impl Header {
    /// The input image scale (host only).
    pub fn input_scale(&self) -> f32 {
        f32::from_bits(self.input_scale_bits)
    }

    /// The logits scale (host only).
    pub fn logits_scale(&self) -> f32 {
        f32::from_bits(self.logits_scale_bits)
    }
}
