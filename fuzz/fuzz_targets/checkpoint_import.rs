//! The checkpoint importer on arbitrary `config.json` + `model.safetensors` bytes: a one-line
//! error or a model, never a panic. Input: u32 LE config length, config bytes, safetensors bytes.
//! The body is `common::checkpoint_import`, shared with the replay in `tests/tests/fuzz_seeds.rs`.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = common::checkpoint_import(data);
});
