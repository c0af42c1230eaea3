#!/usr/bin/env bash
# sealcast beside nginx-vod-module, in one run, on the same content and the same machine
# (issue 18 asks for "every output >= 1.3 x nginx-vod, measured the same way").
#
#   NGINX_VOD=/path/to/sbin/nginx SEALCAST_BENCH_WORK=/tmp/sealcast-bench.XXXX bash benches/vod_compare.sh
#
# NGINX_VOD is an nginx binary with kaltura/nginx-vod-module compiled in (and OpenSSL, for
# AES-128), built by you outside this repository: nothing here builds it. SEALCAST_BENCH_WORK
# is a work folder kept by `SEALCAST_BENCH_KEEP=1 bash benches/load.sh` (its content, server
# configuration and URL lists are reused, so both servers serve the same eight assets).
#
# nginx-vod cannot read fragmented MP4: each clear asset aN gets a progressive copy (ffmpeg
# stream copy, cached in the work folder). nginx-vod runs one worker, in local mode, 4 s
# segments, with its metadata and response caches on; sealcast runs its default
# configuration as load.sh starts it. Each is pinned to core 0, `wrk -t1 -c16` with
# cycle.lua on core 1 walks every segment of the eight assets (or every manifest), and the
# server's CPU comes from /proc. Outputs alternate between the servers, ROUNDS times.
#   SEALCAST_BIN   server binary (default target/release/sealcast)
#   SECS           seconds per measured run (default 5, after 2 s of warm-up)
#   ROUNDS         default 2
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
die() { echo "vod_compare: $*" >&2; exit 2; }
nginx="${NGINX_VOD:-}"
work="${SEALCAST_BENCH_WORK:-}"
bin="${SEALCAST_BIN:-$repo/target/release/sealcast}"
secs="${SECS:-5}"
rounds="${ROUNDS:-2}"
[ -x "$nginx" ] || die "NGINX_VOD must name an nginx binary built with nginx-vod-module"
[ -f "$work/sealcast.toml" ] && [ -d "$work/root" ] || die "SEALCAST_BENCH_WORK must be a folder kept by SEALCAST_BENCH_KEEP=1 benches/load.sh"
[ -x "$bin" ] || die "no server binary $bin"
for t in wrk taskset ffmpeg curl python3; do command -v "$t" >/dev/null || die "needs $t"; done
"$nginx" -V 2>&1 | grep -q vod || die "$nginx has no nginx-vod-module"

vod="$work/vod"
mkdir -p "$vod/content" "$vod/run" "$vod/temp" "$vod/logs"
port=18480
spid="" npid=""
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; [ -n "$npid" ] && kill "$npid" 2>/dev/null; true' EXIT

# Progressive copies of the clear assets.
assets=()
for d in "$work"/root/a*/; do
  a="$(basename "$d")"
  assets+=("$a")
  out="$vod/content/$a/av.mp4"
  [ -s "$out" ] && continue
  mkdir -p "$vod/content/$a"
  ffmpeg -v error -y -i "$d/video_720p.cmfv" -i "$d/audio.cmfa" -map 0:v -map 1:a -c copy -movflags +faststart "$out.tmp.mp4"
  mv "$out.tmp.mp4" "$out"
done
[ "${#assets[@]}" -gt 0 ] || die "no clear assets a* in $work/root"

# One worker, local mode. `last_rounded`: the audio runs a few ms past the video, and this folds
# that tail into the last segment instead of a segment of its own.
# The worker runs as the caller (the kept work folder is private to it).
cat >"$vod/nginx.conf" <<EOF
user $(id -un) $(id -gn);
worker_processes 1;
daemon off;
pid $vod/run/nginx.pid;
error_log $vod/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    client_body_temp_path $vod/temp/client_body;
    proxy_temp_path $vod/temp/proxy;
    fastcgi_temp_path $vod/temp/fastcgi;
    uwsgi_temp_path $vod/temp/uwsgi;
    scgi_temp_path $vod/temp/scgi;
    open_file_cache max=1000 inactive=5m;
    vod_mode local;
    vod_segment_duration 4000;
    vod_align_segments_to_key_frames on;
    vod_segment_count_policy last_rounded;
    vod_metadata_cache metadata_cache 512m;
    vod_response_cache response_cache 128m;
    server {
        listen 127.0.0.1:$port;
        location /hls/ { vod hls; alias $vod/content/; }
        location /hlsaes/ {
            vod hls;
            alias $vod/content/;
            vod_secret_key "sealcast-bench\$vod_filepath";
            vod_hls_encryption_method aes-128;
        }
        location /dash/ { vod dash; alias $vod/content/; }
    }
}
EOF
taskset -c 0 "$nginx" -p "$vod" -c "$vod/nginx.conf" 2>>"$vod/logs/error.log" &
npid=$!
nbase="http://127.0.0.1:$port"
for _ in $(seq 1 50); do curl -sf -o /dev/null "$nbase/hls/${assets[0]}/av.mp4/index.m3u8" && break; sleep 0.1; done

