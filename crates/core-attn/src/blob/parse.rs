//! Parsing a whole blob: the preamble, the header, the walk over every section, and the
//! accessors of a parsed blob.

use super::*;

/// Section indices where each part of the model starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Layout {
    pub(super) vit_embed: usize,
    pub(super) enc_blocks: usize,
    pub(super) enc_block_sections: usize,
    pub(super) enc_final_ln: usize,
    pub(super) classifier: usize,
    pub(super) dec_embed: usize,
    pub(super) dec_blocks: usize,
    pub(super) dec_block_sections: usize,
    pub(super) dec_final_ln: usize,
    pub(super) head: usize,
    /// Section index of a Llama's RoPE table.
    pub(super) rope: usize,
    /// Section index of the vocabulary's offsets, if the blob carries one.
    pub(super) vocab: Option<usize>,
}

impl Layout {
    /// Every index zero (`Default::default()` in a `const`).
    pub(super) const EMPTY: Layout = Layout {
        vit_embed: 0,
        enc_blocks: 0,
        enc_block_sections: 0,
        enc_final_ln: 0,
        classifier: 0,
        dec_embed: 0,
        dec_blocks: 0,
        dec_block_sections: 0,
        dec_final_ln: 0,
        head: 0,
        rope: 0,
        vocab: None,
    };
}

/// The checks of [`Blob::parse_as`] before the header's Llama part: endianness, magic,
/// length, version, kind (which must be `K` unless `K` is 0), checksum, the header words and
/// [`Header::check_const`]. Returns the bytes the blob covers and the header. A `const fn`:
/// the compile-time check of an embedded blob runs the same code.
pub(super) const fn head<const K: u16>(bytes: &[u8]) -> Result<(&[u8], Header), Error> {
    if cfg!(target_endian = "big") {
        return Err(crate::error::bad_blob(
            "big-endian targets are not supported",
        ));
    }
    if bytes.len() < 4
        || bytes[0] != MAGIC[0]
        || bytes[1] != MAGIC[1]
        || bytes[2] != MAGIC[2]
        || bytes[3] != MAGIC[3]
    {
        return Err(Error::BadBlob(BlobError::BadMagic));
    }
    if bytes.len() < TABLE_COUNT_OFFSET + 4 {
        return Err(Error::BadBlob(BlobError::Truncated {
            what: "blob truncated inside the header",
            needed: TABLE_COUNT_OFFSET + 4,
            available: bytes.len(),
        }));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(Error::BadBlob(BlobError::Version {
            supported: VERSION,
            found: version,
        }));
    }
    let kind = tri!(ModelKind::from_u16(u16::from_le_bytes([
        bytes[6], bytes[7]
    ])));
    if K != 0 && kind as u16 != K {
        return Err(crate::error::bad_blob(
            "model kind differs from the one asked for",
        ));
    }
    let kind = const_kind::<K>(kind);
    let checksum = tri!(word(bytes, 8));
    let total = tri!(word(bytes, 12)) as usize;
    if total < TABLE_COUNT_OFFSET + 4 {
        return Err(Error::BadBlob(BlobError::Mismatch {
            what: "total length smaller than the header",
            expected: TABLE_COUNT_OFFSET + 4,
            found: total,
        }));
    }
    if total > bytes.len() {
        return Err(Error::BadBlob(BlobError::Truncated {
            what: "blob shorter than its header says (truncated)",
            needed: total,
            available: bytes.len(),
        }));
    }
    let bytes = bytes.split_at(total).0;
    let found = fnv1a32(bytes.split_at(12).1);
    if found != checksum {
        return Err(Error::BadBlob(BlobError::Checksum {
            expected: checksum,
            found,
        }));
    }
    let mut words = [0u32; HEADER_WORDS];
    let mut i = 0;
    while i < HEADER_WORDS {
        words[i] = tri!(word(bytes, PREAMBLE + 4 * i));
        i += 1;
    }
    let header = tri!(Header::from_words(kind, &words));
    tri!(header.check_const(kind));
    Ok((bytes, header))
}

