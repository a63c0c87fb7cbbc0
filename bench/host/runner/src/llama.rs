//! The Llama speed rows (issue 14): the shipped `models/llama-kjv.tatn` (llama2.c
//! stories260K's shape, trained here, 256 positions), which `bench/firmware/build.rs` embeds
//! under the same name.

use std::path::{Path, PathBuf};

/// Name of the Llama the bench times (its blob: `models/<NAME>.tatn`).
pub const NAME: &str = "llama-kjv";

/// Positions of the shipped blob: the second context's 8 timed steps (from
/// [`CONTEXTS`]`[1]`) end at position 255, its last.
pub const MAX_POSITIONS: u64 = 256;

/// First positions of the two runs of 8 timed steps (`bench/firmware/build.rs`'s
/// `LLAMA_CONTEXTS`).
pub const CONTEXTS: [u64; 2] = [64, 248];

/// Where the blob is.
pub fn blob_path(root: &Path) -> PathBuf {
    root.join("models").join(format!("{NAME}.tatn"))
}
