#!/usr/bin/env bash
# What metrics and the access log cost (issue 16): benches/load.sh with `[metrics]` and
# `[access_log]` (to a file, every request) against the same run without them, alternated
# ROUNDS times (default 2) so drift of a busy machine hits both alike. Prints, per scenario,
# on/off of per-core-second throughput (1.00 = free; targets: >= 0.97 on segments, >= 0.90 on
# manifests), each round and the median.
#   SEALCAST_OPS_ROUNDS   rounds (default 2)
#   every SEALCAST_BENCH_* variable of load.sh (SECS defaults to 8 here, H2 to 0)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rounds="${SEALCAST_OPS_ROUNDS:-2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export SEALCAST_BENCH_SECS="${SEALCAST_BENCH_SECS:-8}" SEALCAST_BENCH_H2="${SEALCAST_BENCH_H2:-0}"
export SEALCAST_BENCH_QUIET_WAIT="${SEALCAST_BENCH_QUIET_WAIT:-5}"
base_cfg="${SEALCAST_BENCH_CONFIG:-}"
on_cfg="[metrics]\nlisten = \"127.0.0.1:0\"\n[access_log]\npath = \"$work/access.jsonl\"\nsample = 1.0\n"
for r in $(seq 1 "$rounds"); do
  for mode in off on; do
    echo "[ops] round $r: metrics and access log $mode" >&2
    cfg="$base_cfg"
    [ "$mode" = on ] && cfg="$base_cfg\n$on_cfg"
    SEALCAST_BENCH_CONFIG="$cfg" SEALCAST_BENCH_JSON="$work/$mode-$r.json" bash "$here/load.sh" >"$work/$mode-$r.out" 2>"$work/$mode-$r.err" \
      || { tail -20 "$work/$mode-$r.err" >&2; exit 1; }
  done
done
lines=$(wc -l <"$work/access.jsonl" 2>/dev/null || echo 0)
echo "[ops] access log: $lines lines written in the 'on' runs" >&2
python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
load = lambda m, r: json.load(open(f"{work}/{m}-{r}.json"))["runs"]
rows = {}
for r in range(1, rounds + 1):
    off, on = load("off", r), load("on", r)
    for name in off:
        if name not in on or name.startswith("floor"):
            continue
        key = "body_gb_per_core_s" if off[name]["body_gb_per_core_s"] > 0.05 else "requests_per_core_s"
        rows.setdefault(name, []).append((off[name][key], on[name][key], key))
print(f"{'scenario':<22} {'off':>12} {'on':>12}  on/off per round -> median")
for name, vals in rows.items():
    unit = "GB/core-s" if vals[0][2] == "body_gb_per_core_s" else "req/core-s"
    ratios = [b / a for a, b, _ in vals if a > 0]
    fmt = (lambda v: f"{v:.3f}") if unit == "GB/core-s" else (lambda v: f"{v:,.0f}")
    print(f"{name:<22} {fmt(statistics.median(a for a, _, _ in vals)):>12} {fmt(statistics.median(b for _, b, _ in vals)):>12}  "
          f"{' '.join(f'{x:.3f}' for x in ratios)} -> {statistics.median(ratios):.3f}  ({unit})")
PY