/// The checks of [`Blob::parse_as`] after the header's: its buffer sizes against `required`
/// (what its dimensions need), the section count and that the table fits. Returns the blob
/// without its layout (the walk over the sections fills it in). A `const fn`, like [`head`].
pub(super) const fn table(
    bytes: &[u8],
    header: Header,
    required: BufferSizes,
) -> Result<Blob<'_>, Error> {
    let (r, b) = (required, header.buffers);
    let pairs = [
        (r.x, b.x),
        (r.normed, b.normed),
        (r.wide, b.wide),
        (r.scores, b.scores),
        (r.patch, b.patch),
        (r.logits, b.logits),
        (r.kv, b.kv),
        (r.cross_kv, b.cross_kv),
    ];
    let mut i = 0;
    while i < pairs.len() {
        let (expected, found) = pairs[i];
        if expected != found {
            return Err(Error::BadBlob(BlobError::Mismatch {
                what: "buffer sizes disagree with the dimensions",
                expected,
                found,
            }));
        }
        i += 1;
    }
    let count = tri!(word(bytes, TABLE_COUNT_OFFSET)) as usize;
    if count > MAX_SECTIONS {
        return Err(Error::BadBlob(BlobError::Mismatch {
            what: "too many sections",
            expected: MAX_SECTIONS,
            found: count,
        }));
    }
    let table = TABLE_COUNT_OFFSET + 4;
    if table + count * ENTRY_BYTES > bytes.len() {
        return Err(Error::BadBlob(BlobError::Truncated {
            what: "section table extends past the end of the blob",
            needed: table + count * ENTRY_BYTES,
            available: bytes.len(),
        }));
    }
    Ok(Blob {
        bytes,
        header,
        table,
        count,
        layout: Layout::EMPTY,
    })
}

/// A parsed, validated model blob borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Blob<'a> {
    bytes: &'a [u8],
    header: Header,
    table: usize,
    count: usize,
    layout: Layout,
}

impl<'a> Blob<'a> {
    /// Validate `bytes` and every parameter struct it describes (see the module docs).
    ///
    /// Bytes past the header's `total_len` are ignored (flash padding).
    ///
    /// # Errors
    ///
    /// [`Error::BadBlob`] naming the first check that failed (magic, version, kind, length,
    /// checksum, header, a section's tag, type, alignment or bounds, the vocabulary); the
    /// errors of the kernel structs' `validate()`.
    pub fn parse(bytes: &'a [u8]) -> Result<Blob<'a>, Error> {
        Self::parse_as::<0>(bytes)
    }

    /// [`Blob::parse`] for a blob that must be of kind `K` (`ModelKind as u16`; 0: any kind,
    /// which is `parse`). A blob of another kind is rejected as soon as its kind is read; with
    /// the kind known to the compiler, the checks of the other kinds' parts are not linked
    /// (the device API's `load`: a ViT-only firmware carries no decoder validation).
    pub(crate) fn parse_as<const K: u16>(bytes: &'a [u8]) -> Result<Blob<'a>, Error> {
        let (bytes, header) = head::<K>(bytes)?;
        let kind = const_kind::<K>(header.kind);
        header.check_llama(kind)?;
        let required = header.required_buffers_as(kind)?;
        let mut blob = table(bytes, header, required)?;
        blob.layout = blob.walk::<K>()?;
        Ok(blob)
    }

    /// A blob whose every check has passed ([`Blob::parse`], or the compile-time check of an
    /// embedded blob: `super::embedded`).
    pub(super) const fn from_parts(
        bytes: &'a [u8],
        header: Header,
        table: usize,
        count: usize,
        layout: Layout,
    ) -> Blob<'a> {
        Blob {
            bytes,
            header,
            table,
            count,
            layout,
        }
    }

    /// Byte offset of the section table and the number of sections.
    pub(super) const fn table_and_count(&self) -> (usize, usize) {
        (self.table, self.count)
    }

    /// The parts reader of the accessors, at section `at` (see `parts.rs`).
    fn parts(&self, at: usize) -> Parts<'a> {
        Parts {
            bytes: self.bytes,
            table: self.table,
            next: at,
        }
    }

