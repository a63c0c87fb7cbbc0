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

use qemu_insn_count::timing::{CLASSES, CLASS_NAMES};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Core {
    name: &'static str,
    machine: &'static str,
    cpu: &'static str,
    target: &'static str,
    rustflags: &'static str,
}

const CORES: &[Core] = &[
    Core {
        name: "m4",
        machine: "mps2-an386",
        cpu: "cortex-m4",
        target: "thumbv7em-none-eabihf",
        rustflags: "",
    },
    Core {
        name: "m7",
        machine: "mps2-an500",
        cpu: "cortex-m7",
        target: "thumbv7em-none-eabihf",
        rustflags: "-C target-cpu=cortex-m7",
    },
    Core {
        name: "m33",
        machine: "mps2-an505",
        cpu: "cortex-m33",
        target: "thumbv8m.main-none-eabihf",
        rustflags: "-C target-cpu=cortex-m33",
    },
    Core {
        name: "m55",
        machine: "mps3-an547",
        cpu: "cortex-m55",
        target: "thumbv8m.main-none-eabihf",
        rustflags: "-C target-cpu=cortex-m55",
    },
    Core {
        name: "m0",
        machine: "microbit",
        cpu: "cortex-m0",
        target: "thumbv6m-none-eabi",
        rustflags: "",
    },
];

#[derive(Clone)]
struct Row {
    kernel: String,
    shape: String,
    variant: String,
    macs: u64,
    elems: u64,
    matched: bool,
    insns: u64,
    cycles: u64,
    taken: u64,
    classes: [u64; CLASSES],
}

