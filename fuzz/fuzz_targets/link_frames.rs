//! Any bytes on the serial link: the attn-link server (serving a real model blob picked by the
//! first byte) answers only whole, valid frames, never panics, and still serves afterwards
//! (the property is in `link_check.rs`, shared with the seed replay in
//! `crates/attn-link/tests/fuzz_seeds.rs`).
#![no_main]

#[path = "link_check.rs"]
mod link_check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| link_check::check(data));
