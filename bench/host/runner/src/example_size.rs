//! Code size of a firmware written with core-attn's device API: `examples/qemu-mps2-an386`'s
//! `classify` binary (the ViT on MNIST, 14 lines of user code), built in several
//! configurations, its flash split into code, read-only data besides the embedded blob and the
//! test images, and its instructions per image counted under QEMU with the plugin.
//!
//! Part of the full run (`bash bench/run`); `bash bench/run --example-size` runs only this step
//! and replaces its section of BENCHMARKS.md (between [`BEGIN`] and [`END`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::cores;
use crate::parse::Region;
use crate::qemu::{self, run};

/// Section markers in BENCHMARKS.md.
pub const BEGIN: &str = "<!-- example-size: begin -->";
/// See [`BEGIN`].
pub const END: &str = "<!-- example-size: end -->";

/// The M4's target (the example is a Cortex-M4 firmware, run on the M4's QEMU machine).
const TARGET: &str = cores::CORES[0].target;

/// One build of the example.
struct Config {
    name: &'static str,
    profile: &'static str,
    features: &'static str,
}

const CONFIGS: &[Config] = &[
    Config {
        name: "default kernels, `release` (opt-level 3)",
        profile: "release",
        features: "",
    },
    Config {
        name: "default kernels, `release-s` (opt-level \"s\")",
        profile: "release-s",
        features: "",
    },
    Config {
        name: "size-first: `core-attn/compact`, `release-s` (opt-level \"s\")",
        profile: "release-s",
        features: "core-attn/compact",
    },
    Config {
        name: "`core-attn/compact`, `release` (opt-level 3)",
        profile: "release",
        features: "core-attn/compact",
    },
];

/// Measured figures of one configuration.
pub struct SizeRow {
    name: &'static str,
    /// `.vector_table` + `.text`.
    code: u64,
    /// `.rodata` + `.data` without the blob and the test images.
    rodata: u64,
    blob: u64,
    images: u64,
    /// Instructions per image (images 2…N, each with its printed line).
    per_image: Option<u64>,
    /// Instructions from `main` to the first print: `load` (fingerprint of the blob) + image 1.
    first: Option<u64>,
    /// Code bytes per part (symbol path prefix), largest first.
    parts: Vec<(String, u64)>,
}

impl SizeRow {
    fn flash_besides(&self) -> u64 {
        self.code + self.rodata
    }
}

/// Section sizes of an ELF (`arm-none-eabi-size -A`).
fn sections(elf: &Path) -> Result<BTreeMap<String, u64>, String> {
    let out = run(Command::new("arm-none-eabi-size").arg("-A").arg(elf))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, size) = (w.next()?, w.next()?.parse().ok()?);
            name.starts_with('.').then(|| (name.to_string(), size))
        })
        .collect())
}

/// `(address, size, type, demangled name)` of every sized symbol (`arm-none-eabi-nm -S -C`).
fn symbols(elf: &Path) -> Result<Vec<(u64, u64, char, String)>, String> {
    let out = run(Command::new("arm-none-eabi-nm").args(["-S", "-C"]).arg(elf))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut w = l.splitn(4, ' ');
            let addr = u64::from_str_radix(w.next()?, 16).ok()?;
            let size = u64::from_str_radix(w.next()?, 16).ok()?;
            let kind = w.next()?.chars().next()?;
            Some((addr, size, kind, w.next()?.to_string()))
        })
        .collect())
}

/// Address of the (unsized or sized) symbol whose demangled name is `name`.
fn address(elf: &Path, name: &str) -> Result<u64, String> {
    let out = run(Command::new("arm-none-eabi-nm").arg("-C").arg(elf))?;
    out.lines()
        .find_map(|l| {
            let mut w = l.splitn(3, ' ');
            let addr = w.next()?;
            let _kind = w.next()?;
            (w.next()? == name).then(|| u64::from_str_radix(addr, 16).ok())?
        })
        .ok_or_else(|| format!("symbol {name} not found in {}", elf.display()))
}

