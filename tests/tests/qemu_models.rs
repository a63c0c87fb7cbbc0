//! Every embedded model on every emulated core: the firmware's `result` lines must equal the
//! host's byte for byte (host: the same blob and quantized inputs through core-attn's
//! owned-buffer runners, `board_common::host::result_lines`). The generators' lines carry a
//! hash of every step's logits besides the ids (`board_common::format`), so a logits
//! difference that never flips an argmax fails too.
//!
//! One `cargo run --release` per board (the boards share `boards/target`, so dependencies are
//! built once per target). Needs `qemu-system-arm` and the three thumb targets (`.ci/run`
//! installs them). `SKIP_QEMU=1` skips the firmware runs (loudly), except when `CI` is set: then
//! it fails them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use board_common::host::{self, HostModel};
use board_common::{Embedded, Failure, Inputs};
use core_attn::blob::BufferSizes;

/// Shipped models every QEMU board embeds by default (their `build.rs` lists).
const MODELS: [&str; 3] = ["vit-tiny", "gpt2-tiny", "encdec-tiny"];

fn boards_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("boards")
}

fn host_models() -> &'static Vec<HostModel> {
    static M: OnceLock<Vec<HostModel>> = OnceLock::new();
    M.get_or_init(|| {
        MODELS
            .iter()
            .map(|n| {
                host::load(
                    &host::shipped_dir().join(format!("{n}.tatn")),
                    None,
                    None,
                    8,
                )
                .unwrap()
            })
            .collect()
    })
}

fn host_lines() -> &'static Vec<String> {
    static L: OnceLock<Vec<String>> = OnceLock::new();
    L.get_or_init(|| {
        host_models()
            .iter()
            .flat_map(|m| host::result_lines(m).unwrap())
            .collect()
    })
}

/// `SKIP_QEMU` outside CI skips (loudly); with `CI` set it fails the test (`tests::skip_qemu`).
fn skip() -> bool {
    tests::skip_qemu("qemu_models")
}

/// `cargo run --release` in `boards/<board>` with the given TATN_* settings (others removed).
fn run_board(board: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "--release", "--quiet"])
        .current_dir(boards_dir().join(board))
        .env_remove("CARGO_TARGET_DIR");
    for v in host::ENV_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cargo run in boards/{board}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!(
        "{stdout}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), all)
}

/// The SysTick -> instruction conversion, checked at boot on a loop of known length.
fn check_clock(stdout: &str) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("clock: "))
        .unwrap_or_else(|| panic!("no clock line:\n{stdout}"));
    let w: Vec<&str> = line.split_whitespace().collect();
    // clock: N instructions = T ticks = M counted (HZ Hz, -icount shift=0)
    let n: f64 = w[1].parse().unwrap();
    let m: f64 = w[7].parse().unwrap();
    let hz: f64 = w[9].trim_start_matches('(').parse().unwrap();
    let per_tick = 1e9 / hz;
    assert!((m - n).abs() <= 2.0 * per_tick, "{line}");
}

fn firmware_matches_host(board: &str) {
    if skip() {
        return;
    }
    let (ok, out) = run_board(board, &[]);
    assert!(ok, "boards/{board} failed:\n{out}");
    check_clock(&out);
    let device: Vec<&str> = out.lines().filter(|l| l.starts_with("result ")).collect();
    let host = host_lines();
    assert_eq!(device.len(), host.len(), "boards/{board} printed:\n{out}");
    for (d, h) in device.iter().zip(host) {
        assert_eq!(d, h, "boards/{board}");
    }
    for m in MODELS {
        assert!(out.contains(&format!("model {m} kind")), "{out}");
        assert!(out.contains(&format!("perf {m} ")), "{out}");
    }
    assert!(out.contains("done: 3 model(s) ok"), "{out}");
}

#[test]
fn m4_mps2_an386_matches_host() {
    firmware_matches_host("mps2-an386");
    trained_models_match_host("mps2-an386");
}

#[test]
fn m7_mps2_an500_matches_host() {
    firmware_matches_host("mps2-an500");
    trained_models_match_host("mps2-an500");
    // The last build above embeds char-lm alone: check the ELF against what `inspect` reports.
    elf_matches_inspect("mps2-an500", "thumbv7em-none-eabihf", "char-lm");
}

