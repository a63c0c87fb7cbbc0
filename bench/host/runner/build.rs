//! Hook for the f32 baseline: when `src/f32.rs` exists (bench/firmware-f32's runner part), the
//! runner is compiled with `cfg(bench_f32)`, `OUT_DIR/f32_hook.rs` declares `mod f32` and
//! `main` appends its section (`f32::markdown(root, plugin, cores)`). Without the file the hook
//! is empty.
use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(bench_f32)");
    println!("cargo:rerun-if-changed=src");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("f32_hook.rs");
    let f32 = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("src/f32.rs");
    let hook = if f32.exists() {
        println!("cargo:rustc-cfg=bench_f32");
        format!("#[path = {:?}]\nmod f32;\n", f32.display().to_string())
    } else {
        String::new()
    };
    std::fs::write(out, hook).unwrap();
}