    /// The bytes the blob covers.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Where each part starts.
    #[cfg(test)]
    pub(super) fn layout(&self) -> Layout {
        self.layout
    }

    fn cursor(&self, at: usize) -> Cursor<'a> {
        Cursor {
            bytes: self.bytes,
            table: self.table,
            count: self.count,
            next: at,
        }
    }

    /// Walk every section once, validating each part, and record where the parts start.
    fn walk<const K: u16>(&self) -> Result<Layout, Error> {
        let h = &self.header;
        let kind = const_kind::<K>(h.kind);
        let mut l = Layout::default();
        let mut c = self.cursor(0);
        if kind.has_encoder() {
            let e = &h.encoder;
            l.vit_embed = c.next;
            let emb = read_vit_embedding(&mut c, e)?;
            emb.patch.validate()?;
            same("patch projection width", e.width, emb.patch.dim())?;
            same("class token length", e.width, emb.class_token.len())?;
            check(
                Some(emb.positions.len()) == e.tokens().checked_mul(e.width),
                "ViT position table size",
            )?;
            emb.position_add.validate()?;
            l.enc_blocks = c.next;
            for i in 0..e.layers {
                let b = c.encoder_block()?;
                b.validate()?;
                same("encoder block width", e.width, b.width())?;
                same("encoder block heads", e.heads, b.attention.heads)?;
                same("encoder block mlp width", e.mlp, b.mlp.fc1.out_features)?;
                check(
                    (b.placement == NormPlacement::Post) == e.post_norm,
                    "encoder norm placement",
                )?;
                if i == 0 {
                    l.enc_block_sections = c.next - l.enc_blocks;
                }
                check(
                    c.next - l.enc_blocks == (i + 1) * l.enc_block_sections,
                    "encoder blocks differ in layout",
                )?;
            }
            l.enc_final_ln = c.next;
            let ln = c.layer_norm()?;
            ln.validate()?;
            same("encoder final LayerNorm width", e.width, ln.width)?;
            if kind == ModelKind::VitClassifier {
                l.classifier = c.next;
                let cl = c.linear()?;
                cl.validate()?;
                same("classifier input width", e.width, cl.in_features)?;
                same("classifier classes", e.classes, cl.out_features)?;
                check(
                    cl.output_zero_point == h.logits_zero_point,
                    "classifier zero point",
                )?;
            }
        }
        if kind.has_decoder() {
            let d = &h.decoder;
            l.dec_embed = c.next;
            let emb = read_token_embedding(&mut c)?;
            check(
                Some(emb.table.len()) == d.vocab.checked_mul(d.width),
                "token embedding size",
            )?;
            check(
                Some(emb.positions.len()) == d.max_positions.checked_mul(d.width),
                "decoder position table size",
            )?;
            emb.position_add.validate()?;
            l.dec_blocks = c.next;
            for i in 0..d.layers {
                let b = c.decoder_block()?;
                b.validate()?;
                same("decoder block width", d.width, b.width())?;
                same("decoder block heads", d.heads, b.attention.heads)?;
                same("decoder block mlp width", d.mlp, b.mlp.fc1.out_features)?;
                match &b.cross {
                    Some(x) => {
                        check(
                            kind == ModelKind::EncoderDecoder,
                            "cross-attention in a decoder-only model",
                        )?;
                        check(
                            x.kv.in_features == h.encoder.width,
                            "cross-attention input width",
                        )?;
                    }
                    None => check(
                        kind == ModelKind::DecoderLm,
                        "encoder-decoder block without cross-attention",
                    )?,
                }
                if i == 0 {
                    l.dec_block_sections = c.next - l.dec_blocks;
                }
                check(
                    c.next - l.dec_blocks == (i + 1) * l.dec_block_sections,
                    "decoder blocks differ in layout",
                )?;
            }
            l.dec_final_ln = c.next;
            let ln = c.layer_norm()?;
            ln.validate()?;
            same("decoder final LayerNorm width", d.width, ln.width)?;
            self.walk_lm_head(&mut c, &mut l)?;
        }
        if kind == ModelKind::Llama {
            self.walk_llama(&mut c, &mut l)?;
        }
        if c.next < self.count && c.peek_tag()? == tag::VOCAB_OFFSETS {
            l.vocab = Some(c.next);
            let v = read_vocab(&mut c)?;
            let expected = if kind.has_decoder() || kind == ModelKind::Llama {
                h.decoder.vocab
            } else {
                h.encoder.classes
            };
            same(
                "vocabulary size differs from the model's",
                expected,
                v.len(),
            )?;
        }
        if c.next != self.count {
            return Err(BlobError::Mismatch {
                what: "more sections than the model needs",
                expected: c.next,
                found: self.count,
            }
            .into());
        }
        Ok(l)
    }

    /// The Llama part of [`Blob::walk`]: embedding, RoPE table, blocks, final RMSNorm,
    /// classifier, each validated against the header's dimensions.
    fn walk_llama(&self, c: &mut Cursor<'a>, l: &mut Layout) -> Result<(), Error> {
        let h = &self.header;
        let d = h.decoder.llama();
        l.dec_embed = c.next;
        let table = c.i8s(tag::TOKEN_EMBED)?;
        check(
            Some(table.len()) == d.vocab.checked_mul(d.width),
            "token embedding size",
        )?;
        l.rope = c.next;
        let (rope, style) = c.rope_table()?;
        same("rope table head width", d.head_dim(), rope.head_dim)?;
        same("rope table positions", d.max_positions, rope.positions)?;
        l.dec_blocks = c.next;
        for i in 0..d.layers {
            let b = c.llama_block(rope, style)?;
            b.validate()?;
            same("llama block width", d.width, b.width())?;
            same("llama block heads", d.heads, b.attention.heads)?;
            same("llama block kv heads", d.kv_heads, b.kv_heads)?;
            same("llama block hidden width", d.hidden, b.hidden())?;
            if i == 0 {
                l.dec_block_sections = c.next - l.dec_blocks;
            }
            check(
                c.next - l.dec_blocks == (i + 1) * l.dec_block_sections,
                "llama blocks differ in layout",
            )?;
        }
        l.dec_final_ln = c.next;
        let rms = c.rms_norm()?;
        rms.validate()?;
        same("llama final RMSNorm width", d.width, rms.width)?;
        self.walk_lm_head(c, l)
    }

    /// The LM head of a decoder (GPT-2-style or Llama): the last part `walk` validates.
    fn walk_lm_head(&self, c: &mut Cursor<'a>, l: &mut Layout) -> Result<(), Error> {
        let (d, h) = (&self.header.decoder, &self.header);
        l.head = c.next;
        let head = c.linear()?;
        head.validate()?;
        same("LM head input width", d.width, head.in_features)?;
        same("LM head vocabulary", d.vocab, head.out_features)?;
        check(
            head.output_zero_point == h.logits_zero_point,
            "LM head zero point",
        )
    }

    /// The RoPE table of a Llama blob.
    fn llama_rope(&self) -> Result<(RopeTable<'a>, RopeStyle), Error> {
        self.need(self.header.kind == ModelKind::Llama)?;
        Ok(self.parts(self.layout.rope).rope_table())
    }

    /// Llama block `i`.
    pub fn llama_block(&self, i: usize) -> Result<LlamaBlock<'a>, Error> {
        self.need(self.header.kind == ModelKind::Llama && i < self.header.decoder.layers)?;
        let (table, style) = self.llama_rope()?;
        let at = self.layout.dec_blocks + i * self.layout.dec_block_sections;
        self.parts(at).llama_block(table, style)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The model kind.
    pub fn kind(&self) -> ModelKind {
        self.header.kind
    }

    /// Buffer sizes a runner needs.
    pub fn buffers(&self) -> BufferSizes {
        self.header.buffers
    }

    /// Bytes the blob occupies (flash).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true for a parsed blob (kept for API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn need(&self, ok: bool) -> Result<(), Error> {
        if ok {
            Ok(())
        } else {
            Err(crate::error::bad_blob("the model has no such part"))
        }
    }

    /// The ViT front end.
    pub fn vit_embedding(&self) -> Result<VitEmbedding<'a>, Error> {
        self.need(self.header.kind.has_encoder())?;
        Ok(self
            .parts(self.layout.vit_embed)
            .vit_embedding(&self.header.encoder))
    }

    /// Encoder block `i`.
    pub fn encoder_block(&self, i: usize) -> Result<EncoderBlock<'a>, Error> {
        self.need(self.header.kind.has_encoder() && i < self.header.encoder.layers)?;
        let at = self.layout.enc_blocks + i * self.layout.enc_block_sections;
        self.parts(at).encoder_block()
    }

    /// The encoder's final LayerNorm.
    pub fn encoder_final_norm(&self) -> Result<LayerNorm<'a>, Error> {
        self.need(self.header.kind.has_encoder())?;
        Ok(self.parts(self.layout.enc_final_ln).layer_norm())
    }

    /// The ViT classifier head.
    pub fn classifier(&self) -> Result<Linear<'a>, Error> {
        self.need(self.header.kind == ModelKind::VitClassifier)?;
        Ok(self.parts(self.layout.classifier).linear())
    }

    /// The decoder front end.
    pub fn token_embedding(&self) -> Result<TokenEmbedding<'a>, Error> {
        self.need(self.header.kind.has_decoder())?;
        Ok(self.parts(self.layout.dec_embed).token_embedding())
    }

    /// Decoder block `i`.
    pub fn decoder_block(&self, i: usize) -> Result<DecoderBlock<'a>, Error> {
        self.need(self.header.kind.has_decoder() && i < self.header.decoder.layers)?;
        let at = self.layout.dec_blocks + i * self.layout.dec_block_sections;
        self.parts(at).decoder_block()
    }

    /// The decoder's final LayerNorm.
    pub fn decoder_final_norm(&self) -> Result<LayerNorm<'a>, Error> {
        self.need(self.header.kind.has_decoder())?;
        Ok(self.parts(self.layout.dec_final_ln).layer_norm())
    }

    /// The LM head (`[vocab][D]`; for a tied head its weights are the token-embedding bytes).
    pub fn lm_head(&self) -> Result<Linear<'a>, Error> {
        self.need(self.header.kind.has_decoder())?;
        Ok(self.parts(self.layout.head).linear())
    }

    /// The vocabulary (text of each token id, or of each class of a classifier), when the
    /// blob carries one (see the module docs).
    pub fn vocab(&self) -> Option<Vocab<'a>> {
        let at = self.layout.vocab?;
        Some(self.parts(at).vocab())
    }
}

