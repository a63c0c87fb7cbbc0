//! The on-device f32 baseline of issue 6: the whole vit-mnist ViT forward pass in f32
//! (`bench/firmware-f32`, `micromath` approximations, Cortex-M4F FPU) measured under QEMU with
//! the counting plugin, and checked against the host f32 reference.
//!
//! [`run_f32_vit`] builds `bench/firmware-f32` for the M4 (`thumbv7em-none-eabihf`,
//! `-C target-cpu=cortex-m4` so that LLVM uses the M4's FPU scheduling: `VMUL`+`VADD` instead
//! of the 3-cycle `VMLA`), boots it on `mps2-an386` with the plugin, subtracts the empty
//! calibration region, reads the section sizes, and runs the f32 reference
//! (`tools simulate models/vit-mnist --input models/data/mnist_test_500.npy --json`, the
//! workspace's f32 forward pass with f64 accumulation) to compare the logits of the same image.
//!
//! `bash bench/run` (and its `--check` form in CI) runs it on the M4 and reports the figures.

// main.rs uses only part of this API.
#![allow(dead_code)]

use qemu_insn_count::timing::{CLASSES, CLASS_NAMES};
use std::path::Path;
use std::process::Command;

use crate::cores;
use crate::parse::Region;
use crate::qemu::{self, run};

/// QEMU machine of the measurement (the M4 row of the kernel tables).
pub const MACHINE: &str = cores::CORES[0].machine;
/// Rust target of the f32 firmware (the M4's).
pub const TARGET: &str = cores::CORES[0].target;
/// Extra codegen flags of the f32 firmware.
pub const RUSTFLAGS: &str = "-C target-cpu=cortex-m4";
/// Issue 6 target: int8 needs at least this many times fewer estimated cycles than f32.
pub const TARGET_SPEEDUP: f64 = 4.0;
/// Accuracy check: largest allowed |device − reference| over the logits. Measured on the first
/// 16 test images (`BENCH_F32_IMAGE=0..15`): at most 1.35e-3 (image 14), argmax always equal;
/// the error is dominated by micromath's `exp` (relative error up to ~1e-3) in softmax and GELU.
pub const MAX_ABS_DIFF: f32 = 0.01;

/// Figures of one f32 ViT inference on the M4 (marker overhead subtracted).
#[derive(Debug, Clone)]
pub struct F32Vit {
    /// Instructions executed by the whole inference.
    pub instructions: u64,
    /// Estimated Cortex-M4 cycles (plugin model, with the FPU timings).
    pub est_cycles: u64,
    /// Taken branches.
    pub taken: u64,
    /// Instructions per plugin class, indexed like `CLASS_NAMES`.
    pub classes: [u64; CLASSES],
    /// Flash: vector table + `.text` + `.rodata` + `.data` load image, bytes.
    pub flash: u64,
    /// Of which the f32 parameters (4 bytes each).
    pub weight_bytes: u64,
    /// Statically allocated RAM (`.data` + `.bss` + `.uninit`), bytes.
    pub ram_static: u64,
    /// Measured stack high-water mark during the inference (painted stack), bytes.
    pub stack_peak: u64,
    /// Parameter count (from the checkpoint).
    pub params: u64,
    /// Index of the image in `models/data/mnist_test_500.npy` (held-out test split).
    pub image: usize,
    /// Its label.
    pub label: i64,
    /// Device logits.
    pub logits: Vec<f32>,
    /// Device argmax.
    pub argmax: usize,
    /// Host f32 reference logits of the same image.
    pub reference: Vec<f32>,
    /// Reference argmax.
    pub reference_argmax: usize,
    /// max |device − reference| over the logits.
    pub max_abs_diff: f32,
}

impl F32Vit {
    /// Total RAM: static + measured stack.
    pub fn ram(&self) -> u64 {
        self.ram_static + self.stack_peak
    }

