//! Replays the fuzz seeds (and any crash regressions in `fuzz/regressions/<target>/`) through
//! the same code paths as the fuzz targets, on the stable toolchain, so a fixed crash stays fixed
//! and the seed blobs stay valid for the current format.

use core_attn::blob::{fnv1a32, Blob};
use std::path::{Path, PathBuf};

fn dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(rel)
}

fn files(rel: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir(rel)) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

/// Parse `bytes` from 4-byte-aligned storage, as the device and the tools hold blobs.
fn parse(bytes: &[u8]) -> Result<(), core_attn::Error> {
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
    Blob::parse(&bytemuck::cast_slice::<u32, u8>(&words)[..bytes.len()]).map(|_| ())
}

#[test]
fn seed_blobs_parse_under_the_current_format() {
    let seeds = files("seeds/blob");
    assert!(
        seeds.len() >= 3,
        "fuzz/seeds/blob should hold the fixture blobs"
    );
    for (p, b) in &seeds {
        parse(b).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate the seeds with tools convert)",
                p.display()
            )
        });
        // A flipped byte in the checksummed region is always caught.
        let mut c = b.clone();
        c[b.len() / 2] ^= 0x40;
        assert!(
            parse(&c).is_err(),
            "{}: corrupted copy accepted",
            p.display()
        );
        // With the checksum repaired, parsing still never panics.
        let sum = fnv1a32(&c[12..]);
        c[8..12].copy_from_slice(&sum.to_le_bytes());
        let _ = parse(&c);
    }
}

#[test]
fn crash_regressions_stay_fixed() {
    for (p, b) in files("regressions/blob_parse")
        .into_iter()
        .chain(files("regressions/blob_run"))
    {
        let _ = parse(&b);
        eprintln!("replayed {}", p.display());
    }
    for (p, b) in files("regressions/npy_image")
        .into_iter()
        .chain(files("seeds/npy_image"))
    {
        let _ = tools::checkpoint::npy::parse_npy(&b, &p);
        let _ = tools::checkpoint::image::parse_image(&b, &p);
    }
    for (_, b) in files("regressions/checkpoint_import")
        .into_iter()
        .chain(files("seeds/checkpoint"))
    {
        let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let (c, w) = b[4..].split_at(n.min(b.len() - 4));
        let config = tools::checkpoint::config::parse_config(std::str::from_utf8(c).unwrap());
        let tensors = tools::checkpoint::safetensors::parse_safetensors(w, Path::new("seed"));
        if let (Ok(config), Ok(tensors)) = (config, tensors) {
            tools::Model::from_checkpoint(tools::checkpoint::Checkpoint { config, tensors })
                .expect("seed checkpoints are valid fixtures");
        }
    }
}
