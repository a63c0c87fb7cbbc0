//! `examples/qemu-mps2-an386`: core-attn's device API used the way the README tells a user,
//! run under QEMU and checked against the host.
//!
//! - `classify` prints one `digit N` line per embedded test image: N must be the int8 top-1
//!   that `tools simulate` computes for the same images (host: the float `.npy` quantized with
//!   the blob's input parameters, `model::vit_classify`), independent of the firmware's
//!   `u8` → `PixelMap` path.
//! - `generate` prints the prompt and 60 greedily generated characters: they must be the
//!   host's `model::greedy` ids (through `tools::int8::generate`) from the same prompt, each
//!   turned into text with the blob's vocabulary (the prompt encoded here by a plain
//!   one-character lookup, not by the firmware's `Vocab::encode`).
//! - The claim of the README — ≤ 15 lines of user code to classify, ≤ 25 to generate — is
//!   counted here on the two binaries (non-blank lines that are not `//` comments).
//!
//! Needs `qemu-system-arm` and the thumbv7em target (`.ci/run` installs them). `SKIP_QEMU=1`
//! skips the firmware runs (loudly); the line counts are checked regardless.

use std::path::{Path, PathBuf};
use std::process::Command;

use core_attn::blob::Blob;
use core_attn::model::{argmax_i8, vit_classify};
use tools::int8::{generate, quantize_image, AlignedBlob};

/// The prompt and length `src/bin/generate.rs` uses.
const PROMPT: &str = "And God said, Let there be ";
const MAX_NEW: usize = 60;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example_dir() -> PathBuf {
    root().join("examples/qemu-mps2-an386")
}

fn skip() -> bool {
    if std::env::var_os("SKIP_QEMU").is_some() {
        eprintln!("SKIP_QEMU set: examples/qemu-mps2-an386 NOT run under QEMU");
        return true;
    }
    false
}

/// `cargo run --release --quiet --bin BIN` in the example: (success, stdout, stdout + stderr).
fn run_bin(bin: &str) -> (bool, String, String) {
    run_bin_with(bin, &["--release"])
}

