#!/usr/bin/env bash
# Loopback load benchmark of the sealcast origin. See benches/README.md.
#
#   bash benches/load.sh
#
# Bounded: every run has a fixed duration and every wait a limit; about 2 minutes once the
# content exists (first run: +20 s to encode it; SEALCAST_BENCH_PROFILE=1: +15 s; a busy
# machine: up to +30 s of waiting for quiet). Talks to 127.0.0.1 only.
#
# The server is pinned to one core and the load generator to the other. The figure of merit is
# work per server CPU-second (utime+stime from /proc/PID/stat, all threads), not requests per
# second, so a saturated load generator does not hide server cost. AES-128-CTR speed is
# measured on the same core in the same run, as the yardstick the targets are written against.
#
# Settings (environment):
#   SEALCAST_BIN                 server binary (default target/release/sealcast; built if missing)
#   SEALCAST_BENCH_SECS          seconds per headline run (default 15)
#   SEALCAST_BENCH_DIAG_SECS     seconds per diagnostic run (default 8)
#   SEALCAST_BENCH_CONNS         concurrent connections (default 16)
#   SEALCAST_BENCH_H2            1 = h2load runs (HTTP/2, and an HTTP/1.1 cross-check), 0 = skip,
#                                auto = if h2load is installed (Debian nghttp2-client)
#   SEALCAST_BENCH_QUIET_WAIT    seconds in all (default 30) to spend waiting, before the runs, for
#                                other processes to leave both cores idle; the report shows how
#                                much foreign load remained during each run
#   SEALCAST_BENCH_PAIRS         paired runs per bound-limited output (default 5, 0 = none): the
#                                output and the run its bound comes from, alternated
#   SEALCAST_BENCH_PAIR_SECS     seconds per paired run (default 2)
#   SEALCAST_BENCH_PROFILE       1 = after measuring, sample the server with perf and print the
#                                hottest symbols (separate runs, so sampling cost is not counted):
#                                video segments and manifests; or name the URL lists to sample,
#                                e.g. "seg_cenc_720p seg_cbcs_720p seg_aes_ts_720p"
#   SEALCAST_BENCH_STRICT        1 = exit 3 when a target is missed
#   SEALCAST_BENCH_JSON          also write the result line to this file
#   SEALCAST_BENCH_KEEP          1 = keep the work folder (URL lists, raw outputs, server log)
# Content settings are read by benches/content.sh.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
BIN="${SEALCAST_BIN:-$repo/target/release/sealcast}"
SECS="${SEALCAST_BENCH_SECS:-15}"
DIAG_SECS="${SEALCAST_BENCH_DIAG_SECS:-8}"
CONNS="${SEALCAST_BENCH_CONNS:-16}"
H2="${SEALCAST_BENCH_H2:-auto}"
PROFILE="${SEALCAST_BENCH_PROFILE:-0}"
QUIET_WAIT="${SEALCAST_BENCH_QUIET_WAIT:-30}"
PAIRS="${SEALCAST_BENCH_PAIRS:-5}"
PAIR_SECS="${SEALCAST_BENCH_PAIR_SECS:-2}"
SERVER_CORE=0
CLIENT_CORE=1

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 2; }

for t in wrk taskset curl openssl python3 getconf; do
  command -v "$t" >/dev/null || die "'$t' is missing (scripts/setup.sh installs the tools)"
done
[ "$(nproc --all)" -ge 2 ] || die "needs 2 cores: one for the server, one for the load generator"
case "$H2" in
  auto) command -v h2load >/dev/null && H2=1 || H2=0 ;;
  1) command -v h2load >/dev/null || die "SEALCAST_BENCH_H2=1 but h2load is missing (Debian nghttp2-client)" ;;
esac
if [ "$PROFILE" != 0 ]; then command -v perf >/dev/null || die "SEALCAST_BENCH_PROFILE=1 needs perf"; fi

if [ ! -x "$BIN" ]; then
  log "building the server (cargo build --release -p sealcast-origin)"
  (cd "$repo" && cargo build --release -p sealcast-origin)
fi
content="$(bash "$here/content.sh")"

