#!/usr/bin/env bash
# Cold time to first manifest for a two-hour title on moto S3, per index layout (issue 15):
# sidx, mfra, sidecar (written by `sealcast ingest`), and neither (the walk). For each, a fresh
# `sealcast serve` (cold caches) is asked for the DASH manifest once; the script reports the
# wall time of that request and the GETs moto logged for it.
#
#   benches/cold_index.sh [FRAGMENTS (3600 = 2 h of 2 s)] [BYTES_PER_FRAME (400 ≈ 85 kbit/s)]
#
# Needs moto_server and boto3 (scripts/setup.sh), python3, curl, and a sealcast binary
# (SEALCAST=path, default target/release/sealcast, built if missing). The title is
# synthesised by cold_index_synth.py (a few seconds, nothing committed).
set -euo pipefail
cd "$(dirname "$0")/.."
FRAGS="${1:-3600}"
FRAME_BYTES="${2:-400}"
BIN="${SEALCAST:-target/release/sealcast}"
[ -x "$BIN" ] || cargo build --release -p sealcast-origin --bin sealcast
WORK="$(mktemp -d /tmp/sealcast-coldbench.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

python3 benches/cold_index_synth.py "$WORK/src" "$FRAGS" "$FRAME_BYTES"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOTO_PORT=$(free_port)
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -s "http://127.0.0.1:$MOTO_PORT" >/dev/null && break; sleep 0.1; done
EP="http://127.0.0.1:$MOTO_PORT"
python3 -c "import boto3; boto3.client('s3', endpoint_url='$EP', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket='media')"

mkdir -p "$WORK/root"
cat >"$WORK/s3.toml" <<TOML
root = "$WORK/root"
allow_clear_without_policy = true
catalog = "$WORK/catalog.toml"

[[store]]
prefix = "vod"
kind = "s3"
bucket = "media"
region = "us-east-1"
endpoint = "$EP"
allow_http = true
access_key_id = "test"
secret_access_key = "test"
TOML
: >"$WORK/catalog.toml"

# sidx and mfra as they are; the bare file through ingest (which writes its sidecar); the
# same bare file uploaded without one (the walk).
for l in sidx mfra; do
  mkdir -p "$WORK/in/$l"; cp "$WORK/src/$l.cmfv" "$WORK/in/$l/video.cmfv"
  "$BIN" ingest --config "$WORK/s3.toml" --catalog "$WORK/catalog.toml" --asset "vod/$l" "$WORK/in/$l/video.cmfv" 2>&1 | tail -1
done
mkdir -p "$WORK/in/sidecar"; cp "$WORK/src/bare.cmfv" "$WORK/in/sidecar/video.cmfv"
"$BIN" ingest --config "$WORK/s3.toml" --catalog "$WORK/catalog.toml" --asset vod/sidecar "$WORK/in/sidecar/video.cmfv" 2>&1 | tail -1
python3 -c "import boto3; boto3.client('s3', endpoint_url='$EP', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1').upload_file('$WORK/src/bare.cmfv', 'media', 'walk/video.cmfv')"
SIDE=$(python3 -c "import boto3; print(boto3.client('s3', endpoint_url='$EP', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1').head_object(Bucket='media', Key='sidecar/video.cmfv.sealcast-idx')['ContentLength'])")
SIZE=$(stat -c %s "$WORK/src/bare.cmfv")

printf '\n%-8s %10s %6s %12s %10s\n' layout file_MB GETs first_mpd_ms mpd_bytes
for l in sidx mfra sidecar walk; do
  PORT=$(free_port)
  : >"$WORK/serve-$l.log"
  "$BIN" serve --config "$WORK/s3.toml" --listen "127.0.0.1:$PORT" >"$WORK/serve-$l.log" 2>&1 &
  SPID=$!; PIDS+=($SPID)
  for _ in $(seq 200); do grep -q "listening on" "$WORK/serve-$l.log" && break; sleep 0.05; done
  sleep 0.5  # let the start-up discovery listing finish (it lists, never indexes)
  before=$(wc -l <"$WORK/moto.log")
  t=$(curl -s -o "$WORK/$l.mpd" -w '%{time_total}' "http://127.0.0.1:$PORT/vod/$l/manifest.mpd")
  # GETs of objects (ranged reads), not listings (GET /media/?list-type=2...).
  gets=$(tail -n +$((before + 1)) "$WORK/moto.log" | grep '"GET /media/' | grep -vc 'list-type' || true)
  [ -n "${VERBOSE:-}" ] && tail -n +$((before + 1)) "$WORK/moto.log" | grep '"GET /media/' | sed 's/^/    /' >&2
  printf '%-8s %10.1f %6s %12.0f %10s\n' "$l" "$(echo "$SIZE/1048576" | bc -l)" "$gets" "$(echo "$t*1000" | bc -l)" "$(stat -c %s "$WORK/$l.mpd")"
  kill "$SPID"; wait "$SPID" 2>/dev/null || true
done
for l in mfra sidecar walk; do cmp -s "$WORK/sidx.mpd" "$WORK/$l.mpd" && echo "$l: MPD identical to sidx" || echo "$l: MPD DIFFERS from sidx"; done
echo "sidecar object: $SIDE bytes"
