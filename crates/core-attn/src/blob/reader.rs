//! Reading sections in order: the cursor over the section table and the reader of each
//! part (LayerNorm, linear, attention, …, whole blocks).

use super::*;

/// Element type of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Elem {
    I8 = 1,
    U16 = 2,
    I32 = 3,
}

impl Elem {
    pub(super) const fn size(self) -> usize {
        match self {
            Elem::I8 => 1,
            Elem::U16 => 2,
            Elem::I32 => 4,
        }
    }
}

/// Role tags of the sections.
pub(super) mod tag {
    pub const LN_GAMMA: u16 = 0x10;
    pub const LN_BETA: u16 = 0x11;
    pub const LN_SCALARS: u16 = 0x12;
    pub const LIN_SHAPE: u16 = 0x20;
    pub const LIN_W: u16 = 0x21;
    pub const LIN_B: u16 = 0x22;
    pub const LIN_MUL: u16 = 0x23;
    pub const LIN_SHIFT: u16 = 0x24;
    pub const ATT_SCALARS: u16 = 0x30;
    pub const EXP_HI: u16 = 0x31;
    pub const EXP_LO: u16 = 0x32;
    pub const RESIDUAL: u16 = 0x40;
    pub const LUT: u16 = 0x50;
    pub const TOKEN_EMBED: u16 = 0x60;
    pub const POSITIONS: u16 = 0x61;
    pub const CLASS_TOKEN: u16 = 0x62;
    pub const BLOCK: u16 = 0x70;
    pub const VOCAB_OFFSETS: u16 = 0x80;
    pub const VOCAB_BYTES: u16 = 0x81;
    pub const ROPE_SHAPE: u16 = 0x90;
    pub const ROPE_COS: u16 = 0x91;
    pub const ROPE_SIN: u16 = 0x92;
    pub const ROPE_REQUANT: u16 = 0x93;
    pub const RMS_GAMMA: u16 = 0x94;
    pub const RMS_SCALARS: u16 = 0x95;
    pub const SILU: u16 = 0x96;
    pub const SWIGLU_SCALARS: u16 = 0x97;
}

pub(super) const fn word(bytes: &[u8], offset: usize) -> Result<u32, Error> {
    let Some(end) = offset.checked_add(4) else {
        return Err(crate::error::bad_blob("offset overflow"));
    };
    if end > bytes.len() {
        return Err(crate::error::bad_blob("blob truncated"));
    }
    Ok(u32::from_le_bytes([
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ]))
}