impl LlamaModel for Blob<'_> {
    fn llama_dims(&self) -> crate::llama::LlamaDims {
        self.header.decoder.llama()
    }
    fn llama_embedding(&self) -> Result<&[i8], Error> {
        self.need(self.header.kind == ModelKind::Llama)?;
        Ok(self.parts(self.layout.dec_embed).i8s())
    }
    fn llama_block(&self, i: usize) -> Result<LlamaBlock<'_>, Error> {
        Blob::llama_block(self, i)
    }
    fn llama_final_norm(&self) -> Result<RmsNorm<'_>, Error> {
        self.need(self.header.kind == ModelKind::Llama)?;
        Ok(self.parts(self.layout.dec_final_ln).rms_norm())
    }
    fn llama_head(&self) -> Result<Linear<'_>, Error> {
        self.need(self.header.kind == ModelKind::Llama)?;
        Ok(self.parts(self.layout.head).linear())
    }
    fn llama_bos(&self) -> u32 {
        self.header.decoder.start_token
    }
    fn llama_eos(&self) -> u32 {
        self.header.decoder.eos_token
    }
}

/// `K` itself when it names a kind ([`Blob::parse_as`] checked the blob's kind against it),
/// else the blob's `kind`: a constant for the compiler where `K` names a kind.
#[inline(always)]
pub(super) const fn const_kind<const K: u16>(kind: ModelKind) -> ModelKind {
    match K {
        1 => ModelKind::VitClassifier,
        2 => ModelKind::DecoderLm,
        3 => ModelKind::EncoderDecoder,
        4 => ModelKind::Llama,
        _ => kind,
    }
}
