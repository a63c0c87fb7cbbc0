//! Puts `memory.x` (and an empty `device.x`: the interrupt vectors are `src/lib.rs`'s
//! `__INTERRUPTS`) on the linker path and embeds the test digits (see
//! `../common/test_digits.rs`).
#[path = "../common/test_digits.rs"]
mod test_digits;

use std::path::PathBuf;

fn main() {
    // cortex-m-rt's link.x includes memory.x from the linker search path.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::copy("memory.x", out.join("memory.x")) {
        eprintln!("error: memory.x: {e}");
        std::process::exit(1);
    }
    // cortex-m-rt's `device` feature includes device.x (a PAC's handler names); the glue's
    // `__INTERRUPTS` names none.
    if let Err(e) = std::fs::write(out.join("device.x"), "") {
        eprintln!("error: device.x: {e}");
        std::process::exit(1);
    }
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    test_digits::main();
}
