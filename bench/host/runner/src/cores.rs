//! The cores the benchmark runs on: one entry per core, the single table the rest of the runner
//! reads (QEMU machine and CPU, Rust target, codegen flags, the chip's flash and RAM).
//!
//! The board crate of a core is `boards/<machine>` (the bench firmware's `build.rs` links the
//! whole-model suite with `boards/<machine>/memory.x` by the same convention). The table repeats
//! what those board crates already state — the target and the QEMU machine and CPU in
//! `.cargo/config.toml`, the memory sizes in `memory.x` — and the tests below check that it
//! agrees with them, so a board changed without the table (or the other way round) fails.

/// One benchmarked core.
pub struct Core {
    /// Short name, as given on the command line (`m4`, …).
    pub name: &'static str,
    /// QEMU machine; also the board crate's directory under `boards/`.
    pub machine: &'static str,
    /// QEMU CPU (`-cpu`).
    pub cpu: &'static str,
    /// Rust target triple of the firmware.
    pub target: &'static str,
    /// Extra `RUSTFLAGS` of the bench firmware (besides `-C link-arg=-Tlink.x`).
    pub rustflags: &'static str,
    /// Flash and RAM of the representative chip (`boards/<machine>/memory.x`), KiB.
    pub flash_kib: u64,
    /// See [`Core::flash_kib`].
    pub ram_kib: u64,
}

/// Every core, in report order (the default selection).
pub const CORES: &[Core] = &[
    Core {
        name: "m4",
        machine: "mps2-an386",
        cpu: "cortex-m4",
        target: "thumbv7em-none-eabihf",
        rustflags: "",
        flash_kib: 512,
        ram_kib: 128,
    },
    Core {
        name: "m7",
        machine: "mps2-an500",
        cpu: "cortex-m7",
        target: "thumbv7em-none-eabihf",
        rustflags: "-C target-cpu=cortex-m7",
        flash_kib: 1024,
        ram_kib: 320,
    },
    Core {
        name: "m33",
        machine: "mps2-an505",
        cpu: "cortex-m33",
        target: "thumbv8m.main-none-eabihf",
        rustflags: "-C target-cpu=cortex-m33",
        flash_kib: 512,
        ram_kib: 256,
    },
    Core {
        name: "m55",
        machine: "mps3-an547",
        cpu: "cortex-m55",
        target: "thumbv8m.main-none-eabihf",
        rustflags: "-C target-cpu=cortex-m55",
        flash_kib: 512,
        ram_kib: 512,
    },
    Core {
        name: "m0",
        machine: "microbit",
        cpu: "cortex-m0",
        target: "thumbv6m-none-eabi",
        rustflags: "",
        flash_kib: 256,
        ram_kib: 16,
    },
];

/// The core called `name`.
pub fn by_name(name: &str) -> Option<&'static Core> {
    CORES.iter().find(|c| c.name == name)
}

/// The Cortex-M4 entry (the f32 baseline and the device-API example run on its machine).
pub fn m4() -> &'static Core {
    &CORES[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn board_file(core: &Core, file: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../boards")
            .join(core.machine)
            .join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (core {})", path.display(), core.name))
    }

    /// The word after `flag` in a QEMU command line.
    fn arg_after<'a>(line: &'a str, flag: &str) -> Option<&'a str> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == flag)?;
        words.next()
    }

    /// `LENGTH = <n>K` of memory region `region` in a `memory.x`.
    fn length_kib(memory_x: &str, region: &str) -> Option<u64> {
        let line = memory_x
            .lines()
            .find(|l| l.trim_start().starts_with(region))?;
        let len = line.split("LENGTH").nth(1)?;
        len.trim_start_matches([' ', '='])
            .trim()
            .strip_suffix('K')?
            .parse()
            .ok()
    }

    /// The table agrees with each board crate's `.cargo/config.toml`: the build target, the
    /// QEMU machine and CPU of its `runner` (microbit's runner names no `-cpu`: the machine has
    /// only the Cortex-M0), and any `target-cpu` its rustflags set. Catches a table entry with
    /// a wrong target, machine or CPU (e.g. `m33` on `thumbv7em-none-eabihf`).
    #[test]
    fn table_agrees_with_board_cargo_configs() {
        for core in CORES {
            let cfg = board_file(core, ".cargo/config.toml");
            let target = cfg
                .lines()
                .find_map(|l| l.trim().strip_prefix("target = "))
                .map(|t| t.trim_matches('"'));
            assert_eq!(target, Some(core.target), "{}: build target", core.name);
            let runner = cfg
                .lines()
                .find(|l| l.trim_start().starts_with("runner"))
                .unwrap_or_else(|| panic!("{}: no runner", core.name));
            assert_eq!(
                arg_after(runner, "-machine"),
                Some(core.machine),
                "{}: QEMU machine",
                core.name
            );
            match arg_after(runner, "-cpu") {
                Some(cpu) => assert_eq!(cpu, core.cpu, "{}: QEMU CPU", core.name),
                None => assert_eq!(
                    core.machine, "microbit",
                    "{}: runner has no -cpu",
                    core.name
                ),
            }
            let flags = cfg
                .lines()
                .find(|l| l.trim_start().starts_with("rustflags"))
                .unwrap_or("");
            for cpu in flags
                .split('"')
                .filter_map(|w| w.strip_prefix("target-cpu="))
            {
                assert!(
                    core.rustflags.contains(&format!("target-cpu={cpu}")),
                    "{}: the board builds for target-cpu={cpu}, the bench with {:?}",
                    core.name,
                    core.rustflags
                );
            }
        }
    }

    /// The chip sizes the runner judges fit by are the board's `memory.x` (the link of the
    /// whole-model firmware uses that file). Catches a table entry with another flash or RAM
    /// size than the board (e.g. the M0 at 32 KiB RAM).
    #[test]
    fn table_agrees_with_board_memory_maps() {
        for core in CORES {
            let mem = board_file(core, "memory.x");
            assert_eq!(
                length_kib(&mem, "FLASH"),
                Some(core.flash_kib),
                "{}",
                core.name
            );
            assert_eq!(length_kib(&mem, "RAM"), Some(core.ram_kib), "{}", core.name);
        }
    }

    /// Names are unique (the command line selects by name) and `m4()` is the M4.
    #[test]
    fn names_unique_and_m4() {
        for (i, a) in CORES.iter().enumerate() {
            assert!(
                CORES[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
            assert_eq!(by_name(a.name).map(|c| c.machine), Some(a.machine));
        }
        assert_eq!(m4().cpu, "cortex-m4");
        assert!(by_name("m3").is_none());
    }
}
