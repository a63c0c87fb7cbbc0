#!/usr/bin/env bash
# Build, lint and format-check every example (each is its own cargo workspace). For CI:
# exits non-zero on the first failure. Needs the thumbv6m-none-eabi and thumbv7em-none-eabihf
# targets (rust-toolchain.toml at the repository root) and crates.io; no probe, no probe-rs, no
# QEMU (qemu-mps2-an386 is run under QEMU by tests/tests/qemu_examples.rs).
# Uses the committed Cargo.lock of each example (--locked). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"

examples=(embassy-stm32f411 embassy-rp2040 qemu-mps2-an386)
# The build-script code every example includes with #[path].
rustfmt --check --edition 2021 common/test_digits.rs
for ex in "${examples[@]}"; do
  echo "=== examples/$ex"
  (
    cd "$ex"
    cargo fmt --check
    cargo build --release --locked
    # Every compiler warning and clippy lint of the app and its build script is an error.
    cargo clippy --release --locked -- -D warnings
    if command -v arm-none-eabi-size >/dev/null; then
      # Flash = text + data, static RAM = data + bss (+ defmt-rtt's buffer), stack excluded.
      if [ "$ex" = qemu-mps2-an386 ]; then
        elfs=(classify generate)
      else
        elfs=("$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)")
      fi
      for elf in "${elfs[@]}"; do arm-none-eabi-size target/*/release/"$elf"; done
    fi
  )
done
echo "=== examples: all ok"