/// Reads sections in order from the table.
pub(super) struct Cursor<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) table: usize,
    pub(super) count: usize,
    pub(super) next: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn take(&mut self, want_tag: u16, elem: Elem) -> Result<&'a [u8], Error> {
        if self.next >= self.count {
            return Err(crate::error::bad_blob(
                "fewer sections than the model needs",
            ));
        }
        let e = self.table + self.next * ENTRY_BYTES;
        self.next += 1;
        // One bounds check for the whole entry (`parse` checked the table fits the blob, so
        // this never fails on a parsed blob: the message is `word`'s).
        let Some(entry) = self
            .bytes
            .get(e..)
            .and_then(|b| b.first_chunk::<ENTRY_BYTES>())
        else {
            return Err(crate::error::bad_blob("blob truncated"));
        };
        let w = |i: usize| u32::from_le_bytes([entry[i], entry[i + 1], entry[i + 2], entry[i + 3]]);
        let (te, offset, count) = (w(0), w(4) as usize, w(8) as usize);
        let index = self.next - 1;
        if (te & 0xffff) as u16 != want_tag {
            return Err(BlobError::SectionTag {
                index,
                expected: want_tag,
                found: (te & 0xffff) as u16,
            }
            .into());
        }
        if (te >> 16) as u16 != elem as u16 {
            return Err(BlobError::SectionElem {
                index,
                expected: elem as u16,
                found: (te >> 16) as u16,
            }
            .into());
        }
        if offset % SECTION_ALIGN != 0 {
            return Err(BlobError::SectionAlignment { index, offset }.into());
        }
        let len = count
            .checked_mul(elem.size())
            .ok_or(crate::error::bad_blob("section size overflow"))?;
        let end = offset
            .checked_add(len)
            .ok_or(crate::error::bad_blob("section size overflow"))?;
        self.bytes.get(offset..end).ok_or(
            BlobError::SectionBounds {
                index,
                end,
                len: self.bytes.len(),
            }
            .into(),
        )
    }

    /// The tag of the next section (without consuming it).
    pub(super) fn peek_tag(&self) -> Result<u16, Error> {
        Ok((word(self.bytes, self.table + self.next * ENTRY_BYTES)? & 0xffff) as u16)
    }

    pub(super) fn i8s(&mut self, tag: u16) -> Result<&'a [i8], Error> {
        let b = self.take(tag, Elem::I8)?;
        bytemuck::try_cast_slice(b).map_err(|_| crate::error::bad_blob("int8 section cast failed"))
    }

    pub(super) fn i32s(&mut self, tag: u16) -> Result<&'a [i32], Error> {
        let b = self.take(tag, Elem::I32)?;
        bytemuck::try_cast_slice(b)
            .map_err(|_| crate::error::bad_blob("blob not 4-byte aligned in memory"))
    }

    pub(super) fn u16s(&mut self, tag: u16) -> Result<&'a [u16], Error> {
        let b = self.take(tag, Elem::U16)?;
        bytemuck::try_cast_slice(b)
            .map_err(|_| crate::error::bad_blob("blob not 2-byte aligned in memory"))
    }

    pub(super) fn scalars<const N: usize>(&mut self, tag: u16) -> Result<[i32; N], Error> {
        let s = self.i32s(tag)?;
        s.try_into()
            .map_err(|_| crate::error::bad_blob("scalar section has the wrong length"))
    }

    pub(super) fn usize_of(v: i32) -> Result<usize, Error> {
        usize::try_from(v).map_err(|_| crate::error::bad_blob("negative dimension"))
    }

    pub(super) fn shift(v: i32) -> Result<i8, Error> {
        i8::try_from(v).map_err(|_| crate::error::bad_blob("shift outside int8"))
    }

    pub(super) fn requant(m: i32, s: i32) -> Result<Requant, Error> {
        Ok(Requant {
            multiplier: m,
            shift: Self::shift(s)?,
        })
    }

    /// The one place a [`LayerNorm`] is read (see [`write_layer_norm`] for the writer).
    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    pub(super) fn layer_norm(&mut self) -> Result<LayerNorm<'a>, Error> {
        let gamma = self.i32s(tag::LN_GAMMA)?;
        let beta = self.i32s(tag::LN_BETA)?;
        let [eps_lo, eps_hi, output_zero_point] = self.scalars::<3>(tag::LN_SCALARS)?;
        if beta.len() != gamma.len() {
            return Err(crate::error::bad_blob(
                "LayerNorm gamma and beta lengths differ",
            ));
        }
        if !(-128..=127).contains(&output_zero_point) {
            return Err(crate::error::bad_blob("LayerNorm zero point outside int8"));
        }
        Ok(LayerNorm {
            width: gamma.len(),
            gamma,
            beta,
            epsilon: (eps_lo as u32 as u64) | ((eps_hi as u32 as u64) << 32),
            output_zero_point,
        })
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    pub(super) fn linear(&mut self) -> Result<Linear<'a>, Error> {
        let [in_f, out_f, zp] = self.scalars::<3>(tag::LIN_SHAPE)?;
        Ok(Linear {
            in_features: Self::usize_of(in_f)?,
            out_features: Self::usize_of(out_f)?,
            weights: self.i8s(tag::LIN_W)?,
            bias: self.i32s(tag::LIN_B)?,
            requant: ChannelRequant {
                multipliers: self.i32s(tag::LIN_MUL)?,
                shifts: self.i8s(tag::LIN_SHIFT)?,
            },
            output_zero_point: zp,
        })
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    pub(super) fn attention(&mut self) -> Result<Attention<'a>, Error> {
        let [heads, head_dim, sm, ss, om, os, zp] = self.scalars::<7>(tag::ATT_SCALARS)?;
        let (heads, head_dim) = (Self::usize_of(heads)?, Self::usize_of(head_dim)?);
        // Bound the width here: `Attention::width()` multiplies without a check.
        if heads
            .checked_mul(head_dim)
            .is_none_or(|w| w == 0 || w > crate::MAX_WIDTH)
        {
            return Err(crate::error::bad_blob("attention width out of range"));
        }
        let hi: &[u16; 256] = self
            .u16s(tag::EXP_HI)?
            .try_into()
            .map_err(|_| crate::error::bad_blob("exp table is not 256 entries"))?;
        let lo: &[u16; 256] = self
            .u16s(tag::EXP_LO)?
            .try_into()
            .map_err(|_| crate::error::bad_blob("exp table is not 256 entries"))?;
        Ok(Attention {
            heads,
            head_dim,
            score_to_index: Self::requant(sm, ss)?,
            exp: ExpTable::new(hi, lo)?,
            output: Self::requant(om, os)?,
            output_zero_point: zp,
        })
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    pub(super) fn residual(&mut self) -> Result<ResidualAdd, Error> {
        let [am, ash, az, bm, bsh, bz, oz] = self.scalars::<7>(tag::RESIDUAL)?;
        Ok(ResidualAdd {
            a_scale: Self::requant(am, ash)?,
            a_zero_point: az,
            b_scale: Self::requant(bm, bsh)?,
            b_zero_point: bz,
            output_zero_point: oz,
        })
    }

    pub(super) fn lut(&mut self) -> Result<Lut<'a>, Error> {
        let t: &[i8; 256] = self
            .i8s(tag::LUT)?
            .try_into()
            .map_err(|_| crate::error::bad_blob("lookup table is not 256 entries"))?;
        Ok(Lut::new(t))
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    pub(super) fn mlp(&mut self) -> Result<Mlp<'a>, Error> {
        Ok(Mlp {
            fc1: self.linear()?,
            activation: self.lut()?,
            fc2: self.linear()?,
        })
    }

    /// The one place an [`RmsNorm`] is read (the writer is `Writer::rms_norm`).
    pub(super) fn rms_norm(&mut self) -> Result<RmsNorm<'a>, Error> {
        let gamma = self.i32s(tag::RMS_GAMMA)?;
        let [eps_lo, eps_hi, input_zero_point, output_zero_point] =
            self.scalars::<4>(tag::RMS_SCALARS)?;
        Ok(RmsNorm {
            width: gamma.len(),
            gamma,
            epsilon: (eps_lo as u32 as u64) | ((eps_hi as u32 as u64) << 32),
            input_zero_point,
            output_zero_point,
        })
    }

    /// The model's RoPE table and pairing convention.
    pub(super) fn rope_table(&mut self) -> Result<(RopeTable<'a>, RopeStyle), Error> {
        let [head_dim, positions, style] = self.scalars::<3>(tag::ROPE_SHAPE)?;
        let style = match style {
            0 => RopeStyle::Interleaved,
            1 => RopeStyle::HalfSplit,
            _ => return Err(crate::error::bad_blob("unknown rope pairing convention")),
        };
        let as_i16 = |v: &'a [u16]| -> Result<&'a [i16], Error> {
            bytemuck::try_cast_slice(v)
                .map_err(|_| crate::error::bad_blob("rope table cast failed"))
        };
        let cos = as_i16(self.u16s(tag::ROPE_COS)?)?;
        let sin = as_i16(self.u16s(tag::ROPE_SIN)?)?;
        Ok((
            RopeTable {
                head_dim: Self::usize_of(head_dim)?,
                positions: Self::usize_of(positions)?,
                cos,
                sin,
            },
            style,
        ))
    }

    pub(super) fn llama_block(
        &mut self,
        table: RopeTable<'a>,
        style: RopeStyle,
    ) -> Result<LlamaBlock<'a>, Error> {
        let [marker, kv_heads] = self.scalars::<2>(tag::BLOCK)?;
        if marker != LLAMA_BLOCK_MARKER {
            return Err(crate::error::bad_blob("not a llama block"));
        }
        let rms1 = self.rms_norm()?;
        let qkv = self.linear()?;
        let [qm, qs, km, ks] = self.scalars::<4>(tag::ROPE_REQUANT)?;
        let rope = |m, s| -> Result<Rope<'a>, Error> {
            Ok(Rope {
                table,
                style,
                requant: Self::requant(m, s)?,
            })
        };
        let (rope_q, rope_k) = (rope(qm, qs)?, rope(km, ks)?);
        let attention = self.attention()?;
        let proj = self.linear()?;
        let add1 = self.residual()?;
        let rms2 = self.rms_norm()?;
        let w1 = self.linear()?;
        let w3 = self.linear()?;
        let silu: &[i32; 256] = self
            .i32s(tag::SILU)?
            .try_into()
            .map_err(|_| crate::error::bad_blob("silu table is not 256 entries"))?;
        let [up_zero_point, sm, ss, output_zero_point] = self.scalars::<4>(tag::SWIGLU_SCALARS)?;
        Ok(LlamaBlock {
            rms1,
            qkv,
            rope_q,
            rope_k,
            kv_heads: Self::usize_of(kv_heads)?,
            attention,
            proj,
            add1,
            rms2,
            w1,
            w3,
            swiglu: SwiGlu {
                silu,
                up_zero_point,
                requant: Self::requant(sm, ss)?,
                output_zero_point,
            },
            w2: self.linear()?,
            add2: self.residual()?,
        })
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    pub(super) fn encoder_block(&mut self) -> Result<EncoderBlock<'a>, Error> {
        let [placement, _] = self.scalars::<2>(tag::BLOCK)?;
        let placement = match placement {
            0 => NormPlacement::Pre,
            1 => NormPlacement::Post,
            _ => return Err(crate::error::bad_blob("unknown norm placement")),
        };
        Ok(EncoderBlock {
            placement,
            ln1: self.layer_norm()?,
            qkv: self.linear()?,
            attention: self.attention()?,
            proj: self.linear()?,
            add1: self.residual()?,
            ln2: self.layer_norm()?,
            mlp: self.mlp()?,
            add2: self.residual()?,
        })
    }

    #[inline(never)] // load-time reader: one copy, not one per caller (code size)
    pub(super) fn decoder_block(&mut self) -> Result<DecoderBlock<'a>, Error> {
        let [_, has_cross] = self.scalars::<2>(tag::BLOCK)?;
        let ln1 = self.layer_norm()?;
        let qkv = self.linear()?;
        let attention = self.attention()?;
        let proj = self.linear()?;
        let add1 = self.residual()?;
        let cross = match has_cross {
            0 => None,
            1 => Some(CrossAttention {
                ln: self.layer_norm()?,
                q: self.linear()?,
                kv: self.linear()?,
                attention: self.attention()?,
                proj: self.linear()?,
                add: self.residual()?,
            }),
            _ => return Err(crate::error::bad_blob("cross-attention flag not 0 or 1")),
        };
        Ok(DecoderBlock {
            ln1,
            qkv,
            attention,
            proj,
            add1,
            cross,
            ln2: self.layer_norm()?,
            mlp: self.mlp()?,
            add2: self.residual()?,
        })
    }
}

