//! The blob module's small public contracts that the round-trip and oracle suites
//! (`tests/blob.rs`, `tests/blob_oracle.rs`) do not pin down, each against an independent
//! computation: [`BufferSizes::fits_in`] and [`BufferSizes::total_bytes`] field by field,
//! [`EncoderDims::tokens`]. Written for the mutants those suites missed (`tests/MUTANTS.md`,
//! *`blob/`*); they test behaviour through the public API only, not the code's structure.

use core_attn::blob::{
    fnv1a32, Blob, BufferSizes, Embedded, EncoderDims, HEADER_WORDS, MAX_SECTIONS, NO_TOKEN,
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
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
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
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
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
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
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
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
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
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
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
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
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

// ---- Embedded: the compile-time check of an embedded ViT blob, called at run time here.

/// The committed ViT blob of the boards (`boards/common/models/vit-tiny.tatn`, 28 KiB: the
/// smallest ViT, so that the checks below stay quick under Miri).
const VIT_TINY: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../boards/common/models/vit-tiny.tatn"
));

/// A checked blob covers exactly the bytes its preamble's total-length word names (here the
/// whole file), and is not empty.
///
/// Guards against `Embedded::len` → `0` / `1` (mutants `blob/embedded.rs:109:9`) and
/// `Embedded::is_empty` → `true` or `total == 0` → `!=` (`114:9`, `114:20`). (`is_empty` →
/// `false` is equivalent: an `Embedded` exists only through `check_vit`, whose blob holds at
/// least its preamble and header, so `total` is never 0.)
#[test]
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
fn embedded_len_is_the_total_length_word() {
    let total = u32::from_le_bytes(VIT_TINY[12..16].try_into().unwrap()) as usize;
    assert_eq!(total, VIT_TINY.len(), "the file is one whole blob");
    let e = Embedded::check_vit(VIT_TINY).expect("the committed ViT blob checks");
    assert_eq!(e.len(), total);
    assert!(!e.is_empty());
    // One byte short of the length: `open` refuses it as truncated at exactly that length.
    assert_eq!(
        e.open(&VIT_TINY[..total - 1]).map(|_| ()),
        Err(Error::BadBlob(BlobError::Truncated {
            what: "blob shorter than its header says (truncated)",
            needed: total,
            available: total - 1,
        }))
    );
}

/// The panic message of `Embedded::vit` (in a `const`, the compile error's text) on a rejected
/// blob.
fn vit_panic(bytes: &[u8]) -> String {
    let payload = std::panic::catch_unwind(|| Embedded::vit(bytes)).expect_err("must panic");
    match (
        payload.downcast_ref::<String>(),
        payload.downcast_ref::<&str>(),
    ) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => (*s).to_string(),
        (None, None) => panic!("non-text panic payload"),
    }
}

/// `Embedded::vit` (what `include_model!` evaluates in a `const`) panics, on a blob
/// `check_vit` rejects, with the rejection's own text: the `Display` of the `BlobError`
/// `check_vit` returns (a bad magic, a truncated header, a flipped weight byte: a checksum
/// mismatch), or the `what` of a shape error.
///
/// Guards against `const_message` → `""` / `"xyzzy"` (mutants `blob/embedded.rs:156:5`: the
/// build would still fail on a bad blob, but with no word of what is wrong).
#[test]
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
fn embedded_vit_panics_with_the_check_message() {
    let mut flipped = VIT_TINY.to_vec();
    flipped[VIT_TINY.len() / 2] ^= 1;
    let mut magic = VIT_TINY.to_vec();
    magic[0] = b'X';
    for (name, bytes) in [
        ("bad magic", &magic[..]),
        ("header cut", &VIT_TINY[..20]),
        ("flipped byte", &flipped[..]),
    ] {
        let Err(Error::BadBlob(e)) = Embedded::check_vit(bytes) else {
            panic!("{name}: not a blob error");
        };
        let text = e.to_string();
        assert!(!text.is_empty());
        assert_eq!(vit_panic(bytes), text, "{name}");
    }
    assert_eq!(
        vit_panic(&magic),
        "bad magic (not a TATN model blob)",
        "the text itself"
    );
}

