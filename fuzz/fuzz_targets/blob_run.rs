//! Mutated blobs with the checksum repaired, so that mutations reach the structural checks; a
//! blob that passes `Blob::parse` is then RUN against fixed-size buffers: no panic, no
//! out-of-bounds access, no endless loop (decoding is bounded by `max_new`).
#![no_main]

#[path = "common.rs"]
mod common;

use core_attn::blob::{fnv1a32, Blob, ModelKind};
use core_attn::model::{self, host::OwnedBuffers};
use libfuzzer_sys::fuzz_target;

/// Buffers the "firmware" was compiled with (bytes per buffer).
const CAP: usize = 1 << 18;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 || data.len() > 1 << 20 {
        return;
    }
    let mut fixed = data.to_vec();
    let sum = fnv1a32(&fixed[12..]);
    fixed[8..12].copy_from_slice(&sum.to_le_bytes());
    let words = common::aligned(&fixed);
    let Ok(blob) = Blob::parse(common::bytes(&words, fixed.len())) else {
        return;
    };
    let sizes = blob.buffers();
    let caps = [sizes.x, sizes.normed, sizes.wide, sizes.scores * 4, sizes.patch, sizes.logits, sizes.kv, sizes.cross_kv];
    if caps.iter().any(|&b| b > CAP) {
        // The firmware's check: a blob that does not fit the compiled buffers is rejected.
        return;
    }
    let mut owned = OwnedBuffers::new(&sizes);
    let Ok((mut buffers, mut caches, mut cross)) = owned.split(&blob) else {
        return;
    };
    let e = blob.header().encoder;
    let image = vec![0i8; e.channels * e.height * e.image_width];
    match blob.kind() {
        ModelKind::VitClassifier => {
            let _ = model::vit_classify(&blob, &image, &mut buffers, &mut |_, _| {});
        }
        ModelKind::DecoderLm | ModelKind::EncoderDecoder => {
            if blob.kind() == ModelKind::EncoderDecoder
                && model::encode_for_decoder(&blob, &image, &mut cross, &mut buffers, &mut |_, _| {}).is_err()
            {
                return;
            }
            let start = blob.header().decoder.start_token.min(blob.header().decoder.vocab.saturating_sub(1) as u32);
            let mut out = [0u32; 8];
            let cross = (blob.kind() == ModelKind::EncoderDecoder).then_some(&cross[..]);
            let _ = model::greedy(&blob, &[start], 4, &mut out, &mut caches, cross, &mut buffers, &mut |_, _| {});
        }
    }
});