/// The ViT front end: patch embedding, class token, learned positions.
#[derive(Debug, Clone, Copy)]
pub struct VitEmbedding<'a> {
    /// Patch projection and image geometry.
    pub patch: PatchEmbedding<'a>,
    /// Class token, already in the patch embedding's quantization (`D` values).
    pub class_token: &'a [i8],
    /// Learned positions `[tokens][D]`.
    pub positions: &'a [i8],
    /// `embedding + position`.
    pub position_add: ResidualAdd,
}

/// The decoder front end: token embedding and positions.
#[derive(Debug, Clone, Copy)]
pub struct TokenEmbedding<'a> {
    /// `[vocab][D]` int8 table (also the tied LM head's weights).
    pub table: &'a [i8],
    /// `[max_positions][D]` position table.
    pub positions: &'a [i8],
    /// `embedding + position`.
    pub position_add: ResidualAdd,
}

pub(super) fn check(ok: bool, what: &'static str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(crate::error::bad_blob(what))
    }
}

/// `found == expected`, else [`BlobError::Mismatch`] naming `what`.
pub(super) fn same(what: &'static str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(BlobError::Mismatch {
            what,
            expected,
            found,
        }
        .into())
    }
}

#[inline(never)] // load-time reader: one copy, not one per caller (code size)
pub(super) fn read_vit_embedding<'a>(
    c: &mut Cursor<'a>,
    e: &EncoderDims,
) -> Result<VitEmbedding<'a>, Error> {
    Ok(VitEmbedding {
        patch: PatchEmbedding {
            channels: e.channels,
            height: e.height,
            width: e.image_width,
            patch: e.patch,
            projection: c.linear()?,
        },
        class_token: c.i8s(tag::CLASS_TOKEN)?,
        positions: c.i8s(tag::POSITIONS)?,
        position_add: c.residual()?,
    })
}

#[inline(never)] // load-time reader: one copy, not one per caller (code size)
pub(super) fn read_token_embedding<'a>(c: &mut Cursor<'a>) -> Result<TokenEmbedding<'a>, Error> {
    Ok(TokenEmbedding {
        table: c.i8s(tag::TOKEN_EMBED)?,
        positions: c.i8s(tag::POSITIONS)?,
        position_add: c.residual()?,
    })
}