    /// The accuracy check: same argmax as the reference and max |diff| ≤ [`MAX_ABS_DIFF`].
    pub fn matches_reference(&self) -> bool {
        self.argmax == self.reference_argmax && self.max_abs_diff <= MAX_ABS_DIFF
    }

    /// f32 cycles / int8 cycles (the issue-6 figure; target ≥ [`TARGET_SPEEDUP`]).
    pub fn speedup(&self, int8_cycles: u64) -> f64 {
        self.est_cycles as f64 / int8_cycles as f64
    }

    /// Count of one plugin class by name (`"fp"`, `"fp_mem"`, …).
    pub fn class(&self, name: &str) -> u64 {
        CLASS_NAMES
            .iter()
            .position(|n| *n == name)
            .map_or(0, |k| self.classes[k])
    }

    /// A human-readable summary (every figure).
    pub fn summary(&self) -> String {
        let classes: Vec<String> = CLASS_NAMES
            .iter()
            .zip(&self.classes)
            .map(|(n, c)| format!("{n}={c}"))
            .collect();
        format!(
            "ViT f32 (micromath) on M4 ({MACHINE}, {TARGET}, {RUSTFLAGS}): image {} (label {}), \
             {} instructions, {} est. cycles, {} taken branches\n  classes: {}\n  \
             flash {} B (weights {} B, {} params), RAM {} B (static {} B + stack peak {} B)\n  \
             logits (device) {:?}\n  logits (host reference) {:?}\n  \
             argmax device {} / reference {}, max |diff| {:.3e} (limit {MAX_ABS_DIFF}): {}",
            self.image,
            self.label,
            self.instructions,
            self.est_cycles,
            self.taken,
            classes.join(" "),
            self.flash,
            self.weight_bytes,
            self.params,
            self.ram(),
            self.ram_static,
            self.stack_peak,
            self.logits,
            self.reference,
            self.argmax,
            self.reference_argmax,
            self.max_abs_diff,
            if self.matches_reference() {
                "ok"
            } else {
                "MISMATCH"
            }
        )
    }
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|t| t.strip_prefix(key)?.strip_prefix('='))
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The `"logits"` array of arrays of numbers in `tools simulate --json` output.
fn json_logits(js: &str) -> Result<Vec<Vec<f32>>, String> {
    let start = js
        .find("\"logits\"")
        .ok_or("no \"logits\" in the reference output")?;
    let s = &js[start + "\"logits\"".len()..];
    let s = s
        .trim_start()
        .strip_prefix(':')
        .ok_or("bad JSON")?
        .trim_start();
    let mut rows = Vec::new();
    let mut depth = 0;
    let mut row = Vec::new();
    let mut num = String::new();
    for ch in s.chars() {
        match ch {
            '[' => depth += 1,
            ']' | ',' => {
                if !num.is_empty() {
                    row.push(
                        num.trim()
                            .parse::<f32>()
                            .map_err(|e| format!("bad number {num}: {e}"))?,
                    );
                    num.clear();
                }
                if ch == ']' {
                    depth -= 1;
                    if depth == 1 {
                        rows.push(std::mem::take(&mut row));
                    }
                    if depth == 0 {
                        return Ok(rows);
                    }
                }
            }
            c if depth == 2 => num.push(c),
            c if c.is_whitespace() => {}
            c => return Err(format!("unexpected {c:?} in the logits array")),
        }
    }
    Err("unterminated logits array".into())
}

