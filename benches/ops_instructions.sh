#!/usr/bin/env bash
# What metrics and the access log cost per request, in instructions (issue 16): the same
# requests against target/release/sealcast under valgrind's callgrind, with `[metrics]` and
# `[access_log]` (every request, to a file) and without them. Instruction counts do not move
# with other load on the machine, unlike the wall-clock ratios of ops_overhead.sh; they count
# the server's user space only (the kernel's TCP work per request, the same on and off, is
# left out, so the on/off ratio is an upper bound of the CPU share). Then, without valgrind,
# the user-space share of the server's CPU under wrk for each URL (from /proc), and the CPU
# share the added instructions come to (an estimate: it takes an added instruction to cost
# what an average one does). Targets (issue 16): <= 10 % on manifests, <= 3 % on segments.
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

# The user-space share of the server's CPU for `path` (off, not instrumented, wrk loading it
# for 5 s from the other core): utime / (utime + stime) from /proc. The instructions added
# on are user space; scaled by this share they give the CPU share they cost, assuming an
# added instruction costs what an average one of the base does.
user_share() {
  local path="$1" port p a b
  port="$(free_port)"
  (cd "$work" && exec taskset -c 0 "$bin" serve --root "$repo/fixtures" --listen "127.0.0.1:$port" -c "$work/off.toml") >"$work/server.log" 2>&1 &
  p=$!
  for _ in $(seq 1 60); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.2; done
  taskset -c 1 wrk -t1 -c8 -d1s "http://127.0.0.1:$port$path" >/dev/null 2>&1
  a="$(awk '{print $14, $15}' "/proc/$p/stat")"
  taskset -c 1 wrk -t1 -c8 -d5s "http://127.0.0.1:$port$path" >/dev/null 2>&1
  b="$(awk '{print $14, $15}' "/proc/$p/stat")"
  kill "$p"; wait "$p" 2>/dev/null || true
  echo "$a $b" | awk '{u = $3 - $1; s = $4 - $2; printf "%.2f", (u + s > 0) ? u / (u + s) : 1}'
}

printf '%-28s %12s %12s %9s %11s %11s\n' "request" "off Ir/req" "on Ir/req" "on/off" "user share" "CPU share"
for path in /demo/manifest.mpd /demo/master.m3u8 /demo/video_180p/index.m3u8 /demo/video_360p/2.m4s /healthz; do
  off="$(measure off "$path")"
  on="$(measure on "$path")"
  if command -v wrk >/dev/null && command -v taskset >/dev/null; then share="$(user_share "$path")"; else share=1; fi
  python3 -c "import sys; o,n,u=int(sys.argv[2]),int(sys.argv[3]),float(sys.argv[4]); print(f'{sys.argv[1]:<28} {o:>12,} {n:>12,} {n/o:>9.3f} {u:>11.2f} {(n/o-1)*u*100:>10.1f}%  (+{n-o:,} instructions)')" "$path" "$off" "$on" "$share"
done
echo "access log lines written: $(wc -l <"$work/access.jsonl")" >&2