/// `bytes` (a patched `VIT_TINY`) with its total-length word set to its length and the
/// checksum recomputed.
fn resealed(mut b: Vec<u8>) -> Vec<u8> {
    let total = b.len() as u32;
    b[12..16].copy_from_slice(&total.to_le_bytes());
    let sum = fnv1a32(&b[12..]);
    b[8..12].copy_from_slice(&sum.to_le_bytes());
    b
}

/// A ViT blob that ends exactly where its section table ends (one section, no data): the
/// entry is read (it is inside the blob) and its section is out of bounds, the error
/// `Blob::parse` gives too.
///
/// Guards against the entry bound `e + ENTRY_BYTES > len` → `==` / `>=` in `C::take` (mutants
/// `blob/embedded.rs:255:28`: the last entry, ending at the blob's end, then reads as "blob
/// truncated"). (`255:14` `+` → `-` is equivalent: `table` already requires
/// `table + count·12 ≤ len`, so `e + 12 ≤ len` for every entry read and both `e + 12 > len`
/// and `e − 12 > len` are always false.)
#[test]
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
fn embedded_entry_ending_the_blob() {
    let mut b = VIT_TINY[..COUNT_END + 12].to_vec();
    b[COUNT_END - 4..COUNT_END].copy_from_slice(&1u32.to_le_bytes());
    let b = resealed(b);
    let word = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let (elem, offset, count) = (
        word(COUNT_END) >> 16,
        word(COUNT_END + 4),
        word(COUNT_END + 8),
    );
    let size = [1, 2, 4][elem - 1];
    let want = Err(Error::BadBlob(BlobError::SectionBounds {
        index: 0,
        end: offset + count * size,
        len: b.len(),
    }));
    assert_eq!(parse(&b), want);
    assert_eq!(Embedded::check_vit(&b).map(|_| ()), want);
}

/// `check_vit` against `Blob::parse` on the same bytes (a ViT blob: `check_vit` runs
/// `Blob::parse`'s checks in the same order, so they return the same result).
/// Returns the result (as `Debug` text).
fn assert_check_vit_is_parse(name: &str, b: &[u8]) -> String {
    let parsed = parse(b);
    assert_eq!(Embedded::check_vit(b).map(|_| ()), parsed, "{name}");
    format!("{parsed:?}")
}

/// The section table of a blob: `(tag, elem, offset, count)` per entry.
fn sections(b: &[u8]) -> Vec<(u32, u32, usize, usize)> {
    let word = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    (0..word(COUNT_END - 4) as usize)
        .map(|s| {
            let e = COUNT_END + 12 * s;
            let te = word(e);
            (
                te & 0xffff,
                te >> 16,
                word(e + 4) as usize,
                word(e + 8) as usize,
            )
        })
        .collect()
}