work="$(mktemp -d "${TMPDIR:-/tmp}/sealcast-bench.XXXXXX")"
spid="" fpid=""
cleanup() {
  if [ -n "$fpid" ]; then kill -TERM "$fpid" 2>/dev/null || true; fi
  if [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null; then
    kill -TERM "$spid"
    for _ in $(seq 1 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$spid" 2>/dev/null && kill -KILL "$spid"
  fi
  if [ "${SEALCAST_BENCH_KEEP:-0}" = 1 ]; then log "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- CPU accounting ----------------------------------------------------------------------------
tck="$(getconf CLK_TCK)"
proc_ticks() { sed 's/^.*) //' "/proc/$tpid/stat" | awk '{ print $12, $13 }'; } # utime stime, all threads
core_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; } # user nice system irq softirq steal
now_ns() { date +%s%N; }
# CPU seconds of waited-for children of this shell (the load generator). `times` must run in
# this shell, not in a pipe or $(...), whose subshell has children of its own.
children_cpu() { # -> CHILD_CPU
  times >"$work/times"
  CHILD_CPU=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] } printf "%.3f", s }' "$work/times")
}
# Other sessions may be building on this machine; pinning does not keep them off our cores.
# Wait (bounded) until both cores are nearly idle, and let the report show what remained.
quiet_left=$QUIET_WAIT
wait_quiet() {
  local start=$SECONDS a0 a1 b0 b1
  while :; do
    a0=$(core_busy $SERVER_CORE); a1=$(core_busy $CLIENT_CORE); sleep 1
    b0=$(core_busy $SERVER_CORE); b1=$(core_busy $CLIENT_CORE)
    if [ $(((b0 - a0) * 10)) -le "$tck" ] && [ $(((b1 - a1) * 10)) -le "$tck" ]; then break; fi
    if [ $((SECONDS - start)) -ge "$quiet_left" ]; then
      log "warning: other work keeps the cores busy (core $SERVER_CORE $(((b0 - a0) * 100 / tck))%, core $CLIENT_CORE $(((b1 - a1) * 100 / tck))%); measuring anyway"
      break
    fi
  done
  quiet_left=$((quiet_left - (SECONDS - start)))
  [ "$quiet_left" -ge 0 ] || quiet_left=0
}

# --- yardstick: AES-128-CTR on the server's core, before the server exists ------------------
wait_quiet
log "openssl speed -evp aes-128-ctr (3 s, core $SERVER_CORE)"
timeout 60 taskset -c "$SERVER_CORE" openssl speed -evp aes-128-ctr -seconds 3 -bytes 16384 \
  >"$work/openssl.txt" 2>&1 || die "openssl speed failed: $(tail -3 "$work/openssl.txt")"
log "openssl speed -evp aes-128-cbc (3 s, core $SERVER_CORE)"
timeout 60 taskset -c "$SERVER_CORE" openssl speed -evp aes-128-cbc -seconds 3 -bytes 16384 \
  >"$work/openssl_cbc.txt" 2>&1 || die "openssl speed failed: $(tail -3 "$work/openssl_cbc.txt")"

# --- server ----------------------------------------------------------------------------------
# The served root: each content asset four times, as hard links (same inodes, so one page
# cache): aN served clear; eN with cenc for DASH and clear HLS, cN with cbcs for HLS and clear
# DASH, so each encrypted output's yardstick (the same asset's clear fMP4 segments) reads the
# very fragments it reads, with the same fragment-cache hits; kN with AES-128 for HLS.
mkdir -p "$work/root"
for d in "$content"/a*; do
  n="$(basename "$d")"
  cp -al "$d" "$work/root/$n"
  cp -al "$d" "$work/root/e${n#a}"
  cp -al "$d" "$work/root/k${n#a}"
  cp -al "$d" "$work/root/c${n#a}"
  printf '[[asset]]\npath = "e%s"\ndash = "DynamicCommonEncryption"\nhls = "NoDynamicEncryption"\n' "${n#a}"
  printf 'keys = [\n  { kid = "10000000000040008000000000000001", key = "00112233445566778899aabbccddeeff" },\n'
  printf '  { kid = "10000000000040008000000000000002", key = "112233445566778899aabbccddeeff00" },\n]\n\n'
  printf '[[asset]]\npath = "c%s"\ndash = "NoDynamicEncryption"\nhls = "DynamicCommonEncryptionCbcs"\n' "${n#a}"
  printf 'keys = [\n  { kid = "10000000000040008000000000000003", key = "2233445566778899aabbccddeeff0011", kind = "CommonEncryptionCbcs" },\n'
  printf '  { kid = "10000000000040008000000000000004", key = "33445566778899aabbccddeeff001122", kind = "CommonEncryptionCbcs" },\n]\n\n'
  # kN: HLS AES-128 (envelope), keys behind an HS256 token policy.
  printf '[[asset]]\npath = "k%s"\nhls = "DynamicEnvelopeEncryption"\nauthorization = "viewers"\n' "${n#a}"
  printf 'keys = [\n  { kid = "2000000000004000800000000000000%s", key = "445566778899aabbccddeeff00112233", kind = "EnvelopeEncryption" },\n]\n\n' "${n#a}"
