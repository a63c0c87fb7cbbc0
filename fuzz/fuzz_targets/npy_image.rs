//! The `.npy` and PGM/PNG readers on arbitrary bytes: an error or an array, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = tools::checkpoint::npy::parse_npy(data, Path::new("fuzz.npy"));
    let _ = tools::checkpoint::image::parse_image(data, Path::new("fuzz.img"));
});