/// `VIT_TINY` with a vocabulary appended: two more table entries (`0x80` offsets as `i32`,
/// `0x81` text as `i8`, the module docs' layout), every section's data moved 32 bytes on (the
/// table grows by 24 bytes; sections stay 16-byte aligned), the two sections at the end.
fn vit_with_vocab(offsets: &[i32], text: &[u8]) -> Vec<u8> {
    let old = sections(VIT_TINY);
    let data = old.iter().map(|s| s.2).min().unwrap();
    assert!(COUNT_END + 12 * (old.len() + 2) <= data + 32);
    let mut b = VIT_TINY[..COUNT_END].to_vec();
    b[COUNT_END - 4..].copy_from_slice(&(old.len() as u32 + 2).to_le_bytes());
    let pad16 = |b: &mut Vec<u8>| b.resize(b.len().next_multiple_of(16), 0);
    let off_at = VIT_TINY.len() + 32;
    let text_at = (off_at + 4 * offsets.len()).next_multiple_of(16);
    let entry = |b: &mut Vec<u8>, te: u32, off: usize, n: usize| {
        for w in [te, off as u32, n as u32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
    };
    for &(t, e, off, n) in &old {
        entry(&mut b, t | e << 16, off + 32, n);
    }
    entry(&mut b, 0x80 | 3 << 16, off_at, offsets.len());
    entry(&mut b, 0x81 | 1 << 16, text_at, text.len());
    b.resize(data + 32, 0);
    b.extend_from_slice(&VIT_TINY[data..]);
    pad16(&mut b);
    assert_eq!(b.len(), off_at);
    for o in offsets {
        b.extend_from_slice(&o.to_le_bytes());
    }
    pad16(&mut b);
    b.extend_from_slice(text);
    resealed(b)
}

/// The vocabulary checks of `check_vit` give `Blob::parse`'s result on a ViT blob with a
/// class vocabulary (no committed ViT blob has one): the intact vocabulary (accepted, its ten
/// texts read back), and one broken at a time: too few or too many entries, offsets that do
/// not start at 0, end before or after the text, decrease (at the first and last entry),
/// point past the text, split a UTF-8 character, an empty offsets section, a section after
/// the vocabulary; and a blob without a vocabulary whose padding word after the section table
/// reads as the tag `0x80` (accepted).
///
/// Guards against `Vocab::is_empty` → `true` and its `==` → `!=` (mutants
/// `blob/vocab.rs:28:9`, `28:20`), and the mutants of `C::vocab` and of the vocabulary branch of `walk_vit`
/// (`blob/embedded.rs`, the `mutants` list in `tests/MUTANTS.md`): each of them accepts one
/// of these cases, refuses the intact one, or names another error.
#[test]
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
fn embedded_vocabulary_checks_are_parse_checks() {
    let names: Vec<String> = (0..10).map(|i| format!("digit {i} é")).collect();
    let mut offsets = vec![0i32];
    let mut text = Vec::new();
    for n in &names {
        text.extend_from_slice(n.as_bytes());
        offsets.push(text.len() as i32);
    }
    let good = vit_with_vocab(&offsets, &text);
    let mut w = vec![0u32; good.len().div_ceil(4)];
    let view: &mut [u8] = bytemuck::cast_slice_mut(&mut w);
    view[..good.len()].copy_from_slice(&good);
    let blob = Blob::parse(&view[..good.len()]).expect("a ViT blob with ten class names");
    let vocab = blob.vocab().expect("the vocabulary");
    assert_eq!((vocab.len(), vocab.is_empty()), (10, false));
    for (i, n) in names.iter().enumerate() {
        assert_eq!(vocab.text(i as u32), Some(n.as_str()));
    }
    let checked = Embedded::check_vit(&good).expect("check_vit accepts it too");
    assert_eq!(checked.len(), good.len());
    assert_eq!(
        format!("{:?}", checked.open(&view[..good.len()]).unwrap()),
        format!("{blob:?}")
    );
    let e_at = text.iter().position(|&c| c >= 0x80).unwrap() as i32 + 1;
    let with = |i: usize, v: i32| {
        let mut o = offsets.clone();
        o[i] = v;
        o
    };
    let len = text.len() as i32;
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        (
            "nine".into(),
            vit_with_vocab(&offsets[..10], &text[..offsets[9] as usize]),
        ),
        ("eleven".into(), {
            let mut o = offsets.clone();
            o.push(len);
            vit_with_vocab(&o, &text)
        }),
        ("empty offsets".into(), vit_with_vocab(&[], &text)),
        ("one offset".into(), vit_with_vocab(&[0], &[])),
        ("start 1".into(), vit_with_vocab(&with(0, 1), &text)),
        ("start -1".into(), vit_with_vocab(&with(0, -1), &text)),
        (
            "end short".into(),
            vit_with_vocab(&with(10, len - 1), &text),
        ),
        ("end long".into(), vit_with_vocab(&with(10, len + 1), &text)),
        ("decrease first".into(), vit_with_vocab(&with(1, -1), &text)),
        (
            "decrease late".into(),
            vit_with_vocab(&with(9, offsets[8] - 1), &text),
        ),
        ("equal".into(), vit_with_vocab(&with(1, 0), &text)),
        (
            "past the text".into(),
            vit_with_vocab(&with(5, len + 8), &text),
        ),
        ("inside é".into(), vit_with_vocab(&with(1, e_at), &text)),
        (
            "last inside é".into(),
            vit_with_vocab(&with(9, len - 1), &text),
        ),
        ("bad byte".into(), {
            let mut t = text.clone();
            t[0] = 0xff;
            vit_with_vocab(&offsets, &t)
        }),
        ("bad last byte".into(), {
            let mut t = text.clone();
            *t.last_mut().unwrap() = 0xc3;
            vit_with_vocab(&offsets, &t)
        }),
    ];
    // A section after the vocabulary (the count one higher, an entry copied).
    let mut extra = good.clone();
    let count = sections(&good).len();
    extra[COUNT_END - 4..COUNT_END].copy_from_slice(&(count as u32 + 1).to_le_bytes());
    cases.push(("section after the vocabulary".into(), resealed(extra)));
    // The offsets' tag changed: no vocabulary, then two sections too many.
    let mut tagged = good.clone();
    tagged[COUNT_END + 12 * (count - 2)] = 0x7f;
    cases.push(("offsets tag 0x7f".into(), resealed(tagged)));
    // No vocabulary, and the padding word after the section table reads like the tag 0x80:
    // only a table entry is a section (the vocabulary check stops at the section count).
    let table_end = COUNT_END + 12 * sections(VIT_TINY).len();
    assert!(sections(VIT_TINY).iter().all(|s| s.2 >= table_end + 4));
    let mut padded = VIT_TINY.to_vec();
    padded[table_end..table_end + 4].copy_from_slice(&0x80u32.to_le_bytes());
    let padded = resealed(padded);
    assert_eq!(parse(&padded), Ok(()));
    assert_eq!(Embedded::check_vit(&padded).map(|_| ()), Ok(()));
    // Under Miri every fifth case only (each one is 28 KiB checksummed four times).
    let step = if cfg!(miri) { 5 } else { 1 };
    let mut outcomes = std::collections::BTreeSet::new();
    for (name, b) in cases.iter().step_by(step) {
        outcomes.insert(assert_check_vit_is_parse(name, b));
    }
    // Every case but "equal" (an empty class name: allowed) is refused, with many errors.
    assert_eq!(parse(&cases[10].1), Ok(()));
    assert!(cfg!(miri) || outcomes.len() >= 9, "{outcomes:#?}");
}

