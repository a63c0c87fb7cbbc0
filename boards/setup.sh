#!/usr/bin/env bash
# Installs everything that building the firmware and running `cargo test --workspace` need, and
# nothing else:
#   - the Rust toolchain pinned in rust-toolchain.toml (channel, the three Cortex-M targets,
#     rustfmt and clippy), through rustup;
#   - qemu-system-arm (runs the firmware) and binutils-arm-none-eabi (arm-none-eabi-nm / -size /
#     -objdump read the firmware ELFs), through apt when run as root (or with passwordless sudo).
# Run by `bash boards/run-demo.sh` (the README's first command) and by `.ci/run`. Exits non-zero
# with a message saying what to do when something cannot be installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "setup: $*"; }
fail() {
    echo "setup: ERROR: $*" >&2
    exit 1
}

# --- Rust -----------------------------------------------------------------------------------
# The file is the one source of truth: read channel, targets and components from it (older
# rustup releases cannot install from the file by themselves, and RUSTUP_AUTO_INSTALL=0 on these
# machines means nothing installs implicitly).
toolchain_file=rust-toolchain.toml
[[ -f $toolchain_file ]] || fail "$toolchain_file is missing (run this from a clone of the repository)"
channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$toolchain_file")
targets=$(sed -n 's/^targets *= *\[\(.*\)\]/\1/p' "$toolchain_file" | tr -d '",')
components=$(sed -n 's/^components *= *\[\(.*\)\]/\1/p' "$toolchain_file" | tr -d '",')
[[ -n $channel && -n $targets ]] || fail "could not read channel/targets from $toolchain_file"

command -v rustup >/dev/null 2>&1 ||
    fail "rustup is not installed. Install it (https://rustup.rs, or Debian's 'rustup' package), then run this again."

have_toolchain() {
    rustup toolchain list 2>/dev/null | grep -q "^$channel-" || return 1
    local installed
    installed=$(rustup target list --installed --toolchain "$channel" 2>/dev/null) || return 1
    for t in $targets; do
        grep -qx "$t" <<<"$installed" || return 1
    done
    local comps
    comps=$(rustup component list --installed --toolchain "$channel" 2>/dev/null) || return 1
    for c in $components; do
        grep -q "^$c" <<<"$comps" || return 1
    done
}

if have_toolchain; then
    say "Rust $channel with" $targets "present"
else
    say "installing Rust $channel with targets: $targets; components: $components"
    # Judged by what is installed afterwards, not by rustup's exit code (it can fail on a
    # side step, e.g. setting a default toolchain, after installing everything).
    # shellcheck disable=SC2046
    rustup toolchain install "$channel" --profile minimal --no-self-update \
        $(for t in $targets; do printf -- '--target %s ' "$t"; done) \
        $(for c in $components; do printf -- '--component %s ' "$c"; done) || true
    have_toolchain || fail "rustup could not install Rust $channel with the targets $targets
       (no network, or the mirror does not offer them; rust-toolchain.toml says why this
       release is pinned)."
fi

# --- System packages --------------------------------------------------------------------------
need=()
command -v qemu-system-arm >/dev/null 2>&1 || need+=(qemu-system-arm)
for tool in arm-none-eabi-nm arm-none-eabi-size arm-none-eabi-objdump; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        need+=(binutils-arm-none-eabi)
        break
    fi
done
if ((${#need[@]} == 0)); then
    say "present: $(qemu-system-arm --version | head -n1), $(arm-none-eabi-nm --version | head -n1)"
else
    if [[ $(id -u) -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo)
    else
        fail "missing ${need[*]}; install with:
    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}
then run this again."
    fi
    say "installing ${need[*]} (apt)"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q >/dev/null ||
        fail "apt-get update failed (no network?): install ${need[*]} by hand"
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null ||
        fail "apt-get install ${need[*]} failed"
    command -v qemu-system-arm >/dev/null 2>&1 || fail "qemu-system-arm still missing after apt"
    command -v arm-none-eabi-nm >/dev/null 2>&1 || fail "arm-none-eabi-nm still missing after apt"
fi
say "ready: 'cargo test --workspace' and the firmware builds have what they need"
