//! The `.npy` and PGM/PNG readers on arbitrary bytes: an error or an array, never a panic.
//! The body is `common::npy_image`, shared with the replay in `tests/tests/fuzz_seeds.rs`.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = common::npy_image(data);
});