struct CoreResult {
    core: &'static Core,
    rows: Vec<Row>,
    error: Option<String>,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn field(tok: &str, key: &str) -> Option<u64> {
    tok.strip_prefix(key)?.strip_prefix('=')?.parse().ok()
}

fn bench_core(root: &Path, plugin: &Path, core: &'static Core) -> Result<Vec<Row>, String> {
    let fw = root.join("bench/firmware");
    let target_dir = fw.join("target").join(core.name);
    let mut flags = String::from("-C link-arg=-Tlink.x");
    if !core.rustflags.is_empty() {
        flags.push(' ');
        flags.push_str(core.rustflags);
    }
    eprintln!(
        "bench: building firmware for {} ({})",
        core.name, core.target
    );
    run(Command::new("cargo")
        .args(["build", "--release", "--target", core.target])
        .current_dir(&fw)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", &flags)
        .env("BENCH_MACHINE", core.machine))?;
    let elf = target_dir.join(core.target).join("release/bench-firmware");
    let nm = run(Command::new("arm-none-eabi-nm").arg(&elf))?;
    let sym = |name: &str| {
        nm.lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                let addr = it.next()?;
                let _kind = it.next()?;
                (it.next()? == name).then(|| u64::from_str_radix(addr, 16).ok())?
            })
            .ok_or(format!("symbol {name} not found in {}", elf.display()))
    };
    let (start, stop) = (sym("bench_start")?, sym("bench_stop")?);
    let regions_path = target_dir.join("regions.txt");
    let _ = std::fs::remove_file(&regions_path);
    eprintln!("bench: running {} on {}", core.name, core.machine);
    let stdout = run(Command::new("timeout")
        .arg("300")
        .arg("qemu-system-arm")
        .args(["-machine", core.machine, "-cpu", core.cpu, "-nographic"])
        .args(["-icount", "shift=0"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-plugin")
        .arg(format!(
            "{},start={:#x},stop={:#x},out={}",
            plugin.display(),
            start,
            stop,
            regions_path.display()
        ))
        .arg("-kernel")
        .arg(&elf))?;
    let regions = std::fs::read_to_string(&regions_path)
        .map_err(|e| format!("{}: {e}", regions_path.display()))?;
    let benches: Vec<&str> = stdout.lines().filter(|l| l.starts_with("bench ")).collect();
    let regions: Vec<&str> = regions
        .lines()
        .filter(|l| l.starts_with("region "))
        .collect();
    if !stdout.contains("bench done failed=0") {
        return Err(format!("firmware did not finish cleanly:\n{stdout}"));
    }
    let benches: Vec<&str> = benches
        .into_iter()
        .filter(|l| !l.starts_with("bench done"))
        .collect();
    if benches.len() != regions.len() {
        return Err(format!(
            "{} bench lines but {} regions",
            benches.len(),
            regions.len()
        ));
    }
    let mut rows = Vec::new();
    for (b, r) in benches.iter().zip(&regions) {
        let bt: Vec<&str> = b.split_whitespace().collect();
        let rt: Vec<&str> = r.split_whitespace().collect();
        let mut classes = [0u64; CLASSES];
        for (k, name) in CLASS_NAMES.iter().enumerate() {
            classes[k] = rt.iter().find_map(|t| field(t, name)).unwrap_or(0);
        }
        rows.push(Row {
            kernel: bt[1].into(),
            shape: bt[2].into(),
            variant: bt[3].into(),
            macs: bt.iter().find_map(|t| field(t, "macs")).unwrap_or(0),
            elems: bt.iter().find_map(|t| field(t, "elems")).unwrap_or(0),
            matched: bt.iter().find_map(|t| field(t, "match")) == Some(1),
            insns: rt[3].parse().map_err(|_| format!("bad region line {r}"))?,
            cycles: rt[5].parse().map_err(|_| format!("bad region line {r}"))?,
            taken: rt[7].parse().map_err(|_| format!("bad region line {r}"))?,
            classes,
        });
    }
    // Subtract the marker overhead measured by the empty region.
    let empty = rows
        .iter()
        .position(|r| r.kernel == "empty")
        .ok_or("no calibration region")?;
    let e = rows.remove(empty);
    for r in &mut rows {
        r.insns -= e.insns;
        r.cycles -= e.cycles;
        r.taken -= e.taken;
        for k in 0..CLASSES {
            r.classes[k] = r.classes[k].saturating_sub(e.classes[k]);
        }
    }
    Ok(rows)
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn f2(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:.2}"))
}

fn json_num(x: Option<f64>) -> String {
    x.map_or("null".into(), |v| format!("{v:.4}"))
}

/// Targets from the issue: (core, kernel, what, limit, value).
fn checks(results: &[CoreResult]) -> Vec<(String, String, f64, f64, bool)> {
    let mut v = Vec::new();
    for cr in results {
        let opt = |kernel: &'static str| {
            cr.rows
                .iter()
                .filter(move |r| r.kernel == kernel && r.variant == "optimized")
        };
        let dsp = matches!(cr.core.name, "m4" | "m7" | "m33");
        for r in opt("linear") {
            if dsp {
                let ipm = r.insns as f64 / r.macs as f64;
                let cpm = r.cycles as f64 / r.macs as f64;
                v.push((
                    cr.core.name.to_string(),
                    format!("linear {} instr/MAC", r.shape),
                    1.3,
                    ipm,
                    ipm <= 1.3,
                ));
                v.push((
                    cr.core.name.to_string(),
                    format!("linear {} est. cycles/MAC", r.shape),
                    1.6,
                    cpm,
                    cpm <= 1.6,
                ));
            } else if cr.core.name == "m0" {
                let ipm = r.insns as f64 / r.macs as f64;
                v.push((
                    "m0".into(),
                    format!("linear {} instr/MAC", r.shape),
                    5.0,
                    ipm,
                    ipm <= 5.0,
                ));
            }
        }
        if cr.core.name == "m4" {
            for r in opt("attention") {
                v.push((
                    "m4".into(),
                    format!("attention {} instructions", r.shape),
                    200_000.0,
                    r.insns as f64,
                    r.insns <= 200_000,
                ));
            }
            for k in ["softmax_scores", "softmax_i8"] {
                for r in opt(k) {
                    let ipe = r.insns as f64 / r.elems as f64;
                    v.push((
                        "m4".into(),
                        format!("{k} row of {} instr/element", r.shape),
                        30.0,
                        ipe,
                        ipe <= 30.0,
                    ));
                }
            }
        }
    }
    v
}

