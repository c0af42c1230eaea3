#!/usr/bin/env bash
# What metrics and the access log cost per request, in instructions (issue 16): the same
# requests against target/release/sealcast under valgrind's callgrind, with `[metrics]` and
# `[access_log]` (every request, to a file) and without them. Instruction counts do not move
# with other load on the machine, unlike the wall-clock ratios of ops_overhead.sh; they count
# the server's user space only (the kernel's TCP work per request, the same on and off, is
# left out, so the share printed here is an upper bound of the CPU share).
#   SEALCAST_OPS_REQUESTS   requests measured per run (default 2000, after 200 of warm-up)
# Needs valgrind (callgrind_control) and python3; about a minute.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
bin="${SEALCAST_BIN:-$repo/target/release/sealcast}"
n="${SEALCAST_OPS_REQUESTS:-2000}"
[ -x "$bin" ] || { echo "build first: cargo build --release -p sealcast-origin" >&2; exit 2; }
command -v callgrind_control >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
work="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
: >"$work/off.toml"
printf '[metrics]\nlisten = "127.0.0.1:%s"\n[access_log]\npath = "%s/access.jsonl"\nsample = 1.0\n' "$(free_port)" "$work" >"$work/on.toml"
cat >"$work/load.py" <<'PY'
import http.client, sys
port, count, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(count):
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"{path}: HTTP {r.status}")
PY

# instructions per request of `path` with config $1
measure() {
  local cfg="$1" path="$2" port
  port="$(free_port)"
  (cd "$work" && exec valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$bin" serve --root "$repo/fixtures" --listen "127.0.0.1:$port" -c "$work/$cfg.toml") >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.5; done
  python3 "$work/load.py" "$port" 200 "$path"
  callgrind_control --zero "$pid" >/dev/null
  python3 "$work/load.py" "$port" "$n" "$path"
  callgrind_control --dump "$pid" >/dev/null
  sleep 1
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  # The dump holds what ran since the zeroing; the file written at exit only the shutdown.
  local ir
  ir="$(for f in "$work"/cg.*; do grep -m1 -E '^(summary|totals):' "$f" | awk '{print $2}'; done | sort -n | tail -1)"
  rm -f "$work"/cg.*
  echo $((ir / n))
}

printf '%-28s %12s %12s %9s\n' "request" "off Ir/req" "on Ir/req" "on/off"
for path in /demo/manifest.mpd /demo/master.m3u8 /demo/video_180p/index.m3u8 /healthz; do
  off="$(measure off "$path")"
  on="$(measure on "$path")"
  python3 -c "import sys; o,n=int(sys.argv[2]),int(sys.argv[3]); print(f'{sys.argv[1]:<28} {o:>12,} {n:>12,} {n/o:>9.3f}  (+{n-o:,} instructions)')" "$path" "$off" "$on"
done
echo "access log lines written: $(wc -l <"$work/access.jsonl")" >&2
