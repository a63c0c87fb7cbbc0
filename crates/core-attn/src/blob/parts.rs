//! Reading the parts of a **parsed** blob: what the accessors of [`Blob`] use.
//!
//! Every part of a [`Blob`] passed the checks of [`Cursor`] (the walk of [`Blob::parse`]) or
//! of [`super::Embedded`] (the same checks, by the compiler): tags, element types, bounds,
//! alignment, lengths and the kernels' `validate()`. Running them again at every access
//! would only repeat them (and, in a firmware whose blob the compiler checked, link a second
//! copy of them). This reader reads the same sections in the same order and keeps only what
//! reading needs without a panic: a section that is not where the table says (impossible for
//! a parsed blob) reads as empty, which every kernel refuses with a shape error, and the
//! fixed-size tables (exp, lookup) as an error.
//!
//! The unit test below compares every part this reader gives with [`Cursor`]'s for a
//! shipped blob of each kind.

use super::*;

/// A section of a parsed blob that is not where its table says (never, for a parsed blob).
fn unreadable() -> Error {
    crate::error::bad_blob("section unreadable")
}

/// Reads the parts of a parsed blob in order, from section `next` on.
pub(super) struct Parts<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) table: usize,
    pub(super) next: usize,
}

impl<'a> Parts<'a> {
    /// The bytes of the next section (`size` bytes per element); empty if they are not in
    /// the blob.
    fn take(&mut self, size: usize) -> &'a [u8] {
        let e = self
            .next
            .checked_mul(ENTRY_BYTES)
            .and_then(|e| e.checked_add(self.table));
        self.next = self.next.wrapping_add(1);
        let Some(entry) = e
            .and_then(|e| self.bytes.get(e..))
            .and_then(|b| b.first_chunk::<ENTRY_BYTES>())
        else {
            return &[];
        };
        let w = |i: usize| u32::from_le_bytes([entry[i], entry[i + 1], entry[i + 2], entry[i + 3]]);
        let (offset, count) = (w(4) as usize, w(8) as usize);
        count
            .checked_mul(size)
            .and_then(|len| offset.checked_add(len))
            .and_then(|end| self.bytes.get(offset..end))
            .unwrap_or(&[])
    }

    pub(super) fn i8s(&mut self) -> &'a [i8] {
        bytemuck::try_cast_slice(self.take(1)).unwrap_or(&[])
    }

    fn i32s(&mut self) -> &'a [i32] {
        bytemuck::try_cast_slice(self.take(4)).unwrap_or(&[])
    }

    fn u16s(&mut self) -> &'a [u16] {
        bytemuck::try_cast_slice(self.take(2)).unwrap_or(&[])
    }

    fn scalars<const N: usize>(&mut self) -> [i32; N] {
        self.i32s().try_into().unwrap_or([0; N])
    }

    fn requant(multiplier: i32, shift: i32) -> Requant {
        Requant {
            multiplier,
            shift: shift as i8,
        }
    }

    #[inline(never)] // one copy, not one per caller (code size)
    pub(super) fn layer_norm(&mut self) -> LayerNorm<'a> {
        let gamma = self.i32s();
        let beta = self.i32s();
        let [eps_lo, eps_hi, output_zero_point] = self.scalars::<3>();
        LayerNorm {
            width: gamma.len(),
            gamma,
            beta,
            epsilon: (eps_lo as u32 as u64) | ((eps_hi as u32 as u64) << 32),
            output_zero_point,
        }
    }

    #[inline(never)] // one copy, not one per caller (code size)
    pub(super) fn linear(&mut self) -> Linear<'a> {
        let [in_f, out_f, zp] = self.scalars::<3>();
        Linear {
            in_features: in_f as usize,
            out_features: out_f as usize,
            weights: self.i8s(),
            bias: self.i32s(),
            requant: ChannelRequant {
                multipliers: self.i32s(),
                shifts: self.i8s(),
            },
            output_zero_point: zp,
        }
    }

    #[inline(never)] // one copy, not one per caller (code size)
    fn attention(&mut self) -> Result<Attention<'a>, Error> {
        let [heads, head_dim, sm, ss, om, os, zp] = self.scalars::<7>();
        let hi: &[u16; 256] = self.u16s().try_into().map_err(|_| unreadable())?;
        let lo: &[u16; 256] = self.u16s().try_into().map_err(|_| unreadable())?;
        Ok(Attention {
            heads: heads as usize,
            head_dim: head_dim as usize,
            score_to_index: Self::requant(sm, ss),
            exp: ExpTable { hi, lo },
            output: Self::requant(om, os),
            output_zero_point: zp,
        })
    }

    fn residual(&mut self) -> ResidualAdd {
        let [am, ash, az, bm, bsh, bz, oz] = self.scalars::<7>();
        ResidualAdd {
            a_scale: Self::requant(am, ash),
            a_zero_point: az,
            b_scale: Self::requant(bm, bsh),
            b_zero_point: bz,
            output_zero_point: oz,
        }
    }

    fn mlp(&mut self) -> Result<Mlp<'a>, Error> {
        let fc1 = self.linear();
        let table: &[i8; 256] = self.i8s().try_into().map_err(|_| unreadable())?;
        Ok(Mlp {
            fc1,
            activation: Lut::new(table),
            fc2: self.linear(),
        })
    }

    pub(super) fn rms_norm(&mut self) -> RmsNorm<'a> {
        let gamma = self.i32s();
        let [eps_lo, eps_hi, input_zero_point, output_zero_point] = self.scalars::<4>();
        RmsNorm {
            width: gamma.len(),
            gamma,
            epsilon: (eps_lo as u32 as u64) | ((eps_hi as u32 as u64) << 32),
            input_zero_point,
            output_zero_point,
        }
    }

    pub(super) fn rope_table(&mut self) -> (RopeTable<'a>, RopeStyle) {
        let [head_dim, positions, style] = self.scalars::<3>();
        let style = if style == 1 {
            RopeStyle::HalfSplit
        } else {
            RopeStyle::Interleaved
        };
        let cos = bytemuck::try_cast_slice(self.u16s()).unwrap_or(&[]);
        let sin = bytemuck::try_cast_slice(self.u16s()).unwrap_or(&[]);
        (
            RopeTable {
                head_dim: head_dim as usize,
                positions: positions as usize,
                cos,
                sin,
            },
            style,
        )
    }

    pub(super) fn llama_block(
        &mut self,
        table: RopeTable<'a>,
        style: RopeStyle,
    ) -> Result<LlamaBlock<'a>, Error> {
        let [_, kv_heads] = self.scalars::<2>();
        let rms1 = self.rms_norm();
        let qkv = self.linear();
        let [qm, qs, km, ks] = self.scalars::<4>();
        let rope = |m, s| Rope {
            table,
            style,
            requant: Self::requant(m, s),
        };
        let attention = self.attention()?;
        let proj = self.linear();
        let add1 = self.residual();
        let rms2 = self.rms_norm();
        let w1 = self.linear();
        let w3 = self.linear();
        let silu: &[i32; 256] = self.i32s().try_into().map_err(|_| unreadable())?;
        let [up_zero_point, sm, ss, output_zero_point] = self.scalars::<4>();
        Ok(LlamaBlock {
            rms1,
            qkv,
            rope_q: rope(qm, qs),
            rope_k: rope(km, ks),
            kv_heads: kv_heads as usize,
            attention,
            proj,
            add1,
            rms2,
            w1,
            w3,
            swiglu: SwiGlu {
                silu,
                up_zero_point,
                requant: Self::requant(sm, ss),
                output_zero_point,
            },
            w2: self.linear(),
            add2: self.residual(),
        })
    }

    #[inline(never)] // one copy, not one per caller (code size)
    pub(super) fn encoder_block(&mut self) -> Result<EncoderBlock<'a>, Error> {
        let [placement, _] = self.scalars::<2>();
        Ok(EncoderBlock {
            placement: if placement == 1 {
                NormPlacement::Post
            } else {
                NormPlacement::Pre
            },
            ln1: self.layer_norm(),
            qkv: self.linear(),
            attention: self.attention()?,
            proj: self.linear(),
            add1: self.residual(),
            ln2: self.layer_norm(),
            mlp: self.mlp()?,
            add2: self.residual(),
        })
    }

    pub(super) fn decoder_block(&mut self) -> Result<DecoderBlock<'a>, Error> {
        let [_, has_cross] = self.scalars::<2>();
        let ln1 = self.layer_norm();
        let qkv = self.linear();
        let attention = self.attention()?;
        let proj = self.linear();
        let add1 = self.residual();
        let cross = if has_cross == 1 {
            let ln = self.layer_norm();
            let q = self.linear();
            let kv = self.linear();
            let attention = self.attention()?;
            let proj = self.linear();
            Some(CrossAttention {
                ln,
                q,
                kv,
                attention,
                proj,
                add: self.residual(),
            })
        } else {
            None
        };
        let ln2 = self.layer_norm();
        let mlp = self.mlp()?;
        Ok(DecoderBlock {
            ln1,
            qkv,
            attention,
            proj,
            add1,
            cross,
            ln2,
            mlp,
            add2: self.residual(),
        })
    }

    #[inline(never)] // one copy, not one per caller (code size)
    pub(super) fn vit_embedding(&mut self, e: &EncoderDims) -> VitEmbedding<'a> {
        VitEmbedding {
            patch: PatchEmbedding {
                channels: e.channels,
                height: e.height,
                width: e.image_width,
                patch: e.patch,
                projection: self.linear(),
            },
            class_token: self.i8s(),
            positions: self.i8s(),
            position_add: self.residual(),
        }
    }

    pub(super) fn token_embedding(&mut self) -> TokenEmbedding<'a> {
        TokenEmbedding {
            table: self.i8s(),
            positions: self.i8s(),
            position_add: self.residual(),
        }
    }

    pub(super) fn vocab(&mut self) -> Vocab<'a> {
        let offsets = self.i32s();
        let bytes: &[u8] = bytemuck::cast_slice(self.i8s());
        Vocab::from_parts(offsets, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::{format, string::String, vec};

    /// Every part [`Parts`] reads from a parsed blob is the part [`Cursor`] read and checked
    /// (compared as `Debug` text: every field, every slice's contents), for every shipped
    /// blob of each kind, at every part's position in the layout. Guards against a reader
    /// that differs from the checked one: with `b_zero_point: az` in `Parts::residual`, this
    /// fails.
    #[test]
    #[cfg_attr(miri, ignore = "whole shipped blobs: minutes under Miri")]
    fn parts_are_the_checked_parts() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut compared = 0;
        for path in [
            "models/vit-mnist.tatn",
            "models/char-lm.tatn",
            "models/digit-reader.tatn",
            "boards/common/models/encdec-tiny.tatn",
            "boards/common/models/llama2c-tiny.tatn",
        ] {
            let file = std::fs::read(root.join(path)).unwrap();
            let mut words = vec![0u32; file.len().div_ceil(4)];
            let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
            buf[..file.len()].copy_from_slice(&file);
            let b = Blob::parse(&buf[..file.len()]).unwrap();
            let (l, h) = (b.layout(), *b.header());
            let cursor = |at| Cursor {
                bytes: b.bytes(),
                table: b.table_and_count().0,
                count: b.table_and_count().1,
                next: at,
            };
            let parts = |at| Parts {
                bytes: b.bytes(),
                table: b.table_and_count().0,
                next: at,
            };
            let mut same = |a: String, b: String| {
                assert_eq!(a, b, "{path}");
                compared += 1;
            };
            if h.kind.has_encoder() {
                let e = h.encoder;
                same(
                    format!(
                        "{:?}",
                        read_vit_embedding(&mut cursor(l.vit_embed), &e).unwrap()
                    ),
                    format!("{:?}", parts(l.vit_embed).vit_embedding(&e)),
                );
                for i in 0..e.layers {
                    let at = l.enc_blocks + i * l.enc_block_sections;
                    same(
                        format!("{:?}", cursor(at).encoder_block().unwrap()),
                        format!("{:?}", parts(at).encoder_block().unwrap()),
                    );
                }
                same(
                    format!("{:?}", cursor(l.enc_final_ln).layer_norm().unwrap()),
                    format!("{:?}", parts(l.enc_final_ln).layer_norm()),
                );
            }
            if h.kind == ModelKind::VitClassifier {
                same(
                    format!("{:?}", cursor(l.classifier).linear().unwrap()),
                    format!("{:?}", parts(l.classifier).linear()),
                );
            }
            if h.kind.has_decoder() {
                same(
                    format!(
                        "{:?}",
                        read_token_embedding(&mut cursor(l.dec_embed)).unwrap()
                    ),
                    format!("{:?}", parts(l.dec_embed).token_embedding()),
                );
                for i in 0..h.decoder.layers {
                    let at = l.dec_blocks + i * l.dec_block_sections;
                    same(
                        format!("{:?}", cursor(at).decoder_block().unwrap()),
                        format!("{:?}", parts(at).decoder_block().unwrap()),
                    );
                }
                same(
                    format!("{:?}", cursor(l.dec_final_ln).layer_norm().unwrap()),
                    format!("{:?}", parts(l.dec_final_ln).layer_norm()),
                );
            }
            if h.kind == ModelKind::Llama {
                let (t, s) = cursor(l.rope).rope_table().unwrap();
                same(
                    format!("{:?}", (t, s)),
                    format!("{:?}", parts(l.rope).rope_table()),
                );
                for i in 0..h.decoder.layers {
                    let at = l.dec_blocks + i * l.dec_block_sections;
                    same(
                        format!("{:?}", cursor(at).llama_block(t, s).unwrap()),
                        format!("{:?}", parts(at).llama_block(t, s).unwrap()),
                    );
                }
                same(
                    format!("{:?}", cursor(l.dec_final_ln).rms_norm().unwrap()),
                    format!("{:?}", parts(l.dec_final_ln).rms_norm()),
                );
                same(
                    format!("{:?}", cursor(l.dec_embed).i8s(tag::TOKEN_EMBED).unwrap()),
                    format!("{:?}", parts(l.dec_embed).i8s()),
                );
            }
            if h.kind.has_decoder() || h.kind == ModelKind::Llama {
                same(
                    format!("{:?}", cursor(l.head).linear().unwrap()),
                    format!("{:?}", parts(l.head).linear()),
                );
            }
            if let Some(at) = l.vocab {
                same(
                    format!("{:?}", read_vocab(&mut cursor(at)).unwrap()),
                    format!("{:?}", parts(at).vocab()),
                );
            }
        }
        assert!(compared > 20, "{compared} parts compared");
    }
}