# URL lists from nginx-vod's own playlists.
python3 - "$nbase" "$vod" "${assets[@]}" <<'PY'
import re, sys, urllib.request
base, out, assets = sys.argv[1], sys.argv[2], sys.argv[3:]
get = lambda p: urllib.request.urlopen(base + p).read().decode()
# nginx-vod writes absolute URLs: keep their paths.
path = lambda u, at: u[len(base):] if u.startswith(base) else (u if u.startswith("/") else at + u)
lists = {"vod_ts": [], "vod_aes_ts": [], "vod_dash": [], "vod_manifests": []}
for a in assets:
    for loc, name in (("hls", "vod_ts"), ("hlsaes", "vod_aes_ts")):
        at = f"/{loc}/{a}/av.mp4/"
        segs = [path(l, at) for l in get(at + "index.m3u8").splitlines() if l and not l.startswith("#")]
        assert segs, f"no segments in {at}"
        lists[name] += segs
    at = f"/dash/{a}/av.mp4/"
    mpd = get(at + "manifest.mpd")
    template = path(re.search(r'media="([^"]+)"', mpd).group(1), at)
    video = next(i for i in re.findall(r'<Representation\s+id="([^"]+)"', mpd) if i.startswith("v"))
    count = len([l for l in get(f"/hls/{a}/av.mp4/index.m3u8").splitlines() if l and not l.startswith("#")])
    lists["vod_dash"] += [template.replace("$RepresentationID$", video).replace("$Number$", str(n)) for n in range(1, count + 1)]
    master = get(f"/hls/{a}/av.mp4/master.m3u8")
    media = next(l for l in master.splitlines() if l.endswith(".m3u8") and not l.startswith("#"))
    lists["vod_manifests"] += [f"/hls/{a}/av.mp4/master.m3u8", path(media, f"/hls/{a}/av.mp4/"), at + "manifest.mpd"]
for name, urls in lists.items():
    for u in urls:
        assert urllib.request.urlopen(base + u).status == 200, u
    open(f"{out}/{name}.txt", "w").write("\n".join(urls) + "\n")
    print(f"[vod] {name}: {len(urls)} URLs")
PY

# CPU seconds of a pid (utime + stime).
cpu_of() { python3 -c "import os,sys; f=open(f'/proc/{sys.argv[1]}/stat').read().rsplit(')',1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))" "$1"; }
# Body bytes per core-second and requests per core-second of one run against `base`, whose
# server's CPU is that of `pid`.
measure() { # pid base list
  local pid=$1 base=$2 list=$3 c0 c1
  taskset -c 1 wrk -t1 -c16 -d2s -s "$here/cycle.lua" "$base" -- "$list" >/dev/null
  c0=$(cpu_of "$pid")
  taskset -c 1 wrk -t1 -c16 -d"${secs}s" --timeout 10s -s "$here/cycle.lua" "$base" -- "$list" >"$vod/wrk.out"
  c1=$(cpu_of "$pid")
  python3 - "$vod/wrk.out" "$c0" "$c1" <<'PY'
import json, sys
r = json.loads([l for l in open(sys.argv[1]) if l.startswith("WRK_RESULT ")][-1][len("WRK_RESULT "):])
cpu = float(sys.argv[3]) - float(sys.argv[2])
assert not sum(r["errors"].values()), r["errors"]
print(f'{r["bytes"] / 1e9 / cpu:.3f} {r["requests"] / cpu:.0f}')
PY
}
sealcast_run() { # list
  taskset -c 0 "$bin" serve --config "$work/sealcast.toml" --listen 127.0.0.1:0 --root "$work/root" >"$vod/sealcast.out" 2>"$vod/sealcast.err" &
  spid=$!
  local line=""
  for _ in $(seq 1 100); do
    line="$(head -n1 "$vod/sealcast.out" 2>/dev/null || true)"
    case "$line" in "sealcast listening on http://127.0.0.1:"*) break ;; esac
    sleep 0.1
  done
  measure "$spid" "${line#sealcast listening on }" "$work/$1.txt"
  kill "$spid"; wait "$spid" 2>/dev/null || true; spid=""
}
worker() { pgrep -P "$npid" | head -1; }

pairs="clear_ts:seg_ts_720p:vod_ts aes128_ts:seg_aes_ts_720p:vod_aes_ts clear_dash:seg_video_720p:vod_dash manifests:manifests:vod_manifests"
: >"$vod/results.tsv"
for r in $(seq 1 "$rounds"); do
  for p in $pairs; do
    IFS=: read -r name ours theirs <<<"$p"
    read -r sgb sreq < <(sealcast_run "$ours")
    read -r ngb nreq < <(measure "$(worker)" "$nbase" "$vod/$theirs.txt")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$name" "$sgb" "$sreq" "$ngb" "$nreq" >>"$vod/results.tsv"
    echo "[vod] round $r $name: sealcast $sgb GB/core-s ($sreq req/core-s), nginx-vod $ngb GB/core-s ($nreq req/core-s)"
  done
done
python3 - "$vod/results.tsv" <<'PY'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
print("\noutput        per core-second: sealcast / nginx-vod (GB, requests for manifests), ratio by round")
for name in dict.fromkeys(r[1] for r in rows):
    rs = [r for r in rows if r[1] == name]
    ours = [float(r[3] if name == "manifests" else r[2]) for r in rs]
    theirs = [float(r[5] if name == "manifests" else r[4]) for r in rs]
    print(f"  {name:<12} " + "  ".join(f"{o:g} / {t:g} = {o / t:.2f}" for o, t in zip(ours, theirs)))
PY
