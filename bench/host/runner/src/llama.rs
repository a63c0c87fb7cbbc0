//! The Llama speed rows (issue 14): a model of llama2.c stories260K's exact shape with
//! deterministic pseudo-random weights (no trained Llama ships yet; speed does not depend on
//! the weights), written as a llama2.c version-0 `.bin` and packed by `tools convert`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Name of the synthetic model (its blob: `bench/firmware/target/<NAME>.tatn`, which
/// `bench/firmware/build.rs` embeds under the same name).
pub const NAME: &str = "llama-260k-synth";

/// stories260K: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len.
pub const SHAPE: [i32; 7] = [64, 172, 5, 8, 4, 512, 512];

/// Positions packed into the blob (`--max-positions`): the firmware times 8 steps from
/// position 256, so 264 (KV caches for 264 positions, not the checkpoint's 512).
pub const MAX_POSITIONS: usize = 264;

/// Where the blob goes.
pub fn blob_path(root: &Path) -> PathBuf {
    root.join("bench/firmware/target")
        .join(format!("{NAME}.tatn"))
}

/// The llama2.c `.bin` bytes: header, then every tensor in `run.c`'s order (shared
/// classifier), weights uniform in ±0.5/√fan-in from a fixed LCG, RMSNorm gains 1.
fn checkpoint() -> Vec<u8> {
    let [dim, hidden, layers, _heads, kv_heads, vocab, seq] = SHAPE.map(|v| v as usize);
    let head = dim / SHAPE[3] as usize;
    let kv = kv_heads * head;
    let mut out = Vec::new();
    for v in SHAPE {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut state = 0x1234_5678_9abc_def0_u64;
    let mut rand = |n: usize, fan_in: usize, out: &mut Vec<u8>| {
        let a = 1.0 / (fan_in as f64).sqrt();
        for _ in 0..n {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            out.extend_from_slice(&((u * a) as f32).to_le_bytes());
        }
    };
    let ones = |n: usize, out: &mut Vec<u8>| {
        for _ in 0..n {
            out.extend_from_slice(&1f32.to_le_bytes());
        }
    };
    rand(vocab * dim, 1, &mut out); // token embedding (±0.5)
    ones(layers * dim, &mut out); // rms_att_weight
    rand(layers * dim * dim, dim, &mut out); // wq
    rand(layers * kv * dim, dim, &mut out); // wk
    rand(layers * kv * dim, dim, &mut out); // wv
    rand(layers * dim * dim, dim, &mut out); // wo
    ones(layers * dim, &mut out); // rms_ffn_weight
    rand(layers * hidden * dim, dim, &mut out); // w1
    rand(layers * dim * hidden, hidden, &mut out); // w2
    rand(layers * hidden * dim, dim, &mut out); // w3
    ones(dim, &mut out); // rms_final_weight
                         // freq_cis_real / imag (legacy, skipped by the reader).
    out.resize(out.len() + 2 * seq * (head / 2) * 4, 0);
    out
}

/// Write the checkpoint and pack it with `tools convert` (its synthetic calibration set).
pub fn make_blob(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join("bench/firmware/target");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bin = dir.join(format!("{NAME}.bin"));
    std::fs::write(&bin, checkpoint()).map_err(|e| format!("{}: {e}", bin.display()))?;
    let blob = blob_path(root);
    crate::qemu::run(
        Command::new("cargo")
            .args(["run", "--quiet", "-p", "tools", "--", "convert"])
            .arg(&bin)
            .arg("-o")
            .arg(&blob)
            .args(["--max-positions", &MAX_POSITIONS.to_string()])
            .current_dir(root)
            .env_remove("RUSTFLAGS"),
    )?;
    Ok(blob)
}
