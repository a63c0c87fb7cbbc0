//! Firmware under QEMU must print exactly what the host prints for the same integer
//! self-check: the bit-exactness contract between host simulation and Cortex-M.
//!
//! Needs `qemu-system-arm` and the `thumbv7em-none-eabihf` target (`.ci/run` installs both).
//! Set `SKIP_QEMU=1` to skip on a machine without them; the test then says so loudly.

use std::path::PathBuf;
use std::process::Command;

fn host_lines() -> Vec<String> {
    let params = attn_selftest::Params::new(attn_selftest::SEED);
    let mut lines = Vec::new();
    attn_selftest::run(&params, attn_selftest::SEED, &mut |name, data| {
        let mut s = String::new();
        attn_selftest::format_line(&mut s, name, data).unwrap();
        lines.push(s);
    })
    .unwrap();
    lines
}

fn board_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("boards")
        .join(name)
}

#[test]
fn m4_firmware_matches_host_byte_for_byte() {
    if std::env::var_os("SKIP_QEMU").is_some() {
        eprintln!("SKIP_QEMU set: firmware comparison NOT run");
        return;
    }
    let dir = board_dir("mps2-an386");
    // `cargo run --release` in the board directory: its own workspace, target and runner.
    let out = Command::new(env!("CARGO"))
        .args(["run", "--release", "--quiet"])
        .current_dir(&dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo run in boards/mps2-an386");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "firmware failed ({}):\n{}\n{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let device: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("selftest ") && !l.starts_with("selftest done"))
        .collect();
    let host = host_lines();
    assert_eq!(device.len(), host.len(), "device printed:\n{stdout}");
    for (d, h) in device.iter().zip(&host) {
        assert_eq!(d, h);
    }
    assert!(stdout.contains("selftest done systick="), "{stdout}");
}

#[test]
fn host_selftest_is_deterministic_and_nontrivial() {
    let a = host_lines();
    assert_eq!(a, host_lines());
    assert_eq!(a.len(), 7);
    // Different cases give different bytes (a broken kernel writing zeros would collide).
    let mut hashes: Vec<&str> = a.iter().map(|l| l.split(' ').nth(3).unwrap()).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 7, "{a:#?}");
}
