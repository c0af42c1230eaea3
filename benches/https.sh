#!/usr/bin/env bash
# HTTPS figures of the loopback load benchmark (issue 18). See benches/README.md, "HTTPS (issue 18)".
#
#   SEALCAST_BIN=target/release/sealcast bash benches/https.sh
#
# Clear DASH 720p segments (~1 MB) and manifests, served by sealcast with `[tls]` (rustls on
# aws-lc-rs) and by the HTTPS floor, Debian's nginx (OpenSSL) serving the same bytes as static
# files, over TLS 1.3 AES-128-GCM, TLS 1.3 ChaCha20-Poly1305 and TLS 1.2
# ECDHE-ECDSA-AES128-GCM-SHA256, each over HTTP/1.1 and HTTP/2 (h2load), plus the same segments
# over plain HTTP for the cost of TLS. `openssl speed` of both ciphers (1 MiB blocks) on the
# server core in the same run is the bound: bytes per core-second of a server doing nothing
# but the cipher.
#
# Like load.sh: servers pinned to core 0, h2load to core 1, figure of merit = body bytes per
# server CPU-second (utime+stime from /proc/PID/stat). Bounded (about 4 minutes: 20 runs of
# SEALCAST_BENCH_TLS_SECS plus up to SEALCAST_BENCH_QUIET_WAIT of waiting for idle cores);
# talks to 127.0.0.1 only; kills what it started and removes its work folder on exit.
#
# Settings (environment): SEALCAST_BIN, SEALCAST_BENCH_CONNS (16), SEALCAST_BENCH_TLS_SECS (8),
# SEALCAST_BENCH_QUIET_WAIT (30), SEALCAST_BENCH_CONFIG (more server TOML, as in load.sh),
# SEALCAST_BENCH_NGINX_CONF (lines for nginx's http block; default "output_buffers 2 256k;", see
# below; "" = nginx's own 2 x 32k),
# SEALCAST_BENCH_JSON (write the JSON result line there too), SEALCAST_BENCH_KEEP=1 (keep the
# work folder). Content settings are read by benches/content.sh.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
BIN="${SEALCAST_BIN:-$repo/target/release/sealcast}"
SECS="${SEALCAST_BENCH_TLS_SECS:-8}"
CONNS="${SEALCAST_BENCH_CONNS:-16}"
QUIET_WAIT="${SEALCAST_BENCH_QUIET_WAIT:-30}"
SERVER_CORE=0
CLIENT_CORE=1

log() { printf '[https] %s\n' "$*" >&2; }
die() { printf '[https] error: %s\n' "$*" >&2; exit 2; }

for t in h2load nginx taskset curl openssl python3 getconf cc; do
  command -v "$t" >/dev/null || die "'$t' is missing (h2load: Debian nghttp2-client; nginx: Debian nginx)"
done
[ "$(nproc --all)" -ge 2 ] || die "needs 2 cores: one for the server, one for the load generator"
[ -x "$BIN" ] || die "no server binary at $BIN (set SEALCAST_BIN)"
content="$(bash "$here/content.sh")"