/// `check_vit` gives `Blob::parse`'s result on `VIT_TINY` with one value set to a limit of a
/// check at a time: every element of every scalar section (`i32`, at most 8 values: shapes,
/// zero points, requantization pairs, placement) to both sides of the int8 range, of the
/// requantization shift range (`31 − shift` in 1..=62), of a residual's shift limit (8), of
/// [`core_attn::MAX_WIDTH`], and small values; the first element of every larger `i32`
/// section (biases, multipliers, LayerNorm γ/β) to both sides of
/// [`core_attn::linear::MAX_BIAS`] and negative; the first element of every `i8` section to
/// both sides of the shift range; the exp tables at their edges (entry 0 zero, a flat and a
/// rising step at both ends). The blob oracle (`tests/blob_oracle.rs`) sets values like 0, −1
/// and 300, which miss most of these edges.
///
/// Guards against the comparison mutants of the const checks (`int8`, `usize_of`,
/// `requant`, `validate_linear`'s width, bias and zero-point bounds, `exp_ok`,
/// `validate_layer_norm`, `validate_attention`, `validate_residual`'s shift limit: the
/// `blob/embedded.rs` entries of `tests/MUTANTS.md`): each moves one edge by one, and the case
/// on that edge then differs from `Blob::parse`.
#[test]
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
fn embedded_check_equals_parse_at_the_limits() {
    let max_w = core_attn::MAX_WIDTH as i32;
    let max_b = core_attn::linear::MAX_BIAS;
    let word = |b: &mut [u8], at: usize, v: i32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    let mut case = |name: String, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = VIT_TINY.to_vec();
        f(&mut b);
        cases.push((name, resealed(b)));
    };
    for (s, &(tag, elem, off, n)) in sections(VIT_TINY).iter().enumerate() {
        if tag == 0x30 {
            // Attention widths `heads · head_dim` at and past the limit.
            for (h, d) in [
                (1, max_w),
                (2, max_w / 2),
                (1, max_w + 1),
                (4, max_w / 4 + 1),
            ] {
                case(format!("s{s} heads {h} head_dim {d}"), &|b| {
                    word(b, off, h);
                    word(b, off + 4, d)
                });
            }
        }
        match elem {
            3 if n <= 8 => {
                for k in 0..n {
                    for v in [
                        -129,
                        -128,
                        127,
                        128,
                        -33,
                        -32,
                        -31,
                        30,
                        31,
                        8,
                        9,
                        -1,
                        0,
                        1,
                        2,
                        max_w,
                        max_w + 1,
                    ] {
                        case(format!("s{s} tag {tag:#x} [{k}] = {v}"), &|b| {
                            word(b, off + 4 * k, v)
                        });
                    }
                }
            }
            3 => {
                for v in [max_b, max_b + 1, -max_b, -max_b - 1, -1, i32::MIN] {
                    case(format!("s{s} tag {tag:#x} [0] = {v}"), &|b| word(b, off, v));
                }
            }
            1 => {
                for v in [-32i8, -31, 30, 31] {
                    case(format!("s{s} tag {tag:#x} [0] = {v}"), &|b| {
                        b[off] = v as u8
                    });
                }
            }
            _ => {
                let u16_at =
                    |b: &[u8], i: usize| u16::from_le_bytes([b[off + 2 * i], b[off + 2 * i + 1]]);
                let set = |b: &mut [u8], i: usize, v: u16| {
                    b[off + 2 * i..off + 2 * i + 2].copy_from_slice(&v.to_le_bytes())
                };
                assert_eq!(n, 256, "s{s}: a u16 section is an exp table");
                case(format!("s{s} exp[0] = 0"), &|b| set(b, 0, 0));
                for i in [1, 255] {
                    case(format!("s{s} exp[{i}] flat"), &|b| {
                        let v = u16_at(b, i - 1);
                        set(b, i, v)
                    });
                    case(format!("s{s} exp[{i}] rising"), &|b| {
                        // One above its predecessor (the predecessor lowered at the top).
                        let v = u16_at(b, i - 1).min(u16::MAX - 1);
                        set(b, i - 1, v);
                        set(b, i, v + 1)
                    });
                }
            }
        }
    }
    // Under Miri every 500th case only (each one is 28 KiB checksummed four times).
    let step = if cfg!(miri) { 500 } else { 1 };
    let mut outcomes = std::collections::BTreeSet::new();
    for (name, b) in cases.iter().step_by(step) {
        outcomes.insert(assert_check_vit_is_parse(name, b));
    }
    assert!(cases.len() > 1000, "{} cases", cases.len());
    if !cfg!(miri) {
        assert!(outcomes.len() > 20, "{outcomes:#?}");
    }
}

