//! Replays the fuzz seeds and the regression inputs in `fuzz/regressions/<target>/` through the
//! fuzz targets' own bodies (`fuzz/fuzz_targets/common.rs`, included below: the targets are
//! one-line wrappers around the same functions), on the stable toolchain, so a fixed crash
//! stays fixed, the seeds stay valid for the current format, and each seed reaches the stage
//! of its target that it exists to exercise (a seed blob is run, a seed checkpoint imports).
//!
//! Every folder read must exist and be non-empty (issue #17 item 4: a missing folder used to
//! replay as empty, `blob_run` regressions were only parsed, and the checkpoint replay
//! `unwrap`ped where the target returns on error).

#[path = "../../fuzz/fuzz_targets/common.rs"]
mod common;

use common::RunStage;
use core_attn::blob::fnv1a32;
use std::path::{Path, PathBuf};

const TARGETS: [&str; 4] = ["blob_parse", "blob_run", "checkpoint_import", "npy_image"];

fn dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(rel)
}

/// Every file of `fuzz/<rel>`, sorted; panics when the folder is missing or holds no file.
fn files(rel: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let d = dir(rel);
    let rd = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("fuzz/{rel} must exist ({}): {e}", d.display()));
    let mut v: Vec<_> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "fuzz/{rel} holds no input");
    v
}

fn is_edge(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("edge-"))
}

/// Every regression folder exists and holds at least one input; a missing one fails.
///
/// Injected: `fuzz/regressions/blob_run/` removed → fails with `fuzz/regressions/blob_run must
/// exist`; `files` treating a missing folder as empty again (`let Ok(rd) = … else { return
/// Vec::new() }`) → fails with `fuzz/regressions/blob_run holds no input`.
#[test]
fn every_regression_folder_exists() {
    for t in TARGETS {
        let f = files(&format!("regressions/{t}"));
        eprintln!("regressions/{t}: {} inputs", f.len());
    }
}

/// The seed blobs parse, and `blob_run` (the target's own body) runs every one of them to the
/// end with `Ok` — also from a stale checksum, which the target repairs. A corrupted copy is
/// refused by `blob_parse`; with the checksum repaired, both targets return without a panic.
///
/// Injected: `blob_run` returning before the runners (e.g. `RUN_CAP` = 1 KiB, so every seed is
/// refused at `Buffers`) → fails with `…encdec.tatn: blob_run stopped at Buffers`.
#[test]
fn seed_blobs_parse_and_run() {
    let seeds = files("seeds/blob");
    assert!(
        seeds.len() >= 3,
        "fuzz/seeds/blob should hold the fixture blobs"
    );
    for (p, b) in &seeds {
        assert!(
            common::blob_parse(b),
            "{}: refused by the current format (regenerate the seeds with tools convert)",
            p.display()
        );
        let stage = common::blob_run(b);
        assert_eq!(
            stage,
            RunStage::Ran { ok: true },
            "{}: blob_run stopped at {stage:?}",
            p.display()
        );
        let mut stale = b.clone();
        stale[8..12].copy_from_slice(&[0; 4]);
        assert!(
            !common::blob_parse(&stale),
            "{}: stale checksum",
            p.display()
        );
        assert_eq!(common::blob_run(&stale), RunStage::Ran { ok: true });
        // A flipped byte in the checksummed region is always caught by the parser.
        let mut c = b.clone();
        c[b.len() / 2] ^= 0x40;
        assert!(
            !common::blob_parse(&c),
            "{}: corrupted copy accepted",
            p.display()
        );
        // With the checksum repaired, parsing and running never panic.
        let sum = fnv1a32(&c[12..]);
        c[8..12].copy_from_slice(&sum.to_le_bytes());
        let _ = common::blob_parse(&c);
        let _ = common::blob_run(&c);
    }
}

/// The seed checkpoints import (through the target's own body, which returns on error instead
/// of unwrapping), and so do the npy/image seeds through theirs.
#[test]
fn seed_checkpoints_and_arrays_are_accepted() {
    for (p, b) in files("seeds/checkpoint") {
        if let Err(e) = common::checkpoint_import(&b) {
            panic!("{}: seed checkpoint refused: {e}", p.display());
        }
    }
    for (p, b) in files("seeds/npy_image") {
        let (npy, image) = common::npy_image(&b);
        assert!(npy || image, "{}: refused by both readers", p.display());
    }
}

/// Every regression input replays through its target's body without a panic; the hand-made
/// `edge-*` inputs (see `fuzz/regressions/README.md`) must be refused.
///
/// Injected: the old checkpoint replay (`std::str::from_utf8(c).unwrap()`, `b[0..4]` indexed
/// unchecked) → panics on `checkpoint_import/edge-non-utf8-config` and `edge-short`; the old
/// `blob_run` replay (parse only) would not run `seeds/blob` at all (see
/// `seed_blobs_parse_and_run`).
#[test]
fn crash_regressions_stay_fixed() {
    for (p, b) in files("regressions/blob_parse") {
        let ok = common::blob_parse(&b);
        assert!(!(is_edge(&p) && ok), "{}: accepted", p.display());
    }
    for (p, b) in files("regressions/blob_run") {
        let stage = common::blob_run(&b);
        eprintln!("{}: {stage:?}", p.display());
        assert!(
            !(is_edge(&p) && matches!(stage, RunStage::Ran { .. })),
            "{}: ran",
            p.display()
        );
    }
    for (p, b) in files("regressions/checkpoint_import") {
        let r = common::checkpoint_import(&b);
        eprintln!("{}: {:?}", p.display(), r.as_ref().map(|m| m.kind()));
        assert!(!(is_edge(&p) && r.is_ok()), "{}: imported", p.display());
    }
    for (p, b) in files("regressions/npy_image") {
        let (npy, image) = common::npy_image(&b);
        eprintln!("{}: npy {npy}, image {image}", p.display());
    }
}