/// The linked firmware's symbols agree with the blob header that `tools inspect` reports from:
/// the embedded blob occupies exactly its flash bytes (rounded to the 16-byte alignment), and the
/// static arena holds exactly the RAM the header asks for plus the generated-ids buffer. Both are
/// found by their `#[no_mangle]` names (`host::blob_symbol(0)`, `host::ARENA_SYMBOL`), so the
/// check does not depend on the toolchain's symbol mangling.
fn elf_matches_inspect(board: &str, target: &str, model: &str) {
    if skip() {
        return;
    }
    let root = boards_dir().join("..");
    let bytes = std::fs::read(root.join(format!("models/{model}.tatn"))).unwrap();
    let aligned = host::Aligned::new(&bytes);
    let blob = core_attn::blob::Blob::parse(aligned.bytes()).unwrap();
    let ram = blob.buffers().total_bytes();
    let elf = boards_dir().join(format!("target/{target}/release/board-{board}"));
    let out = Command::new("arm-none-eabi-nm")
        .arg("-S")
        .arg(&elf)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run arm-none-eabi-nm ({e}): install it with \
                 `apt-get install binutils-arm-none-eabi`"
            )
        });
    assert!(
        out.status.success(),
        "arm-none-eabi-nm -S {} failed: {}",
        elf.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let syms = String::from_utf8_lossy(&out.stdout);
    // `ADDRESS SIZE TYPE NAME`, the name exactly (unmangled: `#[no_mangle]`).
    let size_of = |name: &str| -> usize {
        let size = syms.lines().find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 4 && w[3] == name).then(|| w[1])
        });
        let size = size.unwrap_or_else(|| {
            panic!(
                "no symbol {name} (with a size) in {}: the generated model_consts.rs / the \
                 board's main.rs must define it #[no_mangle]",
                elf.display()
            )
        });
        usize::from_str_radix(size, 16).unwrap()
    };
    assert_eq!(
        size_of(&host::blob_symbol(0)),
        bytes.len().div_ceil(16) * 16,
        "flash of {model}"
    );
    let arena = size_of(host::ARENA_SYMBOL);
    // The arena adds only the generated-ids buffer (one u32 per prompt + new token, at most one
    // per position), the taken flag of its cell and alignment padding.
    let ids_max = 4 * blob.header().decoder.max_positions;
    assert!(
        arena >= ram && arena <= ram + ids_max + 16,
        "arena {arena} bytes vs inspect RAM {ram} (+ at most {ids_max} of ids)"
    );
}

#[test]
fn m33_mps2_an505_matches_host() {
    firmware_matches_host("mps2-an505");
    trained_models_match_host("mps2-an505");
}

#[test]
fn m55_mps3_an547_matches_host() {
    firmware_matches_host("mps3-an547");
    trained_models_match_host("mps3-an547");
}

/// The Cortex-M0 (16 KiB RAM) runs all three fixtures too; then, in the same test (no race on
/// its binary), a corrupt blob must be refused at boot: message, failure exit, nothing run.
#[test]
fn m0_microbit_matches_host_and_refuses_a_corrupt_blob() {
    firmware_matches_host("microbit");
    if skip() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tatn-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = host::shipped_dir();
    let mut bytes = std::fs::read(src.join("vit-tiny.tatn")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5a; // inside the checksummed range
    let bad = dir.join("bad.tatn");
    std::fs::write(&bad, &bytes).unwrap();
    std::fs::copy(src.join("vit-tiny.inputs.npy"), dir.join("bad.inputs.npy")).unwrap();
    let (ok, out) = run_board("microbit", &[("TATN_MODEL", bad.to_str().unwrap())]);
    // Rebuild the default firmware so later manual runs see the shipped models.
    let _ = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet"])
        .current_dir(boards_dir().join("microbit"))
        .env_remove("CARGO_TARGET_DIR")
        .status();
    std::fs::remove_dir_all(&dir).ok();
    assert!(!ok, "corrupt blob must fail:\n{out}");
    assert!(
        out.contains("error: model bad: invalid model blob") && out.contains("refusing to run"),
        "{out}"
    );
    assert!(!out.contains("result "), "{out}");
    trained_models_match_host("microbit");
}

fn leak_aligned(bytes: &[u8]) -> &'static [u8] {
    Box::leak(Box::new(host::Aligned::new(bytes))).bytes()
}

fn embedded(m: &HostModel) -> Embedded {
    let inputs = match &m.inputs {
        host::HostInputs::Images(v) => Inputs::Images(Box::leak(
            v.iter()
                .map(|i| &*Box::leak(i.clone().into_boxed_slice()))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        )),
        host::HostInputs::Prompts(v) => Inputs::Prompts(Box::leak(
            v.iter()
                .map(|i| &*Box::leak(i.clone().into_boxed_slice()))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        )),
    };
    Embedded {
        name: Box::leak(m.name.clone().into_boxed_str()),
        blob: leak_aligned(&m.bytes),
        inputs,
        max_new: m.max_new,
    }
}