/// Builds `bench/firmware-f32` for the M4, runs it under QEMU with the plugin at `plugin`
/// (`libqemu_insn_count.so`, already built), and checks its logits against the host f32
/// reference. `root` is the repository root.
pub fn run_f32_vit(root: &Path, plugin: &Path) -> Result<F32Vit, String> {
    let fw = root.join("bench/firmware-f32");
    let target_dir = fw.join("target/m4");
    eprintln!("bench: building the f32 ViT firmware for m4 ({TARGET})");
    run(Command::new("cargo")
        .args(["build", "--release", "--target", TARGET])
        .current_dir(&fw)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", format!("-C link-arg=-Tlink.x {RUSTFLAGS}"))
        .env("BENCH_MACHINE", MACHINE))?;
    let elf = target_dir.join(TARGET).join("release/bench-firmware-f32");

    // Section sizes.
    let size = run(Command::new("arm-none-eabi-size").arg("-A").arg(&elf))?;
    let sec = |name: &str| -> u64 {
        size.lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next()? == name).then(|| it.next()?.parse().ok())?
            })
            .unwrap_or(0)
    };
    let flash = sec(".vector_table") + sec(".text") + sec(".rodata") + sec(".data");
    let ram_static = sec(".data") + sec(".bss") + sec(".uninit");

    let markers = qemu::markers(&elf)?;
    let regions_path = target_dir.join("regions.txt");
    eprintln!("bench: running the f32 ViT on {MACHINE}");
    let counted = qemu::run_counted(
        MACHINE,
        cores::CORES[0].cpu,
        plugin,
        &elf,
        markers,
        &regions_path,
    )?;
    let stdout = counted.stdout;
    if !stdout.contains("bench done failed=0") {
        return Err(format!("f32 firmware did not finish cleanly:\n{stdout}"));
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("f32vit vit-mnist "))
        .ok_or_else(|| format!("no result line in:\n{stdout}"))?;
    let num = |k: &str| -> Result<u64, String> {
        field(line, k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {k}= in {line}"))
    };
    let logits: Vec<f32> = field(line, "logits")
        .ok_or_else(|| format!("no logits= in {line}"))?
        .split(',')
        .map(|h| u32::from_str_radix(h, 16).map(f32::from_bits))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad logits in {line}: {e}"))?;
    let image = num("image")? as usize;
    let label = field(line, "label")
        .and_then(|v| v.parse().ok())
        .ok_or("no label=")?;
    let params = num("params")?;
    let stack_peak = num("stack_peak")?;
    let dev_argmax = num("argmax")? as usize;
    if dev_argmax != argmax(&logits) {
        return Err(format!(
            "device argmax {dev_argmax} disagrees with its logits"
        ));
    }

    // Regions: 0 = empty calibration, 1 = the inference.
    let regions = Region::all(&counted.regions)?;
    let [e, m] = &regions[..] else {
        return Err(format!("expected 2 regions, got {}", regions.len()));
    };
    let net = m.minus(e)?;

    // Host f32 reference of the same image (tools' forward pass on the checkpoint).
    eprintln!("bench: host f32 reference (tools simulate models/vit-mnist)");
    let js = run(Command::new("cargo")
        .args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "tools",
            "--",
            "simulate",
        ])
        .arg(root.join("models/vit-mnist"))
        .arg("--input")
        .arg(root.join("models/data/mnist_test_500.npy"))
        .arg("--json")
        .current_dir(root))?;
    let all = json_logits(&js)?;
    let reference = all
        .get(image)
        .cloned()
        .ok_or_else(|| format!("reference has no image {image}"))?;
    if reference.len() != logits.len() {
        return Err(format!(
            "{} device logits but {} reference logits",
            logits.len(),
            reference.len()
        ));
    }
    let max_abs_diff = logits
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);

    Ok(F32Vit {
        instructions: net.insns,
        est_cycles: net.cycles,
        taken: net.taken,
        classes: net.classes,
        flash,
        weight_bytes: params * 4,
        ram_static,
        stack_peak,
        params,
        image,
        label,
        argmax: dev_argmax,
        reference_argmax: argmax(&reference),
        logits,
        reference,
        max_abs_diff,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_simulate_logits() {
        let js = r#"{"logits": [[1.5, -2e-3, 3], [4.0,5.0,6.25]], "top1": [2, 2]}"#;
        assert_eq!(
            json_logits(js).unwrap(),
            vec![vec![1.5, -0.002, 3.0], vec![4.0, 5.0, 6.25]]
        );
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
    }
}
