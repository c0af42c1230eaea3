#!/usr/bin/env bash
# The whole test suite: installs the tools the tests use, builds, runs the Rust tests
# (unit, golden, in-process HTTP, fuzz replay) and the end-to-end oracle tests (ffmpeg 8.1,
# MPEG's MPD schema, m3u8, Chromium with shaka-player) against the real server.
#
# Ends with how many oracle tests ran and how many were skipped (a missing tool skips a test
# outside CI and fails it under CI=true), whatever the outcome: Rust tests record each
# oracle run or skip in $SEALCAST_ORACLE_LOG/rust.log (sealcast_testkit::oracle), pytest
# writes its counts and skip reasons to a JUnit XML file beside it (and prints them, -rs).
set -euo pipefail
cd "$(dirname "$0")/.."

oracle_log="$PWD/target/oracle-log"
rm -rf "$oracle_log"
mkdir -p "$oracle_log"
export SEALCAST_ORACLE_LOG="$oracle_log"

summary() {
  local status=$?
  python3 - "$oracle_log" <<'EOF' || true
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

log = Path(sys.argv[1])
print("\n=== oracle tests ===")
rust = log / "rust.log"
lines = rust.read_text().splitlines() if rust.exists() else []
ran = [l for l in lines if l.startswith("ran\t")]
skipped = [l.split("\t") for l in lines if l.startswith("skipped\t")]
print(f"Rust:   {len(ran)} ran, {len(skipped)} skipped" + ("" if lines else " (no Rust oracle test reported: not run?)"))
for s in skipped:
    print(f"  SKIPPED {s[1]}: {s[2] if len(s) > 2 else ''}")
junit = log / "pytest.xml"
if junit.exists():
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = sum(int(s.get("tests", 0)) for s in suites)
    skip = sum(int(s.get("skipped", 0)) for s in suites)
    bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    print(f"pytest: {total - skip} ran ({bad} failed or errored), {skip} skipped")
    for case in root.iter("testcase"):
        for sk in case.findall("skipped"):
            print(f"  SKIPPED {case.get('classname')}::{case.get('name')}: {sk.get('message', '')[:300]}")
else:
    print("pytest: not run")
EOF
  exit "$status"
}
trap summary EXIT

bash scripts/setup.sh
cargo build --release --locked -p sealcast-origin
cargo test --workspace --locked
SEALCAST_BIN="$PWD/target/release/sealcast" python3 -m pytest tests/e2e -q -rs -p no:cacheprovider \
  --junitxml="$oracle_log/pytest.xml"