// ---- The accessors of a parsed blob.

/// A committed blob in `u32` storage (the `i32` views need 4-byte alignment).
fn committed(path: &str) -> Vec<u32> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    let b = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut w = vec![0u32; b.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut w)[..b.len()].copy_from_slice(&b);
    w
}

/// Each accessor of [`Blob`], on a committed blob of each kind, against the blob's own bytes
/// read independently (preamble words, the section table): the parts the kind has are read
/// from the section the table lists for them (compared by address: block `i`'s first norm is
/// the section after the `i`-th block-scalars section (tag `0x70`), the heads' weights are the
/// last `0x21` sections before the vocabulary), the parts it has not, and a block index past
/// the last, are "the model has no such part"; `kind`, `len`, `is_empty`, `buffers`, the
/// Llama BOS / EOS ids are the preamble's and header's words.
///
/// Guards against the accessor mutants of `blob/parse.rs` (`tests/MUTANTS.md`): a `need`
/// condition weakened (`&&` → `||`, `i < layers` → `<=`), a block's section index computed
/// with `+` or `/` for `*`, `len` / `kind` / `buffers` / `llama_bos` / `llama_eos` replaced by
/// a constant.
#[test]
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
fn accessors_read_the_listed_sections() {
    use core_attn::blob::ModelKind;
    use core_attn::llama::LlamaModel;
    let paths: &[&str] = if cfg!(miri) {
        &["boards/common/models/vit-tiny.tatn"]
    } else {
        &[
            "boards/common/models/vit-tiny.tatn",
            "boards/common/models/gpt2-tiny.tatn",
            "boards/common/models/encdec-tiny.tatn",
            "boards/common/models/llama2c-tiny.tatn",
            "models/char-lm.tatn",
        ]
    };
    let no_part = || Error::BadBlob(BlobError::Invalid("the model has no such part"));
    for path in paths {
        let words = committed(path);
        let raw: &[u8] = bytemuck::cast_slice(&words);
        let word = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().unwrap());
        let total = word(12) as usize;
        let bytes = &raw[..total];
        let b = Blob::parse(bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        let base = bytes.as_ptr() as usize;
        let at = |p: *const u8| p as usize - base;
        let secs = sections(bytes);
        let kind = match u16::from_le_bytes([bytes[6], bytes[7]]) {
            1 => ModelKind::VitClassifier,
            2 => ModelKind::DecoderLm,
            3 => ModelKind::EncoderDecoder,
            4 => ModelKind::Llama,
            k => panic!("{path}: kind {k}"),
        };
        assert_eq!(b.kind(), kind, "{path}");
        assert_eq!((b.len(), b.is_empty()), (total, false), "{path}");
        assert_eq!(b.buffers(), b.header().buffers, "{path}");
        assert_ne!(b.buffers(), BufferSizes::default(), "{path}");
        let has_vocab = secs.iter().any(|s| s.0 == 0x80);
        let vocab_len = b.vocab().map(|v| v.len());
        let classes = match kind {
            ModelKind::VitClassifier => b.header().encoder.classes,
            _ => b.header().decoder.vocab,
        };
        assert_eq!(vocab_len, has_vocab.then_some(classes), "{path}");
        // Block `i` (in file order: encoder blocks, then decoder blocks): its first norm's
        // γ is the section after the `i`-th 0x70 section.
        let blocks: Vec<usize> = secs
            .iter()
            .enumerate()
            .filter(|s| s.1 .0 == 0x70)
            .map(|(i, _)| secs[i + 1].2)
            .collect();
        let heads: Vec<usize> = secs.iter().filter(|s| s.0 == 0x21).map(|s| s.2).collect();
        let (el, dl) = (b.header().encoder.layers, b.header().decoder.layers);
        let enc = kind.has_encoder();
        let dec = kind.has_decoder();
        let llama = kind == ModelKind::Llama;
        assert_eq!(
            blocks.len(),
            if enc { el } else { 0 } + if dec || llama { dl } else { 0 }
        );
        for i in 0..=el.max(dl) {
            let e = b.encoder_block(i).map(|x| at(x.ln1.gamma.as_ptr().cast()));
            let want = if enc && i < el {
                Ok(blocks[i])
            } else {
                Err(no_part())
            };
            assert_eq!(e, want, "{path} encoder block {i}");
            let d = b.decoder_block(i).map(|x| at(x.ln1.gamma.as_ptr().cast()));
            let first_dec = if enc { el } else { 0 };
            let want = if dec && i < dl {
                Ok(blocks[first_dec + i])
            } else {
                Err(no_part())
            };
            assert_eq!(d, want, "{path} decoder block {i}");
            let l = b.llama_block(i).map(|x| at(x.rms1.gamma.as_ptr().cast()));
            let want = if llama && i < dl {
                Ok(blocks[i])
            } else {
                Err(no_part())
            };
            assert_eq!(l, want, "{path} llama block {i}");
            let l = LlamaModel::llama_block(&b, i).map(|x| at(x.rms1.gamma.as_ptr().cast()));
            assert_eq!(l, want, "{path} LlamaModel::llama_block {i}");
        }
        let last_w = *heads.last().unwrap();
        let ok_if = |c: bool, v: usize| if c { Ok(v) } else { Err(no_part()) };
        let w = |r: Result<core_attn::linear::Linear<'_>, Error>| {
            r.map(|l| at(l.weights.as_ptr().cast()))
        };
        assert_eq!(
            w(b.classifier()),
            ok_if(kind == ModelKind::VitClassifier, last_w),
            "{path}"
        );
        assert_eq!(w(b.lm_head()), ok_if(dec, last_w), "{path}");
        assert_eq!(
            w(LlamaModel::llama_head(&b)),
            ok_if(llama, last_w),
            "{path}"
        );
        let first = |tag: u32| secs.iter().find(|s| s.0 == tag).map_or(usize::MAX, |s| s.2);
        assert_eq!(
            b.vit_embedding().map(|v| at(v.class_token.as_ptr().cast())),
            ok_if(enc, first(0x62)),
            "{path}"
        );
        assert_eq!(
            b.token_embedding().map(|t| at(t.table.as_ptr().cast())),
            ok_if(dec, first(0x60)),
            "{path}"
        );
        assert_eq!(
            LlamaModel::llama_embedding(&b).map(|t| at(t.as_ptr().cast())),
            ok_if(llama, first(0x60)),
            "{path}"
        );
        // The final norms: the γ section after the last block's sections, i.e. the last
        // norm-γ section (0x10 LayerNorm, 0x94 RMSNorm) before the head (an encoder-decoder
        // has two: the encoder's before the first decoder block).
        let gammas: Vec<(usize, usize)> = secs
            .iter()
            .enumerate()
            .filter(|s| s.1 .0 == 0x10 || s.1 .0 == 0x94)
            .map(|(i, s)| (i, s.2))
            .collect();
        let before = |idx: usize| gammas.iter().rev().find(|g| g.0 < idx).unwrap().1;
        let head_idx = secs.iter().rposition(|s| s.0 == 0x21).unwrap();
        let first_dec_block = if dec && enc {
            secs.iter()
                .enumerate()
                .filter(|s| s.1 .0 == 0x70)
                .nth(el)
                .unwrap()
                .0
        } else {
            usize::MAX
        };
        let g = |r: Result<core_attn::norm::LayerNorm<'_>, Error>| {
            r.map(|n| at(n.gamma.as_ptr().cast()))
        };
        assert_eq!(
            g(b.encoder_final_norm()),
            ok_if(enc, before(first_dec_block.min(head_idx))),
            "{path}"
        );
        assert_eq!(
            g(b.decoder_final_norm()),
            ok_if(dec, before(head_idx)),
            "{path}"
        );
        assert_eq!(
            LlamaModel::llama_final_norm(&b).map(|n| at(n.gamma.as_ptr().cast())),
            ok_if(llama, before(head_idx)),
            "{path}"
        );
        if llama {
            assert_eq!(LlamaModel::llama_bos(&b), word(16 + 4 * 18), "{path}");
            assert_eq!(LlamaModel::llama_eos(&b), word(16 + 4 * 19), "{path}");
        }
    }
    // BOS and EOS ids other than the committed blob's (both 1), read from the header words.
    if !cfg!(miri) {
        let b = with_word(&with_word(&llama_blob(), 18, 5), 19, 7);
        let mut w = vec![0u32; b.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut w)[..b.len()].copy_from_slice(&b);
        let blob = Blob::parse(&bytemuck::cast_slice(&w)[..b.len()]).unwrap();
        assert_eq!(
            (LlamaModel::llama_bos(&blob), LlamaModel::llama_eos(&blob)),
            (5, 7)
        );
    }
}

