//! `tools convert --smooth` against the default conversion on the two vendored Llama fixtures
//! (`tests/fixtures/llama2c-tiny`, `tests/fixtures/hf-llama-tiny`), on the held-out prompts
//! `tests/llama_int8.rs` uses (the fixture's prompt and 3 seeded random ones of 12 ids) and on
//! 16 further seeded random prompts of 24 ids; calibration is `convert`'s default (no
//! `--calibration`: the seeded synthetic set), as the boards' fixture blob is packed.
//!
//! ```sh
//! cargo run --release -p tools --example llama_smooth_fixtures
//! ```
//!
//! One line per fixture and transform: logits SQNR int8 vs f32 (dB) on the held-out prompts
//! (the figure `tests/llama_int8.rs` bounds), greedy new tokens equal to f32 (of 20) from each
//! held-out prompt, and the SQNR on the 16 further prompts. `migrate-only` and `clip-only` are
//! the two halves of `--smooth` (SwiGLU scale migration; least-error calibration ranges).

use std::path::{Path, PathBuf};

use tools::checkpoint::npy::read_npy_i64;
use tools::int8::AlignedBlob;
use tools::llama::forward::{generate, logits};
use tools::llama::int8::PackTransform;
use tools::llama::{int8, load, Format, LlamaModel};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn ids(path: &Path) -> Result<Vec<usize>, String> {
    Ok(read_npy_i64(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .1
        .iter()
        .map(|&x| x as usize)
        .collect())
}

/// `n` seeded random prompts of `len` ids (BOS first), xorshift from `state` (the generator
/// `tests/llama_int8.rs` uses).
fn random_prompts(mut state: u64, n: usize, len: usize, vocab: usize) -> Vec<Vec<usize>> {
    (0..n)
        .map(|_| {
            let mut p = vec![1usize];
            while p.len() < len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                p.push((state % vocab as u64) as usize);
            }
            p
        })
        .collect()
}

fn sqnr_db(reference: &[f32], test: &[f32]) -> f64 {
    let s: f64 = reference.iter().map(|&x| (x as f64).powi(2)).sum();
    let n: f64 = reference
        .iter()
        .zip(test)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    10.0 * (s / n).log10()
}

fn run() -> Result<(), String> {
    let l2c = fixture("llama2c-tiny");
    let hf = fixture("hf-llama-tiny");
    let e = |e: tools::Error| e.to_string();
    let fixtures: Vec<(&str, LlamaModel, Vec<usize>)> = vec![
        (
            "llama2c-tiny",
            load(&l2c.join("model.bin"), Format::Llama2c).map_err(e)?,
            ids(&l2c.join("prompt_ids.npy"))?,
        ),
        (
            "hf-llama-tiny",
            load(&hf, Format::HuggingFace).map_err(e)?,
            ids(&hf.join("input_ids.npy"))?
                .into_iter()
                .take(12)
                .collect(),
        ),
    ];
    let migrate_only = PackTransform {
        clip: &[],
        ..PackTransform::SMOOTH
    };
    let clip_only = PackTransform {
        swiglu_alpha: None,
        ..PackTransform::SMOOTH
    };
    let transforms = [
        ("default", PackTransform::NONE),
        ("--smooth", PackTransform::SMOOTH),
        ("migrate-only", migrate_only),
        ("clip-only", clip_only),
    ];
    println!("fixture        transform     held-out SQNR  greedy equal (of 20)  16x24 SQNR");
    for (name, m, prompt) in &fixtures {
        let vocab = m.config.vocab_size;
        let mut held_out = vec![prompt.clone()];
        held_out.extend(random_prompts(0xDEAD_BEEF, 3, 12, vocab));
        let further = random_prompts(0x1234_5678_9ABC, 16, 24, vocab);
        for (tname, t) in transforms {
            let bytes = int8::convert_with(m, None, None, t).map_err(e)?;
            let blob = AlignedBlob::from_bytes(&bytes);
            let blob = blob.parse(Path::new(name)).map_err(e)?;
            let sqnr = |prompts: &[Vec<usize>]| -> Result<f64, String> {
                let (mut f, mut q) = (Vec::new(), Vec::new());
                for p in prompts {
                    f.extend(logits(m, p).map_err(e)?.into_iter().flatten());
                    q.extend(int8::logits(&blob, p).map_err(e)?.into_iter().flatten());
                }
                Ok(sqnr_db(&f, &q))
            };
            let mut same = Vec::new();
            for p in &held_out {
                let f = generate(m, p, 20).map_err(e)?.ids;
                let q = int8::generate(&blob, p, 20).map_err(e)?.ids;
                let n = f[p.len()..]
                    .iter()
                    .zip(&q[p.len()..])
                    .take_while(|(a, b)| a == b)
                    .count();
                same.push(n);
            }
            println!(
                "{name:<14} {tname:<13} {:>10.2} dB  {:<21} {:>7.2} dB",
                sqnr(&held_out)?,
                format!("{same:?} = {}", same.iter().sum::<usize>()),
                sqnr(&further)?
            );
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
