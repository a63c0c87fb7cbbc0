//! The blob validation rejects exactly what it rejected before the table-driven rewrite
//! (issue 13, code size): every committed blob (`models/*.tatn`, `boards/common/models/*.tatn`)
//! and a fixed set of corruptions of each — every header word, the preamble fields, every
//! section table entry (tag, element type, offset, count), every element of every small
//! `i32` section (the scalars: shapes, zero points, requantization multipliers and shifts),
//! truncation at every section boundary (with and without the length word and checksum
//! patched to match) — give the same `Blob::parse` result, compared as `Debug` text (the
//! error variant, its message and its expected/found values), as recorded in
//! `tests/blob_oracle.txt`.
//!
//! The record was made by this test from the walker before the rewrite (commit "blob oracle:
//! record …"): `BLOB_ORACLE_RECORD=1 cargo test -p core-attn --test blob_oracle` rewrites it
//! from the code under test, so only run that on a reference build. Each corruption except
//! the checksum ones recomputes the checksum, so that validation reaches the part corrupted.
//!
//! Guards against validation that differs from the recorded code: with the LayerNorm
//! zero-point check dropped from `Cursor::layer_norm` (78 cases then fail later, in
//! `LayerNorm::validate`, with another error), or `Header::check` moved after the buffer-size
//! comparison in `Blob::parse_as` (126 cases report the buffer sizes first), the test fails.

use core_attn::blob::{fnv1a32, Blob, HEADER_WORDS};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const BLOBS: &[&str] = &[
    "models/vit-mnist.tatn",
    "models/char-lm.tatn",
    "models/digit-reader.tatn",
    "boards/common/models/vit-tiny.tatn",
    "boards/common/models/gpt2-tiny.tatn",
    "boards/common/models/encdec-tiny.tatn",
];

