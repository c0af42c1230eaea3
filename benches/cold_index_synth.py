#!/usr/bin/env python3
"""Synthesises a two-hour fragmented MP4 track file cheaply for the cold-index benchmark
(benches/cold_index.sh), in the layouts a fragmented file comes in:

  sidx.cmfv  a global sidx after the moov (3600 references)
  mfra.cmfv  no sidx; an mfra (tfra v1, one entry per fragment, mfro last) at the end
  bare.cmfv  neither

The ftyp and moov are those of fixtures/coldindex/bare/video.cmfv (H.264 160x90, 90 kHz);
then FRAGMENTS fragments of 2 s (50 frames at 25 fps), each a moof (tfhd default-base-is-moof
with default duration and non-sync flags, tfdt, trun with per-sample sizes and a sync first
sample) and an mdat of SAMPLE_BYTES per frame (filler, not decodable: the benchmark asks for
manifests, which need the index only). Deterministic, a few seconds, nothing committed.

usage: cold_index_synth.py OUT_DIR [FRAGMENTS] [SAMPLE_BYTES]
"""

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "fixtures", "coldindex", "bare", "video.cmfv")
TIMESCALE = 90000
FRAME = 3600  # 25 fps
FRAMES = 50   # 2 s fragments


def box(t, b):
    return struct.pack(">I4s", 8 + len(b), t) + b


def full(t, v, f, b):
    return box(t, struct.pack(">I", (v << 24) | f) + b)


def head():
    d = open(SRC, "rb").read()
    p = 0
    while p < len(d):
        size, typ = struct.unpack(">I4s", d[p:p + 8])
        p += size
        if typ == b"moov":
            return d[:p]
    raise SystemExit("no moov in " + SRC)


def fragment(seq, sample_bytes):
    sizes = [sample_bytes * 4] + [sample_bytes] * (FRAMES - 1)
    tfhd = full(b"tfhd", 0, 0x20000 | 0x08 | 0x20, struct.pack(">III", 1, FRAME, 0x01010000))
    tfdt = full(b"tfdt", 1, 0, struct.pack(">Q", (seq - 1) * FRAMES * FRAME))
    # data_offset, first_sample_flags, sample_size
    trun_body = struct.pack(">IiI", FRAMES, 0, 0x02000000) + b"".join(struct.pack(">I", s) for s in sizes)
    trun_len = 12 + len(trun_body)
    traf = box(b"traf", tfhd + tfdt + box(b"trun", struct.pack(">I", 0x000205) + trun_body))
    moof = box(b"moof", full(b"mfhd", 0, 0, struct.pack(">I", seq)) + traf)
    # data_offset: from the moof start to the first sample (after the mdat header).
    off = len(moof) + 8
    at = moof.index(b"trun") + 4 + 4 + 4  # type, version/flags, sample_count
    moof = moof[:at] + struct.pack(">i", off) + moof[at + 4:]
    assert trun_len > 0
    mdat = box(b"mdat", bytes(sum(sizes)))
    return moof + mdat, sum(sizes) + len(moof) + 8


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3600
    sample_bytes = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    os.makedirs(out, exist_ok=True)
    h = head()
    frags = [fragment(i + 1, sample_bytes) for i in range(n)]
    # sidx: v0, reference_ID 1, timescale, ept 0, first_offset 0, refs (size, duration, SAP).
    refs = b"".join(struct.pack(">III", size, FRAMES * FRAME, 0x90000000) for _, size in frags)
    sidx = full(b"sidx", 0, 0, struct.pack(">IIIIHH", 1, TIMESCALE, 0, 0, 0, n) + refs)
    media = b"".join(f for f, _ in frags)
    with open(os.path.join(out, "bare.cmfv"), "wb") as f:
        f.write(h + media)
    with open(os.path.join(out, "sidx.cmfv"), "wb") as f:
        f.write(h + sidx + media)
    entries, at = [], len(h)
    for i, (frag, size) in enumerate(frags):
        entries.append(struct.pack(">QQ", i * FRAMES * FRAME, at) + b"\1\1\1")
        at += size
    tfra = full(b"tfra", 1, 0, struct.pack(">III", 1, 0, n) + b"".join(entries))
    mfra = box(b"mfra", tfra + full(b"mfro", 0, 0, struct.pack(">I", 8 + len(tfra) + 16)))
    with open(os.path.join(out, "mfra.cmfv"), "wb") as f:
        f.write(h + media + mfra)
    print(f"{n} fragments of 2 s ({n * 2 / 3600:.2f} h), {len(h) + len(media)} bytes of media per file")


if __name__ == "__main__":
    main()