done >"$work/catalog.toml"
# The token policy (HS256) of the kN keys, and a token for them.
secret_b64="$(printf 'sealcast-bench-secret-0123456789' | base64)"
printf '[authorization.viewers]\ntype = "TokenRestricted"\ntoken_type = "Jwt"\nissuer = "https://sts.bench"\naudience = "urn:sealcast"\nkeys = [ { symmetric = "%s" } ]\n' "$secret_b64" >>"$work/catalog.toml"
token="$(python3 - <<'PY'
import base64, hashlib, hmac, json, time
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
p = b(json.dumps({"iss": "https://sts.bench", "aud": "urn:sealcast", "exp": int(time.time()) + 3600, "sub": "bench"}).encode())
sig = b(hmac.new(b"sealcast-bench-secret-0123456789", f"{h}.{p}".encode(), hashlib.sha256).digest())
print(f"{h}.{p}.{sig}")
PY
)"
root="$work/root"
# SEALCAST_BENCH_LOCAL_READ=mmap measures the memory-mapped read path (default: pread).
# SEALCAST_BENCH_CATALOG=database serves the same catalog from the embedded SQLite database
# (imported with `sealcast catalog import`, keys sealed under a local KEK) instead of TOML.
if [ "${SEALCAST_BENCH_CATALOG:-toml}" = database ]; then
  "$BIN" keys init --kek "$work/kek" >/dev/null
  printf 'local_read = "%s"\ndatabase = "sqlite://%s"\nkek = { local = "%s" }\n' "${SEALCAST_BENCH_LOCAL_READ:-pread}" "$work/db/catalog.db" "$work/kek" >"$work/sealcast.toml"
  "$BIN" catalog import --config "$work/sealcast.toml" "$work/catalog.toml" >/dev/null 2>"$work/import.err" || die "catalog import failed: $(tail -3 "$work/import.err")"
  log "catalog: database ($(tail -1 "$work/import.err"))"
else
  printf 'local_read = "%s"\ncatalog = "%s"\n' "${SEALCAST_BENCH_LOCAL_READ:-pread}" "$work/catalog.toml" >"$work/sealcast.toml"
  log "catalog: TOML"
fi
# SEALCAST_BENCH_CONFIG: more TOML lines for the server (e.g. "[cache]\nfragment_bytes = 0").
[ -z "${SEALCAST_BENCH_CONFIG:-}" ] || printf '%b\n' "$SEALCAST_BENCH_CONFIG" >>"$work/sealcast.toml"
log "local_read = ${SEALCAST_BENCH_LOCAL_READ:-pread}"
taskset -c "$SERVER_CORE" "$BIN" serve --config "$work/sealcast.toml" --listen 127.0.0.1:0 --root "$root" \
  >"$work/server.out" 2>"$work/server.err" &
spid=$!
line=""
for _ in $(seq 1 100); do
  line="$(head -n1 "$work/server.out" 2>/dev/null || true)"
  case "$line" in "sealcast listening on http://127.0.0.1:"*) break ;; esac
  kill -0 "$spid" 2>/dev/null || die "server exited: $(tail -5 "$work/server.err")"
  sleep 0.1
done
case "$line" in "sealcast listening on http://127.0.0.1:"*) ;; *) die "server did not report its port in 10 s" ;; esac
base="${line#sealcast listening on }"
log "server pid $spid at $base (core $SERVER_CORE), root $root"

