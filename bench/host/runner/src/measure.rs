//! The measurement: per selected core, the kernel firmware and one whole-model firmware per
//! model that fits the chip, each built, run under QEMU with the plugin and parsed into rows;
//! and the f32 baseline on the M4.

use crate::cores::Core;
use crate::models::{self, ModelInfo};
use crate::parse::{self, Row};
use crate::{f32, qemu};
use std::path::Path;

/// Everything measured on one core.
pub struct CoreResult {
    /// The core.
    pub core: &'static Core,
    /// Kernel firmware rows (empty when it failed).
    pub rows: Vec<Row>,
    /// Why the kernel firmware was not measured (first line).
    pub error: Option<String>,
    /// Whole-model rows (`model:<name>` and `vit-part` regions), per model.
    pub models: Vec<ModelRun>,
}

/// One shipped model on one core: its regions, or why it was not run.
pub struct ModelRun {
    /// Model name.
    pub model: String,
    /// Its regions.
    pub rows: Vec<Row>,
    /// Why it was not run (first line).
    pub skipped: Option<String>,
}

/// Build the bench firmware for `core` (`model`: the whole-model suite with that model, else the
/// kernel suite), run it under QEMU with the plugin and return its regions.
pub fn bench_core(
    root: &Path,
    plugin: &Path,
    core: &'static Core,
    model: Option<&str>,
) -> Result<Vec<Row>, String> {
    let elf = qemu::build_firmware(root, core, model)?;
    let markers = qemu::markers(&elf)?;
    let label = model.unwrap_or("kernels");
    let regions = elf.with_file_name(format!("{label}.regions.txt"));
    eprintln!("bench: running {} on {}: {label}", core.name, core.machine);
    let out = qemu::run_counted(core.machine, core.cpu, plugin, &elf, markers, &regions)?;
    parse::bench_rows(&out.stdout, &out.regions)
}

/// Measure `core`: its kernel firmware, then each model of `infos` that fits its chip (a
/// failure is recorded in the result, not fatal).
pub fn core(root: &Path, plugin: &Path, core: &'static Core, infos: &[ModelInfo]) -> CoreResult {
    let mut cr = match bench_core(root, plugin, core, None) {
        Ok(rows) => CoreResult {
            core,
            rows,
            error: None,
            models: Vec::new(),
        },
        Err(e) => {
            eprintln!("bench: {}: {e}", core.name);
            CoreResult {
                core,
                rows: Vec::new(),
                error: Some(e.lines().next().unwrap_or("").to_string()),
                models: Vec::new(),
            }
        }
    };
    for info in infos {
        let run = match models::fits(core, info) {
            Some(why) => Err(why),
            None => bench_core(root, plugin, core, Some(&info.name)),
        };
        cr.models.push(match run {
            Ok(rows) => ModelRun {
                model: info.name.clone(),
                rows,
                skipped: None,
            },
            Err(e) => {
                eprintln!("bench: {} {}: {e}", core.name, info.name);
                ModelRun {
                    model: info.name.clone(),
                    rows: Vec::new(),
                    skipped: Some(e.lines().next().unwrap_or("").to_string()),
                }
            }
        });
    }
    cr
}

/// The f32 (micromath) whole-ViT baseline on the M4, from `bench/firmware-f32` through the f32
/// module's `f32::run_f32_vit`.
pub struct F32Row {
    /// Instructions of one inference.
    pub instructions: u64,
    /// Estimated M4 cycles.
    pub est_cycles: u64,
    /// Flash (whole image), bytes.
    pub flash: u64,
    /// Static RAM, bytes.
    pub ram: u64,
    /// Stack high-water mark, bytes.
    pub stack: u64,
    /// Logits close to the host's f32 reference.
    pub matched: bool,
    /// Largest |device − reference| over the logits.
    pub max_abs_diff: f64,
    /// Target: f32 cycles ÷ int8 cycles at least this.
    pub target: f64,
}

/// The f32 baseline's figures; a failure (build, run, or logits far from the host's f32
/// reference) stops the benchmark rather than leaving the row out.
pub fn f32_row(root: &Path, plugin: &Path) -> Option<F32Row> {
    match f32::run_f32_vit(root, plugin) {
        Ok(v) => Some(F32Row {
            instructions: v.instructions,
            est_cycles: v.est_cycles,
            flash: v.flash,
            ram: v.ram_static,
            stack: v.stack_peak,
            matched: v.matches_reference(),
            max_abs_diff: v.max_abs_diff as f64,
            target: f32::TARGET_SPEEDUP,
        }),
        Err(e) => {
            eprintln!("bench: f32 baseline failed: {e}");
            std::process::exit(1);
        }
    }
}

/// Everything one `bash bench/run` measures.
pub struct Measured {
    /// First line of `qemu-system-arm --version`.
    pub qemu_version: String,
    /// The models run (`tools inspect --json`).
    pub infos: Vec<ModelInfo>,
    /// Per selected core.
    pub results: Vec<CoreResult>,
    /// The f32 baseline (when the M4 is selected).
    pub f32_vit: Option<F32Row>,
}

/// Measure the `cores` with the models `model_names`, then the f32 baseline when the M4 is
/// among the cores.
pub fn all(
    root: &Path,
    plugin: &Path,
    cores: &[&'static Core],
    model_names: &[&str],
) -> Result<Measured, String> {
    let qemu_version = qemu::version();
    eprintln!("bench: tools inspect --json (cargo run -p tools)");
    let infos: Vec<ModelInfo> = model_names
        .iter()
        .map(|m| models::inspect(root, m))
        .collect::<Result<_, _>>()?;
    let results: Vec<CoreResult> = cores
        .iter()
        .map(|&c| core(root, plugin, c, &infos))
        .collect();
    // The f32 baseline (M4 only; also under --check, so that CI runs it and checks its logits).
    let f32_vit = if results.iter().any(|c| c.core.name == "m4") {
        f32_row(root, plugin)
    } else {
        None
    };
    Ok(Measured {
        qemu_version,
        infos,
        results,
        f32_vit,
    })
}

/// The full run fails when the M4 was not measured or one of its rows did not match, or a
/// model's output on any core differed from the host's.
pub fn failed(results: &[CoreResult]) -> bool {
    results.iter().any(|c| {
        (c.core.name == "m4" && (c.error.is_some() || c.rows.iter().any(|r| !r.matched)))
            || c.models.iter().any(|m| m.rows.iter().any(|r| !r.matched))
    })
}