const PREAMBLE: usize = 16;
const TABLE: usize = PREAMBLE + 4 * HEADER_WORDS;
const ENTRY: usize = 12;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rd(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn wr(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// `Blob::parse` of `bytes` copied into 4-byte-aligned memory, as `Debug` text.
fn parse(bytes: &[u8]) -> String {
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    buf[..bytes.len()].copy_from_slice(bytes);
    match Blob::parse(&buf[..bytes.len()]) {
        Ok(b) => format!("ok {:?} vocab {:?}", b.kind(), b.vocab().map(|v| v.len())),
        Err(e) => format!("{e:?}"),
    }
}

/// Rewrite the checksum of `b` (whose length word is `b.len()` or less).
fn fix(b: &mut [u8]) {
    let total = (rd(b, 12) as usize).min(b.len());
    let sum = fnv1a32(&b[12..total]);
    wr(b, 8, sum);
}

/// Every corruption of `orig`, as `(name, bytes)`, in a fixed order.
fn corruptions(orig: &[u8]) -> Vec<(String, Vec<u8>)> {
    let out = std::cell::RefCell::new(vec![("intact".to_string(), orig.to_vec())]);
    let edit = |name: String, f: &dyn Fn(&mut Vec<u8>), fix_sum: bool| {
        let mut b = orig.to_vec();
        f(&mut b);
        if fix_sum {
            fix(&mut b);
        }
        out.borrow_mut().push((name, b));
    };
    // Preamble.
    edit("magic".into(), &|b| b[0] = b'X', false);
    edit("version 0".into(), &|b| b[4] = 0, false);
    edit("version 2".into(), &|b| b[4] = 2, false);
    for k in [0u8, 1, 2, 3, 4, 5] {
        edit(format!("kind {k}"), &|b| b[6] = k, true);
    }
    edit("checksum".into(), &|b| b[8] ^= 1, false);
    edit(
        "payload byte".into(),
        &|b| *b.last_mut().unwrap() ^= 0x40,
        false,
    );
    for (name, delta) in [("total-1", -1i64), ("total+1", 1), ("total-16", -16)] {
        edit(
            name.to_string(),
            &|b| {
                let t = rd(b, 12) as i64 + delta;
                wr(b, 12, t as u32)
            },
            true,
        );
    }
    edit("total tiny".into(), &|b| wr(b, 12, 20), true);
    // Header words.
    for i in 0..HEADER_WORDS {
        let at = PREAMBLE + 4 * i;
        for (name, f) in [
            ("0", (|_| 0) as fn(u32) -> u32),
            ("+1", |v: u32| v.wrapping_add(1)),
            ("-1", |v: u32| v.wrapping_sub(1)),
            ("max", |_| u32::MAX),
            ("2^31", |_| 1 << 31),
        ] {
            edit(
                format!("header word {i} {name}"),
                &|b| {
                    let v = rd(b, at);
                    wr(b, at, f(v))
                },
                true,
            );
        }
    }
    // Section count.
    for (name, f) in [
        ("-1", (|v: u32| v.wrapping_sub(1)) as fn(u32) -> u32),
        ("+1", |v: u32| v.wrapping_add(1)),
        ("0", |_| 0),
        ("huge", |_| 1 << 20),
    ] {
        edit(
            format!("section count {name}"),
            &|b| {
                let v = rd(b, TABLE);
                wr(b, TABLE, f(v))
            },
            true,
        );
    }
    // Section table entries, section contents, truncation at each section.
    let count = rd(orig, TABLE) as usize;
    let total = rd(orig, 12) as usize;
    for s in 0..count {
        let e = TABLE + 4 + s * ENTRY;
        let te = rd(orig, e);
        let (elem, off, n) = (te >> 16, rd(orig, e + 4) as usize, rd(orig, e + 8) as usize);
        let cut = off.min(total);
        out.borrow_mut().push((
            format!("cut at s{s} (length word kept)"),
            orig[..cut].to_vec(),
        ));
        let mut t = orig[..cut.max(TABLE + 4)].to_vec();
        let tl = t.len() as u32;
        wr(&mut t, 12, tl);
        fix(&mut t);
        out.borrow_mut()
            .push((format!("cut at s{s} (length word patched)"), t));
        // Blocks repeat: the per-section corruptions cover the embedding, the first blocks and
        // the last parts (final norm, head, vocabulary) of the big blobs, every section of
        // the small ones.
        if s >= 90 && s + 30 < count {
            continue;
        }
        edit(format!("s{s} tag+1"), &|b| wr(b, e, te + 1), true);
        edit(
            format!("s{s} tag 0x80"),
            &|b| wr(b, e, (te & !0xffff) | 0x80),
            true,
        );
        edit(
            format!("s{s} elem+1"),
            &|b| wr(b, e, te.wrapping_add(1 << 16)),
            true,
        );
        edit(
            format!("s{s} elem-1"),
            &|b| wr(b, e, te.wrapping_sub(1 << 16)),
            true,
        );
        edit(
            format!("s{s} offset+1"),
            &|b| wr(b, e + 4, off as u32 + 1),
            true,
        );
        edit(
            format!("s{s} offset+16"),
            &|b| wr(b, e + 4, off as u32 + 16),
            true,
        );
        edit(format!("s{s} offset max"), &|b| wr(b, e + 4, !15), true);
        edit(
            format!("s{s} count+1"),
            &|b| wr(b, e + 8, n as u32 + 1),
            true,
        );
        edit(
            format!("s{s} count-1"),
            &|b| wr(b, e + 8, (n as u32).wrapping_sub(1)),
            true,
        );
        edit(format!("s{s} count 0"), &|b| wr(b, e + 8, 0), true);
        edit(format!("s{s} count max"), &|b| wr(b, e + 8, u32::MAX), true);
        if elem == 3 && n <= 8 {
            for k in 0..n {
                let at = off + 4 * k;
                for v in [0i32, -1, 300, i32::MIN] {
                    edit(format!("s{s}[{k}] = {v}"), &|b| wr(b, at, v as u32), true);
                }
            }
        }
        if n > 0 {
            // One element of a larger section: the first value flipped (tables, weights).
            edit(format!("s{s} first byte ^0x80"), &|b| b[off] ^= 0x80, true);
        }
    }
    out.into_inner()
}

fn record() -> String {
    let mut s = String::new();
    for path in BLOBS {
        let orig = std::fs::read(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        for (name, bytes) in corruptions(&orig) {
            let short = path.rsplit('/').next().unwrap_or(path);
            writeln!(s, "{short} | {name} | {}", parse(&bytes)).unwrap();
        }
    }
    s
}

#[test]
#[cfg_attr(miri, ignore = "reads the committed blobs: hours under Miri")]
fn parse_results_equal_the_recorded_oracle() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/blob_oracle.txt");
    let now = record();
    if std::env::var_os("BLOB_ORACLE_RECORD").is_some() {
        std::fs::write(&file, &now).unwrap();
        return;
    }
    let old = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let (mut lines, mut bad) = (0, Vec::new());
    for (a, b) in old.lines().zip(now.lines()) {
        lines += 1;
        if a != b {
            bad.push(format!("was: {a}\n now: {b}"));
        }
    }
    assert_eq!(old.lines().count(), now.lines().count(), "number of cases");
    assert!(lines > 1000, "only {lines} cases");
    assert!(
        bad.is_empty(),
        "{} of {lines} results differ from the record, first 10:\n{}",
        bad.len(),
        bad[..bad.len().min(10)].join("\n")
    );
    // The record itself exercises the checks: most cases are rejected, and with many
    // different errors (not one early check hiding the rest).
    let errs: std::collections::BTreeSet<&str> =
        old.lines().filter_map(|l| l.rsplit(" | ").next()).collect();
    assert!(errs.len() > 60, "only {} distinct results", errs.len());
}

/// The compile-time check of an embedded ViT blob (`Embedded::check_vit`, a `const fn`, here
/// called at run time) returns what `Blob::parse` returns — the same `Debug` text, error
/// variant, message and values — for every corruption above of the two ViT blobs (the record's
/// cases), and on success the same blob (header, section table, layout: `Embedded::open`'s
/// `Blob` is `Blob::parse`'s, compared as `Debug` text). A blob whose kind word is not the
/// ViT's is refused as "model kind differs from the one asked for" once its kind is read (as
/// `include_model!(…: Vit = …)` asks for a ViT), where `Blob::parse` goes on with that kind.
///
/// Guards against a const check that accepts what the walk rejects or differs in order:
/// with the bias-magnitude loop dropped from `C::validate_linear` (`embedded.rs`: 20 cases
/// differ), or the zero-point check dropped from `C::layer_norm` (a later error instead),
/// this fails.
#[test]
#[cfg_attr(miri, ignore = "reads the committed blobs: hours under Miri")]
fn embedded_check_equals_parse_on_vit_blobs() {
    use core_attn::blob::Embedded;
    let (mut cases, mut ok, mut bad) = (0, 0, Vec::new());
    for path in [
        "models/vit-mnist.tatn",
        "boards/common/models/vit-tiny.tatn",
    ] {
        let orig = std::fs::read(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        for (name, bytes) in corruptions(&orig) {
            let mut words = vec![0u32; bytes.len().div_ceil(4)];
            let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
            buf[..bytes.len()].copy_from_slice(&bytes);
            let buf = &buf[..bytes.len()];
            let kind = (bytes.len() >= 8).then(|| u16::from_le_bytes([bytes[6], bytes[7]]));
            // `parse_as::<1>`: magic, header length, version and kind come first, then a
            // kind other than 1 is refused; after that the checks are `Blob::parse`'s.
            let parsed = Blob::parse(buf);
            let early = matches!(
                parsed,
                Err(core_attn::Error::BadBlob(
                    core_attn::BlobError::BadMagic
                        | core_attn::BlobError::Version { .. }
                        | core_attn::BlobError::UnknownKind { .. }
                        | core_attn::BlobError::Truncated {
                            what: "blob truncated inside the header",
                            ..
                        }
                ))
            );
            let expected = match parsed {
                _ if !early && kind != Some(1) => {
                    "BadBlob(Invalid(\"model kind differs from the one asked for\"))".into()
                }
                Ok(b) => format!("ok {b:?}"),
                Err(e) => format!("{e:?}"),
            };
            let found = match Embedded::check_vit(buf) {
                Ok(e) => {
                    ok += 1;
                    match e.open(buf) {
                        Ok(b) => format!("ok {b:?}"),
                        Err(e) => format!("open failed: {e:?}"),
                    }
                }
                Err(e) => format!("{e:?}"),
            };
            cases += 1;
            if expected != found {
                bad.push(format!(
                    "{path} | {name}\n  parse: {}\n  const: {}",
                    &expected[..expected.len().min(200)],
                    &found[..found.len().min(200)]
                ));
            }
        }
    }
    eprintln!("{cases} cases, {ok} accepted");
    assert!(cases > 1000 && ok > 10, "{cases} cases, {ok} accepted");
    assert!(
        bad.is_empty(),
        "{} of {cases} differ, first 10:\n{}",
        bad.len(),
        bad[..bad.len().min(10)].join("\n")
    );
}
