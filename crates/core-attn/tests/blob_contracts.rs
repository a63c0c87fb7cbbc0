//! The blob module's small public contracts that the round-trip and oracle suites
//! (`tests/blob.rs`, `tests/blob_oracle.rs`) do not pin down, each against an independent
//! computation: [`BufferSizes::fits_in`] and [`BufferSizes::total_bytes`] field by field,
//! [`EncoderDims::tokens`]. Written for the mutants those suites missed (`tests/MUTANTS.md`,
//! *`blob/`*); they test behaviour through the public API only, not the code's structure.

use core_attn::blob::{
    fnv1a32, Blob, BufferSizes, EncoderDims, HEADER_WORDS, MAX_SECTIONS, NO_TOKEN,
};
use core_attn::error::{BlobError, Error};

/// The eight fields of a [`BufferSizes`], in declaration order (the independent view).
fn fields(b: &BufferSizes) -> [usize; 8] {
    [
        b.x, b.normed, b.wide, b.scores, b.patch, b.logits, b.kv, b.cross_kv,
    ]
}

fn from_fields(f: [usize; 8]) -> BufferSizes {
    BufferSizes {
        x: f[0],
        normed: f[1],
        wide: f[2],
        scores: f[3],
        patch: f[4],
        logits: f[5],
        kv: f[6],
        cross_kv: f[7],
    }
}

/// `fits_in` is true exactly when every field is at most the available one: equal sizes fit,
/// any one field one larger than available does not, any one field smaller still fits.
///
/// Guards against `fits_in` → `false` (mutant `blob/mod.rs:217:9`) and any one of its eight
/// `<=` turned into `>` (`217:16`, `218:28`, …: the equal case then fails) or `&&` into `||`
/// (one field too large then passes).
#[test]
fn fits_in_compares_every_field() {
    let need = [10usize, 20, 30, 40, 50, 60, 70, 80];
    let needed = from_fields(need);
    assert!(needed.fits_in(&needed), "equal sizes fit");
    assert!(BufferSizes::default().fits_in(&needed));
    for i in 0..8 {
        let mut less = need;
        less[i] -= 1;
        let want = need.iter().zip(&less).all(|(n, a)| n <= a);
        assert!(!want);
        assert_eq!(
            needed.fits_in(&from_fields(less)),
            want,
            "field {i} one short"
        );
        let mut more = need;
        more[i] += 1;
        assert!(needed.fits_in(&from_fields(more)), "field {i} one larger");
        // Only field i larger than the need: it fits; only field i needed above it: not.
        let mut big = [usize::MAX; 8];
        big[i] = need[i];
        assert!(
            needed.fits_in(&from_fields(big)),
            "field {i} equal, rest huge"
        );
        big[i] = need[i] - 1;
        assert!(
            !needed.fits_in(&from_fields(big)),
            "field {i} short, rest huge"
        );
    }
}

/// `total_bytes` is the sum of the fields with `scores` counted as 4 bytes (`i32` entries),
/// saturating at `usize::MAX` rather than wrapping or panicking.
#[test]
fn total_bytes_sums_the_fields() {
    let f = [1usize, 2, 4, 8, 16, 32, 64, 128];
    let b = from_fields(f);
    let want: usize = f.iter().sum::<usize>() + 3 * f[3];
    assert_eq!(b.total_bytes(), want);
    assert_eq!(fields(&b), f);
    for i in 0..8 {
        let mut g = [0usize; 8];
        g[i] = 1000;
        let scale = if i == 3 { 4 } else { 1 };
        assert_eq!(from_fields(g).total_bytes(), 1000 * scale, "field {i}");
        g[i] = usize::MAX - 1;
        g[(i + 1) % 8] = 2;
        assert_eq!(
            from_fields(g).total_bytes(),
            usize::MAX,
            "field {i} saturates"
        );
    }
}

/// `tokens` is the patch count plus the class token, 0 without an encoder (patch 0).
#[test]
fn encoder_tokens() {
    let dims = |h: usize, w: usize, p: usize| EncoderDims {
        height: h,
        image_width: w,
        patch: p,
        ..EncoderDims::default()
    };
    assert_eq!(dims(28, 28, 0).tokens(), 0);
    assert_eq!(dims(28, 28, 7).tokens(), 4 * 4 + 1);
    assert_eq!(dims(32, 16, 4).tokens(), 8 * 4 + 1);
    assert_eq!(dims(5, 5, 5).tokens(), 2);
}

// ---- Blob::parse on hand-made and patched blobs: the exact error of each rejected input.

/// Bytes of the preamble (magic, version, kind, checksum, total length), then the header words
/// and the section count (the module docs' layout).
const PREAMBLE: usize = 16;
const COUNT_END: usize = PREAMBLE + 4 * HEADER_WORDS + 4;

/// `bytes` in `u32` storage (the `i32` section views need 4-byte alignment), parsed.
fn parse(bytes: &[u8]) -> Result<(), Error> {
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    let view: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    view[..bytes.len()].copy_from_slice(bytes);
    Blob::parse(&view[..bytes.len()]).map(|_| ())
}

/// `bytes` with header word `i` set to `v` and the checksum recomputed (so that parsing gets
/// past it to the check under test).
fn with_word(bytes: &[u8], i: usize, v: u32) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[PREAMBLE + 4 * i..PREAMBLE + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    let total = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    let sum = fnv1a32(&b[12..total]);
    b[8..12].copy_from_slice(&sum.to_le_bytes());
    b
}

fn invalid(what: &'static str) -> Result<(), Error> {
    Err(Error::BadBlob(BlobError::Invalid(what)))
}