/// [`run_bin`] with other cargo arguments (profile, features) instead of `--release`.
fn run_bin_with(bin: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--bin", bin])
        .args(args)
        .current_dir(example_dir())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("TATN_IMAGES")
        .env_remove("TATN_LABELS")
        .output()
        .unwrap_or_else(|e| panic!("cargo run --bin {bin} in examples/qemu-mps2-an386: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!(
        "{stdout}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), stdout, all)
}

fn blob(name: &str) -> AlignedBlob {
    AlignedBlob::read(&root().join(format!("models/{name}.tatn"))).unwrap()
}

/// Lines of code: non-blank, not a `//` comment (`//!` and `///` included).
fn code_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

#[test]
fn user_code_line_counts() {
    let bin = example_dir().join("src/bin");
    let classify = code_lines(&bin.join("classify.rs"));
    let generate = code_lines(&bin.join("generate.rs"));
    eprintln!("classify.rs: {classify} lines, generate.rs: {generate} lines");
    assert!(classify <= 15, "classify.rs has {classify} lines of code");
    assert!(generate <= 25, "generate.rs has {generate} lines of code");
    // The count is of real code: the model calls are in the binaries, not in the glue.
    let text = std::fs::read_to_string(bin.join("classify.rs")).unwrap();
    assert!(text.contains("include_model!") && text.contains("classify_u8"));
    let text = std::fs::read_to_string(bin.join("generate.rs")).unwrap();
    assert!(text.contains("include_model!") && text.contains(".generate("));
    assert!(text.contains(PROMPT) && text.contains(&format!("], {MAX_NEW},")));
}

/// The number of digits the example embeds (`IMAGES` in `examples/common/test_digits.rs`).
fn embedded_images() -> usize {
    let src = std::fs::read_to_string(root().join("examples/common/test_digits.rs")).unwrap();
    let line = src
        .lines()
        .find(|l| l.starts_with("pub const IMAGES: usize = "))
        .expect("IMAGES in test_digits.rs");
    line.trim_start_matches("pub const IMAGES: usize = ")
        .trim_end_matches(';')
        .parse()
        .unwrap()
}

/// The host's int8 top-1 of the embedded test digits, one `digit N` line each.
fn host_digits() -> Vec<String> {
    let n = embedded_images();
    let aligned = blob("vit-mnist");
    let blob: Blob<'_> = aligned.parse(Path::new("vit-mnist.tatn")).unwrap();
    let (shape, pixels) =
        tools::checkpoint::npy::read_npy_f32(&root().join("models/data/mnist_test_500.npy"))
            .unwrap();
    assert_eq!(&shape[1..], &[1, 28, 28]);
    let mut owned = core_attn::model::host::OwnedBuffers::new(&blob.buffers());
    let (mut bufs, _, _) = owned.split(&blob).unwrap();
    let host: Vec<String> = pixels
        .chunks_exact(28 * 28)
        .take(n)
        .map(|img| {
            let q = quantize_image(&blob, img);
            let logits = vit_classify(&blob, &q, &mut bufs, &mut |_, _| {}).unwrap();
            format!("digit {}", argmax_i8(logits))
        })
        .collect();
    assert_eq!(host.len(), n);
    host
}

#[test]
fn classify_matches_host() {
    let host = host_digits();
    if skip() {
        return;
    }
    let (ok, stdout, all) = run_bin("classify");
    assert!(ok, "classify failed:\n{all}");
    let device: Vec<&str> = stdout.lines().collect();
    assert_eq!(device, host, "firmware vs host top-1:\n{all}");
}

/// The size-first builds of `classify` (core-attn's README, "Code size") classify like the
/// host: `opt-level = "s"` (`cfg(core_attn_small)`: the looped `SMLAD` linear passes, no
/// per-head-width attention copies, one softmax pass) and the `compact` feature (portable
/// kernels, same looped copies). Guards against a looped copy that differs from the unrolled
/// one it replaces: with every column group of `attention::wsum_direct_any` (the weighted sum
/// of the direct path, the only attention path at opt-level "s") reading the head's first
/// four columns (`wsum_pairs4(ppf, v, c0, a)`), or the keys of `Attention::run`'s
/// column-by-column weighted sum reversed (the `compact` build's attention), the build prints
/// other digits than the host.
#[test]
fn classify_size_first_builds_match_host() {
    let host = host_digits();
    if skip() {
        return;
    }
    for args in [
        &["--profile", "release-s"][..],
        &["--profile", "release-s", "--features", "core-attn/compact"][..],
    ] {
        let (ok, stdout, all) = run_bin_with("classify", args);
        assert!(ok, "classify {args:?} failed:\n{all}");
        let device: Vec<&str> = stdout.lines().collect();
        assert_eq!(device, host, "firmware {args:?} vs host top-1:\n{all}");
    }
}

/// The size-first builds of `classify` link no panic call site: no `core::panicking` symbol in
/// the firmware (`arm-none-eabi-nm`), so neither the panic handler nor its formatting is in
/// its flash (core-attn's README, "Code size"). Guards against a division or index check left
/// out of line in the ViT path: with `tensor::zip_lazy` the plain `Zip` in size-first builds
/// too (`Zip::new` divides by the `chunks_exact` width, out of line at opt-level "s"), the
/// firmware links `core::panicking::panic_const::panic_const_div_by_zero`.
#[test]
fn classify_size_first_builds_link_no_panic() {
    if skip() {
        return;
    }
    for args in [
        &["--profile", "release-s"][..],
        &["--profile", "release-s", "--features", "core-attn/compact"][..],
    ] {
        let out = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--bin", "classify"])
            .args(args)
            .current_dir(example_dir())
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("TATN_IMAGES")
            .env_remove("TATN_LABELS")
            .output()
            .unwrap_or_else(|e| panic!("cargo build {args:?} in examples/qemu-mps2-an386: {e}"));
        assert!(
            out.status.success(),
            "cargo build {args:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let elf = example_dir().join("target/thumbv7em-none-eabihf/release-s/classify");
        let nm = Command::new("arm-none-eabi-nm")
            .args(["-C"])
            .arg(&elf)
            .output()
            .unwrap_or_else(|e| panic!("arm-none-eabi-nm {}: {e}", elf.display()));
        assert!(nm.status.success(), "arm-none-eabi-nm {}", elf.display());
        let symbols = String::from_utf8_lossy(&nm.stdout);
        assert!(
            symbols.lines().any(|l| l.ends_with(" main")),
            "no `main` in the symbols of {}: not the firmware",
            elf.display()
        );
        let panics: Vec<&str> = symbols
            .lines()
            .filter(|l| l.contains("core::panicking"))
            .collect();
        assert!(
            panics.is_empty(),
            "classify {args:?} links panic call sites:\n{}",
            panics.join("\n")
        );
    }
}

#[test]
fn generate_matches_host() {
    let aligned = blob("char-lm");
    let blob: Blob<'_> = aligned.parse(Path::new("char-lm.tatn")).unwrap();
    let vocab = blob.vocab().expect("char-lm carries its vocabulary");
    let lookup = |c: char| -> usize {
        let s = c.to_string();
        (0..vocab.len() as u32)
            .find(|&id| vocab.text(id) == Some(s.as_str()))
            .unwrap_or_else(|| panic!("{c:?} not in the vocabulary")) as usize
    };
    let prompt: Vec<usize> = PROMPT.chars().map(lookup).collect();
    let (seqs, _) = generate(&blob, std::slice::from_ref(&prompt), None, MAX_NEW).unwrap();
    let ids = &seqs[0][prompt.len()..];
    assert!(!ids.is_empty() && ids.len() <= MAX_NEW);
    let text: String = ids
        .iter()
        .map(|&id| vocab.text(id as u32).unwrap_or("\u{fffd}"))
        .collect();
    let expected = format!("{PROMPT}{text}\n");
    if skip() {
        return;
    }
    let (ok, stdout, all) = run_bin("generate");
    assert!(ok, "generate failed:\n{all}");
    assert_eq!(stdout, expected, "firmware vs host greedy text:\n{all}");
}
