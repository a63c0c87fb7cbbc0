//! Replays the `link_frames` fuzz target's seeds (`fuzz/seeds/link/`) through the same check
//! (`fuzz/fuzz_targets/link_check.rs`) on stable, so `cargo test` covers them without
//! cargo-fuzz; plus some generated streams.

#[path = "../../../fuzz/fuzz_targets/link_check.rs"]
mod link_check;

#[test]
fn link_frames_seeds_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/link");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        link_check::check(&data);
        // Every prefix (truncation at any byte) too.
        for cut in (0..data.len()).step_by(7) {
            link_check::check(&data[..cut]);
        }
        n += 1;
    }
    assert!(n >= 4, "seeds missing in {}", dir.display());
}

#[test]
fn link_frames_random_streams() {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for len in 0..300 {
        let data: Vec<u8> = (0..len * 5)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Plenty of sync bytes, so fake headers occur.
                if x % 5 == 0 {
                    0xA7
                } else if x % 5 == 1 {
                    0x4C
                } else {
                    (x >> 24) as u8
                }
            })
            .collect();
        link_check::check(&data);
    }
}
