//! The checkpoint importer on arbitrary `config.json` + `model.safetensors` bytes: a one-line
//! error or a model, never a panic. Input: u32 LE config length, config bytes, safetensors bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tools::checkpoint::{config::parse_config, safetensors::parse_safetensors, Checkpoint};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    let (config, weights) = rest.split_at(n.min(rest.len()));
    let Ok(text) = std::str::from_utf8(config) else {
        return;
    };
    let Ok(config) = parse_config(text) else {
        return;
    };
    let Ok(tensors) = parse_safetensors(weights, Path::new("fuzz.safetensors")) else {
        return;
    };
    let _ = tools::Model::from_checkpoint(Checkpoint { config, tensors });
});