/// The boot check the firmware runs before anything: exact buffers pass, one element less in
/// any buffer, one KV-cache slot or one id less is refused; a corrupt blob is refused.
#[test]
fn boot_check_refuses_what_does_not_fit() {
    for m in host_models() {
        let e = embedded(m);
        let ids = match &m.inputs {
            host::HostInputs::Prompts(p) => p.iter().map(|p| p.len()).max().unwrap() + m.max_new,
            _ => 1 + m.max_new,
        };
        let layers = m.layers.max(1);
        let b = m.buffers;
        assert!(
            board_common::check(&e, &b, layers, ids).is_ok(),
            "{}",
            m.name
        );
        let shrink: [fn(&mut BufferSizes) -> &mut usize; 8] = [
            |s| &mut s.x,
            |s| &mut s.normed,
            |s| &mut s.wide,
            |s| &mut s.scores,
            |s| &mut s.patch,
            |s| &mut s.logits,
            |s| &mut s.kv,
            |s| &mut s.cross_kv,
        ];
        for f in shrink {
            let mut small = b;
            let v = f(&mut small);
            if *v == 0 {
                continue;
            }
            *v -= 1;
            let r = board_common::check(&e, &small, layers, ids);
            assert!(
                matches!(r, Err(Failure::DoesNotFit { .. })),
                "{}: {r:?}",
                m.name
            );
            let msg = r.err().unwrap().to_string();
            assert!(msg.contains("does not fit the compiled buffers"), "{msg}");
        }
        if m.layers > 0 {
            let r = board_common::check(&e, &b, m.layers - 1, ids);
            assert!(
                matches!(r, Err(Failure::TooManyLayers { .. })),
                "{}: {r:?}",
                m.name
            );
            let r = board_common::check(&e, &b, layers, ids - 1);
            assert!(
                matches!(r, Err(Failure::IdsDoNotFit { .. })),
                "{}: {r:?}",
                m.name
            );
        }
        let mut bytes = m.bytes.clone();
        bytes[100] ^= 1;
        let bad = Embedded {
            blob: leak_aligned(&bytes),
            ..e
        };
        let r = board_common::check(&bad, &b, layers, ids);
        assert!(matches!(r, Err(Failure::Model(_))), "{}: {r:?}", m.name);
    }
}

/// Every decoder step's int8 logits (one row per step, prompt positions included) and the ids
/// of each input of decoder model `m`, straight from core-attn's greedy runner.
fn step_logits(m: &HostModel) -> Vec<(Vec<Vec<i8>>, Vec<u32>)> {
    let aligned = host::Aligned::new(&m.bytes);
    let blob = aligned.parse().unwrap();
    let mut owned = core_attn::model::host::OwnedBuffers::new(&blob.buffers());
    let (mut bufs, mut caches, mut cross) = owned.split(&blob).unwrap();
    let d = blob.header().decoder;
    let inputs: Vec<(Option<&[i8]>, Vec<u32>)> = match &m.inputs {
        host::HostInputs::Prompts(ps) => ps.iter().map(|p| (None, p.clone())).collect(),
        host::HostInputs::Images(imgs) => imgs
            .iter()
            .map(|i| (Some(i.as_slice()), vec![d.start_token]))
            .collect(),
    };
    inputs
        .into_iter()
        .map(|(img, prompt)| {
            if let Some(img) = img {
                core_attn::model::encode_for_decoder(
                    &blob,
                    img,
                    &mut cross,
                    &mut bufs,
                    &mut |_, _| {},
                )
                .unwrap();
            }
            let mut rows = Vec::new();
            let mut out = vec![0u32; prompt.len() + m.max_new];
            let enc = (!cross.is_empty()).then_some(&cross[..]);
            let n = core_attn::model::greedy(
                &blob,
                &prompt,
                m.max_new,
                &mut out,
                &mut caches,
                enc,
                &mut bufs,
                &mut |_, l| rows.push(l.to_vec()),
            )
            .unwrap();
            out.truncate(n);
            (rows, out)
        })
        .collect()
}

