//! `cargo run --release --manifest-path bench/host/Cargo.toml -p bench-runner [-- CORE…]`
//!
//! Builds the counting plugin and the bench firmware for each core, boots the firmware under
//! QEMU (`-icount shift=0`) with the plugin, pairs the plugin's `region` lines with the
//! firmware's `bench` lines, and writes `BENCHMARKS.md` and `bench/results.json` at the
//! repository root. BENCHMARKS.md is this program's output, unedited.
//!
//! Cores: `m4` (mps2-an386), `m7` (mps2-an500), `m33` (mps2-an505), `m55` (mps3-an547),
//! `m0` (microbit). Default: all of them. `--check` (CI): M4 only, print, write nothing, fail
//! unless every variant matches the generic kernels on the device.
//!
//! Per core, besides the kernel firmware, one whole-model firmware per shipped model
//! (`BENCH_SUITE=models BENCH_MODELS=<name>`, linked with the real chip's memory map from
//! `boards/<machine>/memory.x`) where the model fits that chip; MACs, flash and RAM come from
//! `tools inspect --json` (built and run with `cargo run -p tools`). `--check` runs only the
//! ViT on the M4. The shipped Llama also gives the Llama speed rows (issue 14, [`llama`]).
//!
//! Also (not under `--check`) the code size and instructions per image of a firmware written
//! with core-attn's device API (`examples/qemu-mps2-an386`, [`example_size`]);
//! `--example-size` runs only that step and replaces its section of BENCHMARKS.md.
//!
//! Modules: [`cli`] (arguments), [`cores`] (the core table), [`qemu`] (cargo, nm and QEMU
//! driving), [`parse`] (plugin and firmware output), [`models`] (`tools inspect` figures),
//! [`measure`] (the runs), [`report`] (BENCHMARKS.md and results.json), [`check_mode`]
//! (`--check`).

mod check_mode;
mod cli;
mod cores;
mod example_size;
mod f32;
mod llama;
mod measure;
mod models;
mod parse;
mod qemu;
mod report;

use std::path::PathBuf;

/// Print `bench: <e>` and exit with status 1.
fn die(e: impl std::fmt::Display) -> ! {
    eprintln!("bench: {e}");
    std::process::exit(1)
}

fn main() {
    let opts = cli::parse(std::env::args().skip(1)).unwrap_or_else(|e| {
        eprintln!("bench: {e}");
        std::process::exit(2)
    });
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../..")
        .canonicalize()
        .unwrap_or_else(|e| die(format!("repository root: {e}")));
    eprintln!("bench: building the plugin");
    let plugin = qemu::build_plugin(&root).unwrap_or_else(|e| die(e));
    if opts.example_size_only {
        let rows = example_size::rows(&root, &plugin);
        let section = example_size::markdown(&rows);
        print!("{section}");
        example_size::splice(&root, &section).unwrap_or_else(|e| die(e));
        std::process::exit(if rows.iter().all(Result::is_ok) { 0 } else { 1 });
    }
    // Whole models: the ViT only under --check (CI), else every shipped model.
    let model_names: &[&str] = if opts.check_only {
        &["vit-mnist"]
    } else {
        &["vit-mnist", "digit-reader", "char-lm", llama::NAME]
    };
    let m = measure::all(&root, &plugin, &opts.cores, model_names).unwrap_or_else(|e| die(e));
    if opts.check_only {
        std::process::exit(if check_mode::report(&m) { 0 } else { 1 });
    }
    let example_size = example_size::markdown(&example_size::rows(&root, &plugin));
    let md = report::benchmarks_md(&m, &example_size);
    std::fs::write(root.join("BENCHMARKS.md"), md).unwrap_or_else(|e| die(e));
    let js = report::results_json(&m);
    std::fs::write(root.join("bench/results.json"), js).unwrap_or_else(|e| die(e));
    eprintln!("bench: wrote BENCHMARKS.md and bench/results.json");
    if measure::failed(&m.results) {
        eprintln!(
            "bench: FAILED (M4 not measured, an optimized variant did not match, or a model's \
             output differed from the host's)"
        );
        std::process::exit(1);
    }
}
