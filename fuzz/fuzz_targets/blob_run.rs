//! Mutated blobs with the checksum repaired, so that mutations reach the structural checks; a
//! blob that passes `Blob::parse` is then RUN against fixed-size buffers: no panic, no
//! out-of-bounds access, no endless loop (decoding is bounded by `max_new`). The body is
//! `common::blob_run`, shared with the replay in `tests/tests/fuzz_seeds.rs`.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = common::blob_run(data);
});