/// The generators' result lines carry an FNV-1a hash of every step's int8 logits (issue 17):
/// a device whose logits differ from the host's by one LSB in one logit of one step, without
/// flipping any argmax, no longer matches — before the hash, its line (ids only) did.
///
/// Injected bug: +1 on one logit that is not the step's maximum (so the ids stay the same), in
/// the first step (a prompt position) and in the last one, hashed with `format::LogitsFnv`,
/// the incremental hash the firmware runs; the line must differ from the host's
/// `result_lines` (which hashes the concatenated logits in one go with
/// `core_attn::blob::fnv1a32`), while its ids part stays equal. Unperturbed, the two agree.
#[test]
fn one_lsb_in_one_logit_of_one_step_fails_the_comparison() {
    use board_common::format::{ids_line, LogitsFnv};
    let line = |m: &HostModel, i: usize, rows: &[Vec<i8>], ids: &[u32]| {
        let what = match m.inputs {
            host::HostInputs::Prompts(_) => "prompt",
            host::HostInputs::Images(_) => "image",
        };
        let mut h = LogitsFnv::new();
        rows.iter().for_each(|r| h.update(r));
        let mut s = String::new();
        ids_line(&mut s, &m.name, what, i, h.value(), ids).unwrap();
        s.trim_end().to_string()
    };
    let ids_part = |l: &str| l.split(" ids ").nth(1).unwrap().to_string();
    let mut checked = 0;
    for m in host_models().iter().filter(|m| m.layers > 0) {
        let expected = host::result_lines(m).unwrap();
        let runs = step_logits(m);
        assert_eq!(runs.len(), expected.len(), "{}", m.name);
        for (i, (rows, ids)) in runs.iter().enumerate() {
            // Prompt + generated ids: every one but the last was fed, one step each.
            assert_eq!(rows.len(), ids.len() - 1, "{}", m.name);
            assert_eq!(line(m, i, rows, ids), expected[i], "{}", m.name);
            assert!(expected[i].contains(" logits_fnv1a "), "{}", expected[i]);
            for step in [0, rows.len() - 1] {
                let top = core_attn::model::argmax_i8(&rows[step]);
                // A logit below the maximum by 2 or more (so +1 cannot tie or pass it).
                let j = (0..rows[step].len())
                    .find(|&j| i16::from(rows[step][j]) + 2 <= i16::from(rows[step][top]))
                    .unwrap_or_else(|| panic!("{}: a flat logits row", m.name));
                let mut bad = rows.clone();
                bad[step][j] += 1;
                assert_eq!(core_attn::model::argmax_i8(&bad[step]), top);
                let l = line(m, i, &bad, ids);
                assert_ne!(l, expected[i], "{} step {step}: one LSB not caught", m.name);
                assert_eq!(ids_part(&l), ids_part(&expected[i]));
                checked += 1;
            }
        }
    }
    // gpt2-tiny (1 prompt) and encdec-tiny (2 images), two perturbed steps each.
    assert_eq!(checked, 6);
}

#[test]
fn host_lines_cover_every_model_and_input() {
    let l = host_lines();
    // 3 ViT images, 1 GPT-2 prompt, 2 encoder-decoder images.
    assert_eq!(l.len(), 6, "{l:#?}");
    assert!(l[0].starts_with("result vit-tiny image 0 top1 "), "{l:#?}");
    assert!(
        l[3].starts_with("result gpt2-tiny prompt 0 logits_fnv1a "),
        "{l:#?}"
    );
    assert!(
        l[5].starts_with("result encdec-tiny image 1 logits_fnv1a "),
        "{l:#?}"
    );
    assert!(Path::new(&host::shipped_dir())
        .join("vit-tiny.tatn")
        .is_file());
}

/// The three trained models in `models/` (one firmware build per model, as `boards/run-demo.sh`
/// does), on every QEMU core whose memory they fit: results equal the host's byte for byte.
/// `char-lm` (385 KB flash, 75 KB RAM) and `digit-reader` (42 KB RAM) exceed the micro:bit's
/// 16 KiB RAM; `vit-mnist` fits it.
fn trained_model_matches_host(
    board: &str,
    model: &str,
    inputs: &str,
    count: usize,
    max_new: usize,
) {
    if skip() {
        return;
    }
    let root = boards_dir().join("..");
    let blob = root.join(format!("models/{model}.tatn"));
    let data = root.join(format!("models/data/{inputs}"));
    let host = host::load(&blob, Some(&data), Some(count), max_new).unwrap();
    let expected = host::result_lines(&host).unwrap();
    assert!(!expected.is_empty());
    let (b, d) = (blob.to_string_lossy(), data.to_string_lossy());
    let (n, m) = (count.to_string(), max_new.to_string());
    let (ok, out) = run_board(
        board,
        &[
            ("TATN_MODEL", &b),
            ("TATN_INPUTS", &d),
            ("TATN_MAX_INPUTS", &n),
            ("TATN_MAX_NEW", &m),
        ],
    );
    assert!(ok, "boards/{board} with {model} failed:\n{out}");
    let device: Vec<&str> = out.lines().filter(|l| l.starts_with("result ")).collect();
    assert_eq!(device, expected, "boards/{board} with {model}:\n{out}");
}

/// Every trained model that fits `board` (each firmware build runs one model, as
/// `boards/run-demo.sh` does). Called from the board's own test, after its fixture run, so that
/// no two tests rebuild the same board binary at once.
fn trained_models_match_host(board: &str) {
    trained_model_matches_host(board, "vit-mnist", "mnist_test_500.npy", 3, 0);
    if board != "microbit" {
        trained_model_matches_host(board, "digit-reader", "strips_test_100.npy", 2, 5);
        trained_model_matches_host(board, "char-lm", "char_lm_prompts.npy", 1, 16);
    }
}