/// The input lengths around the two "truncated" checks at the start of `parse`: fewer than 4
/// bytes is a bad magic, 4 bytes of magic are a truncated header (needing the preamble, header
/// words and section count), and a blob of exactly that length gets past both (here to the
/// header check: a ViT with zero dimensions); the same edges for the length word.
///
/// Guards against `bytes.len() < 4` → `<=` (mutant `blob/parse.rs:59:24`: `"TATN"` alone
/// reported as a bad magic), `bytes.len() < TABLE_COUNT_OFFSET + 4` → `<=` (`62:24`: the
/// shortest complete header reported as truncated), its `+ 4` → `- 4` / `* 4` (`62:45`,
/// `65:44`: the threshold or the `needed` of the error moved), and the same three for the
/// length word (`87:18` `total < …` → `<=`, `87:39` `+` → `-` / `*`).
#[test]
fn shortest_inputs() {
    assert_eq!(parse(b"TAT"), Err(Error::BadBlob(BlobError::BadMagic)));
    assert_eq!(
        parse(b"TATN"),
        Err(Error::BadBlob(BlobError::Truncated {
            what: "blob truncated inside the header",
            needed: COUNT_END,
            available: 4,
        }))
    );
    let mut b = vec![0u8; COUNT_END];
    b[..4].copy_from_slice(b"TATN");
    b[4..6].copy_from_slice(&1u16.to_le_bytes()); // version
    b[6..8].copy_from_slice(&1u16.to_le_bytes()); // ViT classifier
    b[12..16].copy_from_slice(&(COUNT_END as u32).to_le_bytes());
    let b = with_word(&b, 0, 0);
    assert_eq!(parse(&b), invalid("encoder dimension is zero"));
    // A length word one short of the header (checksum over what it covers).
    let mut short = b.clone();
    short[12..16].copy_from_slice(&(COUNT_END as u32 - 1).to_le_bytes());
    assert_eq!(
        parse(&with_word(&short, 0, 0)),
        Err(Error::BadBlob(BlobError::Mismatch {
            what: "total length smaller than the header",
            expected: COUNT_END,
            found: COUNT_END - 1,
        }))
    );
    assert_eq!(
        parse(&b[..COUNT_END - 1]),
        Err(Error::BadBlob(BlobError::Truncated {
            what: "blob truncated inside the header",
            needed: COUNT_END,
            available: COUNT_END - 1,
        }))
    );
}

/// The committed Llama blob (`boards/common/models/llama2c-tiny.tatn`).
fn llama_blob() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../boards/common/models/llama2c-tiny.tatn");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A Llama header's own checks, one field at a time on the committed Llama blob: the
/// sinusoidal flag alone, a start token just past the vocabulary (and none at all, which is
/// allowed), an encoder dimension alone, an input scale alone.
///
/// Guards against `d.sinusoidal || start out of range` → `&&` (mutant `blob/header.rs:220:29`:
/// the flag alone accepted), `start_token != NO_TOKEN` → `==` (`220:46`: an out-of-range start
/// accepted, a missing one refused), `encoder dims != default || input_scale_bits != 0` → `&&`
/// (`233:45`: either alone accepted).
#[test]
fn llama_header_checks() {
    let b = llama_blob();
    assert_eq!(parse(&b), Ok(()));
    let vocab = u32::from_le_bytes(b[PREAMBLE + 4 * 14..PREAMBLE + 4 * 15].try_into().unwrap());
    let why = "llama header: sinusoidal flag set or start token outside the vocabulary";
    assert_eq!(parse(&with_word(&b, 16, 1)), invalid(why));
    assert_eq!(parse(&with_word(&b, 18, vocab)), invalid(why));
    assert_eq!(parse(&with_word(&b, 18, vocab - 1)), Ok(()));
    assert_eq!(parse(&with_word(&b, 18, NO_TOKEN)), Ok(()));
    let why = "llama header with encoder dimensions";
    assert_eq!(parse(&with_word(&b, 0, 1)), invalid(why));
    assert_eq!(parse(&with_word(&b, 21, 1)), invalid(why));
}

/// The section count against its limit and against the blob's length, on the committed Llama
/// blob (the count is the word after the header words): one past [`MAX_SECTIONS`] is "too
/// many sections"; [`MAX_SECTIONS`] itself, and the smallest count whose 12-byte table entries
/// no longer fit the blob, are a truncated table whose `needed` is the table's end.
///
/// Guards against `count > MAX_SECTIONS` → `>=` (mutant `blob/parse.rs:138:18`), the table
/// bound `table + count * ENTRY_BYTES > len` with `*` → `+` / `/` (`147:26`: a table that
/// does not fit then passes), and the error's `needed` with `+` → `-` / `*` (`150:31`) or
/// `*` → `+` / `/` (`150:39`).
#[test]
fn section_count_limits() {
    let b = llama_blob();
    let len = b.len();
    let entry = 12;
    assert!(
        COUNT_END + MAX_SECTIONS * entry > len,
        "the test needs a blob under 768 KiB"
    );
    assert_eq!(
        parse(&with_word(&b, HEADER_WORDS, MAX_SECTIONS as u32 + 1)),
        Err(Error::BadBlob(BlobError::Mismatch {
            what: "too many sections",
            expected: MAX_SECTIONS,
            found: MAX_SECTIONS + 1,
        }))
    );
    let over = (len - COUNT_END) / entry + 1;
    for count in [MAX_SECTIONS, over] {
        assert_eq!(
            parse(&with_word(&b, HEADER_WORDS, count as u32)),
            Err(Error::BadBlob(BlobError::Truncated {
                what: "section table extends past the end of the blob",
                needed: COUNT_END + count * entry,
                available: len,
            })),
            "count {count}"
        );
    }
}