# --- URL lists ---------------------------------------------------------------------------------
# Segment lists are interleaved across assets (a1/1, a2/1, ..., a1/2, ...) so neighbouring
# requests, which run concurrently, read different files.
mapfile -t assets < <(cd "$root" && ls -d a* | sort -V)
[ "${#assets[@]}" -gt 0 ] || die "no asset folders in $root"
playlist_uris() { # asset track -> segment URIs of its media playlist
  curl -fsS --max-time 10 "$base/$1/$2/index.m3u8" | tr -d '\r' | grep -v '^#' | grep -v '^$' || true
}
for track in video_720p audio; do
  : >"$work/seg_$track.txt"
  mapfile -t uris < <(playlist_uris "${assets[0]}" "$track")
  [ "${#uris[@]}" -gt 0 ] || die "no segments in /${assets[0]}/$track/index.m3u8"
  for u in "${uris[@]}"; do
    for a in "${assets[@]}"; do echo "/$a/$track/$u"; done
  done >>"$work/seg_$track.txt"
done
# HLS over MPEG-TS: 720p video with the default audio muxed in, one TS per segment.
mapfile -t uris < <(curl -fsS --max-time 10 "$base/${assets[0]}/video_720p/ts.m3u8" | tr -d '\r' | grep -v '^#' | grep -v '^$' || true)
[ "${#uris[@]}" -gt 0 ] || die "no segments in /${assets[0]}/video_720p/ts.m3u8"
for u in "${uris[@]}"; do
  for a in "${assets[@]}"; do echo "/$a/video_720p/$u"; done
done >"$work/seg_ts_720p.txt"
# Encrypted segments of the same bytes, cenc (DASH, eN) and cbcs (HLS fMP4, cN), 720p, and
# the same assets' clear fMP4 segments: each encrypted output's yardstick.
for pair in cenc:e cbcs:c; do
  IFS=: read -r scheme fam <<<"$pair"
  mapfile -t uris < <(playlist_uris "${assets[0]}" video_720p)
  for u in "${uris[@]}"; do
    for a in "${assets[@]}"; do echo "/$fam${a#a}/video_720p/$scheme/$u"; done
  done >"$work/seg_${scheme}_720p.txt"
  sed "s|/$scheme/|/|" "$work/seg_${scheme}_720p.txt" >"$work/seg_${scheme}_clear_720p.txt"
done
for a in "${assets[@]}"; do
  printf '/%s/manifest.mpd\n/%s/master.m3u8\n/%s/video_720p/index.m3u8\n/%s/audio/index.m3u8\n' "$a" "$a" "$a" "$a"
done >"$work/manifests.txt"
for a in "${assets[@]}"; do printf '/%s/video_720p/init.mp4\n/%s/audio/init.mp4\n' "$a" "$a"; done >"$work/init.txt"
echo /healthz >"$work/healthz.txt"
# HLS AES-128 TS segments (720p + muxed audio) and key requests with the token.
mapfile -t uris < <(curl -fsS --max-time 10 "$base/k${assets[0]#a}/video_720p/aes/ts.m3u8" | tr -d '\r' | grep -v '^#' | grep -v '^$' || true)
[ "${#uris[@]}" -gt 0 ] || die "no segments in /k${assets[0]#a}/video_720p/aes/ts.m3u8"
for u in "${uris[@]}"; do
  for a in "${assets[@]}"; do echo "/k${a#a}/video_720p/aes/$u"; done
done >"$work/seg_aes_ts_720p.txt"
for a in "${assets[@]}"; do echo "/key/2000000000004000800000000000000${a#a}"; done >"$work/keys.txt"
lists=(seg_video_720p seg_ts_720p seg_cenc_720p seg_cenc_clear_720p seg_cbcs_720p seg_cbcs_clear_720p seg_aes_ts_720p seg_audio manifests init healthz)

