//! Any bytes: `Blob::parse` returns a value or an error — never a panic or an out-of-bounds read.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = common::blob_parse(data);
});