/// `check_vit` gives `Blob::parse`'s result for a LayerNorm width at its limits, on the
/// committed `models/vit-mnist.tatn` (86 KB: room for a [`core_attn::MAX_WIDTH`] + 1 wide
/// section) with the first block's γ and β entries pointed at the same bytes (offset 16) with
/// 0, 1, `MAX_WIDTH` and `MAX_WIDTH + 1` elements: the width check (0 and over the limit
/// refused as "layer norm width") before the block's shape checks.
///
/// Guards against `validate_layer_norm` → `Ok(())`, `width == 0 || width > MAX_WIDTH` with
/// `||` → `&&`, `>` → `==` / `>=` (mutants `blob/embedded.rs:594:*`).
#[test]
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
#[cfg_attr(
    miri,
    ignore = "an 86 KB blob checksummed eight times: minutes under Miri"
)]
fn embedded_layer_norm_width_limits() {
    let words = committed("models/vit-mnist.tatn");
    let raw: &[u8] = bytemuck::cast_slice(&words);
    let total = u32::from_le_bytes(raw[12..16].try_into().unwrap()) as usize;
    let orig = &raw[..total];
    let secs = sections(orig);
    let gamma = secs.iter().position(|s| s.0 == 0x10).unwrap();
    assert_eq!(secs[gamma + 1].0, 0x11, "β follows γ");
    let max = core_attn::MAX_WIDTH;
    assert!(16 + 4 * (max + 1) <= total);
    let mut outcomes = std::collections::BTreeSet::new();
    for n in [0, 1, max, max + 1] {
        let mut b = orig.to_vec();
        for s in [gamma, gamma + 1] {
            let e = COUNT_END + 12 * s;
            b[e + 4..e + 8].copy_from_slice(&16u32.to_le_bytes());
            b[e + 8..e + 12].copy_from_slice(&(n as u32).to_le_bytes());
        }
        let b = resealed(b);
        let found = assert_check_vit_is_parse(&format!("width {n}"), &b);
        if n == 0 || n > max {
            assert_eq!(
                parse(&b),
                Err(Error::BadDimension {
                    what: "layer norm width",
                    value: n
                })
            );
        }
        outcomes.insert(found);
    }
    assert_eq!(outcomes.len(), 4, "{outcomes:#?}");
}

