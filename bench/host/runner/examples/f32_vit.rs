//! `cargo run --release --manifest-path bench/host/Cargo.toml -p bench-runner --example f32_vit`
//!
//! Builds the plugin, then measures the f32 ViT baseline (`src/f32.rs`) and prints its figures;
//! exits with failure if the device logits do not match the host f32 reference.
#[path = "../src/f32.rs"]
mod f32;

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../..")
        .canonicalize()
        .expect("repository root");
    let host = root.join("bench/host");
    let ok = Command::new("cargo")
        .args(["build", "--release", "-p", "qemu-insn-count"])
        .current_dir(&host)
        .status()
        .expect("cargo")
        .success();
    assert!(ok, "plugin build failed");
    let plugin = host.join("target/release/libqemu_insn_count.so");
    match f32::run_f32_vit(&root, &plugin) {
        Ok(r) => {
            println!("{}", r.summary());
            if !r.matches_reference() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("f32 ViT: {e}");
            std::process::exit(1);
        }
    }
}