# --- warm-up: every URL once (page cache, asset and index caches), checking each is a 200 --------
log "warm-up: every URL once ($(cat "$work"/*.txt | wc -l) URLs)"
: >"$work/sizes.tsv"
for l in "${lists[@]}"; do
  awk -v b="$base" '{ printf "url = \"%s%s\"\noutput = \"/dev/null\"\n", b, $0 }' "$work/$l.txt" >"$work/$l.curl"
  timeout 120 curl -sS --max-time 100 --config "$work/$l.curl" -w '%{http_code} %{size_download}\n' >"$work/$l.sizes" \
    || die "warm-up of $l failed"
  bad="$(awk '$1 != 200 && n++ < 3' "$work/$l.sizes")"
  [ -z "$bad" ] || die "warm-up of $l: non-200 answers: $bad"
  awk -v l="$l" '{ n++; s += $2 } END { printf "%s\t%d\t%.1f\n", l, n, s / n }' "$work/$l.sizes" >>"$work/sizes.tsv"
done
# Keys: each must answer 200 with 16 bytes to the token (and 401 without it).
while read -r k; do
  got="$(curl -sS --max-time 10 -H "Authorization: Bearer $token" -o /dev/null -w '%{http_code} %{size_download}' "$base$k")"
  [ "$got" = "200 16" ] || die "key request $k answered '$got'"
done <"$work/keys.txt"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$base$(head -n1 "$work/keys.txt")")" = 401 ] || die "a key was served without a token"
printf 'keys\t%d\t16\n' "$(wc -l <"$work/keys.txt")" >>"$work/sizes.tsv"
timeout 30 taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONNS" -d2s -s "$here/cycle.lua" "$base" -- "$work/seg_video_720p.txt" >/dev/null

# --- measured runs ------------------------------------------------------------------------------
# measure() loads the server at $tbase whose process is $tpid: the origin, or the floor below.
: >"$work/runs.tsv"
tpid=$spid tbase=$base
measure() { # name tool list seconds
  local name=$1 tool=$2 list=$3 secs=$4 u0 s0 u1 s1 sb0 sb1 cb0 cb1 t0 t1 c0 c1
  kill -0 "$tpid" 2>/dev/null || die "server died before run $name: $(tail -5 "$work/server.err")"
  wait_quiet
  log "run $name: $tool, $CONNS connections, ${secs}s over $(wc -l <"$work/$list.txt") URLs"
  children_cpu; c0=$CHILD_CPU
  read -r u0 s0 < <(proc_ticks); sb0=$(core_busy $SERVER_CORE); cb0=$(core_busy $CLIENT_CORE); t0=$(now_ns)
  case "$tool" in
    wrk) local hdr=(); [ -z "${WRK_HEADER:-}" ] || hdr=(-H "$WRK_HEADER")
         timeout $((secs + 30)) taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 10s "${hdr[@]}" \
           -s "$here/cycle.lua" "$tbase" -- "$work/$list.txt" >"$work/$name.out" 2>&1 || die "wrk failed in run $name" ;;
    # h2load: HTTP/2 over cleartext (prior knowledge), 4 streams per connection. h2load-h1: the
    # same client speaking HTTP/1.1 without pipelining; it reads 1 MB bodies far more cheaply than
    # wrk (8 KiB reads), so it can drive the server closer to a full core.
    h2load | h2load-h1)
            sed "s|^|$tbase|" "$work/$list.txt" >"$work/$list.h2uris"
            local mode=(-m4); [ "$tool" = h2load ] || mode=(--h1 -m1)
            timeout $((secs + 30)) taskset -c "$CLIENT_CORE" h2load "${mode[@]}" -t1 -c"$CONNS" -D"$secs" \
              -i "$work/$list.h2uris" >"$work/$name.out" 2>&1 || die "h2load failed in run $name" ;;
  esac
  t1=$(now_ns); read -r u1 s1 < <(proc_ticks); sb1=$(core_busy $SERVER_CORE); cb1=$(core_busy $CLIENT_CORE)
  children_cpu; c1=$CHILD_CPU
  printf '%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n' "$name" "$tool" "$list" "$work/$name.out" \
    $((u1 - u0)) $((s1 - s0)) $((sb1 - sb0)) $((cb1 - cb0)) $((t1 - t0)) "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }')" >>"${runs_file:-$work/runs.tsv}"
}