work="$(mktemp -d "${TMPDIR:-/tmp}/sealcast-https.XXXXXX")"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [ "${SEALCAST_BENCH_KEEP:-0}" = 1 ]; then log "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- CPU accounting (as in load.sh) -------------------------------------------------------------
tck="$(getconf CLK_TCK)"
proc_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'; } # utime stime, all threads
core_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
now_ns() { date +%s%N; }
quiet_left=$QUIET_WAIT
wait_quiet() { # bounded wait for both cores to be nearly idle; the report shows what remained
  local start=$SECONDS a0 a1 b0 b1
  while :; do
    a0=$(core_busy $SERVER_CORE); a1=$(core_busy $CLIENT_CORE); sleep 1
    b0=$(core_busy $SERVER_CORE); b1=$(core_busy $CLIENT_CORE)
    if [ $(((b0 - a0) * 10)) -le "$tck" ] && [ $(((b1 - a1) * 10)) -le "$tck" ]; then break; fi
    [ $((SECONDS - start)) -lt "$quiet_left" ] || break
  done
  quiet_left=$((quiet_left - (SECONDS - start)))
  [ "$quiet_left" -ge 0 ] || quiet_left=0
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- the cipher bound: openssl speed on the server core, before any server exists ------------
wait_quiet
for c in aes-128-gcm chacha20-poly1305; do
  log "openssl speed -evp $c -bytes 1048576 (3 s, core $SERVER_CORE)"
  timeout 60 taskset -c "$SERVER_CORE" openssl speed -evp "$c" -seconds 3 -bytes 1048576 \
    >"$work/speed_$c.txt" 2>&1 || die "openssl speed $c failed: $(tail -3 "$work/speed_$c.txt")"
done

# --- certificate, TLS 1.2 client shim, kernel TLS probe ----------------------------------------
# A throwaway self-signed EC P-256 certificate (so TLS 1.2 uses ECDHE-ECDSA); the handshakes are
# 16 per run, amortized over keep-alive.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$work/key.pem" -out "$work/cert.pem" -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  2>"$work/req.err" || die "openssl req failed: $(tail -3 "$work/req.err")"
cc -O2 -shared -fPIC -o "$work/tls12_cap.so" "$here/tls12_cap.c" -ldl 2>"$work/cc.err" \
  || die "building the TLS 1.2 shim failed: $(tail -3 "$work/cc.err")"
# Kernel TLS: setting the "tls" upper-layer protocol on a connected TCP socket works only when
# the kernel has CONFIG_TLS (built in, or the tls module loaded).
ktls="$(python3 - <<'PY'
import errno, os, socket
try:
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
    c = socket.create_connection(l.getsockname()); a, _ = l.accept()
    c.setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # TCP_ULP
    print("yes")
except OSError as e:
    print("no: TCP_ULP tls: " + (errno.errorcode.get(e.errno, str(e.errno))))
PY
)"
if [ "$ktls" != yes ] && command -v modprobe >/dev/null; then
  modprobe tls 2>/dev/null && ktls=yes || ktls="$ktls; modprobe tls failed"
fi
log "kernel TLS: $ktls"
printf '%s\n' "$ktls" >"$work/ktls.txt"

# --- sealcast, plain and TLS (both idle but the one measured) ----------------------------------
start_sealcast() { # name config-extra -> SBASE, SPID
  local name=$1 line=""
  # An empty TOML catalog: the clear assets need none, and without one the server would make an
  # embedded catalog database (and its key-encryption key) in the current folder.
  : >"$work/catalog.toml"
  { printf 'local_read = "pread"\ncatalog = "%s"\n' "$work/catalog.toml"
    [ -z "${SEALCAST_BENCH_CONFIG:-}" ] || printf '%b\n' "$SEALCAST_BENCH_CONFIG"
    printf '%b' "$2"; } >"$work/$name.toml"
  (cd "$work" && exec taskset -c "$SERVER_CORE" "$BIN" serve --config "$work/$name.toml" --listen 127.0.0.1:0 \
    --root "$content" >"$work/$name.out" 2>"$work/$name.err") &
  SPID=$!; pids+=("$SPID")
  for _ in $(seq 1 100); do
    line="$(head -n1 "$work/$name.out" 2>/dev/null || true)"
    case "$line" in "sealcast listening on http"*) break ;; esac
    kill -0 "$SPID" 2>/dev/null || die "$name exited: $(tail -5 "$work/$name.err")"
    sleep 0.1
  done
  case "$line" in "sealcast listening on http"*) ;; *) die "$name did not report its port in 10 s" ;; esac
  SBASE="${line#sealcast listening on }"
}
start_sealcast sealcast_plain ""
plain_pid=$SPID plain_base=$SBASE
start_sealcast sealcast_tls "[tls]\ncert = \"$work/cert.pem\"\nkey = \"$work/key.pem\"\n"
tls_pid=$SPID tls_base=$SBASE
log "sealcast: $plain_base (pid $plain_pid), $tls_base (pid $tls_pid), core $SERVER_CORE"

# --- URL lists, and the same bytes as static files for nginx ------------------------------------
mapfile -t assets < <(cd "$content" && ls -d a* | sort -V)
mapfile -t uris < <(curl -fsS --max-time 10 "$plain_base/${assets[0]}/video_720p/index.m3u8" | tr -d '\r' | grep -v '^#' | grep -v '^$' || true)
[ "${#uris[@]}" -gt 0 ] || die "no segments in /${assets[0]}/video_720p/index.m3u8"
for u in "${uris[@]}"; do for a in "${assets[@]}"; do echo "/$a/video_720p/$u"; done; done >"$work/segments.txt"
for a in "${assets[@]}"; do
  printf '/%s/manifest.mpd\n/%s/master.m3u8\n/%s/video_720p/index.m3u8\n/%s/audio/index.m3u8\n' "$a" "$a" "$a" "$a"
