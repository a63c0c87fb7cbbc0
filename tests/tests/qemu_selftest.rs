//! Firmware under QEMU must print exactly what the host prints for the same integer
//! self-check: the bit-exactness contract between host simulation and Cortex-M.
//!
//! Runs on the M4, M7, M33 and M55 machines (the Cortex-M0's 16 KiB of RAM cannot hold the
//! self-check's parameters; its kernels are checked by the bench firmware and `qemu_models.rs`).
//! Needs `qemu-system-arm` and the thumbv7em / thumbv8m.main targets (`.ci/run` installs them).
//! Set `SKIP_QEMU=1` to skip on a machine without them; the test then says so loudly. With `CI`
//! set, `SKIP_QEMU` fails the test instead (a CI run may not skip the device comparison).

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

/// Run `boards/<board>` under QEMU and compare its self-check lines with the host's.
fn firmware_matches_host(board: &str) {
    if tests::skip_qemu(&format!("qemu_selftest {board}")) {
        return;
    }
    let dir = board_dir(board);
    // `cargo run --release` in the board directory: its own workspace, target and runner.
    let out = Command::new(env!("CARGO"))
        .args(["run", "--release", "--quiet"])
        .current_dir(&dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap_or_else(|e| panic!("cargo run in boards/{board}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{board}: firmware failed ({}):\n{}\n{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let device: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("selftest ") && !l.starts_with("selftest done"))
        .collect();
    let host = host_lines();
    assert_eq!(device.len(), host.len(), "{board} printed:\n{stdout}");
    for (d, h) in device.iter().zip(&host) {
        assert_eq!(d, h, "{board}");
    }
    assert!(
        stdout.contains("selftest done systick="),
        "{board}: {stdout}"
    );
}

/// Cortex-M4: the SMLAD `asm!` kernels.
#[test]
fn m4_firmware_matches_host_byte_for_byte() {
    firmware_matches_host("mps2-an386");
}

/// Cortex-M7: the same `asm!` kernels, scheduled for the M7.
#[test]
fn m7_firmware_matches_host_byte_for_byte() {
    firmware_matches_host("mps2-an500");
}

/// Cortex-M33 (Armv8-M Mainline with the DSP extension).
#[test]
fn m33_firmware_matches_host_byte_for_byte() {
    firmware_matches_host("mps2-an505");
}

/// Cortex-M55: the Helium (MVE) kernels.
#[test]
fn m55_firmware_matches_host_byte_for_byte() {
    firmware_matches_host("mps3-an547");
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
