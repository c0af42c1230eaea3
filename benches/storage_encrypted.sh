#!/usr/bin/env bash
# Clear DASH segments served from storage-encrypted assets on local disk, against the same
# assets stored clear and against same-run `openssl speed -evp aes-128-ctr` on the server's
# core. Figures are per server CPU-second (utime+stime of all its threads from /proc/PID/stat),
# so the load generator's share of the 2 cores does not count.
#
#   bash benches/storage_encrypted.sh         # prints a summary and one JSON line (last line)
#
# Uses the load benchmark's content (benches/content.sh: 720p H.264 at 4 Mbit/s, ~1 MB
# segments), ingests SEALCAST_BENCH_ASSETS of its assets twice with `sealcast ingest` (clear and
# --encrypt, AES-256-CTR at rest, catalog recording key and IVs), serves both from one server
# pinned to core 0, and runs wrk (core 1) over every video segment of each set in turn.
# Target (issue 6): encrypted >= 0.25 x openssl aes-128-ctr bytes per core-second.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${SEALCAST_BIN:-$here/target/release/sealcast}"
SECS="${SEALCAST_BENCH_SECS:-10}"
N="${SEALCAST_BENCH_ASSETS:-4}"
CONNS="${SEALCAST_BENCH_CONNS:-16}"
SERVER_CORE=0
CLIENT_CORE=1

log() { printf '[storage-bench] %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }
[ -x "$BIN" ] || (cd "$here" && cargo build --release -p sealcast-origin >&2)
command -v wrk >/dev/null || die "wrk not installed (scripts/setup.sh)"

content="$(bash "$here/benches/content.sh")"
work="$(mktemp -d)"
spid=""
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

log "ingest $N assets clear and storage-encrypted"
for i in $(seq 1 "$N"); do
  "$BIN" ingest --root "$work/root" --asset "clear/a$i" "$content/a$i"/*.cmf? >/dev/null 2>&1 || die "ingest clear a$i failed"
  "$BIN" ingest --root "$work/root" --asset "enc/a$i" --encrypt --catalog "$work/catalog.toml" "$content/a$i"/*.cmf? >/dev/null 2>&1 || die "ingest enc a$i failed"
done

log "openssl speed -evp aes-128-ctr (3 s, core $SERVER_CORE)"
ossl_kbs="$(taskset -c $SERVER_CORE openssl speed -evp aes-128-ctr -seconds 3 -bytes 16384 2>/dev/null | awk 'tolower($1) == "aes-128-ctr" { v=$NF } END { sub(/k$/, "", v); print v }')"
[ -n "$ossl_kbs" ] || die "could not read openssl speed"

cat >"$work/sealcast.toml" <<EOF
root = "$work/root"
catalog = "$work/catalog.toml"
EOF
taskset -c $SERVER_CORE "$BIN" serve --config "$work/sealcast.toml" --listen 127.0.0.1:0 >"$work/out.txt" 2>"$work/err.txt" &
spid=$!
for _ in $(seq 1 100); do grep -q "listening on" "$work/out.txt" 2>/dev/null && break; sleep 0.1; done
base="$(head -1 "$work/out.txt" | sed 's/.*listening on //')"
[ -n "$base" ] || die "server did not start: $(tail -3 "$work/err.txt")"

# Every video segment URL of each set, from the server's own MPD timeline.
for set in clear enc; do
  for i in $(seq 1 "$N"); do
    n="$(curl -sf "$base/$set/a$i/video_720p/index.m3u8" | grep -c '\.m4s$')" || die "no playlist for $set/a$i"
    for s in $(seq 1 "$n"); do echo "/$set/a$i/video_720p/$s.m4s"; done
  done >"$work/$set.list"
  # Both sets must serve the same bytes.
  [ "$(curl -sf "$base/$set/a1/video_720p/3.m4s" | sha256sum)" = "$(curl -sf "$base/clear/a1/video_720p/3.m4s" | sha256sum)" ] || die "$set differs from clear"
done

ticks() { sed 's/^.*) //' "/proc/$spid/stat" | awk '{ print $12 + $13 }'; }
hz="$(getconf CLK_TCK)"
declare -A RPS BPS REQ
for set in clear enc; do
  taskset -c $CLIENT_CORE wrk -t1 -c"$CONNS" -d2s -s "$here/benches/cycle.lua" "$base" -- "$work/$set.list" >/dev/null 2>&1 || true
  t0="$(ticks)"
  taskset -c $CLIENT_CORE wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$here/benches/cycle.lua" "$base" -- "$work/$set.list" >"$work/$set.wrk" 2>&1 || die "wrk failed"
  t1="$(ticks)"
  res="$(grep WRK_RESULT "$work/$set.wrk" | sed 's/^WRK_RESULT //')"
  read -r req bytes errs < <(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["requests"], r["bytes"], sum(r["errors"].values()))' "$res")
  [ "$errs" = 0 ] || die "$set: $errs request errors"
  cpu="$(python3 -c "print(($t1 - $t0) / $hz)")"
  REQ[$set]="$req"
  RPS[$set]="$(python3 -c "print(round($req / $cpu, 1))")"
  BPS[$set]="$(python3 -c "print(round($bytes / $cpu / 1e6, 1))")"
  log "$set: $req requests, $(python3 -c "print(round($bytes/1e6))") MB in ${SECS} s, server CPU $cpu s"
done
ossl_mbs="$(python3 -c "print(round($ossl_kbs * 1000 / 1e6, 1))")"
ratio="$(python3 -c "print(round(${BPS[enc]} / $ossl_mbs, 3))")"
echo "openssl aes-128-ctr (core $SERVER_CORE): $ossl_mbs MB/s"
echo "clear asset:             ${RPS[clear]} segments/CPU-s, ${BPS[clear]} MB/CPU-s"
echo "storage-encrypted asset: ${RPS[enc]} segments/CPU-s, ${BPS[enc]} MB/CPU-s = $ratio x openssl (target >= 0.25)"
echo "{\"openssl_aes128ctr_mbs\":$ossl_mbs,\"clear_seg_per_cpu_s\":${RPS[clear]},\"clear_mb_per_cpu_s\":${BPS[clear]},\"enc_seg_per_cpu_s\":${RPS[enc]},\"enc_mb_per_cpu_s\":${BPS[enc]},\"enc_vs_openssl\":$ratio}"
