#!/usr/bin/env bash
# The whole test suite: installs the tools the tests use, builds, runs the Rust tests
# (unit, golden, in-process HTTP, fuzz replay) and the end-to-end oracle tests (ffmpeg 8.1,
# MPEG's MPD schema, m3u8, Chromium with shaka-player) against the real server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p sealcast-origin
cargo test --workspace --locked
SEALCAST_BIN="$PWD/target/release/sealcast" python3 -m pytest tests/e2e -q -p no:cacheprovider