const NOTES: &str = include_str!("notes.md");

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../..")
        .canonicalize()
        .expect("repository root");
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `--check`: M4 only, write nothing, fail if a variant does not match (CI).
    let check_only = args.iter().any(|a| a == "--check");
    args.retain(|a| a != "--check");
    if check_only && args.is_empty() {
        args.push("m4".into());
    }
    let selected: Vec<&'static Core> = if args.is_empty() {
        CORES.iter().collect()
    } else {
        args.iter()
            .map(|a| {
                CORES
                    .iter()
                    .find(|c| c.name == a)
                    .unwrap_or_else(|| panic!("unknown core {a}"))
            })
            .collect()
    };
    eprintln!("bench: building the plugin");
    let host = root.join("bench/host");
    run(Command::new("cargo")
        .args(["build", "--release", "-p", "qemu-insn-count"])
        .current_dir(&host))
    .unwrap_or_else(|e| panic!("{e}"));
    let plugin = host.join("target/release/libqemu_insn_count.so");
    let qemu_version = run(Command::new("qemu-system-arm").arg("--version"))
        .map(|s| s.lines().next().unwrap_or("").to_string())
        .unwrap_or_default();
    let mut results = Vec::new();
    for core in selected {
        match bench_core(&root, &plugin, core) {
            Ok(rows) => results.push(CoreResult {
                core,
                rows,
                error: None,
            }),
            Err(e) => {
                eprintln!("bench: {}: {e}", core.name);
                results.push(CoreResult {
                    core,
                    rows: Vec::new(),
                    error: Some(e.lines().next().unwrap_or("").to_string()),
                })
            }
        }
    }

    if check_only {
        let mut ok = true;
        for cr in &results {
            if let Some(e) = &cr.error {
                eprintln!("bench: {}: {e}", cr.core.name);
                ok = false;
            }
            for r in &cr.rows {
                eprintln!(
                    "bench: {} {} {} {}: {} instructions{}{}",
                    cr.core.name,
                    r.kernel,
                    r.shape,
                    r.variant,
                    r.insns,
                    ratio(r.insns, r.macs).map_or(String::new(), |v| format!(", {v:.2}/MAC")),
                    if r.matched { "" } else { "  MISMATCH" }
                );
                ok &= r.matched;
            }
        }
        std::process::exit(if ok { 0 } else { 1 });
    }

    // ---- BENCHMARKS.md
    let mut md = String::new();
    md.push_str("# Benchmarks\n\n");
    md.push_str(
        "Generated by `cargo run --release --manifest-path bench/host/Cargo.toml -p bench-runner` \
         (also `bash bench/run`); do not edit by hand. Raw figures: `bench/results.json`.\n\n",
    );
    writeln!(md, "QEMU: `{qemu_version}`, `-icount shift=0`.\n").unwrap();
    md.push_str(
        "## Method\n\n\
         `bench/firmware` runs each kernel at the shipped shapes between two marker functions \
         (`bench_start`, `bench_stop`); `bench/host/plugin` is a QEMU TCG plugin (plugin API v1, \
         declared by hand) that counts the instructions executed between the markers, per \
         instruction class, and estimates cycles with the Cortex-M4 table below. The marker \
         overhead (an empty region) is subtracted. `match` = the variant's output equals the \
         generic reference kernel's, byte for byte, on the device. `naive` is a scalar Rust \
         baseline (indexed loops) in the bench firmware; `generic` is core-attn's reference \
         variant (`*_generic`); `optimized` is the default entry point (`Linear::run`, …), which \
         uses `core_attn::dsp` where the target has it. Instruction counts are exact and \
         repeatable; cycles are an estimate from a static timing model (the same Cortex-M4 \
         model for every core: for the other cores read them as \"M4-equivalent cycles\").\n\n",
    );
    md.push_str(qemu_insn_count::timing::MODEL_TABLE);
    md.push('\n');
    for cr in &results {
        writeln!(
            md,
            "## {} ({}, `{}`{}{})\n",
            cr.core.name.to_uppercase(),
            cr.core.machine,
            cr.core.target,
            if cr.core.rustflags.is_empty() {
                ""
            } else {
                ", "
            },
            cr.core.rustflags
        )
        .unwrap();
        if let Some(e) = &cr.error {
            writeln!(md, "Not measured: {e}\n").unwrap();
            continue;
        }
        md.push_str(
            "| kernel | shape | variant | instructions | MACs | instr/MAC | est. cycles | cycles/MAC | \
             instr/elem | dual MACs (SMLAD…) | other muls | loads | LDM/STM/LDRD | taken br. | match |\n\
             |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for r in &cr.rows {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.kernel,
                r.shape,
                r.variant,
                r.insns,
                if r.macs > 0 {
                    r.macs.to_string()
                } else {
                    "–".into()
                },
                f2(ratio(r.insns, r.macs)),
                r.cycles,
                f2(ratio(r.cycles, r.macs)),
                f2(ratio(r.insns, r.elems)),
                r.classes[5],
                r.classes[4],
                r.classes[1],
                r.classes[3],
                r.taken,
                if r.matched { "yes" } else { "**NO**" }
            )
            .unwrap();
        }
        md.push('\n');
    }
    md.push_str("## Targets (issue 6)\n\n| core | figure | target | measured | met |\n|---|---|---:|---:|---|\n");
    for (core, what, limit, value, ok) in checks(&results) {
        writeln!(
            md,
            "| {core} | {what} | ≤ {limit} | {value:.2} | {} |",
            if ok { "yes" } else { "**no**" }
        )
        .unwrap();
    }
    md.push_str(
        "\nReference figures (QEMU 7.2, M4, 17×64→192 linear, instr/MAC): CMSIS-NN \
         `arm_fully_connected_s8` 2.66; plain Rust iterators 5.06.\n\n",
    );
    md.push_str(NOTES);
    std::fs::write(root.join("BENCHMARKS.md"), &md).expect("write BENCHMARKS.md");

    // ---- results.json
    let mut js = String::from("{\n");
    writeln!(js, "  \"qemu\": \"{}\",", qemu_version.replace('"', "'")).unwrap();
    js.push_str("  \"cycle_model\": \"cortex-m4 (bench/host/plugin/src/timing.rs)\",\n");
    js.push_str("  \"cores\": [\n");
    for (ci, cr) in results.iter().enumerate() {
        js.push_str("    {\n");
        writeln!(js, "      \"core\": \"{}\",", cr.core.name).unwrap();
        writeln!(js, "      \"machine\": \"{}\",", cr.core.machine).unwrap();
        writeln!(js, "      \"target\": \"{}\",", cr.core.target).unwrap();
        writeln!(js, "      \"rustflags\": \"{}\",", cr.core.rustflags).unwrap();
        match &cr.error {
            Some(e) => {
                writeln!(js, "      \"error\": \"{}\",", e.replace(['"', '\\'], "'")).unwrap()
            }
            None => js.push_str("      \"error\": null,\n"),
        }
        js.push_str("      \"results\": [\n");
        for (i, r) in cr.rows.iter().enumerate() {
            let mut classes = BTreeMap::new();
            for (k, name) in CLASS_NAMES.iter().enumerate() {
                classes.insert(*name, r.classes[k]);
            }
            let cls: Vec<String> = classes
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            writeln!(
                js,
                "        {{\"kernel\": \"{}\", \"shape\": \"{}\", \"variant\": \"{}\", \"instructions\": {}, \
                 \"est_cycles\": {}, \"macs\": {}, \"elements\": {}, \"instr_per_mac\": {}, \
                 \"cycles_per_mac\": {}, \"instr_per_element\": {}, \"taken_branches\": {}, \
                 \"classes\": {{{}}}, \"matches_generic\": {}}}{}",
                r.kernel,
                r.shape,
                r.variant,
                r.insns,
                r.cycles,
                r.macs,
                r.elems,
                json_num(ratio(r.insns, r.macs)),
                json_num(ratio(r.cycles, r.macs)),
                json_num(ratio(r.insns, r.elems)),
                r.taken,
                cls.join(", "),
                r.matched,
                if i + 1 < cr.rows.len() { "," } else { "" }
            )
            .unwrap();
        }
        js.push_str("      ]\n");
        writeln!(
            js,
            "    }}{}",
            if ci + 1 < results.len() { "," } else { "" }
        )
        .unwrap();
    }
    js.push_str("  ]\n}\n");
    std::fs::write(root.join("bench/results.json"), js).expect("write results.json");
    let failed = results
        .iter()
        .any(|c| c.core.name == "m4" && (c.error.is_some() || c.rows.iter().any(|r| !r.matched)));
    eprintln!("bench: wrote BENCHMARKS.md and bench/results.json");
    if failed {
        eprintln!("bench: FAILED (M4 not measured or an optimized variant did not match)");
        std::process::exit(1);
    }
}