done >"$work/manifests.txt"
log "fetching $(cat "$work/segments.txt" "$work/manifests.txt" | wc -l) URLs from sealcast for the nginx floor (also the warm-up)"
: >"$work/sizes.tsv"
for l in segments manifests; do
  while read -r u; do
    mkdir -p "$work/static$(dirname "$u")"
    printf 'url = "%s%s"\noutput = "%s"\n' "$plain_base" "$u" "$work/static$u"
  done <"$work/$l.txt" >"$work/$l.curl"
  timeout 120 curl -sS --max-time 100 --config "$work/$l.curl" -w '%{http_code} %{size_download}\n' >"$work/$l.sizes" \
    || die "fetching $l failed"
  bad="$(awk '$1 != 200 && n++ < 3' "$work/$l.sizes")"
  [ -z "$bad" ] || die "fetching $l: non-200 answers: $bad"
  awk -v l="$l" '{ n++; s += $2 } END { printf "%s\t%d\t%.1f\n", l, n, s / n }' "$work/$l.sizes" >>"$work/sizes.tsv"
done
# The TLS server answers the same bytes (one spot check per list).
for l in segments manifests; do
  u="$(sed -n 5p "$work/$l.txt")"
  curl -fsS --max-time 10 --cacert "$work/cert.pem" "$tls_base$u" | cmp -s - "$work/static$u" || die "TLS answer of $u differs"
done

# --- nginx: the HTTPS floor -------------------------------------------------------------------
start_nginx() { # name extra-ssl-lines -> NPLAIN, NTLS, NPID
  local name=$1
  # nginx 1.22: "listen ... http2" without ssl is h2c only (no HTTP/1.1), so plain HTTP/1.1 and
  # h2c get a listener each.
  NPLAIN="$(free_port)" NH2C="$(free_port)" NTLS="$(free_port)"
  mkdir -p "$work/$name"
  cat >"$work/$name/nginx.conf" <<NGINX
worker_processes 1;
master_process off;
daemon off;
pid $work/$name/nginx.pid;
error_log $work/$name/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  open_file_cache max=10000 inactive=600s;
  open_file_cache_valid 600s;
  types { application/dash+xml mpd; application/vnd.apple.mpegurl m3u8; video/mp4 m4s; }
  client_body_temp_path $work/$name/tmp;
  proxy_temp_path $work/$name/tmp;
  fastcgi_temp_path $work/$name/tmp;
  uwsgi_temp_path $work/$name/tmp;
  scgi_temp_path $work/$name/tmp;
  ssl_certificate $work/cert.pem;
  ssl_certificate_key $work/key.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305;
  ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256;
  ssl_session_cache shared:SSL:1m;
  $NGINX_CONF
  $2
  server { listen 127.0.0.1:$NPLAIN; root $work/static; }
  server { listen 127.0.0.1:$NH2C http2; root $work/static; }
  server { listen 127.0.0.1:$NTLS ssl http2; root $work/static; }
}
NGINX
  taskset -c "$SERVER_CORE" nginx -p "$work/$name" -c "$work/$name/nginx.conf" 2>>"$work/$name/nginx.err" &
  NPID=$!; pids+=("$NPID")
  for _ in $(seq 1 50); do
    curl -fsS -o /dev/null --max-time 1 --cacert "$work/cert.pem" "https://127.0.0.1:$NTLS$(head -n1 "$work/manifests.txt")" 2>/dev/null && return 0
    kill -0 "$NPID" 2>/dev/null || die "nginx $name exited: $(tail -5 "$work/$name/nginx.err")"
    sleep 0.1
  done
  die "nginx $name did not answer in 5 s"
}
# Under userspace TLS nginx cannot sendfile: it reads each file through output_buffers (its
# default 2 x 32k) and encrypts 16k records from them; 256k buffers did better in a short trial
# (not clearly so in longer runs), so the floor uses them.
NGINX_CONF="${SEALCAST_BENCH_NGINX_CONF-output_buffers 2 256k;}"
start_nginx nginx ""
nginx_pid=$NPID nginx_plain="http://127.0.0.1:$NPLAIN" nginx_h2c="http://127.0.0.1:$NH2C" nginx_tls="https://127.0.0.1:$NTLS"
if [ "$ktls" = yes ]; then
  start_nginx nginx_ktls "ssl_conf_command Options KTLS;"
  ktls_pid=$NPID ktls_tls="https://127.0.0.1:$NTLS"
fi

