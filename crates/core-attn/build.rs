//! Sets `cfg(core_attn_dsp)` when the target has the Armv7E-M / Armv8-M DSP extension (SMLAD,
//! SXTB16): `thumbv7em-*` (Cortex-M4/M7), or `thumbv8m.main-*` built with
//! `-C target-cpu=cortex-m33` / `cortex-m35p`; and `cfg(core_attn_mve)` for the Helium (MVE)
//! cores (`thumbv8m.main-*` with `-C target-cpu=cortex-m55` / `cortex-m85`), which get the MVE
//! linear kernels instead of the SMLAD ones (the other DSP kernels stay off there: LLVM
//! vectorizes the generic loops with `vmladava`). `cfg(target_feature = "dsp")` / `"mve"` are
//! not usable on stable Rust (Arm target features are unstable), hence this script.
//! `CORE_ATTN_NO_DSP=1` forces the portable kernels (for measuring them on a DSP core).
//!
//! Sets `cfg(core_attn_v6m)` on `thumbv6m-*` (Cortex-M0/M0+): the Armv6-M `asm!` linear kernel
//! (`dsp/m0.rs`); `CORE_ATTN_NO_DSP=1` turns it off too.
use std::env;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(core_attn_dsp)");
    println!("cargo:rustc-check-cfg=cfg(core_attn_mve)");
    println!("cargo:rustc-check-cfg=cfg(core_attn_v6m)");
    println!("cargo:rerun-if-env-changed=CORE_ATTN_NO_DSP");
    let target = env::var("TARGET").unwrap_or_default();
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let cpu_with_dsp = ["cortex-m33", "cortex-m35p"]
        .iter()
        .any(|c| flags.contains(&format!("target-cpu={c}")));
    let dsp =
        target.starts_with("thumbv7em-") || (target.starts_with("thumbv8m.main-") && cpu_with_dsp);
    let mve = target.starts_with("thumbv8m.main-")
        && ["cortex-m55", "cortex-m85"]
            .iter()
            .any(|c| flags.contains(&format!("target-cpu={c}")));
    if env::var_os("CORE_ATTN_NO_DSP").is_none() {
        if dsp {
            println!("cargo:rustc-cfg=core_attn_dsp");
        }
        if mve {
            println!("cargo:rustc-cfg=core_attn_mve");
        }
    }
    if target.starts_with("thumbv6m-") && env::var_os("CORE_ATTN_NO_DSP").is_none() {
        println!("cargo:rustc-cfg=core_attn_v6m");
    }
}
