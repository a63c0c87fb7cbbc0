//! Kernel selection (documented in the README, "Kernel selection").
//!
//! Sets `cfg(core_attn_dsp)` when the target has the Armv7E-M / Armv8-M DSP extension (SMLAD,
//! SXTB16) and `cfg(core_attn_mve)` for the Helium (MVE) cores, which get the MVE linear
//! kernels instead of the SMLAD ones (the other DSP kernels stay off there: LLVM vectorizes the
//! generic loops with `vmladava`). Sets `cfg(core_attn_v6m)` on `thumbv6m-*` (Cortex-M0/M0+):
//! the Armv6-M `asm!` linear kernel (`dsp/armv6m/mod.rs`).
//!
//! Detected (Arm target features are unstable, so `cfg(target_feature = "dsp")` is not usable
//! on stable Rust, hence this script):
//! - `thumbv7em-*`: DSP (every Cortex-M4/M7 has it);
//! - `thumbv8m.main-*`: DSP with `-C target-cpu=cortex-m33` / `cortex-m35p` or
//!   `-C target-feature=+dsp`; MVE with `-C target-cpu=cortex-m55` / `cortex-m85` or
//!   `-C target-feature=+mve` (from `CARGO_ENCODED_RUSTFLAGS`, or from
//!   `CARGO_CFG_TARGET_FEATURE` when a toolchain reports them);
//! - `thumbv8m.main-*` without any of these (e.g. an RP2350 built with embassy's usual
//!   config) cannot be told apart from a core without the extension: the portable kernels run
//!   unless the `dsp` (or `mve`) cargo feature forces them. Under `dsp` on such a target the
//!   `asm!` blocks start with `.cpu cortex-m33` (`cfg(core_attn_dsp_directive)`) so that the
//!   assembler accepts the instructions (`.cpu cortex-m55` for the MVE blocks under `mve`,
//!   `cfg(core_attn_mve_directive)`).
//!
//! Size-first (`cfg(core_attn_small)`): with the cargo feature `compact`, or when the crate is
//! built at `opt-level = "s"` or `"z"` (`OPT_LEVEL`, which cargo gives build scripts), the
//! kernels keep one looped copy of each inner loop instead of the per-width unrolled copies
//! (same bits, a few percent more instructions; README, "Code size"). `compact` also selects
//! the portable kernels (the smallest).
//!
//! Forced: cargo feature `portable`, or `CORE_ATTN_NO_DSP=1` in the environment, selects the
//! portable kernels everywhere (for measuring them on a DSP core). The `dsp` and `mve`
//! features are ignored, with a warning, on targets that cannot have the extension.
use std::env;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(docsrs)");
    println!("cargo:rustc-check-cfg=cfg(core_attn_dsp)");
    println!("cargo:rustc-check-cfg=cfg(core_attn_dsp_directive)");
    println!("cargo:rustc-check-cfg=cfg(core_attn_mve)");
    println!("cargo:rustc-check-cfg=cfg(core_attn_mve_directive)");
    println!("cargo:rustc-check-cfg=cfg(core_attn_v6m)");
    println!("cargo:rustc-check-cfg=cfg(core_attn_small)");
    println!("cargo:rerun-if-env-changed=OPT_LEVEL");
    println!("cargo:rerun-if-env-changed=CORE_ATTN_NO_DSP");
    let target = env::var("TARGET").unwrap_or_default();
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let has_feature = |f: &str| {
        features.split(',').any(|x| x == f)
            || flags.contains(&format!("target-feature=+{f}"))
            || flags.contains(&format!("+{f},"))
            || flags.contains(&format!(",+{f}"))
    };
    let cpu = |cpus: &[&str]| {
        cpus.iter()
            .any(|c| flags.contains(&format!("target-cpu={c}")))
    };
    let feature = |f: &str| env::var_os(format!("CARGO_FEATURE_{}", f.to_uppercase())).is_some();

    let v7em = target.starts_with("thumbv7em-");
    let v8main = target.starts_with("thumbv8m.main-");
    let detected_mve = v8main && (cpu(&["cortex-m55", "cortex-m85"]) || has_feature("mve"));
    let detected_dsp = v7em
        || (v8main && (cpu(&["cortex-m33", "cortex-m35p"]) || has_feature("dsp")))
        || detected_mve;
    let compact = feature("compact");
    let opt_size = matches!(env::var("OPT_LEVEL").as_deref(), Ok("s" | "z"));
    if compact || opt_size {
        println!("cargo:rustc-cfg=core_attn_small");
    }
    let portable = compact || feature("portable") || env::var_os("CORE_ATTN_NO_DSP").is_some();

    if feature("dsp") && !(v7em || v8main) {
        println!(
            "cargo:warning=core-attn: feature `dsp` ignored on {target} (only thumbv7em and \
             thumbv8m.main cores can have the DSP extension)"
        );
    }
    if feature("mve") && !v8main {
        println!(
            "cargo:warning=core-attn: feature `mve` ignored on {target} (Helium is \
             thumbv8m.main only: Cortex-M55/M85)"
        );
    }
    let mve = v8main && (detected_mve || feature("mve"));
    let dsp = (v7em || v8main) && (detected_dsp || feature("dsp")) && !mve;
    if portable {
        return;
    }
    if mve {
        println!("cargo:rustc-cfg=core_attn_mve");
        if !detected_mve {
            // Forced by the feature: the MVE `asm!` blocks name the CPU for the assembler.
            println!("cargo:rustc-cfg=core_attn_mve_directive");
        }
    }
    if dsp {
        println!("cargo:rustc-cfg=core_attn_dsp");
        if v8main && !detected_dsp {
            println!("cargo:rustc-cfg=core_attn_dsp_directive");
        }
    }
    if target.starts_with("thumbv6m-") {
        println!("cargo:rustc-cfg=core_attn_v6m");
    }
}