/// Instructions between reaching `start` and reaching `stop` (first region) under QEMU.
fn count(plugin: &Path, elf: &Path, start: u64, stop: u64) -> Result<(u64, String), String> {
    let regions = elf.with_extension("regions.txt");
    let m4 = cores::m4();
    let out = qemu::run_counted(m4.machine, m4.cpu, plugin, elf, (start, stop), &regions)?;
    let insns = Region::all(&out.regions)?
        .first()
        .map(|r| r.insns)
        .ok_or_else(|| format!("no region in {}:\n{}", regions.display(), out.regions))?;
    Ok((insns, out.stdout))
}

/// The code part a symbol belongs to (for the breakdown).
fn part(name: &str) -> String {
    let name = name.trim_start_matches('<');
    let mut it = name.split("::");
    match (it.next(), it.next()) {
        (Some("core_attn"), Some(m)) => {
            format!("core_attn::{}", m.split([' ', '<']).next().unwrap_or(m))
        }
        (Some("core"), _) | (Some("compiler_builtins"), _) => {
            "core + compiler_builtins (fmt, memcpy, division)".into()
        }
        (Some("classify"), _) => "classify (user code, inlined runner calls)".into(),
        _ => "other (cortex-m-rt, semihosting glue)".into(),
    }
}

fn measure(root: &Path, plugin: &Path, c: &Config) -> Result<SizeRow, String> {
    let dir = root.join("examples/qemu-mps2-an386");
    eprintln!("bench: example size: building classify ({})", c.name);
    let mut cmd = Command::new("cargo");
    cmd.args([
        "build",
        "--quiet",
        "--locked",
        "--bin",
        "classify",
        "--profile",
        c.profile,
    ])
    .current_dir(&dir)
    .env_remove("CARGO_TARGET_DIR")
    .env_remove("RUSTFLAGS");
    if !c.features.is_empty() {
        cmd.args(["--features", c.features]);
    }
    run(&mut cmd)?;
    let built = dir.join(format!("target/{TARGET}/{}/classify", c.profile));
    let feature = c.features.rsplit('/').next().unwrap_or("");
    let elf = dir.join(format!(
        "target/size-{}{}{feature}.elf",
        c.profile,
        if feature.is_empty() { "" } else { "-" }
    ));
    std::fs::copy(&built, &elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let s = sections(&elf)?;
    let sec = |n: &str| s.get(n).copied().unwrap_or(0);
    let syms = symbols(&elf)?;
    let sized = |suffix: &str| {
        syms.iter()
            .find(|(_, _, _, n)| n.ends_with(suffix))
            .map(|&(_, size, _, _)| size)
            .ok_or_else(|| format!("no symbol *{suffix} in {}", elf.display()))
    };
    let (blob, images) = (sized("::MNIST::BLOB")?, sized("::DIGITS")?);
    let code = sec(".vector_table") + sec(".text");
    let rodata = (sec(".rodata") + sec(".data"))
        .checked_sub(blob + images)
        .ok_or("blob and images larger than .rodata")?;
    let mut parts: BTreeMap<String, u64> = BTreeMap::new();
    for (_, size, kind, name) in &syms {
        if matches!(kind, 't' | 'T') {
            *parts.entry(part(name)).or_default() += size;
        }
    }
    let mut parts: Vec<(String, u64)> = parts.into_iter().collect();
    parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    // Instructions: main → first print (load + image 1), main → finish (load + every image).
    let main = address(&elf, "main")?;
    let print = address(&elf, "qemu_example::_print")?;
    let finish = address(&elf, "qemu_example::finish")?;
    let counted = count(plugin, &elf, main, print).and_then(|(first, _)| {
        let (all, stdout) = count(plugin, &elf, main, finish)?;
        let n = stdout.lines().filter(|l| l.starts_with("digit ")).count() as u64;
        if n < 2 {
            return Err(format!("classify printed {n} digits:\n{stdout}"));
        }
        Ok((first, (all - first) / (n - 1)))
    });
    let (first, per_image) = match counted {
        Ok((f, p)) => (Some(f), Some(p)),
        Err(e) => {
            eprintln!("bench: example size: {e}");
            (None, None)
        }
    };
    Ok(SizeRow {
        name: c.name,
        code,
        rodata,
        blob,
        images,
        per_image,
        first,
        parts,
    })
}

/// Build and measure every configuration (a failed build is reported, not fatal).
pub fn rows(root: &Path, plugin: &Path) -> Vec<Result<SizeRow, String>> {
    CONFIGS.iter().map(|c| measure(root, plugin, c)).collect()
}

fn opt(v: Option<u64>) -> String {
    v.map_or("–".into(), crate::report::thousands)
}

/// The BENCHMARKS.md section, with its markers.
pub fn markdown(rows: &[Result<SizeRow, String>]) -> String {
    let mut md = String::new();
    md.push_str(BEGIN);
    md.push_str(
        "\n## Code size of a firmware written with the device API\n\n\
         `examples/qemu-mps2-an386`'s `classify` (14 lines of user code: `include_model!`, \
         `PixelMap`, `load`, `classify_u8` on 4 embedded MNIST digits, printed over \
         semihosting; board glue in the example's `src/lib.rs`), Cortex-M4 \
         (`thumbv7em-none-eabihf`), `lto = \"fat\"`, `codegen-units = 1`, `panic = \"abort\"`. \
         Flash besides the model = code (`.vector_table` + `.text`) + read-only data \
         (`.rodata` + `.data`) minus the embedded blob and the test images (their symbols' \
         sizes from `arm-none-eabi-nm`). Instructions under QEMU with the counting plugin: \
         from `main` to the first print (`load`: the fingerprint check of the embedded blob, \
         whose whole validation the compiler ran, + image 1) and per further image \
         (with its printed line). Regenerate this section alone with \
         `bash bench/run --example-size`. Targets (issue 13): ≤ 32 KiB (32,768 B) with the \
         default kernels, ≤ 16 KiB (16,384 B) with a size-first option. At opt-level \
         \"s\" core-attn keeps one looped copy of each inner loop (the `SMLAD` linear \
         passes without the per-width unrolled copies, attention without per-head-width \
         copies and on its direct path only, no packed-V copy) and a ViT firmware links no \
         panic path; \
         the `compact` feature adds the portable kernels (core-attn's README, \
         \"Code size\"). At every level the embedded ViT blob is checked at compile time \
         (`include_model!`, `blob::Embedded`: no validation code in the firmware), the \
         blob's parts are read without a second run of their checks, and the example's \
         glue prints an error as a number (no check texts linked).\n\n\
         | build | flash besides model | code | rodata | blob | images | instr. load + image 1 | instr. per image |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        match r {
            Ok(r) => writeln!(
                md,
                "| {} | **{}** | {} | {} | {} | {} | {} | {} |",
                r.name,
                crate::report::thousands(r.flash_besides()),
                crate::report::thousands(r.code),
                crate::report::thousands(r.rodata),
                crate::report::thousands(r.blob),
                crate::report::thousands(r.images),
                opt(r.first),
                opt(r.per_image)
            )
            .unwrap(),
            Err(e) => writeln!(
                md,
                "| not measured: {} | | | | | | | |",
                e.lines().next().unwrap_or("")
            )
            .unwrap(),
        }
    }
    md.push_str("\nCode bytes by part (`.text` symbols, `arm-none-eabi-nm -S -C`):\n\n| part |");
    let ok: Vec<&SizeRow> = rows.iter().filter_map(|r| r.as_ref().ok()).collect();
    for r in &ok {
        write!(md, " {} |", r.name).unwrap();
    }
    md.push_str("\n|---|");
    for _ in &ok {
        md.push_str("---:|");
    }
    md.push('\n');
    let mut names: Vec<&str> = Vec::new();
    for r in &ok {
        for (n, _) in &r.parts {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    for n in names {
        write!(md, "| {n} |").unwrap();
        for r in &ok {
            let v = r.parts.iter().find(|(p, _)| p == n).map(|&(_, v)| v);
            write!(md, " {} |", opt(v)).unwrap();
        }
        md.push('\n');
    }
    md.push('\n');
    md.push_str(END);
    md.push('\n');
    md
}

/// Replace the section in `BENCHMARKS.md` (or append it when absent).
pub fn splice(root: &Path, section: &str) -> Result<(), String> {
    let path = root.join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(a), Some(b)) if b > a => {
            let after = b + END.len();
            let after = after + usize::from(old[after..].starts_with('\n'));
            format!("{}{section}{}", &old[..a], &old[after..])
        }
        _ => format!(
            "{}\n{section}",
            old.trim_end_matches('\n').to_string() + "\n"
        ),
    };
    std::fs::write(&path, new).map_err(|e| format!("{}: {e}", path.display()))
}
