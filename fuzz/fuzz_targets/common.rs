//! Shared by the fuzz targets and by their stable-toolchain replay
//! (`tests/tests/fuzz_seeds.rs` includes this file with `#[path]`): each target's whole body is
//! a function here, so the replay runs exactly what the target runs and the two cannot
//! diverge. Every body returns what it reached instead of `()`, so the replay can also check
//! that a seed gets as far as it should (e.g. a seed blob is actually *run*).
#![allow(dead_code)]

use core_attn::blob::{fnv1a32, Blob, ModelKind};
use core_attn::model::{self, host::OwnedBuffers};
use std::path::Path;

/// Copy `data` into 4-byte-aligned storage (the device keeps blobs 16-byte aligned in flash, the
/// host in a `Vec<u32>`), returning the storage; view it with `bytes(&words, data.len())`.
pub fn aligned(data: &[u8]) -> Vec<u32> {
    let mut words = vec![0u32; data.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..data.len()].copy_from_slice(data);
    words
}

/// The first `len` bytes of `words`.
pub fn bytes(words: &[u32], len: usize) -> &[u8] {
    &bytemuck::cast_slice::<u32, u8>(words)[..len]
}

/// `blob_parse`: any bytes → `Blob::parse` returns a value or an error, never a panic.
/// Returns whether the bytes parsed.
pub fn blob_parse(data: &[u8]) -> bool {
    let words = aligned(data);
    Blob::parse(bytes(&words, data.len())).is_ok()
}

/// How far `blob_run` got with one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStage {
    /// Shorter than 16 bytes or longer than 1 MiB: ignored.
    Size,
    /// `Blob::parse` refused it (after the checksum repair).
    Parse,
    /// A buffer exceeds what the "firmware" was compiled with: refused.
    Buffers,
    /// `OwnedBuffers::split` refused it.
    Split,
    /// The encoder of an encoder–decoder returned an error.
    Encode,
    /// The model ran; `ok` says whether the runner returned `Ok`.
    Ran {
        /// The runner's result was `Ok`.
        ok: bool,
    },
}

/// Buffers the "firmware" was compiled with (bytes per buffer).
pub const RUN_CAP: usize = 1 << 18;

/// `blob_run`: mutated blobs with the checksum repaired, so that mutations reach the
/// structural checks; a blob that passes `Blob::parse` is then RUN against fixed-size
/// buffers: no panic, no out-of-bounds access, no endless loop (decoding is bounded).
pub fn blob_run(data: &[u8]) -> RunStage {
    if data.len() < 16 || data.len() > 1 << 20 {
        return RunStage::Size;
    }
    let mut fixed = data.to_vec();
    let sum = fnv1a32(&fixed[12..]);
    fixed[8..12].copy_from_slice(&sum.to_le_bytes());
    let words = aligned(&fixed);
    let Ok(blob) = Blob::parse(bytes(&words, fixed.len())) else {
        return RunStage::Parse;
    };
    let sizes = blob.buffers();
    let caps = [
        sizes.x,
        sizes.normed,
        sizes.wide,
        sizes.scores * 4,
        sizes.patch,
        sizes.logits,
        sizes.kv,
        sizes.cross_kv,
    ];
    if caps.iter().any(|&b| b > RUN_CAP) {
        // The firmware's check: a blob that does not fit the compiled buffers is rejected.
        return RunStage::Buffers;
    }
    let mut owned = OwnedBuffers::new(&sizes);
    if blob.kind() == ModelKind::Llama {
        return run_llama(&blob, &mut owned);
    }
    let Ok((mut buffers, mut caches, mut cross)) = owned.split(&blob) else {
        return RunStage::Split;
    };
    let e = blob.header().encoder;
    let image = vec![0i8; e.channels * e.height * e.image_width];
    let ok = match blob.kind() {
        ModelKind::VitClassifier => {
            model::vit_classify(&blob, &image, &mut buffers, &mut |_, _| {}).is_ok()
        }
        ModelKind::DecoderLm | ModelKind::EncoderDecoder => {
            if blob.kind() == ModelKind::EncoderDecoder
                && model::encode_for_decoder(
                    &blob,
                    &image,
                    &mut cross,
                    &mut buffers,
                    &mut |_, _| {},
                )
                .is_err()
            {
                return RunStage::Encode;
            }
            let d = blob.header().decoder;
            let start = d.start_token.min(d.vocab.saturating_sub(1) as u32);
            let mut out = [0u32; 8];
            let cross = (blob.kind() == ModelKind::EncoderDecoder).then_some(&cross[..]);
            model::greedy(
                &blob,
                &[start],
                4,
                &mut out,
                &mut caches,
                cross,
                &mut buffers,
                &mut |_, _| {},
            )
            .is_ok()
        }
        // Returned above (its caches are `kv_heads · head_dim` wide).
        ModelKind::Llama => false,
    };
    RunStage::Ran { ok }
}

/// [`blob_run`] for a Llama blob: greedy decoding of 4 tokens after its BOS (or id 0).
fn run_llama(blob: &Blob<'_>, owned: &mut OwnedBuffers) -> RunStage {
    use core_attn::llama::{llama_greedy, LlamaModel};
    let d = blob.llama_dims();
    let Ok(caches) = model::kv_caches(&mut owned.kv, d.layers, d.max_positions, d.kv_width())
    else {
        return RunStage::Split;
    };
    let Ok(mut caches) = caches.collect::<Result<Vec<_>, _>>() else {
        return RunStage::Split;
    };
    let mut buffers = model::ModelBuffers {
        x: &mut owned.x,
        normed: &mut owned.normed,
        wide: &mut owned.wide,
        scores: &mut owned.scores,
        patch: &mut owned.patch,
        logits: &mut owned.logits,
    };
    let start = blob.llama_bos().min(d.vocab.saturating_sub(1) as u32);
    let mut out = [0u32; 8];
    let ok = llama_greedy(
        blob,
        &[start],
        4,
        &mut out,
        &mut caches,
        &mut buffers,
        &mut |_, _| {},
    )
    .is_ok();
    RunStage::Ran { ok }
}

/// `checkpoint_import`: the importer on arbitrary `config.json` + `model.safetensors` bytes (u32
/// LE config length, config bytes, safetensors bytes): an error or a model, never a panic.
/// Returns the importer's result, or `Err` naming the stage that refused the bytes.
pub fn checkpoint_import(data: &[u8]) -> Result<tools::Model, String> {
    if data.len() < 4 {
        return Err("shorter than the 4-byte config length".into());
    }
    let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    let (config, weights) = rest.split_at(n.min(rest.len()));
    let text = std::str::from_utf8(config).map_err(|e| format!("config is not UTF-8: {e}"))?;
    let config = tools::checkpoint::config::parse_config(text).map_err(|e| e.to_string())?;
    let tensors =
        tools::checkpoint::safetensors::parse_safetensors(weights, Path::new("fuzz.safetensors"))
            .map_err(|e| e.to_string())?;
    tools::Model::from_checkpoint(tools::checkpoint::Checkpoint { config, tensors })
        .map_err(|e| e.to_string())
}

/// `npy_image`: the `.npy` and PGM/PNG readers on arbitrary bytes: an error or an array, never
/// a panic. Returns whether each reader accepted the bytes `(npy, image)`.
pub fn npy_image(data: &[u8]) -> (bool, bool) {
    (
        tools::checkpoint::npy::parse_npy(data, Path::new("fuzz.npy")).is_ok(),
        tools::checkpoint::image::parse_image(data, Path::new("fuzz.img")).is_ok(),
    )
}