measure segments wrk seg_video_720p "$SECS"
measure manifests wrk manifests "$SECS"
measure ts_segments wrk seg_ts_720p "$SECS"
# The encrypted outputs' yardsticks ask for `Range: bytes=0-`: the same clear bytes, read into
# memory and written. An encrypted segment must pass every byte through memory; whole clear fMP4
# over plain HTTP/1.1 is sent from the page cache (`sendfile`) and touches none of them, which
# is no bound for it (the `segments` run above measures that path).
WHOLE_RANGE="Range: bytes=0-"
WRK_HEADER="$WHOLE_RANGE" measure cenc_clear_segments wrk seg_cenc_clear_720p "$SECS"
measure cenc_segments wrk seg_cenc_720p "$SECS"
WRK_HEADER="$WHOLE_RANGE" measure cbcs_clear_segments wrk seg_cbcs_clear_720p "$SECS"
measure cbcs_segments wrk seg_cbcs_720p "$SECS"
measure aes128_ts_segments wrk seg_aes_ts_720p "$SECS"
WRK_HEADER="Authorization: Bearer $token" measure key_delivery wrk keys "$SECS"
measure audio_segments wrk seg_audio "$DIAG_SECS"
measure init wrk init "$DIAG_SECS"
measure healthz wrk healthz "$DIAG_SECS"
if [ "$H2" = 1 ]; then
  measure h1_segments_h2load h2load-h1 seg_video_720p "$DIAG_SECS"
  measure h2_segments h2load seg_video_720p "$DIAG_SECS"
  measure h2_manifests h2load manifests "$DIAG_SECS"
fi

# --- paired runs: each output held to a bound, alternated with the run its bound comes from ---
# This machine's speed drifts by 20-30 % between runs a minute apart, so a bound taken from one
# run and an output from another cannot resolve a 10 % target. Here each output and its
# yardstick run back to back in short slices, in alternating order (cancelling a steady
# drift), several times; report.py takes the share of each pair and their median.
runs_file="$work/pairs.tsv"
: >"$runs_file"
for i in $(seq 1 "$PAIRS"); do
  # out:list:ref:list:how the ref is asked for (`whole`: with `Range: bytes=0-`, see above).
  for pair in cenc_segments:seg_cenc_720p:cenc_clear_segments:seg_cenc_clear_720p:whole cbcs_segments:seg_cbcs_720p:cbcs_clear_segments:seg_cbcs_clear_720p:whole \
              aes128_ts_segments:seg_aes_ts_720p:ts_segments:seg_ts_720p:plain manifests:manifests:healthz:healthz:plain; do
    IFS=: read -r out olist ref rlist how <<<"$pair"
    ref_header=""; [ "$how" = whole ] && ref_header="$WHOLE_RANGE"
    if [ $((i % 2)) = 1 ]; then
      WRK_HEADER="$ref_header" measure "$i|$out|ref" wrk "$rlist" "$PAIR_SECS"; measure "$i|$out|out" wrk "$olist" "$PAIR_SECS"
    else
      measure "$i|$out|out" wrk "$olist" "$PAIR_SECS"; WRK_HEADER="$ref_header" measure "$i|$out|ref" wrk "$rlist" "$PAIR_SECS"
    fi
  done
done
runs_file="$work/runs.tsv"

# --- the floor: a do-nothing C responder with bodies of the same mean sizes -------------------
# It tells how much of each figure is the kernel's loopback path, which no server can avoid.
cc_bin="$(command -v cc || command -v gcc || true)"
if [ -n "$cc_bin" ] && "$cc_bin" -O2 -o "$work/floor" "$here/floor.c" 2>"$work/floor.cc.err"; then
  for kind in manifests seg_video_720p; do
    run=floor_manifest; [ "$kind" = manifests ] || run=floor_segment
    bytes=$(awk -v l="$kind" '$1 == l { printf "%d", $3 + 0.5 }' "$work/sizes.tsv")
    echo /floor >"$work/$run.txt"
    printf '%s\t1\t%s\n' "$run" "$bytes" >>"$work/sizes.tsv"
    taskset -c "$SERVER_CORE" "$work/floor" "$bytes" >"$work/floor.out" 2>>"$work/server.err" &
    fpid=$!
    fline=""
    for _ in $(seq 1 50); do
      fline="$(head -n1 "$work/floor.out" 2>/dev/null || true)"
      case "$fline" in "floor listening on http://127.0.0.1:"*) break ;; esac
      sleep 0.1
    done
    case "$fline" in "floor listening on http://127.0.0.1:"*) ;; *) kill -TERM "$fpid"; die "floor responder did not start" ;; esac
    tpid=$fpid tbase="${fline#floor listening on }"
    measure "$run" wrk "$run" "$DIAG_SECS"
    kill -TERM "$fpid"; wait "$fpid" 2>/dev/null || true
    fpid=""
  done
  tpid=$spid tbase=$base