/// A blob that ends right after its section count (the header of `vit-tiny.tatn`, a count of
/// 0, the length word and checksum rewritten): the count word is read (it is inside the
/// blob), the empty table fits, and the walk finds no section: "fewer sections than the model
/// needs", from `Blob::parse` and from `Embedded::check_vit` alike.
///
/// Guards against `end > bytes.len()` → `==` / `>=` in `word` (mutants `blob/reader.rs:59:12`:
/// a word ending at the blob's end then reads as "blob truncated").
#[test]
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
fn count_word_ending_the_blob() {
    let mut b = VIT_TINY[..COUNT_END].to_vec();
    b[COUNT_END - 4..].copy_from_slice(&0u32.to_le_bytes());
    let b = resealed(b);
    let want = invalid("fewer sections than the model needs");
    assert_eq!(parse(&b), want);
    assert_eq!(Embedded::check_vit(&b).map(|_| ()), want);
}

/// The greedy longest-match encoding, as a reference: at each position the longest
/// non-empty entry that matches, the smallest id among equally long ones.
fn encode_reference(entries: &[&str], text: &str) -> Option<Vec<u32>> {
    let mut rest = text;
    let mut ids = Vec::new();
    while !rest.is_empty() {
        let (id, len) = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_empty() && rest.starts_with(*e))
            .map(|(i, e)| (i as u32, e.len()))
            .fold(None, |best: Option<(u32, usize)>, (i, l)| match best {
                Some((_, bl)) if bl >= l => best,
                _ => Some((i, l)),
            })?;
        ids.push(id);
        rest = &rest[len..];
    }
    Some(ids)
}

