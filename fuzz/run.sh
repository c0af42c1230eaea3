#!/usr/bin/env bash
# Fuzzes one target for a while, always with memory limits, so that an allocation bomb (a
# count read from a box that asks for gigabytes; issue 11) is a crash libFuzzer reports and
# saves under fuzz/artifacts/<target>/, not a machine that swaps or an OOM kill:
#   -malloc_limit_mb  any single allocation above it is a crash ("malloc(N) exceeds limit");
#   -rss_limit_mb     the process's resident set above it is a crash ("out-of-memory").
# Inputs are small (seeds <= 20 KB), and what the code may allocate is proportional to the
# input (crates/package/tests/fuzz_replay.rs checks 80x + 4 MiB on stable), so 64 MiB per
# allocation is far above anything legitimate. The RSS limit leaves room for AddressSanitizer's
# shadow memory and quarantine (a few hundred MB on its own).
#
#   fuzz/run.sh TARGET [SECONDS] [more libFuzzer flags...]
#   RSS_MB=2048 MALLOC_MB=128 fuzz/run.sh index 600 -fork=1 -ignore_crashes=1
#
# Run from anywhere; needs cargo-fuzz and nightly (or RUSTC_BOOTSTRAP=1): see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: fuzz/run.sh TARGET [SECONDS] [libFuzzer flags...]}"
secs="${2:-300}"
shift $(( $# >= 2 ? 2 : 1 ))
mkdir -p "fuzz/corpus/$target"
RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}" cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$secs" -rss_limit_mb="${RSS_MB:-1024}" -malloc_limit_mb="${MALLOC_MB:-64}" "$@"