else
  log "no C compiler: skipping the floor runs"
fi

# --- the C yardstick for small responses: Debian's nginx serving the same manifest bytes as
# static files (issue 18), one process pinned like ours, open file cache on, no access log.
if command -v nginx >/dev/null; then
  mkdir -p "$work/static"
  while read -r u; do
    mkdir -p "$work/static$(dirname "$u")"
    curl -fsS --max-time 10 "$base$u" -o "$work/static$u" || die "fetching $u for the nginx yardstick failed"
  done <"$work/manifests.txt"
  nport="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
master_process off;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  open_file_cache max=10000 inactive=600s;
  open_file_cache_valid 600s;
  types { application/dash+xml mpd; application/vnd.apple.mpegurl m3u8; }
  client_body_temp_path $work/nginx_tmp;
  proxy_temp_path $work/nginx_tmp;
  fastcgi_temp_path $work/nginx_tmp;
  uwsgi_temp_path $work/nginx_tmp;
  scgi_temp_path $work/nginx_tmp;
  server { listen 127.0.0.1:$nport; root $work/static; }
}
NGINX
  taskset -c "$SERVER_CORE" nginx -p "$work" -c "$work/nginx.conf" 2>>"$work/server.err" &
  npid=$!
  for _ in $(seq 1 50); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$nport$(head -n1 "$work/manifests.txt")" 2>/dev/null && break
    sleep 0.1
  done
  tpid=$npid tbase="http://127.0.0.1:$nport"
  measure nginx_static_manifests wrk manifests "$DIAG_SECS"
  kill -TERM "$npid"; wait "$npid" 2>/dev/null || true
  tpid=$spid tbase=$base
else
  log "no nginx: skipping the static-file yardstick"
fi

# --- optional profile (after the measured runs: sampling costs CPU) ---------------------------
profile() { # name list
  log "profile $1: perf record on the server for 5 s"
  timeout 30 taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONNS" -d7s -s "$here/cycle.lua" "$base" -- "$work/$2.txt" >/dev/null &
  local w=$!
  sleep 1
  timeout 30 perf record -q -F 999 -g -p "$spid" -o "$work/$1.perf" -- sleep 5 >/dev/null 2>&1 || true
  wait "$w" || true
  {
    echo "--- server profile, $1 (perf, self time, top 25 symbols) ---"
    perf report -i "$work/$1.perf" --no-children --sort dso,symbol --stdio -g none 2>/dev/null \
      | awk '/^ +[0-9]/ && n++ < 25 { gsub(/  +/, " "); print }' || true
  } >>"$work/profile.txt"
}
if [ "$PROFILE" = 1 ]; then
  profile segments seg_video_720p
  profile manifests manifests
elif [ "$PROFILE" != 0 ]; then
  for l in $PROFILE; do
    [ -f "$work/$l.txt" ] || die "SEALCAST_BENCH_PROFILE: no URL list '$l' (lists: ${lists[*]})"
    profile "$l" "$l"
  done
fi

kill -0 "$spid" 2>/dev/null || die "server died during the runs: $(tail -5 "$work/server.err")"
# Plain tracing lines may carry colour codes around the level, so match the bare word.
if grep -qE '\b(WARN|ERROR)\b' "$work/server.err"; then
  log "warning: the server logged problems during the runs:"
  awk '/(WARN|ERROR)/ && n++ < 5' "$work/server.err" >&2
fi

# --- report (the last line of stdout is the JSON result) ---------------------------------------
[ -f "$work/profile.txt" ] && cat "$work/profile.txt"
status=0
python3 "$here/report.py" --work "$work" --clk-tck "$tck" --conns "$CONNS" \
  --server-core "$SERVER_CORE" --client-core "$CLIENT_CORE" --json-out "${SEALCAST_BENCH_JSON:-}" --bin "$BIN" || status=$?
if [ "$status" = 3 ] && [ "${SEALCAST_BENCH_STRICT:-0}" != 1 ]; then status=0; fi
exit "$status"