# --- measured runs -------------------------------------------------------------------------------
: >"$work/runs.tsv"
cipher_args() { # cipher -> h2load flags (and the TLS 1.2 shim through LD_PRELOAD)
  case "$1" in
    tls13_aes128gcm) CARGS=(--tls13-ciphers=TLS_AES_128_GCM_SHA256) PRELOAD="" ;;
    tls13_chacha20) CARGS=(--tls13-ciphers=TLS_CHACHA20_POLY1305_SHA256) PRELOAD="" ;;
    tls12_aes128gcm) CARGS=(--ciphers=ECDHE-ECDSA-AES128-GCM-SHA256) PRELOAD="$work/tls12_cap.so" ;;
    plain) CARGS=() PRELOAD="" ;;
  esac
}
measure() { # server pid base proto(h1|h2) cipher list
  local server=$1 pid=$2 base=$3 proto=$4 cipher=$5 list=$6 name u0 s0 u1 s1 sb0 sb1 cb0 cb1 t0 t1
  name="${server}_${list}_${proto}_${cipher}"
  kill -0 "$pid" 2>/dev/null || die "$server died before run $name"
  cipher_args "$cipher"
  local mode=(-m4); [ "$proto" = h2 ] || mode=(--h1 -m1)
  sed "s|^|$base|" "$work/$list.txt" >"$work/$name.uris"
  wait_quiet
  log "run $name: h2load, $CONNS connections, ${SECS}s"
  read -r u0 s0 < <(proc_ticks "$pid"); sb0=$(core_busy $SERVER_CORE); cb0=$(core_busy $CLIENT_CORE); t0=$(now_ns)
  LD_PRELOAD="$PRELOAD" timeout $((SECS + 30)) taskset -c "$CLIENT_CORE" h2load "${mode[@]}" "${CARGS[@]}" \
    -t1 -c"$CONNS" -D"$SECS" -i "$work/$name.uris" >"$work/$name.out" 2>&1 || die "h2load failed in run $name"
  t1=$(now_ns); read -r u1 s1 < <(proc_ticks "$pid"); sb1=$(core_busy $SERVER_CORE); cb1=$(core_busy $CLIENT_CORE)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n' "$name" "$server" "$proto" "$cipher" "$list" "$work/$name.out" \
    $((u1 - u0)) $((s1 - s0)) $((sb1 - sb0)) $((cb1 - cb0)) $((t1 - t0)) >>"$work/runs.tsv"
}
# Warm both TLS servers' page cache paths and sessions briefly (not measured).
for b in "$tls_base" "$nginx_tls"; do
  sed "s|^|$b|" "$work/segments.txt" >"$work/warm.uris"
  timeout 30 taskset -c "$CLIENT_CORE" h2load --h1 -t1 -c"$CONNS" -D2 -i "$work/warm.uris" >/dev/null 2>&1 || true
done

for proto in h1 h2; do
  measure sealcast "$plain_pid" "$plain_base" "$proto" plain segments
  if [ "$proto" = h1 ]; then nb=$nginx_plain; else nb=$nginx_h2c; fi
  measure nginx "$nginx_pid" "$nb" "$proto" plain segments
done
for cipher in tls13_aes128gcm tls13_chacha20 tls12_aes128gcm; do
  for proto in h1 h2; do
    measure sealcast "$tls_pid" "$tls_base" "$proto" "$cipher" segments
    measure nginx "$nginx_pid" "$nginx_tls" "$proto" "$cipher" segments
    if [ "$ktls" = yes ] && [ "$proto" = h1 ]; then
      measure nginx_ktls "$ktls_pid" "$ktls_tls" "$proto" "$cipher" segments
    fi
  done
done
for proto in h1 h2; do
  measure sealcast "$tls_pid" "$tls_base" "$proto" tls13_aes128gcm manifests
  measure nginx "$nginx_pid" "$nginx_tls" "$proto" tls13_aes128gcm manifests
done
[ ! -r /proc/net/tls_stat ] || cp /proc/net/tls_stat "$work/tls_stat.txt"

for p in "$plain_pid" "$tls_pid"; do kill -0 "$p" 2>/dev/null || die "a sealcast server died during the runs"; done
if grep -qE '\b(WARN|ERROR)\b' "$work"/sealcast_*.err; then
  log "warning: sealcast logged problems during the runs:"
  cat "$work"/sealcast_*.err | awk '/(WARN|ERROR)/ && n++ < 5' >&2
fi

python3 "$here/https_report.py" --work "$work" --clk-tck "$tck" --conns "$CONNS" --secs "$SECS" \
  --server-core "$SERVER_CORE" --client-core "$CLIENT_CORE" --json-out "${SEALCAST_BENCH_JSON:-}" --bin "$BIN"
