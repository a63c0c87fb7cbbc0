//! Driving the external programs: cargo (the plugin, the bench firmware), `arm-none-eabi-nm`
//! and QEMU with the counting plugin. What they print is parsed by [`crate::parse`].

use crate::cores::Core;
use crate::parse;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Run `cmd` (standard error passed through) and return its standard output; an error names
/// the command, its status and its output.
pub fn run(cmd: &mut Command) -> Result<String, String> {
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

/// Build the counting plugin (`bench/host/plugin`) and return the path of its shared library.
pub fn build_plugin(root: &Path) -> Result<PathBuf, String> {
    let host = root.join("bench/host");
    run(Command::new("cargo")
        .args(["build", "--release", "-p", "qemu-insn-count"])
        .current_dir(&host))?;
    Ok(host.join("target/release/libqemu_insn_count.so"))
}

/// First line of `qemu-system-arm --version` (empty when QEMU does not answer).
pub fn version() -> String {
    run(Command::new("qemu-system-arm").arg("--version"))
        .map(|s| s.lines().next().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// Addresses of the `bench_start` and `bench_stop` markers in `elf`.
pub fn markers(elf: &Path) -> Result<(u64, u64), String> {
    let nm = run(Command::new("arm-none-eabi-nm").arg(elf))?;
    let sym = |name: &str| {
        parse::symbol_address(&nm, name)
            .ok_or(format!("symbol {name} not found in {}", elf.display()))
    };
    Ok((sym("bench_start")?, sym("bench_stop")?))
}

/// What one run under QEMU with the plugin printed.
pub struct Counted {
    /// The firmware's standard output (semihosting).
    pub stdout: String,
    /// The plugin's output file (`region` lines).
    pub regions: String,
}

/// Boot `elf` on `machine`/`cpu` (`-icount shift=0`, semihosting, 300 s timeout) with the
/// plugin counting between `start` and `stop`; the plugin writes to `regions` (removed first).
pub fn run_counted(
    machine: &str,
    cpu: &str,
    plugin: &Path,
    elf: &Path,
    (start, stop): (u64, u64),
    regions: &Path,
) -> Result<Counted, String> {
    let _ = std::fs::remove_file(regions);
    let stdout = run(Command::new("timeout")
        .arg("300")
        .arg("qemu-system-arm")
        .args(["-machine", machine, "-cpu", cpu, "-nographic"])
        .args(["-icount", "shift=0"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-plugin")
        .arg(format!(
            "{},start={:#x},stop={:#x},out={}",
            plugin.display(),
            start,
            stop,
            regions.display()
        ))
        .arg("-kernel")
        .arg(elf))?;
    let regions =
        std::fs::read_to_string(regions).map_err(|e| format!("{}: {e}", regions.display()))?;
    Ok(Counted { stdout, regions })
}

/// Build the bench firmware for `core` (`model`: the whole-model suite with that model, else
/// the kernel suite) and return its ELF, copied to `target/<core>/<label>.elf`. A model that
/// does not fit the chip fails to link: the error is the linker's reason.
pub fn build_firmware(root: &Path, core: &Core, model: Option<&str>) -> Result<PathBuf, String> {
    let fw = root.join("bench/firmware");
    // One target directory per core: the suites differ only in the bench crate itself.
    let target_dir = fw.join("target").join(core.name);
    let label = model.unwrap_or("kernels");
    let mut flags = String::from("-C link-arg=-Tlink.x");
    if !core.rustflags.is_empty() {
        flags.push(' ');
        flags.push_str(core.rustflags);
    }
    eprintln!(
        "bench: building firmware for {} ({}): {label}",
        core.name, core.target
    );
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "--release", "--target", core.target])
        .current_dir(&fw)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", &flags)
        .env("BENCH_MACHINE", core.machine);
    match model {
        Some(m) => cmd.env("BENCH_SUITE", "models").env("BENCH_MODELS", m),
        None => cmd.env("BENCH_SUITE", "kernels").env_remove("BENCH_MODELS"),
    };
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        eprint!("{err}");
        return Err(
            parse::build_failure(&err).unwrap_or_else(|| format!("build failed ({})", out.status))
        );
    }
    let built = target_dir.join(core.target).join("release/bench-firmware");
    let elf = target_dir.join(format!("{label}.elf"));
    std::fs::copy(&built, &elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    Ok(elf)
}