/// `Vocab::encode` on a class vocabulary whose entries overlap (prefixes of each other, a
/// duplicate, an empty entry) against the reference greedy longest match (ties: the
/// smallest id): the longest entry wins at each position, and of two equal entries the
/// first.
///
/// Guards against `l > bl` → `>=` (the last of equal entries wins), `<` (the shortest wins),
/// `==` (the first match wins) in `Vocab::encode` (mutants `blob/vocab.rs:54:86`), and the
/// `needed` of its full-buffer error `n + 1` → `n * 1` (`68:27`).
#[test]
#[cfg_attr(
    miri,
    ignore = "mutation-coverage sweeps over whole blobs: over 20 min under Miri; the blob suite runs the same parse paths there"
)]
fn vocab_encode_takes_the_longest_first_entry() {
    let entries = ["a", "ab", "a", "b", "abc", "", "c", "bc", "é", "x"];
    let mut offsets = vec![0i32];
    let mut text = Vec::new();
    for e in entries {
        text.extend_from_slice(e.as_bytes());
        offsets.push(text.len() as i32);
    }
    let b = vit_with_vocab(&offsets, &text);
    let mut w = vec![0u32; b.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut w)[..b.len()].copy_from_slice(&b);
    let blob = Blob::parse(&bytemuck::cast_slice(&w)[..b.len()]).unwrap();
    let vocab = blob.vocab().unwrap();
    let mut changed = 0;
    for t in [
        "a", "ab", "abc", "ba", "bca", "cab", "éab", "abx", "xa", "bcc",
    ] {
        let want = encode_reference(&entries, t).unwrap();
        let mut out = [0u32; 8];
        let n = vocab.encode(t, &mut out).unwrap();
        assert_eq!(&out[..n], &want[..], "{t:?}");
        // The reference is not the first-match or shortest-match encoding on most texts.
        changed += usize::from(want.len() < t.len());
    }
    assert!(changed >= 5);
    // Three ids into room for two: the error names the room needed for the third.
    assert_eq!(
        vocab.encode("xxx", &mut [0u32; 2]),
        Err(Error::BufferTooSmall {
            what: "token ids buffer",
            needed: 3,
            available: 2
        })
    );
}
