"""Smooth Streaming (MS-SSTR): the client manifest describes the source truthfully (read by
ffprobe), every fragment is a `moof` (`mfhd`, `traf` with `tfhd`, `tfdt` v1, `trun` v0,
`tfxd` v1) + `mdat` whose times agree with the manifest, the fragments carry exactly the
source's samples (ffmpeg 8.1 `framemd5 -c copy`, in order) with the source's timing, the
Azure Media Services URL forms return the same bytes as the clean routes, and dash.js with
its MSS plugin plays the manifest in Debian's Chromium.

The box reader below is ours but small and spec-shaped (ISO/IEC 14496-12 8.8, MS-SSTR
2.2.4); the expected values it is compared with come from the source files via ffprobe,
ffmpeg and the source's own boxes."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import signal
import subprocess
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pytest

from oracle import (PROGRESSIVE, init_edit_shift, progressive_sample_times, require_browser, E2E_DIR, FIXTURES, REPO, SourceTrack, fetch, ffprobe_streams, framemd5, get_bytes, get_ok,
                    normalize_lang, sealcast_bin, source_tracks)

SMOOTH_ASSETS = ["demo", "hevc", "multi", "ams"] + PROGRESSIVE
# dash.js 4.7 accepts only AAC/AVC1/H264/TTML/DFXP FourCCs (MssParser SUPPORTED_CODECS): it drops HVC1
# levels, and Debian's Chromium has no HEVC decoder anyway, so hevc is judged by bytes only.
PLAYER_ASSETS = ["demo", "multi"]
SSTR_TYPE = "application/vnd.ms-sstr+xml"
DEFAULT_TIMESCALE = 10_000_000
TFXD_UUID = bytes.fromhex("6d1d9b0542d544e680e2141daff757b2")
TFRF_UUID = bytes.fromhex("d4807ef2ca3946958e5426cb9e46a79f")
FOURCC = {"h264": {"H264", "AVC1"}, "hevc": {"HVC1", "HEV1"}, "aac": {"AACL", "AACH", "AACP", "AAC"}}
PLAYER_TIMEOUT_S = 40


def _fails(errors: list[str]) -> None:
    assert not errors, f"{len(errors)} problem(s):\n" + "\n".join(errors[:40])


# --------------------------------------------------------------------------- ISO BMFF reading


@dataclass
class Box:
    type: str
    start: int      # first byte of the box header
    body: int       # first byte after the header (after the 16-byte usertype for 'uuid')
    end: int
    usertype: bytes | None = None


def boxes(b: bytes, start: int = 0, end: int | None = None) -> list[Box]:
    end = len(b) if end is None else end
    out, o = [], start
    while o < end:
        assert o + 8 <= end, f"{end - o} trailing bytes at {o} (not a box)"
        size = int.from_bytes(b[o:o + 4], "big")
        typ = b[o + 4:o + 8].decode("latin-1")
        hdr = 8
        if size == 1:
            size, hdr = int.from_bytes(b[o + 8:o + 16], "big"), 16
        elif size == 0:
            size = end - o
        assert size >= hdr and o + size <= end, f"box {typ!r} at {o} has size {size}, beyond its parent (end {end})"
        usertype = None
        if typ == "uuid":
            usertype = b[o + hdr:o + hdr + 16]
            hdr += 16
        out.append(Box(typ, o, o + hdr, o + size, usertype))
        o += size
    return out


def u(b: bytes, o: int, n: int, signed: bool = False) -> int:
    return int.from_bytes(b[o:o + n], "big", signed=signed)


@dataclass
class Sample:
    dts: int
    cto: int
    duration: int
    size: int
    offset: int      # absolute byte offset of the sample data in the buffer
    flags: int | None


@dataclass
class Traf:
    track_id: int
    tfhd_flags: int
    tfdt_version: int | None
    tfdt: int | None
    trun_versions: list[int]
    trun_flags: list[int]
    samples: list[Sample]
    children: list[str]
    tfxd: tuple[int, int, int] | None = None     # (version, fragment_absolute_time, fragment_duration)
    uuids: list[str] = field(default_factory=list)


def parse_traf(b: bytes, traf: Box, moof_start: int, first_in_moof: bool, prev_data_end: int | None,
               trex: dict[int, tuple[int, int, int]], next_dts: int | None) -> Traf:
    """One traf (ISO/IEC 14496-12 8.8.7, 8.8.8, 8.8.12) into samples with absolute data offsets."""
    kids = boxes(b, traf.body, traf.end)
    tfhd = [k for k in kids if k.type == "tfhd"]
    assert len(tfhd) == 1, f"traf at {traf.start} has {len(tfhd)} tfhd boxes"
    s = tfhd[0].body
    flags = u(b, s + 1, 3)
    track_id = u(b, s + 4, 4)
    p = s + 8
    base = None
    if flags & 0x01:
        base = u(b, p, 8); p += 8
    if flags & 0x02:
        p += 4
    d_dur, d_size, d_flags = trex.get(track_id, (None, None, None))
    if flags & 0x08:
        d_dur = u(b, p, 4); p += 4
    if flags & 0x10:
        d_size = u(b, p, 4); p += 4
    if flags & 0x20:
        d_flags = u(b, p, 4); p += 4
    if base is None:
        if flags & 0x020000 or first_in_moof or prev_data_end is None:
            base = moof_start
        else:
            base = prev_data_end
    tfdt_v = tfdt = None
    for k in kids:
        if k.type == "tfdt":
            tfdt_v = b[k.body]
            tfdt = u(b, k.body + 4, 8 if tfdt_v == 1 else 4)
    dts = tfdt if tfdt is not None else (next_dts or 0)
    samples: list[Sample] = []
    versions, trun_flags = [], []
    data_pos = base
    for k in kids:
        if k.type != "trun":
            continue
        v, tf = b[k.body], u(b, k.body + 1, 3)
        versions.append(v)
        trun_flags.append(tf)
        n = u(b, k.body + 4, 4)
        q = k.body + 8
        if tf & 0x01:
            data_pos = base + u(b, q, 4, signed=True); q += 4
        first_flags = None
        if tf & 0x04:
            first_flags = u(b, q, 4); q += 4
        for i in range(n):
            dur, size, sflags, cto = d_dur, d_size, d_flags, 0
            if tf & 0x100:
                dur = u(b, q, 4); q += 4
            if tf & 0x200:
                size = u(b, q, 4); q += 4
            if tf & 0x400:
                sflags = u(b, q, 4); q += 4
            elif i == 0 and first_flags is not None:
                sflags = first_flags
            if tf & 0x800:
                cto = u(b, q, 4, signed=(v == 1)); q += 4
            assert dur is not None, f"trun at {k.start}: sample {i} has no duration (no trun, tfhd or trex value)"
            assert size is not None, f"trun at {k.start}: sample {i} has no size (no trun, tfhd or trex value)"
            samples.append(Sample(dts, cto, dur, size, data_pos, sflags))
            dts += dur
            data_pos += size
        assert q <= k.end, f"trun at {k.start} overruns its box"
    t = Traf(track_id, flags, tfdt_v, tfdt, versions, trun_flags, samples, [k.type for k in kids])
    for k in kids:
        if k.type == "uuid":
            t.uuids.append(k.usertype.hex())
            if k.usertype == TFXD_UUID:
                v = b[k.body]
                if v == 1:
                    t.tfxd = (1, u(b, k.body + 4, 8), u(b, k.body + 12, 8))
                else:
                    t.tfxd = (v, u(b, k.body + 4, 4), u(b, k.body + 8, 4))
    return t


def trex_defaults(b: bytes) -> dict[int, tuple[int, int, int]]:
    out = {}
    for moov in (x for x in boxes(b) if x.type == "moov"):
        for mvex in (x for x in boxes(b, moov.body, moov.end) if x.type == "mvex"):
            for trex in (x for x in boxes(b, mvex.body, mvex.end) if x.type == "trex"):
                s = trex.body
                out[u(b, s + 4, 4)] = (u(b, s + 12, 4), u(b, s + 16, 4), u(b, s + 20, 4))
    return out


@functools.lru_cache(maxsize=None)
def source_samples(path: Path, track_id: int) -> tuple[Sample, ...]:
    """Every sample of one track of a fragmented source file, in decode order, read from
    its moof boxes (the fixtures are fragmented; their moov has no samples)."""
    data = path.read_bytes()
    trex = trex_defaults(data)
    out: list[Sample] = []
    next_dts = None
    for moof in (x for x in boxes(data) if x.type == "moof"):
        prev_end = None
        for i, traf in enumerate(x for x in boxes(data, moof.body, moof.end) if x.type == "traf"):
            t = parse_traf(data, traf, moof.start, i == 0, prev_end, trex, next_dts)
            prev_end = t.samples[-1].offset + t.samples[-1].size if t.samples else prev_end
            if t.track_id == track_id:
                out.extend(t.samples)
                if t.samples:
                    next_dts = t.samples[-1].dts + t.samples[-1].duration
    if not out:
        out = [Sample(t.dts, t.ct - t.dts + init_edit_shift(data, track_id), t.duration, 0, 0, None)
               for t in progressive_sample_times(data, track_id)]
    assert out, f"{path}: no samples for track_ID {track_id} in its moof boxes or stbl"
    return tuple(out)


@functools.lru_cache(maxsize=None)
def source_edit(path: Path, track_id: int) -> int:
    """The first edit's media_time of a source track (0 without an edit list): where its
    presentation starts, which Smooth (no edit lists) must carry in its timestamps."""
    return init_edit_shift(path.read_bytes(), track_id)


# --------------------------------------------------------------------------- source facts (ffprobe)


@functools.lru_cache(maxsize=None)
def probe(path: Path, index: int) -> dict:
    streams = [s for s in ffprobe_streams(path) if int(s["index"]) == index]
    assert streams, f"ffprobe sees no stream {index} in {path}"
    return streams[0]


def source_timescale(t: SourceTrack) -> int:
    tb = Fraction(probe(t.path, t.index)["time_base"])
    assert tb.numerator == 1, f"{t.path}: ffprobe time_base {tb} is not 1/timescale"
    return tb.denominator


def source_duration(t: SourceTrack) -> Fraction:
    s = probe(t.path, t.index)
    if s.get("duration_ts") not in (None, "N/A"):
        return Fraction(int(s["duration_ts"]), source_timescale(t))
    return Fraction(s["duration"])


@functools.lru_cache(maxsize=None)
def source_extradata(path: Path, index: int) -> bytes:
    """Codec configuration as ffmpeg's demuxer exposes it (avcC record for H.264 in MP4,
    AudioSpecificConfig for AAC), from `ffprobe -show_data`'s hex dump."""
    from oracle import FFPROBE, require_tool
    out = subprocess.run([require_tool(FFPROBE, "ffprobe"), "-v", "error", "-show_data", "-select_streams", str(index),
                          "-show_entries", "stream=extradata", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    dump = json.loads(out.stdout)["streams"][0].get("extradata") or ""
    hexes = []
    for line in dump.splitlines():
        m = re.match(r"^[0-9a-f]{8}: ((?:[0-9a-f]{2,4} ?)+)", line.strip())
        if m:
            hexes.append(m.group(1).replace(" ", ""))
    return bytes.fromhex("".join(hexes))


def hvcc_to_annexb(hvcc: bytes) -> tuple[bytes, int]:
    """(00000001 VPS 00000001 SPS 00000001 PPS, NAL length size) from an hvcC record (ISO/IEC
    14496-15 8.3.3). Only parameter sets (NAL types 32-34) count: hvcC may also carry
    declarative SEI (x265 writes its settings there), which a decoder does not need."""
    assert hvcc and hvcc[0] == 1 and len(hvcc) >= 23, f"not an hvcC record: {hvcc[:8].hex()}"
    length_size = (hvcc[21] & 3) + 1
    p, out = 23, b""
    for _ in range(hvcc[22]):
        n_nalus = u(hvcc, p + 1, 2); p += 3
        for _ in range(n_nalus):
            n = u(hvcc, p, 2)
            nal = hvcc[p + 2:p + 2 + n]
            if 32 <= (nal[0] >> 1) & 0x3F <= 34:
                out += b"\0\0\0\1" + nal
            p += 2 + n
    return out, length_size


def avcc_to_annexb(avcc: bytes) -> tuple[bytes, int]:
    """(00000001 SPS... 00000001 PPS..., NAL length size) from an avcC record."""
    assert avcc and avcc[0] == 1, f"not an avcC record: {avcc[:8].hex()}"
    length_size = (avcc[4] & 3) + 1
    n_sps, p, out = avcc[5] & 0x1F, 6, b""
    for _ in range(n_sps):
        n = u(avcc, p, 2); out += b"\0\0\0\1" + avcc[p + 2:p + 2 + n]; p += 2 + n
    n_pps = avcc[p]; p += 1
    for _ in range(n_pps):
        n = u(avcc, p, 2); out += b"\0\0\0\1" + avcc[p + 2:p + 2 + n]; p += 2 + n
    return out, length_size


# --------------------------------------------------------------------------- manifest model


@dataclass
class Level:
    stream_type: str
    stream_name: str
    timescale: int
    index: str | None
    bitrate: int
    attrs: dict[str, str]
    source: SourceTrack | None
    chunks: list[tuple[int, int]]          # (t, d) per fragment, expanded
    urls: list[str]

    @property
    def what(self) -> str:
        return f"StreamIndex {self.stream_name!r} QualityLevel Bitrate={self.bitrate}"


@dataclass
class Smooth:
    url: str
    root: ET.Element
    levels: list[Level]
    problems: list[str]                    # found while expanding (reported by the tests that care)


def expand_chunks(si: ET.Element, name: str, problems: list[str]) -> list[tuple[int, int]]:
    """MS-SSTR 2.2.2.6: `t` is optional after the first chunk (then start = previous end),
    `d` is the duration, `r` (version 2.2) repeats."""
    out: list[tuple[int, int]] = []
    nxt = None
    for i, c in enumerate(si.findall("c")):
        t, d, r = c.get("t"), c.get("d"), c.get("r")
        if t is None and nxt is None:
            problems.append(f"{name}: first c element has no t")
        if d is None:
            problems.append(f"{name}: c[{i}] has no d (duration coding expected)")
            continue
        start = int(t) if t is not None else (nxt or 0)
        if t is not None and nxt is not None and int(t) != nxt:
            problems.append(f"{name}: c[{i}] t={t} but the previous chunk ends at {nxt} (gap/overlap)")
        if i > 0 and t is not None:
            problems.append(f"{name}: c[{i}] repeats t={t} (contract: t on the first chunk only, then d)")
        for _ in range(int(r or 1)):
            out.append((start, int(d)))
            start += int(d)
        nxt = start
    return out


def match_source(asset: str, si: ET.Element, ql: ET.Element) -> tuple[SourceTrack | None, str | None]:
    stype = si.get("Type")
    cands = [t for t in source_tracks(asset).values() if t.codec_type == stype]
    if stype == "video":
        w, h = ql.get("MaxWidth"), ql.get("MaxHeight")
        cands = [t for t in cands if str(t.width) == w and str(t.height) == h]
        why = f"video {w}x{h}"
    else:
        lang = si.get("Language")
        if lang:
            cands = [t for t in cands if normalize_lang(t.language) == normalize_lang(lang)]
        elif len(cands) > 1:
            cands = [t for t in cands if t.language is None]
        why = f"audio Language={lang}"
    if len(cands) != 1:
        return None, (f"{asset}: QualityLevel Bitrate={ql.get('Bitrate')} of StreamIndex {si.get('Name')!r} "
                      f"({why}) matches {len(cands)} source tracks: {[t.name for t in cands]}")
    return cands[0], None


_smooth_cache: dict[tuple[str, str], Smooth] = {}
_smooth_lock = threading.Lock()


def smooth(base_url: str, asset: str, path: str | None = None) -> Smooth:
    key = (base_url, path or asset)
    with _smooth_lock:
        if key in _smooth_cache:
            return _smooth_cache[key]
    url = f"{base_url}{path or f'/{asset}/Manifest'}"
    r = get_ok(url)
    root = ET.fromstring(r.body)
    problems: list[str] = []
    levels: list[Level] = []
    for si in root.findall("StreamIndex"):
        name = si.get("Name") or si.get("Type")
        ts = int(si.get("TimeScale") or root.get("TimeScale") or DEFAULT_TIMESCALE)
        chunks = expand_chunks(si, name, problems)
        tpl = si.get("Url") or ""
        for ql in si.findall("QualityLevel"):
            bitrate = int(ql.get("Bitrate"))
            src, err = match_source(asset, si, ql)
            if err:
                problems.append(err)
            urls = [urllib.parse.urljoin(url, tpl.replace("{bitrate}", str(bitrate)).replace("{Bitrate}", str(bitrate))
                                         .replace("{start time}", str(t)).replace("{start_time}", str(t)))
                    for t, _ in chunks]
            levels.append(Level(si.get("Type"), name, ts, ql.get("Index"), bitrate, dict(ql.attrib), src, chunks, urls))
    s = Smooth(url, root, levels, problems)
    with _smooth_lock:
        _smooth_cache[key] = s
    return s


# --------------------------------------------------------------------------- fragments


@dataclass
class Fragment:
    url: str
    top: list[str]
    mfhd_seq: int | None
    moof_children: list[str]
    traf: Traf | None
    mdat: tuple[int, int] | None          # payload range
    body: bytes = field(repr=False, default=b"")
    problems: list[str] = field(default_factory=list)


def parse_fragment(url: str, body: bytes) -> Fragment:
    top = boxes(body)
    f = Fragment(url, [x.type for x in top], None, [], None, None, body)
    moofs = [x for x in top if x.type == "moof"]
    mdats = [x for x in top if x.type == "mdat"]
    if f.top != ["moof", "mdat"]:
        f.problems.append(f"{url}: top-level boxes {f.top}, contract: exactly moof + mdat (no styp)")
    if not moofs:
        return f
    moof = moofs[0]
    kids = boxes(body, moof.body, moof.end)
    f.moof_children = [k.type for k in kids]
    for k in kids:
        if k.type == "mfhd":
            f.mfhd_seq = u(body, k.body + 4, 4)
    trafs = [k for k in kids if k.type == "traf"]
    if len(trafs) != 1 or f.mfhd_seq is None:
        f.problems.append(f"{url}: moof children {f.moof_children}, expected mfhd + one traf")
    if trafs:
        f.traf = parse_traf(body, trafs[0], moof.start, True, None, {}, None)
    if mdats:
        f.mdat = (mdats[0].body, mdats[0].end)
    return f


def sample_bytes(f: Fragment) -> list[bytes]:
    return [f.body[s.offset:s.offset + s.size] for s in f.traf.samples]


_frag_cache: dict[str, Fragment] = {}


def fragment(url: str) -> Fragment:
    if url not in _frag_cache:
        _frag_cache[url] = parse_fragment(url, get_bytes(url))
    return _frag_cache[url]


def check_fragment(level: Level, i: int, f: Fragment) -> list[str]:
    """Structure and times of fragment i of a QualityLevel against its manifest chunk."""
    errs = list(f.problems)
    tr = f.traf
    if tr is None:
        return errs
    t, d = level.chunks[i]
    where = f"{level.what} chunk {i} (t={t} d={d}) {f.url}"
    if tr.tfdt is None or tr.tfdt_version != 1:
        errs.append(f"{where}: tfdt {'missing' if tr.tfdt is None else f'version {tr.tfdt_version}'}, contract: tfdt v1")
    if tr.trun_versions != [0]:
        errs.append(f"{where}: trun versions {tr.trun_versions}, contract: one trun v0")
    if tr.tfxd is None:
        errs.append(f"{where}: no tfxd (uuid {TFXD_UUID.hex()}) in traf; uuids {tr.uuids}; children {tr.children}")
    else:
        v, at, dur = tr.tfxd
        if v != 1:
            errs.append(f"{where}: tfxd version {v}, contract: 1 (64-bit times)")
        if at != t:
            errs.append(f"{where}: tfxd fragment_absolute_time {at} != manifest t {t}")
        if dur != d:
            errs.append(f"{where}: tfxd fragment_duration {dur} != manifest d {d}")
        if tr.tfdt is not None and tr.tfdt != at:
            errs.append(f"{where}: tfdt baseMediaDecodeTime {tr.tfdt} != tfxd fragment_absolute_time {at}")
    if TFRF_UUID.hex() in tr.uuids:
        errs.append(f"{where}: tfrf (live look-ahead) in a VOD fragment")
    if tr.tfdt is not None and tr.tfdt != t:
        errs.append(f"{where}: tfdt {tr.tfdt} != manifest t {t}")
    total = sum(s.duration for s in tr.samples)
    if total != d:
        errs.append(f"{where}: trun sample durations sum to {total}, manifest d is {d}")
    if not tr.samples:
        errs.append(f"{where}: trun has no samples")
    elif f.mdat is not None:
        lo, hi = f.mdat
        pos = lo
        for k, s in enumerate(tr.samples):
            if s.offset != pos:
                errs.append(f"{where}: sample {k} data at byte {s.offset}, expected {pos} (samples must tile the mdat)")
                break
            pos += s.size
        else:
            if pos != hi:
                errs.append(f"{where}: samples end at byte {pos}, mdat payload ends at {hi} "
                            f"({hi - pos} bytes unaccounted for)")
    if tr.samples and level.stream_type == "video" and tr.samples[0].flags is not None \
            and tr.samples[0].flags & 0x00010000:
        errs.append(f"{where}: first sample is flagged non-sync (sample_is_non_sync_sample); a fragment must start on a keyframe")
    return errs


# --------------------------------------------------------------------------- manifest tests


@pytest.mark.parametrize("asset", SMOOTH_ASSETS)
def test_manifest_is_served_as_smooth(server, asset):
    r = fetch(server.url(f"/{asset}/Manifest"))
    assert r.status == 200, r.describe()
    ctype = (r.header("content-type") or "").split(";")[0].strip().lower()
    assert ctype == SSTR_TYPE, f"Content-Type {r.header('content-type')!r}, contract: {SSTR_TYPE}"
    root = ET.fromstring(r.body)
    assert root.tag == "SmoothStreamingMedia", f"root element {root.tag!r}"


@pytest.mark.parametrize("asset", SMOOTH_ASSETS)
def test_manifest_describes_source(server, asset):
    """Root and StreamIndex attributes, one QualityLevel per source track, each with the
    source's dimensions / sampling rate / channels / language and timescale (ffprobe)."""
    s = smooth(server.base_url, asset)
    root, errs = s.root, list(p for p in s.problems if "matches" in p)
    if root.get("MajorVersion") != "2":
        errs.append(f"MajorVersion={root.get('MajorVersion')}, expected 2")
    if int(root.get("TimeScale") or DEFAULT_TIMESCALE) != DEFAULT_TIMESCALE:
        errs.append(f"root TimeScale={root.get('TimeScale')}, contract: {DEFAULT_TIMESCALE}")
    if (root.get("IsLive") or "false").lower() != "false":
        errs.append(f"IsLive={root.get('IsLive')} for a VOD asset")
    names = [si.get("Name") for si in root.findall("StreamIndex")]
    if len(names) != len(set(names)) or None in names:
        errs.append(f"StreamIndex Names {names} must be present and unique (they key the fragment URLs)")
    for si in root.findall("StreamIndex"):
        name = si.get("Name")
        qls, chunks = si.findall("QualityLevel"), si.findall("c")
        if si.get("Type") not in ("video", "audio"):
            errs.append(f"{name}: Type={si.get('Type')}")
        if si.get("Chunks") is not None and int(si.get("Chunks")) != len(expand_chunks(si, name, [])):
            errs.append(f"{name}: Chunks={si.get('Chunks')} but {len(expand_chunks(si, name, []))} chunks listed")
        if si.get("QualityLevels") is not None and int(si.get("QualityLevels")) != len(qls):
            errs.append(f"{name}: QualityLevels={si.get('QualityLevels')} but {len(qls)} QualityLevel elements")
        url = si.get("Url") or ""
        if "{bitrate}" not in url.lower() or "{start time}" not in url.lower():
            errs.append(f"{name}: Url={url!r} lacks {{bitrate}} / {{start time}}")
        bitrates = [q.get("Bitrate") for q in qls]
        if len(set(bitrates)) != len(bitrates):
            errs.append(f"{name}: duplicate Bitrate values {bitrates} (they key the fragment URLs)")
        if not chunks:
            errs.append(f"{name}: no c elements")
        if si.get("Type") == "video" and qls:
            for attr in ("MaxWidth", "MaxHeight"):
                want = max(int(q.get(attr) or 0) for q in qls)
                if si.get(attr) is not None and int(si.get(attr)) != want:
                    errs.append(f"{name}: StreamIndex {attr}={si.get(attr)}, largest QualityLevel has {want}")
    seen: dict[str, str] = {}
    for lv in s.levels:
        t = lv.source
        if t is None:
            continue
        if t.name in seen:
            errs.append(f"source track {t.name} is described twice ({seen[t.name]} and {lv.what})")
        seen[t.name] = lv.what
        want_ts = source_timescale(t)
        if lv.timescale != want_ts:
            errs.append(f"{lv.what}: StreamIndex TimeScale {lv.timescale}, source {t.name} media timescale {want_ts}")
        fourcc = (lv.attrs.get("FourCC") or "").upper()
        if fourcc not in FOURCC.get(t.codec_name, set()):
            errs.append(f"{lv.what}: FourCC={lv.attrs.get('FourCC')!r} for a {t.codec_name} source")
        if t.codec_type == "video":
            if (lv.attrs.get("MaxWidth"), lv.attrs.get("MaxHeight")) != (str(t.width), str(t.height)):
                errs.append(f"{lv.what}: {lv.attrs.get('MaxWidth')}x{lv.attrs.get('MaxHeight')}, source {t.width}x{t.height}")
        else:
            if lv.attrs.get("SamplingRate") != str(t.sample_rate):
                errs.append(f"{lv.what}: SamplingRate={lv.attrs.get('SamplingRate')}, source {t.sample_rate}")
            if lv.attrs.get("Channels") != str(t.channels):
                errs.append(f"{lv.what}: Channels={lv.attrs.get('Channels')}, source {t.channels}")
            lang = next(si.get("Language") for si in root.findall("StreamIndex") if si.get("Name") == lv.stream_name)
            if t.language and normalize_lang(lang) != normalize_lang(t.language):
                errs.append(f"{lv.what}: Language={lang!r}, source {t.language!r}")
    want = {n for n, t in source_tracks(asset).items() if t.codec_type in ("video", "audio")}
    if set(seen) != want:
        errs.append(f"source tracks without a QualityLevel: {sorted(want - set(seen))}")
    _fails(errs)


@pytest.mark.parametrize("asset", SMOOTH_ASSETS)
def test_chunk_timeline_matches_source_duration(server, asset):
    """Duration coding (t on the first c, then d), no gaps; the sum of d equals the source track duration (ffprobe) within one video
    frame / one AAC frame; root Duration (TimeScale 10^7) is the longest track."""
    s = smooth(server.base_url, asset)
    errs = [p for p in s.problems if "matches" not in p]
    longest = Fraction(0)
    for lv in s.levels:
        if lv.source is None or not lv.chunks:
            continue
        t = lv.source
        total = Fraction(sum(d for _, d in lv.chunks), lv.timescale)
        longest = max(longest, total)
        want = source_duration(t)
        tol = 1 / t.frame_rate if t.codec_type == "video" else Fraction(1024, t.sample_rate)
        if abs(total - want) > tol:
            errs.append(f"{lv.what}: chunks sum to {float(total):.6f}s ({sum(d for _, d in lv.chunks)}/{lv.timescale}), "
                        f"ffprobe says {t.name} lasts {float(want):.6f}s (tolerance {float(tol) * 1000:.1f} ms)")
    dur = s.root.get("Duration")
    if dur is None:
        errs.append("root has no Duration (required for VOD)")
    else:
        got = Fraction(int(dur), int(s.root.get("TimeScale") or DEFAULT_TIMESCALE))
        if abs(got - longest) > Fraction(1, DEFAULT_TIMESCALE):
            errs.append(f"root Duration {dur} = {float(got):.7f}s, longest track is {float(longest):.7f}s")
    _fails(errs)


@pytest.mark.parametrize("asset", SMOOTH_ASSETS)
def test_codec_private_data_matches_source(server, asset):
    """CodecPrivateData is what a Smooth client builds its decoder config (and dash.js its
    init segment) from: Annex-B parameter sets of the source's avcC / hvcC (whose NAL length
    size must be 4, the only one Smooth clients assume), the AudioSpecificConfig for AAC."""
    s = smooth(server.base_url, asset)
    errs = []
    for lv in s.levels:
        t = lv.source
        if t is None:
            continue
        got = (lv.attrs.get("CodecPrivateData") or "").upper()
        extra = source_extradata(t.path, t.index)
        if t.codec_name in ("h264", "hevc"):
            want, length_size = (avcc_to_annexb if t.codec_name == "h264" else hvcc_to_annexb)(extra)
            if length_size != 4:
                errs.append(f"{lv.what}: source NAL length size is {length_size}; Smooth clients assume 4 "
                            f"(fragments would need rewriting)")
        else:
            want = extra
        if got != want.hex().upper():
            errs.append(f"{lv.what}: CodecPrivateData {got}, expected from {t.name}'s extradata {want.hex().upper()}")
    _fails(errs)


# --------------------------------------------------------------------------- fragment tests


@pytest.mark.parametrize("asset", SMOOTH_ASSETS)
def test_every_fragment_matches_its_chunk(server, asset):
    """Every fragment of every QualityLevel: moof(mfhd, traf(tfhd, tfdt v1, trun v0, tfxd v1)) +
    mdat; tfxd time/duration = the chunk's t/d, tfdt = tfxd time, trun durations sum to d,
    samples tile the mdat exactly, mfhd sequence numbers increase."""
    s = smooth(server.base_url, asset)
    errs = []
    for lv in s.levels:
        seqs = []
        for i, url in enumerate(lv.urls):
            r = fetch(url)
            if r.status != 200:
                errs.append(f"{lv.what} chunk {i}: {r.describe()}")
                continue
            ctype = (r.header("content-type") or "").split(";")[0].strip().lower()
            if ctype not in ("video/mp4", "audio/mp4", "application/mp4", "video/iso.segment"):
                errs.append(f"{url}: Content-Type {r.header('content-type')!r}")
            try:
                f = fragment(url)
            except AssertionError as e:
                errs.append(f"{url}: unparseable: {e}")
                continue
            errs += check_fragment(lv, i, f)
            seqs.append(f.mfhd_seq)
        if seqs and (seqs[0] is None or seqs[0] < 1 or any(b is None or b <= a for a, b in zip(seqs, seqs[1:]))):
            errs.append(f"{lv.what}: mfhd sequence numbers {seqs} do not start ≥ 1 and increase")
    _fails(errs)


@pytest.mark.parametrize("asset", SMOOTH_ASSETS)
def test_fragments_carry_source_samples(server, asset):
    """The samples of all fragments of a QualityLevel, split by the trun sizes, equal the
    source track's samples packet for packet: same count, size and md5 as ffmpeg 8.1's
    `framemd5 -c copy` of the source, in order."""
    s = smooth(server.base_url, asset)
    errs = []
    for lv in s.levels:
        t = lv.source
        if t is None:
            continue
        got: list[tuple[int, str]] = []
        for url in lv.urls:
            f = fragment(url)
            assert f.traf is not None, f"{url}: no traf ({f.problems})"
            got += [(len(x), hashlib.md5(x).hexdigest()) for x in sample_bytes(f)]
        ref = framemd5(str(t.path), f"0:{t.index}")
        want = [(p.size, p.md5) for p in ref.packets]
        if got != want:
            k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            errs.append(f"{lv.what} ({t.name}): {len(got)} samples served, source has {len(want)}; first difference at "
                        f"sample {k}: served {got[k] if k < len(got) else None}, source {want[k] if k < len(want) else None}")
    _fails(errs)


def _timing(lv: Level) -> tuple[list[str], Fraction | None]:
    """Per-sample timing of a QualityLevel vs the source's own boxes (same timescale, so
    exact): durations equal, decode and composition times shifted by one constant each.
    Returns (problems, presentation shift in seconds)."""
    t = lv.source
    src = source_samples(t.path, t.track_id)
    got = [x for url in lv.urls for x in fragment(url).traf.samples]
    what = f"{lv.what} ({t.name})"
    if len(got) != len(src):
        return [f"{what}: {len(got)} samples served, source has {len(src)}"], None
    errs = []
    bad = [(i, g.duration, w.duration) for i, (g, w) in enumerate(zip(got, src)) if g.duration != w.duration]
    if bad:
        errs.append(f"{what}: {len(bad)} sample durations differ (index, served, source): {bad[:5]}")
    ddts = {g.dts - w.dts for g, w in zip(got, src)}
    # Against the source's presentation times: composition time minus its edit's media_time.
    edit = source_edit(t.path, t.track_id)
    dct = {(g.dts + g.cto) - (w.dts + w.cto - edit) for g, w in zip(got, src)}
    if len(ddts) != 1:
        errs.append(f"{what}: decode times are not the source's shifted by a constant: shifts {sorted(ddts)[:6]}")
    if len(dct) != 1:
        errs.append(f"{what}: composition times are not the source's shifted by a constant: shifts {sorted(dct)[:6]}")
        return errs, None
    neg = [i for i, g in enumerate(got) if g.cto < 0]
    if neg:
        errs.append(f"{what}: negative composition offsets at samples {neg[:5]}")
    return errs, Fraction(dct.pop(), lv.timescale)


@pytest.mark.parametrize("asset", SMOOTH_ASSETS)
def test_fragment_sample_timing_matches_source(server, asset):
    """Per sample (decode order): the served duration equals the source's, and decode /
    composition times are the source's moved by one constant per track (the timescale is
    the source's, so nothing is rounded)."""
    s = smooth(server.base_url, asset)
    errs = []
    for lv in s.levels:
        if lv.source is not None:
            errs += _timing(lv)[0]
    _fails(errs)


@pytest.mark.parametrize("asset", SMOOTH_ASSETS)
def test_tracks_stay_in_sync(server, asset):
    """Whatever constant the server adds to a track's presentation times, it must add the
    same (in seconds) to every track of the asset, or a Smooth client presents video and
    audio out of the source's sync. Smooth has no edit lists, so the composition times in
    the fragments are the presentation times a client uses."""
    s = smooth(server.base_url, asset)
    shifts: dict[str, Fraction] = {}
    for lv in s.levels:
        if lv.source is not None:
            errs, shift = _timing(lv)
            if shift is not None:
                shifts[f"{lv.what} ({lv.source.name}, TimeScale {lv.timescale})"] = shift
    assert shifts, "no track timing could be compared"
    tol = max(Fraction(1, lv.timescale) for lv in s.levels)
    lo, hi = min(shifts.values()), max(shifts.values())
    assert hi - lo <= tol, (
        "presentation times moved by different amounts per track (served composition time minus the source's, "
        "in seconds):\n" + "\n".join(f"  {k}: {float(v) * 1000:+.3f} ms" for k, v in shifts.items())
        + f"\nspread {float(hi - lo) * 1000:.3f} ms (tolerance {float(tol) * 1000:.3f} ms): "
          "a Smooth client plays these tracks out of the source's A/V sync")


@pytest.mark.parametrize("asset", SMOOTH_ASSETS)
def test_quality_level_bitrate_is_plausible(server, asset):
    """Bitrate keys the fragment URLs and drives a client's adaptation: not below 90 % of the
    level's measured average (whole fragment bytes × 8 / duration), or a client picks a level
    its bandwidth cannot sustain, and not above 1.5× (a grossly inflated level is never picked)."""
    s = smooth(server.base_url, asset)
    errs = []
    for lv in s.levels:
        bits = sum(len(get_bytes(url)) * 8 for url in lv.urls)
        secs = Fraction(sum(d for _, d in lv.chunks), lv.timescale)
        avg = bits / secs
        if not (Fraction(9, 10) * avg <= lv.bitrate <= Fraction(3, 2) * avg):
            errs.append(f"{lv.what}: measured average {float(avg):.0f} bit/s (whole fragments), "
                        f"Bitrate is {lv.bitrate / float(avg):.2f}× that")
    _fails(errs)


@pytest.mark.parametrize("asset", SMOOTH_ASSETS)
def test_unknown_fragment_is_404(server, asset):
    s = smooth(server.base_url, asset)
    lv = s.levels[0]
    t_end = lv.chunks[-1][0] + lv.chunks[-1][1]
    bad = [lv.urls[0].replace(f"QualityLevels({lv.bitrate})", "QualityLevels(1)"),
           re.sub(r"=\d+\)$", f"={lv.chunks[0][0] + 1})", lv.urls[0]),
           re.sub(r"=\d+\)$", f"={t_end})", lv.urls[0]),
           re.sub(r"\(([^=()]+)=", "(nosuchstream=", lv.urls[0])]
    errs = []
    for url in bad:
        r = fetch(url)
        if r.status != 404:
            errs.append(f"expected 404: {r.describe()}")
    _fails(errs)


# --------------------------------------------------------------------------- Azure Media Services forms


LOCATOR = "a1b2c3d4-0000-4000-8000-000000000001"
LISTEN_RE = re.compile(r"^sealcast listening on (http://127\.0\.0\.1:\d+)/?\s*$")


@pytest.fixture(scope="module")
def ams(tmp_path_factory):
    """A second server, 127.0.0.1 only, with a locator mapping to the demo asset."""
    d = tmp_path_factory.mktemp("ams")
    cfg = d / "sealcast.toml"
    cfg.write_text(f'listen = "127.0.0.1:0"\nroot = {json.dumps(str(FIXTURES.resolve()))}\n'
                   f'locators = {{ "{LOCATOR}" = "demo" }}\n')
    log_path = d / "sealcast.stderr.log"
    binary = sealcast_bin()
    if not binary.exists():
        pytest.fail(f"server binary {binary} not found (cargo build --release, or SEALCAST_BIN)")
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(binary), "serve", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=log,
                            stdin=subprocess.DEVNULL, cwd=REPO)
    first: list[str] = []
    got = threading.Event()

    def drain():
        for raw in proc.stdout:
            if not got.is_set():
                first.append(raw.decode("utf-8", "replace").rstrip("\n"))
                got.set()
        got.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not got.wait(30) or not first or not LISTEN_RE.match(first[0]):
            proc.kill()
            proc.wait()
            pytest.fail(f"sealcast --config {cfg} did not start (first stdout line {first[:1]}, exit {proc.returncode}); "
                        f"config:\n{cfg.read_text()}\nstderr:\n{log_path.read_text(errors='replace')[-2000:]}")
        base = LISTEN_RE.match(first[0]).group(1)
        yield base, proc, log_path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _ams_url(base: str, rest: str) -> str:
    return f"{base}/{LOCATOR}/demo.ism/{rest}"


def _same_bytes(ams_url: str, clean_url: str) -> list[str]:
    a, c = fetch(ams_url), fetch(clean_url)
    if a.status != 200 or c.status != 200:
        return [f"expected 200 twice: AMS {a.describe()} / clean {c.describe()}"]
    errs = []
    if a.body != c.body:
        errs.append(f"{ams_url}: {len(a.body)} bytes differ from {clean_url} ({len(c.body)} bytes)")
    ta, tc = ((x.header("content-type") or "").lower() for x in (a, c))
    if ta != tc:
        errs.append(f"{ams_url}: Content-Type {ta!r}, clean route {tc!r}")
    return errs


def _refs(text: str, kind: str) -> list[str]:
    """Relative references a player follows from a manifest (playlists / init segments)."""
    if kind == "m3u8":
        refs = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        refs += re.findall(r'URI="([^"]+)"', text)
        return refs
    root = ET.fromstring(text)
    return sorted({e.get("initialization") for e in root.iter() if e.get("initialization")
                   and "$" not in e.get("initialization")})


def test_ams_smooth_manifest_and_fragments_same_bytes(server, ams):
    base, proc, log = ams
    errs = _same_bytes(_ams_url(base, "manifest"), server.url("/demo/Manifest"))
    s = smooth(server.base_url, "demo")
    for lv in s.levels:   # first and last fragment of every QualityLevel, resolved against the AMS manifest URL
        for i in sorted({0, len(lv.chunks) - 1}):
            rel = urllib.parse.urlsplit(lv.urls[i]).path.split("/demo/", 1)[1]
            errs += _same_bytes(urllib.parse.urljoin(_ams_url(base, "manifest"), rel), lv.urls[i])
    assert proc.poll() is None, f"AMS server died: {log.read_text(errors='replace')[-2000:]}"
    _fails(errs)


@pytest.mark.parametrize("fmt,clean,kind", [("m3u8-aapl", "/demo/master-ts.m3u8", "m3u8"),
                                            ("m3u8-cmaf", "/demo/master.m3u8", "m3u8"),
                                            ("mpd-time-csf", "/demo/manifest.mpd", "mpd")])
def test_ams_format_manifests_same_bytes(server, ams, fmt, clean, kind):
    """Same bytes as the clean route, and the manifest's relative references resolve under
    the AMS URL to the same bytes as under the clean one (else same bytes would not play)."""
    base, proc, log = ams
    url = _ams_url(base, f"manifest(format={fmt})")
    errs = _same_bytes(url, server.url(clean))
    if not errs:
        for ref in _refs(get_ok(url).text(), kind):
            errs += _same_bytes(urllib.parse.urljoin(url, ref), urllib.parse.urljoin(server.url(clean), ref))
    assert proc.poll() is None, f"AMS server died: {log.read_text(errors='replace')[-2000:]}"
    _fails(errs)


@pytest.mark.parametrize("rest,status", [
    ("manifest(encryption=cenc)", 403),
    ("manifest(format=mpd-time-csf,encryption=cenc)", 403),
    ("manifest(format=m3u8-cmaf,encryption=cenc)", 403),
    ("manifest(format=m3u8-aapl,encryption=cenc)", 403),
    ("manifest(format=bogus)", 400),
])
def test_ams_refusals(ams, rest, status):
    """Encryption is refused (never served clear); an unknown format is a client error.
    Errors are JSON, like every other error of the server."""
    base, proc, log = ams
    r = fetch(_ams_url(base, rest))
    assert r.status == status, f"expected {status}: {r.describe()}"
    assert b"SmoothStreamingMedia" not in r.body and b"#EXTM3U" not in r.body and b"<MPD" not in r.body, \
        f"error response carries a manifest: {r.describe()}"
    try:
        json.loads(r.body)
    except ValueError:
        pytest.fail(f"error body is not JSON: {r.describe()}")
    assert proc.poll() is None, f"AMS server died: {log.read_text(errors='replace')[-2000:]}"


# --------------------------------------------------------------------------- dash.js (MSS) in Chromium


@pytest.fixture(scope="module")
def dashjs_played(server):
    require_browser("dashjs/dist/dash.all.min.js", "dashjs/dist/dash.mss.min.js")
    urls = [server.url(f"/{a}/Manifest") for a in PLAYER_ASSETS]
    out = subprocess.run(["node", str(E2E_DIR / "smooth_player.mjs"), "--timeout", str(PLAYER_TIMEOUT_S), *urls],
                         capture_output=True, text=True, cwd=E2E_DIR, timeout=PLAYER_TIMEOUT_S * len(urls) + 60)
    results, version = {}, None
    for line in out.stdout.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if "fatal" in obj:
            pytest.fail(f"smooth_player.mjs could not run: {obj['fatal']}\nstderr: {out.stderr[-2000:]}")
        if "dashjs" in obj:
            version = obj["dashjs"]
        elif "url" in obj:
            results[obj["url"]] = obj
    return {"results": results, "version": version, "stderr": out.stderr}


def _explain(r: dict) -> str:
    keep = {k: r.get(k) for k in ("error", "currentTime", "readyState", "paused", "buffered", "mediaError",
                                  "playerErrors", "failedRequests", "console", "videoWidth", "decodedFrames",
                                  "requests")}
    return json.dumps(keep, indent=1)[:5000]


@pytest.mark.parametrize("asset", PLAYER_ASSETS)
def test_dashjs_mss_plays(server, dashjs_played, asset):
    url = server.url(f"/{asset}/Manifest")
    r = dashjs_played["results"].get(url)
    assert r is not None, f"no result for {url}; smooth_player.mjs stderr:\n{dashjs_played['stderr'][-2000:]}"
    assert r["ok"], f"dash.js {dashjs_played['version']} (dash.mss) did not play {url} past 4 s:\n{_explain(r)}"
    assert r.get("videoWidth", 0) > 0 and (r.get("decodedFrames") or 0) > 0, f"no video frames decoded:\n{_explain(r)}"
    tracks = source_tracks(asset).values()
    want_heights = sorted({t.height for t in tracks if t.codec_type == "video"})
    got_heights = sorted({b["height"] for v in r["tracks"].get("video", []) for b in v["bitrates"] if b.get("height")})
    assert got_heights == want_heights, f"dash.js sees video heights {got_heights}, source has {want_heights}"
    want_langs = {normalize_lang(t.language) for t in tracks if t.codec_type == "audio" and t.language}
    got_langs = {normalize_lang(a["lang"]) for a in r["tracks"].get("audio", []) if a.get("lang") not in (None, "und")}
    assert got_langs == want_langs, f"dash.js sees audio languages {got_langs}, source {want_langs}"
